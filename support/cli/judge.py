"""``failover-tester judge reports/<run-id>``: judge a stored run again from what it left on disk; its row in the
history store of the folder it lies in (``history.sqlite`` next to it, if there is one) is updated."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from support.config import ConfigError

__all__ = ["add_parser", "judge_command"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``judge`` (the verb registry of :mod:`support.cli` calls this)."""
    judge = sub.add_parser("judge", help="judge a stored run again from disk; rewrite its summary, report and Allure "
                                         "results")
    judge.add_argument("run_dir", help="the run's folder, e.g. reports/latest or reports/<run-id>")
    judge.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="judge under a changed setting, e.g. metrics.clock_tolerance=0 (repeatable)")
    judge.set_defaults(func=judge_command)


def judge_command(args: argparse.Namespace) -> int:
    from support.history.schema import default_db_path
    from support.history.store import note_run
    from support.judge.rejudge import RunNotFound, rejudge
    from support.reporting.scorecard import gates_text
    from support.reporting.summary import summary_table

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        print(f"{run_dir}: not a folder (give a run folder such as reports/latest)", file=sys.stderr)
        return 2
    try:
        summary = rejudge(run_dir.resolve(), args.set)
    except (RunNotFound, ConfigError) as exc:
        print(exc, file=sys.stderr)
        return 2
    print(summary_table(summary["scenarios"]))
    print()
    print(f"summary:  {run_dir / 'summary.json'}")
    print(f"report:   {run_dir / 'report.html'}")
    db = default_db_path(run_dir.resolve().parent)
    if db.is_file():  # the history of the reports folder the run lies in; none made for a run copied elsewhere
        note_run(run_dir.resolve(), db, sys.stdout)
    totals = summary["totals"]
    print(f"result:   {summary['status']} ({totals['passed']} passed, {totals['failed']} failed, "
          f"{totals.get('not_judged', 0)} not judged)")
    if gates := gates_text(summary):
        print(gates)
    return 0 if summary["status"] == "passed" else 1
