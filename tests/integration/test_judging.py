"""A data check written before the recovery checks judges a window that covers the fault, the takeover and the end
of the fault, and leaves the traffic running: it fails if the window misses the fault (the checks of old stopped
the producer and judged at once, 0.01 s into the fault)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from support.data.ledger import read_table

ROOT = Path(__file__).resolve().parents[2]
FEATURE = "tests/integration/features/checks_first.feature"

pytestmark = pytest.mark.lab


def test_a_data_check_written_first_covers_the_fault_and_its_recovery(lab: object, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "support.cli", "run", "--set", f"run.reports_dir={tmp_path}", FEATURE]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    run_dir = tmp_path / "latest"
    summary = json.loads((run_dir / "summary.json").read_text())
    scenario = summary["scenarios"][0]
    assert scenario["status"] == "passed", done.stdout[-3000:]
    events = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    effective = next(e for e in events if e["event"] == "fault.effective")
    healed = next(e for e in events if e["event"] == "fault.healed")
    assert healed["t"] - effective["t"] >= 5.9  # the hang lasted its 6 s
    takeover_at = effective["t"] + scenario["phases_s"]["first_output"]
    for verdict in scenario["verdicts"][:3]:  # unknown, duplicated, single emitter: all before the takeover step
        window = verdict["evidence"]["window"]
        assert window["fault_effective"] == pytest.approx(effective["t"])
        assert window["recovered"] == pytest.approx(takeover_at, abs=0.01)
        assert window["fault_over"] == pytest.approx(healed["t"])
        assert window["end"] >= healed["t"] + 4.0  # and its settling period
        assert "after the fault" in verdict["summary"]
    # the checks left the traffic flowing while they waited, through the end of their window; the producer stopped
    # only when the steps were done
    sent = read_table(next((run_dir / "ledgers").iterdir()) / "sent", ["t_send"])
    first_window = scenario["verdicts"][0]["evidence"]["window"]
    assert float(np.max(sent["t_send"])) >= first_window["end"] - 0.5
    done_at = next(e["t"] for e in events if e["event"] == "scenario.steps_done")
    assert next(e["t"] for e in events if e["event"] == "traffic.producer_stopped") >= done_at
