"""The application contract: what the tester sends an application, what it needs back, and the state the
application keeps per key, as declared under ``applications.<app>.data`` (docs/application-contract.md).

A :class:`DataContract` names

- the input fields the tester fills: the tuple id, the key and the per-key sequence (and the send time);
- the business fields and how to generate them (seeded Faker providers) or a JSON Lines / CSV file of them;
- an optional checksum the tester computes over input fields and the application passes through;
- the output fields that carry the id back (required), the processing time, the data center and the checksum;
- the state per key as aggregates over input fields: ``count``, ``sum of F``, ``min of F``, ``max of F``,
  ``last of F``.

An application without a ``data`` block gets :data:`ORDERS`, the lab's orders contract. The contract used by a
scenario is stored with its ledgers (``contract.json``) so that the run can be judged again from disk.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AGGREGATES = ("count", "sum", "min", "max", "last")
CONTRACT_FILE = "contract.json"
#: ledger columns of every row; an output field of a state aggregate or a business field must not use these names
RESERVED = frozenset({"id", "key", "seq", "dc", "t_send", "t_ack", "outcome", "error", "t_recv", "processed_at",
                      "crc_ok"})
_AGGREGATE = re.compile(r"^\s*(count|(sum|min|max|last)\s+of\s+(\S+))\s*$")


class ContractError(ValueError):
    """A declaration that cannot be used: ``path`` (dotted, below ``data``) and the problem."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


@dataclass(frozen=True)
class Aggregate:
    """One piece of per-key state: the output field ``output`` carries ``kind`` (of input field ``over``)."""

    output: str
    kind: str
    over: str | None = None

    def describe(self) -> str:
        return self.kind if self.over is None else f"{self.kind} of {self.over}"


@dataclass(frozen=True)
class FieldSpec:
    """How one business field is generated: a Faker provider with arguments; ``per_key`` draws one value per key
    (fixed for the run), ``choices`` draws a pool of that many values once and picks from it."""

    name: str
    faker: str
    args: Mapping[str, Any] = field(default_factory=dict)
    per_key: bool = False
    choices: int = 0


@dataclass(frozen=True)
class DataContract:
    noun: str = "orders"
    keys: int = 40
    key_format: str = "C{:04d}"
    id_field: str = "id"
    key_field: str = "key"
    seq_field: str = "seq"
    sent_at_field: str | None = "sent_at"
    fields: tuple[FieldSpec, ...] = ()
    file: str | None = None
    checksum_field: str | None = None
    checksum_over: tuple[str, ...] = ()
    out_id: str = "id"
    out_processed_at: str | None = None
    out_dc: str | None = None
    out_checksum: str | None = None
    state: tuple[Aggregate, ...] = ()
    _checksum_text: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_checksum_text", _checksum_text(self))

    # ------------------------------------------------------------------------------------------ derived
    @property
    def has_checksum(self) -> bool:
        return self.checksum_field is not None and self.out_checksum is not None

    @property
    def count_column(self) -> str | None:
        """The output field of the ``count`` aggregate (None when the state declares no count)."""
        return next((a.output for a in self.state if a.kind == "count"), None)

    @property
    def state_inputs(self) -> tuple[str, ...]:
        """Input fields the declared aggregates are over, in declaration order, each once."""
        seen: list[str] = []
        for a in self.state:
            if a.over is not None and a.over not in seen:
                seen.append(a.over)
        return tuple(seen)

    def sent_columns(self) -> dict[str, str]:
        """The sent ledger's columns: the tester's bookkeeping plus the input fields the state is over."""
        base = {"id": "id", "key": "cat", "seq": "<i4", "dc": "cat:|i1", "t_send": "<f8", "t_ack": "<f8",
                "outcome": "cat:|i1", "error": "cat"}
        return {**base, **{name: "<f8" for name in self.state_inputs}}

    def received_columns(self) -> dict[str, str]:
        """The received ledger's columns: where and when each output came out, the declared aggregates, whether its
        checksum matched, and the input fields the state is over (joined from the sent ledger by id)."""
        base = {"id": "id", "key": "cat", "seq": "<i4", "dc": "cat:|i1", "t_recv": "<f8", "processed_at": "<f8"}
        # a count is an int64 in the application's tuple: a restored state can carry any of them (e.g. a damaged
        # snapshot), and a value the column cannot hold would lose its whole batch of outputs
        aggregates = {a.output: "<i8" if a.kind == "count" else "<f8" for a in self.state}
        return {**base, **aggregates, "crc_ok": "|b1", **{name: "<f8" for name in self.state_inputs}}

    # ------------------------------------------------------------------------------------------ checksum
    def checksum(self, item: Mapping[str, Any]) -> int:
        """CRC-32 over the ``checksum_over`` fields of ``item`` joined by ``|``: the sequence as an integer, a float
        field generated with ``right_digits`` with that many decimals (``amount`` with two, as the orders checksum
        always had), other values as ``str`` (a missing one as nothing)."""
        return zlib.crc32(self._checksum_text(item).encode())

    # ------------------------------------------------------------------------------------------ storage
    def to_json(self) -> dict[str, Any]:
        return {
            "noun": self.noun, "keys": self.keys, "key_format": self.key_format,
            "tracking": {"id": self.id_field, "key": self.key_field, "seq": self.seq_field,
                         "sent_at": self.sent_at_field},
            "fields": {f.name: {"faker": f.faker, "args": dict(f.args), "per_key": f.per_key, "choices": f.choices}
                       for f in self.fields},
            "file": self.file,
            "checksum": ({"field": self.checksum_field, "over": list(self.checksum_over)}
                         if self.checksum_field else None),
            "output": {"id": self.out_id, "processed_at": self.out_processed_at, "dc": self.out_dc,
                       "checksum": self.out_checksum},
            "state": {a.output: a.describe() for a in self.state},
        }

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONTRACT_FILE).write_text(json.dumps(self.to_json(), indent=1))

    @classmethod
    def load(cls, folder: Path) -> DataContract:
        """The contract stored with a scenario's ledgers (a run recorded before contracts: :data:`ORDERS`)."""
        path = folder / CONTRACT_FILE
        if not path.exists():
            return ORDERS
        return parse_contract(json.loads(path.read_text()))


