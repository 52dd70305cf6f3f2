"""The time a lab data center REPORTS: true time plus the skew set by ``python -m lab skew``.

A real pair's data centers run on their own clocks, which disagree with each other and with the tester's by an
offset NTP keeps small but never zero. The lab's processes all share one kernel clock, so to show that the
tester finds a clock offset within its stated bound, one data center's reported times can be shifted:

    python -m lab skew --dc dc2 --by 3s      # dc2 reports times 3 s ahead of true time
    python -m lab skew --dc dc1 --by -1.5s   # dc1 reports times 1.5 s behind
    python -m lab skew --dc dc2 --by 0       # back to true time
    python -m lab skew                       # show the skews in force

The skew lives in ``/run/xdc-lab/skew-<dc>`` (seconds, one float). Every process of that data center (the
instance service: REST timestamps and HTTP ``Date`` headers of REST and data exchange; its PEs: output tuples'
``processed_at``, sink arrival times, application trace lines) reads it on each stamp (one ``stat`` per stamp;
the file is re-read only when it changes), so a change takes effect at once, with no rebuild or restart. Time
the processes use among themselves (timeouts, heartbeat intervals) is monotonic and never skewed; the ground
truth log (``/run/xdc-lab/truth.jsonl``) stays in true time. ``lab up`` and ``lab reset`` set every skew back
to 0.

Standard library only: imported by the instance service and by every PE.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from lab import paths

_bound: str | None = None  # the data center of this process (``bind``)
_lock = threading.Lock()
_cache: dict[str, tuple[tuple[int, int, int], float]] = {}  # dc -> (file identity, skew)


def skew_file(dc: str) -> Path:
    return paths.LAB_DIR / f"skew-{dc}"


def bind(dc: str) -> None:
    """This process stamps times for ``dc`` (the instance service and each PE call it once at start)."""
    global _bound
    _bound = dc


def skew(dc: str | None = None) -> float:
    """The skew (s) in force for ``dc`` (default: this process's data center); 0 when none is set."""
    dc = dc or _bound
    if dc is None:
        return 0.0
    path = skew_file(dc)
    try:
        st = os.stat(path)
    except OSError:
        return 0.0
    ident = (st.st_ino, st.st_mtime_ns, st.st_size)
    with _lock:
        known = _cache.get(dc)
        if known is not None and known[0] == ident:
            return known[1]
    try:
        value = float(path.read_text(encoding="utf-8").strip() or 0.0)
    except (OSError, ValueError):
        value = 0.0
    with _lock:
        _cache[dc] = (ident, value)
    return value


def now(dc: str | None = None) -> float:
    """Epoch seconds as ``dc`` (default: this process's data center) reports them."""
    return time.time() + skew(dc)


def now_ms(dc: str | None = None) -> int:
    return int(now(dc) * 1000)


def set_skew(dc: str, seconds: float) -> None:
    """Make ``dc`` report times ``seconds`` off true time (0 removes the file). Written atomically."""
    path = skew_file(dc)
    if not seconds:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(f"{seconds!r}\n", encoding="utf-8")
    os.replace(tmp, path)


def reset() -> None:
    """Every data center back to true time."""
    for dc in paths.DCS:
        skew_file(dc).unlink(missing_ok=True)


def parse_seconds(text: str) -> float:
    """``2.5s``, ``-1500ms``, ``3`` (seconds) -> seconds."""
    value = text.strip().lower()
    for suffix, scale in (("ms", 0.001), ("s", 1.0)):
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * scale
    return float(value)


def describe() -> str:
    return "\n".join(f"{dc}: {skew(dc):+g} s" for dc in paths.DCS)
