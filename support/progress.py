"""Live progress of long waits on the console: what is awaited, elapsed time and deadline.

Written to the terminal's stderr (not captured by behave), at most once a second, and only for waits that
last longer than ``after`` seconds, so short waits stay silent.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from support.units import format_seconds


class ConsoleProgress:
    def __init__(self, stream: TextIO | None = None, after: float = 2.0, every: float = 1.0) -> None:
        self._stream = stream if stream is not None else sys.__stderr__
        self._after = after
        self._every = every
        self._last: dict[str, float] = {}

    def __call__(self, what: str, elapsed: float, deadline: float) -> None:
        if elapsed < self._after or self._stream is None:
            return
        now = time.monotonic()
        if now - self._last.get(what, 0.0) < self._every:
            return
        self._last[what] = now
        waited, limit = format_seconds(elapsed, 0), format_seconds(deadline, 0)
        self._stream.write(f"    … waiting for {what}: {waited} of at most {limit}\n")
        self._stream.flush()
