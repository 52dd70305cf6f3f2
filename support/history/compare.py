"""Two runs side by side: per scenario (its :func:`~support.reporting.summary.scenario_key`), the status and each
measured quantity (RTO and its phases, lost / duplicated / unknown, loss windows), with a judgement on whether it
got worse.

Every quantity is better lower. A change counts only when it is larger than the *practical threshold*
(:class:`Thresholds`: the larger of an absolute floor, seconds or a count, and a fraction of the first run's
median). Where both runs hold enough drills of the scenario (``run --repeat``) for the rank test to be able to
reach ``alpha`` at all (:func:`~support.history.ranktest.smallest_p`: 3 drills against 3, 2 against 5), the change
must also be beyond noise: the one-sided Mann–Whitney test (:mod:`support.history.ranktest`) in the direction of
the change, at ``alpha``. Fewer drills give a judgement on the medians against the threshold alone, said to be
*single-sample* (one drill per side) or *few-sample*.

A scenario regressed when its status went from passed to failed or not judged, or when any of its quantities got
worse (as above).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from support.history.ranktest import RankTest, mann_whitney, smallest_p
from support.history.schema import PHASE_COLUMNS

__all__ = ["METRICS", "Comparison", "MetricDelta", "ScenarioDelta", "Thresholds", "compare", "scenario_status",
           "settings_changes"]

#: (drills column, label, unit: "s" or "count"), in the order shown
METRICS: tuple[tuple[str, str, str], ...] = (
    ("rto_s", "RTO", "s"),
    *((column, column.removesuffix("_s").replace("_", " "), "s") for column in PHASE_COLUMNS),
    ("lost", "lost", "count"),
    ("duplicated", "duplicated", "count"),
    ("unknown", "unknown", "count"),
    ("loss_window_s", "loss window", "s"),
    ("state_loss_window_s", "state loss window", "s"),
)
#: a scenario's statuses from worst to best (its drills' worst is its status)
_STATUS_ORDER = ("failed", "not judged", "interrupted", "passed", "skipped")
_FAILED = ("failed", "not judged")


@dataclass(frozen=True)
class Thresholds:
    """What counts as a change: larger than max(``seconds`` or ``count``, ``fraction`` × the first run's median),
    and with enough drills, a one-sided rank test at ``alpha``."""

    seconds: float = 1.0
    count: float = 10.0
    fraction: float = 0.2
    alpha: float = 0.05

    def of(self, unit: str, baseline: float) -> float:
        return max(self.seconds if unit == "s" else self.count, self.fraction * abs(baseline))


@dataclass
class MetricDelta:
    """One quantity of one scenario in both runs."""

    metric: str
    label: str
    unit: str
    a: list[float]
    b: list[float]
    median_a: float | None
    median_b: float | None
    delta: float | None
    threshold: float | None
    #: worse | better | same (within the threshold or the noise) | no data (a run has no value)
    judgement: str
    #: rank test | few-sample | single-sample | "" (no data)
    basis: str
    test: RankTest | None = None

    @property
    def worse(self) -> bool:
        return self.judgement == "worse"


@dataclass
class ScenarioDelta:
    """One scenario in both runs: statuses, pass counts, each quantity; why it regressed, if it did."""

    scenario: str
    status_a: str | None     # None: not in that run
    status_b: str | None
    passed_a: tuple[int, int]  # (passed drills, drills)
    passed_b: tuple[int, int]
    metrics: list[MetricDelta] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    @property
    def regressed(self) -> bool:
        return bool(self.reasons)


@dataclass
class Comparison:
    """The comparison of run ``run_a`` (before) with ``run_b`` (after)."""

    run_a: str
    run_b: str
    thresholds: Thresholds
    scenarios: list[ScenarioDelta]
    settings: list[tuple[str, str | None, str | None]]  # toolkit settings that differ: (key, in A, in B)

    @property
    def regressions(self) -> list[ScenarioDelta]:
        return [s for s in self.scenarios if s.regressed]

    def to_json(self) -> dict[str, Any]:
        """The comparison as JSON-ready data (``compare --json``)."""
        def metric(m: MetricDelta) -> dict[str, Any]:
            out = {k: v for k, v in asdict(m).items() if k != "test"}
            out["test"] = None if m.test is None else asdict(m.test)
            return out

        return {
            "run_a": self.run_a, "run_b": self.run_b, "thresholds": asdict(self.thresholds),
            "regressed": bool(self.regressions),
            "regressions": [s.scenario for s in self.regressions],
            "toolkit_settings_changed": [{"key": k, "a": a, "b": b} for k, a, b in self.settings],
            "scenarios": [{"scenario": s.scenario, "status_a": s.status_a, "status_b": s.status_b,
                           "passed_a": list(s.passed_a), "passed_b": list(s.passed_b), "regressed": s.regressed,
                           "reasons": s.reasons, "metrics": [metric(m) for m in s.metrics]}
                          for s in self.scenarios],
        }

    def text(self) -> str:
        """The comparison for the console."""
        lines = [f"compare {self.run_a} (A) → {self.run_b} (B)"]
        for key, a, b in self.settings:
            lines.append(f"  toolkit setting {key}: {a if a is not None else '-'} → {b if b is not None else '-'}")
        for s in self.scenarios:
            if s.status_a is None or s.status_b is None:
                continue
            lines.append("")
            mark = "REGRESSED" if s.regressed else "ok"
            lines.append(f"{s.scenario}  [{mark}]")
            lines.append(f"  status: {_status_text(s.status_a, s.passed_a)} → {_status_text(s.status_b, s.passed_b)}")
            rows = [("quantity", "A", "B", "Δ", "judgement")]
            for m in s.metrics:
                if m.judgement == "no data" and not m.a and not m.b:
                    continue
                rows.append((m.label, _sample_text(m.median_a, m.a, m.unit), _sample_text(m.median_b, m.b, m.unit),
                             _delta_text(m), _judgement_text(m)))
            widths = [max(len(r[i]) for r in rows) for i in range(5)]
            for row in rows:
                lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
            for reason in s.reasons:
                lines.append(f"  ✘ {reason}")
        for side, which in (("A", lambda s: s.status_b is None), ("B", lambda s: s.status_a is None)):
            only = [s for s in self.scenarios if which(s)]
            if only:
                lines.append("")
                lines.append(f"only in {side} ({len(only)}), not compared:")
                lines.extend(f"  {s.scenario}: {_status_text(s.status_a or s.status_b, s.passed_a or s.passed_b)}"
                             for s in only)
        lines.append("")
        regressed = self.regressions
        compared = sum(1 for s in self.scenarios if s.status_a is not None and s.status_b is not None)
        lines.append(f"result:   {len(regressed)} of {compared} compared scenario(s) regressed" if regressed
                     else f"result:   no regression in {compared} compared scenario(s)")
        return "\n".join(lines)


def _status_text(status: str | None, passed: tuple[int, int]) -> str:
    if status is None:
        return "(not in the run)"
    return status if passed[1] <= 1 else f"{status} ({passed[0]}/{passed[1]} passed)"


def _number_text(value: float, unit: str) -> str:
    return f"{value:.2f} s" if unit == "s" else f"{value:g}"


def _sample_text(median: float | None, values: list[float], unit: str) -> str:
    if median is None:
        return "-"
    text = _number_text(median, unit)
    return text if len(values) <= 1 else f"{text} (median of {len(values)})"


def _delta_text(m: MetricDelta) -> str:
    if m.delta is None:
        return "-"
    return ("+" if m.delta > 0 else "") + _number_text(m.delta, m.unit).replace("-", "−")


def _judgement_text(m: MetricDelta) -> str:
    if m.judgement == "no data":
        return "no data"
    threshold = _number_text(m.threshold or 0.0, m.unit)
    if m.basis == "rank test" and m.test is not None:
        p = m.test.p_greater if (m.delta or 0) > 0 else m.test.p_less
        return f"{m.judgement} (rank test p={p:.3g}, threshold {threshold})"
    return f"{m.judgement} ({m.basis}, threshold {threshold})"


def scenario_status(drills: Sequence[Mapping[str, Any]]) -> str:
    """A scenario's status over its drills: the worst of theirs (skipped drills count only if all were)."""
    statuses = {str(d.get("status")) for d in drills}
    for status in _STATUS_ORDER:
        if status in statuses:
            return status
    return sorted(statuses)[0] if statuses else "skipped"


def _values(drills: Sequence[Mapping[str, Any]], column: str) -> list[float]:
    return [float(d[column]) for d in drills if d.get(column) is not None and d.get("status") != "skipped"]


def _metric(column: str, label: str, unit: str, a: list[float], b: list[float], limits: Thresholds) -> MetricDelta:
    if not a or not b:
        return MetricDelta(column, label, unit, a, b, statistics.median(a) if a else None,
                           statistics.median(b) if b else None, None, None, "no data", "")
    median_a, median_b = statistics.median(a), statistics.median(b)
    delta = median_b - median_a
    threshold = limits.of(unit, median_a)
    beyond = "worse" if delta > threshold else "better" if delta < -threshold else "same"
    test: RankTest | None = None
    if min(len(a), len(b)) >= 2 and smallest_p(len(a), len(b)) <= limits.alpha:
        test = mann_whitney(a, b)
        basis = "rank test"
        if (beyond == "worse" and test.p_greater > limits.alpha) or (beyond == "better" and test.p_less > limits.alpha):
            beyond = "same"  # larger than the threshold, but within the noise
    else:
        basis = "single-sample" if len(a) == 1 and len(b) == 1 else "few-sample"
    return MetricDelta(column, label, unit, a, b, median_a, median_b, delta, threshold, beyond, basis, test)


def _flat(settings: Any, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(settings, Mapping):
        for key, value in settings.items():
            if key == "file":
                continue
            out.update(_flat(value, f"{prefix}{key}." if isinstance(value, Mapping) else f"{prefix}{key}"))
    elif prefix:
        out[prefix] = str(settings)
    return out


def settings_changes(a: str | Mapping[str, Any] | None, b: str | Mapping[str, Any] | None
                     ) -> list[tuple[str, str | None, str | None]]:
    """The toolkit settings (as journaled, JSON or parsed) that differ between two runs: (key, in A, in B)."""
    def parsed(value: str | Mapping[str, Any] | None) -> dict[str, str]:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                return {}
        return _flat(value) if isinstance(value, Mapping) else {}

    flat_a, flat_b = parsed(a), parsed(b)
    if not flat_a or not flat_b:
        return []  # unknown on one side: no claim of a change
    return [(key, flat_a.get(key), flat_b.get(key)) for key in sorted(set(flat_a) | set(flat_b))
            if flat_a.get(key) != flat_b.get(key)]


def compare(run_a: str, drills_a: Sequence[Mapping[str, Any]], run_b: str, drills_b: Sequence[Mapping[str, Any]],
            limits: Thresholds | None = None, settings_a: str | Mapping[str, Any] | None = None,
            settings_b: str | Mapping[str, Any] | None = None) -> Comparison:
    """Compare the drills of run ``run_a`` (before) with those of ``run_b`` (after), scenario by scenario (the
    drills' ``scenario`` key), in the order the scenarios first appear in A, then B."""
    limits = limits or Thresholds()
    by_a: dict[str, list[Mapping[str, Any]]] = {}
    by_b: dict[str, list[Mapping[str, Any]]] = {}
    for drill in drills_a:
        by_a.setdefault(str(drill["scenario"]), []).append(drill)
    for drill in drills_b:
        by_b.setdefault(str(drill["scenario"]), []).append(drill)
    scenarios: list[ScenarioDelta] = []
    for key in [*by_a, *(k for k in by_b if k not in by_a)]:
        a, b = by_a.get(key, []), by_b.get(key, [])
        delta = ScenarioDelta(
            key, scenario_status(a) if a else None, scenario_status(b) if b else None,
            (sum(1 for d in a if d.get("status") == "passed"), len(a)),
            (sum(1 for d in b if d.get("status") == "passed"), len(b)))
        if a and b:
            delta.metrics = [_metric(column, label, unit, _values(a, column), _values(b, column), limits)
                             for column, label, unit in METRICS]
            if delta.status_a == "passed" and delta.status_b in _FAILED:
                delta.reasons.append(f"passed in A, {delta.status_b} in B")
            for m in delta.metrics:
                if m.worse:
                    how = (f"rank test p={m.test.p_greater:.3g} ≤ {limits.alpha:g}" if m.test is not None
                           else f"{m.basis} judgement")
                    delta.reasons.append(f"{m.label} worse by {_number_text(m.delta or 0.0, m.unit)} (threshold "
                                         f"{_number_text(m.threshold or 0.0, m.unit)}; {how})")
        scenarios.append(delta)
    return Comparison(run_a, run_b, limits, scenarios, settings_changes(settings_a, settings_b))


def against_previous(db: Path | str, run_id: str, limits: Thresholds | None = None) -> Comparison | None:
    """The run ``run_id`` of the store ``db`` compared with the run before it: the newest earlier run of the same
    target and config name, not interrupted, with a scenario in common. None when there is no such run (or
    ``run_id`` is not recorded)."""
    from support.history.store import list_runs, run_drills

    runs = list_runs(db)
    this = next((r for r in runs if r["run_id"] == run_id), None)
    if this is None:
        return None
    drills = run_drills(db, run_id)
    scenarios = {d["scenario"] for d in drills}
    for run in runs:
        if (run["run_id"] == run_id or run["status"] == "interrupted" or run["target"] != this["target"]
                or run["config_name"] != this["config_name"]
                or (run["started_at"] or 0.0) >= (this["started_at"] or 0.0)):
            continue
        before = run_drills(db, run["run_id"])
        if scenarios & {d["scenario"] for d in before}:
            return compare(run["run_id"], before, run_id, drills, limits, run.get("toolkit_settings"),
                           this.get("toolkit_settings"))
    return None
