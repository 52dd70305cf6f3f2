"""The history store (support/history/store.py): a run recorded from its folder and read back, recorded again,
rebuilt from the run folders, written by several processes at once."""

from __future__ import annotations

import json
import multiprocessing
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from historyfakes import FEATURE, NAME, drills, record, write_run

from support.history.schema import DB_FILE, PHASE_COLUMNS, default_db_path
from support.history.store import (
    HistoryError,
    connect,
    find_run,
    list_runs,
    note_run,
    read_run,
    rebuild,
    record_run,
    run_drills,
    scenario_series,
)

KEY = f"{FEATURE} :: {NAME}"
ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "data" / "runs" / "job-cancel"


def test_a_run_round_trips(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    folder = write_run(reports, "20261206-100000-aaaa", [record(2.4, lost=3, loss_window=0.25,
                                                                state_loss_window=0.41)], heartbeat="1.0")
    db = default_db_path(reports)
    assert record_run(folder, db) == "20261206-100000-aaaa"
    run = find_run(db, "20261206-100000-aaaa")
    assert run is not None
    assert (run["status"], run["config"], run["config_name"], run["target"], run["tool_version"], run["repeat"]) == (
        "passed", "config/lab.yaml", "lab", "embedded-lab", "0.14.0", 1)
    assert run["report_dir"] == str(folder.resolve())
    assert json.loads(run["totals"])["passed"] == 1
    assert json.loads(run["objectives"]) == [] and run["score"] is None and run["shard"] is None
    settings = json.loads(run["toolkit_settings"])
    assert settings["dc1"]["application"]["heartbeatExchangeInterval"] == "1.0" and set(settings) == {"dc1", "dc2"}
    [drill] = run_drills(db, "20261206-100000-aaaa")
    assert (drill["scenario"], drill["repeat"], drill["feature"], drill["name"], drill["status"]) == (
        KEY, 1, FEATURE, NAME, "passed")
    assert drill["rto_s"] == 2.4 and drill["fault"] == "job-cancel" and drill["duration_s"] == 21.5
    assert [drill[c] for c in PHASE_COLUMNS] == [2.05, 2.08, 2.4, 2.4]
    assert (drill["lost"], drill["duplicated"], drill["unknown"]) == (3, 0, 0)
    assert (drill["loss_window_s"], drill["state_loss_window_s"]) == (0.25, 0.41)
    assert json.loads(drill["toolkit_settings"]) == settings
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1


def test_the_fields_of_other_slices_are_read_when_present(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    objectives = [{"name": "rto p95", "metric": "rto_s", "stat": "p95", "limit": 10, "worst": 4.1, "margin": 5.9,
                   "met": True, "severity": "error", "sentence": "..."}]
    folder = write_run(reports, "r1", drills([2.0, 2.2, 2.1]), extra={"repeat": 3, "objectives": objectives,
                                                                         "score": {"value": 87.5}},
                       meta={"shard": "1/2", "soak_id": "s-1"})
    record_run(folder, default_db_path(reports))
    run = find_run(default_db_path(reports), "r1")
    assert run is not None
    assert (run["repeat"], run["score"], run["shard"], run["soak_id"]) == (3, 87.5, "1/2", "s-1")
    assert json.loads(run["objectives"]) == objectives
    rows = run_drills(default_db_path(reports), "r1")
    assert [(d["repeat"], d["rto_s"]) for d in rows] == [(1, 2.0), (2, 2.2), (3, 2.1)]


def test_each_drill_gets_the_settings_journaled_while_it_ran(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    folder = write_run(reports, "r1", drills([2.0, 2.2]), heartbeat=None)
    with (folder / "journal.jsonl").open("a") as journal:
        for k, (t, value) in enumerate(((1_796_500_001.0, "1.0"), (1_796_500_061.0, "2.0"))):
            for dc in ("dc1", "dc2"):
                journal.write(json.dumps({"event": "toolkit.settings_in_force", "t": t + k * 0.1, "scenario": NAME,
                                          "dc": dc, "files": {"application": {"heartbeatExchangeInterval": value}}})
                              + "\n")
    recorded = read_run(folder)
    beats = [json.loads(d["toolkit_settings"])["dc1"]["application"]["heartbeatExchangeInterval"]
             for d in recorded.drills]
    assert beats == ["1.0", "2.0"]
    assert json.loads(recorded.run["toolkit_settings"])["dc2"]["application"]["heartbeatExchangeInterval"] == "1.0"


def test_recording_again_replaces_the_run(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    db = default_db_path(reports)
    folder = write_run(reports, "r1", drills([2.0, 2.2, 2.1]))
    record_run(folder, db)
    record_run(folder, db)
    assert [r["run_id"] for r in list_runs(db)] == ["r1"] and len(run_drills(db, "r1")) == 3
    summary = json.loads((folder / "summary.json").read_text())  # judged again: one drill now fails
    summary["scenarios"] = summary["scenarios"][:2]
    summary["scenarios"][1]["status"] = "failed"
    summary["status"] = "failed"
    (folder / "summary.json").write_text(json.dumps(summary))
    record_run(folder, db)
    assert find_run(db, "r1")["status"] == "failed"  # type: ignore[index]
    assert [(d["repeat"], d["status"]) for d in run_drills(db, "r1")] == [(1, "passed"), (2, "failed")]


def test_scenarios_named_alike_are_both_kept(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    folder = write_run(reports, "r1", [record(2.0), record(3.0, started_at=1_796_500_100.0)])
    record_run(folder, default_db_path(reports))
    assert [(d["repeat"], d["rto_s"]) for d in run_drills(default_db_path(reports), "r1")] == [(1, 2.0), (2, 3.0)]


def test_a_scenario_series_runs_across_runs(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    db = default_db_path(reports)
    for k, rto in enumerate((2.0, 2.5, 5.1)):
        record_run(write_run(reports, f"r{k}", drills([rto], start=1_796_500_000.0 + 1000 * k)), db)
    record_run(write_run(reports, "other", [record(1.0, name="another scenario", started_at=1_796_600_000.0)]), db)
    series = scenario_series(db, KEY)
    assert [(d["run_id"], d["rto_s"], d["run_status"], d["config_name"]) for d in series] == [
        ("r0", 2.0, "passed", "lab"), ("r1", 2.5, "passed", "lab"), ("r2", 5.1, "passed", "lab")]
    assert [r["run_id"] for r in list_runs(db)] == ["other", "r2", "r1", "r0"]  # newest first
    assert [r["run_id"] for r in list_runs(db, limit=2)] == ["other", "r2"]


def test_a_run_without_summary_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "r1").mkdir()
    with pytest.raises(HistoryError, match=r"r1/summary.json: not found"):
        read_run(tmp_path / "r1")
    (tmp_path / "r1" / "summary.json").write_text('{"run_id": "r1", "scenar')
    with pytest.raises(HistoryError, match=r"summary.json: unreadable"):
        read_run(tmp_path / "r1")


def test_a_history_failure_is_said_and_never_raised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = write_run(tmp_path / "reports", "r1", drills([2.0]))
    (tmp_path / "blocked").mkdir()
    assert note_run(folder, tmp_path / "blocked", sys.stdout) is False  # the store's path is a folder
    assert capsys.readouterr().out.startswith("history:  not recorded (")
    assert note_run(folder, tmp_path / "h.sqlite", sys.stdout) is True
    assert capsys.readouterr().out == f"history:  {tmp_path / 'h.sqlite'}\n"


def test_rebuild_records_every_run_folder_and_names_the_unreadable(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    db = default_db_path(reports)
    write_run(reports, "gone", drills([9.0]))
    record_run(reports / "gone", db)
    shutil.rmtree(reports / "gone")  # pruned: a rebuild forgets it
    write_run(reports, "r1", drills([2.0], start=1_796_500_000.0))
    write_run(reports, "r2", drills([2.1, 2.3], start=1_796_501_000.0))
    (reports / "latest").symlink_to("r2")
    (reports / "bench").mkdir()  # no summary: not a run
    (reports / "bench" / "traffic.json").write_text("{}")
    (reports / "broken").mkdir()
    (reports / "broken" / "summary.json").write_text("{not json")
    result = rebuild(reports)
    assert result.recorded == ["r1", "r2"]
    assert [(folder.name, reason.split(": ", 1)[1]) for folder, reason in result.skipped] == [
        ("broken", "unreadable (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))")]
    assert [r["run_id"] for r in list_runs(db)] == ["r2", "r1"]
    assert [r["drills"] for r in list_runs(db)] == [2, 1]


def test_the_judge_updates_the_history_row(tmp_path: Path) -> None:
    """``failover-tester judge`` on a stored run (the recorded lab run): its row follows the new judgement."""
    reports = tmp_path / "reports"
    run = reports / "20261206-062626-7dc6"
    shutil.copytree(FIXTURE, run)
    assert rebuild(reports).recorded == []  # the fixture has no summary.json yet: the store is made, empty
    db = reports / DB_FILE

    def judge(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "support.cli", "judge", str(run), *extra], cwd=ROOT,
                              capture_output=True, text=True, timeout=300, check=False)

    done = judge()
    assert done.returncode == 0, done.stderr
    assert f"history:  {db}" in done.stdout
    assert find_run(db, "20261206-062626-7dc6")["status"] == "passed"  # type: ignore[index]
    [drill] = run_drills(db, "20261206-062626-7dc6")
    assert (drill["status"], drill["rto_s"], drill["lost"]) == ("passed", 2.087, 0)
    done = judge("--set", "metrics.settle_period=9 seconds")
    assert done.returncode == 1
    assert find_run(db, "20261206-062626-7dc6")["status"] == "failed"  # type: ignore[index]
    assert run_drills(db, "20261206-062626-7dc6")[0]["status"] == "not judged"


def _record_many(db: str, reports: str, run_ids: list[str], barrier: Any, rounds: int) -> None:
    barrier.wait(timeout=60)
    for _ in range(rounds):
        for run_id in run_ids:
            record_run(Path(reports) / run_id, db)


def test_runs_finishing_at_once_are_all_recorded(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    writers = 4
    run_ids = [[f"w{w}-r{k}" for k in range(5)] for w in range(writers)]
    for w, ids in enumerate(run_ids):
        for k, run_id in enumerate(ids):
            write_run(reports, run_id, drills([2.0 + k, 2.1 + k, 2.2 + k], start=1_796_500_000.0 + 1000 * (w * 5 + k)))
    db = tmp_path / "history.sqlite"  # made by the writers themselves, at the same moment
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(writers)
    procs = [context.Process(target=_record_many, args=(str(db), str(reports), ids, barrier, 3)) for ids in run_ids]
    for proc in procs:
        proc.start()
    try:
        for proc in procs:
            proc.join(timeout=120)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
    assert [proc.exitcode for proc in procs] == [0] * writers
    runs = list_runs(db)
    assert sorted(r["run_id"] for r in runs) == sorted(i for ids in run_ids for i in ids)
    assert {r["drills"] for r in runs} == {3}
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM drills").fetchone()[0] == 3 * writers * 5



def _open_each(folder: str, count: int, barrier: Any) -> None:
    for k in range(count):
        barrier.wait(timeout=60)
        with connect(Path(folder) / f"h{k}.sqlite") as conn:
            conn.execute("SELECT COUNT(*) FROM runs").fetchone()


def test_a_store_made_by_several_processes_at_once_is_set_up_once(tmp_path: Path) -> None:
    """Switching a new file to WAL is the racy moment (it fails at once, busy timeout or not, when another
    connection is at it): 6 processes open each of 10 new stores at the same instant."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(6)
    procs = [context.Process(target=_open_each, args=(str(tmp_path), 10, barrier)) for _ in range(6)]
    for proc in procs:
        proc.start()
    try:
        for proc in procs:
            proc.join(timeout=120)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
    assert [proc.exitcode for proc in procs] == [0] * 6
    for k in range(10):
        with sqlite3.connect(tmp_path / f"h{k}.sqlite") as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
