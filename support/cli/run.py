"""``failover-tester run``: the failover features under behave, then reports/<run-id>/ (``--dry-run``: the plan).

Interrupts: behave runs in its own process group, so a Ctrl-C at the terminal reaches this process only, and
this process forwards every SIGINT and SIGTERM to behave (whose hooks stop the running step, heal and restore:
:mod:`support.hooks`). When behave has ended, the summary, the reports and ``latest`` are written as for any run,
and the exit code is 130 (SIGINT) or 143 (SIGTERM). While the run lives, ``<run.reports_dir>/running.json``
names it (pid, run id, start, config) for ``failover-tester abort``. After the reports, the run's notification
is sent (:mod:`support.notify`). With ``--every D --for T`` the run is a soak: rounds of normal runs on a
schedule (:mod:`support.cli.soak`).

``--repeat N`` runs behave N times into the same run folder, one round of drills each (every drill deploys
afresh and has its own ledger folder); after a signal no further round starts. The summary then gives each
scenario's distributions and judges the config's ``gates:`` on them (docs/repeats.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import time
from pathlib import Path

from support.atomic import write_atomic
from support.cli.live import RUNNING_FILE, SIGNAL_EXIT
from support.cli.live import Forwarder as _Forwarder
from support.cli.live import remove_running as _remove_running
from support.cli.precheck import precheck
from support.cli.shard import ShardError, ShardPlan, nothing_to_run, plan_shard
from support.cli.soak import round_runner, run_soak, schedule_from_args, soak_arguments
from support.config import Config, ConfigError, load_config
from support.history.schema import default_db_path
from support.history.store import note_run
from support.lease import LeaseError, LeaseHeld, acquire
from support.notify import notify_run, regressions_for
from support.packaged import version
from support.redact import redacting
from support.reporting.allure import ALLURE_MISSING, render_single_file, write_environment
from support.reporting.html import write_report
from support.reporting.scorecard import gates_text, write_distribution_results
from support.reporting.summary import result_line, summary_table, write_run_meta, write_summary
from support.world import OVERRIDES_ENV, new_run_id

__all__ = ["RUNNING_FILE", "SIGNAL_EXIT", "add_parser", "run_command"]



def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``run`` (the verb registry of :mod:`support.cli` calls this)."""
    run = sub.add_parser("run", help="run the failover features (behave) and write reports/<run-id>/")
    run.set_defaults(func=run_command)
    run.add_argument("--config", help="config file (default config/lab.yaml or $FAILOVER_TESTER_CONFIG)")
    run.add_argument("--tags", action="append", default=[], help="behave tag expression, e.g. @smoke (repeatable)")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    run.add_argument("-D", "--define", action="append", default=[], metavar="KEY=VALUE",
                     help="behave userdata; config keys override the config like --set")
    run.add_argument("--dry-run", action="store_true",
                     help="print every command the fault steps would run on every host; run nothing")
    run.add_argument("--features", default="features", metavar="DIR",
                     help="the folder of the features to run (default: features/ of the current directory)")
    run.add_argument("--repeat", type=_repeats, default=1, metavar="N",
                     help="run each selected scenario N times, each drill on a fresh deployment; summary.json and "
                          "report.html give the distributions and judge the config's gates (docs/repeats.md)")
    run.add_argument("--shard", metavar="I/N", help="run only shard I of the selection split across N runners "
                     "(docs/sharding.md); `failover-tester report merge` joins the shards' run folders")
    soak_arguments(run)
    run.add_argument("paths", nargs="*", help="feature files or folders to run instead (default: --features)")


