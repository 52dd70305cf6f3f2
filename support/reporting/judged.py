"""How the reports show one number of a scenario: its value, the limit it was judged against, or why it is missing.

A number a scenario judged is shown with its limit (``3.81 s ≤ 60 s``) and the verdict; a number it measured but
did not judge is marked "not checked"; a number it has no value for is shown as "–" with the reason (never a raw
``None`` or ``0.0``). A time that puts a data center's stamp on the tester's timeline states its error bound
(``3.81 s ± 4 ms``). ``report.html``, the console table and the Allure RTO/RPO table all read these.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from support.units import format_seconds

NOT_CHECKED = "not checked"

#: metric -> (label, verdicts that judge it, unit: "s" seconds or "" a count)
METRICS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "rto": ("RTO", ("recovery_time",), "s"),
    "lost": ("lost", ("lost", "expected_lost"), ""),
    "duplicated": ("duplicated", ("duplicated",), ""),
    "unknown": ("unknown", ("unknown",), ""),
    "loss_window": ("loss window", ("loss_window",), "s"),
}
NO_FAILOVER_VERDICTS = ("no_failover", "no_takeover")
#: the verdicts of the steps that state an expected finding -> the check whose finding they expect
EXPECTED_FINDINGS = {"expected_state_loss": "state loss", "expected_inconsistent_state": "restored state",
                     "expected_lost": "loss"}


@dataclass(frozen=True)
class Shown:
    """One number as shown: ``value`` ("–" when missing), ``limit`` ("≤ 60 s", None when not judged), ``passed``
    (the verdict, None when not judged) and ``note`` (why it is missing, or "not checked")."""

    value: str
    limit: str | None = None
    passed: bool | None = None
    note: str | None = None

    def text(self) -> str:
        """One line: ``3.81 s ≤ 60 s``, ``0 (not checked)``, ``– (no traffic)``."""
        out = self.value
        if self.limit:
            out += f" {self.limit}"
        if self.note:
            out += f" ({self.note})"
        return out


def _verdicts(record: Mapping[str, Any], names: tuple[str, ...]) -> list[Mapping[str, Any]]:
    """The verdicts named ``names``, those inside an ``objectives`` verdict (its ``evidence.checks``) included."""
    found = []
    for verdict in record.get("verdicts") or []:
        for v in [verdict, *((verdict.get("evidence") or {}).get("checks") or [])]:
            if isinstance(v, Mapping) and v.get("name") in names:
                found.append(v)
    return found


def expectation(verdict: Mapping[str, Any]) -> str | None:
    """How a verdict that states an expected finding reads beside its name (None for any other verdict):
    ``state loss window 12.4 s > 5 s: expected, found``; ``state loss window 0.4 s, expected > 5 s: not found``;
    ``expected state loss > 5 s: not judged``."""
    name = str(verdict.get("name"))
    finding = (verdict.get("evidence") or {}).get("expected_finding")
    if name not in EXPECTED_FINDINGS and not isinstance(finding, Mapping):
        return None
    if not isinstance(finding, Mapping):
        finding = {"check": EXPECTED_FINDINGS[name], "stated": "", "measured": ""}
    stated, measured = str(finding.get("stated") or ""), str(finding.get("measured") or "")
    if verdict.get("status") == "not judged" or not measured or measured in ("not judged", "no fault"):
        why = "no fault" if measured == "no fault" else "not judged"
        return f"expected {finding.get('check')} {stated}: {why}".replace("  ", " ")
    if verdict.get("passed"):
        return f"{measured} {stated}: expected, found"
    return f"{measured}, expected {stated}: not found"


def _limit(verdict: Mapping[str, Any], unit: str) -> str | None:
    evidence = verdict.get("evidence") or {}
    finding = evidence.get("expected_finding")
    if isinstance(finding, Mapping):  # an expected finding: the check must find more than the stated amount
        return f"{finding.get('stated')} expected"
    if unit == "s":
        limit = evidence.get("limit_s", evidence.get("limit"))
        return None if limit is None else f"≤ {format_seconds(limit, None)}"
    limit = evidence.get("limit")
    return None if limit is None else f"≤ {limit}"


def recovery_reason(record: Mapping[str, Any], phase: str) -> str:
    """Why a recovery phase (or the RTO, ``phase="first_output"``) has no value."""
    if not record.get("fault"):
        return "no fault injected"
    recovery = record.get("recovery") or {}
    if recovery and recovery.get("fault_effective") is None:
        return "the fault never took effect"
    phases = record.get("phases_s") or recovery.get("phases_s") or {}
    standby = recovery.get("standby") or record.get("standby") or "the standby"
    if _verdicts(record, NO_FAILOVER_VERDICTS) and phases.get("takeover") is None and phase != "throughput_recovered":
        return "no failover expected"
    if phase == "throughput_recovered":
        if recovery.get("baseline_tps") is None:
            return "no throughput baseline was measured"
        fraction = float(recovery.get("throughput_fraction") or 0.0)
        return (f"output never got back to {fraction:.0%} of the baseline ({float(recovery['baseline_tps']):g} "
                "tuples/s)")
    if phase == "first_output" and phases.get("takeover") is not None:
        return f"no output from {standby} after the takeover"
    if phase in ("first_output", "takeover") and phases.get("takeover") is None:
        return f"{standby} did not take over"
    return "not observed before the scenario ended"


def bound_text(record: Mapping[str, Any], phase: str) -> str:
    """The error bound of a recovery phase (``"rto"`` for the RTO) that puts a data center's stamp on the tester's
    timeline: ``± 4 ms``; ``± ?`` when that data center's clock offset was not estimated; "" for a phase dated by
    the tester's own clock (:mod:`support.clocks`)."""
    recovery = record.get("recovery") or {}
    used = (recovery.get("clocks_used") or {}).get(phase)
    if not used:
        return ""
    bound = (recovery.get("error_bound_s") or {}).get(phase)
    if not isinstance(bound, int | float):
        return f"± ? (clock of {', '.join(used)} not estimated)"
    return "± " + (f"{max(1, round(bound * 1000))} ms" if bound < 1 else format_seconds(bound, 2))


