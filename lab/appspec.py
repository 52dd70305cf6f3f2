"""What a lab application is made of: its topology (operators, endpoints, streams, PEs; read by the instance
service, the bundles and the REST/exporter/JMX listings) and, for the lab's keyed applications, the logic
object their PEs run (`KeyedLogic`: operator names, the state kept per key, the output tuple, what the
snapshot holds). The applications themselves are in `lab.apps`, their PE behaviour in `lab.keyedpe`.

Standard library only.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

from lab import crossdc

# ----------------------------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class OperatorSpec:
    name: str
    kind: str
    pe_index: int
    inputs: int
    outputs: int


@dataclass(frozen=True)
class EndpointSpec:
    operator: str
    port: int
    kind: str  # "source" | "sink"
    pe_index: int


@dataclass(frozen=True)
class StreamSpec:
    """An operator connection: output port `src_port` of `src` feeds input port `dst_port` of `dst`."""

    name: str
    src: str
    src_port: int
    dst: str
    dst_port: int


@dataclass(frozen=True)
class AppSpec:
    name: str
    version: str
    main_composite: str
    pe_count: int
    operators: tuple[OperatorSpec, ...]
    endpoints: tuple[EndpointSpec, ...] = ()
    downstream: dict[int, int] = field(default_factory=dict)  # PE index -> next PE index
    pe_in_ops: dict[int, tuple[str, ...]] = field(default_factory=dict)
    pe_out_ops: dict[int, tuple[str, ...]] = field(default_factory=dict)
    streams: tuple[StreamSpec, ...] = ()
    #: submission-time parameters the application declares, with their defaults ("" = none)
    parameters: dict[str, str] = field(default_factory=dict)
    #: JSON schemas (OpenAPI 3) of the tuples its source endpoints take and its sink endpoints return
    in_tuple: dict[str, Any] = field(default_factory=dict)
    out_tuple: dict[str, Any] = field(default_factory=dict)

    def stream_out(self, op: str, port: int) -> str:
        return next((s.name for s in self.streams if s.src == op and s.src_port == port), f"{op}_out{port}")

    def stream_in(self, op: str, port: int) -> str:
        return next((s.name for s in self.streams if s.dst == op and s.dst_port == port), f"{op}_in{port}")


def crossdc_ports(ops: crossdc.OpNames) -> dict[str, tuple[int, int]]:
    """(inputs, outputs) of each composite operator the lab models."""
    return {
        ops.hb_generator: (0, 1),
        ops.hb_preparer: (1, 1),
        ops.sender1: (1, 1),
        ops.sender2: (1, 1),
        ops.receiver_hb: (0, 1),
        ops.hb_watchdog: (1, 1),
        ops.receiver: (0, 1),
        ops.merger: (1, 1),
    }


def crossdc_streams(ops: crossdc.OpNames) -> tuple[StreamSpec, ...]:
    return (
        StreamSpec("HeartbeatSignal", ops.hb_generator, 0, ops.hb_preparer, 0),
        StreamSpec("SerializedHeartbeatMessage", ops.hb_preparer, 0, ops.sender1, 0),
        StreamSpec("SerializedNonHeartbeatMessage1", ops.hb_preparer, 0, ops.sender2, 0),
        StreamSpec("BinData1", ops.receiver_hb, 0, ops.hb_watchdog, 0),
        StreamSpec("BinData2", ops.receiver, 0, ops.merger, 0),
    )


def crossdc_ops(ops: crossdc.OpNames, pe_index: int) -> tuple[OperatorSpec, ...]:
    ports = crossdc_ports(ops)
    return tuple(OperatorSpec(n, k, pe_index, *ports[n]) for n, k in ops.operators())


# ------------------------------------------------------------------------------------------- keyed logic


class KeyedLogic:
    """A keyed three-PE application of the lab: EndpointSource `source_op` (PE 0) -> stateful `op` fused with
    the CrossDataCenterFailover composite (alias `xdc.alias`) and SpecialMessagePort (PE 1) -> EndpointSink
    `sink_op` (PE 2). The state per key is a list `[count, value]` (count first: a restore keeps the copy with
    the higher count); the snapshot blob is the SPL serialisation of the state (`encode_state`).

    A subclass names its operators and fields and says how a tuple updates the state and what comes out."""

    main_composite: str = ""
    source_op: str = ""
    op: str = ""  # the stateful operator: trace aspect, truth component, snapshot origin
    sink_op: str = ""
    xdc: crossdc.OpNames = crossdc.OpNames(crossdc.SAMPLE_ALIAS)
    key_field: str = ""  # the input field the state is kept by
    id_field: str = ""  # the tuple id the output carries

    def initial(self) -> list[Any]:
        """The state of a key not seen before."""
        return [0, 0.0]

    def update(self, st: list[Any], item: dict[str, Any]) -> None:
        """Fold one input tuple into its key's state (in place)."""
        raise NotImplementedError

    def output(self, item: dict[str, Any], st: list[Any], dc: str, now: float) -> dict[str, Any]:
        """The output tuple of `item` once its key's state is `st`."""
        raise NotImplementedError

    def count_of(self, out: dict[str, Any]) -> Any:
        """The output's count of tuples of its key so far (for the truth log's first_output)."""
        raise NotImplementedError

    def restamped(self, out: dict[str, Any], dc: str, now: float) -> dict[str, Any]:
        """An output emitted again (defect duplicate-replay) by the job in `dc` at `now`."""
        return dict(out)

    def corrupted(self, item: dict[str, Any]) -> dict[str, Any]:
        """The output tuple with one payload field altered (defect corrupt-output)."""
        raise NotImplementedError

    def restored(self, entry: list[Any]) -> list[Any]:
        """A state entry as read from a snapshot."""
        return [int(entry[0]), float(entry[1])]


