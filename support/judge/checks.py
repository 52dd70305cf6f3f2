"""The claims a ``Then`` step makes, judged over a history: each check reads only the history (as far as it was
recorded) and the settings, and says whether its verdict is final (nothing recorded later can change it).

A recovery check is final once its phase was seen or its limit has passed; a watch (no failover, no takeover)
once its duration has passed or it saw what it watches for; a data or state check once its window (the fault,
the recovery and a settling period, see :func:`~support.judge.facts.data_window`) is recorded. A check whose
window was not recorded by its deadline is *not judged*, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from support import measure
from support.data.ledger import Table
from support.data.validate import check_delivery, check_order, check_state
from support.judge import facts
from support.judge.history import History, sent_until
from support.judge.settings import JudgeSettings
from support.measure import Verdict
from support.orchestration import JournalEvent
from support.units import format_seconds as secs

MONITOR_SLACK = 1.0  # the toolkit monitor polls; a phase seen up to this late still counts
OUTPUT_SLACK = 1.5


@dataclass(frozen=True)
class Judgement:
    """A verdict and whether it is final; while not final, ``deadline`` is when waiting stops making sense."""

    verdict: Verdict
    final: bool
    deadline: float | None = None


Params = Mapping[str, Any]
Check = Callable[[History, JournalEvent, Params], Judgement]
CHECKS: dict[str, Check] = {}


def check(name: str) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        CHECKS[name] = fn
        return fn
    return register


def judge_claim(history: History, claim: JournalEvent) -> Judgement:
    """Judge one claim (a ``claim`` journal event) over ``history``."""
    kind = str(claim.fields.get("check", ""))
    fn = CHECKS.get(kind)
    if fn is None:
        return Judgement(Verdict.not_judged(kind or "unknown", f"this version knows no check named {kind!r}"), True)
    return fn(history, claim, claim.fields.get("params") or {})


def _final(verdict: Verdict) -> Judgement:
    return Judgement(verdict, True)


def _pending(verdict: Verdict, deadline: float) -> Judgement:
    return Judgement(verdict, False, deadline)


def _until(history: History, verdict: Verdict, deadline: float) -> Judgement:
    """Final once ``deadline`` has passed in the history, else pending."""
    return _final(verdict) if history.as_of >= deadline else _pending(verdict, deadline)


def _no_fault(name: str, what: str) -> Judgement:
    return _final(Verdict(name, False, f"No fault became effective, so there was nothing to {what}.", {}))


# ---------------------------------------------------------------------------------------------- recovery


@check("takeover")
def _takeover(h: History, claim: JournalEvent, p: Params) -> Judgement:
    dc, within = str(p["dc"]), float(p["within"])
    fault = facts.latest_fault(h, claim.t)
    if fault is None:
        return _no_fault("takeover", "take over")
    line = facts.timeline(h, standby=dc)
    verdict = measure.check_takeover(line, dc, within)
    return _final(verdict) if line.takeover is not None else _until(h, verdict, fault.t + within + MONITOR_SLACK)


@check("detection")
def _detection(h: History, claim: JournalEvent, p: Params) -> Judgement:
    lost, within = str(p["lost"]), float(p["within"])
    fault = facts.latest_fault(h, claim.t)
    if fault is None:
        return _no_fault("detection", "detect")
    old, _ = facts.pair(h, fault)
    if lost != old:
        return _final(Verdict("detection", False, f'"{lost}" is not the data center this scenario takes down '
                                                  f"({old} is).", {"lost": lost, "old": old}))
    line = facts.timeline(h)
    verdict = measure.check_detection(line, lost, within)
    return _final(verdict) if line.down_detected is not None else _until(h, verdict,
                                                                         fault.t + within + MONITOR_SLACK)


@check("recovery_time")
def _recovery_time(h: History, claim: JournalEvent, p: Params) -> Judgement:
    limit = float(p["limit"])
    fault = facts.latest_fault(h, claim.t)
    if fault is None:
        return _no_fault("recovery_time", "recover from")
    line = facts.timeline(h)
    verdict = measure.check_recovery_time(line, limit)
    return _final(verdict) if line.rto is not None else _until(h, verdict, fault.t + limit + OUTPUT_SLACK)


@check("throughput")
def _throughput(h: History, claim: JournalEvent, p: Params) -> Judgement:
    fraction, within = float(p["fraction"]), float(p["within"])
    fault = facts.latest_fault(h, claim.t)
    if fault is None:
        return _no_fault("throughput_recovered", "recover from")
    line = facts.timeline(h, fraction)
    if line.baseline is None:
        return _final(Verdict.not_judged(
            "throughput_recovered", "no steady-state baseline was measured ('Given the system has been steady for "
            "...' must come before the fault), so the recovery of throughput has nothing to compare with.",
            {"fraction": fraction, "limit_s": within}))
    back, _ = facts.throughput_back(h, fault, fraction)
    verdict = measure.check_throughput(replace(line, throughput_recovered=back, fraction=fraction), fraction, within)
    if back is not None:
        return _final(verdict)
    return _until(h, verdict, fault.t + within + h.settings.throughput_window + OUTPUT_SLACK)


@check("both_run")
def _both_run(h: History, claim: JournalEvent, p: Params) -> Judgement:
    """The toolkit has no fencing: when the standby takes over, the old active may still run the application. The
    monitor notes, at the takeover, where else the application's job was running at the latest look."""
    fault = facts.latest_fault(h, claim.t)
    if fault is None:
        return _no_fault("both_run", "take over")
    old, new = facts.pair(h, fault)
    took = next((e for e in h.events if e.event == "toolkit.takeover" and e.fields.get("dc") == new
                 and e.t >= fault.t), None)
    evidence: dict[str, Any] = {"old": old, "new": new, "fault": fault.t}
    if took is None:
        return _pending(Verdict("both_run", False, f"{new} did not take over, so the application never ran in both "
                                                   "data centers.", evidence), facts.scenario_deadline(h))
    also = took.fields.get("also_running") or {}
    at = measure.instant(took) or took.t
    evidence.update({"takeover": at, "also_running": also})
    after = secs(at - fault.t)
    if old not in also:
        return _final(Verdict("both_run", False, f"{old} no longer ran the application when {new} took over "
                                                 f"({after} after the fault).", evidence))
    gone = next((e for e in h.events if e.event == "toolkit.job_gone" and e.fields.get("dc") == old
                 and e.t >= took.t), None)
    until = (f"until its job ended {secs(gone.t - at)} later" if gone is not None
             else "and still did at the last look")
    return _final(Verdict("both_run", True, f"{old} still ran the application when {new} took over ({after} after "
                                            f"the fault), {until}: both data centers ran it at once.", evidence))


