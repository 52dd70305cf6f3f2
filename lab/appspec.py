"""What a lab application is made of: its topology (operators, endpoints, streams, PEs; read by the instance
service, the bundles and the REST/exporter/JMX listings) and, for the lab's keyed applications, the logic
object their PEs run (`KeyedLogic`: operator names, the state kept per key, the output tuple, what the
snapshot holds). The applications themselves are in `lab.apps`, their PE behaviour in `lab.keyedpe`.

Standard library only.
"""

from __future__ import annotations

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
    the higher count); the snapshot blob is `{"state": {key: [count, value]}, "taken_at": t}`.

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
