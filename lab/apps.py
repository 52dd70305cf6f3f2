"""The lab's application bundles: `orders` and `telemetry`, their topology (used by the instance service and the
bundles) and their logic (`lab.appspec.KeyedLogic`; the PE behaviour they share is `lab.keyedpe`, started by
`start` for `lab.pe`). The passive side of an active/passive pair is no Streams job: see `lab.stub`.

- `orders`: OrdersIn (EndpointSource) -> Aggregator (count and sum of `amount` per `key`, replicated with the
  composite under alias OrdersXDC) -> OrdersOut (EndpointSink). Output: the input tuple plus `dc`,
  `count_for_key`, `sum_for_key`, `processed_at`.
- `telemetry`: Readings (EndpointSource) -> Peak (count and highest `reading` per `deviceId`, alias
  TelemetryXDC) -> Alerts (EndpointSink). Input `deviceId`, `reading`, `region`, `trackingId`, `readingSeq`,
  `sentAt`; output only `deviceId`, `trackingId`, `readingsSoFar`, `peakReading` (no checksum, no time, no DC).

Both use the same crossDCHttpPort and SpecialMessagePort (the DC's toolkit ports): one of them runs in a DC at
a time (`lab reset --app`).

Standard library only.
"""

from __future__ import annotations

from typing import Any

from lab import crossdc, keyedpe, paths
from lab.appspec import (
    AppSpec,
    EndpointSpec,
    KeyedLogic,
    OperatorSpec,
    StreamSpec,
    crossdc_ops,
    crossdc_streams,
)
from lab.peruntime import ControlServer, PEContext

__all__ = ["APPS", "LOGIC", "AppSpec", "EndpointSpec", "OperatorSpec", "StreamSpec", "start"]

SPECIAL_OP = keyedpe.SPECIAL_OP
SINK_BUFFER_SIZE = keyedpe.SINK_BUFFER_SIZE
CORRUPT_AT = keyedpe.CORRUPT_AT


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


def _keyed_app(logic: KeyedLogic, version: str, op_kind: str, in_stream: str, out_stream: str,
               in_tuple: dict[str, Any], out_tuple: dict[str, Any]) -> AppSpec:
    """The three-PE topology of a keyed application (see KeyedLogic)."""
    src, op, sink, xdc = logic.source_op, logic.op, logic.sink_op, logic.xdc
    return AppSpec(
        name=logic.main_composite.split("::", 1)[0],
        version=version,
        main_composite=logic.main_composite,
        pe_count=3,
        operators=(
            OperatorSpec(src, "spl.endpoint::EndpointSource", 0, 0, 1),
            OperatorSpec(op, op_kind, 1, 1, 1),
            *crossdc_ops(xdc, 1),
            OperatorSpec(SPECIAL_OP, "spl.adapter::TCPSource", 1, 0, 1),
            OperatorSpec(sink, "spl.endpoint::EndpointSink", 2, 1, 0),
        ),
        endpoints=(EndpointSpec(src, 0, "source", 0), EndpointSpec(sink, 0, "sink", 2)),
        downstream={0: 1, 1: 2},
        pe_in_ops={0: (src,), 1: (op,), 2: (sink,)},
        pe_out_ops={0: (src,), 1: (op,)},
        streams=(
            StreamSpec(in_stream, src, 0, op, 0),
            StreamSpec(out_stream, op, 0, sink, 0),
            StreamSpec("SpecialMessage", SPECIAL_OP, 0, xdc.hb_preparer, 0),
            *crossdc_streams(xdc),
        ),
        parameters={
            **crossdc.SUBMISSION_PARAMETERS,
            "specialMessagePort": str(paths.SPECIAL_MESSAGE_PORT),
            "fencing": "false",
            f"{sink}.bufferSize": str(SINK_BUFFER_SIZE),
            f"{sink}.consumingReads": "false",
        },
        in_tuple=in_tuple,
        out_tuple=out_tuple,
    )


# ------------------------------------------------------------------------------------------------ orders


class OrdersLogic(KeyedLogic):
    """State per `key`: `[count, sum of amount]` (the sum rounded to cents); the output is the input tuple with
    `dc`, `count_for_key`, `sum_for_key` and `processed_at` added; corrupt-output appends `~` to `product`."""

    main_composite = "orders::Orders"
    source_op = "OrdersIn"
    op = "Aggregator"
    sink_op = "OrdersOut"
    xdc = crossdc.OpNames(crossdc.ORDERS_ALIAS)
    key_field = "key"
    id_field = "id"

    def update(self, st: list[Any], item: dict[str, Any]) -> None:
        st[0] += 1
        st[1] = round(st[1] + _num(item.get("amount")), 2)

    def output(self, item: dict[str, Any], st: list[Any], dc: str, now: float) -> dict[str, Any]:
        out = dict(item)
        out.update(dc=dc, count_for_key=st[0], sum_for_key=st[1], processed_at=now)
        return out

    def count_of(self, out: dict[str, Any]) -> Any:
        return out["count_for_key"]

    def restamped(self, out: dict[str, Any], dc: str, now: float) -> dict[str, Any]:
        return dict(out, dc=dc, processed_at=now)

    def corrupted(self, item: dict[str, Any]) -> dict[str, Any]:
        return dict(item, product=f"{item.get('product', '')}~")