def _watch_start(h: History, claim: JournalEvent) -> float:
    fault = facts.latest_fault(h, claim.t)
    return fault.t if fault is not None else claim.t


@check("no_failover")
def _no_failover(h: History, claim: JournalEvent, p: Params) -> Judgement:
    start = _watch_start(h, claim)
    until = start + float(p["duration"])
    verdict = measure.check_no_failover(h.journal, start, min(until, h.as_of))
    return _final(verdict) if not verdict.passed else _until(h, measure.check_no_failover(h.journal, start, until),
                                                             until)


@check("no_takeover")
def _no_takeover(h: History, claim: JournalEvent, p: Params) -> Judgement:
    dc = str(p["dc"])
    start = _watch_start(h, claim)
    until = start + float(p["duration"])
    verdict = measure.check_no_takeover(h.journal, dc, start, min(until, h.as_of))
    if not verdict.passed:
        return _final(verdict)
    return _until(h, measure.check_no_takeover(h.journal, dc, start, until), until)


# ------------------------------------------------------------------------------------------ data, state


def _data_check(name: str, verdict_name: str, settle: Callable[[History], float] | None = None
                ) -> Callable[[Callable[..., Verdict]], Callable[..., Verdict]]:
    """Register a data or state check ``name``: ``fn(history, window, sent, received, params)`` judges the traffic of
    its window once that window is recorded; it is not judged if the window is not recorded by its deadline."""

    def register(fn: Callable[..., Verdict]) -> Callable[..., Verdict]:
        def run(h: History, claim: JournalEvent, p: Params) -> Judgement:
            window = facts.data_window(h, claim.t, settle(h) if settle else None)
            evidence = {"window": window.to_json()}
            if not window.complete:
                why = f"{window.waiting} when the scenario's time ran out" if window.waiting else "no window"
                return _until(h, Verdict.not_judged(verdict_name, why + ".", evidence), window.deadline or h.as_of)
            sent, received = sent_until(h.sent, h.received, window.end if window.end is not None else h.as_of)
            verdict = fn(h, window, sent, received, p)
            summary = verdict.summary.removesuffix(".") + f"; judged over {window.describe()}."
            return _final(Verdict(verdict.name, verdict.passed, summary, {**verdict.evidence, **evidence},
                                  verdict.status))

        CHECKS[name] = run
        return fn
    return register


