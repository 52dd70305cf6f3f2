"""Recovery time in phases, data and state loss (RPO), and verdicts with reasons a product owner can read.

Phases of one failover, all measured from outside:

1. fault effective (journal ``fault.effective``),
2. DOWN detected by the standby (``toolkit.remote_down`` in the standby),
3. takeover: the application running in the standby (``toolkit.takeover``),
4. first output from the new active (received ledger, the DC's own ``processed_at``),
5. throughput back in the baseline band (output rate over a sliding window back to a fraction of the
   steady-state rate).

Where the deployment stamped a change itself and the stamp lies inside the window of the look that saw it,
the journal event carries ``happened_at`` and that instant is used; a phase the toolkit gave no signal for is
filled by inference and listed in ``inferred``.

The fault is dated on the tester's clock; a phase dated by a data center's stamp (``happened_at``,
``processed_at``, both already corrected by the data center's estimated clock offset) mixes clocks, so it states
``error_bound_s``: the bounds of the data center clocks it used, summed (:func:`support.clocks.error_bound`;
``summary.json`` adds their drift over the run). A phase dated by the tester's own looks has bound 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from support.clocks import Clocks, error_bound
from support.data.ledger import ReceivedRow, Table
from support.data.validate import DeliveryReport, OrderReport, SplitBrainReport, StateReport, output_times
from support.metrics.series import Baseline
from support.orchestration import Journal, JournalEvent
from support.units import format_clock as clock
from support.units import format_seconds as secs

PHASES = ("down_detected", "takeover", "first_output", "throughput_recovered")


PASSED, FAILED, NOT_JUDGED = "passed", "failed", "not judged"


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: passed, failed or not judged (its evidence was not recorded: an inconclusive
    result, never a pass), one sentence why, and the evidence behind it."""

    name: str
    passed: bool
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    status: str = ""

    def __post_init__(self) -> None:
        if not self.status:
            object.__setattr__(self, "status", PASSED if self.passed else FAILED)

    @classmethod
    def not_judged(cls, name: str, why: str, evidence: dict[str, Any] | None = None) -> Verdict:
        return cls(name, False, f"Not judged: {why}", dict(evidence or {}), NOT_JUDGED)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RecoveryTimeline:
    """Wall-clock instants of one failover, as seen from outside; ``None`` where not (yet) observed."""

    fault: str
    fault_effective: float | None
    standby: str
    down_detected: float | None
    takeover: float | None
    first_output: float | None
    throughput_recovered: float | None = None
    old: str = ""
    sources: dict[str, str] = field(default_factory=dict)
    inferred: tuple[str, ...] = ()
    baseline: Baseline | None = None
    fraction: float = 0.9
    clocks_used: dict[str, tuple[str, ...]] = field(default_factory=dict)  # phase -> data centers whose clock
    error_bounds: dict[str, float | None] = field(default_factory=dict)  # phase -> s (None: a clock not estimated)

    @property
    def rto(self) -> float | None:
        """Fault effective -> first output from the new active data center."""
        if self.fault_effective is None or self.first_output is None:
            return None
        return max(0.0, self.first_output - self.fault_effective)

    def phase(self, name: str) -> float | None:
        instant = getattr(self, name)
        if self.fault_effective is None or instant is None:
            return None
        return round(max(0.0, instant - self.fault_effective), 3)

    def phases(self) -> dict[str, float | None]:
        """Seconds from the fault becoming effective to each phase."""
        return {name: self.phase(name) for name in PHASES}

    def bound_note(self, name: str) -> str:
        """`` ± 4 ms`` after a phase (or ``"rto"``) that a data center's clock dated; "" for the tester's clock."""
        if name not in self.clocks_used:
            return ""
        bound = self.error_bounds.get(name)
        if bound is None:
            return f" ± ? (clock of {', '.join(self.clocks_used[name])} not estimated)"
        return " ± " + (f"{max(1, round(bound * 1000))} ms" if bound < 1 else secs(bound))

    def to_json(self) -> dict[str, Any]:
        rto = self.rto
        return {
            "fault": self.fault,
            "old": self.old,
            "standby": self.standby,
            "fault_effective": self.fault_effective,
            "instants": {name: getattr(self, name) for name in PHASES},
            "phases_s": self.phases(),
            "rto_s": None if rto is None else round(rto, 3),
            "sources": dict(self.sources),
            "inferred": list(self.inferred),
            "baseline_tps": None if self.baseline is None else round(self.baseline.mean, 3),
            "throughput_fraction": self.fraction,
            "error_bound_s": {name: self.error_bounds.get(name, 0.0) for name in (*PHASES, "rto")
                              if name == "rto" or getattr(self, name) is not None},
            "clocks_used": {name: list(dcs) for name, dcs in self.clocks_used.items()},
        }


