"""behave's console output under ``failover-tester run`` (support/reporting/console.py): no ``# None`` beside
steps that did not run, a ``Took`` line that counts the scenarios of rules, no log dumps of passing steps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from behave.configuration import Configuration
from behave.parser import parse_feature

from support.reporting.console import install

ROOT = Path(__file__).resolve().parents[2]

FEATURE = """Feature: console
  Rule: one rule
    Scenario: runs
      Given a step that logs

  @skipme
  Scenario: does not run
    Given a step that logs
"""

STEPS = """import logging
from behave import given

@given("a step that logs")
def _(context):
    logging.getLogger("tool").info("a log line of a passing step")
"""

ENVIRONMENT = """import logging

from support.reporting.console import install

install()


def before_all(context):  # as support.hooks: the log goes to a file, not to the console
    logging.getLogger().addHandler(logging.FileHandler("run.log"))
    logging.getLogger().setLevel(logging.INFO)
"""


def _behave(tmp_path: Path, formatter: str, *flags: str) -> str:
    (tmp_path / "steps").mkdir(exist_ok=True)
    (tmp_path / "steps" / "s.py").write_text(STEPS)
    (tmp_path / "environment.py").write_text(ENVIRONMENT)
    (tmp_path / "c.feature").write_text(FEATURE)
    done = subprocess.run([sys.executable, "-m", "behave", "-f", formatter, "--no-color", "--tags", "not @skipme",
                           "--show-skipped", *flags, "c.feature"], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_steps_that_did_not_run_have_no_none_beside_them(tmp_path: Path) -> None:
    plain = _behave(tmp_path, "pretty")
    assert "# None" in plain  # behave's own formatter: what this module removes
    out = _behave(tmp_path, "support.reporting.console:PrettyFormatter", "--no-logcapture")
    assert "# None" not in out
    assert "Given a step that logs\n" in out  # the step is still listed
    assert "a log line of a passing step" not in out


def test_feature_duration_counts_the_scenarios_of_rules() -> None:
    install()
    feature = parse_feature(FEATURE, filename="c.feature")
    for scenario in feature.walk_scenarios():
        for step in scenario.all_steps:
            step.duration = 1.25
    assert feature.duration == 2.5  # behave 1.3 alone: 1.25 (the rule's scenario left out)


def test_project_and_scaffold_keep_the_log_off_the_console(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for source in (ROOT / "support" / "scaffold" / "project" / "behave.ini", ROOT / "pyproject.toml"):
        folder = tmp_path / source.parent.name
        folder.mkdir()
        (folder / source.name).write_text(source.read_text())
        monkeypatch.chdir(folder)
        assert Configuration([]).capture_log is False, source
    run = (ROOT / "support" / "cli" / "run.py").read_text()
    assert '"support.reporting.console:PrettyFormatter", "--no-logcapture"' in run
