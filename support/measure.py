"""Recovery time in phases, data loss, and verdicts with reasons a product owner can read."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from support.data.ledger import ReceivedRow
from support.data.validate import DeliveryReport
from support.orchestration import Journal

PHASES = ("down_detected", "takeover", "first_output")


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: passed or not, one sentence why, and the evidence behind it."""

    name: str
    passed: bool
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

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

    @property
    def rto(self) -> float | None:
        """Fault effective -> first output from the new active data center."""
        if self.fault_effective is None or self.first_output is None:
            return None
        return self.first_output - self.fault_effective

    def phases(self) -> dict[str, float | None]:
        """Seconds from the fault becoming effective to each phase."""
        start = self.fault_effective
        result: dict[str, float | None] = {}
        for name in PHASES:
            instant = getattr(self, name)
            result[name] = None if start is None or instant is None else round(instant - start, 3)
        return result

    def to_json(self) -> dict[str, Any]:
        rto = self.rto
        return {
            "fault": self.fault,
            "standby": self.standby,
            "fault_effective": self.fault_effective,
            "phases_s": self.phases(),
            "rto_s": None if rto is None else round(rto, 3),
        }


def recovery_timeline(journal: Journal, received: list[ReceivedRow], standby: str) -> RecoveryTimeline:
    """Assemble the phases from the journal (fault, toolkit events) and the received ledger."""
    fault = journal.first("fault.effective")
    start = fault.t if fault else None
    down = journal.first("toolkit.remote_down", after=start, dc=standby) if start is not None else None
    takeover = journal.first("toolkit.takeover", after=start, dc=standby) if start is not None else None
    first_output = None
    if start is not None:
        after = [row.t_recv for row in received if row.dc == standby and row.t_recv >= start]
        first_output = min(after) if after else None
    return RecoveryTimeline(
        fault=str(fault.fields.get("kind", "")) if fault else "",
        fault_effective=start,
        standby=standby,
        down_detected=down.t if down else None,
        takeover=takeover.t if takeover else None,
        first_output=first_output,
    )


def _secs(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f} s"


def check_takeover(timeline: RecoveryTimeline, dc: str, within: float) -> Verdict:
    took = timeline.phases()["takeover"]
    evidence = {"dc": dc, "limit_s": within, **timeline.to_json()}
    if timeline.fault_effective is None:
        return Verdict("takeover", False, "No fault became effective, so there was nothing to take over.", evidence)
    if took is None:
        return Verdict("takeover", False, f"{dc} never took over (limit {within:g} s).", evidence)
    ok = took <= within
    verb = "took over" if ok else "took over too late:"
    return Verdict("takeover", ok, f"{dc} {verb} {took:.2f} s after the fault (limit {within:g} s).", evidence)


def check_recovery_time(timeline: RecoveryTimeline, limit: float) -> Verdict:
    rto = timeline.rto
    evidence = {"limit_s": limit, **timeline.to_json()}
    if rto is None:
        return Verdict(
            "recovery_time", False,
            f"Output never resumed from {timeline.standby} after the fault (limit {limit:g} s).", evidence,
        )
    ok = rto <= limit
    phases = ", ".join(f"{k.replace('_', ' ')} {_secs(v)}" for k, v in timeline.phases().items())
    return Verdict(
        "recovery_time", ok,
        f"Orders flowed again from {timeline.standby} {rto:.2f} s after the fault (limit {limit:g} s; {phases}).",
        evidence,
    )


def check_lost(report: DeliveryReport, limit: int) -> Verdict:
    evidence = {**report.counts(), "limit": limit, "lost_ids_sample": report.lost_ids[:20]}
    ok = report.lost <= limit
    if report.lost == 0:
        text = f"No acknowledged tuple was lost ({report.acknowledged} acknowledged, {report.unknown} unknown)."
    else:
        text = (
            f"{report.lost} of {report.acknowledged} acknowledged tuples never came out "
            f"(limit {limit}); they were sent within {report.loss_window:.2f} s."
        )
    return Verdict("lost", ok, text, evidence)


def check_loss_window(report: DeliveryReport, limit: float) -> Verdict:
    ok = report.loss_window <= limit
    evidence = {**report.counts(), "limit_s": limit}
    text = f"Lost acknowledged tuples span {report.loss_window:.2f} s of input (limit {limit:g} s)."
    return Verdict("loss_window", ok, text, evidence)


def check_no_duplicates(report: DeliveryReport) -> Verdict:
    evidence = {**report.counts(), "duplicated_ids_sample": report.duplicated_ids[:20]}
    if not report.duplicated:
        return Verdict("duplicated", True, f"No tuple came out twice ({report.received} received).", evidence)
    return Verdict("duplicated", False, f"{report.duplicated} tuples came out more than once.", evidence)


def check_at_least_once(report: DeliveryReport) -> Verdict:
    evidence = {**report.counts(), "lost_ids_sample": report.lost_ids[:20]}
    ok = report.lost == 0
    text = (
        f"Every acknowledged tuple came out at least once ({report.acknowledged} acknowledged)."
        if ok
        else f"{report.lost} acknowledged tuples never came out."
    )
    return Verdict("at_least_once", ok, text, evidence)


def check_objectives(
    app: str, timeline: RecoveryTimeline, report: DeliveryReport, objectives: dict[str, float | int]
) -> Verdict:
    """All objectives of ``app`` from config at once (rto, max_lost, loss_window)."""
    parts = []
    if "rto" in objectives:
        parts.append(check_recovery_time(timeline, float(objectives["rto"])))
    if "max_lost" in objectives:
        parts.append(check_lost(report, int(objectives["max_lost"])))
    if "loss_window" in objectives:
        parts.append(check_loss_window(report, float(objectives["loss_window"])))
    failed = [p for p in parts if not p.passed]
    summary = (
        f"The recovery meets the {app} objectives." if not failed
        else f"The recovery misses the {app} objectives: " + " ".join(p.summary for p in failed)
    )
    return Verdict(
        "objectives", not failed and bool(parts), summary if parts else f"No objectives configured for {app}.",
        {"objectives": objectives, "checks": [p.to_json() for p in parts]},
    )