def shown(record: Mapping[str, Any], metric: str) -> Shown:
    """How ``metric`` (a key of :data:`METRICS`) of a scenario record is shown."""
    _label, names, unit = METRICS[metric]
    delivery = record.get("delivery") or {}
    if metric == "rto":
        raw = record.get("rto_s")
    elif metric == "loss_window":
        raw = (record.get("rpo") or {}).get("loss_window_s", delivery.get("loss_window_s"))
    else:
        raw = record.get(metric)
    judged = _verdicts(record, names)
    limits = [lim for lim in (_limit(v, unit) for v in judged) if lim]
    limit = min(limits, key=len) if limits else None
    passed = all(bool(v.get("passed")) for v in judged) if judged else None
    if metric == "rto" and raw is None:
        return Shown("–", limit, passed, recovery_reason(record, "first_output"))
    if metric != "rto" and not delivery:
        return Shown("–", limit, passed, "no traffic")
    if metric == "loss_window" and not delivery.get("lost"):
        return Shown("–", limit, passed, "nothing lost")
    if raw is None:
        return Shown("–", limit, passed, "not measured")
    value = format_seconds(raw, 2) if unit == "s" else str(raw)
    if metric == "rto" and bound_text(record, "rto"):
        value += f" {bound_text(record, 'rto')}"
    return Shown(value, limit, passed, None if judged else NOT_CHECKED)


#: recovery phase -> the verdicts that judge it
PHASE_VERDICTS = {"down_detected": ("detection",), "takeover": ("takeover",), "first_output": ("recovery_time",),
                  "throughput_recovered": ("throughput_recovered",)}


def phase_judgement(record: Mapping[str, Any], phase: str) -> Shown:
    """The limit and verdict of a recovery phase (``value`` left empty), or "not checked"."""
    judged = _verdicts(record, PHASE_VERDICTS.get(phase, ()))
    limits = [lim for lim in (_limit(v, "s") for v in judged) if lim]
    if not judged:
        return Shown("", note=NOT_CHECKED)
    return Shown("", min(limits, key=len) if limits else None, all(bool(v.get("passed")) for v in judged))


def clock(epoch: Any, date: bool = False) -> str:
    """An instant as a time of day, ``18:02:03.412 UTC`` (``date``: ``2026-12-06 18:02:03.412 UTC``); "–" for
    none."""
    if epoch is None or isinstance(epoch, bool):
        return "–"
    try:
        moment = _dt.datetime.fromtimestamp(float(epoch), _dt.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return str(epoch)
    text = moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d} UTC"
    return f"{moment:%Y-%m-%d} {text}" if date else text


def day(epoch: Any) -> str:
    """The date of an instant, ``2026-12-06`` ("" for none)."""
    if epoch is None:
        return ""
    try:
        return f"{_dt.datetime.fromtimestamp(float(epoch), _dt.UTC):%Y-%m-%d}"
    except (TypeError, ValueError, OverflowError, OSError):
        return ""


#: epoch seconds (floats) between 2001 and 2286: how an instant is told from a duration or a count in evidence
_EPOCH_RANGE = (1e9, 1e10)


def is_instant(key: str, value: Any) -> bool:
    """Whether ``value`` under ``key`` is an epoch instant (not a duration ``*_s``, not a count)."""
    return (isinstance(value, float) and _EPOCH_RANGE[0] < value < _EPOCH_RANGE[1]
            and not key.endswith(("_s", "_tps", "_ms")))


def readable_times(value: Any, key: str = "") -> Any:
    """A copy of ``value`` (evidence, a measurement) with its epoch instants as ``18:02:03.412 UTC``."""
    if isinstance(value, Mapping):
        return {k: readable_times(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [readable_times(v, key) for v in value]
    if is_instant(key, value):
        return clock(value)
    return value