# -------------------------------------------------------------------------------------- snapshot blob
#
# The keyed applications serialise their state as an SPL application does with the toolkit's
# `serializeDataItem` (impl/include/Functions.h: `NativeByteBuffer << value`), here of the tuple
# `tuple<float64 takenAt, list<rstring> outbox, map<rstring, tuple<int64 count, boolean hasValue, float64 value>>
# state>`: numbers in native (little-endian) byte order, collection sizes as uint32, rstrings as in the
# toolkit's payload (`crossdc._rstring`). Nothing in it is checked on the way back (`deserializeDataItem` reads
# what is there): damaged number bytes come back as other numbers, as they do in SPL; only a length that runs
# past the end of the blob is an error. The state map is last, so the blob ends with the numbers of its last
# entry. (Earlier lab versions used JSON, which no damaged byte survives: unlike a real application's state.)


def encode_state(state: dict[str, list[Any]], taken_at: float, outbox: list[dict[str, Any]] | None = None) -> bytes:
    """The snapshot blob of a keyed application (see above); ``outbox`` (defect duplicate-replay) as JSON texts."""
    parts = [struct.pack("<d", taken_at), struct.pack("<I", len(outbox or []))]
    parts += [crossdc._rstring(json.dumps(o, separators=(",", ":"))) for o in outbox or []]
    parts.append(struct.pack("<I", len(state)))
    for key, (count, value) in state.items():
        parts.append(crossdc._rstring(str(key)))
        parts.append(struct.pack("<q?d", int(count), value is not None, 0.0 if value is None else float(value)))
    return b"".join(parts)


def decode_state(blob: bytes) -> dict[str, Any]:
    """``{"state": {key: [count, value]}, "taken_at": t, "outbox": [...]}`` from :func:`encode_state`'s bytes;
    ValueError when a length runs past the end (or bytes are left over)."""
    entry = struct.Struct("<q?d")
    try:
        (taken_at,) = struct.unpack_from("<d", blob, 0)
        (n_out,) = struct.unpack_from("<I", blob, 8)
        pos = 12
        outbox = []
        for _ in range(n_out):
            text, pos = crossdc._read_rstring(blob, pos)
            outbox.append(json.loads(text))
        (n_keys,) = struct.unpack_from("<I", blob, pos)
        pos += 4
        state: dict[str, list[Any]] = {}
        for _ in range(n_keys):
            key, pos = crossdc._read_rstring(blob, pos)
            count, has_value, value = entry.unpack_from(blob, pos)
            pos += entry.size
            state[key] = [count, value if has_value else None]
    except (struct.error, UnicodeDecodeError) as exc:
        raise ValueError(f"unreadable state: {exc}") from None
    if pos != len(blob):
        raise ValueError(f"unreadable state: {len(blob) - pos} bytes left over")
    return {"state": state, "taken_at": taken_at, "outbox": outbox}
