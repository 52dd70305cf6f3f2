"""Distributions over a run's drills, the gates on them and the resilience score (``summary.json``).

A *drill* is one execution of a scenario; ``failover-tester run --repeat N`` gives each scenario N drills (records
with ``repeat: k``), a run without it one. Per scenario (:func:`support.reporting.summary.scenario_key`) and metric
(:data:`support.config.gates.METRICS`: the RTO, every recovery phase, lost, duplicated and unknown tuples, the loss
window and the state loss window) the summary carries the raw samples, one per drill that measured the metric, and
their p50, p95 and max, each with a bootstrap 95 % confidence interval.

- Percentiles interpolate linearly between the order statistics (numpy's default): the p95 of 2 samples lies
  95 % of the way from the smaller to the larger.
- The confidence interval is the 2.5th and 97.5th percentile of the statistic over :data:`RESAMPLES` resamples
  with replacement (percentile bootstrap). The seed is derived from the scenario and the metric, so judging the
  same records again gives the same numbers. With one sample the interval is that sample; the interval of the max
  never goes above the largest sample (a bootstrap cannot see beyond what was measured).
- Drills that were skipped or interrupted give no samples (their measurements are cut short).

A gate (``gates:`` in the config) holds when its statistic is within its limit for every scenario it selects;
its *worst* value is the largest statistic among them, its margin ``limit - worst``. A gate whose scenarios
measured nothing is "not judged", which fails the run like a failed gate (inconclusive is never passed); a gate
that selects no scenario of the run is "no scenario" and judges nothing.

The resilience score: the share of the judged gates (met, failed or not judged) that are met, weighted by
severity (critical 3, major 2, minor 1), as a percentage; null when the run has no judged gate.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from support.config.gates import METRICS, SEVERITY_WEIGHTS, STATS, Gate
from support.measure import PHASES

#: bootstrap resamples per statistic
RESAMPLES = 2000
#: the records that give samples
MEASURED = frozenset({"passed", "failed", "not judged"})
#: the objective statuses that fail a run
FAILING = frozenset({"failed", "not judged"})
SCORE_DEFINITION = ("share of the judged gates that are met, weighted by severity (critical 3, major 2, minor 1), "
                    "in percent; a gate not judged counts as not met; null without judged gates")


def metric_value(record: Mapping[str, Any], key: str) -> float | None:
    """The value of the metric ``key`` (a value of :data:`METRICS`) in one drill's record, or None."""
    value: Any
    if key == "rto_s":
        value = record.get("rto_s")
    elif key in ("lost", "duplicated", "unknown"):
        value = record.get(key)
    elif key == "loss_window_s":
        value = (record.get("delivery") or {}).get("loss_window_s")
    elif key == "state_loss_window_s":
        value = next(((v.get("evidence") or {}).get("state_loss_window_s") for v in record.get("verdicts") or []
                      if v.get("name") == "consistent_state"), None)
        if value is None:
            value = (record.get("rpo") or {}).get("state_loss_window_s")
    else:
        value = (record.get("phases_s") or {}).get(key.removesuffix("_s"))
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def percentile(samples: Sequence[float], stat: str) -> float:
    """``stat`` (p50, p95 or max) of non-empty ``samples``."""
    values = np.asarray(samples, dtype=float)
    if stat == "max":
        return float(values.max())
    return float(np.percentile(values, float(stat[1:])))


def bootstrap_ci(samples: Sequence[float], stat: str, seed: int, resamples: int = RESAMPLES) -> tuple[float, float]:
    """The percentile-bootstrap 95 % confidence interval of ``stat`` over ``samples`` (deterministic per seed)."""
    values = np.asarray(samples, dtype=float)
    if len(values) == 1:
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    draws = values[rng.integers(0, len(values), size=(resamples, len(values)))]
    stats = draws.max(axis=1) if stat == "max" else np.percentile(draws, float(stat[1:]), axis=1)
    low, high = np.percentile(stats, [2.5, 97.5])
    return float(low), float(high)


def _seed(scenario: str, key: str) -> int:
    return zlib.crc32(f"{scenario}|{key}".encode())


