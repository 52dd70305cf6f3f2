"""Sharding on the lab: the three short scenarios of ``features/sharding.feature`` (an outline's two rows among them)
split over two shards, each run as its own runner would (its own reports folder), one after the other, then merged.
The merged run holds every scenario once, with the verdicts the shards gave, and judging it again from disk gives
them too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.reporting.summary import scenario_key

ROOT = Path(__file__).resolve().parents[2]
FEATURE = "tests/integration/features/sharding.feature"

pytestmark = pytest.mark.lab


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "support.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, check=False)


def verdicts(summary: dict[str, Any]) -> dict[str, Any]:
    return {scenario_key(s): (s["status"], [(v["name"], v["status"]) for v in s["verdicts"]])
            for s in summary["scenarios"]}


def test_two_shards_run_one_after_the_other_and_merge_into_one_run(lab: object, tmp_path: Path) -> None:
    runs = []
    for index in (1, 2):
        done = cli("run", "--shard", f"{index}/2", "--set", f"run.reports_dir={tmp_path / f'runner{index}'}", FEATURE)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert f"shard {index}/2: {2 if index == 1 else 1} of the 3 selected scenario(s)" in done.stdout
        run_dir = (tmp_path / f"runner{index}" / "latest").resolve()
        assert json.loads((run_dir / "run.json").read_text())["shard"] == f"{index}/2"
        runs.append(run_dir)
    shards = [json.loads((run / "summary.json").read_text()) for run in runs]
    assert [s["totals"]["scenarios"] for s in shards] == [2, 1]
    expected = {**verdicts(shards[0]), **verdicts(shards[1])}
    assert len(expected) == 3 and all(status == "passed" for status, _ in expected.values())

    merged = tmp_path / "merged"
    done = cli("report", "merge", *map(str, runs), "--out", str(merged))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((merged / "summary.json").read_text())
    keys = [scenario_key(s) for s in summary["scenarios"]]
    assert len(keys) == len(set(keys)) == 3 and summary["status"] == "passed"
    assert verdicts(summary) == expected
    meta = json.loads((merged / "run.json").read_text())
    assert meta["shard"] == "merged" and meta["shards"] == [run.name for run in runs]
    report = (merged / "report.html").read_text()
    assert all(s["name"] in report for s in summary["scenarios"])
    results = [json.loads(p.read_text()) for p in (merged / "allure-results").glob("*-result.json")]
    assert sorted(r["name"] for r in results) == sorted(s["name"] for s in summary["scenarios"])
    assert (merged / "allure-report" / "index.html").exists()
    assert sum(1 for _ in (merged / "junit").glob("*.xml")) == 1  # one feature: one suite

    judged = cli("judge", str(merged))
    assert judged.returncode == 0, judged.stdout[-3000:] + judged.stderr[-3000:]
    assert verdicts(json.loads((merged / "summary.json").read_text())) == expected
