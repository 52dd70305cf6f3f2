"""Watches the Cross-DC failover toolkit from outside, as on a real deployment.

Signals, per data center, polled over the REST management API:

- **job list**: the application's job appearing as ``running`` in a DC where it was not running when
  watching began is a **takeover** (active/passive); jobs appearing and vanishing are journaled;
- **operator metrics** of the toolkit's operators (output port 0 ``nTuplesSubmitted``):
  ``RemoteDataCenterHeartbeatWatchdog`` = remote status transitions (1st UP, then DOWN, UP, ...);
  ``CrossDataCenterReceiver`` = snapshots received and stored (replication);
  ``RemoteDCDataMerger`` = snapshots replayed into the application (in a job that was already running:
  a takeover in place, active/active);
- **PE application traces**: the toolkit's ``_XXXXX_`` lines (aspect, message, the DC's own timestamp),
  journaled as ``toolkit.trace``; they date UP/DOWN precisely and stand in for the watchdog metric when a
  deployment does not expose it;
- **PE states** of the application's jobs (status, launchCount), journaled on change.

Every event of one look carries the instant of that look (``at``). Where the deployment stamped the change
itself (trace line time, job ``submitTime``) and that stamp falls inside the window in which the change must
have happened (after the previous look, before this one, give or take ``clock_tolerance`` and the bound of
the data center's clock offset), it is added as ``happened_at``: on the tester's timeline, that is the data
center's stamp minus its estimated clock offset (:mod:`support.clocks`). When the toolkit says nothing,
takeover is inferred from which DC emits output (``inferred: true``).
"""

from __future__ import annotations

import calendar
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from support.clocks import Clocks
from support.orchestration import Journal
from support.streams.errors import StreamsError
from support.streams.rest import is_app_job

log = logging.getLogger(__name__)

#: the toolkit's operators a tester reads, by role (their names are ``<alias>.<operator>``)
WATCHDOG = "RemoteDataCenterHeartbeatWatchdog"
RECEIVER = "CrossDataCenterReceiver"  # one per sender/receiver pair: CrossDataCenterReceiver[0], [1], ...
MERGER = "RemoteDCDataMerger"
TOOLKIT_OPERATORS = (WATCHDOG, RECEIVER, MERGER)


@dataclass(frozen=True)
class ToolkitNames:
    """How one application embeds the toolkit: the alias of its CrossDataCenterFailover composite and the trace
    lines its own logic writes on a remote status change (the toolkit writes none)."""

    alias: str = "CrossDCFailover"
    trace_up: str = "Received a notification about the remote data center coming up"
    trace_down: str = "Received a notification about the remote data center going down"

    @classmethod
    def of(cls, settings: Any) -> ToolkitNames:
        """From ``applications.<app>.crossdc`` (:class:`support.config.settings.ToolkitSettings`)."""
        return cls(str(settings.alias), str(settings.trace_up), str(settings.trace_down))

    def role(self, operator_name: str) -> str | None:
        """The role (WATCHDOG, RECEIVER, MERGER) of an operator of the application's job, or None.

        Matches ``<alias>.<operator>`` with or without a parallel-channel index (``...Receiver[0]``)."""
        prefix = f"{self.alias}."
        if not operator_name.startswith(prefix):
            return None
        base = re.sub(r"\[\d+\]$", "", operator_name[len(prefix):])
        return base if base in TOOLKIT_OPERATORS else None

    def operator(self, role: str, channel: int | None = 0) -> str:
        """The operator's full name (``channel`` only for the per-pair operators)."""
        suffix = f"[{channel}]" if role == RECEIVER and channel is not None else ""
        return f"{self.alias}.{role}{suffix}"

    def up(self, message: str) -> bool:
        return re.search(self.trace_up, message) is not None

    def down(self, message: str) -> bool:
        return re.search(self.trace_down, message) is not None

