"""Waiting on conditions with a deadline (never sleeping blindly).

:func:`wait_until` retries only declared transient errors (``transient``; by default ``OSError`` and
:class:`support.errors.TransientError`), so a bug in a probe (a ``TypeError``, a ``KeyError``) surfaces as
itself, not as a timeout. A timeout is a :class:`WaitTimeout`, which is not an ``AssertionError``: callers
that mean "not reached in time" catch ``WaitTimeout``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
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
    """
    started = time.monotonic()
    deadline = started + timeout
    last: object = "nothing observed yet"
    while True:
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
        if stop is not None:
            if stop.wait(pause):
                raise WaitTimeout(what + " (interrupted)", timeout, last)
        else:
            time.sleep(pause)  # pacing between polls, bounded by the deadline
