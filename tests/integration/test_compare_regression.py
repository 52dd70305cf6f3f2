"""A regression introduced on purpose, caught by ``compare`` (issue 14): the same scenario run three times with
the faster heartbeat setting (500 ms, 2 misses allowed), then three times with a slower one (1 s, 3 misses), into
one reports folder. ``compare --fail-on-regression`` of the two runs (ids from the history both runs recorded
themselves in) flags the takeover and the RTO as worse beyond noise (the rank test: three drills against three,
all slower) and exits 1; the same comparison the other way round is an improvement and exits 0.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support.history.store import list_runs, run_drills

ROOT = Path(__file__).resolve().parents[2]
FEATURES = ROOT / "tests" / "integration" / "features" / "heartbeat_regression"

pytestmark = pytest.mark.lab


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "support.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, check=False)


def test_compare_flags_the_slower_heartbeat_setting_as_a_regression(lab: object, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    run_ids = []
    for setting in ("before", "after"):
        done = cli("run", "--repeat", "3", "--set", f"run.reports_dir={reports}", str(FEATURES / setting))
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        run_ids.append((reports / "latest").resolve().name)
    before, after = run_ids
    db = reports / "history.sqlite"
    assert [r["run_id"] for r in list_runs(db)] == [after, before]  # newest first: both recorded themselves
    takeovers = {run: sorted(d["takeover_s"] for d in run_drills(db, run)) for run in run_ids}
    assert all(len(t) == 3 for t in takeovers.values()), takeovers
    assert max(takeovers[before]) < min(takeovers[after]), takeovers  # the setting really slowed detection

    worse = cli("compare", before, after, "--reports-dir", str(reports), "--fail-on-regression", "--json")
    assert worse.returncode == 1, worse.stdout[-3000:] + worse.stderr[-3000:]
    result = json.loads(worse.stdout)
    key = "The standby takes over a canceled orders job :: dc2 takes over when the orders job in dc1 is canceled"
    assert result["regressions"] == [key], json.dumps(result)[:3000]
    metrics = {m["metric"]: m for m in result["scenarios"][0]["metrics"]}
    takeover = next(m for name, m in metrics.items() if "takeover" in name)
    assert (takeover["judgement"], takeover["basis"]) == ("worse", "rank test"), takeover
    assert result["toolkit_settings_changed"], result  # the history read the settings in force back from the DCs
    better = cli("compare", after, before, "--reports-dir", str(reports), "--fail-on-regression")
    assert better.returncode == 0, better.stdout[-3000:] + better.stderr[-3000:]
