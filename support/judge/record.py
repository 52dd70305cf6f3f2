"""The scenario record (one entry of ``summary.json``), built from a history only: the verdict of every claim its
``Then`` steps made, the recovery phases, the data and state accounting, and the timeline for the charts.

Each claim is judged on the history as far as the live step saw it (its ``verdict`` event names that
:class:`~support.judge.history.Snapshot`), so judging a stored run again gives the live verdicts; a claim the
run never judged (it crashed, or was stopped) is judged on everything recorded, or said to be not judged.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from support.clocks import error_bound
from support.data.ledger import ReceivedRow, SentRow, Table, rows_of
from support.data.validate import check_delivery, check_order
from support.judge import facts
from support.judge.checks import Judgement, judge_claim, state_report
from support.judge.history import History, Snapshot, sent_until
from support.measure import FAILED, NOT_JUDGED, PASSED, Verdict, stamped_dcs
from support.reporting.timeline import build_timeline
from support.units import format_seconds as secs

INTERRUPTED = "the run ended before this check's window was recorded"


def claims(history: History) -> list[tuple[Any, Any]]:
    """Every claim of the scenario with its recorded verdict event (or None)."""
    verdicts = {e.fields.get("cid"): e for e in history.events if e.event == "verdict"}
    return [(c, verdicts.get(c.fields.get("cid"))) for c in history.events if c.event == "claim"]


def judge_recorded(history: History, claim: Any, verdict_event: Any) -> Verdict:
    """A claim's verdict: on the history the live step saw when it judged, else on everything recorded."""
    judgement: Judgement | None = None
    step = {"step": claim.fields.get("step", "")}
    if verdict_event is not None and verdict_event.fields.get("snapshot"):
        judgement = judge_claim(history.at(Snapshot.from_json(verdict_event.fields["snapshot"])), claim)
        if not judgement.final and verdict_event.fields.get("status") == NOT_JUDGED:  # its time ran out live
            return Verdict.not_judged(judgement.verdict.name, str(verdict_event.fields.get("summary", ""))
                                      .removeprefix("Not judged: "), {**judgement.verdict.evidence, **step})
    if judgement is None or not judgement.final:
        judgement = judge_claim(history, claim)
    if judgement.final:
        verdict = judgement.verdict
        return Verdict(verdict.name, verdict.passed, verdict.summary, {**verdict.evidence, **step}, verdict.status)
    return Verdict.not_judged(judgement.verdict.name, unrecorded(history, judgement.verdict) + ".",
                              {**judgement.verdict.evidence, **step})


def unrecorded(history: History, verdict: Verdict) -> str:
    """Why a stored history cannot give a check's verdict: what its window needed, and how far the recording went."""
    window = verdict.evidence.get("window") or {}
    fault = window.get("fault_effective")
    end = window.get("end")
    if fault is not None and end is not None and end > history.as_of:
        return (f"{INTERRUPTED}: it ends {secs(end - fault, 1)} after the fault, the recording "
                f"{secs(history.as_of - fault, 1)} after it")
    waiting = window.get("waiting")
    if fault is not None and waiting and "from now" not in waiting:
        return f"{INTERRUPTED} ({waiting}; the recording ends {secs(history.as_of - fault, 1)} after the fault)"
    return INTERRUPTED


def stated_fraction(history: History) -> float:
    """The throughput share the scenario's steps stated (the first throughput claim), else the configured one."""
    for claim in history.all("claim", check="throughput"):
        return float((claim.fields.get("params") or {}).get("fraction", history.settings.throughput_fraction))
    for claim in history.all("claim", check="objectives"):
        objectives = history.settings.objectives.get(str((claim.fields.get("params") or {}).get("app")), {})
        if "throughput_fraction" in objectives:
            return float(objectives["throughput_fraction"])
    return history.settings.throughput_fraction


def settled_traffic(history: History) -> tuple[Table, Table]:
    """The ledgers whose outcome is known: all of them once the outputs were drained at the end of the scenario;
    in a run that ended before that (killed), only the tuples sent at least ``traffic.drain_timeout`` before the
    recording ends, so tuples still in flight are not counted as lost."""
    if history.first("traffic.drained") is not None:
        return history.sent, history.received
    return sent_until(history.sent, history.received, history.as_of - history.settings.drain_timeout)


def status_of(verdicts: list[Verdict], finished: Any, error: str | None) -> str:
    if finished is not None and finished.fields.get("status") == "interrupted":
        return "interrupted"  # the run was stopped in the middle: its checks say nothing either way
    if any(v.status == FAILED for v in verdicts):
        return "failed"
    if finished is not None and finished.fields.get("status") == "skipped":
        return "skipped"
    if error and not any(v.summary == error for v in verdicts):
        return "failed"
    if any(v.status == NOT_JUDGED for v in verdicts) or finished is None:
        return NOT_JUDGED
    return PASSED


