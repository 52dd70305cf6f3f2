"""Each data center's clock offset from the tester's, NTP-style, with an error bound.

Faults, toolkit events and outputs are stamped by three clocks: the tester's (``t_send``, ``t_recv``, every
journal ``t``, the instant a fault became effective) and each data center's (trace lines, job ``submitTime``,
output tuples' ``processed_at``, sink arrival times). The tester's clock is the reference timeline; a data
center's stamp ``S`` is put on it as ``S - offset``.

**Method.** One exchange is a request the tester sends at ``t0`` (its clock), answered with a stamp ``S`` of the
data center's clock, received at ``t1``. The stamp has a resolution ``r`` (1 s for an HTTP ``Date`` header, which
truncates): the data center's clock read ``[S, S + r)`` at some instant between ``t0`` and ``t1``. So its offset
``θ`` (data center minus tester) lies in ``[S - t1, S + r - t0]``. Exchanges made within a few seconds (no drift
worth counting) are intersected: the estimate is the middle of the intersection and the bound its half width.
For a millisecond stamp this is NTP's estimate ``S - (t0 + t1) / 2 ± ((t1 - t0) / 2 + r)`` of the exchange with the
smallest round trip; for a whole-second ``Date`` header the probe times its requests at the instants the
data center's second is predicted to turn over (a bisection, as ``htpdate`` does), which narrows the bound
from half a second to about one round trip. If the intervals do not intersect (the data center's clock was
stepped while it was sampled, or a stamp was not read at answer time) the exchange with the smallest round
trip alone is used, with its own, wider, bound.

**Sources.** Timestamps the real interfaces return at answer time: the HTTP ``Date`` header of the REST
management API and of the data exchange (every HTTP server sends one; RFC 9110 §6.6.1). Both are read at the
start and at the end of every run (``before_all``/``after_all``); the start estimate is written to ``run.json``
at once, so a run that crashes still has it. A data center's estimate is the narrower of its two sources; both
are kept.

**Error bounds.** A phase that compares a data center's stamp with the tester's clock (a takeover dated by the
toolkit's trace line, a first output dated by ``processed_at``) is off by at most that data center's bound,
widened by how far its offset drifted from the start to the end of the run (:meth:`Clocks.drift_allowance`); a
phase from two data centers' stamps by the sum of both. :func:`error_bound` computes it; phases state it as
``error_bound_s``.
"""

from __future__ import annotations

import email.utils
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import requests

log = logging.getLogger(__name__)

#: the resolution (s) of an HTTP ``Date`` header: whole seconds, truncated
DATE_RESOLUTION = 1.0
#: stop probing a source once its bound is this narrow (s) ...
TARGET_BOUND = 0.005
#: ... or after this long (s) or this many exchanges
MAX_SECONDS = 2.5
MAX_SAMPLES = 60
#: a sweep across the window of a Date header's predicted turn-over asks this many times at most
SWEEP_STEPS = 32
#: (connect, read) timeout (s) of one exchange: a data center that does not answer costs seconds, not minutes
PROBE_TIMEOUT = (1.0, 2.0)


@dataclass(frozen=True)
class Sample:
    """One exchange: sent at ``t0``, answered at ``t1`` (tester clock) with the data center's ``stamp``, which
    has ``resolution`` seconds (the clock read ``[stamp, stamp + resolution)`` between ``t0`` and ``t1``)."""

    t0: float
    t1: float
    stamp: float
    resolution: float = 0.001

    @property
    def rtt(self) -> float:
        return self.t1 - self.t0

    def interval(self) -> tuple[float, float]:
        """The offsets (data center minus tester) this exchange allows."""
        return self.stamp - self.t1, self.stamp + self.resolution - self.t0


