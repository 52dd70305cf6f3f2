"""PE process runtime: the objects every PE process (`python -m lab.pe`, see `lab/pe.py`) is made of — its
context and metrics, trace file, control server and downstream tuple stream. `lab.apps` builds on them; the
instance service reads `TRACE_LEVELS`.

A PE inherits one listening TCP socket (127.0.0.1, in its DC's netns) from its instance service. The same
socket serves the instance's control requests (JSON lines: ping, metrics, inject, fetch) and upstream PEs'
tuple streams (first line `{"cmd":"stream"}`, then one JSON line per batch `{"items":[...]}`). Because the
instance keeps the listening socket across relaunches, upstream connections made while a PE restarts wait
in the backlog instead of failing.

Standard library only.
"""

from __future__ import annotations

import json
import os
import select
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from lab import clock, paths, truth

Handler = Callable[[dict[str, Any]], dict[str, Any]]

#: pseudo operator name under which the PE-level port counters are kept
PE_PORTS = "__pe_ports__"


def iso_now() -> str:
    """The trace line time, as this data center reports it (:mod:`lab.clock`)."""
    t = clock.now()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


class Metrics:
    """Per-operator counters: `in` (input 0 nTuplesProcessed), `out` (output 0 nTuplesSubmitted),
    `dropped` (nTuplesDropped), `queued` (nTuplesQueued)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._c: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def inc(self, op: str, metric: str, n: int = 1) -> None:
        with self._lock:
            self._c[op][metric] += n

    def set(self, op: str, metric: str, value: int) -> None:
        with self._lock:
            self._c[op][metric] = value

    def get(self, op: str, metric: str) -> int:
        with self._lock:
            return self._c[op][metric]

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {op: dict(v) for op, v in self._c.items()}


#: Streams tracing levels, least verbose first (`-C tracing=info`, overlay `jobConfig.tracing`)
TRACE_LEVELS: tuple[str, ...] = ("off", "error", "warn", "info", "debug", "trace")
_LINE_LEVEL = {"ERROR": 1, "WARN": 2, "INFO": 3, "DEBUG": 4, "TRACE": 5}


class Trace:
    """Application trace file of the PE (served as `/pes/{p}/applicationTrace`), filtered by tracing level."""

    def __init__(self, path: Path, level: str = "info", echo: TextIO | None = None) -> None:
        self._lock = threading.Lock()
        self._max = TRACE_LEVELS.index(level) if level in TRACE_LEVELS else TRACE_LEVELS.index("info")
        self._f = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - open for the PE's life
        self._echo = echo  # a standalone application also traces to its console

    def log(self, level: str, aspect: str, msg: str, crossdc: bool = False) -> None:
        if _LINE_LEVEL.get(level, 3) > self._max:
            return
        marker = "_XXXXX_ " if crossdc else ""
        line = f"{iso_now()} {level} [{aspect}] {marker}{msg}\n"
        with self._lock:
            self._f.write(line)
            if self._echo is not None:
                self._echo.write(line)
                self._echo.flush()


class PEContext:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.dc: str = cfg["dc"]
        clock.bind(self.dc)  # every time this process reports is this data center's (lab skew)
        self.job_id: str = cfg["job_id"]
        self.job_name: str = cfg["job_name"]
        self.app: str = cfg["app"]
        self.pe_id: str = cfg["pe_id"]
        self.index: int = cfg["index"]
        self.launch_count: int = cfg["launch_count"]
        self.params: dict[str, str] = cfg["params"]
        self.downstream_port: int | None = cfg.get("downstream_port")
        self.pe_dir = Path(cfg["pe_dir"])
        self.metrics = Metrics()
        self.trace = Trace(self.pe_dir / "trace.log", str(cfg.get("tracing") or "info"))
        self.defects = paths.active_defects()

    def param(self, name: str, default: str) -> str:
        return self.params.get(name, default)

    def truth(self, component: str, event: str, **details: Any) -> None:
        truth.emit(
            self.dc,
            component,
            event,
            job_id=self.job_id,
            job_name=self.job_name,
            pe_id=self.pe_id,
            **details,
        )


class ControlServer:
    def __init__(self, ctx: PEContext, listener: socket.socket) -> None:
        self.ctx = ctx
        self.listener = listener
        self.handlers: dict[str, Handler] = {"ping": self._ping, "metrics": self._metrics}
        self.on_stream: Callable[[list[dict[str, Any]]], None] | None = None
        self.pe_in_ops: list[str] = []
        self.pe_out_ops: list[str] = []

    def _ping(self, msg: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "pid": os.getpid(), "seq": msg.get("seq")}

    def _metrics(self, _msg: dict[str, Any]) -> dict[str, Any]:
        ops = self.ctx.metrics.snapshot()
        return {
            "operators": ops,
            "pe": {
                "nTuplesProcessed": sum(ops.get(o, {}).get("in", 0) for o in self.pe_in_ops),
                "nTuplesSubmitted": sum(ops.get(o, {}).get("out", 0) for o in self.pe_out_ops),
            },
            "ports": ops.get(PE_PORTS, {}),
        }

    def serve_forever(self) -> None:
        while True:
            conn, _ = self.listener.accept()
            threading.Thread(target=self._serve_conn, args=(conn,), daemon=True).start()

    def _serve_conn(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as f:
            streaming = False
            for line in f:
                try:
                    msg = json.loads(line)
                except ValueError:
                    return
                if streaming:
                    self.ctx.metrics.inc(PE_PORTS, "in_bytes", len(line))
                    self.ctx.metrics.inc(PE_PORTS, "in_tuples", len(msg.get("items", [])))
                    if self.on_stream is not None:
                        try:
                            self.on_stream(msg.get("items", []))
                        except Exception as exc:  # tuples of this batch are lost, like on a PE failure
                            self.ctx.trace.log("ERROR", "PE", f"processing a batch failed: {exc!r}")
                    continue
                cmd = msg.get("cmd")
                if cmd == "stream":
                    streaming = True
                    continue
                handler = self.handlers.get(str(cmd))
                try:
                    reply = handler(msg) if handler else {"error": f"unknown command {cmd}"}
                except Exception as exc:
                    reply = {"error": f"{type(exc).__name__}: {exc}"}
                try:
                    f.write(json.dumps(reply, separators=(",", ":")).encode() + b"\n")
                    f.flush()
                except OSError:
                    return


class Downstream:
    """Tuple stream to the next PE of the job (JSON lines over TCP on loopback): PE output port 0."""

    def __init__(self, port: int, metrics: Metrics) -> None:
        self.port = port
        self.metrics = metrics
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b'{"cmd":"stream"}\n')
        return s

    @staticmethod
    def _peer_closed(sock: socket.socket) -> bool:
        """The downstream PE never writes on a tuple stream: readable means it closed (it died or restarted)."""
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def send(self, items: list[dict[str, Any]]) -> None:
        if not items:
            return
        data = json.dumps({"items": items}, separators=(",", ":")).encode() + b"\n"
        with self._lock:
            for attempt in range(2):
                try:
                    if self._sock is not None and self._peer_closed(self._sock):
                        self._sock.close()
                        self._sock = None
                        self.metrics.inc(PE_PORTS, "broken")
                    if self._sock is None:
                        self._sock = self._connect()
                    self._sock.sendall(data)
                    self.metrics.inc(PE_PORTS, "out_tuples", len(items))
                    self.metrics.inc(PE_PORTS, "out_bytes", len(data))
                    return
                except OSError:
                    if self._sock is not None:
                        self._sock.close()
                        self.metrics.inc(PE_PORTS, "broken")
                    self._sock = None
                    if attempt == 1:
                        raise
