"""Watches the Cross-DC failover toolkit from outside, as on a real deployment.

Signals (per data center, polled over the REST management API):
- the job list: the application's job appearing as ``running`` in a DC where it was not running when
  watching began is a **takeover**; a job vanishing is recorded too;
- the ``CrossDCFailover.RemoteDataCenterHeartbeatWatchdog`` operator's output port count
  (``nTuplesSubmitted``): each tuple is one remote status transition, the first UP, then DOWN, UP, ...
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

from support.orchestration import Journal
from support.streams.errors import StreamsError

log = logging.getLogger(__name__)

WATCHDOG = "CrossDCFailover.RemoteDataCenterHeartbeatWatchdog"


class RestApi(Protocol):
    def jobs(self, name: str | None = None) -> list[dict[str, Any]]: ...

    def operators(self, job: dict[str, Any]) -> list[dict[str, Any]]: ...

    def port_metrics(self, job: dict[str, Any], operator_name: str, direction: Any, index: int = 0
                     ) -> dict[str, int]: ...


class ToolkitMonitor(threading.Thread):
    """Polls every data center every ``interval`` seconds and journals toolkit-visible changes."""

    def __init__(
        self,
        rest: Mapping[str, RestApi],
        app_job: str,
        journal: Journal,
        interval: float = 0.25,
        max_duration: float = 600.0,
    ) -> None:
        super().__init__(name="toolkit-monitor", daemon=True)
        self._rest = rest
        self._app_job = app_job
        self._journal = journal
        self._interval = interval
        self._max_duration = max_duration
        self.stop_event = threading.Event()
        self._baseline_done = False
        self._running_at_start: set[str] = set()
        self._jobs: dict[str, dict[str, str]] = {dc: {} for dc in rest}  # dc -> job id -> name
        self._transitions: dict[tuple[str, str], int] = {}  # (dc, job id) -> watchdog output count
        self._has_watchdog: dict[tuple[str, str], bool] = {}
        self._takeover: dict[str, float] = {}
        self._remote_up: dict[str, bool] = {}
        self.polls = 0

    def run(self) -> None:
        started = time.monotonic()
        while not self.stop_event.is_set() and time.monotonic() - started < self._max_duration:
            tick = time.monotonic()
            for dc in self._rest:
                self._poll(dc)
            self._baseline_done = True
            self.polls += 1
            self.stop_event.wait(max(0.0, self._interval - (time.monotonic() - tick)))

    def stop(self) -> None:
        self.stop_event.set()
        if self.is_alive():
            self.join(timeout=10)

    def remote_up(self, dc: str) -> bool | None:
        """What ``dc``'s toolkit last reported about its remote: True UP, False DOWN, None unknown."""
        return self._remote_up.get(dc)

    def takeover_at(self, dc: str) -> float | None:
        return self._takeover.get(dc)

    def _poll(self, dc: str) -> None:
        """One look at ``dc``. Everything seen in one look carries the same instant (when the job list
        answered), and a status transition is journaled before the job changes it caused."""
        try:
            jobs = self._rest[dc].jobs()
        except StreamsError as exc:
            log.debug("monitor: %s jobs unavailable: %s", dc, exc)
            return
        seen = (time.time(), time.monotonic())
        running = [j for j in jobs if j.get("status") == "running"]
        for job in running:
            self._watch_transitions(dc, job, seen)
        current = {str(j["id"]): str(j.get("name")) for j in running}
        previous = self._jobs[dc]
        for job_id, name in current.items():
            if job_id in previous:
                continue
            if not self._baseline_done:
                if name == self._app_job:
                    self._running_at_start.add(dc)
                continue
            self._journal.record("toolkit.job_running", at=seen, dc=dc, job=name, job_id=job_id)
            if name == self._app_job and dc not in self._running_at_start and dc not in self._takeover:
                self._takeover[dc] = seen[0]
                self._journal.record("toolkit.takeover", at=seen, dc=dc, job=name, job_id=job_id, source="job list")
        for job_id, name in previous.items():
            if job_id not in current and self._baseline_done:
                self._journal.record("toolkit.job_gone", at=seen, dc=dc, job=name, job_id=job_id)
        self._jobs[dc] = current

    def _watch_transitions(self, dc: str, job: dict[str, Any], seen: tuple[float, float]) -> None:
        key = (dc, str(job["id"]))
        api = self._rest[dc]
        try:
            if key not in self._has_watchdog:
                self._has_watchdog[key] = any(op.get("name") == WATCHDOG for op in api.operators(job))
            if not self._has_watchdog[key]:
                return
            count = int(api.port_metrics(job, WATCHDOG, "output", 0).get("nTuplesSubmitted", 0))
        except StreamsError as exc:
            log.debug("monitor: %s watchdog metrics unavailable: %s", dc, exc)
            return
        before = self._transitions.get(key)
        self._transitions[key] = count
        if count == 0:
            return
        up = count % 2 == 1
        if before is None:  # first look at this job: note the state without an event
            self._remote_up[dc] = up
            if self._baseline_done and up:
                self._journal.record("toolkit.remote_up", at=seen, dc=dc, job=job.get("name"), transitions=count)
            return
        if count != before:
            self._remote_up[dc] = up
            event = "toolkit.remote_up" if up else "toolkit.remote_down"
            self._journal.record(event, at=seen, dc=dc, job=job.get("name"), transitions=count,
                                 source="operator metrics")