@dataclass(frozen=True)
class Estimate:
    """A data center's clock offset (its clock minus the tester's, s) within ``± bound_s``, from ``source``,
    estimated at ``at`` (tester clock)."""

    offset_s: float
    bound_s: float
    source: str
    at: float
    samples: int = 0
    min_rtt_s: float | None = None
    consistent: bool = True
    others: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_tester(self, stamp: float) -> float:
        """A stamp of the data center's clock on the tester's timeline."""
        return stamp - self.offset_s

    def to_dc(self, instant: float) -> float:
        """A tester instant on the data center's clock."""
        return instant + self.offset_s

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"offset_s": round(self.offset_s, 6), "bound_s": round(self.bound_s, 6),
                               "source": self.source, "at": self.at, "samples": self.samples,
                               "min_rtt_s": None if self.min_rtt_s is None else round(self.min_rtt_s, 6)}
        if not self.consistent:
            doc["consistent"] = False
        if self.others:
            doc["others"] = self.others
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Estimate:
        return cls(float(doc["offset_s"]), float(doc["bound_s"]), str(doc.get("source", "")), float(doc.get("at", 0)),
                   int(doc.get("samples") or 0), _float_or_none(doc.get("min_rtt_s")),
                   bool(doc.get("consistent", True)))


def _float_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def combine(samples: Iterable[Sample], source: str, at: float | None = None) -> Estimate | None:
    """The offset all ``samples`` allow (the middle of the intersection of their intervals, bound its half
    width); when they contradict each other, the sample with the smallest round trip alone (``consistent``
    false). None without samples."""
    got = list(samples)
    if not got:
        return None
    lo = max(s.interval()[0] for s in got)
    hi = min(s.interval()[1] for s in got)
    best = min(got, key=lambda s: s.rtt)
    consistent = lo <= hi
    if not consistent:
        lo, hi = best.interval()
    return Estimate((lo + hi) / 2, (hi - lo) / 2, source, got[-1].t1 if at is None else at, len(got), best.rtt,
                    consistent)


def tick_window(lo: float, hi: float, resolution: float, after: float) -> tuple[float, float]:
    """The tester instants between which the data center's clock turns over to its next multiple of
    ``resolution`` whose window ends after ``after``, if the offset lies in ``[lo, hi]``."""
    k = math.ceil((after + lo) / resolution)
    return k * resolution - hi, k * resolution - lo


def probe(read: Callable[[], float | None], source: str, resolution: float = DATE_RESOLUTION, *,
          target: float = TARGET_BOUND, max_seconds: float = MAX_SECONDS, max_samples: int = MAX_SAMPLES,
          clock: Callable[[], float] = time.time, wait: Callable[[float], object] | None = None,
          prior: tuple[float, float] | None = None) -> Estimate | None:
    """Estimate one source's offset: exchanges ``read()`` (one request; the data center's stamp in epoch s, or
    None when it gave none) until the bound is ``target`` or about a round trip, or ``max_seconds`` or
    ``max_samples`` are spent. A fine stamp (``resolution`` within a few round trips) is simply asked a few
    times. A coarse one (an HTTP ``Date``) is asked at instants swept across the window in which its next
    turn-over is predicted, each pass ``1/SWEEP_STEPS`` of the previous window apart (never closer than a round
    trip), until the turn-over is caught between two answers: each pass (one per second, the first one half a
    second on average) narrows the bound that much. ``wait(s)``
    paces the requests (default: an event wait). None when no exchange gave a stamp.

    ``prior`` (an offset range known from an earlier estimate, widened for drift: see :func:`prior_of`) only
    aims the sweep: the first pass then sweeps that narrow window and usually ends the probe (the end of a run
    takes half a second on average instead of about two). The estimate is made of the exchanges alone; a
    prior they contradict (the clock was stepped, or drifted further) is dropped and the probe goes on as
    without it."""
    pause: Callable[[float], object] = wait or threading.Event().wait
    samples: list[Sample] = []
    started = clock()
    failures = 0
    sweep: tuple[float, float] | None = None  # the window being swept and the step of the sweep
    aimed: float | None = None  # the end of the window of the turn-over the prior aimed the sweep at
    while len(samples) < max_samples and clock() - started < max_seconds:
        t0 = clock()
        stamp = read()
        t1 = clock()
        if stamp is None:
            failures += 1
            if failures >= 2 or not samples:  # a source that does not answer at once is left out
                break
            continue
        samples.append(Sample(t0, t1, stamp, resolution))
        found = combine(samples, source)
        if found is None:
            continue
        if not found.consistent:  # the clock moved under the probe: start over from this exchange
            samples, sweep = samples[-1:], None
            continue
        rtt = found.min_rtt_s or 0.0
        if resolution <= 4 * rtt:  # fine stamps: the smallest round trip is all that helps
            if found.bound_s <= target or len(samples) >= 8:
                break
            continue
        if found.bound_s <= max(target, 1.5 * rtt):
            break
        lo, hi = found.offset_s - found.bound_s, found.offset_s + found.bound_s
        now = clock()
        w0, w1 = tick_window(lo, hi, resolution, now + rtt)
        if prior is not None and max(lo, prior[0]) <= min(hi, prior[1]):
            a0, a1 = tick_window(max(lo, prior[0]), min(hi, prior[1]), resolution, now + rtt)
            if aimed is None or abs(aimed - a1) < resolution / 2:  # the one turn-over the prior aims at
                aimed, (w0, w1) = a1, (a0, a1)
            else:
                prior = None  # it had its pass: the exchanges alone aim the sweep from here on
        else:
            prior = None  # the exchanges say otherwise
        if sweep is None or abs(sweep[0] - w1) > rtt + 1e-9:  # a new turn-over: a new, finer sweep
            sweep = (w1, max((w1 - w0) / SWEEP_STEPS, rtt))
        at = max(w0 + sweep[1], now + rtt)  # the instant the answer should be stamped ...
        send = at - rtt / 2  # ... about half a round trip after the request leaves
        if send - started > max_seconds:
            break
        delay = send - clock()
        if delay > 0:
            pause(delay)
    return combine(samples, source)


