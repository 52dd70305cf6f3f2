"""The measured recovery instants and phases agree with the lab's ground truth within 20 ms (p95 over 10 failovers).

Failovers are driven in-process with the framework's own classes (RunContext, World: deployment, traffic,
toolkit monitor, the job-cancel fault, the claims; the judge's timeline), exactly as the steps do; only this test
reads the ground-truth log. ``XDC_ACCURACY_FAILOVERS`` sets the number of failovers (default 10);
``XDC_ACCURACY_OUT`` names a JSON file to write the error distribution to (``make bench``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from labwire import truth_instants

from support.config import load_config
from support.judge import facts
from support.world import RunContext, World

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 0.020  # seconds, p95 of |measured - truth|, per instant and per phase

pytestmark = pytest.mark.lab


def failover(run: RunContext, index: int) -> dict[str, float | None]:
    world = World(run, "accuracy", f"failover {index}", [])
    try:
        world.deploy_active_passive("orders", "dc1", "dc2")
        world.start_traffic(100)
        world.wait_steady(2)
        world.cancel_job("orders", "dc1")
        world.claim("takeover", dc="dc2", within=10)
        world.claim("recovery_time", limit=10)
        timeline = facts.timeline(world.history())
        measured = {"fault_effective": timeline.fault_effective, "down_detected": timeline.down_detected,
                    "takeover": timeline.takeover, "first_output": timeline.first_output}
    finally:
        errors = world.close()
    assert not errors, errors
    return measured


def test_measured_phases_match_the_ground_truth(lab: Any, tmp_path: Path) -> None:
    count = int(os.environ.get("XDC_ACCURACY_FAILOVERS", "10"))
    run_id = time.strftime("accuracy-%H%M%S")
    config = load_config(str(ROOT / "config" / "lab.yaml"), [f"run.reports_dir={tmp_path}"], run_id=run_id)
    run = RunContext.open(config, run_id, tmp_path / run_id)
    measurements = []
    try:
        for index in range(count):
            measurements.append(failover(run, index))
    finally:
        run.close()
    truth = lab.truth()
    errors: dict[str, list[float]] = {name: [] for name in ("fault_effective", "down_detected", "takeover",
                                                            "first_output")}
    phase_errors: dict[str, list[float]] = {name: [] for name in ("down_detected", "takeover", "first_output")}
    for measured in measurements:
        assert all(v is not None for v in measured.values()), measured
        real = truth_instants(truth, float(measured["fault_effective"]))  # type: ignore[arg-type]
        for name in errors:
            errors[name].append(float(measured[name]) - real[name])  # type: ignore[arg-type]
        for name in phase_errors:
            measured_phase = float(measured[name]) - float(measured["fault_effective"])  # type: ignore[arg-type]
            phase_errors[name].append(measured_phase - (real[name] - real["fault_effective"]))
    report = {
        "benchmark": "rto_accuracy",
        "failovers": count,
        "limit_s": LIMIT,
        "instants": {name: _distribution(values) for name, values in errors.items()},
        "phases": {name: _distribution(values) for name, values in phase_errors.items()},
    }
    report["within_limit"] = all(d["abs_p95_s"] <= LIMIT for d in report["phases"].values()) and all(
        d["abs_p95_s"] <= LIMIT for d in report["instants"].values())
    out = os.environ.get("XDC_ACCURACY_OUT")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    assert count >= 10 or os.environ.get("XDC_ACCURACY_FAILOVERS"), "at least 10 failovers make the p95"
    for group in ("instants", "phases"):
        for name, dist in report[group].items():
            assert dist["abs_p95_s"] <= LIMIT, f"{group} {name}: p95 error {dist['abs_p95_s']} s > {LIMIT} s"


def _distribution(values: list[float]) -> dict[str, float]:
    data = np.asarray(values)
    absolute = np.abs(data)
    return {
        "n": len(values),
        "mean_s": round(float(data.mean()), 4),
        "p50_s": round(float(np.percentile(data, 50)), 4),
        "abs_p50_s": round(float(np.percentile(absolute, 50)), 4),
        "abs_p95_s": round(float(np.percentile(absolute, 95)), 4),
        "abs_max_s": round(float(absolute.max()), 4),
        "min_s": round(float(data.min()), 4),
        "max_s": round(float(data.max()), 4),
    }