def stop_conditions(history: History) -> dict[str, Any] | None:
    """``run.stop_conditions`` as watched while a fault was in place (support.stopconditions), else None."""
    watched = history.last("stop_condition.watched")
    breached = history.last("stop_condition.breached")
    if watched is None and breached is None:
        return None
    fields = watched.fields if watched is not None else {}
    return {
        "watched_s": float(fields.get("watched_s") or 0.0),
        "breached": None if breached is None else {"condition": breached.fields.get("condition"),
                                                   "value": breached.fields.get("value"), "t": breached.t},
        "unchecked_s": {str(k): float(v) for k, v in (fields.get("unchecked") or {}).items()},
        "errors": {str(k): str(v) for k, v in (fields.get("errors") or {}).items()},
    }


def judge_scenario(history: History) -> dict[str, Any]:
    """The scenario's record for ``summary.json``."""
    started = history.first("scenario.started")
    finished = history.last("scenario.finished")
    verdicts = [judge_recorded(history, claim, event) for claim, event in claims(history)]
    fault = facts.latest_fault(history)
    fraction = stated_fraction(history)
    line = facts.timeline(history, fraction) if fault is not None else None
    if line is not None and fault is not None and line.takeover is None:
        back, _ = facts.throughput_back(history, fault, fraction)
        sources = dict(line.sources)
        used, bounds = dict(line.clocks_used), dict(line.error_bounds)
        if back is not None:
            width = secs(history.settings.throughput_window, None)
            sources["throughput_recovered"] = f"received ledger, {width} window"
            dcs = stamped_dcs(history.received)
            if dcs:
                used["throughput_recovered"] = dcs
                bounds["throughput_recovered"] = error_bound(facts.clocks(history), dcs)
        line = replace(line, throughput_recovered=back, sources=sources, clocks_used=used, error_bounds=bounds)
    has_traffic = history.first("traffic.started") is not None
    delivery = check_delivery(*settled_traffic(history)) if has_traffic else None
    state = state_report(history) if has_traffic and fault is not None and len(history.received) else None
    base = facts.baseline(history)
    error = str(finished.fields.get("error") or "") or None if finished is not None else None
    cleanup_errors = list(finished.fields.get("cleanup_errors") or []) if finished is not None else []
    status = status_of(verdicts, finished, error)
    if error is None:
        error = next((v.summary for v in verdicts if v.status == FAILED), None)
    if error is None and status == NOT_JUDGED:
        error = next((v.summary for v in verdicts if v.status == NOT_JUDGED), "the run ended before the scenario did")
    if cleanup_errors and status == PASSED:
        status = "failed"
        error = "cleanup failed: " + "; ".join(cleanup_errors)
    lay = facts.layout(history)
    old, _ = facts.pair(history, fault)
    state_json = state.to_json() if state is not None else None
    metrics_event = history.last("metrics.closed")
    steady = history.last("steady")
    end = finished.t if finished is not None else history.as_of
    begin = started.t if started is not None else end
    received = history.received
    return {
        "feature": str(started.fields.get("feature", "")) if started is not None else "",
        "name": history.name,
        "status": status,
        "tags": list(started.fields.get("tags", [])) if started is not None else [],
        **({"repeat": int(started.fields["repeat"])} if started is not None and "repeat" in started.fields else {}),
        "started_at": begin,
        "duration_s": round(end - begin, 3),
        "fault": str(fault.fields.get("kind", "")) if fault is not None else None,
        "standby": lay.standby if lay is not None else None,
        "rto_s": None if line is None or line.rto is None else round(line.rto, 3),
        "phases_s": line.phases() if line is not None else None,
        "lost": delivery.lost if delivery else None,
        "duplicated": delivery.duplicated if delivery else None,
        "unknown": delivery.unknown if delivery else None,
        "delivery": delivery.counts() if delivery else None,
        "verdicts": [v.to_json() for v in verdicts],
        "timeline": build_timeline(list(history.events), rows_of(history.sent, SentRow),
                                   rows_of(received, ReceivedRow), line.phases() if line else None),
        "error": error,
        "cleanup_errors": cleanup_errors,
        "stop_conditions": stop_conditions(history),
        "mode": facts.mode(history),
        "old_active": (line.old or None) if line is not None else None,
        "recovery": line.to_json() if line is not None else None,
        "rpo": None if delivery is None else {
            "lost": delivery.lost,
            "loss_window_s": round(delivery.loss_window, 3),
            "lost_state_updates": None if state_json is None else state_json["lost_updates"],
            "state_loss_window_s": None if state_json is None else state_json["state_loss_window_s"],
        },
        "state": state_json if fault is not None and old else None,
        "order": check_order(received).to_json() if len(received) else None,
        "split_brain": facts.split_brain(history, received).to_json() if len(received) else None,
        "baseline": None if base is None else base.to_json(),
        "metrics": None if metrics_event is None else {
            "series": int(metrics_event.fields.get("series", 0)),
            "baselines": dict((steady.fields.get("metric_baselines") or {}) if steady is not None else {}),
            "errors": dict(metrics_event.fields.get("errors") or {}),
        },
    }
