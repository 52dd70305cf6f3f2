"""``failover-tester abort``: stop the run in progress from any terminal, the way Ctrl-C stops it.

The run names itself in ``<run.reports_dir>/running.json`` (``failover-tester run`` writes it at its start and
removes it at its end). ``abort`` sends that process SIGTERM, which it forwards to behave: the running step ends,
every heal and restore runs, the reports are written, and the run exits 143. ``abort`` journals ``run.aborted``
and, unless ``--no-wait``, waits until the run has ended. A soak (``run --every --for``, :mod:`support.cli.soak`)
is stopped the same way, in a round (which ends as above) or between rounds (``running.json`` then says
``between_rounds``: no round is journaled, the next one does not start).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from support.cli.common import reports_dir
from support.cli.run import RUNNING_FILE
from support.orchestration import Journal
from support.units import format_seconds
from support.waits import WaitTimeout, wait_until

__all__ = ["abort_command", "add_parser", "find_running"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``abort`` (the verb registry of :mod:`support.cli` calls this)."""
    abort = sub.add_parser("abort", help="stop the run in progress (it heals, restores and writes its reports)")
    abort.set_defaults(func=abort_command)
    abort.add_argument("--config", help="config file of the run (default config/lab.yaml or $FAILOVER_TESTER_CONFIG)")
    abort.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    abort.add_argument("--reports-dir", metavar="DIR",
                       help="the run's run.reports_dir (instead of reading it from the config)")
    abort.add_argument("--wait", type=float, default=600.0, metavar="SECONDS",
                       help="wait this long for the run to heal, restore and end (default 600)")
    abort.add_argument("--no-wait", action="store_true", help="send the signal and return at once")


class NoRun(Exception):
    """No live run to stop: the one line says why."""


def find_running(reports_dir: Path) -> dict[str, Any]:
    """The live run named by ``running.json`` in ``reports_dir``; :class:`NoRun` when there is none or it is
    stale (its process is gone, or the pid now belongs to another program)."""
    path = reports_dir / RUNNING_FILE
    try:
        running = json.loads(path.read_text(encoding="utf-8"))
        pid = int(running["pid"])
    except FileNotFoundError:
        raise NoRun(f"no run in progress ({path} does not exist)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise NoRun(f"{path}: unreadable ({exc})") from None
    if not _alive(pid):
        raise NoRun(f"{path} is stale: run {running.get('run_id')} (pid {pid}) is no longer running "
                    "(it ended without removing the file; check its hosts with `failover-tester faults clean`)")
    if not _is_run(pid):
        raise NoRun(f"{path} is stale: pid {pid} is not a failover-tester run (the pid was reused)")
    return dict(running)


def _alive(pid: int) -> bool:
    """``pid`` runs (a zombie, ended but not yet reaped by its parent, has ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, someone else's
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc: the signal test is all there is
    return state != "Z"


def _is_run(pid: int) -> bool:
    """``pid`` runs failover-tester (``failover-tester run`` or ``python -m support.cli run``)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the pid
    text = [a.decode("utf-8", "replace") for a in argv if a]
    return "run" in text and any("failover-tester" in a or "support.cli" in a for a in text)


def abort_command(args: argparse.Namespace) -> int:
    reports = reports_dir(args, sys.stderr)
    if reports is None:
        return 2
    try:
        running = find_running(reports)
    except NoRun as exc:
        print(exc, file=sys.stderr)
        return 1
    pid, run_id = int(running["pid"]), str(running.get("run_id"))
    by = f"{getpass.getuser()}@{socket.gethostname()} (pid {os.getpid()})"
    try:
        if not running.get("between_rounds"):  # between a soak's rounds no run is going on
            Journal(reports / run_id / "journal.jsonl").record("run.aborted", by=by, pid=pid)
    except OSError as exc:  # the signal matters more than its record
        print(f"could not journal the abort: {exc}", file=sys.stderr)
    label = run_id
    if running.get("soak_id"):
        where = "between rounds" if running.get("between_rounds") else f"in round {running.get('round')}"
        label = f"{run_id} (soak {running['soak_id']}, {where})"
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        print(f"run {label} (pid {pid}) ended before the signal reached it", file=sys.stderr)
        return 1
    started = running.get("started_at")
    since = f", started {time.strftime('%H:%M:%S', time.localtime(float(started)))}" if started else ""
    if args.no_wait:
        print(f"stopping run {label} (pid {pid}{since}): it heals, restores and writes its reports")
        return 0
    began = time.monotonic()
    try:
        wait_until(lambda: _alive(pid), lambda alive: not alive, timeout=args.wait, interval=0.2,
                   what=f"run {label} to end")
    except WaitTimeout:
        print(f"signalled run {label} (pid {pid}{since}); it is still closing after "
              f"{format_seconds(args.wait, None)}", file=sys.stderr)
        return 1
    report = reports / run_id / "summary.json"
    print(f"stopped run {label} (pid {pid}{since}) in {format_seconds(time.monotonic() - began, None)}: "
          f"healed, restored, report {report}")
    return 0