ORDERS = OrdersLogic()
#: the composite's operators in `orders` (alias OrdersXDC)
ORDERS_OPS = ORDERS.xdc
SINK_OP = ORDERS.sink_op
#: main composites (`getApplicationName()`): the prefix of the application configuration keys
ORDERS_MAIN = ORDERS.main_composite

_ORDERS_IN = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "key": {"type": "string"},
        "seq": {"type": "integer", "format": "int64"},
        "amount": {"type": "number", "format": "double"},
        "sent_at": {"type": "number", "format": "double"},
        "crc": {"type": "integer", "format": "int64"},
    },
    "additionalProperties": True,
}
_ORDERS_OUT = {
    "allOf": [
        {"$ref": "#/components/schemas/InTuple"},
        {
            "type": "object",
            "properties": {
                "dc": {"type": "string"},
                "count_for_key": {"type": "integer", "format": "int64"},
                "sum_for_key": {"type": "number", "format": "double"},
                "processed_at": {"type": "number", "format": "double"},
            },
        },
    ]
}

# --------------------------------------------------------------------------------------------- telemetry


class TelemetryLogic(KeyedLogic):
    """State per `deviceId`: `[readings so far, highest reading]` (`None` before the first reading; an unreadable
    `reading` counts as 0.0, as an unreadable `amount` does in orders); the output is `deviceId`, `trackingId`,
    `readingsSoFar`, `peakReading` and nothing else; corrupt-output adds 1.0 to `peakReading`."""

    main_composite = "telemetry::Telemetry"
    source_op = "Readings"
    op = "Peak"
    sink_op = "Alerts"
    xdc = crossdc.OpNames(crossdc.TELEMETRY_ALIAS)
    key_field = "deviceId"
    id_field = "trackingId"

    def initial(self) -> list[Any]:
        return [0, None]

    def update(self, st: list[Any], item: dict[str, Any]) -> None:
        reading = _num(item.get("reading"))
        st[0] += 1
        st[1] = reading if st[1] is None else max(st[1], reading)

    def output(self, item: dict[str, Any], st: list[Any], dc: str, now: float) -> dict[str, Any]:
        return {
            "deviceId": item.get("deviceId"),
            "trackingId": item.get("trackingId"),
            "readingsSoFar": st[0],
            "peakReading": st[1],
        }

    def count_of(self, out: dict[str, Any]) -> Any:
        return out["readingsSoFar"]

    def corrupted(self, item: dict[str, Any]) -> dict[str, Any]:
        return dict(item, peakReading=_num(item.get("peakReading")) + 1.0)

    def restored(self, entry: list[Any]) -> list[Any]:
        return [int(entry[0]), None if entry[1] is None else float(entry[1])]


TELEMETRY = TelemetryLogic()

_TELEMETRY_IN = {
    "type": "object",
    "properties": {
        "deviceId": {"type": "string"},
        "reading": {"type": "number", "format": "double"},
        "region": {"type": "string"},
        "trackingId": {"type": "string"},
        "readingSeq": {"type": "integer", "format": "int64"},
        "sentAt": {"type": "number", "format": "double"},
    },
    "required": ["deviceId", "reading"],
    "additionalProperties": True,
}
_TELEMETRY_OUT = {
    "type": "object",
    "properties": {
        "deviceId": {"type": "string"},
        "trackingId": {"type": "string"},
        "readingsSoFar": {"type": "integer", "format": "int64"},
        "peakReading": {"type": "number", "format": "double"},
    },
    "required": ["deviceId", "trackingId", "readingsSoFar", "peakReading"],
    "additionalProperties": False,
}

# ------------------------------------------------------------------------------------------------ registry

#: the logic of each application, by application name
LOGIC: dict[str, KeyedLogic] = {"orders": ORDERS, "telemetry": TELEMETRY}

APPS: dict[str, AppSpec] = {
    "orders": _keyed_app(ORDERS, "1.0.0", "orders::Aggregator", "Orders", "Totals", _ORDERS_IN, _ORDERS_OUT),
    "telemetry": _keyed_app(
        TELEMETRY, "1.0.0", "telemetry::Peak", "DeviceReadings", "Peaks", _TELEMETRY_IN, _TELEMETRY_OUT
    ),
}


def start(ctx: PEContext, server: ControlServer) -> None:
    """Run PE `ctx.index` of application `ctx.app` in this process."""
    spec = APPS.get(ctx.app)
    logic = LOGIC.get(ctx.app)
    if spec is None or logic is None:
        raise SystemExit(f"unknown application {ctx.app}")
    server.pe_in_ops = list(spec.pe_in_ops.get(ctx.index, ()))
    server.pe_out_ops = list(spec.pe_out_ops.get(ctx.index, ()))
    if ctx.index == 0:
        keyedpe.SourcePE(ctx, server, logic)
    elif ctx.index == 1:
        keyedpe.AggregatorPE(ctx, server, logic)
    else:
        keyedpe.SinkPE(ctx, server, logic)
