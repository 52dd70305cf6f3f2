"""``run --repeat N``, the distributions of summary.json, the ``gates:`` of the config, the scorecard and the
distribution plots of report.html and the Allure distribution tests (issue 14, part 1). No lab: records are
built by hand, behave is faked."""

from __future__ import annotations

import contextlib
import json
import re
import signal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from faultfakes import lab_shaped_config

from support.config import ConfigError, load_config
from support.config.gates import Gate, parse_gates
from support.reporting.distributions import bootstrap_ci, distributions, judge_gates, metric_value, percentile, score
from support.reporting.html import render
from support.reporting.scorecard import distribution_results, gates_text, strip_svg, write_distribution_results
from support.reporting.summary import SCHEMA_PATH, append_scenario, build_summary, scenario_key, write_run_meta

PROJECT = Path(__file__).resolve().parents[2]


def drill(name: str, k: int, rto: float | None, lost: int | None = 0, status: str = "passed",
          tags: tuple[str, ...] = ("smoke",), state_window: float | None = None) -> dict[str, Any]:
    """A scenario record as the judge writes it, with the fields the distributions read."""
    phases = None if rto is None else {"down_detected": rto / 4, "takeover": rto / 2, "first_output": rto,
                                       "throughput_recovered": rto + 1}
    verdicts = [] if state_window is None else [
        {"name": "consistent_state", "passed": True, "summary": "ok", "status": "passed",
         "evidence": {"state_loss_window_s": state_window}}]
    return {"feature": "Orders", "name": name, "status": status, "tags": list(tags), "duration_s": 10.0,
            "rto_s": rto, "phases_s": phases, "lost": lost, "duplicated": None if lost is None else 0,
            "unknown": None if lost is None else 1, "verdicts": verdicts, "repeat": k,
            "delivery": None if lost is None else {"loss_window_s": 0.5 * k, "lost": lost}}


# -- percentiles and the bootstrap ----------------------------------------------------------------------------------

def test_percentiles_interpolate_between_order_statistics() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], "p50") == 2.5
    assert percentile([1.0, 2.0], "p95") == pytest.approx(1.95)
    assert percentile([3.0, 1.0, 2.0], "max") == 3.0
    assert percentile([7.0], "p95") == 7.0


def test_bootstrap_interval_is_deterministic_and_within_the_samples() -> None:
    spread = [0.1 * i**1.5 for i in range(40)]
    assert bootstrap_ci(spread, "p95", seed=14) == bootstrap_ci(spread, "p95", seed=14)  # the same seed
    assert bootstrap_ci(spread, "p95", seed=14) != bootstrap_ci(spread, "p95", seed=15)
    samples = [2.1, 2.4, 3.0, 2.2, 5.5, 2.8, 2.6]
    low, high = bootstrap_ci(samples, "p50", seed=14)
    assert min(samples) <= low <= percentile(samples, "p50") <= high <= max(samples)
    assert bootstrap_ci(samples, "max", seed=1)[1] == max(samples)  # never beyond what was measured
    assert bootstrap_ci([4.2], "p95", seed=3) == (4.2, 4.2)


def test_bootstrap_interval_narrows_with_more_drills() -> None:
    few = [1.0, 3.0, 2.0, 4.0]
    many = few * 25
    width = [b - a for a, b in (bootstrap_ci(few, "p50", seed=1), bootstrap_ci(many, "p50", seed=1))]
    assert width[1] < width[0]


# -- distributions ------------------------------------------------------------------------------------------------

