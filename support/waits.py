"""Waiting on conditions with a deadline (never sleeping blindly).

:func:`wait_until` retries only declared transient errors (``transient``; by default ``OSError`` and
:class:`support.errors.TransientError`), so a bug in a probe (a ``TypeError``, a ``KeyError``) surfaces as
itself, not as a timeout. A timeout is a :class:`WaitTimeout`, which is not an ``AssertionError``: callers
that mean "not reached in time" catch ``WaitTimeout``.

Interrupts (Ctrl-C, SIGTERM, ``failover-tester abort``): the behave process's signal handlers call
:func:`interrupt`, which only sets flags (safe in a signal handler). A :func:`wait_until` in the main thread
observes them at its next poll and raises :class:`Interrupted` there, so the running step ends at its next wait
and behave's ``after_scenario`` heals and restores. Heals and restores run :func:`shielded`: no interrupt
ends a wait inside them. A second signal within :data:`HURRY_WINDOW` seconds "hurries": it also ends the
waits that remain outside heals and restores (the drain of the outputs when the scenario closes).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from support.errors import TransientError
from support.units import format_seconds

T = TypeVar("T")

#: What :func:`wait_until` retries unless told otherwise: OS/network errors (``requests`` errors are
#: ``OSError`` too) and the domain errors marked transient (Streams REST/data exchange errors).
TRANSIENT: tuple[type[BaseException], ...] = (OSError, TransientError)


class WaitTimeout(Exception):
    """A condition was not reached in time; the message names what was awaited and the last observation.

    Not an ``AssertionError``: a wait that ran out is not a failed check by itself (behave reports it as an
    error); code that judges a timeout catches ``WaitTimeout`` and turns it into a verdict."""

    def __init__(self, what: str, timeout: float, last: object) -> None:
        super().__init__(f"{what}: not reached within {format_seconds(timeout, None)}; last observed: {last}")
        self.what = what
        self.timeout = timeout
        self.last = last


class WaitStopped(AssertionError):
    """A wait ended early because a registered stop check (:func:`add_stop_check`) gave a reason, e.g. a stop
    condition breached: the message is that reason. An ``AssertionError``: the step that waited failed."""


class Interrupted(KeyboardInterrupt):
    """The run was interrupted (SIGINT or SIGTERM) while the main thread waited: the step ends here.

    A ``KeyboardInterrupt``, so that no ``except Exception`` in a step swallows it and behave handles it as a
    user abort (the step errs, ``after_scenario`` still runs, the remaining scenarios are not run)."""

    def __init__(self, signal_name: str, what: str) -> None:
        super().__init__(f"interrupted by {signal_name} while waiting for {what}")
        self.signal_name = signal_name
        self.what = what


#: a second signal within this many seconds of the previous one skips what is left of the waiting
HURRY_WINDOW = 5.0


@dataclass
class InterruptState:
    """What the signal handlers saw: plain attributes, written by :func:`interrupt` (in a signal handler: no
    locks, no I/O) and read by the waits."""

    signal: str | None = None  # the first signal's name ("SIGINT", "SIGTERM"); None = not interrupted
    at: float = 0.0  # monotonic time of the first signal
    last: float = 0.0  # monotonic time of the latest signal
    count: int = 0
    hurry: bool = False  # a second signal came within HURRY_WINDOW seconds of the one before it


_state = InterruptState()
_shield = threading.local()


def interrupt(signal_name: str, now: float | None = None) -> str:
    """Note a signal; returns ``"first"``, ``"hurry"`` (a second one within :data:`HURRY_WINDOW` s) or
    ``"again"`` (a later one, outside the window). Only assigns attributes: safe in a signal handler."""
    at = time.monotonic() if now is None else now
    state = _state
    state.count += 1
    if state.signal is None:
        state.signal, state.at, state.last = signal_name, at, at
        return "first"
    quick = at - state.last <= HURRY_WINDOW
    state.last = at
    if quick:
        state.hurry = True
        return "hurry"
    return "again"


def interrupted() -> str | None:
    """The name of the signal that interrupted the run, or None."""
    return _state.signal


def hurried() -> bool:
    """A second signal came quickly: what is left of the waiting is skipped (never the heals)."""
    return _state.hurry


def reset_interrupt() -> None:
    """Forget every signal (a new run in the same process; tests)."""
    global _state
    _state = InterruptState()


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Heals and restores run inside this: no interrupt, first or second, ends a wait of theirs."""
    _shield.depth = getattr(_shield, "depth", 0) + 1
    try:
        yield
    finally:
        _shield.depth -= 1