@_data_check("lost", "lost")
def _lost(h: History, w: facts.Window, sent: Table, received: Table, p: Params) -> Verdict:
    return measure.check_lost(check_delivery(sent, received), int(p.get("limit", 0)))


@_data_check("loss_window", "loss_window")
def _loss_window(h: History, w: facts.Window, sent: Table, received: Table, p: Params) -> Verdict:
    return measure.check_loss_window(check_delivery(sent, received), float(p["limit"]))


@_data_check("at_least_once", "at_least_once")
def _at_least_once(h: History, w: facts.Window, sent: Table, received: Table, p: Params) -> Verdict:
    return measure.check_at_least_once(check_delivery(sent, received))


@_data_check("duplicated", "duplicated")
def _duplicated(h: History, w: facts.Window, sent: Table, received: Table, p: Params) -> Verdict:
    return measure.check_no_duplicates(check_delivery(sent, received), int(p.get("limit", 0)))


@_data_check("integrity", "integrity")
def _integrity(h: History, w: facts.Window, sent: Table, received: Table, p: Params) -> Verdict:
    # malformed output cannot be matched to a sent tuple: every one the readers recorded in the scenario counts
    unparsed = sum(int(e.fields.get("count", 1)) for e in h.events if e.event == "reader.unparsed" and e.t <= h.as_of)
    return measure.check_integrity(check_delivery(sent, received), h.contract.has_checksum, unparsed)


@_data_check("unknown", "unknown")
def _unknown(h: History, w: facts.Window, sent: Table, received: Table, p: Params) -> Verdict:
    return measure.check_unknown(check_delivery(sent, received), int(p.get("limit", 0)))


@_data_check("order", "order")
def _order(h: History, w: facts.Window, sent: Table, received: Table, p: Params) -> Verdict:
    return measure.check_order(check_order(received))


def _split_settle(h: History) -> float:
    return max(h.settings.settle_period, 2 * h.settings.split_brain_gap)


def _fault_at(h: History) -> float | None:
    fault = facts.latest_fault(h)
    return None if fault is None else fault.t


@_data_check("single_emitter", "single_emitter", settle=_split_settle)
def _single_emitter(h: History, w: facts.Window, sent: Table, received: Table, p: Params) -> Verdict:
    return measure.check_single_emitter(facts.split_brain(h, received), _fault_at(h))


@_data_check("both_emit", "both_emit", settle=_split_settle)
def _both_emit(h: History, w: facts.Window, sent: Table, received: Table, p: Params) -> Verdict:
    return measure.check_both_emit(facts.split_brain(h, received), _fault_at(h))


def state_report(h: History, new: str | None = None, old: str | None = None) -> Any:
    """The new active's restored state judged against the old active's history (None without a fault)."""
    fault = facts.latest_fault(h)
    if fault is None:
        return None
    pair_old, pair_new = facts.pair(h, fault)
    return check_state(h.sent, h.received, old or pair_old, new or pair_new, fault.t, h.contract.state)


def _state_verdict(name: str, report: Any, judge: Callable[[Any], Verdict]) -> Verdict:
    if report is None:
        return Verdict(name, False, "No fault was injected, so no data center resumed from another's state.", {})
    if report.not_judged:
        return Verdict.not_judged(name, report.not_judged + ".", report.to_json())
    if report.keys_judged == 0:
        return Verdict.not_judged(name, f"{report.new} emitted no output for keys {report.old} had served, so "
                                        "its restored state cannot be judged.", report.to_json())
    return judge(report)


@_data_check("consistent_state", "consistent_state")
def _consistent_state(h: History, w: facts.Window, sent: Table, received: Table, p: Params) -> Verdict:
    report = state_report(h, p.get("new"), p.get("old"))
    return _state_verdict("consistent_state", report, measure.check_consistent_state)


@_data_check("state_not_inherited", "state_not_inherited")
def _state_not_inherited(h: History, w: facts.Window, sent: Table, received: Table, p: Params) -> Verdict:
    report = state_report(h, p.get("new"), p.get("old"))
    return _state_verdict("state_not_inherited", report, measure.check_state_not_inherited)


@_data_check("state_loss", "state_loss_window")
def _state_loss(h: History, w: facts.Window, sent: Table, received: Table, p: Params) -> Verdict:
    limit = float(p["limit"])
    return _state_verdict("state_loss_window", state_report(h), lambda r: measure.check_state_loss(r, limit))


# ------------------------------------------------------------------------------------ expected findings
#
# A scenario that shows a check catching a real loss states the finding it expects: each of these runs the named
# check on the same evidence (the same data window, waited for alike) and passes only when that check finds the
# stated failure beyond the stated amount. It fails, naming what was measured, when the check finds nothing (the
# defect was not caught), and is not judged, never passed, when the check cannot judge. Its evidence carries
# ``expected_finding`` (the check, what was stated, what was measured, whether it was found) for the reports.