def describe(samples: Sequence[float], scenario: str, key: str) -> dict[str, Any]:
    """One metric's distribution: the samples, p50/p95/max and their 95 % confidence intervals (None without
    samples)."""
    out: dict[str, Any] = {"n": len(samples), "samples": [round(v, 3) for v in samples]}
    for stat in STATS:
        if samples:
            low, high = bootstrap_ci(samples, stat, _seed(scenario, f"{key}:{stat}"))
            out[stat] = round(percentile(samples, stat), 3)
            out[f"{stat}_ci95"] = [round(low, 3), round(high, 3)]
        else:
            out[stat] = None
            out[f"{stat}_ci95"] = None
    return out


def distributions(records: Iterable[dict[str, Any]], scenario_key: Callable[[dict[str, Any]], str]
                  ) -> list[dict[str, Any]]:
    """One entry per scenario (``scenario_key``: :func:`support.reporting.summary.scenario_key`), in the order they
    first ran: its drills and every metric's distribution."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        grouped.setdefault(scenario_key(record), []).append(record)
    out = []
    for key, drills in grouped.items():
        measured = [r for r in drills if r.get("status") in MEASURED]
        tags = sorted({str(t) for r in drills for t in r.get("tags") or []})
        metrics: dict[str, Any] = {}
        for metric in METRICS.values():
            pairs = [(int(r.get("repeat") or 1), v) for r in measured if (v := metric_value(r, metric)) is not None]
            metrics[metric] = {**describe([v for _, v in pairs], key, metric), "drills": [k for k, _ in pairs]}
        out.append({"scenario": key, "feature": drills[0].get("feature", ""), "name": drills[0].get("name", ""),
                    "tags": tags, "drills": len(drills), "measured": len(measured),
                    "statuses": [str(r.get("status")) for r in drills], "metrics": metrics})
    return out


def judge_gates(gates: Sequence[Gate], dists: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each gate against the run's distributions: worst value, margin, met (true/false/null), status, sentence."""
    out = []
    for gate in gates:
        selected = [d for d in dists if gate.selects(str(d["scenario"]), d.get("tags") or [])]
        values = [(float(v), str(d["scenario"])) for d in selected
                  if (v := d["metrics"][gate.key][gate.stat]) is not None]
        worst, where = max(values) if values else (None, None)
        what = gate.label
        limit = gate.show(gate.limit, None)
        if not selected:
            met, status, margin = None, "no scenario", None
            sentence = f"No scenario of this run is selected by this gate: {what} was not judged."
        elif worst is None:
            met, status, margin = None, "not judged", None
            sentence = (f"{what[0].upper()}{what[1:]} was not measured in any drill of the {len(selected)} selected "
                        "scenario(s): not judged, which fails the run.")
        else:
            met = worst <= gate.limit
            status = "met" if met else "failed"
            margin = round(gate.limit - worst, 3)
            drills = next(int(d["metrics"][gate.key]["n"]) for d in selected if d["scenario"] == where)
            side = f"{gate.show(abs(margin))} {'under' if met else 'over'} the limit of {limit}"
            sentence = (f"{what[0].upper()}{what[1:]} is {gate.show(worst)} at worst ({where}, {drills} drill(s)): "
                        f"{side}.")
        out.append({**gate.to_json(), "worst": None if worst is None else round(worst, 3), "worst_scenario": where,
                    "margin": margin, "met": met, "status": status, "scenarios": len(selected),
                    "sentence": sentence})
    return out


def score(objectives: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The resilience score of judged objectives (see the module's docstring)."""
    judged = [o for o in objectives if o["status"] != "no scenario"]
    total = sum(SEVERITY_WEIGHTS[str(o["severity"])] for o in judged)
    met = sum(SEVERITY_WEIGHTS[str(o["severity"])] for o in judged if o["met"] is True)
    return {"value": round(100.0 * met / total, 1) if total else None,
            "met": sum(1 for o in judged if o["met"] is True), "judged": len(judged),
            "failed": [str(o["name"]) for o in judged if o["status"] in FAILING],
            "weights": dict(SEVERITY_WEIGHTS), "definition": SCORE_DEFINITION}


def duration_metrics() -> list[str]:
    """The duration metrics in the order the reports show them."""
    return ["rto_s", *(f"{p}_s" for p in PHASES), "loss_window_s", "state_loss_window_s"]
