"""The CrossDataCenterFailover composite of one PE: heartbeat signal generator and message preparer,
heartbeat watchdog, snapshot sender/receiver, replay and special messages (reference §5; wire format and
configuration in `lab.crossdc`, HTTP transport in `lab.crossdc_transport`).

Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import crossdc
from lab.crossdc import (
    HB_PATH,
    TYPE_HEARTBEAT,
    TYPE_RETURNED,
    TYPE_SHUTDOWN,
    TYPE_SNAPSHOT,
    Config,
    Message,
    OpNames,
    data_path,
    decode,
    digest,
    encode,
)
from lab.crossdc_transport import Callback, HttpBlobSender, Receiver
from lab.peruntime import PEContext


class CrossDCApp:
    """The application around the composite: what it does with the composite's streams.

    The composite calls these from its own threads; the defaults do nothing (the passive stub has no
    state, no snapshot and nothing to restore).
    """

    def snapshot(self) -> tuple[str, bytes, dict[str, Any]] | None:
        """DataSnapshotSignal: `(dataSnapshotOrigin, blob, truth details)`, or None to send nothing."""
        return None

    def restore(self, msg: Message, reason: str) -> dict[str, Any] | None:
        """A tuple on ProcessDataFromRemoteDC (`msg.type` 2, or 4 when returned to its origin).

        Returns truth details when the application consumed it, None when it has nothing to restore into.
        """
        return None

    def on_remote_status(self, up: bool, orderly: bool) -> None:
        """RemoteDataCenterStatus: True UP, False DOWN. The real stream carries only the boolean; `orderly`
        (the remote announced an orderly shutdown) is the lab's knowledge, for the application's fencing and
        the truth log only."""

    def on_remote_heartbeat(self, msg: Message) -> None:
        """A heartbeat was received (after the watchdog handled it)."""

    def on_remote_snapshot(self, msg: Message) -> None:
        """A non-empty type-2 snapshot arrived from the remote (before it is stored)."""

    def on_local_pause(self, gap_s: float) -> None:
        """This PE did not run for `gap_s` seconds, longer than the remote needs to report it DOWN."""

    def on_tick(self) -> None:
        """Called by the heartbeat signal generator once per tick."""

    def on_replayed(self, count: int, reason: str) -> None:
        """Stored snapshots went to `restore`: a SendMeDataFromSnapshotFiles replay (`count` of them) or one
        returned to its origin after a dual outage (type 4)."""


@dataclass
class _State:
    up: bool = False
    ever_up: bool = False
    orderly: bool = False  # OrderlyShutdown received locally: silent forever, remote traffic ignored
    misses: int = 0
    ticks: int = 0
    hb_cnt: int = 1  # the next heartbeatCnt (heartbeats, snapshots and type 3/4 messages all take one)
    remote: str = ""
    remote_shutdown: str = ""  # origin of a type-3 message received since the remote was last UP
    remote_replicates: bool = False  # a type-2 snapshot was received from the remote during this run
    stored_this_run: set[str] = field(default_factory=set)  # the toolkit's _remoteDataSnapshotNamesMap
    last_alive: float | None = None  # monotonic time this PE last ran crossdc code (after the first tick)


class CrossDC:
    """The CrossDataCenterFailover composite of one PE (the lab fuses it with the application)."""

    def __init__(self, ctx: PEContext, cfg: Config, app: CrossDCApp, ops: OpNames) -> None:
        self.ctx = ctx
        self.ops = ops
        self.cfg = cfg
        self.app = app
        self.st = _State()
        self.lock = threading.Lock()
        self.replay_lock = threading.Lock()
        self.stop_event = threading.Event()
        self.servers: list[Receiver] = []
        self.hb_sender = HttpBlobSender(ctx, self.ops.sender1, cfg, HB_PATH, cfg.http_port)
        self.data_sender = HttpBlobSender(ctx, self.ops.sender2, cfg, data_path(0), cfg.http_port + 1)
        # defect slow-detection: the watchdog tolerates ten times the configured misses
        self.misses_allowed = cfg.misses_allowed * (10 if "slow-detection" in ctx.defects else 1)
        #: a pause of this PE this long may already have made the remote report it DOWN: the remote counts
        #: M+1 ticks from the last heartbeat it received, which was sent up to one interval before the pause
        self.pause_s = max((cfg.misses_allowed - 1) * cfg.hb_interval, 2 * cfg.hb_interval, 0.5)
        self.pause_pending = False  # a pause was noticed and the application is being told (check_pause)

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> None:
        if self.cfg.storage_dir is not None:
            self.cfg.storage_dir.mkdir(parents=True, exist_ok=True)
        self.servers = [
            self._bind(self.cfg.http_port, HB_PATH, self._on_heartbeat),
            self._bind(self.cfg.http_port + 1, data_path(0), self._on_data),
        ]
        for srv in self.servers:
            threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
        self._trace("INFO", "Heartbeat-Message-Preparer", f"configuration: {self.cfg.describe()}")
        threading.Thread(target=self._ticker, name="crossdc-ticker", daemon=True).start()

    def _bind(self, port: int, path: str, cb: Callback) -> Receiver:
        deadline = time.monotonic() + 5.0
        waiter = threading.Event()
        while True:
            try:
                return Receiver((self.cfg.bind_addr, port), path, cb)
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

    @property
    def remote_up(self) -> bool:
        with self.lock:
            return self.st.up

    # ----------------------------------------------------------------- liveness of this PE
    def silent_for(self) -> float:
        """Seconds since any thread of this PE last ran its pause check (the ticker does every interval)."""
        with self.lock:
            last = self.st.last_alive
        return 0.0 if last is None else time.monotonic() - last

    def check_pause(self) -> None:
        """Notice that this PE was not running (SIGSTOP, starvation) long enough for the remote to report it DOWN.

        Called first by every crossdc thread (ticker, receivers) and by the application before it processes
        a batch, so whichever runs first after a pause reports it.
        """
        now = time.monotonic()
        with self.lock:
            last = self.st.last_alive
            if last is not None:
                self.st.last_alive = now
        if last is None:
            return
        gap = now - last
        if gap > self.pause_s:
            self.pause_pending = True  # until the application has heard of it (it may be busy emitting)
            try:
                self._trace("WARN", "RemoteDC-Heartbeat-Watchdog", f"this PE did not run for {gap:.2f} s")
                self.ctx.truth(self.ops.hb_watchdog, "local_pause_detected", gap_s=round(gap, 3))
                self.app.on_local_pause(gap)
            finally:
                self.pause_pending = False

    # ----------------------------------------------------------------- ticks
    def _ticker(self) -> None:
        self.ctx.truth(self.ops.hb_preparer, "init_delay_started", delay_s=self.cfg.init_delay)
        if self.stop_event.wait(self.cfg.init_delay):
            return
        with self.lock:
            self.st.last_alive = time.monotonic()
        start = time.monotonic()
        n = 0
        while True:
            try:
                self._tick()
            except Exception as exc:  # keep ticking: the toolkit operators are independent
                self._trace("ERROR", "Heartbeat-Message-Preparer", f"tick failed: {exc!r}")
            n += 1
            delay = start + n * self.cfg.hb_interval - time.monotonic()
            if delay < 0:  # fell behind (paused or overloaded): resynchronise, do not burst
                n += int(-delay // self.cfg.hb_interval) + 1
                delay = start + n * self.cfg.hb_interval - time.monotonic()
            if self.stop_event.wait(delay):
                return

    def _snapshot_due(self, cnt: int) -> bool:
        """The toolkit's `((heartbeatCnt * (uint64)H) % (uint64)D) == 0` (`crossdc.snapshot_due`): whole
        seconds, so a sub-second H snapshots on every tick. As in the toolkit, the counter also advances for
        the snapshot itself, so the cadence drifts (H=1, D=2: heartbeatCnt 2, 5, 8, ...).

        A sub-second D is a C++ integer modulo by zero, evaluated only while the remote is UP (the `&&`
        short-circuits): the process dies of SIGFPE, which the lab reproduces on its own process.
        """
        try:
            return crossdc.snapshot_due(cnt, self.cfg.hb_interval, self.cfg.snapshot_interval)
        except ZeroDivisionError as exc:
            self._trace("ERROR", "Heartbeat-Message-Preparer", f"lab: {exc}; the process dies of SIGFPE")
            self.ctx.truth(self.ops.hb_preparer, "modulo_by_zero", snapshot_interval=self.cfg.snapshot_interval)
            os.kill(os.getpid(), signal.SIGFPE)
            raise

    def _tick(self) -> None:
        m = self.ctx.metrics
        m.inc(self.ops.hb_generator, "out")
        m.inc(self.ops.hb_preparer, "in")
        self.check_pause()
        with self.lock:
            st = self.st
            st.ticks += 1
            if st.orderly:
                return
            first = st.ticks == 1
            # HeartbeatMessagePreparer: nothing to send while a remote that was seen is DOWN
            hb: bytes | None = None
            snap_cnt: int | None = None
            if not (st.ever_up and not st.up):
                if st.up and self._snapshot_due(st.hb_cnt) and self.cfg.mode == 1:
                    snap_cnt = st.hb_cnt
                    st.hb_cnt += 1
                hb = encode(Message(TYPE_HEARTBEAT, st.hb_cnt, self.cfg.local))
                st.hb_cnt += 1
            # RemoteDataCenterHeartbeatWatchdog: count the tick as a miss until a heartbeat resets it
            missed = 0
            went_down = False
            if st.misses <= self.misses_allowed:
                st.misses += 1
                if st.misses > self.misses_allowed:
                    if st.up:
                        st.up = False
                        went_down = True
                elif st.up and st.misses >= 2:
                    missed = st.misses - 1
            misses = st.misses
            remote = st.remote
        if first and not (self.cfg.retain or self.cfg.send_to_origin) and self.cfg.storage_dir is not None:
            self._delete_old_snapshots()
        if snap_cnt is not None:
            self._send_snapshot(snap_cnt)
        if hb is not None:
            m.inc(self.ops.hb_preparer, "out")
            self.hb_sender.submit(hb)
        if missed:
            self.ctx.truth(self.ops.hb_watchdog, "heartbeat_missed", remote=remote, consecutive=missed)
        if went_down:
            self._went_down(remote, misses)
        self.app.on_tick()

    def _snapshot_file(self, name: str) -> Path:
        """`_dataSnapshotStorageDirectory + "/" + name + ".snapshot"` (with no directory that is `/<name>`)."""
        return Path(f"{self.cfg.storage_dir or ''}/{name}.snapshot")

    def _stored_files(self) -> list[Path]:
        return [] if self.cfg.storage_dir is None else sorted(self.cfg.storage_dir.glob("*.snapshot"))

    def _delete_old_snapshots(self) -> None:
        removed = 0
        for f in self._stored_files():
            with contextlib.suppress(FileNotFoundError):
                f.unlink()
                removed += 1
        self._trace("INFO", "Heartbeat-Message-Preparer", f"deleted {removed} older data snapshot file(s) at startup")

    def _send_snapshot(self, cnt: int) -> None:
        made = self.app.snapshot()
        if made is None:
            return
        snapshot_origin, blob, info = made
        payload = encode(Message(TYPE_SNAPSHOT, cnt, self.cfg.local, blob, snapshot_origin))
        self.ctx.metrics.inc(self.ops.hb_preparer, "out")
        dig = digest(blob)

        def done(status: int | None, host: str) -> None:
            if status is not None:
                self.ctx.truth(
                    self.ops.sender2,
                    "snapshot_sent",
                    to=host,
                    cnt=cnt,
                    snapshot_origin=snapshot_origin,
                    bytes=len(payload),
                    digest=dig,
                    **info,
                )

        self.data_sender.submit(payload, done)

    def retract_snapshot(self, snapshot_origin: str) -> None:
        """Send a zero-length snapshot: the remote deletes its copy of ours."""
        with self.lock:
            cnt = self.st.hb_cnt
            self.st.hb_cnt += 1
        self.data_sender.submit(encode(Message(TYPE_SNAPSHOT, cnt, self.cfg.local, b"", snapshot_origin)))
        self.ctx.truth(self.ops.sender2, "snapshot_retracted", snapshot_origin=snapshot_origin)

    def _went_down(self, remote: str, misses: int) -> None:
        with self.lock:
            orderly = bool(remote) and self.st.remote_shutdown == remote
            replicated = self.st.remote_replicates
        # the watchdog traces nothing on DOWN (the application may: see CrossDCApp.on_remote_status)
        self.ctx.metrics.inc(self.ops.hb_watchdog, "out")
        self.ctx.truth(
            self.ops.hb_watchdog, "remote_down", remote=remote, misses=misses, mode=self.cfg.mode, orderly=orderly
        )
        if self.cfg.mode == 1:
            # RemoteDataCenterWatchdog: replay the snapshots stored during this run (none after a type 3)
            with self.lock:
                names = set(self.st.stored_this_run)
                self.st.stored_this_run.clear()
            n = self.replay(names, reason="remote_down")
            self._trace("INFO", "RemoteDC-Watchdog", f"replayed {n} data snapshot(s) of {remote or '?'}")
            if n or (replicated and not orderly):
                self.ctx.truth(self.ops.merger, "takeover", how="remote_down", remote=remote, snapshots=n)
        else:
            self._trace("INFO", "RemoteDC-Watchdog", "passive mode: keeping the data snapshot files")
        self.app.on_remote_status(False, orderly)

    # ----------------------------------------------------------------- receiving
    def _on_heartbeat(self, msg: Message) -> None:
        self.check_pause()
        m = self.ctx.metrics
        m.inc(self.ops.receiver_hb, "out")
        with self.lock:
            st = self.st
            if st.orderly:
                return
            m.inc(self.ops.hb_watchdog, "in")
            st.misses = 0
            st.remote = msg.origin
            came_up = not st.up
            first_contact = came_up and not st.ever_up
            if came_up:
                st.up = True
                st.ever_up = True
                st.remote_shutdown = ""
        self._trace(
            "INFO",
            "RemoteDC-Heartbeat-Watchdog",
            f"Received the heartbeat message {msg.cnt} with no data snapshot from the data center named {msg.origin}.",
        )
        if came_up:
            m.inc(self.ops.hb_watchdog, "out")  # no trace line of its own on UP either
            self.ctx.truth(self.ops.hb_watchdog, "remote_up", remote=msg.origin, heartbeat_cnt=msg.cnt)
            if first_contact and self.cfg.send_to_origin:
                self._return_snapshots()
            self.app.on_remote_status(True, False)
        self.app.on_remote_heartbeat(msg)

    def _return_snapshots(self) -> None:
        """sendDataSnapshotsToOriginDCAtStartup: on first contact send every stored snapshot back as type 4
        (blob = the stored payload as received), then delete the files."""
        files = self._stored_files()
        for f in files:
            try:
                data = f.read_bytes()
            except OSError as exc:
                self._trace("ERROR", "Heartbeat-Message-Preparer", f"unable to read {f}: {exc}")
                continue
            if not data:
                continue
            with self.lock:
                cnt = self.st.hb_cnt
                self.st.hb_cnt += 1
            self.data_sender.submit(encode(Message(TYPE_RETURNED, cnt, self.cfg.local, data, "")))
            self._trace(
                "ERROR",
                "Heartbeat-Message-Preparer",
                f"During application startup, we sent {len(data)} bytes of the binary data snapshot to the "
                f"remote DC from this file: {f}.",
            )
            try:
                inner_digest = digest(decode(data).blob)
            except ValueError:
                inner_digest = None
            self.ctx.truth(self.ops.sender2, "snapshot_returned", file=str(f), bytes=len(data), digest=inner_digest)
        for f in files:
            with contextlib.suppress(FileNotFoundError):
                f.unlink()

    def _on_data(self, msg: Message) -> None:
        self.check_pause()
        with self.lock:
            if self.st.orderly:
                return
        self.ctx.metrics.inc(self.ops.receiver, "out")
        aspect = "RemoteDC-Watchdog"
        if msg.type == TYPE_SHUTDOWN:
            self._trace(
                "INFO",
                aspect,
                f"Received a remote DC orderly shutdown message with a heartbeat count {msg.cnt} from the data "
                f"center named {msg.origin}.",
            )
            with self.lock:
                names = set(self.st.stored_this_run)
                self.st.stored_this_run.clear()
                self.st.remote_shutdown = msg.origin
            for name in names:
                with contextlib.suppress(FileNotFoundError):
                    self._snapshot_file(name).unlink()
            self.ctx.truth(self.ops.receiver, "orderly_shutdown_received", origin=msg.origin, dropped=sorted(names))
            return
        if msg.type == TYPE_RETURNED:
            self._trace(
                "INFO",
                aspect,
                "During the application startup, received a data snapshot that originally belonged to this DC "
                f"before it went down. Heartbeat count={msg.cnt}, data snapshot size={len(msg.blob)}. It came "
                f"from the remote data center named {msg.origin}.",
            )
            if msg.blob:
                try:
                    inner = decode(msg.blob)
                except ValueError as exc:
                    self._trace("ERROR", aspect, f"unreadable returned snapshot: {exc}")
                    return
                self._restore(
                    Message(TYPE_RETURNED, inner.cnt, inner.origin, inner.blob, inner.snapshot_origin),
                    reason="returned_to_origin",
                    source=f"type 4 from {msg.origin}",
                )
                self.app.on_replayed(1, "returned_to_origin")
            return
        if msg.type != TYPE_SNAPSHOT:
            self._trace("WARN", aspect, f"ignoring a message of type {msg.type} from {msg.origin}")
            return
        name = f"{msg.origin}-{msg.snapshot_origin}"
        target = self._snapshot_file(name)
        if not msg.blob:
            self._trace(
                "INFO",
                aspect,
                f"Received the heartbeat message {msg.cnt} with a zero length data snapshot from the data center "
                f"named {msg.origin}. Data snapshot origin={msg.snapshot_origin}.",
            )
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
            with self.lock:
                self.st.stored_this_run.discard(name)
            return
        self._trace(
            "INFO",
            aspect,
            f"Received the heartbeat message {msg.cnt} with a non-zero length data snapshot from the data center "
            f"named {msg.origin}. Data snapshot origin={msg.snapshot_origin}.",
        )
        with self.lock:
            self.st.remote_replicates = True
        self.app.on_remote_snapshot(msg)
        if "lose-snapshot" in self.ctx.defects:
            return  # defect: silently discard the snapshot
        data = encode(msg)
        tmp = target.with_name(f".{name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            if self.cfg.storage_dir is None:
                raise PermissionError("lab: no dataSnapshotStorageDirectory configured (the toolkit would write to /)")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        except OSError as exc:
            self._trace(
                "ERROR",
                aspect,
                f"Unable to replicate and persist the data snapshot in this file: {target}. Error: {exc}",
            )
            with contextlib.suppress(OSError):
                tmp.unlink()
            with self.lock:
                self.st.stored_this_run.discard(name)
            return
        with self.lock:
            self.st.stored_this_run.add(name)
        self._trace("INFO", aspect, f"Successfully replicated and persisted the data snapshot in this file: {target}")
        self.ctx.truth(
            self.ops.receiver,
            "snapshot_stored",
            origin=msg.origin,
            snapshot_origin=msg.snapshot_origin,
            cnt=msg.cnt,
            file=str(target),
            bytes=len(data),
            digest=digest(msg.blob),
        )

    # ----------------------------------------------------------------- replay
    def _restore(self, msg: Message, reason: str, source: str) -> bool:
        if not msg.blob:
            return False
        info = self.app.restore(msg, reason)
        if info is None:
            return False
        self.ctx.metrics.inc(self.ops.merger, "out")
        self.ctx.truth(
            self.ops.merger,
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
        """Emit stored snapshots into the application (every file when names is None), then delete them."""
        n = 0
        aspect = "SendSnapshotFilesData" if names is None else "RemoteDC-Watchdog"
        with self.replay_lock:
            files = self._stored_files() if names is None else [self._snapshot_file(n) for n in sorted(names)]
            for f in files:
                try:
                    data = f.read_bytes()
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    self._trace("ERROR", aspect, f"Unable to read the binary data snapshot from this file: {f}. {exc}")
                    continue
                if not data:
                    self._trace("ERROR", aspect, f"Skipping the zero length binary data snapshot file: {f}.")
                else:
                    try:
                        msg = decode(data)
                    except ValueError as exc:
                        self._trace("ERROR", aspect, f"unreadable snapshot {f.name}: {exc}")
                        msg = None
                    if msg is not None and self._restore(msg, reason=reason, source=f.name):
                        n += 1
                        self._trace("INFO", aspect, f"replayed {f.name} ({len(msg.blob)} bytes)")
                with contextlib.suppress(FileNotFoundError):
                    f.unlink()
        return n

    # ----------------------------------------------------------------- special messages
    def special_message(self, text: str) -> None:
        text = text.strip()
        if text == "OrderlyShutdown":
            with self.lock:
                self.st.orderly = True
                self.st.up = False
                cnt = self.st.hb_cnt
                self.st.hb_cnt += 1
            self.data_sender.submit(encode(Message(TYPE_SHUTDOWN, cnt, self.cfg.local)))
            self._trace(
                "ERROR",
                "Heartbeat-Message-Preparer",
                f"We sent an orderly shutdown message from the local DC {self.cfg.local} to the remote DC.",
            )
            self.ctx.truth(self.ops.hb_preparer, "orderly_shutdown_sent", cnt=cnt)
        elif text == "SendMeDataFromSnapshotFiles":
            n = self.replay(None, reason="SendMeDataFromSnapshotFiles")
            self.app.on_replayed(n, "SendMeDataFromSnapshotFiles")
            self._trace("INFO", "SendSnapshotFilesData", f"SendMeDataFromSnapshotFiles: replayed {n} snapshot(s)")
            self.ctx.truth(self.ops.merger, "takeover", how="SendMeDataFromSnapshotFiles", snapshots=n)
        elif text:
            self._trace("WARN", "RemoteDC-Watchdog", f"ignoring unknown special message {text!r}")