TRACE_LINE = re.compile(r"^(?P<stamp>.+?)\s+(?P<level>[A-Z]+)\s+\[(?P<aspect>[^\]]+)\]\s+_XXXXX_\s*(?P<message>.*)$")
ANY_TRACE_LINE = re.compile(r"^(?P<stamp>\S+)\s+(?P<level>[A-Z]+)\s+\[(?P<aspect>[^\]]+)\]\s+(?P<message>.*)$")
STREAMS_ANY_TRACE = re.compile(r"^(?P<stamp>\d{1,2} \w{3} \d{4} \d{2}:\d{2}:\d{2}\.\d+[+-]\d{4})\s+(?P<message>.*)$")
STREAMS_TRACE = re.compile(
    r"^(?P<stamp>\d{1,2} \w{3} \d{4} \d{2}:\d{2}:\d{2}\.\d+[+-]\d{4}).*?_XXXXX_\s*(?P<message>.*)$")
#: a look at another data center at most this old (s) tells whether it still ran the application at a takeover
ALSO_RUNNING_LOOK = 1.0
#: trace lines too routine to journal (one per heartbeat)
ROUTINE_TEXT = re.compile(r"heartbeat message \d+ with no data snapshot|^sen[dt]\w* heartbeat", re.IGNORECASE)


class RestApi(Protocol):
    def jobs(self, name: str | None = None) -> list[dict[str, Any]]: ...

    def operators(self, job: dict[str, Any]) -> list[dict[str, Any]]: ...

    def pes(self, job: dict[str, Any]) -> list[dict[str, Any]]: ...

    def get(self, url: str, **params: Any) -> Any: ...

    def metrics(self, element_or_url: Mapping[str, Any] | str) -> dict[str, int]: ...

    def pe_trace(self, pe: Mapping[str, Any]) -> str: ...


