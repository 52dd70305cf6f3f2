"""Live progress of long waits on the console: what is awaited, elapsed time and deadline.

Written to the terminal's stderr (not captured by behave), only for waits that last longer than ``after``
seconds, so short waits stay silent:

- on a terminal, one line that updates in place (carriage return and ANSI erase, at most once every ``every``
  seconds) and is erased when the wait ends, so behave's output goes on where it was;
- elsewhere (a CI log, a file), one line per change of state: when a long wait starts to show, and when it
  ends (met, or given up), never a line per second.

:func:`support.waits.wait_until` calls the instance with (what, elapsed, deadline) while it polls and
:meth:`ConsoleProgress.done` when the wait ends.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from support.units import format_seconds

#: carriage return, then erase the whole line (ANSI EL2)
ERASE = "\r\x1b[2K"
PREFIX = "    … "


class ConsoleProgress:
    def __init__(self, stream: TextIO | None = None, after: float = 2.0, every: float = 1.0,
                 tty: bool | None = None) -> None:
        self._stream = stream if stream is not None else sys.__stderr__
        self._after = after
        self._every = every
        self._tty = tty if tty is not None else self._isatty()
        self._last: dict[str, float] = {}
        self._showing: str | None = None  # the wait whose line is on the screen (terminal) or announced (log)

    def _isatty(self) -> bool:
        try:
            return bool(self._stream is not None and self._stream.isatty())
        except (AttributeError, ValueError):
            return False

    def _write(self, text: str) -> None:
        assert self._stream is not None
        self._stream.write(text)
        self._stream.flush()

    def __call__(self, what: str, elapsed: float, deadline: float) -> None:
        if elapsed < self._after or self._stream is None:
            return
        waited, limit = format_seconds(elapsed, 0), format_seconds(deadline, 0)
        if not self._tty:
            if self._showing != what:  # a new state: this wait has become long enough to show
                self._showing = what
                self._write(f"{PREFIX}waiting for {what} (at most {limit})\n")
            return
        now = time.monotonic()
        if self._showing == what and now - self._last.get(what, 0.0) < self._every:
            return
        self._last[what] = now
        self._showing = what
        self._write(f"{ERASE}{PREFIX}waiting for {what}: {waited} of at most {limit}")

    def done(self, what: str, elapsed: float, met: bool) -> None:
        """The wait for ``what`` ended (``met``: its condition held): erase its line, or log how it ended."""
        if self._showing != what or self._stream is None:
            return
        self._showing = None
        self._last.pop(what, None)
        if self._tty:
            self._write(ERASE)
        else:
            how = "met" if met else "gave up"
            self._write(f"{PREFIX}{what}: {how} after {format_seconds(elapsed, 0)}\n")

    def note(self, text: str) -> None:
        """One line that stays (e.g. an expected finding a check found): below any wait line on the screen."""
        if self._stream is None:
            return
        if self._tty and self._showing is not None:
            self._write(ERASE)
            self._showing = None
        self._write(f"{PREFIX}{text}\n")
