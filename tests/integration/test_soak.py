"""Soak mode on the real lab (issue 14): `failover-tester run --every 1s --for 2m` on a short steady drill runs round
after round (each overruns its 1 s slot, so the next starts at once), and a Ctrl-C in round 3 stops the soak
cleanly: round 3 heals, restores and reports as interrupted, no round 4 starts, the lab is as before, and the exit
code is 130. Each round is a normal run: its own run id and reports, run.json naming the soak and the round.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from labwire import Lab, wait_until
from test_interrupt import lab_is_whole

ROOT = Path(__file__).resolve().parents[2]
FEATURE = "tests/integration/features/soak.feature"

pytestmark = pytest.mark.lab


def running(reports: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads((reports / "running.json").read_text()))
    except (OSError, ValueError):
        return None


def journal(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "journal.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def test_soak_runs_three_rounds_and_stops_cleanly_on_ctrl_c(default_deployment: Lab, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    began = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "support.cli", "run", "--every", "1s", "--for", "2m",
                             "--set", f"run.reports_dir={reports}", FEATURE], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        def third_round_started() -> Path | None:
            assert proc.poll() is None, "the soak ended before its third round"
            live = running(reports)
            if not live or live.get("round") != 3 or live.get("between_rounds"):
                return None
            run_dir = reports / str(live["run_id"])
            return run_dir if any(e["event"] == "scenario.started" for e in journal(run_dir)) else None

        third = wait_until(third_round_started, timeout=120, interval=0.05, what="round 3's scenario to start")
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C at the terminal
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:  # a failed check: stop the soak (it heals on SIGTERM) and show what it printed
            proc.terminate()
            print(proc.communicate(timeout=180)[0][-6000:])
    print(f"soak took {time.monotonic() - began:.1f} s")
    assert proc.returncode == 130, out[-4000:]
    assert lab_is_whole(default_deployment) is None
    rounds = sorted((json.loads(p.read_text()) for p in reports.glob("*/run.json") if p.parent.name != "latest"),
                    key=lambda r: r["round"])
    assert [r["round"] for r in rounds] == [1, 2, 3]  # no round 4
    assert len({r["soak_id"] for r in rounds}) == 1 and len({r["run_id"] for r in rounds}) == 3
    assert rounds[2]["run_id"] == third.name
    statuses = [json.loads((reports / r["run_id"] / "summary.json").read_text())["status"] for r in rounds]
    assert statuses == ["passed", "passed", "interrupted"]
    assert all((reports / r["run_id"] / "report.html").exists() for r in rounds)
    assert any(e["event"] == "run.interrupted" for e in journal(third))
    assert "round 2 starts at once" in out and "round 3 starts at once" in out  # each overran its 1 s slot
    soak_id = rounds[0]["soak_id"]
    assert out.rstrip().splitlines()[-1].startswith(f"soak {soak_id}: 3 round(s) in ")
    assert "(1 interrupted, 2 passed); stopped by SIGINT; no round failed" in out.rstrip().splitlines()[-1]
    assert running(reports) is None
