"""PE behaviour of the lab's keyed applications (`orders`, `telemetry`; see `lab.appspec.KeyedLogic`): PE 0 the
EndpointSource, PE 1 the stateful operator fused with the CrossDCFailover composite and SpecialMessagePort,
PE 2 the EndpointSink. What differs between the applications (operator names, fields, the state per key, the
output) comes from the application's `KeyedLogic`; `lab.apps` picks the class for a PE.

Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
import time
from collections import deque
from typing import Any

from lab import clock, crossdc, crossdc_composite, paths
from lab.appspec import KeyedLogic, decode_state, encode_state
from lab.peruntime import ControlServer, Downstream, PEContext

SPECIAL_OP = "SpecialMessagePort"
SINK_BUFFER_SIZE = 1000  # EndpointSink bufferSize default
CORRUPT_AT = 50  # defect corrupt-output: the 50th, 150th, ... tuple received (drop-sink takes the 100th, ...)
MALFORMED_AT = 75  # defect malformed-output: after the 75th, 175th, ... tuple received, a malformed one (extra)


def _bool(v: str) -> bool:
    return v.strip().lower() in ("true", "1", "yes")


class SourcePE:
    """PE 0: the EndpointSource (`OrdersIn` of orders, `Readings` of telemetry)."""

    def __init__(self, ctx: PEContext, server: ControlServer, logic: KeyedLogic) -> None:
        assert ctx.downstream_port is not None
        self.ctx = ctx
        self.op = logic.source_op
        self.down = Downstream(ctx.downstream_port, ctx.metrics)
        server.handlers["inject"] = self.inject

    def inject(self, msg: dict[str, Any]) -> dict[str, Any]:
        items = [i for i in msg.get("items", []) if isinstance(i, dict)]
        self.down.send(items)
        self.ctx.metrics.inc(self.op, "out", len(items))
        return {"accepted": len(items)}


# Roles of the stateful operator (the application's own fencing, see AggregatorPE)
ACTIVE = "active"
HOLDING = "holding"
STANDBY = "standby"

REORDER_EVERY = 50  # defect reorder: every 50th output is emitted after the next output of its key
REORDER_MAX_HOLD_S = 0.5
OUTBOX_SIZE = 100  # defect duplicate-replay: outputs carried in each snapshot and re-emitted on restore
RESTORE_WAIT_S = 30.0  # a failover job processes its queued input from an empty state after this long
EARLY_INPUT_WAIT_S = 5.0  # defect early-input: how long the replay waits for the first input


class AggregatorPE(crossdc_composite.CrossDCApp):
    """PE 1: the stateful operator (`Aggregator` of orders, `Peak` of telemetry) fused with the CrossDCFailover
    composite (aliases `OrdersXDC`, `TelemetryXDC`) and SpecialMessagePort.

    State per key: `[count, value]` (`logic`: orders keeps the sum of `amount`, telemetry the highest
    `reading`). The snapshot blob is the SPL serialisation of `(taken_at, outbox, {key: [count, value]})`
    (`appspec.encode_state`).
    A restored snapshot is merged per key, keeping the more advanced copy (the higher count); a stood-down
    aggregator takes the remote's state as it is. A snapshot of another operator (its snapshot origin is not
    this application's stateful operator, e.g. a stored file of the other lab application) is not restored.

    No fencing by default, like the toolkit and its samples: after a partition or a hang both DCs may run
    and emit (split brain), and after the heal both replicate to each other.

    Fencing (submission parameter `fencing=true`, default false: an application that fences itself; active/
    passive only, i.e. the remote never replicated to this job before contact was lost): after this PE was
    paused long enough for the remote to report it DOWN (`max((M-1)*H, 2*H, 0.5 s)`), or after the remote was
    reported DOWN and then UP again, the aggregator holds its output until it knows whether the remote took
    over. A remote that now replicates (a type-2 snapshot) is an active: the aggregator stands down (drops the
    held output, stops emitting and replicating, retracts its snapshot at the remote, keeps receiving the
    remote's snapshots). The same
    happens when a remote that was UP for a whole decision window without replicating starts to replicate.
    A remote that only heartbeats for D + 2H (or that goes DOWN) did not take over: the held output is
    emitted. A stood-down aggregator becomes active again, with the remote's last snapshot as its state,
    when the remote goes DOWN. Defect `split-brain` disables all of this (it only matters with fencing on).

    Restore before input: a job started with `retainOlderDataSnapshotsAtStartup=true` (the failover job the
    passive stub submits, or an active restarted after a dual outage) queues its input, unprocessed, until
    its stored state is back (the stub's SendMeDataFromSnapshotFiles replay, or a snapshot returned to its
    origin, type 4), then processes the queue in arrival order. Without either within RESTORE_WAIT_S it
    processes the queue from an empty state and says so in its trace.
    """

    def __init__(self, ctx: PEContext, server: ControlServer, logic: KeyedLogic) -> None:
        assert ctx.downstream_port is not None
        self.ctx = ctx
        self.logic = logic
        self.op = logic.op
        self.lock = threading.Lock()
        self.state: dict[str, list[Any]] = {}
        self.first_output_done = False
        self.down = Downstream(ctx.downstream_port, ctx.metrics)
        self.role = ACTIVE
        self.suspect = False  # the remote was reported DOWN: it may take over meanwhile
        self.peer_active = False  # the remote replicated to us while in contact: active/active
        self.remote_up_since: float | None = None  # monotonic time of the remote's last UP
        self.hold_deadline: float | None = None
        self.held: list[dict[str, Any]] = []
        self.standby_drops = 0
        self.outbox: deque[dict[str, Any]] = deque(maxlen=OUTBOX_SIZE)
        self.reorder_n = 0
        self.reorder_slot: dict[str, tuple[dict[str, Any], float]] = {}
        self.fencing = _bool(ctx.param("fencing", "false")) and "split-brain" not in ctx.defects
        cfg = crossdc.Config.load(
            ctx.dc, ctx.param("configFileName", ""), crossdc.read_app_config(ctx.dc), logic.main_composite
        )
        self.cfg = cfg
        # a failover job: input waits for the replay of the stored snapshots (see the class docstring)
        # (defect early-input: it does not wait, so some keys restart from an empty state)
        self.queued: list[dict[str, Any]] | None = [] if cfg.retain and "early-input" not in ctx.defects else None
        self.restore_deadline = time.monotonic() + RESTORE_WAIT_S
        self.input_seen = threading.Event()
        self.crossdc = crossdc_composite.CrossDC(ctx, cfg, self, logic.xdc)
        server.on_stream = self.process
        self.crossdc.start()
        port = int(ctx.param("specialMessagePort", str(paths.SPECIAL_MESSAGE_PORT)))
        self.special = _bind_retry((paths.DC_ADDR[ctx.dc], port))
        self._register_name(f"{paths.DC_ADDR[ctx.dc]}:{port}")
        threading.Thread(target=self._special_loop, name=SPECIAL_OP, daemon=True).start()

    def _register_name(self, value: str) -> None:
        """The TCPSource `name: "SpecialMessagePort"` registers its address in the instance's name service
        (`streamtool getnsentry SpecialMessagePort --jobs <id>`); the entry goes when the PE is stopped."""
        entry = paths.nameservice_dir(self.ctx.dc) / f"{self.ctx.job_id}.{SPECIAL_OP}"
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(f".{entry.name}.{os.getpid()}.tmp")
        tmp.write_text(value + "\n", encoding="utf-8")
        os.replace(tmp, entry)

        def unregister(signum: int, _frame: Any) -> None:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)  # end as the signal would have ended the PE

        signal.signal(signal.SIGTERM, unregister)

    def _trace(self, level: str, msg: str) -> None:
        self.ctx.trace.log(level, self.op, msg)

    # ------------------------------------------------------------------ tuples
    def process(self, items: list[dict[str, Any]]) -> None:
        self.crossdc.check_pause()
        with self.lock:
            self.ctx.metrics.inc(self.op, "in", len(items))
            if self.queued is not None:
                if not self.queued:
                    self._trace("INFO", "queueing input until the stored snapshots are restored")
                self.queued.extend(items)
                return
            self._process(items)
        self.input_seen.set()  # processed (defect early-input: the late replay may land now)

    def _process(self, items: list[dict[str, Any]]) -> None:
        """Update the state and emit (caller holds the lock). A PE stopped in the middle of this (after its
        pause check) holds the output like any other after a pause, instead of emitting it beside a remote
        that may have taken over meanwhile."""
        outs: list[dict[str, Any]] = []
        if self.role == STANDBY:
            if not self.standby_drops:
                self._trace("WARN", "standing by: input tuples are not processed")
            self.standby_drops += len(items)
            return
        logic = self.logic
        for item in items:
            key = str(item.get(logic.key_field, ""))
            st = self.state.get(key)
            if st is None:
                st = self.state[key] = logic.initial()
            logic.update(st, item)
            outs.append(logic.output(item, st, self.ctx.dc, clock.now()))
        if "duplicate-replay" in self.ctx.defects:
            self.outbox.extend(outs)
        if "reorder" in self.ctx.defects:
            outs = self._reorder(outs)
        if self._paused_mid_call():
            self._hold("this PE was paused while it processed input: the remote may have taken over")
            self.hold_deadline = None  # decided after the next heartbeat from the remote
        if self.role == HOLDING:
            self.held.extend(outs)
            return
        self._emit(outs)
        first = bool(outs) and not self.first_output_done
        self.first_output_done = self.first_output_done or bool(outs)
        if first:  # under the lock: the truth log sees the first output before any later one
            self.ctx.truth(
                self.op,
                "first_output",
                launch_count=self.ctx.launch_count,
                key=outs[0].get(self.logic.key_field),
                id=outs[0].get(self.logic.id_field),
                count_for_key=self.logic.count_of(outs[0]),
            )

    def _emit(self, outs: list[dict[str, Any]]) -> None:
        """Send downstream (caller holds the lock, so the output order is the processing order)."""
        if outs:
            self.down.send(outs)
            self.ctx.metrics.inc(self.op, "out", len(outs))

    def _reorder(self, outs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Defect `reorder`: hold back every REORDER_EVERY-th output until the next output of its key."""
        result: list[dict[str, Any]] = []
        now = time.monotonic()
        for out in outs:
            key = str(out.get(self.logic.key_field, ""))
            held = self.reorder_slot.pop(key, None)
            self.reorder_n += 1
            if held is None and self.reorder_n % REORDER_EVERY == 0:
                self.reorder_slot[key] = (out, now)
                continue
            result.append(out)
            if held is not None:
                result.append(held[0])
        result += self._expired_reorder_slots(now)
        return result

    def _expired_reorder_slots(self, now: float) -> list[dict[str, Any]]:
        old = [k for k, (_, t) in self.reorder_slot.items() if now - t > REORDER_MAX_HOLD_S]
        return [self.reorder_slot.pop(k)[0] for k in old]

    # ------------------------------------------------------------------ the composite's streams
    def snapshot(self) -> tuple[str, bytes, dict[str, Any]] | None:
        with self.lock:
            if self.role == STANDBY:
                return None
            taken_at = time.time()
            state = {k: [v[0], v[1]] for k, v in self.state.items()}
            outbox = list(self.outbox) if "duplicate-replay" in self.ctx.defects else []
        blob = encode_state(state, taken_at, outbox)
        info = {"keys": len(state), "total_count": sum(v[0] for v in state.values()), "taken_at": taken_at}
        return self.op, blob, info

    def restore(self, msg: crossdc.Message, reason: str) -> dict[str, Any] | None:
        if msg.snapshot_origin != self.op:
            self._trace("WARN", f"not restoring a snapshot of {msg.snapshot_origin} from {msg.origin}: not {self.op}")
            return None
        # the application's deserializeDataItem: damaged number bytes come back as other numbers (see
        # appspec.encode_state); a length past the end of the blob raises. An exception the operator does not
        # catch ends its PE in Streams (no @catch in the samples), and the instance restarts a restartable PE:
        # the lab's process ends the same way, as it does for the toolkit's modulo by zero
        try:
            doc = decode_state(msg.blob)
        except ValueError as exc:
            self._trace("ERROR", f"cannot deserialize the state of {msg.origin}/{msg.snapshot_origin} ({reason}): "
                                 f"{exc}; the PE terminates")
            self.ctx.truth(self.op, "restore_failed", origin=msg.origin, snapshot_origin=msg.snapshot_origin,
                           reason=reason, error=str(exc))
            os.kill(os.getpid(), signal.SIGABRT)
            raise
        incoming: dict[str, list[Any]] = doc.get("state", {})
        replayed: list[dict[str, Any]] = []
        with self.lock:
            replace = self.role == STANDBY
            taken = 0
            for key, entry in incoming.items():
                cur = self.state.get(key)
                if replace or cur is None or int(entry[0]) > int(cur[0]):
                    self.state[key] = self.logic.restored(entry)
                    taken += 1
            if "duplicate-replay" in self.ctx.defects and doc.get("outbox"):
                # defect: the restored state re-emits the output it had already produced
                now = clock.now()
                replayed = [self.logic.restamped(o, self.ctx.dc, now) for o in doc["outbox"]]
                self._emit(replayed)
        self._trace(
            "INFO",
            f"merged state of {msg.origin}/{msg.snapshot_origin} ({reason}): {len(incoming)} keys, {taken} taken"
            + (f"; re-emitted {len(replayed)} outputs" if replayed else ""),
        )
        return {
            "keys": len(incoming),
            "keys_taken": taken,
            "total_count": sum(int(v[0]) for v in incoming.values()),
            "taken_at": doc.get("taken_at"),
            "merge": "replace" if replace else "max_count",
            "reemitted": len(replayed),
        }

    def on_remote_status(self, up: bool, orderly: bool) -> None:
        # the active sample's line (CrossDataCenterFailoverSample.spl; getChannel() is -1 outside a parallel region)
        line = f"UDP channel -1-->{crossdc.status_notification(up)}"
        self.ctx.trace.log("INFO", "Application_Logic", line, crossdc=True)
        # (the lab's own fencing, below, is an application option; the toolkit has none)
        if not self.fencing:
            return
        with self.lock:
            if not up:
                if orderly:
                    return
                if self.role == STANDBY:
                    self._resume("the remote went DOWN while this job stood by")
                elif self.role == HOLDING:
                    self._resume("the remote went DOWN while output was held")
                elif not self.peer_active:
                    self.suspect = True
                return
            self.remote_up_since = time.monotonic()
            if self.suspect and not self.peer_active and self.role == ACTIVE:
                self._hold("the remote is UP again after it was DOWN")
                self.hold_deadline = time.monotonic() + self._decision_window()
            self.suspect = False

    def on_remote_heartbeat(self, msg: crossdc.Message) -> None:
        with self.lock:
            if self.role == HOLDING and self.hold_deadline is None:
                self.hold_deadline = time.monotonic() + self._decision_window()

    def on_remote_snapshot(self, msg: crossdc.Message) -> None:
        retract = False
        with self.lock:
            # a remote that had been UP for a whole decision window without replicating was passive: if it
            # replicates now, it took over (e.g. while this PE hung for less than the pause threshold)
            late = (
                self.remote_up_since is not None
                and time.monotonic() - self.remote_up_since > self._decision_window()
            )
            if (
                self.fencing
                and self.role != STANDBY
                and (self.role == HOLDING or self.suspect or late)
                and not self.peer_active
            ):
                dropped = len(self.held)
                self.held.clear()
                self.role = STANDBY
                self.suspect = False
                self.hold_deadline = None
                self.standby_drops = 0
                retract = True
                self._trace(
                    "WARN",
                    f"{msg.origin} replicates its state: it took over; standing down ({dropped} held outputs dropped)",
                )
                self.ctx.truth(self.op, "stood_down", remote=msg.origin, dropped_outputs=dropped)
            elif self.role == ACTIVE and not self.suspect:
                self.peer_active = True
        if retract:
            self.crossdc.retract_snapshot(self.op)

    def on_local_pause(self, gap_s: float) -> None:
        if not self.fencing:
            return
        with self.lock:
            if self.role == ACTIVE and not self.peer_active and self.crossdc.remote_up:
                self._hold(f"this PE was paused for {gap_s:.1f} s: the remote may have taken over")
                self.hold_deadline = None  # decided after the next heartbeat from the remote

    def on_replayed(self, count: int, reason: str) -> None:
        with self.lock:
            self._release_queue(f"{reason} restored {count} stored snapshot(s)")

    def _release_queue(self, why: str) -> None:
        """Process the input queued while the job waited for its restore (caller holds the lock)."""
        if self.queued is None:
            return
        queued, self.queued = self.queued, None
        self._trace("INFO", f"{why}: processing {len(queued)} queued input tuples")
        self.ctx.truth(self.op, "input_released", reason=why, queued=len(queued))
        self._process(queued)

    def _paused_mid_call(self) -> bool:
        """Fencing applies and this PE stopped running during the current call: a pause was just noticed and
        the application not told yet, or no thread has run since before the call began (the ticker runs every
        interval, so a call that only waited for the lock does not count). Caller holds the lock."""
        if not self.fencing or self.role != ACTIVE or self.peer_active or not self.crossdc.remote_up:
            return False
        if self.crossdc.pause_pending:
            return True
        return self.crossdc.silent_for() > self.crossdc.pause_s

    def on_tick(self) -> None:
        with self.lock:
            if self.queued is not None and time.monotonic() > self.restore_deadline:
                self._trace("WARN", f"no snapshot replay within {RESTORE_WAIT_S:g} s: starting from an empty state")
                self._release_queue("no replay")
            if self.role == HOLDING and self.hold_deadline is not None and time.monotonic() > self.hold_deadline:
                self._resume("the remote did not take over")
            if self.reorder_slot and self.role != HOLDING:
                self._emit(self._expired_reorder_slots(time.monotonic()))

    def _decision_window(self) -> float:
        return self.cfg.snapshot_interval + 2 * self.cfg.hb_interval

    def _hold(self, why: str) -> None:
        self.role = HOLDING
        self._trace("WARN", f"holding output: {why}")
        self.ctx.truth(self.op, "fencing_hold", reason=why)

    def _resume(self, why: str) -> None:
        was = self.role
        held, self.held = self.held, []
        self.role = ACTIVE
        self.hold_deadline = None
        self.suspect = False
        self._emit(held)
        self._trace("INFO", f"active again ({why}); {len(held)} held outputs emitted")
        self.ctx.truth(self.op, "resumed_active", reason=why, previous=was, emitted=len(held))

    # ------------------------------------------------------------------ SpecialMessagePort
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
                    if text == "SendMeDataFromSnapshotFiles" and "early-input" in self.ctx.defects:
                        # defect: the replay lands after the first input, which was processed from empty
                        threading.Thread(target=self._late_replay, args=(text,), daemon=True).start()
                        continue
                    self.crossdc.special_message(text)

    def _late_replay(self, text: str) -> None:
        self.input_seen.wait(EARLY_INPUT_WAIT_S)
        self.crossdc.special_message(text)


class SinkPE:
    """PE 2: the EndpointSink (`OrdersOut` of orders, `Alerts` of telemetry; `<sink>` below).

    `bufferSize` (submission parameter `<sink>.bufferSize`, default 1000): when full the oldest tuple
    is dropped (metric nTuplesDropped, a WARN trace line per overflow episode, a `warning` in the next
    read). `consumingReads` (`<sink>.consumingReads`, default false like the real operator): false
    leaves returned tuples in the buffer for later reads, true removes them. A read with `startTime`
    (epoch ms) returns the buffered tuples that reached the sink at or after it. Each tuple in the buffer
    has a position (0, 1, 2, ... in the order tuples reached this sink; it restarts with the PE) and its
    arrival time (epoch ms); a read returns both in `buffered`, one entry per returned tuple, so that a
    client can tell a re-read of the same buffered tuple (same position and time) from a second tuple with
    the same attributes. The buffer lives in this process: killing the PE loses it.
    """

    def __init__(self, ctx: PEContext, server: ControlServer, logic: KeyedLogic) -> None:
        self.ctx = ctx
        self.logic = logic
        self.op = sink_op = logic.sink_op
        self.lock = threading.Lock()
        self.buffer_size = max(1, int(ctx.param(f"{sink_op}.bufferSize", str(SINK_BUFFER_SIZE))))
        self.consuming = _bool(ctx.param(f"{sink_op}.consumingReads", "false"))
        self.buf: deque[tuple[int, int, dict[str, Any] | str]] = deque()  # (arrival ms, position, tuple|malformed)
        self.next_position = 0
        self.last_dropped_ms = -1
        self.dropped_since_read = 0
        self.overflowing = False
        self.received = 0
        server.on_stream = self.receive
        server.handlers["fetch"] = self.fetch
        ctx.trace.log("INFO", sink_op, f"bufferSize={self.buffer_size} consumingReads={str(self.consuming).lower()}")

    def receive(self, items: list[dict[str, Any]]) -> None:
        now_ms = clock.now_ms()  # the arrival time a read reports (and its startTime compares with)
        dropped = 0
        started_overflow = False
        with self.lock:
            for item in items:
                self.received += 1
                if "drop-sink" in self.ctx.defects and self.received % 100 == 0:
                    continue  # defect: 1 % of the tuples silently vanish
                if "corrupt-output" in self.ctx.defects and self.received % 100 == CORRUPT_AT:
                    # defect: 1 % of the tuples come out with an altered payload field (orders: the crc no
                    # longer fits)
                    item = self.logic.corrupted(item)
                if len(self.buf) >= self.buffer_size:
                    ts, _, _ = self.buf.popleft()
                    self.last_dropped_ms = ts
                    dropped += 1
                self.buf.append((now_ms, self.next_position, item))
                self.next_position += 1
                if "malformed-output" in self.ctx.defects and self.received % 100 == MALFORMED_AT:
                    # defect: after 1 % of the tuples, an extra output that is not a JSON object takes a buffer
                    # position (every real tuple still comes out)
                    if len(self.buf) >= self.buffer_size:
                        ts, _, _ = self.buf.popleft()
                        self.last_dropped_ms = ts
                        dropped += 1
                    self.buf.append((now_ms, self.next_position, f"malformed output {self.next_position}: {{not json"))
                    self.next_position += 1
            if dropped:
                self.dropped_since_read += dropped
                started_overflow = not self.overflowing
                self.overflowing = True
        self.ctx.metrics.inc(self.op, "in", len(items))
        if dropped:
            self.ctx.metrics.inc(self.op, "dropped", dropped)
        if started_overflow:
            self.ctx.trace.log(
                "WARN", self.op, f"bufferSize {self.buffer_size} exceeded: the oldest tuples are being dropped"
            )

    def fetch(self, msg: dict[str, Any]) -> dict[str, Any]:
        start = msg.get("startTime")
        reply: dict[str, Any] = {}
        with self.lock:
            start_ms = int(start) if start is not None else None
            if start_ms is None:
                taken = list(self.buf)
                if self.consuming:
                    self.buf.clear()
                lost = self.dropped_since_read > 0
            else:
                taken = [entry for entry in self.buf if entry[0] >= start_ms]
                if self.consuming:
                    self.buf = deque(entry for entry in self.buf if entry[0] < start_ms)
                lost = self.last_dropped_ms >= start_ms
            if lost:
                reply["warning"] = (
                    f"CDISW5101W Tuples were dropped because the buffer of {self.buffer_size} tuples was full; "
                    "the requested start time precedes the oldest buffered tuple"
                )
            self.dropped_since_read = 0
            self.overflowing = False
        reply["items"] = [item for _, _, item in taken]
        reply["buffered"] = [{"position": pos, "time": ts} for ts, pos, _ in taken]
        return reply


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


