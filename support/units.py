"""Every parser and formatter of durations, seconds, sizes and rates.

- durations as people write them (``500 ms``, ``30 seconds``, ``2 minutes``, ``1h``): :func:`parse_duration`
  -> float seconds, :func:`format_duration` back. ``config/schema.json`` uses the same grammar
  (:data:`DURATION_PATTERN` must stay equal to the schema's pattern); the step vocabulary a subset of it
  (:data:`STEP_DURATION_PATTERN`, unanchored, for the ``{:Duration}`` parameter type);
- measured seconds in reports, verdicts and progress lines: :func:`format_seconds` (``1.50 s``);
- sizes (``256 MiB``, ``2 GB``): :func:`parse_size` -> bytes, :func:`format_size` back (binary units);
- rates (``1mbit``, ``500 kbit``, ``10mbps``): :func:`parse_rate` -> bits per second, :func:`format_rate`.
"""

from __future__ import annotations

import math
import re
import time

__all__ = [
    "DURATION_PATTERN",
    "STEP_DURATION_PATTERN",
    "format_clock",
    "format_duration",
    "format_rate",
    "format_seconds",
    "format_size",
    "parse_duration",
    "parse_rate",
    "parse_size",
]

_UNIT_SECONDS: dict[str, float] = {
    "ms": 0.001,
    "msec": 0.001,
    "millisecond": 0.001,
    "milliseconds": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
}

#: A non-negative number with an optional unit (no unit = seconds). Kept identical to the
#: ``duration`` pattern in ``config/schema.json``.
DURATION_PATTERN = (
    r"^\s*([0-9]+(\.[0-9]*)?|\.[0-9]+)\s*"
    r"(ms|msec|milliseconds?|s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)?\s*$"
)
_DURATION_RE = re.compile(DURATION_PATTERN)

#: The durations a step of the vocabulary accepts (``30 seconds``, ``2 minutes``, ``500 ms``): unanchored, a
#: subset of :data:`DURATION_PATTERN` (no bare numbers, no hours), so step phrasings stay unambiguous.
STEP_DURATION_PATTERN = r"\d+(?:\.\d+)?\s*(?:ms|milliseconds?|s|seconds?|min|minutes?)"

_EXAMPLES = "e.g. '500 ms', '30 seconds', '2 minutes', '1h'"


def parse_duration(value: str | int | float) -> float:
    """Return ``value`` in seconds.

    Numbers are seconds. Strings are a number and an optional unit:
    ``parse_duration("500 ms") == 0.5``, ``parse_duration("1.5 min") == 90.0``.
    Raises ``ValueError`` naming the value for anything else (negative, NaN, unknown unit, bool).
    """
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r} ({_EXAMPLES})")
    if isinstance(value, int | float):
        seconds = float(value)
        if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
            raise ValueError(f"not a duration: {value!r} (must be a finite number of seconds >= 0)")
        return seconds
    if not isinstance(value, str):
        raise ValueError(f"not a duration: {value!r} ({_EXAMPLES})")
    match = _DURATION_RE.match(value)
    if match is None:
        raise ValueError(f"not a duration: {value!r} ({_EXAMPLES})")
    number = float(match.group(1))
    unit = match.group(3) or "s"
    return number * _UNIT_SECONDS[unit]


def _number(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def format_duration(seconds: float) -> str:
    """Format seconds for people, in a form ``parse_duration`` reads back.

    ``0.25 -> "250 ms"``, ``1 -> "1 second"``, ``45.5 -> "45.5 seconds"``, ``150 -> "2.5 minutes"``,
    ``7200 -> "2 hours"``. Minutes and hours are used only from 2 of them on and when the value is a
    whole number of half units, so ``125`` stays ``"125 seconds"``.
    """
    seconds = float(seconds)
    if math.isnan(seconds) or math.isinf(seconds):
        return str(seconds)
    sign = "-" if seconds < 0 else ""
    magnitude = abs(seconds)
    if 0 < magnitude < 1:
        return f"{sign}{_number(magnitude * 1000)} ms"
    for unit, size in (("hour", 3600.0), ("minute", 60.0)):
        units = magnitude / size
        if units >= 2 and math.isclose(units * 2, round(units * 2), abs_tol=1e-9):
            return f"{sign}{_number(units)} {unit}s"
    text = _number(magnitude)
    return f"{sign}{text} {'second' if text == '1' else 'seconds'}"


def format_seconds(value: float | None, places: int | None = 2, missing: str = "–") -> str:
    """Measured seconds for reports, verdicts and progress: ``format_seconds(1.5) == "1.50 s"``.

    ``places`` digits after the point (default 2; ``None`` = the shortest form, for limits people wrote:
    ``format_seconds(30, None) == "30 s"``); ``missing`` stands for ``None``."""
    if value is None:
        return missing
    number = f"{float(value):g}" if places is None else f"{float(value):.{places}f}"
    return f"{number} s"


_SIZE_RE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "ki": 1024, "kib": 1024, "m": 1000**2, "mb": 1000**2,
               "mi": 1024**2, "mib": 1024**2, "g": 1000**3, "gb": 1000**3, "gi": 1024**3, "gib": 1024**3,
               "t": 1000**4, "tb": 1000**4, "ti": 1024**4, "tib": 1024**4}


def format_clock(epoch: float) -> str:
    """A wall-clock instant as UTC ``HH:MM:SS.s`` (reports say UTC once beside a range)."""
    whole = int(epoch // 1)
    tenths = round((epoch - whole) * 10)
    if tenths == 10:
        whole, tenths = whole + 1, 0
    return time.strftime("%H:%M:%S", time.gmtime(whole)) + f".{tenths}"


def parse_size(value: str | int | float) -> int:
    """``"256 MiB"`` -> 268435456; a bare number is bytes. Raises ValueError naming the value."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r} (e.g. '256 MiB', '2 GB')")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"not a size: {value!r} (must be >= 0)")
        return int(value)
    match = _SIZE_RE.match(value)
    unit = (match.group(2) or "").lower() if match else ""
    if match is None or unit not in _SIZE_UNITS:
        raise ValueError(f"not a size: {value!r} (e.g. '256 MiB', '2 GB')")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


def format_size(size: int) -> str:
    """Bytes for people, in binary units: ``1536 -> "1.5 KiB"``, ``100 -> "100 B"``."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} B"


_RATE_UNITS = (("gbit", 10**9), ("mbit", 10**6), ("kbit", 10**3), ("gbps", 8 * 10**9), ("mbps", 8 * 10**6),
               ("kbps", 8 * 10**3), ("bit", 1), ("bps", 8))


def parse_rate(text: str | int | float) -> int:
    """``1mbit``, ``500 kbit`` (bits), ``10mbps`` (bytes) -> bits per second; a bare number is bits per second."""
    if isinstance(text, int | float):
        return int(text)
    raw = text.strip().lower().replace(" ", "")
    for unit, factor in _RATE_UNITS:
        if raw.endswith(unit):
            number = raw[: -len(unit)]
            try:
                value = float(number)
            except ValueError:
                break
            if value > 0:
                return int(value * factor)
            break
    raise ValueError(f"not a rate: {text!r} (e.g. '1 mbit', '500kbit', '10mbit')")


def format_rate(bits_per_second: float) -> str:
    """Bits per second for people, in the largest unit that keeps a number >= 1: ``1500000 -> "1.5 mbit"``."""
    for unit, factor in (("gbit", 10**9), ("mbit", 10**6), ("kbit", 10**3)):
        if bits_per_second >= factor:
            return f"{bits_per_second / factor:g} {unit}"
    return f"{bits_per_second:g} bit"