#: how far a clock may drift from an earlier estimate, per second elapsed (NTP's tolerance, 500 ppm), ...
PRIOR_DRIFT_RATE = 5e-4
#: ... plus this (s), for a prior to aim the probe of a later estimate
PRIOR_MARGIN = 0.01


def prior_of(earlier: Estimate | None, now: float) -> tuple[float, float] | None:
    """The offset range an ``earlier`` estimate leaves at ``now``: its bound, widened by the most an undisciplined
    clock drifts since (``PRIOR_DRIFT_RATE``) and ``PRIOR_MARGIN``. None without an earlier, consistent one."""
    if earlier is None or not earlier.consistent:
        return None
    width = earlier.bound_s + PRIOR_MARGIN + PRIOR_DRIFT_RATE * max(0.0, now - earlier.at)
    return earlier.offset_s - width, earlier.offset_s + width


def http_date(response: requests.Response) -> float | None:
    """The epoch seconds of a response's ``Date`` header (None without a readable one)."""
    value = response.headers.get("Date")
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def date_reader(client: Any) -> Callable[[], float | None]:
    """One GET of ``client.root_url`` over the client's session; its ``Date`` header. Any HTTP answer has one
    (an error status too); no answer gives None."""

    def read() -> float | None:
        try:
            response = client.session.get(client.root_url, timeout=PROBE_TIMEOUT)
        except requests.RequestException as exc:
            log.debug("clock probe of %s: %s", client.root_url, exc)
            return None
        response.close()
        return http_date(response)

    return read


