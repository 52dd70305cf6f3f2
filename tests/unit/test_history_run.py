"""``failover-tester run`` records the finished run in the history (the end of ``_report``), and a history that
cannot be written changes nothing of the run's verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from faultfakes import lab_shaped_config
from historyfakes import record

from support.cli import run as run_module
from support.history.store import find_run, run_drills


def _finished_run(reports: Path, run_id: str) -> Path:
    run_dir = reports / run_id
    (run_dir / "allure-results").mkdir(parents=True)
    (run_dir / "scenarios.jsonl").write_text(json.dumps(record(2.3)) + "\n")
    (run_dir / "run.json").write_text(json.dumps({"run_id": run_id, "config": "config/lab.yaml",
                                                  "target": "embedded-lab", "started_at": 1_796_499_999.0,
                                                  "finished_at": 1_796_500_030.0, "tool_version": "9.9",
                                                  "behave_exit_code": 0}))
    return run_dir


@pytest.fixture
def no_allure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_module, "render_single_file", lambda *args, **kwargs: None)


def test_the_report_records_the_run(tmp_path: Path, no_allure: None, capsys: pytest.CaptureFixture[str]) -> None:
    reports = tmp_path / "reports"
    run_dir = _finished_run(reports, "20261206-120000-abcd")
    config = lab_shaped_config(tmp_path, f"run.reports_dir={reports}")
    assert run_module._report(config, run_dir.name, run_dir, reports, 0) is True
    assert f"history:  {reports / 'history.sqlite'}" in capsys.readouterr().out
    row = find_run(reports / "history.sqlite", run_dir.name)
    assert row is not None and (row["status"], row["tool_version"]) == ("passed", "9.9")
    assert [(d["status"], d["rto_s"]) for d in run_drills(reports / "history.sqlite", run_dir.name)] == [
        ("passed", 2.3)]


def test_a_history_failure_leaves_the_verdict(tmp_path: Path, no_allure: None,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    reports = tmp_path / "reports"
    run_dir = _finished_run(reports, "20261206-120000-abcd")
    (reports / "history.sqlite").mkdir()  # the store cannot be opened
    config = lab_shaped_config(tmp_path, f"run.reports_dir={reports}")
    assert run_module._report(config, run_dir.name, run_dir, reports, 0) is True
    out = capsys.readouterr().out
    assert "result:   passed" in out and "history:  not recorded (" in out