def run_command(args: argparse.Namespace) -> int:
    paths = list(args.paths) or [args.features]
    problem = _paths_problem(paths, behave=not args.dry_run)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    schedule, problem = schedule_from_args(args.every, args.soak_for, args.dry_run)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    run_id = new_run_id()
    overrides = [*args.set, *args.define]
    try:
        config = load_config(args.config, overrides, run_id=run_id)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    shard = None
    if args.shard is not None:  # the shard's scenarios as FILE:LINE arguments (support/cli/shard.py)
        try:
            shard = plan_shard(args.shard, args.tags, paths)
        except ShardError as exc:
            print(exc, file=sys.stderr)
            return 2
        print(shard.headline(), flush=True)
        if not shard.mine:
            return nothing_to_run(shard, run_id, Path(config.settings.run.reports_dir), _run_meta(config),
                                  write=not args.dry_run)
        paths = shard.locations
    if problems := precheck(config, args.tags, paths):  # check before touching: nothing deployed yet
        print("\n".join(problems), file=sys.stderr)
        return 2
    if args.dry_run:
        from support.cli.faults import plan_run

        return plan_run(config, args.tags, paths, redacting(sys.stdout, config.redact),
                        redacting(sys.stderr, config.redact))
    try:  # the pair's lease, for the whole run; behave and what it starts inherit its run id (support/lease.py)
        lease = acquire(config.settings, "run", run_id)
    except LeaseHeld as exc:
        print(f"run: refused: {exc}", file=sys.stderr)
        return 3
    except LeaseError as exc:
        print(f"run: cannot take the pair's lease: {exc}", file=sys.stderr)
        return 1
    with lease:
        if schedule is None:
            return _run(config, run_id, paths, overrides, args.tags, repeat=args.repeat, shard=shard)
        return run_soak(schedule, run_id, Path(config.settings.run.reports_dir),
                        round_runner(_run, args.config, overrides, paths, args.tags, repeat=args.repeat,
                                     shard=shard), new_run_id)


