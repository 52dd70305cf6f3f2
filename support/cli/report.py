"""``failover-tester report merge DIR... [--out DIR] [--force]``: the shards' run folders (``run --shard I/N``) joined
into one run: one summary, one ``report.html``, one Allure report, JUnit, the journals and ledgers (``judge`` on the
merged folder gives the shards' verdicts) and one history entry (:mod:`support.reporting.merge`; docs/sharding.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from support.history.schema import default_db_path
from support.history.store import record_run
from support.reporting.allure import ALLURE_MISSING, render_single_file
from support.reporting.merge import MergeRefused, merge_runs
from support.reporting.summary import result_line, summary_table
from support.world import new_run_id

__all__ = ["add_parser", "merge_command"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``report`` (the verb registry of :mod:`support.cli` calls this)."""
    report = sub.add_parser("report", help="work on stored runs' reports: merge the shards of a split run")
    verbs = report.add_subparsers(dest="report_command", required=True, metavar="{merge}")
    merge = verbs.add_parser("merge", help="merge the run folders of the shards of one split (run --shard I/N) "
                                           "into one run folder")
    merge.add_argument("dirs", nargs="+", metavar="DIR", help="a shard's run folder (reports/<run-id>), one per shard")
    merge.add_argument("--out", metavar="DIR",
                       help="the merged run's folder (default: <the first DIR's parent>/<new run id>)")
    merge.add_argument("--force", action="store_true",
                       help="merge even folders that are not the shards of one split (missing shards, other tags)")
    merge.set_defaults(func=merge_command)


def merge_command(args: argparse.Namespace) -> int:
    folders = [Path(d).resolve() for d in args.dirs]
    run_id = new_run_id()
    out = Path(args.out).resolve() if args.out else folders[0].parent / run_id
    try:
        summary = merge_runs(folders, out, run_id, force=args.force)
    except MergeRefused as exc:
        print(f"report merge: refused: {exc}", file=sys.stderr)
        return 2
    index = render_single_file(out / "allure-results", out / "allure-report", Path.cwd(),
                               name=f"Failover tests {run_id} (merged)")
    try:
        recorded: Path | str | None = record_history(out)
    except Exception as exc:  # the merged folder is complete without it; say why the entry is missing
        recorded = f"failed ({exc})"
    print(summary_table(summary["scenarios"]))
    print()
    print(f"merged:   {len(args.dirs)} shard folder(s) into {out}")
    print(f"summary:  {out / 'summary.json'}")
    print(f"journal:  {out / 'journal.jsonl'}")
    print(f"report:   {out / 'report.html'}")
    print(f"allure:   {index if index else f'not rendered ({ALLURE_MISSING})'}")
    print(f"history:  {recorded}")
    print(result_line(summary))
    return 0 if summary["status"] == "passed" else 1


def record_history(run_dir: Path) -> Path:
    """The merged run as one entry of the history next to the merged folder (``<reports>/history.sqlite``): it
    replaces the entries its shards made there (:func:`support.history.store.record_run`). The store's path."""
    db = default_db_path(run_dir.parent)
    record_run(run_dir, db)
    return db
