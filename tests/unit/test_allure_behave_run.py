"""A real behave run (no lab) with the project's hooks and Allure formatter: the written allure-results carry
epic, severity (critical for @smoke) and the data center pair, and Scenario Outline rows are named by their
values in the console, the Allure results and the scenario records (not behave's ``-- @1.1``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from faultfakes import PROJECT

STEPS = """from behave import given

from support.reporting.allure import label_dc_pair


@given('"{active}" is active with "{standby}" on standby')
def _(context, active, standby):
    label_dc_pair(active, standby)  # what World.deploy_active_passive calls
"""

FEATURE = """Feature: labels in a real run
  @smoke
  Scenario: a smoke drill
    Given "dc1" is active with "dc2" on standby

  Scenario Outline: a drill from <active>
    Given "<active>" is active with "<standby>" on standby

    Examples:
      | active | standby |
      | dc2    | dc1     |
      | dc1    | dc2     |
"""


def test_labels_and_outline_names_reach_the_written_allure_results(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("unit-secret-pw\n")
    config = tmp_path / "config.yaml"
    config.write_text(f"extends: {PROJECT / 'config' / 'lab.yaml'}\ndatacenters:\n"
                      + "".join(f"  {dc}: {{rest: {{auth: {{password: '${{file:{secret}}}'}}}}}}\n"
                                for dc in ("dc1", "dc2")))
    (tmp_path / "steps").mkdir()
    (tmp_path / "steps" / "labels.py").write_text(STEPS)
    (tmp_path / "environment.py").write_text((PROJECT / "environment.py").read_text())
    (tmp_path / "labels.feature").write_text(FEATURE)
    results, run_dir = tmp_path / "allure-results", tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "behave", "-f", "support.reporting.allure_formatter:AllureFormatter", "-o",
         str(results), "-f", "support.reporting.console:PrettyFormatter", "--no-logcapture", "--no-color",
         "-D", f"config={config}", "-D", f"run_dir={run_dir}", "-D", "run_id=labels", "labels.feature"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={"PYTHONPATH": str(PROJECT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert done.returncode == 0, done.stdout + done.stderr
    tests = {}
    for path in results.glob("*-result.json"):
        test = json.loads(path.read_text())
        tests[test["name"]] = {(label["name"], label["value"]) for label in test["labels"]}
    assert set(tests) == {"a smoke drill", "a drill from dc2", "a drill from dc1"}
    assert {("epic", "Cross-DC failover"), ("severity", "critical"), ("dc_pair", "dc1 → dc2")} <= tests["a smoke drill"]
    assert {("severity", "normal"), ("dc_pair", "dc2 → dc1")} <= tests["a drill from dc2"]
    for labels in tests.values():  # one of each, the dynamic value replacing the listener's
        assert sum(1 for name, _ in labels if name == "severity") == 1
    records = [json.loads(line) for line in (run_dir / "scenarios.jsonl").read_text().splitlines()]
    assert [r["name"] for r in records] == ["a smoke drill", "a drill from dc2", "a drill from dc1"]
    assert "Scenario Outline: a drill from dc2" in done.stdout and " -- @" not in done.stdout
    assert sorted(p.name for p in (run_dir / "ledgers").iterdir()) == [
        "01-a-smoke-drill", "02-a-drill-from-dc2", "03-a-drill-from-dc1"]