def _repeats(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 1; got {text!r}")
    return int(text)


def _run_meta(config: Config) -> dict[str, object]:
    return {"config": str(config.source), "target": config.settings.name or "", "tool_version": version()}


def _run(config: Config, run_id: str, paths: list[str], overrides: list[str], tags: list[str], *,
         repeat: int = 1, shard: ShardPlan | None = None, soak: dict[str, object] | None = None,
         soak_forward: _Forwarder | None = None) -> int:
    """The run itself, under the pair's lease. A soak's round (:mod:`support.cli.soak`) adds ``soak`` to run.json
    and running.json and hands its own signal forwarder, which lives across its rounds."""
    reports = Path(config.settings.run.reports_dir)
    run_dir = reports / run_id
    results, junit = run_dir / "allure-results", run_dir / "junit"
    results.mkdir(parents=True)
    junit.mkdir()
    write_run_meta(run_dir, {"run_id": run_id, **_run_meta(config), "started_at": time.time(), "repeat": repeat,
                             **(shard.meta() if shard else {}), **(soak or {})})
    cmd = [
        sys.executable, "-m", "behave",
        "-f", "support.reporting.allure_formatter:AllureFormatter", "-o", str(results),
        "-f", "support.reporting.console:PrettyFormatter", "--no-logcapture",  # the log is in run.log
        "--junit", "--junit-directory", str(junit),
        "-D", f"config={config.source}", "-D", f"run_id={run_id}", "-D", f"run_dir={run_dir}",
    ]
    for tag in tags:
        cmd += ["--tags", tag]
    cmd += [*(shard.behave_options if shard else []), *paths]
    running = reports / RUNNING_FILE
    with contextlib.nullcontext(soak_forward) if soak_forward else _Forwarder() as forward:
        write_atomic(running, json.dumps({"pid": os.getpid(), "run_id": run_id, "started_at": time.time(),
                                          "config": str(config.source), **(soak or {})}, indent=2))
        try:
            print(f"run {run_id}: behave against {config.settings.name or config.source}", flush=True)
            # the --set/-D overrides reach behave in its environment, not its arguments: a secret given there is
            # not shown by ps (a process' environment is readable by its owner only)
            code = 0
            for k in range(1, repeat + 1):  # --repeat: behave once per round into the same run folder
                if forward.first is not None:
                    break  # interrupted: no further round starts
                if repeat > 1:
                    print(f"run {run_id}: drill {k}/{repeat}", flush=True)
                drill = ["-D", f"repeat={k}", "-D", f"repeats={repeat}"] if repeat > 1 else []
                code = forward.run([*cmd, *drill], {**os.environ, OVERRIDES_ENV: json.dumps(overrides)}) or code
            meta: dict[str, object] = {"finished_at": time.time(), "behave_exit_code": code}
            if forward.first is not None:
                meta["interrupted_by"] = forward.first.name
            write_run_meta(run_dir, meta)
            ok = _report(config, run_id, run_dir, reports, code)
            notify_run(config.settings.notify, run_dir, regressions_for(run_dir), config.redactor)  # never raises
        finally:
            _remove_running(running, os.getpid())
    if forward.first is not None:
        print(f"stopped by {forward.first.name}: the interrupted scenario was healed and restored "
              "(see cleanup.done in the journal)")
        return SIGNAL_EXIT[forward.first]
    return 0 if ok else 1


def _report(config: Config, run_id: str, run_dir: Path, reports: Path, code: int) -> bool:
    """Write summary.json, the HTML and Allure reports and ``latest``; print the table. True when it passed."""
    results = run_dir / "allure-results"
    summary = write_summary(run_dir, code)
    html_report = write_report(summary, run_dir)
    write_distribution_results(summary, results)
    write_environment(results, config.redactor.redact_tree(_environment(config, run_id)))
    index = render_single_file(results, run_dir / "allure-report", Path.cwd(), name=f"Failover tests {run_id}",
                               history=reports / "allure-history.jsonl")
    config.redactor.scrub_tree(run_dir)  # JUnit, Allure results, reports: no secret in any file of the run
    latest = reports / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(run_id)
    print()
    print(summary_table(summary["scenarios"]))
    print()
    print(f"summary:  {run_dir / 'summary.json'}")
    print(f"journal:  {run_dir / 'journal.jsonl'}")
    print(f"report:   {html_report}")
    print(f"allure:   {index if index else f'not rendered ({ALLURE_MISSING})'}")
    print(result_line(summary))
    if gates := gates_text(summary):
        print(gates)
    note_run(run_dir, default_db_path(reports), sys.stdout)  # a history failure is said, never changes the verdict
    return bool(summary["status"] == "passed" and code == 0)


_LINE_SUFFIX = re.compile(r"(:\d+)+$")


def _paths_problem(paths: list[str], behave: bool) -> str | None:
    """Why ``paths`` could not be run (one line), or None: each must exist, and for behave the first must lie in a
    project, a folder with the behave glue (``steps/`` or ``environment.py``) at or above it."""
    files = [Path(_LINE_SUFFIX.sub("", raw.removeprefix("@"))) for raw in paths]  # behave's FILE:LINE, @LIST
    for raw, file in zip(paths, files, strict=True):
        if not file.exists():
            return (f"{Path.cwd()}: {raw}: not found (run failover-tester in a project folder, "
                    "or make one with `failover-tester init DIR`)")
    if not behave:
        return None
    first = files[0].resolve()
    for folder in (first, *first.parents):
        if (folder / "steps").is_dir() or (folder / "environment.py").is_file():
            return None
    return (f"{paths[0]}: no steps/ or environment.py in it or above it: behave would not find the failover "
            "tester's steps (keep features inside a project made by `failover-tester init`)")


def _environment(config: Config, run_id: str) -> dict[str, str]:
    """What the Allure report shows as the run's environment (no secrets: URLs and names only)."""
    values = {"target": config.settings.name or "", "config": str(config.source), "run_id": run_id}
    for dc, settings in config.settings.datacenters.items():
        values[f"{dc}.rest"] = settings.rest.url
        values[f"{dc}.exchange"] = settings.exchange.url
    return values
