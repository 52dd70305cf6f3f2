"""The whole path against the real lab: `failover-tester run --tags @smoke --repeat 2` cancels orders in dc1 (twice,
each drill on a fresh deployment), dc2 takes over through the toolkit protocol, and the run's reports say how long
it took and what was lost, drill by drill and as distributions judged by the config's gates. The run samples every
metrics source, JMX included.

The measured phases are checked against the lab's ground-truth log (which only tests may read).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.lab

KNOWN_SECRET = "Kn0wn-Secret-4-redaction"
GATES = "[{rto_p95: 60 seconds, severity: critical}, {max_duplicated: 0}]"
SCENARIO = "dc2 takes over when the orders job in dc1 is canceled"


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "support.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def smoke_run(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    reports = tmp_path_factory.mktemp("reports")
    # JMX sampled too (issue 11: JMXMP + TLS + credentials, jobs registered by the tester's bridge); a known
    # secret in a URL (issue 13: redaction everywhere) that nothing in the run may write out
    # two drills (issue 14: distributions, gates, scorecard); gates that hold, so the run passes
    done = run_cli("run", "--tags", "@smoke", "--repeat", "2", "--set", f"run.reports_dir={reports}",
                   "--set", f"gates={GATES}",
                   "--set", "metrics.sources=[rest, prometheus, jmx]",
                   "--set", f"datacenters.dc1.exchange.url=https://probe:{KNOWN_SECRET}@198.18.1.10:9715/streams/data")
    return done, reports / "latest"


def test_smoke_run_passes_and_prints_results(smoke_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    done, _ = smoke_run
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "RTO" in done.stdout and "Lost" in done.stdout and "Duplicated" in done.stdout
    assert "report:" in done.stdout and "allure-report/index.html" in done.stdout


def test_summary_is_complete_and_valid(smoke_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, run_dir = smoke_run
    summary = json.loads((run_dir / "summary.json").read_text())
    jsonschema.validate(summary, json.loads((ROOT / "config" / "summary.schema.json").read_text()))
    assert summary["status"] == "passed" and summary["totals"]["passed"] == 2
    scenario = summary["scenarios"][0]
    assert scenario["fault"] == "job-cancel" and scenario["standby"] == "dc2"
    assert 0 < scenario["rto_s"] < 60
    phases = scenario["phases_s"]
    assert 0 < phases["down_detected"] <= phases["takeover"] <= phases["first_output"] == scenario["rto_s"]
    assert scenario["lost"] <= 50 and scenario["duplicated"] == 0
    assert scenario["delivery"]["acknowledged"] > 1000
    assert scenario["delivery"]["received_by_dc"]["dc2"] > 0
    assert {v["name"] for v in scenario["verdicts"]} >= {"takeover", "recovery_time", "lost", "duplicated"}
    assert all(v["passed"] for v in scenario["verdicts"])


def test_the_run_is_in_the_history(smoke_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """The run recorded itself in <reports>/history.sqlite (issue 14), with the toolkit settings it read back."""
    from support.history.store import find_run, run_drills
    from support.packaged import version

    done, run_dir = smoke_run
    db = run_dir.parent / "history.sqlite"
    assert f"history:  {db}" in done.stdout
    run_id = run_dir.resolve().name
    assert json.loads((run_dir / "run.json").read_text())["tool_version"] == version()
    row = find_run(db, run_id)
    assert row is not None and (row["status"], row["tool_version"]) == ("passed", version())
    settings = json.loads(row["toolkit_settings"])
    assert settings["dc2"]["standby"]["heartbeatExchangeInterval"]
    summary = json.loads((run_dir / "summary.json").read_text())
    drills = run_drills(db, run_id)  # one per drill of --repeat 2, each as the summary has it
    assert [(d["repeat"], d["status"], d["rto_s"], d["lost"]) for d in drills] == [
        (s["repeat"], "passed", s["rto_s"], s["lost"]) for s in summary["scenarios"]]
    assert [d["repeat"] for d in drills] == [1, 2]


def test_measurements_agree_with_the_lab_ground_truth(lab: Any, smoke_run: tuple[Any, Path]) -> None:
    _, run_dir = smoke_run
    journal = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    effective = next(e for e in journal if e["event"] == "fault.effective")
    takeover = next(e for e in journal if e["event"] == "toolkit.takeover")
    assert takeover["dc"] == "dc2"
    truth = [e for e in lab.truth() if e["t"] >= effective["t"] - 5]
    canceled = [e for e in truth if e["event"] == "job_canceled" and e["dc"] == "dc1"]
    down = [e for e in truth if e["event"] == "remote_down" and e["dc"] == "dc2"]
    restored = [e for e in truth if e["event"] == "snapshot_restored" and e["dc"] == "dc2"]
    submitted = [e for e in truth
                 if e["event"] == "job_submitted" and e["dc"] == "dc2" and e["application"] == "orders"]
    assert canceled and down and restored and submitted, "the lab did not record the failover it should have"
    # the tester saw the fault no earlier than it happened, and the takeover no earlier than dc2 submitted orders
    assert effective["t"] >= canceled[0]["t"] - 0.05
    assert takeover["t"] >= submitted[0]["t"] - 0.05
    # ... and not much later (polling intervals: 50 ms for the fault, 100 ms for the monitor)
    assert effective["t"] - canceled[0]["t"] < 1.0
    assert takeover["t"] - submitted[0]["t"] < 1.0
    # the standby's DOWN, seen through its watchdog metrics, no earlier than the lab declared it
    seen_down = next(e for e in journal if e["event"] == "toolkit.remote_down" and e["dc"] == "dc2")
    assert -0.05 <= seen_down["t"] - down[0]["t"] < 1.0


def test_reports_are_written(smoke_run: tuple[Any, Path]) -> None:
    _, run_dir = smoke_run
    html = (run_dir / "allure-report" / "index.html").read_text()
    assert "googletagmanager" not in html
    results = [json.loads(f.read_text()) for f in (run_dir / "allure-results").glob("*-result.json")]
    results = [r for r in results if r["name"] == SCENARIO]
    assert results
    attachments = {a["name"]: a for a in results[0].get("attachments", [])}
    assert {"timeline", "throughput", "RTO/RPO table", "verdicts with evidence", "residue audit", "journal"} <= set(
        attachments)
    assert attachments["timeline"]["type"] == "image/svg+xml"
    labels = {(label["name"], label["value"]) for label in results[0]["labels"]}
    assert {("epic", "Cross-DC failover"), ("severity", "critical"), ("dc_pair", "dc1 → dc2")} <= labels
    assert [v for n, v in labels if n == "severity"] == ["critical"]
    assert list((run_dir / "junit").glob("*.xml"))
    ledgers = list((run_dir / "ledgers").glob("*/sent.csv"))
    assert ledgers and len(ledgers[0].read_text().splitlines()) > 1000
    log_lines = (run_dir / "run.log").read_text().splitlines()
    assert log_lines and all(json.loads(line)["message"] is not None for line in log_lines)
    password = Path("/run/xdc-lab/secrets/streams-password").read_text().strip()
    for path in run_dir.rglob("*"):
        if path.is_file():
            assert password not in path.read_text(errors="replace"), f"secret leaked into {path}"


def test_judging_the_stored_run_again_reproduces_it(smoke_run: tuple[Any, Path], tmp_path: Path) -> None:
    """``failover-tester judge`` on a copy of the live run: every verdict and number of summary.json again."""
    _, run_dir = smoke_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir.resolve(), copy)
    live = json.loads((copy / "summary.json").read_text())
    done = run_cli("judge", str(copy))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    again = json.loads((copy / "summary.json").read_text())
    assert again["scenarios"] == live["scenarios"]
    assert again["status"] == live["status"] and again["totals"] == live["totals"]
    assert again["distributions"] == live["distributions"] and again["objectives"] == live["objectives"]
    results = [json.loads(p.read_text()) for p in (copy / "allure-results").glob("*-result.json")]
    assert sorted((r["name"], r["status"]) for r in results) == [(f"Distribution: {SCENARIO}", "passed"),
                                                                 (SCENARIO, "passed"), (SCENARIO, "passed")]


def test_jmx_samples_recorded_from_the_lab(smoke_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """The JMX source reached both instances over JMXMP, registered the jobs and read their beans."""
    _, run_dir = smoke_run
    metrics_file, _ = sorted((run_dir / "ledgers").glob("*/metrics.json"))  # one per drill
    series = json.loads(metrics_file.read_text())
    for dc in ("dc1", "dc2"):
        reachable = series[f"jmx.{dc}.reachable"]["value"]
        assert len(reachable) >= 3 and all(v == 1.0 for v in reachable), (dc, reachable)
        assert 1.0 in series[f"jmx.{dc}.instance.Status"]["value"]
        job_status = [name for name in series if name.startswith(f"jmx.{dc}.job.") and name.endswith(".Status")]
        pe_launches = [name for name in series if name.startswith(f"jmx.{dc}.pe.") and name.endswith(".LaunchCount")]
        assert job_status and pe_launches, (dc, sorted(n for n in series if n.startswith(f"jmx.{dc}.")))
    journal = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    closed = next(e for e in journal if e["event"] == "metrics.closed")
    assert closed["unreachable"] == {} and "jmx" not in closed["errors"]


def test_no_secret_in_any_file_of_the_run(lab: Any, smoke_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    """Redaction everywhere (issue 13): neither the known secret nor the lab's password, nor their base64 forms
    (as in a Basic Authorization header), is in any file under the run's folder (run.log, journal.jsonl,
    summary.json, JUnit, Allure results and environment.properties, reports) or in the console output."""
    done, run_dir = smoke_run
    password = Path("/run/xdc-lab/secrets/streams-password").read_text().strip()
    forbidden = {KNOWN_SECRET, password}
    for secret in (KNOWN_SECRET, password, f"streamsadmin:{password}", f"probe:{KNOWN_SECRET}"):
        forbidden.add(base64.b64encode(secret.encode()).decode().rstrip("="))
    files = [p for p in run_dir.resolve().rglob("*") if p.is_file()]
    assert len(files) > 10 and any(p.name == "environment.properties" for p in files)
    leaks = [(str(p), s) for p in files for s in forbidden if s.encode() in p.read_bytes()]
    assert not leaks, leaks
    assert not any(s in done.stdout + done.stderr for s in forbidden)
    assert "probe:***@198.18.1.10" in (run_dir / "allure-results" / "environment.properties").read_text()
    journal = (run_dir / "journal.jsonl").read_text()
    for event in ("link.refused", "thread.error", "reader.unparsed"):  # the lab's links stay home; readers clean
        assert f'"event": "{event}"' not in journal


def test_repeat_gives_every_drill_and_the_distributions(smoke_run: tuple[subprocess.CompletedProcess[str], Path]
                                                         ) -> None:
    """``--repeat 2`` (issue 14): two drills, each with its own record, ledger folder and Allure test; the
    summary's distributions hold 2 samples of each measurement; the gates are judged, scored and shown first in
    report.html with the plots."""
    done, run_dir = smoke_run
    assert "drill 1/2" in done.stdout and "drill 2/2" in done.stdout
    assert "gates:    resilience score 100 (2 of 2 judged gates met)" in done.stdout
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["repeat"] == 2 and [s["repeat"] for s in summary["scenarios"]] == [1, 2]
    assert len({p.name for p in (run_dir / "ledgers").iterdir()}) == 2
    [dist] = summary["distributions"]
    assert dist["scenario"] == f"Orders keep flowing when the orders job in the active data center stops :: {SCENARIO}"
    for key in ("rto_s", "down_detected_s", "takeover_s", "first_output_s", "lost", "duplicated", "unknown",
                "loss_window_s"):
        metric = dist["metrics"][key]
        assert metric["n"] == 2 and metric["drills"] == [1, 2], (key, metric)
        assert min(metric["samples"]) <= metric["p50"] <= metric["p95"] <= metric["max"] == max(metric["samples"])
        assert metric["p95_ci95"][0] <= metric["p95_ci95"][1]
    assert dist["metrics"]["rto_s"]["samples"] == [s["rto_s"] for s in summary["scenarios"]]
    assert [o["status"] for o in summary["objectives"]] == ["met", "met"] and summary["score"]["value"] == 100.0
    page = (run_dir / "report.html").read_text()
    main = page.split("<main>", 1)[1]
    assert main.startswith('<section id="scorecard">') and '<b class="score">100</b>' in main
    plots = main.split('id="distributions"', 1)[1]
    assert plots.count('<svg xmlns="http://www.w3.org/2000/svg"') >= 2 and 'class="mark p95"' in plots
    assert plots.split("</svg>", 1)[0].count('class="drill"') >= 2 * 4  # RTO and three phases at least
    results = [json.loads(f.read_text()) for f in (run_dir / "allure-results").glob("*-result.json")]
    drills = sorted((p["value"], r["historyId"]) for r in results if r["name"] == SCENARIO
                    for p in r.get("parameters") or [] if p["name"] == "drill")
    assert [d for d, _ in drills] == ["1/2", "2/2"] and drills[0][1] != drills[1][1]  # two tests, not retries
    [summary_test] = [r for r in results if r["name"] == f"Distribution: {SCENARIO}"]
    assert {a["name"] for a in summary_test["attachments"]} >= {"distribution", "samples",
                                                                 "distribution plot (durations)"}


def test_a_failed_gate_fails_the_run(smoke_run: tuple[Any, Path], tmp_path: Path) -> None:
    """The stored run judged under a gate its drills cannot meet: exit 1, the console names the gate."""
    _, run_dir = smoke_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir.resolve(), copy)
    done = run_cli("judge", str(copy), "--set", "gates=[{rto_max: 1 ms, name: instant recovery}]")
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "✘ FAILED  [major] instant recovery: RTO max is" in done.stdout
    summary = json.loads((copy / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["totals"]["passed"] == 2  # every drill passed its own steps
    assert summary["score"]["value"] == 0.0