def instant(event: JournalEvent | None) -> float | None:
    """When an event happened: the deployment's own stamp when the monitor validated one, else the look."""
    if event is None:
        return None
    stamp = event.fields.get("happened_at")
    return float(stamp) if isinstance(stamp, int | float) else event.t


def _received_table(received: Table | Sequence[ReceivedRow]) -> Table:
    if isinstance(received, Table):
        return received
    return Table.from_rows(list(received), ReceivedRow)


def throughput_baseline(received: Table | Sequence[ReceivedRow], start: float, end: float, width: float = 1.0
                        ) -> Baseline | None:
    """Output tuples per second (all data centers) over ``[start, end)``, in buckets of ``width`` seconds."""
    table = _received_table(received)
    if end - start < width:
        return None
    times = output_times(table) if len(table) else np.empty(0)
    buckets = int((end - start) // width)
    inside = times[(times >= start) & (times < start + buckets * width)]
    counts = np.bincount(((inside - start) // width).astype(np.int64), minlength=buckets)[:buckets]
    return Baseline.of("throughput", counts / width, start, start + buckets * width)


def throughput_recovered_at(times: np.ndarray, after: float, rate: float, fraction: float, window: float = 1.0
                            ) -> float | None:
    """The first output instant t >= ``after`` such that the outputs in ``[t, t + window)`` reach
    ``fraction * rate`` per second (only windows that ended before the last output are judged)."""
    ordered = np.sort(times)
    if not len(ordered) or rate <= 0:
        return None
    candidates = np.flatnonzero((ordered >= after) & (ordered + window <= ordered[-1]))
    if not len(candidates):
        return None
    ends = np.searchsorted(ordered, ordered[candidates] + window, side="left")
    hit = np.flatnonzero((ends - candidates) >= fraction * rate * window)
    return float(ordered[candidates[hit[0]]]) if len(hit) else None


def stamped_dcs(received: Table | Sequence[ReceivedRow]) -> tuple[str, ...]:
    """The data centers whose outputs carry their own ``processed_at`` (their clocks date output times)."""
    table = _received_table(received)
    if not len(table):
        return ()
    stamped = table["processed_at"] > 0
    return tuple(sorted(str(name) for code, name in enumerate(table.categories.get("dc", []))
                        if np.any(stamped & (table["dc"] == code))))


def recovery_timeline(
    journal: Journal,
    received: Table | Sequence[ReceivedRow],
    standby: str,
    *,
    old: str = "",
    baseline: Baseline | None = None,
    fraction: float = 0.9,
    window: float = 1.0,
    clocks: Clocks | None = None,
) -> RecoveryTimeline:
    """Assemble the phases from the journal (the latest fault, toolkit events) and the received ledger.

    A scenario with several faults (a failover, then a failback) is measured from its latest one. ``clocks``:
    the data centers' clock offsets the stamps were corrected by, for each phase's ``error_bound_s``."""
    fault = journal.last("fault.effective")
    start = fault.t if fault else None
    sources: dict[str, str] = {}
    inferred: list[str] = []
    down = takeover = None
    if start is not None:
        down = journal.first("toolkit.remote_down", after=start, dc=standby)
        takeover = journal.first("toolkit.takeover", after=start, dc=standby)
    for name, event in (("down_detected", down), ("takeover", takeover)):
        if event is not None:
            sources[name] = str(event.fields.get("source", "")) + (" (dc time)" if "happened_at" in event.fields
                                                                    else " (look)")
            if event.fields.get("inferred"):
                inferred.append(name)
    table = _received_table(received)
    first_output = recovered = None
    if start is not None and len(table):
        times = output_times(table)
        code, old_code = table.code("dc", standby), table.code("dc", old) if old else -1
        mine = (table["dc"] == code) & (times >= start) if code >= 0 else np.zeros(len(table), dtype=bool)
        note = ""
        if code >= 0 and old_code >= 0 and np.any((table["dc"] == code) & (times < start)):
            # active/active: the survivor emitted all along; what counts is its first output for the keys the
            # failed data center was serving
            old_keys = np.zeros(len(table.categories.get("key", [])) + 1, dtype=bool)
            old_keys[table["key"][(table["dc"] == old_code) & (times < start)]] = True
            mine &= old_keys[table["key"]]
            note = f", keys {old} served"
        after = times[mine]
        first_output = float(after.min()) if len(after) else None
        if first_output is not None:
            sources["first_output"] = f"received ledger (processed_at{note})"
        if first_output is not None and baseline is not None:
            recovered = throughput_recovered_at(times, first_output, baseline.mean, fraction, window)
            sources["throughput_recovered"] = f"received ledger, {secs(window, None)} window"
    down_at, takeover_at = instant(down), instant(takeover)
    if down_at is None and takeover_at is not None:
        down_at = takeover_at  # the standby must have seen DOWN before it took over: an upper bound
        inferred.append("down_detected")
        sources["down_detected"] = "inferred from the takeover"
    used: dict[str, tuple[str, ...]] = {}
    for name, event in (("down_detected", down if down is not None else takeover), ("takeover", takeover)):
        if event is not None and "happened_at" in event.fields and event.fields.get("source") != "output":
            used[name] = (str(event.fields.get("dc", standby)),)  # the data center's own stamp
    if first_output is not None and len(table):
        stamped = table["processed_at"] > 0
        if np.any(stamped):
            used["first_output"] = (standby,)
            if recovered is not None:
                used["throughput_recovered"] = stamped_dcs(table)
    if "first_output" in used:
        used["rto"] = used["first_output"]
    table_clocks = clocks or Clocks()
    bounds = {name: error_bound(table_clocks, dcs) for name, dcs in used.items()}
    return RecoveryTimeline(
        fault=str(fault.fields.get("kind", "")) if fault else "",
        fault_effective=start,
        standby=standby,
        down_detected=down_at,
        takeover=takeover_at,
        first_output=first_output,
        throughput_recovered=recovered,
        old=old,
        sources=sources,
        inferred=tuple(inferred),
        baseline=baseline,
        fraction=fraction,
        clocks_used=used,
        error_bounds=bounds,
    )


# ------------------------------------------------------------------------------------------ recovery


def check_takeover(timeline: RecoveryTimeline, dc: str, within: float) -> Verdict:
    took = timeline.phases()["takeover"]
    evidence = {"dc": dc, "limit_s": within, **timeline.to_json()}
    if timeline.fault_effective is None:
        return Verdict("takeover", False, "No fault became effective, so there was nothing to take over.", evidence)
    if took is None:
        return Verdict("takeover", False, f"{dc} never took over (limit {secs(within, None)}).", evidence)
    ok = took <= within
    verb = "took over" if ok else "took over too late:"
    return Verdict("takeover", ok, f"{dc} {verb} {secs(took)}{timeline.bound_note('takeover')} after the fault "
                                   f"(limit {secs(within, None)}).", evidence)


def check_detection(timeline: RecoveryTimeline, lost: str, limit: float) -> Verdict:
    """The standby's toolkit declared ``lost`` DOWN within ``limit`` seconds of the fault."""
    seen = timeline.phases()["down_detected"]
    evidence = {"lost": lost, "limit_s": limit, **timeline.to_json()}
    if timeline.fault_effective is None:
        return Verdict("detection", False, "No fault became effective, so there was nothing to detect.", evidence)
    if seen is None:
        return Verdict("detection", False,
                       f"{timeline.standby} never reported {lost} DOWN (limit {secs(limit, None)}).", evidence)
    return Verdict("detection", seen <= limit,
                   f"{timeline.standby} reported {lost} DOWN {secs(seen)}{timeline.bound_note('down_detected')} after "
                   f"the fault (limit {secs(limit, None)}).",
                   evidence)


def check_recovery_time(timeline: RecoveryTimeline, limit: float) -> Verdict:
    rto = timeline.rto
    evidence = {"limit_s": limit, **timeline.to_json()}
    if rto is None:
        return Verdict(
            "recovery_time", False,
            f"Output never resumed from {timeline.standby} after the fault (limit {secs(limit, None)}).", evidence,
        )
    ok = rto <= limit
    phases = ", ".join(f"{k.replace('_', ' ')} {secs(v)}" for k, v in timeline.phases().items() if v is not None)
    return Verdict(
        "recovery_time", ok,
        f"Output flowed again from {timeline.standby} {secs(rto)}{timeline.bound_note('rto')} after the fault "
        f"(limit {secs(limit, None)}; {phases}).",
        evidence,
    )


def check_throughput(timeline: RecoveryTimeline, fraction: float, within: float) -> Verdict:
    """Throughput back to ``fraction`` of the steady-state baseline within ``within`` seconds of the fault."""
    evidence = {"fraction": fraction, "limit_s": within, **timeline.to_json(),
                "baseline": None if timeline.baseline is None else timeline.baseline.to_json()}
    percent = f"{fraction * 100:g}%"
    if timeline.baseline is None:
        return Verdict("throughput_recovered", False,
                       "No steady-state baseline was measured, so recovery of throughput cannot be judged.", evidence)
    took = timeline.phase("throughput_recovered")
    rate = timeline.baseline.mean
    if took is None:
        return Verdict("throughput_recovered", False,
                       f"Throughput was not back to {percent} of the baseline ({rate:.0f} tuples/s) within "
                       f"{secs(within, None)} of the fault.", evidence)
    ok = took <= within
    return Verdict("throughput_recovered", ok,
                   f"Throughput was back to {percent} of the baseline ({rate:.0f} tuples/s) {secs(took)}"
                   f"{timeline.bound_note('throughput_recovered')} after the "
                   f"fault (limit {secs(within, None)}).", evidence)


FAILOVER_EVENTS = ("toolkit.remote_down", "toolkit.takeover")


def failover_events(journal: Journal, since: float, until: float | None = None,
                    kinds: tuple[str, ...] = FAILOVER_EVENTS, dc: str | None = None) -> list[JournalEvent]:
    """Toolkit events that mean a failover started: a DOWN declared or a takeover (``kinds``), optionally
    only those of one data center."""
    found = []
    for event in journal.events():
        if dc is not None and event.fields.get("dc") != dc:
            continue
        if event.event in kinds and event.t >= since and (
                until is None or event.t <= until):
            found.append(event)
    return found


def check_no_takeover(journal: Journal, dc: str, since: float, until: float) -> Verdict:
    """``dc`` did not start running the application (it may have seen its remote DOWN, as after an orderly
    shutdown of the remote, which the toolkit reports as DOWN with nothing to take over)."""
    takeovers = failover_events(journal, since, until, kinds=("toolkit.takeover",), dc=dc)
    downs = failover_events(journal, since, until, kinds=("toolkit.remote_down",), dc=dc)
    span = until - since
    evidence = {"dc": dc, "since": since, "until": until,
                "events": [{"event": e.event, "t": e.t, **e.fields} for e in [*downs, *takeovers][:20]]}
    seen_down = f" (it saw its remote DOWN {secs(downs[0].t - since)} in)" if downs else ""
    if not takeovers:
        return Verdict("no_takeover", True, f"{dc} did not take over during {secs(span, 0)}{seen_down}.", evidence)
    return Verdict("no_takeover", False,
                   f"{dc} took over {secs(takeovers[0].t - since)} into the {secs(span, 0)} watch{seen_down}.",
                   evidence)


def check_no_failover(journal: Journal, since: float, until: float) -> Verdict:
    events = failover_events(journal, since, until)
    span = until - since
    evidence = {"since": since, "until": until,
                "events": [{"event": e.event, "t": e.t, **e.fields} for e in events[:20]]}
    if not events:
        return Verdict("no_failover", True,
                       f"No data center declared its remote DOWN or took over during {secs(span, 0)}.", evidence)
    first = events[0]
    what = "declared its remote DOWN" if first.event == "toolkit.remote_down" else "took over"
    return Verdict("no_failover", False,
                   f"{first.fields.get('dc')} {what} {secs(first.t - since)} into the {secs(span, 0)} watch.", evidence)


# -------------------------------------------------------------------------------------- data loss


def check_lost(report: DeliveryReport, limit: int) -> Verdict:
    evidence = {**report.counts(), "limit": limit, "lost_ids_sample": report.lost_ids[:20]}
    ok = report.lost <= limit
    if report.lost == 0:
        text = f"No acknowledged tuple was lost ({report.acknowledged} acknowledged, {report.unknown} unknown)."
    else:
        text = (
            f"{report.lost} of {report.acknowledged} acknowledged tuples never came out "
            f"(limit {limit}); they were sent within {secs(report.loss_window)}."
        )
    return Verdict("lost", ok, text, evidence)


def check_loss_window(report: DeliveryReport, limit: float) -> Verdict:
    ok = report.loss_window <= limit
    evidence = {**report.counts(), "limit_s": limit, "lost_ids_sample": report.lost_ids[:20]}
    text = f"Lost acknowledged tuples span {secs(report.loss_window)} of input (limit {secs(limit, None)})."
    return Verdict("loss_window", ok, text, evidence)


def check_no_duplicates(report: DeliveryReport, limit: int = 0) -> Verdict:
    evidence = {**report.counts(), "limit": limit, "duplicated_ids_sample": report.duplicated_ids[:20]}
    if not report.duplicated:
        return Verdict("duplicated", True, f"No tuple came out twice ({report.received} received).", evidence)
    return Verdict("duplicated", report.duplicated <= limit,
                   f"{report.duplicated} tuples came out more than once (limit {limit}).", evidence)


def check_at_least_once(report: DeliveryReport) -> Verdict:
    evidence = {**report.counts(), "lost_ids_sample": report.lost_ids[:20]}
    ok = report.lost == 0
    text = (
        f"Every acknowledged tuple came out at least once ({report.acknowledged} acknowledged)."
        if ok
        else f"{report.lost} acknowledged tuples never came out."
    )
    return Verdict("at_least_once", ok, text, evidence)


def check_unknown(report: DeliveryReport, limit: int = 0) -> Verdict:
    """At most ``limit`` tuples sent without a definite answer: neither acknowledged nor refused (the request
    went out but the connection dropped or timed out, or only part of a batch was accepted)."""
    evidence = {**report.counts(), "limit": limit}
    if not report.unknown:
        return Verdict("unknown", True,
                       f"Every tuple sent got a definite answer ({report.acknowledged} acknowledged, "
                       f"{report.failed} refused).", evidence)
    came_out = report.unknown_delivered
    return Verdict("unknown", report.unknown <= limit,
                   f"{report.unknown} of {report.sent} tuples sent got no definite answer (limit {limit}); "
                   f"{came_out} of those came out anyway, {report.unknown - came_out} did not.", evidence)


NO_CHECKSUM = "the application passes no checksum through"


def check_integrity(report: DeliveryReport, checksum: bool = True, unparsed: int = 0) -> Verdict:
    """No output tuple corrupted, none delivered although its send was refused, none never sent, none that could
    not be parsed (``unparsed``: malformed output tuples the readers recorded). Without a ``checksum`` passed
    through the application, corruption is not judged: the verdict is about the rest, and says so; with nothing
    wrong in the rest it is not judged."""
    counts = report.counts()
    evidence = {**counts, "unparsed": unparsed, "corrupted_ids_sample": report.corrupted_ids[:20],
                "phantom_ids_sample": report.phantom_ids[:20], "unexpected_ids_sample": report.unexpected_ids[:20]}
    problems = []
    if unparsed:
        problems.append(f"{unparsed} could not be parsed (malformed; their raw text is in the journal, "
                        "reader.unparsed)")
    if not checksum:
        evidence["corrupted"] = None
        evidence["corruption"] = NO_CHECKSUM
    if report.corrupted_ids and checksum:
        problems.append(f"{len(report.corrupted_ids)} came out altered (checksum mismatch)")
    if report.phantom_ids:
        problems.append(f"{len(report.phantom_ids)} came out although the application refused them")
    if report.unexpected_ids:
        problems.append(f"{len(report.unexpected_ids)} came out that were never sent")
    if not problems and not checksum:
        return Verdict.not_judged("integrity", f"{NO_CHECKSUM}, so corruption cannot be seen; every output tuple "
                                               f"was expected ({report.received} received, none refused or never "
                                               "sent).", evidence)
    if not problems:
        return Verdict("integrity", True, f"Every output tuple was intact and expected ({report.received} received).",
                       evidence)
    unjudged = "" if checksum else f" (corruption not judged: {NO_CHECKSUM})"
    return Verdict("integrity", False, "Output tuples: " + "; ".join(problems) + unjudged + ".", evidence)


# ------------------------------------------------------------------------------- order, split brain


def check_order(report: OrderReport) -> Verdict:
    evidence = report.to_json()
    if not report.reordered:
        return Verdict("order", True,
                       f"Every data center emitted each key's tuples in order ({report.checked} outputs).",
                       evidence)
    where = ", ".join(f"{dc}: {n}" for dc, n in report.by_dc.items())
    return Verdict("order", False,
                   f"{report.reordered} tuples of {report.keys} keys came out after a later tuple of the same "
                   f"key ({where}).", evidence)


def split_brain_window(report: SplitBrainReport, fault_at: float | None) -> str:
    """Where the overlaps lie: from the first one's start to the last one's end, relative to the fault."""
    if not report.windows:
        return ""
    start, end = report.windows[0][0], report.windows[-1][1]
    spans = f" in {len(report.windows)} spans" if len(report.windows) > 1 else ""
    if fault_at is None:
        return f", between {clock(start)} and {clock(end)} UTC{spans}"
    return (f", from {secs(start - fault_at)} to {secs(end - fault_at)} after the fault "
            f"({clock(start)}–{clock(end)} UTC{spans})")


def check_single_emitter(report: SplitBrainReport, fault_at: float | None = None) -> Verdict:
    evidence = report.to_json()
    if not report.keys:
        return Verdict("single_emitter", True, "Only one data center emitted output for any key at a time.",
                       evidence)
    return Verdict("single_emitter", False,
                   f"Split brain: {' and '.join(report.dcs) or 'two data centers'} both emitted output for "
                   f"{report.keys} keys during {secs(report.overlap_s)}{split_brain_window(report, fault_at)}.",
                   evidence)


def check_both_emit(report: SplitBrainReport, fault_at: float | None = None) -> Verdict:
    """The toolkit has no fencing: after a partition both data centers run the application and emit. This check
    states that outcome (it fails when only one data center emitted at a time)."""
    evidence = report.to_json()
    if report.keys:
        return Verdict("both_emit", True,
                       f"{' and '.join(report.dcs) or 'Two data centers'} both emitted output for {report.keys} "
                       f"keys during {secs(report.overlap_s)}{split_brain_window(report, fault_at)}.", evidence)
    return Verdict("both_emit", False, "Only one data center emitted output for any key at a time.", evidence)


# ---------------------------------------------------------------------------------------------- state


def check_consistent_state(report: StateReport) -> Verdict:
    evidence = report.to_json()
    if report.keys_judged == 0:
        return Verdict("consistent_state", False,
                       f"{report.new} emitted no output for keys {report.old} had served, so its restored state "
                       f"cannot be judged.", evidence)
    if report.inconsistent:
        sample = report.samples[0] if report.samples else {}
        return Verdict("consistent_state", False,
                       f"{report.new} resumed {report.inconsistent} of {report.keys_judged} keys from a state "
                       f"{report.old} never had (e.g. {sample.get('key')}: {sample.get('reason')}).", evidence)
    note = f"; {report.empty} started empty (never replicated)" if report.empty else ""
    if report.unverified:
        note += (f"; {report.unverified} resumed from a state that none of {report.old}'s outputs shows, within what "
                 f"it processed (the outputs of those updates were lost)")
    return Verdict("consistent_state", True,
                   f"{report.new} resumed all {report.keys_judged} keys from a state {report.old} really had"
                   f"{note}.", evidence)


def check_state_not_inherited(report: StateReport) -> Verdict:
    """The new active started from an empty state for the old active's keys: what a takeover whose failover
    script submits the application without handing it the stored snapshots does (the toolkit's reference
    script). Fails for every key that resumed from the old active's state."""
    evidence = report.to_json()
    if report.keys_judged == 0:
        return Verdict("state_not_inherited", False,
                       f"{report.new} emitted no output for keys {report.old} had served, so whether it started "
                       "empty cannot be judged.", evidence)
    inherited = report.keys_judged - report.empty
    if inherited:
        return Verdict("state_not_inherited", False,
                       f"{report.new} resumed {inherited} of {report.keys_judged} keys from the state of "
                       f"{report.old}, not from empty.", evidence)
    return Verdict("state_not_inherited", True,
                   f"{report.new} started all {report.keys_judged} keys of {report.old} from an empty state: "
                   f"{report.lost_updates} state updates of {report.old} were not carried over.", evidence)


def check_state_loss(report: StateReport, limit: float) -> Verdict:
    evidence = {**report.to_json(), "limit_s": limit}
    if report.keys_judged == 0:
        return Verdict("state_loss_window", False,
                       f"{report.new} emitted no output for keys {report.old} had served, so lost state updates "
                       f"cannot be counted.", evidence)
    ok = report.loss_window <= limit and not report.inconsistent
    text = (f"{report.new} lost {report.lost_updates} state updates made by {report.old}, spanning "
            f"{secs(report.loss_window)} (limit {secs(limit, None)}).")
    if report.inconsistent:
        text += f" {report.inconsistent} keys' state was inconsistent and could not be counted."
    return Verdict("state_loss_window", ok, text, evidence)
