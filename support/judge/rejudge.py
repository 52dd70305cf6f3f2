"""Judge a stored run again: every scenario's record from what the run left on disk, under the run's own settings
(``config.yaml`` in the run folder) or changed ones, then ``summary.json``, ``report.html`` and the Allure results
rewritten from the new records."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from support.config import Config, load_config
from support.judge.history import History, load_history, read_journal, scenario_ids
from support.judge.record import judge_scenario
from support.judge.settings import JudgeSettings
from support.reporting.allure import render_again, rewrite_results, scenario_attachments
from support.reporting.scorecard import write_distribution_results
from support.reporting.summary import SCENARIOS_FILE, read_scenarios, write_run_meta, write_summary

CONFIG_FILE = "config.yaml"


class RunNotFound(Exception):
    """The folder is not a stored run (one line: what is missing)."""


def run_settings(run_dir: Path, overrides: Sequence[str] = ()) -> tuple[Config, JudgeSettings]:
    """The settings the run was judged under, with ``overrides`` (``key=value``) applied."""
    path = run_dir / CONFIG_FILE
    if not path.exists():
        raise RunNotFound(f"{run_dir}: {CONFIG_FILE}: not found (not a run folder written by failover-tester run)")
    config = load_config(path, list(overrides), run_id=run_dir.name)
    return config, JudgeSettings.of(config.settings)


def judge_run(run_dir: Path, settings: JudgeSettings) -> list[tuple[dict[str, Any], History]]:
    """Every scenario of the run judged from disk, in the order they ran: (record, history)."""
    if not (run_dir / "journal.jsonl").exists():
        raise RunNotFound(f"{run_dir}: journal.jsonl: not found (not a run folder written by failover-tester run)")
    events = read_journal(run_dir)
    histories = [load_history(run_dir, sid, settings, events) for sid in scenario_ids(run_dir)]
    return [(judge_scenario(history), history) for history in histories]


def write_records(run_dir: Path, records: list[dict[str, Any]]) -> None:
    """Replace the run's scenario records (atomically: a crash leaves the old file or the new one)."""
    path = run_dir / SCENARIOS_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text("".join(json.dumps(r, default=str) + "\n" for r in records), encoding="utf-8")
    os.replace(temporary, path)


def rejudge(run_dir: Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Judge the stored run again and rewrite its records, ``summary.json`` and ``report.html``; returns the
    summary. Skipped scenarios (never recorded) keep their old records."""
    config, settings = run_settings(run_dir, overrides)
    judged_run = judge_run(run_dir, settings)
    records = [record for record, _ in judged_run]
    judged = {(r["name"], r["started_at"]) for r in records}
    kept = [r for r in read_scenarios(run_dir) if r.get("status") == "skipped"
            and (r["name"], r.get("started_at")) not in judged]
    write_records(run_dir, records + kept)
    write_run_meta(run_dir, {"rejudged_with": list(overrides), "gates": [g.to_json() for g in config.settings.gates]})
    meta = json.loads((run_dir / "run.json").read_text()) if (run_dir / "run.json").exists() else {}
    summary = write_summary(run_dir, meta.get("behave_exit_code") if meta.get("behave_exit_code") not in (0, 1)
                            else None)
    from support.reporting.html import write_report

    write_report(summary, run_dir)
    results = run_dir / "allure-results"
    if results.is_dir():
        write_distribution_results(summary, results)
        rewrite_results(results, [(record, scenario_attachments(record, list(h.events), h.folder / "metrics.csv"
                                                                if h.folder else None)) for record, h in judged_run])
        render_again(results, run_dir / "allure-report", Path.cwd(), f"Failover tests {run_dir.name}",
                     run_dir.parent / "allure-history.jsonl")  # the trends up to this run, as first rendered
    return summary
