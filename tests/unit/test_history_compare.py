"""``failover-tester compare`` and ``history`` (support/history/compare.py, support/cli/compare.py,
support/cli/history.py) on run folders shaped like real ones: the same scenario run with the toolkit's heartbeat
slowed down (RTO ~3 s longer) is flagged, noise is not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from historyfakes import FEATURE, NAME, drills, record, write_run

from support.cli import main
from support.history.compare import Thresholds, compare, scenario_status, settings_changes
from support.history.schema import default_db_path
from support.history.store import read_run, record_run

KEY = f"{FEATURE} :: {NAME}"
FAST = [2.05, 2.31, 2.12, 2.24, 1.98]   # RTO (s), heartbeat every 1 s
SLOW = [5.12, 5.41, 4.97, 5.30, 5.08]   # heartbeat every 2 s, 3 misses allowed: ~3 s later


def _compare(reports: Path, a: str, b: str):  # type: ignore[no-untyped-def]
    run_a, run_b = read_run(reports / a), read_run(reports / b)
    return compare(a, run_a.drills, b, run_b.drills, Thresholds(), run_a.run["toolkit_settings"],
                   run_b.run["toolkit_settings"])


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    """Two runs of the scenario with 5 repeats each (heartbeat 1 s, then 2 s), and with one drill each."""
    out = tmp_path / "reports"
    write_run(out, "fast", drills(FAST, start=1_796_500_000.0), heartbeat="1.0")
    write_run(out, "slow", drills(SLOW, start=1_796_510_000.0), heartbeat="2.0")
    write_run(out, "fast1", drills(FAST[:1], start=1_796_520_000.0), heartbeat="1.0")
    write_run(out, "slow1", drills(SLOW[:1], start=1_796_530_000.0), heartbeat="2.0")
    return out


def test_a_slower_heartbeat_is_a_regression_beyond_noise(reports: Path) -> None:
    result = _compare(reports, "fast", "slow")
    [scenario] = result.scenarios
    assert scenario.scenario == KEY and scenario.regressed and result.regressions == [scenario]
    rto = scenario.metrics[0]
    assert (rto.metric, rto.judgement, rto.basis) == ("rto_s", "worse", "rank test")
    assert rto.median_a == 2.12 and rto.median_b == 5.12 and rto.delta == pytest.approx(3.0)
    assert rto.threshold == 1.0 and rto.test is not None
    assert rto.test.method == "exact" and rto.test.p_greater == pytest.approx(1 / 252)  # complete separation, 5 + 5
    by_name = {m.metric: m for m in scenario.metrics}
    assert by_name["down_detected_s"].judgement == "worse" and by_name["lost"].judgement == "same"
    assert scenario.reasons[0] == "RTO worse by 3.00 s (threshold 1.00 s; rank test p=0.00397 ≤ 0.05)"
    assert ("dc1.application.heartbeatExchangeInterval", "1.0", "2.0") in result.settings
    text = result.text()
    assert f"{KEY}  [REGRESSED]" in text
    assert "toolkit setting dc1.application.heartbeatExchangeInterval: 1.0 → 2.0" in text
    assert "RTO                   2.12 s (median of 5)  5.12 s (median of 5)  +3.00 s" in text
    assert text.endswith("result:   1 of 1 compared scenario(s) regressed")
    back = _compare(reports, "slow", "fast")  # the other way round it is an improvement
    assert not back.regressions and back.scenarios[0].metrics[0].judgement == "better"


def test_one_drill_each_is_judged_on_the_threshold_and_says_so(reports: Path) -> None:
    rto = _compare(reports, "fast1", "slow1").scenarios[0].metrics[0]
    assert (rto.judgement, rto.basis, rto.test) == ("worse", "single-sample", None)
    assert "worse (single-sample, threshold 1.00 s)" in _compare(reports, "fast1", "slow1").text()
    assert _compare(reports, "fast1", "slow").scenarios[0].metrics[0].basis == "few-sample"


def test_a_shift_within_the_noise_is_not_a_regression(tmp_path: Path) -> None:
    write_run(tmp_path, "a", drills([2.0, 4.6, 2.2, 4.4, 2.1]), heartbeat="1.0")
    write_run(tmp_path, "b", drills([4.5, 2.1, 4.7, 4.4, 2.3]), heartbeat="1.0")
    rto = _compare(tmp_path, "a", "b").scenarios[0].metrics[0]
    assert rto.delta == pytest.approx(2.2) and rto.delta > rto.threshold  # the medians moved past the threshold,
    assert rto.test is not None and rto.test.p_greater > 0.05            # but the drills overlap: noise
    assert (rto.judgement, rto.basis) == ("same", "rank test")
    assert not _compare(tmp_path, "a", "b").regressions


def test_a_change_below_the_threshold_is_not_a_regression(tmp_path: Path) -> None:
    write_run(tmp_path, "a", drills([2.0, 2.1, 2.2]))
    write_run(tmp_path, "b", drills([2.6, 2.7, 2.8]))  # beyond noise (p = 0.05) but 0.6 s < 1 s
    rto = _compare(tmp_path, "a", "b").scenarios[0].metrics[0]
    assert rto.test is not None and rto.test.p_greater == pytest.approx(0.05) and rto.judgement == "same"
    tighter = compare("a", read_run(tmp_path / "a").drills, "b", read_run(tmp_path / "b").drills,
                      Thresholds(seconds=0.5))
    assert tighter.scenarios[0].metrics[0].judgement == "worse"


def test_a_pass_that_became_a_fail_is_a_regression(tmp_path: Path) -> None:
    write_run(tmp_path, "a", drills([2.0, 2.1, 2.2]))
    write_run(tmp_path, "b", [*drills([2.0, 2.1])[:2], record(2.2, status="failed", repeat=3)])
    [scenario] = _compare(tmp_path, "a", "b").scenarios
    assert (scenario.status_a, scenario.status_b, scenario.passed_a, scenario.passed_b) == (
        "passed", "failed", (3, 3), (2, 3))
    assert scenario.reasons == ["passed in A, failed in B"]
    assert "status: passed (3/3 passed) → failed (2/3 passed)" in _compare(tmp_path, "a", "b").text()


def test_counts_and_missing_values(tmp_path: Path) -> None:
    write_run(tmp_path, "a", [record(None, lost=0, state_loss_window=None)])
    write_run(tmp_path, "b", [record(3.0, lost=40, state_loss_window=None)])
    by_name = {m.metric: m for m in _compare(tmp_path, "a", "b").scenarios[0].metrics}
    assert by_name["rto_s"].judgement == "no data" and by_name["rto_s"].median_b == 3.0
    assert by_name["lost"].judgement == "worse" and by_name["lost"].threshold == 10
    assert by_name["state_loss_window_s"].judgement == "no data"


def test_scenarios_in_one_run_only_are_listed_not_judged(tmp_path: Path) -> None:
    write_run(tmp_path, "a", [record(2.0), record(2.0, name="gone", started_at=1_796_500_100.0)])
    write_run(tmp_path, "b", [record(2.0), record(2.0, name="new", started_at=1_796_500_100.0)])
    result = _compare(tmp_path, "a", "b")
    assert [(s.status_a, s.status_b) for s in result.scenarios] == [("passed", "passed"), ("passed", None),
                                                                    (None, "passed")]
    assert not result.regressions
    assert "only in A (1), not compared:" in result.text() and "only in B (1), not compared:" in result.text()


def test_a_scenario_status_is_its_worst_drill() -> None:
    assert scenario_status([{"status": "passed"}, {"status": "not judged"}]) == "not judged"
    assert scenario_status([{"status": "skipped"}, {"status": "passed"}]) == "passed"
    assert scenario_status([{"status": "skipped"}]) == "skipped"
    assert settings_changes("{}", '{"dc1": {"application": {"x": "1"}}}') == []  # unknown on one side: no claim


# -- the command line ---------------------------------------------------------------------------------------------

def test_compare_exit_codes_make_a_ci_gate(reports: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = default_db_path(reports)
    for run_id in ("fast", "slow"):
        record_run(reports / run_id, db)
    base = ["compare", "--reports-dir", str(reports)]
    assert main([*base, "fast", "slow"]) == 0  # without the gate: a report
    assert "[REGRESSED]" in capsys.readouterr().out
    assert main([*base, "fast", "slow", "--fail-on-regression"]) == 1
    capsys.readouterr()
    assert main([*base, "slow", "fast", "--fail-on-regression"]) == 0
    capsys.readouterr()
    assert main([*base, "fast", str(reports / "slow1"), "--fail-on-regression"]) == 1  # a run folder works too
    capsys.readouterr()
    assert main([*base, "fast", "slow", "--fail-on-regression", "--min-seconds", "5"]) == 0
    capsys.readouterr()
    assert main([*base, "fast", "slow", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["regressed"] is True and out["regressions"] == [KEY]
    rto = out["scenarios"][0]["metrics"][0]
    assert (rto["metric"], rto["judgement"], rto["basis"], rto["test"]["method"]) == (
        "rto_s", "worse", "rank test", "exact")


def test_unknown_runs_are_one_line_and_exit_2(reports: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record_run(reports / "fast", default_db_path(reports))
    assert main(["compare", "--reports-dir", str(reports), "fast", "nope"]) == 2
    err = capsys.readouterr().err
    assert err == (f"compare: nope: no such run in {default_db_path(reports)} and no such run folder "
                   "(`failover-tester history list` names the runs)\n")
    (reports / "empty").mkdir()
    assert main(["compare", "--reports-dir", str(reports), "fast", str(reports / "empty")]) == 2
    assert "not a finished run folder" in capsys.readouterr().err
    assert main(["compare", "--db", str(reports / "none.sqlite"), "--reports-dir", str(reports / "x"), "a", "b"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_history_rebuild_and_list(reports: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "list", "--reports-dir", str(reports)]) == 2
    assert "no history store" in capsys.readouterr().err
    (reports / "broken").mkdir()
    (reports / "broken" / "summary.json").write_text("[")
    assert main(["history", "rebuild", "--reports-dir", str(reports)]) == 0
    out, err = capsys.readouterr()
    assert out == f"history: {default_db_path(reports)}: 4 run(s) recorded, 1 folder(s) skipped\n"
    assert err.startswith(f"skipped {reports / 'broken'}: {reports / 'broken' / 'summary.json'}: unreadable")
    assert main(["history", "list", "--reports-dir", str(reports)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["run", "started", "status", "scenarios", "passed", "failed", "score", "config",
                                "version"]
    assert [line.split()[0] for line in lines[1:]] == ["slow1", "fast1", "slow", "fast"]
    assert lines[3].split()[3:] == ["passed", "1", "5", "0", "-", "lab", "0.14.0"]
    assert main(["history", "list", "--reports-dir", str(reports), "--json", "--limit", "1"]) == 0
    [run] = json.loads(capsys.readouterr().out)
    assert run["run_id"] == "slow1" and run["totals"]["passed"] == 1
    assert run["toolkit_settings"]["dc1"]["application"]["heartbeatExchangeInterval"] == "2.0"
    assert main(["history", "rebuild", "--reports-dir", str(reports / "missing")]) == 2
