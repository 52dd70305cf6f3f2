"""``failover-tester history rebuild|list``: the history store of every run (:mod:`support.history.store`).

``rebuild`` builds the store again from ``<reports>/*/summary.json`` (unreadable summaries are skipped and named);
``list`` shows the recorded runs, newest first. Both take ``--reports-dir`` (default ``reports``, the folder
``run.reports_dir`` names) and ``--db`` (default ``<reports-dir>/history.sqlite``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from support.history.schema import default_db_path

__all__ = ["add_parser", "db_of", "history_command"]

DEFAULT_REPORTS = "reports"


def add_db_arguments(parser: argparse.ArgumentParser) -> None:
    """``--reports-dir`` and ``--db`` (shared with ``compare``)."""
    parser.add_argument("--reports-dir", default=DEFAULT_REPORTS, metavar="DIR",
                        help="the folder of the run folders (run.reports_dir; default: reports)")
    parser.add_argument("--db", default=None, metavar="FILE",
                        help="the history store (default: <reports-dir>/history.sqlite)")


def db_of(args: argparse.Namespace) -> Path:
    """The store the arguments name."""
    return Path(args.db) if args.db else default_db_path(args.reports_dir)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``history`` (the verb registry of :mod:`support.cli` calls this)."""
    history = sub.add_parser("history", help="the history of runs: rebuild the store from reports/, list the runs")
    actions = history.add_subparsers(dest="history_action", metavar="{rebuild,list}", required=True)
    rebuild = actions.add_parser("rebuild", help="build the history store again from reports/*/summary.json")
    add_db_arguments(rebuild)
    listing = actions.add_parser("list", help="the recorded runs, newest first")
    add_db_arguments(listing)
    listing.add_argument("--limit", type=int, default=None, metavar="N", help="the N newest runs only")
    listing.add_argument("--json", action="store_true", help="the runs as JSON")
    history.set_defaults(func=history_command)


def history_command(args: argparse.Namespace) -> int:
    if args.history_action == "rebuild":
        return _rebuild(args)
    return _list(args)


def _rebuild(args: argparse.Namespace) -> int:
    from support.history.store import rebuild

    reports = Path(args.reports_dir)
    if not reports.is_dir():
        print(f"history rebuild: {reports}: not a folder (give the runs' folder with --reports-dir)", file=sys.stderr)
        return 2
    db = db_of(args)
    try:
        result = rebuild(reports, db)
    except (sqlite3.Error, OSError) as exc:
        print(f"history rebuild: {db}: {exc}", file=sys.stderr)
        return 1
    for folder, reason in result.skipped:
        print(f"skipped {folder}: {reason}", file=sys.stderr)
    print(f"history: {db}: {len(result.recorded)} run(s) recorded"
          + (f", {len(result.skipped)} folder(s) skipped" if result.skipped else ""))
    return 0


def _when(epoch: Any) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch)) if isinstance(epoch, int | float) else "-"


def _list(args: argparse.Namespace) -> int:
    from support.history.store import list_runs

    db = db_of(args)
    if not db.is_file():
        print(f"history list: {db}: no history store (runs record themselves; `failover-tester history rebuild` "
              "builds it from the run folders)", file=sys.stderr)
        return 2
    try:
        runs = list_runs(db, args.limit)
    except sqlite3.Error as exc:
        print(f"history list: {db}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        for run in runs:
            for column in ("toolkit_settings", "totals", "objectives"):
                with contextlib.suppress(json.JSONDecodeError):
                    run[column] = json.loads(run[column]) if run[column] else None
        print(json.dumps(runs, indent=2))
        return 0
    header = ("run", "started", "status", "scenarios", "passed", "failed", "score", "config", "version")
    rows = [header]
    for run in runs:
        try:
            totals = json.loads(run["totals"] or "{}")
        except json.JSONDecodeError:
            totals = {}
        scenarios = str(run["scenarios"]) + (f" ×{run['repeat']}" if (run["repeat"] or 1) > 1 else "")
        failed = int(totals.get("failed", 0)) + int(totals.get("not_judged", 0))
        rows.append((run["run_id"], _when(run["started_at"]), str(run["status"]), scenarios,
                     str(totals.get("passed", "-")), str(failed),
                     "-" if run["score"] is None else f"{run['score']:.0f}", run["config_name"] or "-",
                     run["tool_version"] or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    if not runs:
        print(f"(no runs recorded in {db})")
    return 0