EXPECTED = "expected_finding"


def expected_finding(check_name: str, stated: str, measured: str, found: bool) -> dict[str, Any]:
    """The ``expected_finding`` evidence of an expected-finding verdict."""
    return {"check": check_name, "stated": stated, "measured": measured, "found": found}


def _expected(name: str, check_name: str, stated: str, measured: str, found: bool, what: str, missed: str,
              underlying: Verdict) -> Verdict:
    evidence = {**underlying.evidence, EXPECTED: expected_finding(check_name, stated, measured, found),
                "underlying": {"name": underlying.name, "status": underlying.status, "summary": underlying.summary}}
    if found:
        return Verdict(name, True, f"Expected finding, found: {what} ({measured} {stated}: expected, found).",
                       evidence)
    return Verdict(name, False, f"Expected finding not found: {missed} ({measured}, not {stated}); the "
                                f"{check_name} check did not catch the failure the scenario expects.", evidence)


def replicated_before(h: History, new: str, until: float) -> float | None:
    """An instant by which a snapshot replicated to ``new`` held every key its remote had updated: the look at
    which the toolkit monitor saw ``new`` store its previous-to-last snapshot before ``until``. The last one was
    stored after that look; with replication quicker than the snapshot period (the toolkit sends one snapshot per
    period), it was taken after every update before it. None when the monitor saw fewer than two snapshots stored
    (a standby stub is no job: its receiver's metrics are not seen)."""
    stored = [e.t for e in h.events if e.event == "toolkit.snapshot_stored" and e.fields.get("dc") == new
              and e.t <= until]
    return stored[-2] if len(stored) >= 2 else None


def _expected_state(name: str, check_name: str, stated: str, h: History, p: Params,
                    judge: Callable[[Any], Verdict]) -> Verdict:
    fault = facts.latest_fault(h)
    report = None
    if fault is not None:
        old, new = facts.pair(h, fault)
        old, new = str(p.get("old") or old), str(p.get("new") or new)
        report = check_state(h.sent, h.received, old, new, fault.t, h.contract.state,
                             replicated_before(h, new, fault.t))
    if report is None:
        return Verdict(name, False, "No fault was injected, so no data center resumed from another's state and "
                                    "there was no loss to find.", {EXPECTED: expected_finding(
                                        check_name, stated, "no fault", False)})
    verdict = _state_verdict(name, report, judge)
    if verdict.status == measure.NOT_JUDGED:  # never a finding: the check could not look
        return Verdict(name, False, verdict.summary, {**verdict.evidence, EXPECTED: expected_finding(
            check_name, stated, "not judged", False)}, verdict.status)
    return verdict


@_data_check("expected_state_loss", "expected_state_loss")
def _expected_state_loss(h: History, w: facts.Window, sent: Table, received: Table, p: Params) -> Verdict:
    limit = float(p["limit"])
    stated = f"> {secs(limit, None)}"

    def judge(r: Any) -> Verdict:
        underlying = measure.check_state_loss(r, limit)
        measured = f"state loss window {secs(r.loss_window)}"
        dropped = r.not_restored or 0
        if dropped:
            measured += f", {dropped} keys' replicated state not restored at all"
        found = r.loss_window > limit or dropped > 0
        what = (f"{r.new} lost {r.lost_updates} state updates made by {r.old}, spanning {secs(r.loss_window)}"
                + (f"; {dropped} keys restarted empty although their state had been replicated (lost beyond any "
                   "limit)" if dropped else ""))
        missed = (f"{r.new} lost {r.lost_updates} state updates made by {r.old}, spanning {secs(r.loss_window)}, "
                  f"within {secs(limit, None)}"
                  + (f"; {r.inconsistent} keys' state was inconsistent (a finding of the restored-state check)"
                     if r.inconsistent else ""))
        return _expected("expected_state_loss", "state loss", stated, measured, found, what, missed, underlying)

    return _expected_state("expected_state_loss", "state loss", stated, h, p, judge)