def test_distributions_per_scenario_with_samples_of_every_metric() -> None:
    records = [drill("A", 1, 2.0, 0, state_window=0.2), drill("B", 1, 9.0, 3), drill("A", 2, 4.0, 1),
               drill("A", 3, None, None, status="interrupted"), drill("A", 4, 50.0, 9, status="skipped")]
    dists = distributions(records, scenario_key)
    assert [d["scenario"] for d in dists] == ["Orders :: A", "Orders :: B"]  # in the order they first ran
    a = dists[0]
    assert a["drills"] == 4 and a["measured"] == 2  # the skipped and the interrupted drill give no samples
    assert a["metrics"]["rto_s"]["samples"] == [2.0, 4.0] and a["metrics"]["rto_s"]["drills"] == [1, 2]
    assert a["metrics"]["rto_s"]["p50"] == 3.0 and a["metrics"]["rto_s"]["max"] == 4.0
    assert a["metrics"]["rto_s"]["p95"] == pytest.approx(3.9)
    low, high = a["metrics"]["rto_s"]["p95_ci95"]
    assert 2.0 <= low <= high <= 4.0
    assert a["metrics"]["takeover_s"]["samples"] == [1.0, 2.0]
    assert a["metrics"]["throughput_recovered_s"]["samples"] == [3.0, 5.0]
    assert a["metrics"]["lost"]["samples"] == [0.0, 1.0] and a["metrics"]["unknown"]["samples"] == [1.0, 1.0]
    assert a["metrics"]["loss_window_s"]["samples"] == [0.5, 1.0]
    assert a["metrics"]["state_loss_window_s"]["samples"] == [0.2]  # the consistent_state verdict's evidence
    assert dists[1]["metrics"]["state_loss_window_s"] == {"n": 0, "samples": [], "drills": [], "p50": None,
                                                          "p95": None, "max": None, "p50_ci95": None,
                                                          "p95_ci95": None, "max_ci95": None}
    assert distributions(records, scenario_key) == dists  # the same numbers when judged again


def test_metric_value_ignores_what_is_not_a_number() -> None:
    record = {"rto_s": None, "lost": True, "rpo": {"state_loss_window_s": 1.5}, "phases_s": {"takeover": 2}}
    assert metric_value(record, "rto_s") is None and metric_value(record, "lost") is None
    assert metric_value(record, "state_loss_window_s") == 1.5 and metric_value(record, "takeover_s") == 2.0


# -- gates ----------------------------------------------------------------------------------------------------------

def gates(*entries: dict[str, Any]) -> tuple[Gate, ...]:
    return parse_gates(list(entries))


def test_gates_are_judged_on_the_worst_scenario() -> None:
    dists = distributions([drill("A", 1, 2.0), drill("A", 2, 4.0), drill("B", 1, 3.0, tags=("slow",))],
                          scenario_key)
    judged = judge_gates(gates({"rto_max": "5 s", "severity": "critical"}, {"rto_p50": "2.5 s"},
                               {"max_lost": 0, "tags": ["@slow"]}, {"max_duplicated": 0, "scenario": "nothing"},
                               {"state_loss_window_p95": "1 s"}), dists)
    rto_max, rto_p50, lost, nothing, state = judged
    assert (rto_max["status"], rto_max["worst"], rto_max["worst_scenario"], rto_max["margin"]) == (
        "met", 4.0, "Orders :: A", 1.0)
    assert rto_max["sentence"] == "RTO max is 4.00 s at worst (Orders :: A, 2 drill(s)): 1.00 s under the limit of 5 s."
    assert (rto_p50["status"], rto_p50["met"], rto_p50["worst"], rto_p50["margin"]) == ("failed", False, 3.0, -0.5)
    assert "0.50 s over the limit of 2.5 s" in rto_p50["sentence"]
    assert (lost["status"], lost["scenarios"], lost["worst"]) == ("met", 1, 0.0)  # the @slow scenario only
    assert (nothing["status"], nothing["met"]) == ("no scenario", None)
    assert (state["status"], state["met"]) == ("not judged", None)


def test_score_weights_met_gates_by_severity() -> None:
    objectives: list[dict[str, Any]] = [
        {"name": "a", "severity": "critical", "met": True, "status": "met"},
        {"name": "b", "severity": "minor", "met": False, "status": "failed"},
        {"name": "c", "severity": "major", "met": None, "status": "not judged"},
        {"name": "d", "severity": "critical", "met": None, "status": "no scenario"}]
    result = score(objectives)
    assert result["value"] == pytest.approx(50.0)  # 3 of 3 + 1 + 2
    assert (result["met"], result["judged"], result["failed"]) == (1, 3, ["b", "c"])
    assert score([])["value"] is None