def _checksum_text(contract: DataContract) -> Callable[[Mapping[str, Any]], str]:
    """The checksum's text of an item, as one format call (the checksum is on the tester's hot path)."""
    parts: list[str] = []
    reads: list[tuple[str, Callable[[Any], Any] | None, Any]] = []  # field, conversion, value when missing
    for position, name in enumerate(contract.checksum_over):
        spec = next((f for f in contract.fields if f.name == name), None)
        digits = spec.args.get("right_digits") if spec is not None else None
        if name == contract.seq_field:
            parts.append(f"{{{position}:d}}")
            reads.append((name, int, 0))
        elif digits is not None:
            parts.append(f"{{{position}:.{int(digits)}f}}")
            reads.append((name, float, 0.0))
        else:
            parts.append(f"{{{position}}}")
            reads.append((name, None, ""))
    text = "|".join(parts).format

    def of(item: Mapping[str, Any]) -> str:
        get = item.get
        values = []
        for name, convert, missing in reads:
            value = get(name)
            if value is None:
                value = missing
            elif convert is not None:
                value = convert(value or missing)
            values.append(value)
        return text(*values)

    return of


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ContractError(path, f"expected a mapping, got {type(value).__name__}")
    return value


def _name(value: Any, path: str, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise ContractError(path, "expected a field name")
    return value


def parse_aggregate(output: str, text: Any, path: str) -> Aggregate:
    """``count``, ``sum of F``, ``min of F``, ``max of F`` or ``last of F``."""
    match = _AGGREGATE.match(text) if isinstance(text, str) else None
    if match is None:
        raise ContractError(path, f"unknown aggregate {text!r}: expected count, or sum/min/max/last of <input field>")
    if match.group(1) == "count":
        return Aggregate(output, "count")
    return Aggregate(output, match.group(2), match.group(3))


def parse_contract(raw: Mapping[str, Any] | None) -> DataContract:
    """A :class:`DataContract` from an ``applications.<app>.data`` block (None: :data:`ORDERS`). Raises
    :class:`ContractError` naming the path below ``data`` and the problem."""
    if raw is None:
        return ORDERS
    raw = _mapping(raw, "data")
    if "tracking" not in raw:
        raise ContractError("data.tracking", "is missing: the input fields the tester fills (id, key, seq)")
    tracking = _mapping(raw["tracking"], "data.tracking")
    for needed in ("id", "key", "seq"):
        if needed not in tracking or tracking[needed] is None:
            raise ContractError(f"data.tracking.{needed}", "is missing: the tester needs it to account for every tuple")
    id_field = _name(tracking["id"], "data.tracking.id")
    key_field = _name(tracking["key"], "data.tracking.key")
    seq_field = _name(tracking["seq"], "data.tracking.seq")
    sent_at = _name(tracking.get("sent_at"), "data.tracking.sent_at", optional=True)
    assert id_field and key_field and seq_field
    specs: list[FieldSpec] = []
    for name, spec_raw in _mapping(raw.get("fields") or {}, "data.fields").items():
        path = f"data.fields.{name}"
        spec = _mapping(spec_raw, path)
        provider = spec.get("faker")
        if not isinstance(provider, str) or not provider:
            raise ContractError(f"{path}.faker", "expected the name of a Faker provider (e.g. name, pyfloat)")
        args = _mapping(spec.get("args") or {}, f"{path}.args")
        choices = spec.get("choices", 0) or 0
        if not isinstance(choices, int) or choices < 0:
            raise ContractError(f"{path}.choices", "expected a whole number of values to pick from")
        specs.append(FieldSpec(str(name), provider, dict(args), bool(spec.get("per_key", False)), choices))
    file = raw.get("file")
    if file is not None and not isinstance(file, str):
        raise ContractError("data.file", "expected a path to a JSON Lines or CSV file")
    if file and specs:
        raise ContractError("data.file", "declare either fields (generated) or file (read), not both")
    tracked = {id_field, key_field, seq_field} | ({sent_at} if sent_at else set())
    inputs = tracked | {f.name for f in specs}
    open_inputs = bool(file)  # a file's columns are known only when it is read
    checksum_field: str | None = None
    over: tuple[str, ...] = ()
    if raw.get("checksum") is not None:
        checksum = _mapping(raw["checksum"], "data.checksum")
        checksum_field = _name(checksum.get("field"), "data.checksum.field")
        over_raw = checksum.get("over")
        if not isinstance(over_raw, Sequence) or isinstance(over_raw, str) or not over_raw:
            raise ContractError("data.checksum.over", "expected a list of input fields")
        over = tuple(str(x) for x in over_raw)
        for name in over:
            if name not in inputs and not open_inputs:
                raise ContractError("data.checksum.over", f"{name!r} is not an input field ({_known(inputs)})")
    output = _mapping(raw.get("output") or {}, "data.output")
    if "id" not in output:
        raise ContractError("data.output.id", "is missing: the output field that carries the tuple id back")
    out_id = _name(output["id"], "data.output.id")
    assert out_id
    out_checksum = _name(output.get("checksum"), "data.output.checksum", optional=True)
    if out_checksum and not checksum_field:
        raise ContractError("data.output.checksum", "the input declares no checksum (data.checksum)")
    state: list[Aggregate] = []
    for output_field, text in _mapping(raw.get("state") or {}, "data.state").items():
        path = f"data.state.{output_field}"
        aggregate = parse_aggregate(str(output_field), text, path)
        if aggregate.output in RESERVED:
            raise ContractError(path, f"{aggregate.output!r} is a name the ledgers use; rename the output field")
        if aggregate.over is not None:
            if aggregate.over not in inputs and not open_inputs:
                raise ContractError(path, f"{aggregate.over!r} is not a declared input field ({_known(inputs)})")
            if aggregate.over in tracked:
                raise ContractError(path, f"{aggregate.over!r} is a tracking field, not business data")
        state.append(aggregate)
    over_fields = {a.over for a in state if a.over}
    for a in state:
        if a.output in over_fields:
            raise ContractError(f"data.state.{a.output}", "an output field of the state must not share a name "
                                                          "with an input field the state is over")
    keys = raw.get("keys", 40)
    if not isinstance(keys, int) or keys < 1:
        raise ContractError("data.keys", "expected a positive number of distinct keys")
    noun = raw.get("noun", "orders")
    if not isinstance(noun, str) or not re.fullmatch(r"[a-z][a-z0-9_-]*", noun):
        raise ContractError("data.noun", "expected one lower-case word (e.g. orders, readings)")
    key_format = raw.get("key_format", "K{:04d}")
    try:
        str(key_format).format(1)
    except (IndexError, KeyError, ValueError) as exc:
        raise ContractError("data.key_format", f"not a format for a key number: {exc}") from None
    return DataContract(
        noun=noun, keys=keys, key_format=str(key_format), id_field=id_field, key_field=key_field,
        seq_field=seq_field, sent_at_field=sent_at, fields=tuple(specs), file=file,
        checksum_field=checksum_field, checksum_over=over, out_id=out_id,
        out_processed_at=_name(output.get("processed_at"), "data.output.processed_at", optional=True),
        out_dc=_name(output.get("dc"), "data.output.dc", optional=True), out_checksum=out_checksum,
        state=tuple(state),
    )


def _known(names: set[str]) -> str:
    return "inputs: " + ", ".join(sorted(names))


#: the lab's orders application; also the contract of an application that declares none
ORDERS_DATA: dict[str, Any] = {
    "noun": "orders",
    "keys": 40,
    "key_format": "C{:04d}",
    "tracking": {"id": "id", "key": "key", "seq": "seq", "sent_at": "sent_at"},
    "fields": {
        "customer": {"faker": "name", "per_key": True},
        "product": {"faker": "word", "choices": 25},
        "amount": {"faker": "pyfloat", "args": {"min_value": 1, "max_value": 500, "right_digits": 2}},
    },
    "checksum": {"field": "crc", "over": ["id", "key", "seq", "customer", "product", "amount"]},
    "output": {"id": "id", "processed_at": "processed_at", "dc": "dc", "checksum": "crc"},
    "state": {"count_for_key": "count", "sum_for_key": "sum of amount"},
}
ORDERS = parse_contract(ORDERS_DATA)
