"""``failover-tester compare RUN_A RUN_B``: what changed from run A to run B, scenario by scenario
(:mod:`support.history.compare`).

A run is a run id recorded in the history store (``--db``, default ``<reports-dir>/history.sqlite``), or a run
folder (``reports/latest``, ``reports/<run-id>``, a copied one). ``--fail-on-regression`` makes a CI gate: exit 1
when a scenario got worse beyond the noise or a pass became a fail. Exit 2 (one line): a run that is neither.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.cli.history import add_db_arguments, db_of
from support.history.compare import Thresholds

__all__ = ["UnknownRun", "add_parser", "compare_command", "load_run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``compare`` (the verb registry of :mod:`support.cli` calls this)."""
    defaults = Thresholds()
    compare = sub.add_parser("compare", help="compare two runs scenario by scenario (RTO, phases, losses); a CI gate "
                                             "with --fail-on-regression")
    compare.add_argument("run_a", metavar="RUN_A", help="the run before: a run id in the history, or a run folder")
    compare.add_argument("run_b", metavar="RUN_B", help="the run after: a run id in the history, or a run folder")
    add_db_arguments(compare)
    compare.add_argument("--fail-on-regression", action="store_true",
                         help="exit 1 when a scenario got worse beyond the noise or a pass became a fail")
    compare.add_argument("--json", action="store_true", help="the comparison as JSON")
    compare.add_argument("--min-seconds", type=float, default=defaults.seconds, metavar="S",
                         help=f"smallest change of a time that counts (default {defaults.seconds:g} s)")
    compare.add_argument("--min-count", type=float, default=defaults.count, metavar="N",
                         help=f"smallest change of a count (lost, ...) that counts (default {defaults.count:g})")
    compare.add_argument("--min-fraction", type=float, default=defaults.fraction, metavar="F",
                         help="smallest change relative to run A's median that counts, if larger than the above "
                              f"(default {defaults.fraction:g})")
    compare.add_argument("--alpha", type=float, default=defaults.alpha,
                         help=f"the rank test's significance level, with repeats (default {defaults.alpha:g})")
    compare.set_defaults(func=compare_command)


class UnknownRun(Exception):
    """A run argument that names no recorded run and no run folder (one line)."""


@dataclass
class LoadedRun:
    run_id: str
    run: dict[str, Any]
    drills: list[dict[str, Any]]


def load_run(spec: str, reports_dir: Path, db: Path) -> LoadedRun:
    """The run ``spec`` names: a run folder (read directly), else a run id in the store ``db``, else a folder of that
    name under ``reports_dir``."""
    from support.history.store import HistoryError, find_run, read_run, run_drills

    folder = Path(spec)
    if not folder.is_dir() and db.is_file():
        try:
            row = find_run(db, spec)
        except sqlite3.Error as exc:
            raise UnknownRun(f"compare: {db}: {exc}") from None
        if row is not None:
            return LoadedRun(spec, row, run_drills(db, spec))
        folder = reports_dir / spec
    elif not folder.is_dir():
        folder = reports_dir / spec
    if not folder.is_dir():
        where = f"in {db}" if db.is_file() else f"({db} does not exist)"
        raise UnknownRun(f"compare: {spec}: no such run {where} and no such run folder "
                         "(`failover-tester history list` names the runs)")
    try:
        recorded = read_run(folder)
    except HistoryError as exc:
        raise UnknownRun(f"compare: {spec}: not a finished run folder: {exc}") from None
    return LoadedRun(str(recorded.run["run_id"]), recorded.run, recorded.drills)


def compare_command(args: argparse.Namespace) -> int:
    from support.history.compare import compare

    reports, db = Path(args.reports_dir), db_of(args)
    try:
        a = load_run(args.run_a, reports, db)
        b = load_run(args.run_b, reports, db)
    except UnknownRun as exc:
        print(exc, file=sys.stderr)
        return 2
    limits = Thresholds(seconds=args.min_seconds, count=args.min_count, fraction=args.min_fraction, alpha=args.alpha)
    result = compare(a.run_id, a.drills, b.run_id, b.drills, limits,
                     a.run.get("toolkit_settings"), b.run.get("toolkit_settings"))
    print(json.dumps(result.to_json(), indent=2) if args.json else result.text())
    return 1 if args.fail_on_regression and result.regressions else 0