def estimate_dc(sources: Mapping[str, Callable[[], float | None]], **options: Any) -> Estimate | None:
    """A data center's offset: every source probed (in parallel), the estimate with the narrowest bound chosen,
    the others kept under ``others``. None when no source answered."""
    found: dict[str, Estimate | None] = {}

    def run(name: str, read: Callable[[], float | None]) -> None:
        try:
            found[name] = probe(read, name, **options)
        except Exception:  # a clock probe never stops a run
            log.exception("clock probe %s failed", name)
            found[name] = None

    threads = [threading.Thread(target=run, args=item, name=f"clock-{item[0]}", daemon=True)
               for item in sources.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    got = [e for e in found.values() if e is not None]
    if not got:
        return None
    best = min(got, key=lambda e: e.bound_s)
    others = {e.source: {k: v for k, v in e.to_json().items() if k != "source"} for e in got if e is not best}
    return replace(best, others=others)


def estimate_all(rest: Mapping[str, Any], exchange: Mapping[str, Any], earlier: Mapping[str, Estimate] | None = None,
                 **options: Any) -> dict[str, Estimate | None]:
    """Every data center's offset from its REST and data exchange ``Date`` headers, all probed in parallel;
    ``earlier`` estimates (the run's start, for its end) aim the probes (``prior``)."""
    found: dict[str, Estimate | None] = {}

    def run(dc: str) -> None:
        sources: dict[str, Callable[[], float | None]] = {}
        if dc in rest:
            sources["rest Date"] = date_reader(rest[dc])
        if dc in exchange:
            sources["data exchange Date"] = date_reader(exchange[dc])
        prior = prior_of((earlier or {}).get(dc), time.time())
        found[dc] = estimate_dc(sources, **({"prior": prior} if prior is not None else {}), **options)

    threads = [threading.Thread(target=run, args=(dc,), name=f"clock-{dc}", daemon=True)
               for dc in sorted({*rest, *exchange})]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return found


# ------------------------------------------------------------------------------------ the run's clocks


@dataclass(frozen=True)
class Clocks:
    """The offsets of a run: per data center, the estimate at the start and (once known) at the end."""

    start: dict[str, Estimate] = field(default_factory=dict)
    end: dict[str, Estimate] = field(default_factory=dict)

    def offset(self, dc: str) -> float:
        """The offset the tester corrects ``dc``'s stamps by: the start estimate (0 when there is none)."""
        found = self.start.get(dc)
        return found.offset_s if found is not None else 0.0

    def offsets(self) -> dict[str, float]:
        return {dc: e.offset_s for dc, e in self.start.items()}

    def drift(self, dc: str) -> float:
        """How far ``dc``'s estimated offset moved from the start to the end of the run (0 until the end is
        known)."""
        if dc in self.start and dc in self.end:
            return abs(self.end[dc].offset_s - self.start[dc].offset_s)
        return 0.0

    def drift_allowance(self, dc: str) -> float:
        """What the end estimate adds to the start bound of ``dc``: a stamp made while the offset moved from its
        start to its end value is corrected by the start estimate ``s`` within ``max(bound(s), |e - s| +
        bound(e))`` (the offset between the two, ``e`` the end estimate); this is that minus the start bound (0
        until the end is known, or when the end estimate lies inside the start bound)."""
        if dc not in self.start or dc not in self.end:
            return 0.0
        start, end = self.start[dc], self.end[dc]
        return max(0.0, self.drift(dc) + end.bound_s - start.bound_s)

    def bound(self, dc: str) -> float | None:
        """How far a stamp of ``dc``, corrected by the start offset, may be off the tester's timeline: the start
        bound, widened by the drift the end estimate shows (:meth:`drift_allowance`); None when ``dc``'s clock was
        not estimated."""
        found = self.start.get(dc)
        return None if found is None else found.bound_s + self.drift_allowance(dc)

    def to_json(self) -> dict[str, Any]:
        """``summary.json``'s ``clocks``: ``{dc: {"start": {...}, "end": {...}, "drift_s": ...}}``."""
        doc: dict[str, Any] = {}
        for dc in sorted({*self.start, *self.end}):
            entry: dict[str, Any] = {}
            for name, table in (("start", self.start), ("end", self.end)):
                if dc in table:
                    entry[name] = table[dc].to_json()
            if dc in self.start and dc in self.end:
                entry["drift_s"] = round(self.drift(dc), 6)
            doc[dc] = entry
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any] | None) -> Clocks:
        start: dict[str, Estimate] = {}
        end: dict[str, Estimate] = {}
        for dc, entry in (doc or {}).items():
            if not isinstance(entry, Mapping):
                continue
            for name, table in (("start", start), ("end", end)):
                value = entry.get(name)
                if isinstance(value, Mapping) and "offset_s" in value:
                    table[str(dc)] = Estimate.from_json(value)
        return cls(start, end)


def error_bound(clocks: Clocks, dcs: Iterable[str]) -> float | None:
    """The error bound (s) of a measurement that puts the stamps of ``dcs`` on the tester's timeline: the sum of
    their bounds (each with its drift). 0 when no data center clock is involved; None when one of them was not
    estimated (the bound is unknown)."""
    total = 0.0
    for dc in sorted(set(dcs)):
        bound = clocks.bound(dc)
        if bound is None:
            return None
        total += bound
    return round(total, 6)


def describe(clocks: Mapping[str, Estimate | None]) -> str:
    """One line per data center: ``dc2: +3.0012 s ± 0.0031 s (rest Date, 9 exchanges)``."""
    lines = []
    for dc, found in sorted(clocks.items()):
        if found is None:
            lines.append(f"{dc}: not estimated (no answer)")
        else:
            lines.append(f"{dc}: {found.offset_s:+.4f} s ± {found.bound_s:.4f} s ({found.source}, "
                         f"{found.samples} exchanges)")
    return "\n".join(lines)