@contextlib.contextmanager
def closing() -> Iterator[None]:
    """The waiting of a scenario's closing (the drain of the outputs) runs inside this: a first interrupt lets it
    go on (it is bounded), a second, quick one ends it."""
    _shield.closing = getattr(_shield, "closing", 0) + 1
    try:
        yield
    finally:
        _shield.closing -= 1


def is_shielded() -> bool:
    return getattr(_shield, "depth", 0) > 0


def check_interrupt(what: str) -> None:
    """Raise :class:`Interrupted` when the run was interrupted and this is the main thread outside
    :func:`shielded` (inside :func:`closing`: only once a second signal asked to skip the waiting). Background
    threads are never interrupted this way: they stop with their owners."""
    name = _state.signal
    if name is None or is_shielded() or threading.current_thread() is not threading.main_thread():
        return
    if getattr(_shield, "closing", 0) > 0 and not _state.hurry:
        return
    raise Interrupted(name, what)


Progress = Callable[[str, float, float], None]

#: Callables asked before every probe of every wait: a non-empty string ends the wait with WaitStopped. Each
#: decides for itself which waits it stops (e.g. only those of one thread); they must be cheap and not raise.
_stop_checks: list[Callable[[], str | None]] = []


def add_stop_check(check: Callable[[], str | None]) -> Callable[[], None]:
    """Register ``check`` with every :func:`wait_until`; returns the call that removes it again."""
    _stop_checks.append(check)

    def remove() -> None:
        if check in _stop_checks:
            _stop_checks.remove(check)

    return remove


def _stop_reason() -> str | None:
    for check in list(_stop_checks):
        reason = check()
        if reason:
            return reason
    return None


def wait_until(
    probe: Callable[[], T],
    predicate: Callable[[T], bool],
    *,
    timeout: float,
    interval: float = 0.2,
    what: str,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
    transient: tuple[type[BaseException], ...] = TRANSIENT,
) -> T:
    """Call ``probe`` until ``predicate(value)`` holds; return that value.

    Exceptions of the ``transient`` types raised by ``probe`` count as observations (the condition is not
    met yet) so that a service that is still starting does not end the wait; any other exception ends the
    wait and propagates unchanged. Raises :class:`WaitTimeout` naming the last observed value or error when
    ``timeout`` seconds pass, :class:`WaitStopped` when a registered stop check gives a reason.

    In the main thread, outside :func:`shielded`, an interrupt of the run raises :class:`Interrupted` at the
    next poll (inside :func:`closing`: only a second, quick signal does).
    """
    started = time.monotonic()
    met = False
    try:
        value = _poll(probe, predicate, started, timeout, interval, what, stop, progress, transient)
        met = True
        return value
    finally:
        done = getattr(progress, "done", None)  # ConsoleProgress: erase its line, or log how the wait ended
        if done is not None:
            done(what, time.monotonic() - started, met)


def _poll(probe: Callable[[], T], predicate: Callable[[T], bool], started: float, timeout: float, interval: float,
          what: str, stop: threading.Event | None, progress: Progress | None,
          transient: tuple[type[BaseException], ...]) -> T:
    deadline = started + timeout
    last: object = "nothing observed yet"
    while True:
        check_interrupt(what)
        reason = _stop_reason() if _stop_checks else None
        if reason:
            raise WaitStopped(reason)
        try:
            value = probe()
        except transient as exc:
            last = f"error: {exc}"
        else:
            if predicate(value):
                return value
            last = value
        now = time.monotonic()
        if progress is not None:
            progress(what, now - started, timeout)
        if now >= deadline:
            raise WaitTimeout(what, timeout, last)
        pause = min(interval, max(0.0, deadline - now))
        if _pause(pause, stop, what):
            raise WaitTimeout(what + " (interrupted)", timeout, last)


#: the longest the main thread paces between polls without looking at the interrupt flags
_SLICE = 0.1


def _pause(pause: float, stop: threading.Event | None, what: str) -> bool:
    """Pace between polls for ``pause`` seconds (True when ``stop`` was set); in the main thread in slices of
    :data:`_SLICE`, so that an interrupt ends a wait with a long interval at once."""
    end = time.monotonic() + pause
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return False
        step = min(left, _SLICE) if threading.current_thread() is threading.main_thread() else left
        if stop is not None:
            if stop.wait(step):
                return True
        else:
            time.sleep(step)  # pacing between polls, bounded by the deadline
        check_interrupt(what)
