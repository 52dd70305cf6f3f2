"""Stop conditions (``run.stop_conditions``): checked every second while a fault is in place; the first one
breached heals the faults at once and fails the scenario with ``aborted: <condition>``.

A condition is either

- a PromQL expression (:class:`PromQLCheck`): breached when the instant query returns a sample whose value is
  neither 0 nor NaN (the alerting convention: an expression written as a filter, ``x > 1``, returns nothing
  while all is well), or
- the REST health of a data center (:class:`RestHealthCheck`): breached when its instance is not ``healthy``,
  or, with an application, when that application's job there is missing or not ``healthy``.

:class:`StopWatch` runs the checks in one background thread. It never raises into the scenario's steps: on a
breach it journals ``stop_condition.breached`` {condition, value} and calls ``on_breach`` with the text
``aborted: ...`` (the World heals the faults and makes its waits stop with that text). A check that cannot get
an answer (Prometheus or the REST API unreachable) is not a breach: it is retried with a doubling backoff
(1 s up to :data:`MAX_BACKOFF`), and the time each condition could not be checked while a fault was in place
is journaled when the watch ends (``stop_condition.watched``) and shown in the scenario's record.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from support.config.settings import Settings, StopCondition
from support.metrics.prometheus import PromSample
from support.orchestration import Journal

__all__ = ["MAX_BACKOFF", "Check", "PromQLCheck", "RestHealthCheck", "StopWatch", "checks_from_settings"]

log = logging.getLogger(__name__)

#: seconds between two checks of a condition while a fault is in place
INTERVAL = 1.0
#: the longest pause between retries of a condition that cannot be checked
MAX_BACKOFF = 8.0


class Check(Protocol):
    label: str

    def evaluate(self) -> str | None:
        """None while the condition holds; what breached it (a short text) otherwise. Raises when it cannot
        be checked."""


class Instant(Protocol):
    def instant(self, query: str) -> list[PromSample]: ...


class RestReader(Protocol):
    def instance(self, refresh: bool = False) -> dict[str, Any]: ...

    def find_app_job(self, job_name: str, main_composite: str | None = None) -> dict[str, Any] | None: ...


@dataclass
class PromQLCheck:
    label: str
    query: str
    client: Instant

    def evaluate(self) -> str | None:
        for sample in self.client.instant(self.query):
            if sample.value != 0 and not math.isnan(sample.value):
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                return f"{sample.value:g}" + (f" {{{labels}}}" if labels else "")
        return None


@dataclass
class RestHealthCheck:
    label: str
    dc: str
    client: RestReader
    job_name: str | None = None
    main_composite: str | None = None
    application: str | None = None

    def evaluate(self) -> str | None:
        instance = self.client.instance(refresh=True)
        health = instance.get("health")
        if health != "healthy":
            return f"instance in {self.dc}: health {health}, status {instance.get('status')}"
        if self.job_name is None:
            return None
        job = self.client.find_app_job(self.job_name, self.main_composite)
        if job is None:
            return f"no job of {self.application} in {self.dc}"
        if job.get("health") != "healthy":
            return f"job {job.get('name')} in {self.dc}: health {job.get('health')}, status {job.get('status')}"
        return None


def checks_from_settings(settings: Settings, rest: Mapping[str, RestReader],
                         prometheus: Callable[[], Instant | None]) -> list[Check]:
    """The checks of ``run.stop_conditions`` (``prometheus`` makes the one client the PromQL ones share)."""
    conditions = settings.run.stop_conditions
    client = prometheus() if any(c.promql is not None for c in conditions) else None
    return [_check(settings, condition, rest, client) for condition in conditions]


def _check(settings: Settings, condition: StopCondition, rest: Mapping[str, RestReader],
           client: Instant | None) -> Check:
    if condition.promql is not None:
        if client is None:
            raise ValueError(f"stop condition {condition.label!r}: PromQL needs metrics.prometheus")
        return PromQLCheck(condition.label, condition.promql, client)
    assert condition.rest_dc is not None
    app = settings.applications[condition.rest_application] if condition.rest_application else None
    return RestHealthCheck(condition.label, condition.rest_dc, rest[condition.rest_dc],
                           job_name=app.job_name if app else None, main_composite=app.main_composite if app else None,
                           application=condition.rest_application)


@dataclass
class _State:
    """One condition's schedule and the time it could not be checked."""

    due: float = 0.0
    failures: int = 0
    failing_since: float | None = None
    unchecked: float = 0.0
    error: str | None = None

    def close_gap(self, now: float) -> None:
        if self.failing_since is not None:
            self.unchecked += now - self.failing_since
            self.failing_since = None


