"""Two overlapping runs on the lab: while run 1 holds the pair's lease, a second run, `lab up` (both ways in) and
`faults clean` are refused with exit 3 and one line naming run 1, `faults list` names the holder, and run 1
passes untouched. One short behave run serves every assertion."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from labwire import ROOT, Lab, wait_until

pytestmark = pytest.mark.lab

FEATURE = "tests/lab/features/lease_overlap.feature"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "support.cli", *args]


def started(reports: Path) -> str | None:
    """Run 1's id once its journal shows the scenario started."""
    for journal in reports.glob("*/journal.jsonl"):
        if any(json.loads(line)["event"] == "scenario.started" for line in journal.read_text().splitlines()):
            return journal.parent.name
    return None


def test_a_second_run_lab_up_and_faults_clean_are_refused_during_a_run(default_deployment: Lab,
                                                                       tmp_path: Path) -> None:
    first_reports, second_reports = tmp_path / "one", tmp_path / "two"
    first = subprocess.Popen(cli("run", "--set", f"run.reports_dir={first_reports}", FEATURE), cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        run_id = wait_until(lambda: started(first_reports), 60, "run 1's scenario started")
        others = {
            "run": cli("run", "--set", f"run.reports_dir={second_reports}", FEATURE),
            "lab up": [sys.executable, "-m", "lab", "up"],
            "failover-tester lab up": cli("lab", "up"),
            "faults clean": cli("faults", "clean"),
            "faults list": cli("faults", "list"),
        }
        procs = {name: subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for name, cmd in others.items()}
        done = {name: (proc.wait(timeout=60), *proc.communicate()) for name, proc in procs.items()}
        checked_at = time.time()
        for name in ("run", "lab up", "failover-tester lab up", "faults clean"):
            code, out, err = done[name]
            assert code == 3, f"{name}: exit {code}\n{out}\n{err}"
            lines = [line for line in err.splitlines() if "refused" in line]
            assert len(lines) == 1 and f"is leased by run {run_id} (run), pid {first.pid} " in lines[0], err
        assert "--force" in done["faults clean"][2]
        assert not second_reports.exists()  # refused before anything was written
        code, out, err = done["faults list"]
        assert code == 0 and f"lease: pair embedded-lab is leased by run {run_id} (run)" in out, out + err
        output, _ = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, output[-3000:]
    run_dir = first_reports / run_id
    events = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    finished = next(e for e in events if e["event"] == "scenario.finished")
    assert finished["t"] > checked_at, "run 1 ended before the others were tried: the feature is too short"
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "passed"
    assert not [e for e in events if e["event"].startswith("fault.")]  # nobody injected or cleaned under it
