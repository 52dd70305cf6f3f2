"""Soak mode: ``failover-tester run --every DURATION --for DURATION`` repeats the selected scenarios on a schedule.

Each round is a normal run (:func:`support.cli.run._run`): its own run id and ``reports/<run-id>/``, the same
reports, the history entry and the notification of any run. Its ``run.json`` also names the soak (``soak_id``) and
the round (``round``, 1-based).

The schedule (:func:`next_round`): round starts are slots ``every`` apart from the soak's start, and a round starts
only in a slot that begins before ``for`` has passed. A round that overruns its slot makes the next one start at
once (saying so), in the slot the clock has reached: the slots it overran are skipped, never piled up. A round that
is still running when ``for`` ends is not cut short.

Stopping: one signal forwarder (:class:`support.cli.run.Forwarder`) lives for the whole soak. A SIGINT or SIGTERM
(Ctrl-C, a CI runner, ``failover-tester abort``) during a round reaches behave, which heals, restores and reports
as in any run; between rounds it ends the wait at its next poll (0.1 s). Either way no further round starts. While
the soak waits, ``<run.reports_dir>/running.json`` still names its process (with ``between_rounds``), so that
``abort`` finds it.

Exit code: 1 when any round failed (or could not start); else 130/143 when a signal stopped the soak; else 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from support.atomic import write_atomic
from support.cli.live import RUNNING_FILE, SIGNAL_EXIT, Forwarder, remove_running
from support.config import ConfigError, load_config
from support.units import format_duration, format_seconds, parse_duration
from support.waits import WaitTimeout, wait_until

__all__ = ["POLL", "Round", "Schedule", "Slot", "next_round", "round_runner", "round_status", "run_soak",
           "schedule_from_args"]

#: how often the wait between rounds looks for a signal (seconds)
POLL = 0.1


@dataclass(frozen=True, slots=True)
class Schedule:
    """``--every`` and ``--for`` in seconds."""

    every: float
    span: float

    def describe(self) -> str:
        return f"every {format_duration(self.every)} for {format_duration(self.span)}"


@dataclass(frozen=True, slots=True)
class Slot:
    """When the next round starts: its slot (0 = the soak's start), the instant (monotonic) and how late that is
    against the slot it was due in (> 0 when the round before overran; it then starts at once)."""

    index: int
    at: float
    late: float = 0.0
    skipped: int = 0  # slots overrun and not run


def next_round(schedule: Schedule, start: float, last_index: int, now: float) -> Slot | None:
    """The slot of the round after the one that ran in slot ``last_index`` (``-1``: none ran yet), or None when
    no slot is left before ``start + span``. A round due in the past (the round before overran) starts ``now``, in
    the slot ``now`` falls in."""
    deadline = start + schedule.span
    due_index = last_index + 1
    due = start + due_index * schedule.every
    if due >= deadline:
        return None
    if due >= now:
        return Slot(due_index, due)
    if now >= deadline:
        return None
    current = max(due_index, math.floor((now - start) / schedule.every))
    return Slot(current, now, late=now - due, skipped=current - due_index)


@dataclass(frozen=True, slots=True)
class Round:
    """One round's outcome: ``status`` is the run's (``passed``, ``failed``, ``interrupted``) or ``error`` (the
    round could not run: a configuration problem)."""

    number: int
    run_id: str
    code: int
    status: str
    seconds: float


def round_status(code: int, run_dir: Path) -> str:
    """A round's status from its exit code and its ``summary.json``."""
    if code in SIGNAL_EXIT.values():
        return "interrupted"
    try:
        status = json.loads((run_dir / "summary.json").read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError):
        return "error" if code else "passed"
    if code == 0:
        return str(status or "passed")
    return "failed" if status in (None, "passed") else str(status)


def schedule_from_args(every: str | None, span: str | None, dry_run: bool) -> tuple[Schedule | None, str | None]:
    """The soak's schedule from ``--every``/``--for`` (both or neither), or the one-line usage problem."""
    if every is None and span is None:
        return None, None
    if every is None or span is None:
        return None, "run: --every and --for go together (e.g. --every 30m --for 8h): a soak is always bounded"
    if dry_run:
        return None, "run: --dry-run plans one run; leave out --every/--for"
    try:
        seconds = parse_duration(every), parse_duration(span)
    except ValueError as exc:
        return None, f"run: {exc}"
    if seconds[0] <= 0 or seconds[1] <= 0:
        return None, "run: --every and --for must be longer than 0"
    return Schedule(*seconds), None


#: runs one round: (run id, run.json additions, the soak's forwarder) -> the run's exit code
RoundRunner = Callable[[str, dict[str, object], Forwarder], int]


#: :func:`support.cli.run._run`: (config, run id, paths, overrides, tags, run.json additions, forwarder) -> exit code
RunOnce = Callable[..., int]  # support.cli.run._run


def round_runner(run: RunOnce, config_file: str | None, overrides: list[str], paths: list[str],
                 tags: list[str], **options: Any) -> RoundRunner:
    """A round as ``failover-tester run`` runs it: the configuration loaded afresh for the round's run id (what
    ``${run_id}`` resolves to), then ``run`` (:func:`support.cli.run._run`: reports, history, notification)."""

    def run_round(run_id: str, meta: dict[str, object], forward: Forwarder) -> int:
        try:
            config = load_config(config_file, overrides, run_id=run_id)
        except ConfigError as exc:
            print(f"round {meta.get('round')}: {exc}", file=sys.stderr)
            return 2
        return run(config, run_id, paths, overrides, tags, soak=meta, soak_forward=forward, **options)

    return run_round


def run_soak(schedule: Schedule, soak_id: str, reports: Path, run_round: RoundRunner, new_id: Callable[[], str],
             out: TextIO = sys.stdout, clock: Callable[[], float] = time.monotonic) -> int:
    """Run rounds on ``schedule`` until it is used up or a signal stops the soak; print a line per round and a
    final line. ``run_round`` is :func:`support.cli.run._run` with the round's configuration."""
    rounds: list[Round] = []
    start = clock()
    began = time.time()
    until = time.strftime("%H:%M:%S", time.localtime(began + schedule.span))
    print(f"soak {soak_id}: {schedule.describe()} (rounds start until {until}; Ctrl-C or `failover-tester abort` "
          "stops it)", file=out, flush=True)
    last = -1
    running = reports / RUNNING_FILE
    with Forwarder() as forward:
        while forward.first is None:
            slot = next_round(schedule, start, last, clock())
            if slot is None:
                break
            if slot.late > 0 and rounds:
                skipped = f"; {slot.skipped} slot(s) skipped" if slot.skipped else ""
                print(f"soak {soak_id}: round {len(rounds)} overran its {format_duration(schedule.every)} slot by "
                      f"{format_seconds(slot.late)}: round {len(rounds) + 1} starts at once{skipped}",
                      file=out, flush=True)
            elif slot.at > clock():
                if rounds:
                    _write_waiting(running, soak_id, rounds[-1], began, began + (slot.at - start))
                try:
                    _wait(forward, slot.at - clock())
                finally:
                    remove_running(running, os.getpid())
                if forward.first is not None:
                    break
            last = slot.index
            number = len(rounds) + 1
            run_id = new_id()
            print(f"soak {soak_id}: round {number} ({run_id})", file=out, flush=True)
            t0 = clock()
            code = run_round(run_id, {"soak_id": soak_id, "round": number}, forward)
            rounds.append(Round(number, run_id, code, round_status(code, reports / run_id), clock() - t0))
    return _finish(soak_id, schedule, rounds, forward, clock() - start, out)


def _wait(forward: Forwarder, seconds: float) -> None:
    """Wait ``seconds`` or until a signal reached the forwarder, whichever comes first (a poll, never a sleep)."""
    with contextlib.suppress(WaitTimeout):  # the timeout: the slot has come
        wait_until(lambda: forward.first, lambda signalled: signalled is not None, timeout=seconds, interval=POLL,
                   what="the next round of the soak")


def _write_waiting(running: Path, soak_id: str, last: Round, began: float, next_at: float) -> None:
    """``running.json`` between rounds: the soak's process, still alive, for ``failover-tester abort``."""
    write_atomic(running, json.dumps({"pid": os.getpid(), "run_id": last.run_id, "soak_id": soak_id,
                                      "round": last.number, "between_rounds": True, "next_round_at": next_at,
                                      "started_at": began}, indent=2))


def _finish(soak_id: str, schedule: Schedule, rounds: list[Round], forward: Forwarder, seconds: float,
            out: TextIO) -> int:
    counts: dict[str, int] = {}
    for done in rounds:
        counts[done.status] = counts.get(done.status, 0) + 1
    print(file=out)
    for done in rounds:
        print(f"  round {done.number:>3}  {done.run_id}  {done.status:<11}  {format_seconds(done.seconds, 1)}",
              file=out)
    how = (f"stopped by {forward.first.name}" if forward.first is not None
           else f"{schedule.describe()} done")
    tally = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none run"
    bad = counts.get("failed", 0) + counts.get("error", 0)
    print(f"soak {soak_id}: {len(rounds)} round(s) in {format_seconds(seconds, 0)} ({tally}); {how}; "
          f"{'FAILED' if bad else 'no round failed'}", file=out, flush=True)
    if bad:
        return 1
    if forward.first is not None:
        return SIGNAL_EXIT[forward.first]
    return 0


def soak_arguments(run: argparse.ArgumentParser) -> None:
    """``--every`` and ``--for`` of ``run``."""
    run.add_argument("--every", metavar="DURATION",
                     help="soak mode: start a round of the selected scenarios every DURATION (e.g. 10m) ...")
    run.add_argument("--for", dest="soak_for", metavar="DURATION",
                     help="... for DURATION (e.g. 8h); each round is a run with its own run id and reports")