@dataclass
class StopWatch:
    """Checks ``checks`` every ``interval`` seconds while ``in_place()`` says a fault is in place; calls
    ``on_breach("aborted: ...")`` once, on the first breach, then stops checking."""

    checks: Sequence[Check]
    journal: Journal
    on_breach: Callable[[str], None]
    in_place: Callable[[], bool]
    interval: float = INTERVAL
    max_backoff: float = MAX_BACKOFF
    clock: Callable[[], float] = time.monotonic
    breached: str | None = None
    _states: list[_State] = field(default_factory=list)
    _wake: threading.Event = field(default_factory=threading.Event)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _watched: float = 0.0
    _since: float | None = None
    _ever: bool = False  # a fault was in place at some point
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._states = [_State() for _ in self.checks]

    def wake(self) -> None:
        """A fault joined or left the scenario: look again now (starts the thread on the first call)."""
        with self._lock:
            if self._thread is None and not self._stopping.is_set():
                self._thread = threading.Thread(target=self._run, name="stop-conditions", daemon=True)
                self._thread.start()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop checking and journal ``stop_condition.watched`` (once; only when a fault was watched)."""
        with self._lock:
            already = self._stopping.is_set()
            self._stopping.set()
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join(timeout)
        if already:
            return
        self._pause(self.clock())
        if not self._ever:
            return
        self.journal.record("stop_condition.watched", watched_s=round(self._watched, 3), breached=self.breached,
                            unchecked={c.label: round(s.unchecked, 3) for c, s in zip(self.checks, self._states,
                                                                                     strict=True) if s.unchecked},
                            errors={c.label: s.error for c, s in zip(self.checks, self._states, strict=True)
                                    if s.error})

    def _pause(self, now: float) -> None:
        """No fault in place (or the watch ends): close the open gaps and the watched time."""
        for state in self._states:
            state.close_gap(now)
            state.due = 0.0
            state.failures = 0
        if self._since is not None:
            self._watched += now - self._since
            self._since = None

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._wake.clear()
                pause = self.round()
                if self.breached is not None:
                    return
                self._wake.wait(pause)
        except Exception as exc:  # never dies silently
            log.exception("the stop-condition thread failed")
            self.journal.record("thread.error", thread="stop-conditions", error=str(exc)[:500])

    def round(self) -> float:
        """One pass: check every condition that is due; return the seconds until the next one is."""
        now = self.clock()
        if not self.in_place():
            self._pause(now)
            return self.interval
        if self._since is None:
            self._since = now
            self._ever = True
        for check, state in zip(self.checks, self._states, strict=True):
            if self._stopping.is_set():
                break
            if state.due > now:
                continue
            try:
                value = check.evaluate()
            except Exception as exc:  # cannot be checked now: no breach, retried with backoff
                now = self.clock()
                state.failures += 1
                state.error = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
                if state.failing_since is None:
                    state.failing_since = now
                    log.warning("stop condition %r cannot be checked: %s", check.label, state.error)
                state.due = now + min(self.max_backoff, self.interval * 2 ** (state.failures - 1))
                continue
            now = self.clock()
            state.close_gap(now)
            state.failures = 0
            state.due = now + self.interval
            if value is not None:
                self.breached = f"aborted: {check.label} ({value})"
                self.journal.record("stop_condition.breached", condition=check.label, value=value)
                log.error("stop condition breached: %s: %s", check.label, value)
                self.on_breach(self.breached)
                return 0.0
        now = self.clock()
        return max(0.0, min(s.due for s in self._states) - now) if self._states else self.interval