def parse_trace_time(stamp: str) -> float | None:
    """Epoch seconds of a trace line's timestamp: ISO 8601 (``2026-11-26T06:40:01.123Z``) or the Streams
    trace form (``26 Nov 2026 06:40:01.123+0000``)."""
    stamp = stamp.strip()
    match = re.match(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$", stamp)
    if match:
        date, hh, mm, ss, frac, zone = match.groups()
        year, month, day = (int(x) for x in date.split("-"))
        base = calendar.timegm((year, month, day, int(hh), int(mm), int(ss), 0, 0, 0))
        offset = _zone_offset(zone)
        return base + (float(f"0.{frac}") if frac else 0.0) - offset
    try:
        parsed = time.strptime(stamp[:-9] + stamp[-5:], "%d %b %Y %H:%M:%S%z") if "." in stamp else None
    except ValueError:
        parsed = None
    if parsed is not None:
        frac = stamp.rsplit(".", 1)[1][:-5]
        return calendar.timegm(parsed) - (parsed.tm_gmtoff or 0) + float(f"0.{frac}")
    return None


def _zone_offset(zone: str | None) -> float:
    if not zone or zone == "Z":
        return 0.0
    sign = 1 if zone[0] == "+" else -1
    digits = zone[1:].replace(":", "")
    return sign * (int(digits[:2]) * 3600 + int(digits[2:4]) * 60)


@dataclass(frozen=True)
class TraceLine:
    t: float | None
    aspect: str
    level: str
    message: str


def parse_trace(text: str) -> list[TraceLine]:
    """The toolkit's ``_XXXXX_`` lines of a PE trace, in order."""
    lines = []
    for raw in text.splitlines():
        if "_XXXXX_" not in raw:
            continue
        match = TRACE_LINE.match(raw)
        if match:
            lines.append(TraceLine(parse_trace_time(match["stamp"]), match["aspect"], match["level"],
                                   match["message"].strip()))
            continue
        other = STREAMS_TRACE.match(raw)
        if other:
            lines.append(TraceLine(parse_trace_time(other["stamp"]), "", "", other["message"].strip()))
    return lines


def parse_log(text: str) -> list[TraceLine]:
    """Every timestamped trace line of a standalone application's output (the passive sample traces its remote
    status notification without the toolkit's ``_XXXXX_`` marker); other lines are skipped."""
    lines = []
    for raw in text.splitlines():
        match = ANY_TRACE_LINE.match(raw) or STREAMS_ANY_TRACE.match(raw)
        if match is None:
            continue
        t = parse_trace_time(match["stamp"])
        if t is not None:
            groups = match.groupdict()
            lines.append(TraceLine(t, groups.get("aspect") or "", groups.get("level") or "", match["message"].strip()))
    return lines


class StandbyWatch(threading.Thread):
    """Reads the standalone stub's output (its log on the standby host, appended as it runs) for the application's
    remote status lines: the stub is no Streams job, so its DOWN is seen nowhere else. Journals
    ``toolkit.remote_down`` / ``toolkit.remote_up`` for ``dc`` with the stub's own time of the line."""

    def __init__(self, dc: str, read: Callable[[int], str], size: Callable[[], int], names: ToolkitNames,
                 journal: Journal, interval: float = 0.25, max_duration: float = 600.0,
                 clock_offset: float | Callable[[], float] = 0.0) -> None:
        super().__init__(name=f"standby-watch-{dc}", daemon=True)
        self.dc = dc
        self._read = read
        self._size = size
        self._names = names
        self._journal = journal
        self._interval = interval
        self._max_duration = max_duration
        # the standby host's clock minus the tester's (support/clocks.py); a callable is asked when a line is first
        # dated (the deployment need not wait for the run's start estimate)
        self._clock_offset = clock_offset
        self._offset: int | None = None
        self._partial = ""
        self.stop_event = threading.Event()
        self.status: bool | None = None

    def start_at_end(self) -> None:
        """Skip what the log holds now (earlier stubs' lines), then start reading."""
        self._offset = self._size()
        self.start()

    def run(self) -> None:
        started = time.monotonic()
        while not self.stop_event.is_set() and time.monotonic() - started < self._max_duration:
            tick = time.monotonic()
            try:
                self.look()
            except Exception as exc:
                log.debug("standby watch %s: %s", self.dc, exc)
            self.stop_event.wait(max(0.0, self._interval - (time.monotonic() - tick)))

    def look(self) -> None:
        chunk = self._read(self._offset or 0)
        if not chunk:
            return
        self._offset = (self._offset or 0) + len(chunk.encode())
        text = self._partial + chunk
        complete, _, self._partial = text.rpartition("\n")
        seen = (time.time(), time.monotonic())
        for line in parse_log(complete):
            up = self._names.up(line.message)
            if not up and not self._names.down(line.message):
                continue
            self.status = up
            self._journal.record("toolkit.remote_up" if up else "toolkit.remote_down", at=seen, dc=self.dc,
                                 job="standby", source="standby log",
                                 happened_at=None if line.t is None else line.t - self._offset_of_clock())

    def _offset_of_clock(self) -> float:
        if callable(self._clock_offset):
            self._clock_offset = float(self._clock_offset())
        return self._clock_offset

    def stop(self) -> None:
        self.stop_event.set()
        if self.is_alive():
            self.join(timeout=5)


@dataclass
class _JobWatch:
    """What the monitor knows about one running job."""

    dc: str
    job: dict[str, Any]
    operators: dict[str, dict[str, Any]] = field(default_factory=dict)
    metric_urls: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    toolkit_pe: dict[str, Any] | None = None
    trace_seen: set[TraceLine] = field(default_factory=set)
    traced: bool = False
    pe_states: dict[str, tuple[str, int]] = field(default_factory=dict)
    resolved: bool = False


class ToolkitMonitor(threading.Thread):
    """Polls every data center every ``interval`` seconds and journals toolkit-visible changes.

    Each data center is polled by its own thread, so one that does not answer (cut off, REST down) never
    delays what is seen of the others.
    """

    def __init__(
        self,
        rest: Mapping[str, RestApi],
        app_job: str,
        journal: Journal,
        interval: float = 0.25,
        max_duration: float = 600.0,
        trace_interval: float = 1.0,
        clock_tolerance: float = 0.5,
        clocks: Clocks | None = None,
        outputs: Callable[[], Mapping[str, float]] | None = None,
        toolkit: Any = None,
        main_composite: str | None = None,
    ) -> None:
        super().__init__(name="toolkit-monitor", daemon=True)
        self.names = ToolkitNames() if toolkit is None else (
            toolkit if isinstance(toolkit, ToolkitNames) else ToolkitNames.of(toolkit))
        self._rest = rest
        self._app_job = app_job
        self._main_composite = main_composite
        self._app_ids: dict[str, set[str]] = {dc: set() for dc in rest}  # dc -> ids of the application's jobs
        self._journal = journal
        self._interval = interval
        self._max_duration = max_duration
        self._trace_interval = trace_interval
        self._tolerance = clock_tolerance
        self._clocks = clocks or Clocks()
        self._outputs = outputs
        self.stop_event = threading.Event()
        self._looked: dict[str, int] = {dc: 0 for dc in rest}  # dc -> looks done (answered or not)
        self._running_at_start: set[str] = set()
        self._jobs: dict[str, dict[str, str]] = {dc: {} for dc in rest}  # dc -> job id -> name
        self._watches: dict[tuple[str, str], _JobWatch] = {}
        self._takeover: dict[str, float] = {}
        self._remote_up: dict[str, bool] = {}
        self._last_look: dict[str, float] = {}
        self._last_trace: dict[tuple[str, str], float] = {}
        self._replicated: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def polls(self) -> int:
        """Looks completed at every data center (the slowest one's count)."""
        return min(self._looked.values(), default=0)

    @property
    def _baseline_done(self) -> bool:
        """Every data center has been looked at once: what ran at the start is known."""
        return self.polls > 0

    # -- threads --------------------------------------------------------------------------------------
    def run(self) -> None:
        started = time.monotonic()
        pollers = [threading.Thread(target=self._poll_loop, args=(dc, started), name=f"toolkit-monitor-{dc}",
                                    daemon=True) for dc in self._rest]
        for poller in pollers:
            poller.start()
        while not self.stop_event.is_set() and time.monotonic() - started < self._max_duration:
            tick = time.monotonic()
            self._infer_from_output()
            self.stop_event.wait(max(0.0, self._interval - (time.monotonic() - tick)))
        self.stop_event.set()
        for poller in pollers:  # a poller inside an unanswered request ends when that request does
            poller.join(timeout=1.0)

    def _poll_loop(self, dc: str, started: float) -> None:
        while not self.stop_event.is_set() and time.monotonic() - started < self._max_duration:
            tick = time.monotonic()
            self._poll(dc)
            self._looked[dc] += 1
            self.stop_event.wait(max(0.0, self._interval - (time.monotonic() - tick)))

    def stop(self) -> None:
        self.stop_event.set()
        if self.is_alive():
            self.join(timeout=10)

    # -- what steps ask ---------------------------------------------------------------------------------
    def remote_up(self, dc: str) -> bool | None:
        """What ``dc``'s toolkit last reported about its remote: True UP, False DOWN, None unknown."""
        return self._remote_up.get(dc)

    def takeover_at(self, dc: str) -> float | None:
        """When the application last started running in ``dc`` after the monitor began (None: never)."""
        return self._takeover.get(dc)

    def last_replication(self, dc: str) -> float | None:
        """When ``dc`` last stored a snapshot replicated from its remote (look time)."""
        return self._replicated.get(dc)

    def running_app(self) -> list[str]:
        """Data centers where the application's job is running (as of the last look)."""
        return [dc for dc, ids in self._app_ids.items() if ids]

    def _is_app(self, job: Mapping[str, Any]) -> bool:
        return is_app_job(job, self._app_job, self._main_composite)

    # -- one look -------------------------------------------------------------------------------------
    def _poll(self, dc: str) -> None:
        """One look at ``dc``. Everything seen in one look carries the same instant (when the job list
        answered), and a status transition is journaled before the job changes it caused."""
        previous_look = self._last_look.get(dc)
        try:
            jobs = self._rest[dc].jobs()
        except StreamsError as exc:
            log.debug("monitor: %s jobs unavailable: %s", dc, exc)
            return
        seen = (time.time(), time.monotonic())
        self._last_look[dc] = seen[0]
        slack = self._tolerance + (self._clocks.bound(dc) or 0.0)
        window = (previous_look if previous_look is not None else seen[0]) - slack, seen[0] + slack
        running = [j for j in jobs if j.get("status") == "running"]
        current = {str(j["id"]): str(j.get("name")) for j in running}
        live = {(dc, job_id) for job_id in current}
        for key in [k for k in self._watches if k[0] == dc and k not in live]:
            del self._watches[key]
        for job in running:
            self._watch_job(dc, job, seen, window)
        previous = self._jobs[dc]
        for job in running:
            job_id, name = str(job["id"]), str(job.get("name"))
            if job_id in previous:
                continue
            if not self._looked[dc]:
                if self._is_app(job):
                    self._running_at_start.add(dc)
                continue
            self._journal.record("toolkit.job_running", at=seen, dc=dc, job=name, job_id=job_id)
            # a takeover: the application starts where it did not run at the last look (a failover, a
            # failback, a restart after a dual outage); the latest one counts
            if self._is_app(job) and not self._app_ids[dc]:
                extra = _within(self._on_tester_clock(dc, _submit_time(job)), window)
                self._takeover[dc] = seen[0] if extra is None else extra
                # where else the application ran at the latest look (no fencing: the old active may still run it)
                also = {other: round(self._last_look[other], 3) for other in self._rest
                        if other != dc and self._app_ids.get(other) and other in self._last_look
                        and seen[0] - self._last_look[other] <= ALSO_RUNNING_LOOK}
                self._journal.record("toolkit.takeover", at=seen, dc=dc, job=name, job_id=job_id, source="job list",
                                     also_running=also, **({} if extra is None else {"happened_at": extra}))
        for job_id, name in previous.items():
            if job_id not in current and self._looked[dc]:
                self._journal.record("toolkit.job_gone", at=seen, dc=dc, job=name, job_id=job_id)
        self._jobs[dc] = current
        self._app_ids[dc] = {str(job["id"]) for job in running if self._is_app(job)}

    def _on_tester_clock(self, dc: str, stamp: float | None) -> float | None:
        """A stamp of ``dc``'s clock on the tester's timeline (its estimated offset taken off)."""
        return None if stamp is None else stamp - self._clocks.offset(dc)

    def _watch_job(self, dc: str, job: dict[str, Any], seen: tuple[float, float], window: tuple[float, float]
                   ) -> None:
        key = (dc, str(job["id"]))
        watch = self._watches.get(key)
        if watch is None:
            watch = self._watches[key] = _JobWatch(dc, job)
        api = self._rest[dc]
        try:
            if not watch.resolved:
                ops = api.operators(job)
                watch.operators = {str(op.get("name")): op for op in ops if self.names.role(str(op.get("name")))}
                watch.metric_urls = {name: _output_metrics_url(api, op) for name, op in watch.operators.items()}
                watch.resolved = True
            counts: dict[str, int] = {}
            for name, url in watch.metric_urls.items():  # per role, summed over the sender/receiver pairs
                role = self.names.role(name) or name
                counts[role] = counts.get(role, 0) + int(api.metrics(url).get("nTuplesSubmitted", 0))
        except StreamsError as exc:
            log.debug("monitor: %s toolkit metrics unavailable: %s", dc, exc)
            return
        before = dict(watch.counts)
        watch.counts = counts
        first_look = not before
        trace_due = watch.operators and seen[1] - self._last_trace.get(key, 0.0) >= self._trace_interval
        changed = {name for name, value in counts.items() if before.get(name) != value}
        lines: list[TraceLine] = []
        if watch.operators and (trace_due or (changed and not first_look)):
            lines = self._new_trace_lines(watch, seen, window)
        if WATCHDOG in counts:
            self._watchdog(watch, counts[WATCHDOG], before.get(WATCHDOG), seen, lines, window)
        elif lines:
            self._trace_transitions(watch, lines, seen, window)
        if RECEIVER in counts and not first_look and counts[RECEIVER] > before.get(RECEIVER, 0):
            self._replicated[dc] = seen[0]
            self._journal.record("toolkit.snapshot_stored", at=seen, dc=dc, job=job.get("name"),
                                 snapshots=counts[RECEIVER], source="operator metrics")
        if MERGER in counts and not first_look and counts[MERGER] > before.get(MERGER, 0):
            self._journal.record("toolkit.snapshot_restored", at=seen, dc=dc, job=job.get("name"),
                                 replayed=counts[MERGER], source="operator metrics")
            self._in_place_takeover(watch, seen, None, MERGER)
        if self._is_app(job):
            self._pe_states(watch, seen)

    def _watchdog(self, watch: _JobWatch, count: int, before: int | None, seen: tuple[float, float],
                  lines: list[TraceLine], window: tuple[float, float]) -> None:
        dc, job = watch.dc, watch.job
        if count == 0:
            return
        up = count % 2 == 1
        if before is None:  # first look at this job: note the state without an event
            self._remote_up[dc] = up
            if self._looked[dc] and up:
                self._journal.record("toolkit.remote_up", at=seen, dc=dc, job=job.get("name"), transitions=count,
                                     source="operator metrics")
            return
        if count != before:
            self._remote_up[dc] = up
            event = "toolkit.remote_up" if up else "toolkit.remote_down"
            stamp = _transition_time(lines, self.names.up if up else self.names.down, window)
            self._journal.record(event, at=seen, dc=dc, job=job.get("name"), transitions=count,
                                 source="operator metrics", **({} if stamp is None else {"happened_at": stamp}))
            if not up:
                self._in_place_takeover(watch, seen, stamp, "remote DOWN in mode 1 (in place)")

    def _in_place_takeover(self, watch: _JobWatch, seen: tuple[float, float], stamp: float | None,
                           source: str) -> None:
        """Active/active: the application ran here from the start, and its toolkit (mode 1) takes over the
        remote's work in place when it declares the remote DOWN (replaying whatever state it holds)."""
        dc, job = watch.dc, watch.job
        if (not self._is_app(job) or dc not in self._running_at_start or dc in self._takeover
                or not self._baseline_done or len(self._running_at_start) < 2):
            return
        self._takeover[dc] = seen[0] if stamp is None else stamp
        self._journal.record("toolkit.takeover", at=seen, dc=dc, job=job.get("name"), job_id=str(job["id"]),
                             source=source, mode="in place", **({} if stamp is None else {"happened_at": stamp}))

    def _trace_transitions(self, watch: _JobWatch, lines: list[TraceLine], seen: tuple[float, float],
                           window: tuple[float, float]) -> None:
        """No watchdog metric: the application's own UP/DOWN trace lines (``crossdc.trace_up``/``trace_down``) are
        the signal."""
        for line in lines:
            up = self.names.up(line.message)
            if not up and not self.names.down(line.message):
                continue
            was = self._remote_up.get(watch.dc)
            self._remote_up[watch.dc] = up
            if was is None or was == up:
                continue
            event = "toolkit.remote_up" if up else "toolkit.remote_down"
            stamp = _within(line.t, window)
            self._journal.record(event, at=seen, dc=watch.dc, job=watch.job.get("name"), source="trace",
                                 **({} if stamp is None else {"happened_at": stamp}))

    def _new_trace_lines(self, watch: _JobWatch, seen: tuple[float, float], window: tuple[float, float]
                         ) -> list[TraceLine]:
        key = (watch.dc, str(watch.job["id"]))
        self._last_trace[key] = seen[1]
        api = self._rest[watch.dc]
        try:
            if watch.toolkit_pe is None:
                by_role = {self.names.role(name): op for name, op in watch.operators.items()}
                pe_url = by_role.get(WATCHDOG, next(iter(watch.operators.values()), {})).get("pe")
                pes = api.pes(watch.job)
                watch.toolkit_pe = next((p for p in pes if p.get("self") == pe_url), pes[0] if len(pes) == 1 else None)
                if watch.toolkit_pe is None:
                    return []
            text = api.pe_trace(watch.toolkit_pe)
        except StreamsError as exc:
            log.debug("monitor: %s trace unavailable: %s", watch.dc, exc)
            return []
        lines = parse_trace(text)  # the service may return only the tail: new lines are the ones not seen yet
        fresh = [line for line in lines if line not in watch.trace_seen]
        watch.trace_seen.update(fresh)
        offset = self._clocks.offset(watch.dc)
        if offset:  # from here on, the lines' times are on the tester's timeline
            fresh = [line if line.t is None else replace(line, t=line.t - offset) for line in fresh]
        baseline = not watch.traced and not self._looked[watch.dc]
        watch.traced = True
        if baseline:
            return []
        for line in fresh:
            if ROUTINE_TEXT.search(line.message):
                continue
            self._journal.record("toolkit.trace", at=seen, dc=watch.dc, job=watch.job.get("name"),
                                 aspect=line.aspect, level=line.level, message=line.message[:300],
                                 **({} if line.t is None else {"happened_at": line.t}))
        return fresh

    def _pe_states(self, watch: _JobWatch, seen: tuple[float, float]) -> None:
        try:
            pes = self._rest[watch.dc].pes(watch.job)
        except StreamsError:
            return
        for pe in pes:
            pe_id = str(pe.get("id"))
            state = (str(pe.get("status")), int(pe.get("launchCount") or 0))
            before = watch.pe_states.get(pe_id)
            watch.pe_states[pe_id] = state
            if before is not None and before != state:
                self._journal.record("toolkit.pe_state", at=seen, dc=watch.dc, job=watch.job.get("name"), pe=pe_id,
                                     status=state[0], launch_count=state[1], reason=pe.get("statusReason"),
                                     was=before[0])

    def _infer_from_output(self) -> None:
        """No takeover signal from the toolkit, yet a DC that did not run the application emits output."""
        if self._outputs is None or not self._baseline_done:
            return
        for dc, t in dict(self._outputs()).items():
            if dc in self._running_at_start or dc in self._takeover or dc not in self._rest:
                continue
            self._takeover[dc] = t
            self._journal.record("toolkit.takeover", dc=dc, job=self._app_job, source="output", inferred=True,
                                 happened_at=t)


def _output_metrics_url(api: RestApi, operator: Mapping[str, Any]) -> str:
    """The metrics URL of output port 0 of an operator (resolved once per job, then read every look)."""
    ports_url = operator.get("outputPorts")
    if isinstance(ports_url, str) and ports_url:
        document = api.get(ports_url)
        ports = document.get("outputPorts", []) if isinstance(document, Mapping) else []
        port = next((p for p in ports if p.get("indexWithinOperator") == 0), ports[0] if ports else None)
        if port is not None and isinstance(port.get("metrics"), str):
            return str(port["metrics"])
    return f"{str(operator.get('self', '')).rstrip('/')}/outputports/0/metrics"


def _submit_time(job: Mapping[str, Any]) -> float | None:
    value = job.get("submitTime")
    try:
        return float(value) / 1000.0 if value is not None else None
    except (TypeError, ValueError):
        return None


def _within(stamp: float | None, window: tuple[float, float]) -> float | None:
    if stamp is None:
        return None
    return stamp if window[0] <= stamp <= window[1] else None


def _transition_time(lines: list[TraceLine], matches: Callable[[str], bool], window: tuple[float, float]
                     ) -> float | None:
    """The DC's own time of the newest UP (or DOWN) trace line of the application inside the window."""
    for line in reversed(lines):
        if matches(line.message):
            return _within(line.t, window)
    return None
