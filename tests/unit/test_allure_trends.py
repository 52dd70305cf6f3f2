"""Allure trends carry across runs: ``render_single_file(..., history=reports/allure-history.jsonl)`` (what ``run``
does) appends each run to the history file, and the next report embeds it (its status dynamics chart and its
history data). Two renders with the real Allure 3 CLI (node_modules/.bin/allure, ``make bootstrap``), no lab (so it runs
with the unit tests, beside the lab tests)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from support.reporting.allure import find_allure, render_again, render_single_file

ROOT = Path(__file__).resolve().parents[2]


def _results(folder: Path, status: str, start_ms: int) -> Path:
    """An Allure results folder with one test, as allure-behave writes it for the smoke scenario."""
    folder.mkdir(parents=True)
    test = {
        "uuid": f"{start_ms:032x}"[-32:], "historyId": "50639991b1a697a516a48e0d280387d7",
        "testCaseId": "50639991b1a697a516a48e0d280387d7",
        "name": "dc2 takes over when the orders job in dc1 is canceled",
        "fullName": "Orders keep flowing: dc2 takes over when the orders job in dc1 is canceled",
        "status": status, "start": start_ms, "stop": start_ms + 19_000, "steps": [],
        "labels": [{"name": "feature", "value": "Orders keep flowing"}, {"name": "framework", "value": "behave"}],
    }
    (folder / f"{test['uuid']}-result.json").write_text(json.dumps(test))
    return folder


def _embedded(index: Path) -> dict[str, Any]:
    """The data files a single-file Allure report carries (path → parsed JSON)."""
    html = index.read_text(encoding="utf-8")
    return {path: json.loads(base64.b64decode(body)) for path, body in re.findall(r'd\("([^"]+\.json)","([^"]*)"\)',
                                                                                   html)}


def _dynamics(files: dict[str, Any]) -> list[dict[str, Any]]:
    charts = files["widgets/charts.json"]["general"]
    [dynamics] = [c["data"] for c in charts.values() if c["type"] == "statusDynamics"]
    return list(dynamics)


def test_the_second_report_shows_the_first_run(tmp_path: Path) -> None:
    assert find_allure(ROOT), "the Allure 3 CLI is missing: `make bootstrap` installs it (node_modules)"
    history = tmp_path / "reports" / "allure-history.jsonl"
    history.parent.mkdir()
    first = render_single_file(_results(tmp_path / "r1", "failed", 1_796_538_387_000), tmp_path / "o1", ROOT,
                               name="Failover tests run-1", history=history)
    second = render_single_file(_results(tmp_path / "r2", "passed", 1_796_540_000_000), tmp_path / "o2", ROOT,
                                name="Failover tests run-2", history=history)
    assert first is not None and second is not None
    assert [json.loads(line)["name"] for line in history.read_text().splitlines()] == [
        "Failover tests run-1", "Failover tests run-2"]
    assert [(d["name"], d["statistic"]) for d in _dynamics(_embedded(first))] == [
        ("current", {"total": 1, "failed": 1})]
    files = _embedded(second)
    assert [(d["name"], d["statistic"]) for d in _dynamics(files)] == [
        ("Failover tests run-1", {"total": 1, "failed": 1}), ("current", {"total": 1, "passed": 1})]
    [carried] = [v for k, v in files.items() if k.startswith("data/history/")]
    assert carried["name"] == "Failover tests run-1"
    assert [t["status"] for t in carried["testResults"].values()] == ["failed"]


@pytest.mark.parametrize("missing", ["file", "folder"])
def test_a_first_run_starts_the_history(tmp_path: Path, missing: str) -> None:
    history = tmp_path / ("reports" if missing == "folder" else "") / "allure-history.jsonl"
    index = render_single_file(_results(tmp_path / "r1", "passed", 1_796_538_387_000), tmp_path / "o1", ROOT,
                               name="Failover tests run-1", history=history)
    assert index is not None
    assert history.is_file() and len(history.read_text().splitlines()) == 1


def test_a_report_rendered_again_keeps_its_trends_and_the_history(tmp_path: Path) -> None:
    """``failover-tester judge`` renders a stored run again: with the runs before it, without adding to the file."""
    history = tmp_path / "allure-history.jsonl"
    runs = [(_results(tmp_path / f"r{k}", status, 1_796_538_387_000 + k * 1_000_000), f"Failover tests run-{k}")
            for k, status in enumerate(("failed", "passed", "passed"))]
    for results, name in runs:
        assert render_single_file(results, tmp_path / f"o-{name}", ROOT, name=name, history=history) is not None
    before = history.read_text()
    again = render_again(runs[1][0], tmp_path / "again", ROOT, "Failover tests run-1", history)
    assert again is not None and history.read_text() == before
    assert [d["name"] for d in _dynamics(_embedded(again))] == ["Failover tests run-0", "current"]
    never = render_again(runs[1][0], tmp_path / "never", ROOT, "Failover tests run-9", history)  # never rendered
    assert never is not None
    assert [d["name"] for d in _dynamics(_embedded(never))] == [f"Failover tests run-{k}" for k in range(3)] + [
        "current"]
