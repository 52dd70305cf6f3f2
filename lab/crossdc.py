"""Cross-DC failover toolkit stand-in: wire codec, heartbeat, watchdog, snapshot sender/receiver.

Wire format and behaviour follow the toolkit (reference §5.3/§5.4):
- plain HTTP POST, `Content-Type: application/octet-stream`, receiver answers 204;
- payload = SPL NativeByteBuffer (little-endian) serialisation of `HeartbeatMessageType`:
  `uint32 type | uint64 cnt | rstring origin | uint64 len + blob | rstring snapshotOrigin`;
- heartbeats to `:<crossDCHttpPort>/crossdcrx/CrossDataCenterReceiverForHB/ports/output/0/inject`, snapshot
  messages (type 2/3/4) to `:<crossDCHttpPort+1>/crossdcrx/CrossDataCenterReceiver[0]/ports/output/0/inject`.

Standard library only.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import queue
import socketserver
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lab import paths
from lab.pe import PEContext

TYPE_HEARTBEAT = 1
TYPE_SNAPSHOT = 2
TYPE_SHUTDOWN = 3
TYPE_RETURNED = 4

HB_PATH = "/crossdcrx/CrossDataCenterReceiverForHB/ports/output/0/inject"


def data_path(channel: int = 0) -> str:
    return f"/crossdcrx/CrossDataCenterReceiver[{channel}]/ports/output/0/inject"


COMPOSITE = "CrossDCFailover"
OP_HB_GENERATOR = f"{COMPOSITE}.HeartbeatSignalGenerator"
OP_HB_PREPARER = f"{COMPOSITE}.HeartbeatMessagePreparer"
OP_SENDER1 = f"{COMPOSITE}.CrossDataCenterSender1"
OP_SENDER2 = f"{COMPOSITE}.CrossDataCenterSender2"
OP_RECEIVER_HB = f"{COMPOSITE}.CrossDataCenterReceiverForHB"
OP_HB_WATCHDOG = f"{COMPOSITE}.RemoteDataCenterHeartbeatWatchdog"
OP_RECEIVER = f"{COMPOSITE}.CrossDataCenterReceiver"
OP_MERGER = f"{COMPOSITE}.RemoteDCDataMerger"

OPERATORS: tuple[tuple[str, str], ...] = (
    (OP_HB_GENERATOR, "spl.utility::Beacon"),
    (OP_HB_PREPARER, "spl.utility::Custom"),
    (OP_SENDER1, "com.teracloud.streams.crossdc.failover::HttpBlobSender"),
    (OP_SENDER2, "com.teracloud.streams.crossdc.failover::HttpBlobSender"),
    (OP_RECEIVER_HB, "com.teracloud.streams.inetserver.receiver::HTTPBLOBInjection"),
    (OP_HB_WATCHDOG, "spl.utility::Custom"),
    (OP_RECEIVER, "com.teracloud.streams.inetserver.receiver::HTTPBLOBInjection"),
    (OP_MERGER, "spl.utility::Custom"),
)

# ---------------------------------------------------------------------------------------------- codec


@dataclass(frozen=True)
class Message:
    type: int
    cnt: int
    origin: str
    blob: bytes = b""
    snapshot_origin: str = ""


def _rstring(s: str) -> bytes:
    b = s.encode("utf-8")
    if len(b) < 128:
        return bytes((len(b),)) + b
    return b"\x80" + struct.pack("<I", len(b)) + b


def encode(msg: Message) -> bytes:
    return b"".join(
        (
            struct.pack("<IQ", msg.type, msg.cnt),
            _rstring(msg.origin),
            struct.pack("<Q", len(msg.blob)),
            msg.blob,
            _rstring(msg.snapshot_origin),
        )
    )


def _read_rstring(data: bytes, pos: int) -> tuple[str, int]:
    if pos >= len(data):
        raise ValueError("truncated rstring")
    first = data[pos]
    pos += 1
    if first < 128:
        n = first
    elif first == 0x80:
        if pos + 4 > len(data):
            raise ValueError("truncated rstring length")
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4
    else:
        raise ValueError(f"bad rstring length byte {first:#x}")
    if pos + n > len(data):
        raise ValueError("truncated rstring bytes")
    return data[pos : pos + n].decode("utf-8"), pos + n


def decode(data: bytes) -> Message:
    if len(data) < 12:
        raise ValueError("payload too short")
    mtype, cnt = struct.unpack_from("<IQ", data, 0)
    origin, pos = _read_rstring(data, 12)
    if pos + 8 > len(data):
        raise ValueError("truncated blob length")
    (blen,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    if pos + blen > len(data):
        raise ValueError("truncated blob")
    blob = data[pos : pos + blen]
    pos += blen
    snap_origin, pos = _read_rstring(data, pos)
    if pos != len(data):
        raise ValueError("trailing bytes")
    return Message(mtype, cnt, origin, blob, snap_origin)


def digest(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()[:16]


# --------------------------------------------------------------------------------------------- config


def _bool(v: str) -> bool:
    return v.strip().lower() in ("true", "1", "yes")


@dataclass
class Config:
    local: str
    mode: int
    http_port: int
    remotes: list[str]
    storage_dir: Path
    init_delay: float
    hb_interval: float
    misses_allowed: int
    snapshot_interval: float
    retain: bool
    send_to_origin: bool
    send_to_all: bool
    always_log_http_errors: bool
    conn_timeout: float
    read_timeout: float
    bind_addr: str

    @classmethod
    def from_params(cls, params: dict[str, str], dc: str, default_mode: int) -> Config:
        def p(name: str, default: str) -> str:
            return params.get(name, default)

        return cls(
            local=p("localDataCenterName", dc),
            mode=int(p("crossDCOperationMode", str(default_mode))),
            http_port=int(p("crossDCHttpPort", str(paths.CROSSDC_HTTP_PORT))),
            remotes=[
                h.strip()
                for h in p("remoteDataCenterApplicationMachineNames", paths.DC_ADDR[paths.other_dc(dc)]).split(",")
                if h.strip()
            ],
            storage_dir=Path(p("dataSnapshotStorageDirectory", str(paths.snapshots_dir(dc)))),
            init_delay=float(p("crossDCInitDelay", "1.0")),
            hb_interval=float(p("heartbeatExchangeInterval", "0.5")),
            misses_allowed=int(p("consecutiveHeartbeatMissesAllowed", "3")),
            snapshot_interval=float(p("dataSnapshotExchangeInterval", "2.0")),
            retain=_bool(p("retainOlderDataSnapshotsAtStartup", "false")),
            send_to_origin=_bool(p("sendDataSnapshotsToOriginDCAtStartup", "false")),
            send_to_all=_bool(p("sendToAllRemoteMachines", "false")),
            always_log_http_errors=_bool(p("alwaysLogHttpErrors", "false")),
            conn_timeout=float(p("httpConnectionTimeout", "25")),
            read_timeout=float(p("httpReadTimeout", "100")),
            bind_addr=paths.DC_ADDR[dc],
        )

    def as_params(self) -> dict[str, str]:
        """The crossdc settings as submission parameters (what the stub hands to the job it launches)."""
        return {
            "localDataCenterName": self.local,
            "crossDCHttpPort": str(self.http_port),
            "remoteDataCenterApplicationMachineNames": ",".join(self.remotes),
            "dataSnapshotStorageDirectory": str(self.storage_dir),
            "crossDCInitDelay": repr(self.init_delay),
            "heartbeatExchangeInterval": repr(self.hb_interval),
            "consecutiveHeartbeatMissesAllowed": str(self.misses_allowed),
            "dataSnapshotExchangeInterval": repr(self.snapshot_interval),
        }


# ------------------------------------------------------------------------------------------- transport

Callback = Callable[[Message], None]
DoneFn = Callable[[int | None, str], None]


class _Receiver(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, addr: tuple[str, int], path: str, callback: Callback) -> None:
        self.path = path
        self.callback = callback
        super().__init__(addr, _InjectHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would call socket.getfqdn(): a DNS lookup the lab must never make
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class _InjectHandler(BaseHTTPRequestHandler):
    """inetserver HTTPBLOBInjection: POST octet-stream -> tuple, reply 204."""

    protocol_version = "HTTP/1.0"
    server: _Receiver

    def _reply(self, status: int, text: str = "") -> None:
        body = text.encode()
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_POST(self) -> None:
        if urlsplit(self.path).path != self.server.path:
            self._reply(404, "not found")
            return
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if ctype != "application/octet-stream":
            self._reply(500, "server error: Content-Type must be application/octet-stream")
            return
        try:
            msg = decode(body)
        except ValueError as exc:
            self._reply(500, f"server error: {exc}")
            return
        self.server.callback(msg)
        self._reply(204)

    def log_message(self, format: str, *args: Any) -> None:
        return


class HttpBlobSender:
    """CrossDataCenterSenderN: one worker thread, first remote host answering 200/204 is sticky."""

    def __init__(self, ctx: PEContext, op: str, cfg: Config, path: str, port: int) -> None:
        self.ctx = ctx
        self.op = op
        self.cfg = cfg
        self.path = path
        self.port = port
        self.sticky: str | None = None
        self._failing = False
        self._q: queue.Queue[tuple[bytes, DoneFn | None]] = queue.Queue(maxsize=1000)
        threading.Thread(target=self._run, name=op, daemon=True).start()

    def submit(self, payload: bytes, done: DoneFn | None = None) -> bool:
        self.ctx.metrics.inc(self.op, "in")
        try:
            self._q.put_nowait((payload, done))
            return True
        except queue.Full:
            self.ctx.metrics.inc(self.op, "dropped")
            return False

    def _run(self) -> None:
        while True:
            payload, done = self._q.get()
            status, host = self._send(payload)
            if done is not None:
                done(status, host)

    def _hosts(self) -> list[str]:
        hosts = list(self.cfg.remotes)
        if self.sticky in hosts and not self.cfg.send_to_all:
            hosts.remove(self.sticky)
            hosts.insert(0, self.sticky)
        return hosts

    def _problem(self, text: str) -> None:
        if not self._failing:
            level = "ERROR" if self.cfg.always_log_http_errors else "INFO"
            self.ctx.trace.log(level, "CrossDCSender", text, crossdc=True)
        self._failing = True

    def _send(self, payload: bytes) -> tuple[int | None, str]:
        ok: tuple[int | None, str] = (None, "")
        for host in self._hosts():
            conn = http.client.HTTPConnection(host, self.port, timeout=self.cfg.conn_timeout)
            try:
                conn.connect()
                if conn.sock is not None:
                    conn.sock.settimeout(self.cfg.read_timeout)
                conn.request("POST", self.path, body=payload, headers={"Content-Type": "application/octet-stream"})
                resp = conn.getresponse()
                resp.read()
                if resp.status in (200, 204):
                    if self._failing:
                        self.ctx.trace.log(
                            "INFO",
                            "CrossDCSender",
                            f"POST to {host}:{self.port} succeeds again",
                            crossdc=True,
                        )
                        self._failing = False
                    self.sticky = host
                    ok = (resp.status, host)
                    if not self.cfg.send_to_all:
                        return ok
                    continue
                self.ctx.metrics.inc(self.op, "out")  # HttpResponseType tuple for a non-2xx reply
                self._problem(f"POST to {host}:{self.port}{self.path} answered {resp.status} {resp.reason}")
            except OSError as exc:  # exceptions are only logged
                self._problem(f"POST to {host}:{self.port}{self.path} failed: {type(exc).__name__}: {exc}")
            finally:
                conn.close()
        return ok


# ---------------------------------------------------------------------------------------------- engine

SnapshotFn = Callable[[], tuple[str, bytes, dict[str, Any]]]
RestoreFn = Callable[[bytes, str, str], dict[str, Any]]


@dataclass
class _State:
    up: bool = False
    ever_up: bool = False
    silent: bool = False  # stopped heartbeating after DOWN
    orderly: bool = False  # OrderlyShutdown received: silent forever, ignore remote traffic
    misses: int = 0
    ticks: int = 0
    hb_cnt: int = 0
    remote: str = ""
    stored_this_run: set[str] = field(default_factory=set)


class CrossDC:
    def __init__(
        self,
        ctx: PEContext,
        cfg: Config,
        *,
        snapshot_fn: SnapshotFn | None = None,
        restore_fn: RestoreFn | None = None,
        on_down: Callable[[], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.cfg = cfg
        self.snapshot_fn = snapshot_fn
        self.restore_fn = restore_fn
        self.on_down = on_down
        self.st = _State()
        self.lock = threading.Lock()
        self.replay_lock = threading.Lock()
        self.stop_event = threading.Event()
        self.servers: list[_Receiver] = []
        self.hb_sender = HttpBlobSender(ctx, OP_SENDER1, cfg, HB_PATH, cfg.http_port)
        self.data_sender = HttpBlobSender(ctx, OP_SENDER2, cfg, data_path(0), cfg.http_port + 1)
        self.snap_every = max(1, round(cfg.snapshot_interval / cfg.hb_interval))

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self.cfg.storage_dir.mkdir(parents=True, exist_ok=True)
        self.servers = [
            self._bind(self.cfg.http_port, HB_PATH, self._on_heartbeat),
            self._bind(self.cfg.http_port + 1, data_path(0), self._on_data),
        ]
        for srv in self.servers:
            threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
        self._trace(
            "INFO",
            "Heartbeat-Message-Preparer",
            f"crossDCOperationMode={self.cfg.mode} localDataCenterName={self.cfg.local} "
            f"remote={','.join(self.cfg.remotes)} heartbeatExchangeInterval={self.cfg.hb_interval} "
            f"consecutiveHeartbeatMissesAllowed={self.cfg.misses_allowed} "
            f"dataSnapshotExchangeInterval={self.cfg.snapshot_interval} "
            f"crossDCInitDelay={self.cfg.init_delay}",
        )
        threading.Thread(target=self._ticker, name="crossdc-ticker", daemon=True).start()

    def _bind(self, port: int, path: str, cb: Callback) -> _Receiver:
        deadline = time.monotonic() + 5.0
        waiter = threading.Event()
        while True:
            try:
                return _Receiver((self.cfg.bind_addr, port), path, cb)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                waiter.wait(0.05)  # the previous owner of the port is closing it

    def close_listeners(self) -> None:
        for srv in self.servers:
            srv.shutdown()
            srv.server_close()
        self.servers = []

    def _trace(self, level: str, aspect: str, msg: str) -> None:
        self.ctx.trace.log(level, aspect, msg, crossdc=True)

    # ----------------------------------------------------------------- ticks
    def _ticker(self) -> None:
        if self.stop_event.wait(self.cfg.init_delay):
            return
        start = time.monotonic()
        n = 0
        while True:
            try:
                self._tick()
            except Exception as exc:  # keep ticking: the toolkit operators are independent
                self._trace("ERROR", "Heartbeat-Message-Preparer", f"tick failed: {exc!r}")
            n += 1
            delay = start + n * self.cfg.hb_interval - time.monotonic()
            if delay < 0:  # fell behind (machine overloaded): resynchronise, do not burst
                n += int(-delay // self.cfg.hb_interval) + 1
                delay = start + n * self.cfg.hb_interval - time.monotonic()
            if self.stop_event.wait(delay):
                return

    def _tick(self) -> None:
        m = self.ctx.metrics
        m.inc(OP_HB_GENERATOR, "out")
        m.inc(OP_HB_PREPARER, "in")
        with self.lock:
            st = self.st
            st.ticks += 1
            first = st.ticks == 1
            if st.orderly:
                return
            hb: bytes | None = None
            if not st.silent:
                st.hb_cnt += 1
                hb = encode(Message(TYPE_HEARTBEAT, st.hb_cnt, self.cfg.local))
            st.misses += 1
            missed = st.misses - 1 if st.up and st.misses >= 2 else 0
            went_down = False
            if st.up and st.misses > self.cfg.misses_allowed:
                st.up = False
                st.silent = True
                went_down = True
            misses = st.misses
            snapshot_due = (
                self.cfg.mode == 1 and st.up and self.snapshot_fn is not None and st.ticks % self.snap_every == 0
            )
            remote = st.remote
        if first and not (self.cfg.retain or self.cfg.send_to_origin):
            self._delete_old_snapshots()
        if hb is not None:
            m.inc(OP_HB_PREPARER, "out")
            self.hb_sender.submit(hb)
        if missed:
            self.ctx.truth(OP_HB_WATCHDOG, "heartbeat_missed", remote=remote, consecutive=missed)
        if went_down:
            self._went_down(remote, misses)
        if snapshot_due:
            self._send_snapshot()

    def _delete_old_snapshots(self) -> None:
        removed = 0
        for f in self.cfg.storage_dir.glob("*.snapshot"):
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
                removed += 1
        self._trace("INFO", "RemoteDC-Watchdog", f"deleted {removed} older data snapshot file(s) at startup")

    def _send_snapshot(self) -> None:
        assert self.snapshot_fn is not None
        snapshot_origin, blob, info = self.snapshot_fn()
        with self.lock:
            cnt = self.st.ticks
        payload = encode(Message(TYPE_SNAPSHOT, cnt, self.cfg.local, blob, snapshot_origin))
        self.ctx.metrics.inc(OP_HB_PREPARER, "out")
        dig = digest(blob)

        def done(status: int | None, host: str) -> None:
            if status is not None:
                self.ctx.truth(
                    OP_SENDER2,
                    "snapshot_sent",
                    to=host,
                    cnt=cnt,
                    snapshot_origin=snapshot_origin,
                    bytes=len(payload),
                    digest=dig,
                    **info,
                )

        self.data_sender.submit(payload, done)

    def _went_down(self, remote: str, misses: int) -> None:
        self._trace(
            "WARN",
            "RemoteDC-Heartbeat-Watchdog",
            f"remote data center {remote or '?'} is DOWN after {misses} missed heartbeats",
        )
        self.ctx.metrics.inc(OP_HB_WATCHDOG, "out")
        self.ctx.truth(OP_HB_WATCHDOG, "remote_down", remote=remote, misses=misses, mode=self.cfg.mode)
        if self.cfg.mode == 1:
            with self.lock:
                names = set(self.st.stored_this_run)
                self.st.stored_this_run.clear()
            n = self.replay(names, reason="remote_down")
            self._trace("INFO", "RemoteDC-Watchdog", f"replayed {n} data snapshot(s) of this run")
        else:
            self._trace("INFO", "RemoteDC-Watchdog", "passive mode: keeping the data snapshot files")
        if self.on_down is not None:
            threading.Thread(target=self.on_down, name="on-down", daemon=True).start()

    # ----------------------------------------------------------------- receiving
    def _on_heartbeat(self, msg: Message) -> None:
        m = self.ctx.metrics
        m.inc(OP_RECEIVER_HB, "out")
        with self.lock:
            st = self.st
            if st.orderly:
                return
            m.inc(OP_HB_WATCHDOG, "in")
            st.misses = 0
            st.remote = msg.origin
            came_up = not st.up
            first_contact = came_up and not st.ever_up
            if came_up:
                st.up = True
                st.ever_up = True
                st.silent = False
        if came_up:
            m.inc(OP_HB_WATCHDOG, "out")
            self._trace(
                "INFO",
                "RemoteDC-Heartbeat-Watchdog",
                f"remote data center {msg.origin} is UP (heartbeat {msg.cnt})",
            )
            self.ctx.truth(OP_HB_WATCHDOG, "remote_up", remote=msg.origin, heartbeat_cnt=msg.cnt)
            if first_contact and self.cfg.send_to_origin:
                self._return_snapshots_to(msg.origin)

    def _return_snapshots_to(self, origin: str) -> None:
        for f in sorted(self.cfg.storage_dir.glob(f"{origin}-*.snapshot")):
            try:
                stored = decode(f.read_bytes())
            except (OSError, ValueError):
                continue
            with self.lock:
                cnt = self.st.ticks
            self.data_sender.submit(
                encode(Message(TYPE_RETURNED, cnt, self.cfg.local, stored.blob, stored.snapshot_origin))
            )
            self._trace("INFO", "SendSnapshotFilesData", f"returned {f.name} to its origin {origin}")

    def _on_data(self, msg: Message) -> None:
        with self.lock:
            if self.st.orderly:
                return
        name = f"{msg.origin}-{msg.snapshot_origin}"
        target = self.cfg.storage_dir / f"{name}.snapshot"
        if msg.type == TYPE_SNAPSHOT:
            if not msg.blob:
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
                return
            if "lose-snapshot" in self.ctx.defects:
                return  # defect: silently discard the snapshot
            data = encode(msg)
            tmp = target.with_name(f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
            with self.lock:
                self.st.stored_this_run.add(name)
            self.ctx.metrics.inc(OP_RECEIVER, "out")
            self.ctx.truth(
                OP_RECEIVER,
                "snapshot_stored",
                origin=msg.origin,
                snapshot_origin=msg.snapshot_origin,
                cnt=msg.cnt,
                file=str(target),
                bytes=len(data),
                digest=digest(msg.blob),
            )
        elif msg.type == TYPE_SHUTDOWN:
            for f in self.cfg.storage_dir.glob(f"{msg.origin}-*.snapshot"):
                with contextlib.suppress(FileNotFoundError):
                    f.unlink()
            with self.lock:
                self.st.stored_this_run = {n for n in self.st.stored_this_run if not n.startswith(f"{msg.origin}-")}
            self._trace("INFO", "RemoteDC-Watchdog", f"orderly shutdown of {msg.origin}: its snapshots dropped")
        elif msg.type == TYPE_RETURNED:
            self._restore(msg, reason="returned_to_origin", source="http")

    # ----------------------------------------------------------------- replay
    def _restore(self, msg: Message, reason: str, source: str) -> bool:
        if self.restore_fn is None or not msg.blob:
            return False
        info = self.restore_fn(msg.blob, msg.origin, msg.snapshot_origin)
        self.ctx.metrics.inc(OP_MERGER, "out")
        self.ctx.truth(
            OP_MERGER,
            "snapshot_restored",
            origin=msg.origin,
            snapshot_origin=msg.snapshot_origin,
            cnt=msg.cnt,
            digest=digest(msg.blob),
            reason=reason,
            source=source,
            **info,
        )
        return True

    def replay(self, names: set[str] | None, reason: str) -> int:
        """Emit stored snapshots into the application (all of them when names is None), then delete them."""
        n = 0
        with self.replay_lock:
            for f in sorted(self.cfg.storage_dir.glob("*.snapshot")):
                if names is not None and f.stem not in names:
                    continue
                try:
                    msg = decode(f.read_bytes())
                except (OSError, ValueError) as exc:
                    self._trace("ERROR", "SendSnapshotFilesData", f"unreadable snapshot {f.name}: {exc}")
                    continue
                if self._restore(msg, reason=reason, source=f.name):
                    n += 1
                    self._trace("INFO", "SendSnapshotFilesData", f"replayed {f.name} ({len(msg.blob)} bytes)")
                with contextlib.suppress(FileNotFoundError):
                    f.unlink()
        return n

    # ----------------------------------------------------------------- special messages
    def special_message(self, text: str) -> None:
        text = text.strip()
        if text == "OrderlyShutdown":
            with self.lock:
                cnt = self.st.ticks
            self.data_sender.submit(encode(Message(TYPE_SHUTDOWN, cnt, self.cfg.local)))
            with self.lock:
                self.st.orderly = True
                self.st.up = False
            self._trace("INFO", "RemoteDC-Watchdog", "OrderlyShutdown: heartbeats stopped, remote traffic ignored")
        elif text == "SendMeDataFromSnapshotFiles":
            n = self.replay(None, reason="SendMeDataFromSnapshotFiles")
            self._trace("INFO", "SendSnapshotFilesData", f"SendMeDataFromSnapshotFiles: replayed {n} snapshot(s)")
        elif text:
            self._trace("WARN", "RemoteDC-Watchdog", f"ignoring unknown special message {text!r}")
