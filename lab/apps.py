"""The lab's application bundles `orders` and `orders_standby`: topology (used by the instance service)
and PE behaviour (used by `lab.pe`).

Standard library only.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from lab import crossdc, paths
from lab.pe import ControlServer, Downstream, PEContext

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
class AppSpec:
    name: str
    version: str
    pe_count: int
    operators: tuple[OperatorSpec, ...]
    endpoints: tuple[EndpointSpec, ...] = ()
    downstream: dict[int, int] = field(default_factory=dict)  # PE index -> next PE index
    pe_in_ops: dict[int, tuple[str, ...]] = field(default_factory=dict)
    pe_out_ops: dict[int, tuple[str, ...]] = field(default_factory=dict)


_CROSSDC_PORTS: dict[str, tuple[int, int]] = {
    crossdc.OP_HB_GENERATOR: (0, 1),
    crossdc.OP_HB_PREPARER: (1, 1),
    crossdc.OP_SENDER1: (1, 1),
    crossdc.OP_SENDER2: (1, 1),
    crossdc.OP_RECEIVER_HB: (0, 1),
    crossdc.OP_HB_WATCHDOG: (1, 1),
    crossdc.OP_RECEIVER: (0, 1),
    crossdc.OP_MERGER: (1, 1),
}


def _crossdc_ops(pe_index: int) -> tuple[OperatorSpec, ...]:
    return tuple(OperatorSpec(n, k, pe_index, *_CROSSDC_PORTS[n]) for n, k in crossdc.OPERATORS)


SPECIAL_OP = "SpecialMessagePort"

APPS: dict[str, AppSpec] = {
    "orders": AppSpec(
        name="orders",
        version="1.0.0",
        pe_count=3,
        operators=(
            OperatorSpec("OrdersIn", "spl.endpoint::EndpointSource", 0, 0, 1),
            OperatorSpec("Aggregator", "orders::Aggregator", 1, 1, 1),
            *_crossdc_ops(1),
            OperatorSpec(SPECIAL_OP, "spl.adapter::TCPSource", 1, 0, 1),
            OperatorSpec("OrdersOut", "spl.endpoint::EndpointSink", 2, 1, 0),
        ),
        endpoints=(EndpointSpec("OrdersIn", 0, "source", 0), EndpointSpec("OrdersOut", 0, "sink", 2)),
        downstream={0: 1, 1: 2},
        pe_in_ops={0: ("OrdersIn",), 1: ("Aggregator",), 2: ("OrdersOut",)},
        pe_out_ops={0: ("OrdersIn",), 1: ("Aggregator",)},
    ),
    "orders_standby": AppSpec(
        name="orders_standby",
        version="1.0.0",
        pe_count=1,
        operators=_crossdc_ops(0),
    ),
}

SINK_BUFFER_SIZE = 1000

# -------------------------------------------------------------------------------------------- behaviour


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


class SourcePE:
    """PE 0 of `orders`: EndpointSource OrdersIn."""

    def __init__(self, ctx: PEContext, server: ControlServer) -> None:
        assert ctx.downstream_port is not None
        self.ctx = ctx
        self.down = Downstream(ctx.downstream_port)
        server.handlers["inject"] = self.inject

    def inject(self, msg: dict[str, Any]) -> dict[str, Any]:
        items = [i for i in msg.get("items", []) if isinstance(i, dict)]
        self.down.send(items)
        self.ctx.metrics.inc("OrdersIn", "out", len(items))
        return {"accepted": len(items)}


class AggregatorPE:
    """PE 1 of `orders`: Aggregator fused with the CrossDCFailover composite and SpecialMessagePort."""

    def __init__(self, ctx: PEContext, server: ControlServer) -> None:
        assert ctx.downstream_port is not None
        self.ctx = ctx
        self.lock = threading.Lock()
        self.state: dict[str, list[Any]] = {}
        self.first_output_done = False
        self.down = Downstream(ctx.downstream_port)
        cfg = crossdc.Config.from_params(ctx.params, ctx.dc, default_mode=1)
        self.crossdc = crossdc.CrossDC(ctx, cfg, snapshot_fn=self.snapshot, restore_fn=self.merge)
        server.on_stream = self.process
        self.crossdc.start()
        self.special = _bind_retry((paths.DC_ADDR[ctx.dc], paths.SPECIAL_MESSAGE_PORT))
        threading.Thread(target=self._special_loop, name=SPECIAL_OP, daemon=True).start()

    def process(self, items: list[dict[str, Any]]) -> None:
        outs: list[dict[str, Any]] = []
        with self.lock:
            for item in items:
                key = str(item.get("key", ""))
                st = self.state.get(key)
                if st is None:
                    st = self.state[key] = [0, 0.0]
                st[0] += 1
                st[1] = round(st[1] + _num(item.get("amount")), 2)
                out = dict(item)
                out.update(dc=self.ctx.dc, count_for_key=st[0], sum_for_key=st[1], processed_at=time.time())
                outs.append(out)
            self.ctx.metrics.inc("Aggregator", "in", len(items))
            self.down.send(outs)
            self.ctx.metrics.inc("Aggregator", "out", len(outs))
            first = bool(outs) and not self.first_output_done
            self.first_output_done = self.first_output_done or bool(outs)
        if first:
            self.ctx.truth(
                "Aggregator",
                "first_output",
                launch_count=self.ctx.launch_count,
                key=outs[0].get("key"),
                id=outs[0].get("id"),
                count_for_key=outs[0]["count_for_key"],
            )

    def snapshot(self) -> tuple[str, bytes, dict[str, Any]]:
        with self.lock:
            taken_at = time.time()
            state = {k: [v[0], v[1]] for k, v in self.state.items()}
        blob = json.dumps({"state": state, "taken_at": taken_at}, separators=(",", ":")).encode()
        info = {"keys": len(state), "total_count": sum(v[0] for v in state.values()), "taken_at": taken_at}
        return "Aggregator", blob, info

    def merge(self, blob: bytes, origin: str, snapshot_origin: str) -> dict[str, Any]:
        doc = json.loads(blob)
        incoming: dict[str, list[Any]] = doc.get("state", {})
        with self.lock:
            for key, (count, total) in incoming.items():
                cur = self.state.get(key)
                if cur is None:
                    self.state[key] = [int(count), float(total)]
                else:
                    cur[0] += int(count)
                    cur[1] = round(cur[1] + float(total), 2)
        self.ctx.trace.log("INFO", "Aggregator", f"merged state of {origin}/{snapshot_origin}: {len(incoming)} keys")
        return {
            "keys": len(incoming),
            "total_count": sum(int(v[0]) for v in incoming.values()),
            "taken_at": doc.get("taken_at"),
        }

    def _special_loop(self) -> None:
        while True:
            conn, _ = self.special.accept()
            threading.Thread(target=self._special_conn, args=(conn,), daemon=True).start()

    def _special_conn(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as f:
            for raw in f:
                text = raw.decode("utf-8", "replace").strip()
                if text:
                    self.ctx.metrics.inc(SPECIAL_OP, "out")
                    self.crossdc.special_message(text)


class SinkPE:
    """PE 2 of `orders`: EndpointSink OrdersOut (bufferSize 1000, oldest dropped, consumingReads true)."""

    def __init__(self, ctx: PEContext, server: ControlServer) -> None:
        self.ctx = ctx
        self.lock = threading.Lock()
        self.buf: deque[tuple[int, dict[str, Any]]] = deque()
        self.last_dropped_ms = -1
        server.on_stream = self.receive
        server.handlers["fetch"] = self.fetch

    def receive(self, items: list[dict[str, Any]]) -> None:
        now_ms = int(time.time() * 1000)
        dropped = 0
        with self.lock:
            for item in items:
                if len(self.buf) >= SINK_BUFFER_SIZE:
                    ts, _ = self.buf.popleft()
                    self.last_dropped_ms = ts
                    dropped += 1
                self.buf.append((now_ms, item))
        self.ctx.metrics.inc("OrdersOut", "in", len(items))
        if dropped:
            self.ctx.metrics.inc("OrdersOut", "dropped", dropped)

    def fetch(self, msg: dict[str, Any]) -> dict[str, Any]:
        start = msg.get("startTime")
        reply: dict[str, Any] = {}
        with self.lock:
            if start is None:
                items = [i for _, i in self.buf]
                self.buf.clear()
                start_ms = 0
            else:
                start_ms = int(start)
                items = [i for ts, i in self.buf if ts >= start_ms]
                self.buf = deque((ts, i) for ts, i in self.buf if ts < start_ms)
            if start is not None and self.last_dropped_ms >= start_ms:
                reply["warning"] = (
                    "CDISW5101W Tuples older than the oldest buffered tuple were dropped: "
                    f"bufferSize {SINK_BUFFER_SIZE} exceeded"
                )
        reply["items"] = items
        return reply


class StubPE:
    """`orders_standby`: the passive CrossDCFailover stub (mode 0) and its failover action."""

    def __init__(self, ctx: PEContext, server: ControlServer) -> None:
        self.ctx = ctx
        self.cfg = crossdc.Config.from_params(ctx.params, ctx.dc, default_mode=0)
        self.launched = False
        self.crossdc = crossdc.CrossDC(ctx, self.cfg, on_down=self.failover)
        self.crossdc.start()

    def _trace(self, level: str, msg: str) -> None:
        self.ctx.trace.log(level, "RemoteDC-Watchdog", msg, crossdc=True)

    def failover(self) -> None:
        if self.cfg.mode != 0 or self.launched:
            return
        if "no-takeover" in self.ctx.defects:
            self._trace("INFO", "remote data center is DOWN; not launching the failover application")
            return
        self.launched = True
        from lab import restclient  # lazy: ssl is only needed by the stub's failover action

        dc = self.ctx.dc
        inst = paths.instance_id(dc)
        rest = restclient.for_dc(dc, timeout=30)
        self.crossdc.close_listeners()
        params = self.cfg.as_params()
        params["retainOlderDataSnapshotsAtStartup"] = "true"
        body = {
            "application": "orders",
            "jobName": "orders",
            "jobConfigurationOverlay": {
                "jobConfigOverlays": [
                    {
                        "jobConfig": {
                            "jobName": "orders",
                            "submissionParameters": [{"name": k, "value": v} for k, v in params.items()],
                        }
                    }
                ]
            },
        }
        self._trace("INFO", f"launching the failover application orders through {rest.base}")
        status, job = rest.call("POST", f"/streams/instances/{inst}/jobs", body)
        if status != 201:
            self._trace("ERROR", f"failover submission answered {status}: {job}")
            self.ctx.truth("CrossDCFailover", "failover_failed", status=status, detail=str(job)[:300])
            return
        new_id = str(job["id"])
        self.ctx.truth("CrossDCFailover", "failover_launched", new_job_id=new_id, application="orders")
        self._trace("INFO", f"failover job {new_id} submitted")
        if self._send_special(paths.DC_ADDR[dc], paths.SPECIAL_MESSAGE_PORT, "SendMeDataFromSnapshotFiles"):
            self._trace("INFO", "sent SendMeDataFromSnapshotFiles to the failover job")
        else:
            self._trace("ERROR", "could not reach the failover job's SpecialMessagePort")
        self._trace("INFO", f"cancelling own job {self.ctx.job_id}")
        rest.call("DELETE", f"/streams/instances/{inst}/jobs/{self.ctx.job_id}")

    def _send_special(self, host: str, port: int, text: str, deadline_s: float = 30.0) -> bool:
        end = time.monotonic() + deadline_s
        waiter = threading.Event()
        while time.monotonic() < end:
            try:
                with socket.create_connection((host, port), timeout=2) as s:
                    s.sendall(text.encode() + b"\n")
                    return True
            except OSError:
                waiter.wait(0.02)  # the failover job's PE is starting
        return False


def _bind_retry(addr: tuple[str, int], deadline_s: float = 5.0) -> socket.socket:
    end = time.monotonic() + deadline_s
    waiter = threading.Event()
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(addr)
            s.listen(16)
            return s
        except OSError:
            s.close()
            if time.monotonic() > end:
                raise
            waiter.wait(0.05)


def start(ctx: PEContext, server: ControlServer) -> None:
    spec = APPS[ctx.app]
    server.pe_in_ops = list(spec.pe_in_ops.get(ctx.index, ()))
    server.pe_out_ops = list(spec.pe_out_ops.get(ctx.index, ()))
    if ctx.app == "orders":
        if ctx.index == 0:
            SourcePE(ctx, server)
        elif ctx.index == 1:
            AggregatorPE(ctx, server)
        else:
            SinkPE(ctx, server)
    elif ctx.app == "orders_standby":
        StubPE(ctx, server)
    else:
        raise SystemExit(f"unknown application {ctx.app}")