@pytest.mark.parametrize(("entry", "path", "problem"), [
    ("{rto_p99: 5 s}", "gates[0].rto_p99", "unknown objective 'rto_p99'"),
    ("{speed_p95: 5 s}", "gates[0].speed_p95", "unknown objective"),
    ("{rto_p95: fast}", "gates[0].rto_p95", "not a duration: 'fast'"),
    ("{max_lost: 1.5}", "gates[0].max_lost", "must be a whole number of tuples"),
    ("{max_lost: 0, rto_p95: 5 s}", "gates[0]", "exactly one objective"),
    ("{severity: minor}", "gates[0]", "exactly one objective such as rto_p95: 5 seconds or max_lost: 0 (found: none)"),
    ("{max_lost: 0, severity: huge}", "gates[0].severity", "must be one of"),
    ("{max_lost: 0, tags: [1]}", "gates[0].tags[0]", "expected string, got integer 1"),
])
def test_a_bad_gate_is_one_line_naming_file_and_path(tmp_path: Path, entry: str, path: str, problem: str) -> None:
    config = lab_shaped_config(tmp_path)
    file = tmp_path / "gates.yaml"
    file.write_text(f"extends: {config.source}\ngates:\n  - {{max_duplicated: 0}}\n  - {entry}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(file, [])
    text = str(caught.value)
    assert "\n" not in text and text.startswith(f"{file}: {path.replace('gates[0]', 'gates[1]')}: "), text
    assert problem in text


def test_gates_in_the_config_are_typed(tmp_path: Path) -> None:
    config = lab_shaped_config(tmp_path, "gates=[{rto_p95: 5 seconds, severity: critical, tags: ['@smoke']},"
                                         " {max_lost: 0, name: nothing lost}, {takeover_p50: 500 ms}]")
    first, second, third = config.settings.gates
    assert first == Gate("RTO p95 ≤ 5 s", "rto", "p95", 5.0, "critical", ("smoke",), None)
    assert (second.name, second.metric, second.stat, second.limit, second.severity) == (
        "nothing lost", "lost", "max", 0.0, "major")
    assert (third.metric, third.limit) == ("takeover", 0.5)
    assert lab_shaped_config(tmp_path).settings.gates == ()


def test_run_with_a_bad_gate_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from support.cli import build_parser

    monkeypatch.chdir(PROJECT)
    config = lab_shaped_config(tmp_path)
    args = build_parser().parse_args(["run", "--config", str(config.source), "--set", "gates=[{rto_p95: soon}]",
                                      "features/process_faults.feature"])
    assert args.func(args) == 2
    err = capsys.readouterr().err.strip()
    assert err == "--set: gates[0].rto_p95: not a duration: 'soon' (e.g. '500 ms', '30 seconds', '2 minutes', '1h')"


# -- summary.json ---------------------------------------------------------------------------------------------------

def stored_run(tmp_path: Path, records: list[dict[str, Any]], gate_entries: list[dict[str, Any]],
               repeat: int = 2) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_run_meta(run_dir, {"run_id": "r1", "started_at": 1.0, "finished_at": 2.0, "repeat": repeat,
                             "gates": [g.to_json() for g in parse_gates(gate_entries)]})
    for record in records:
        append_scenario(run_dir, record)
    return run_dir


def test_the_summary_carries_distributions_gates_and_score(tmp_path: Path) -> None:
    run_dir = stored_run(tmp_path, [drill("A", 1, 2.0), drill("A", 2, 4.0)],
                         [{"rto_p95": "5 s", "severity": "critical"}, {"max_lost": 0}])
    summary = build_summary(run_dir, 0)
    jsonschema.validate(summary, json.loads(SCHEMA_PATH.read_text()))
    assert summary["status"] == "passed" and summary["repeat"] == 2
    assert [d["metrics"]["rto_s"]["n"] for d in summary["distributions"]] == [2]
    assert [o["status"] for o in summary["objectives"]] == ["met", "met"] and summary["score"]["value"] == 100.0
    assert build_summary(run_dir, 0)["distributions"] == summary["distributions"]  # deterministic seed


def test_a_failed_gate_fails_the_run(tmp_path: Path) -> None:
    run_dir = stored_run(tmp_path, [drill("A", 1, 2.0), drill("A", 2, 4.0)], [{"rto_max": "3 s"}])
    summary = build_summary(run_dir, 0)
    assert summary["totals"]["passed"] == 2 and summary["status"] == "failed"
    assert summary["score"] == {**summary["score"], "value": 0.0, "failed": ["RTO max ≤ 3 s"]}
    text = gates_text(summary)
    assert text.splitlines()[0] == "gates:    resilience score 0 (0 of 1 judged gates met)"
    assert "✘ FAILED  [major] RTO max ≤ 3 s: RTO max is 4.00 s at worst" in text


def test_without_gates_or_repeat_the_summary_is_as_before(tmp_path: Path) -> None:
    run_dir = stored_run(tmp_path, [drill("A", 1, 2.0)], [], repeat=1)
    summary = build_summary(run_dir, 0)
    assert summary["status"] == "passed" and summary["objectives"] == [] and summary["score"]["value"] is None
    assert gates_text(summary) == "" and distribution_results(summary) == []


# -- report.html ----------------------------------------------------------------------------------------------------

def test_report_opens_with_the_scorecard_and_plots_every_drill(tmp_path: Path) -> None:
    run_dir = stored_run(tmp_path, [drill("A", 1, 2.0), drill("B", 1, 3.0), drill("A", 2, 4.0), drill("B", 2, 3.5)],
                         [{"rto_p95": "5 s", "severity": "critical"}, {"rto_max": "3.2 s"},
                          {"max_lost": 0, "tags": ["nightly"]}])
    page = render(build_summary(run_dir, 0))
    main = page.split("<main>", 1)[1]
    assert main.startswith('<section id="scorecard">')
    assert main.index('id="scorecard"') < main.index("<h2>Overview</h2>") < main.index('id="distributions"')
    scorecard = main.split("</section>", 1)[0]
    assert '<b class="score">60</b>' in scorecard  # critical met (3) of critical + major (3 + 2)
    assert re.findall(r'data-status="([^"]+)"', scorecard) == ["met", "failed", "no scenario"]
    assert "RTO max is 4.00 s at worst (Orders :: A, 2 drill(s)): 0.80 s over the limit of 3.2 s." in scorecard
    assert ">-0.80 s<" in scorecard
    dists = main.split('id="distributions"', 1)[1].split("</section>", 1)[0]
    svgs = re.findall(r"<svg .*?</svg>", dists)
    assert len(svgs) == 4  # durations and counts per scenario
    durations = svgs[0]
    assert durations.count('class="drill"') == 2 * 6  # 2 drills × (RTO, 4 phases, loss window); no state window
    assert 'data-metric="RTO"' in durations and "RTO (n=2)" in durations
    for stat in ("p50", "p95", "max"):
        assert f'class="mark {stat}"' in durations
    assert "drill 2: 4.00 s" in durations
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")


def test_report_without_gates_says_so_and_has_no_distributions_for_single_drills(tmp_path: Path) -> None:
    page = render(build_summary(stored_run(tmp_path, [drill("A", 1, 2.0)], [], repeat=1), 0))
    assert '<b class="score">–</b>' in page and "No gates in the config" in page
    assert 'id="distributions"' not in page


def test_strip_plot_without_samples_is_none() -> None:
    empty = {"n": 0, "samples": [], "drills": [], "p50": None, "p95": None, "max": None}
    assert strip_svg([("RTO", empty)], title="t", unit="s") is None


# -- Allure ---------------------------------------------------------------------------------------------------------

def test_one_allure_test_per_scenario_with_its_distribution(tmp_path: Path) -> None:
    run_dir = stored_run(tmp_path, [drill("A", 1, 2.0), drill("B", 1, 3.0), drill("A", 2, 4.0),
                                    drill("B", 2, 3.5)], [{"rto_max": "3.8 s"}])
    results = tmp_path / "allure-results"
    results.mkdir()
    summary = build_summary(run_dir, 0)
    assert write_distribution_results(summary, results) == 2
    assert write_distribution_results(summary, results) == 2  # again (re-judged): the same files, replaced
    tests = {t["name"]: t for t in (json.loads(p.read_text()) for p in results.glob("*-result.json"))}
    assert set(tests) == {"Distribution: A", "Distribution: B"}
    assert tests["Distribution: A"]["status"] == "failed" and tests["Distribution: B"]["status"] == "passed"
    assert tests["Distribution: A"]["statusDetails"]["message"] == "RTO max ≤ 3.8 s: 4 over 3.8"
    attachments = {a["name"]: a for a in tests["Distribution: A"]["attachments"]}
    assert set(attachments) == {"distribution plot (durations)", "distribution plot (counts)", "distribution",
                                "samples"}
    body = json.loads((results / attachments["distribution"]["source"]).read_text())
    assert body["metrics"]["rto_s"]["samples"] == [2.0, 4.0]
    assert "rto_s,2,4.0" in (results / attachments["samples"]["source"]).read_text().splitlines()
    assert len(list(results.iterdir())) == 2 * 5


def test_the_drill_parameter_makes_each_drill_its_own_allure_test() -> None:
    from allure_commons.model2 import TestResult

    from support.reporting.allure_formatter import LabelHook

    class Reporter:
        def __init__(self) -> None:
            self.test = TestResult(name="dc2 takes over", historyId="h")

        def get_test(self, _uuid: object) -> TestResult:
            return self.test

    ids = []
    for k in (1, 2):
        reporter = Reporter()
        LabelHook(reporter).add_parameter("drill", f"{k}/2", None, None)
        assert [(p.name, p.value) for p in reporter.test.parameters] == [("drill", f"{k}/2")]
        ids.append(reporter.test.historyId)
    assert len(set(ids)) == 2 and "h" not in ids


# -- run --repeat ---------------------------------------------------------------------------------------------------

def fake_behave(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, interrupt_after: int | None = None
                ) -> list[list[str]]:
    import support.cli.run as run_cli
    from support.cli.run import _Forwarder

    calls: list[list[str]] = []

    def fake_run(self: _Forwarder, cmd: list[str], env: dict[str, str] | None = None) -> int:
        if self.first is not None:
            return 1
        calls.append(cmd)
        if interrupt_after is not None and len(calls) == interrupt_after:
            self.first = signal.SIGINT  # Ctrl-C while this round ran
        return 0

    monkeypatch.setattr(_Forwarder, "run", fake_run)
    monkeypatch.setattr(run_cli, "_report", lambda *args: True)
    monkeypatch.setattr(run_cli, "acquire", lambda *args, **kw: contextlib.nullcontext())
    monkeypatch.chdir(PROJECT)
    return calls


def repeat_args(tmp_path: Path, *extra: str) -> Any:
    from support.cli import build_parser

    config = lab_shaped_config(tmp_path)
    return build_parser().parse_args(["run", "--config", str(config.source), "--set",
                                      f"run.reports_dir={tmp_path / 'r'}", *extra, "features/process_faults.feature"])


def test_repeat_runs_behave_once_per_round_naming_the_drill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_behave(monkeypatch, tmp_path)
    args = repeat_args(tmp_path, "--repeat", "3")
    assert args.func(args) == 0
    assert len(calls) == 3
    for k, cmd in enumerate(calls, 1):
        assert cmd[-4:] == ["-D", f"repeat={k}", "-D", "repeats=3"]
        assert "features/process_faults.feature" in cmd
    [run_json] = list((tmp_path / "r").glob("*/run.json"))
    assert json.loads(run_json.read_text())["repeat"] == 3


def test_without_repeat_behave_runs_once_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_behave(monkeypatch, tmp_path)
    args = repeat_args(tmp_path)
    assert args.repeat == 1 and args.func(args) == 0
    assert len(calls) == 1 and not any(word.startswith("repeat") for word in calls[0])


def test_no_round_starts_after_an_interrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    calls = fake_behave(monkeypatch, tmp_path, interrupt_after=2)
    args = repeat_args(tmp_path, "--repeat", "5")
    assert args.func(args) == 130
    assert len(calls) == 2
    out = capsys.readouterr().out
    assert "drill 2/5" in out and "drill 3/5" not in out


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_repeat_must_be_a_whole_number_from_one(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    from support.cli import build_parser

    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["run", "--repeat", value])
    assert caught.value.code == 2 and "must be a whole number ≥ 1" in capsys.readouterr().err


def test_a_signal_between_rounds_is_kept_for_the_next_round(tmp_path: Path) -> None:
    """The forwarder of ``run``: a signal after round 1 ended and before round 2 starts stops round 2 (it is
    not sent to round 1's finished behave and lost)."""
    import sys

    from support.cli.run import _Forwarder

    with _Forwarder() as forward:
        assert forward.run([sys.executable, "-c", "pass"]) == 0
        signal.raise_signal(signal.SIGINT)
        code = forward.run([sys.executable, "-c", f"open({str(tmp_path / 'started')!r}, 'w')"])
    assert code == 1 and forward.first == signal.SIGINT
    assert not (tmp_path / "started").exists()


WAITS_FOR_SIGINT = """
import signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])
sys.exit(7 if signal.sigtimedwait([signal.SIGINT], 5) else 0)
"""


def test_a_signal_while_the_next_round_starts_reaches_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A signal that lands after the forwarder decided to start round 2 but before behave exists is forwarded to
    round 2's behave as soon as it runs (not to round 1's, which has ended)."""
    import subprocess
    import sys

    import support.cli.live as live
    from support.cli.live import Forwarder

    real = subprocess.Popen
    rounds: list[int] = []

    def popen(*args: Any, **kwargs: Any) -> Any:
        rounds.append(1)
        if len(rounds) == 2:
            signal.raise_signal(signal.SIGINT)  # handled here, in the window before the child exists
        return real(*args, **kwargs)

    monkeypatch.setattr(live.subprocess, "Popen", popen)
    with Forwarder() as forward:
        assert forward.run([sys.executable, "-c", "pass"]) == 0
        code = forward.run([sys.executable, "-c", WAITS_FOR_SIGINT])
    assert forward.first == signal.SIGINT
    assert code != 0  # 7: it got the SIGINT (or died of it before it could wait); 0 would be: never got it


def test_drills_of_later_rounds_get_their_own_ledger_folder_and_repeat(tmp_path: Path) -> None:
    from support.judge import load_history
    from support.judge.record import judge_scenario
    from support.world import RunContext, World

    config = lab_shaped_config(tmp_path, f"run.reports_dir={tmp_path / 'reports'}")
    sids = []
    for k in (1, 2):  # one behave process per round, the same run folder
        run = RunContext.open(config, "r1", tmp_path / "run")
        run.drill = (k, 2)
        world = World(run, "Orders", "dc2 takes over", ["smoke"])
        sids.append(world.sid)
        world.finish("passed", None, [])
        run.close()
    assert sids == ["01-dc2-takes-over", "02-dc2-takes-over"]
    assert sorted(p.name for p in (tmp_path / "run" / "ledgers").iterdir()) == sids
    records = [judge_scenario(load_history(tmp_path / "run", sid, run.judge_settings)) for sid in sids]
    assert [r["repeat"] for r in records] == [1, 2]
    single = RunContext.open(config, "r2", tmp_path / "single")
    record = judge_scenario(load_history(tmp_path / "single", World(single, "Orders", "x", []).sid,
                                         single.judge_settings))
    single.close()
    assert "repeat" not in record


def test_config_schema_documents_gates(tmp_path: Path) -> None:
    schema = json.loads((PROJECT / "config" / "schema.json").read_text())
    assert "gates" in schema["properties"] and "rto_p95" in schema["properties"]["gates"]["description"]
    assert lab_shaped_config(tmp_path).data["gates"] == []
