"""Check before touching (issue 13, gap 10): ``run`` checks the selected scenarios (undefined steps, malformed
parameters, unknown data centers, applications and inputs) and exits 2 with file:line before any deployment."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from faultfakes import PROJECT, lab_shaped_config

from support.cli.precheck import precheck

GOOD = ('    Given the "orders" application runs active in "dc1" with "dc2" on standby\n'
        "    And orders flow at 100 tuples per second\n"
        '    When the network between "dc1" and "dc2" is partitioned for 20 seconds\n'
        '    Then "dc2" takes over within 45 seconds\n')


def feature(tmp_path: Path, *scenarios: str) -> Path:
    path = tmp_path / "check.feature"
    path.write_text("Feature: check\n" + "".join(scenarios))
    return path


def test_the_library_features_pass(tmp_path: Path) -> None:
    assert precheck(lab_shaped_config(tmp_path), [], [str(PROJECT / "features")]) == []


def test_every_kind_of_mistake_is_named_with_file_and_line(tmp_path: Path) -> None:
    path = feature(tmp_path, "  Scenario: mistakes\n" + GOOD
                   + '    When the netwrok between "dc1" and "dc2" is partitioned\n'   # line 7: misspelt
                   + '    When the CPU of "dc1" is exhausted for 3 fortnights\n'        # 8: malformed duration
                   + '    When "dc3" is cut off from the network\n'                      # 9: unknown data center
                   + '    When the "payments" job in "dc1" is canceled\n'               # 10: unknown application
                   + "    Given parcels flow at 10 tuples per second\n")                 # 11: unknown input
    problems = precheck(lab_shaped_config(tmp_path), [], [str(path)])
    assert [p.split(": ", 1)[0] for p in problems] == [f"{path}:{n}" for n in (7, 8, 9, 10, 11)]
    assert "undefined step" in problems[0] and "undefined step" in problems[1]
    assert 'unknown data center "dc3" (configured: dc1, dc2)' in problems[2]
    assert 'unknown application "payments"' in problems[3] and "unknown input 'parcels'" in problems[4]


def test_only_the_selected_scenarios_are_checked(tmp_path: Path) -> None:
    path = feature(tmp_path, "  @wanted\n  Scenario: fine\n" + GOOD,
                   "  Scenario: broken\n" + '    When "dc3" is cut off from the network\n')
    config = lab_shaped_config(tmp_path)
    assert precheck(config, ["@wanted"], [str(path)]) == []
    assert precheck(config, [], [f"{path}:3"]) == []
    assert len(precheck(config, [], [f"{path}:8"])) == 1
    assert len(precheck(config, [], [str(path)])) == 1


def test_run_exits_2_before_anything_is_deployed(tmp_path: Path) -> None:
    config = lab_shaped_config(tmp_path, f"run.reports_dir={tmp_path / 'reports'}")
    path = feature(tmp_path, "  Scenario: typo\n" + GOOD.replace("takes over", "take over"))
    (tmp_path / "environment.py").write_text("")  # a project folder for behave (never reached)
    config_file = tmp_path / "run.yaml"
    config_file.write_text(f"extends: {config.source}\nrun: {{reports_dir: {tmp_path / 'reports'}}}\n")
    done = subprocess.run([sys.executable, "-m", "support.cli", "run", "--config", str(config_file), str(path)],
                          cwd=PROJECT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().startswith(f"{path}:6: undefined step") and "Traceback" not in done.stderr
    assert not (tmp_path / "reports").exists()  # no run folder: behave never started
