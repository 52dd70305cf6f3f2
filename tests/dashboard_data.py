"""A history store for the dashboard's tests, made with the store's DDL from real runs' summaries.

``tests/data/dashboard/summaries.json`` holds four real runs of the embedded lab (their summary.json, trimmed
to what the store records). Two more runs are made from the last one as ``run --repeat 3`` would record them
(three drills per scenario, the numbers varied by a seeded generator), with objectives and a score; the last
also has a scenario whose name is hostile markup (the pages must show it as text). Rows are written by column
name, as the history writer does.
"""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path
from typing import Any

from support.history.schema import DDL, SCHEMA_VERSION
from support.reporting.summary import scenario_key

SUMMARIES = Path(__file__).parent / "data" / "dashboard" / "summaries.json"
HOSTILE_FEATURE = "<img src=x onerror=\"window.pwned=1\"> readings"
HOSTILE_NAME = "\"quoted\" & <script>window.pwned=2</script> takeover"
DAY = 86400.0


def real_runs() -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = json.loads(SUMMARIES.read_text(encoding="utf-8"))
    return runs


def _repeat_run(base: dict[str, Any], run_id: str, shift: float, rng: random.Random,
                hostile: bool) -> dict[str, Any]:
    scenarios = []
    records = list(base["scenarios"])
    if hostile:
        extra = json.loads(json.dumps(records[0]))
        extra["feature"], extra["name"] = HOSTILE_FEATURE, HOSTILE_NAME
        extra["started_at"] = records[-1]["started_at"] + 60.0
        records.append(extra)
    for k in (1, 2, 3):
        for record in records:
            r = json.loads(json.dumps(record))
            r["repeat"] = k
            r["started_at"] = record["started_at"] + shift + (k - 1) * 120.0
            factor = rng.uniform(0.7, 1.6)
            if r.get("rto_s") is not None:
                r["rto_s"] = round(r["rto_s"] * factor, 3)
            r["phases_s"] = {p: (round(v * factor, 3) if v is not None else None)
                             for p, v in (r.get("phases_s") or {}).items()}
            r["lost"] = int(r.get("lost") or 0) + rng.choice((0, 0, 10, 30))
            r["status"] = "failed" if r["lost"] > 25 else record["status"]
            scenarios.append(r)
    passed = sum(1 for s in scenarios if s["status"] == "passed")
    return {**base, "run_id": run_id, "started_at": base["started_at"] + shift,
            "finished_at": base["finished_at"] + shift + 400.0, "status": "passed" if passed == len(scenarios)
            else "failed", "repeat": 3, "scenarios": scenarios,
            "totals": {"scenarios": len(scenarios), "passed": passed, "failed": len(scenarios) - passed,
                       "skipped": 0, "not_judged": 0},
            "objectives": [{"name": "rto p95", "metric": "rto_s", "stat": "p95", "limit": 6.0, "worst": 5.1,
                            "margin": 0.9, "met": True, "severity": "gate",
                            "sentence": "RTO p95 5.10 s within 6 s"}],
            "score": round(rng.uniform(60, 95), 1)}


def history_runs() -> list[dict[str, Any]]:
    """The runs the fixture store holds, as summaries (each scenario record with its ``repeat``)."""
    runs = real_runs()
    rng = random.Random(14)
    base = runs[-1]
    runs.append(_repeat_run(base, "20261207-090000-aaa1", DAY, rng, hostile=False))
    runs.append(_repeat_run(base, "20261208-090000-bbb2", 2 * DAY, rng, hostile=True))
    return runs


def drill_row(run_id: str, record: dict[str, Any]) -> dict[str, Any]:
    phases = record.get("phases_s") or {}
    rpo = record.get("rpo") or {}
    return {"run_id": run_id, "scenario": scenario_key(record), "repeat": int(record.get("repeat") or 1),
            "feature": record.get("feature"), "name": record.get("name"), "status": record.get("status"),
            "started_at": record.get("started_at"), "duration_s": record.get("duration_s"),
            "fault": record.get("fault"), "rto_s": record.get("rto_s"),
            **{f"{p}_s": phases.get(p) for p in ("down_detected", "takeover", "first_output",
                                                 "throughput_recovered")},
            "lost": record.get("lost"), "duplicated": record.get("duplicated"), "unknown": record.get("unknown"),
            "loss_window_s": (record.get("delivery") or {}).get("loss_window_s"),
            "state_loss_window_s": rpo.get("state_loss_window_s"), "toolkit_settings": "{}"}


def build_history(db: Path, reports: Path | None = None) -> list[dict[str, Any]]:
    """Write the fixture store at ``db`` (and, under ``reports``, a report.html and an Allure index for every
    run); the runs written."""
    runs = history_runs()
    con = sqlite3.connect(db)
    try:
        con.executescript(DDL)
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        for run in runs:
            folder = reports / run["run_id"] if reports is not None else None
            row = {"run_id": run["run_id"], "started_at": run["started_at"], "finished_at": run["finished_at"],
                   "status": run["status"], "config": run["config"], "config_name": Path(run["config"]).stem,
                   "target": run["target"], "tool_version": "0.1.0", "toolkit_settings": "{}",
                   "repeat": run.get("repeat", 1), "report_dir": str(folder) if folder else None,
                   "totals": json.dumps(run["totals"]), "objectives": json.dumps(run.get("objectives", [])),
                   "score": run.get("score")}
            _insert(con, "runs", row)
            for record in run["scenarios"]:
                _insert(con, "drills", drill_row(run["run_id"], record))
            if folder is not None:
                (folder / "allure-report").mkdir(parents=True, exist_ok=True)
                (folder / "report.html").write_text(f"<!doctype html><title>report {run['run_id']}</title>"
                                                    f"<h1>Report of run {run['run_id']}</h1>", encoding="utf-8")
                (folder / "allure-report" / "index.html").write_text(
                    f"<!doctype html><title>allure {run['run_id']}</title><h1>Allure of {run['run_id']}</h1>",
                    encoding="utf-8")
                (folder / "config.yaml").write_text("secret: not served\n", encoding="utf-8")
        con.commit()
    finally:
        con.close()
    return runs


def _insert(con: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    names = ", ".join(row)
    marks = ", ".join("?" for _ in row)
    con.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(row.values()))
