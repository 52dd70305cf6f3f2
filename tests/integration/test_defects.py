"""Checkers shown failing on a defective lab (and passing on a clean one, see test_smoke_run.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labwire import run_lab

ROOT = Path(__file__).resolve().parents[2]
FEATURE = "tests/integration/features/short_takeover.feature"

pytestmark = pytest.mark.lab


@pytest.fixture()
def defective_lab(lab: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    defect = request.param
    assert run_lab("down").returncode == 0
    up = run_lab("up", "--defect", defect)
    assert up.returncode == 0, up.stderr
    try:
        yield defect
    finally:
        run_lab("down")
        restored = run_lab("up")
        assert restored.returncode == 0, restored.stderr


@pytest.mark.parametrize("defective_lab", ["no-takeover"], indirect=True)
def test_takeover_checker_fails_when_the_standby_never_takes_over(defective_lab: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "support.cli", "run", "--set", f"run.reports_dir={tmp_path}", FEATURE],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((tmp_path / "latest" / "summary.json").read_text())
    scenario = summary["scenarios"][0]
    assert summary["status"] == "failed" and scenario["status"] == "failed"
    takeover = next(v for v in scenario["verdicts"] if v["name"] == "takeover")
    assert not takeover["passed"] and takeover["summary"] == "dc2 never took over (limit 6 s)."
    assert scenario["error"] == takeover["summary"]
    assert scenario["rto_s"] is None and scenario["phases_s"]["down_detected"] is not None