@_data_check("expected_inconsistent_state", "expected_inconsistent_state")
def _expected_inconsistent(h: History, w: facts.Window, sent: Table, received: Table, p: Params) -> Verdict:
    def judge(r: Any) -> Verdict:
        underlying = measure.check_consistent_state(r)
        measured = f"{r.inconsistent} of {r.keys_judged} keys resumed from a state {r.old} never had"
        sample = r.samples[0] if r.samples else {}
        low, high = (sample.get("restored_count_range") or [None, None])[:2]
        fits = (f"restored count {low}..{high}" if low is not None and high is not None and low <= high
                else "no restored count fits its outputs")
        example = (f" (e.g. {sample.get('key')}: {fits}, {r.old} reached at most {sample.get('old_max_count')}: "
                   f"{sample.get('reason')})" if sample else "")
        what = f"{r.new} resumed {r.inconsistent} of {r.keys_judged} keys from a state {r.old} never had{example}"
        missed = (f"{r.new} resumed all {r.keys_judged} keys from a state {r.old} really had"
                  + (f" ({r.empty} started empty)" if r.empty else ""))
        return _expected("expected_inconsistent_state", "restored state", "> 0 keys", measured, r.inconsistent > 0,
                         what, missed, underlying)

    return _expected_state("expected_inconsistent_state", "restored state", "> 0 keys", h, p, judge)


@_data_check("expected_lost", "expected_lost")
def _expected_lost(h: History, w: facts.Window, sent: Table, received: Table, p: Params) -> Verdict:
    limit = float(p["limit"])
    report = check_delivery(sent, received)
    underlying = measure.check_lost(report, int(limit))
    measured = f"{report.lost} of {report.acknowledged} acknowledged tuples lost"
    what = (f"{report.lost} of {report.acknowledged} acknowledged tuples never came out; they were sent within "
            f"{secs(report.loss_window)}")
    missed = f"{report.lost} of {report.acknowledged} acknowledged tuples never came out"
    return _expected("expected_lost", "loss", f"> {limit:g}", measured, report.lost > limit, what, missed,
                     underlying)


# ---------------------------------------------------------------------------------------------- objectives

#: objective -> (the check that judges it, its parameters from the objectives, the new active and the settings)
OBJECTIVE_CHECKS: dict[str, tuple[str, Callable[[Mapping[str, float], str, JudgeSettings], dict[str, Any]]]] = {
    "rto": ("recovery_time", lambda o, new, s: {"limit": o["rto"]}),
    "takeover": ("takeover", lambda o, new, s: {"dc": new, "within": o["takeover"]}),
    "max_lost": ("lost", lambda o, new, s: {"limit": o["max_lost"]}),
    "max_duplicated": ("duplicated", lambda o, new, s: {"limit": o["max_duplicated"]}),
    "loss_window": ("loss_window", lambda o, new, s: {"limit": o["loss_window"]}),
    "throughput_recovery": ("throughput", lambda o, new, s: {
        "within": o["throughput_recovery"], "fraction": o.get("throughput_fraction", s.throughput_fraction)}),
    "state_loss_window": ("state_loss", lambda o, new, s: {"limit": o["state_loss_window"]}),
    "rpo": ("loss_window", lambda o, new, s: {"limit": o["rpo"]}),
}


@check("objectives")
def _objectives(h: History, claim: JournalEvent, p: Params) -> Judgement:
    app = str(p["app"])
    objectives = h.settings.objectives.get(app)
    if not objectives:
        return _final(Verdict("objectives", False, f'No objectives configured for "{app}" (objectives.{app}).', {}))
    _, new = facts.pair(h, facts.latest_fault(h, claim.t))
    parts: list[Judgement] = []
    for key, (kind, params) in OBJECTIVE_CHECKS.items():
        if key in objectives:
            parts.append(CHECKS[kind](h, claim, params(objectives, new, h.settings)))
        if key == "rpo" and key in objectives:
            parts.append(CHECKS["state_loss"](h, claim, {"limit": objectives["rpo"]}))
    verdicts = [j.verdict for j in parts]
    failed = [v for v in verdicts if v.status == measure.FAILED]
    open_ = [v for v in verdicts if v.status == measure.NOT_JUDGED]
    evidence = {"objectives": dict(objectives), "checks": [v.to_json() for v in verdicts]}
    if failed:
        verdict = Verdict("objectives", False, f"The recovery misses the {app} objectives: "
                          + " ".join(v.summary for v in failed), evidence)
    elif open_:
        verdict = Verdict.not_judged("objectives", f"the {app} objectives could not all be judged: "
                                     + " ".join(v.summary for v in open_), evidence)
    else:
        verdict = Verdict("objectives", True, f"The recovery meets the {app} objectives.", evidence)
    pending = [j for j in parts if not j.final]
    if not pending or any(j.final and j.verdict.status == measure.FAILED for j in parts):
        return _final(verdict)
    return _pending(verdict, max(j.deadline or h.as_of for j in pending))
