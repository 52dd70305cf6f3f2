"""Soak mode (support/cli/soak.py): the schedule's arithmetic, the wait between rounds that a signal ends at once,
``abort`` between rounds, the final line and the exit code. Rounds are fakes here; tests/integration/test_soak.py
runs real rounds on the lab."""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from support.cli import abort, run, soak
from support.cli.live import Forwarder
from support.cli.soak import Schedule, Slot, next_round, run_soak, schedule_from_args
from support.waits import wait_until

# ------------------------------------------------------------------------------------------ the schedule

def test_the_first_round_starts_at_once_and_the_next_on_the_grid() -> None:
    plan = Schedule(every=60, span=300)
    assert next_round(plan, 1000.0, -1, 1000.0) == Slot(0, 1000.0)
    assert next_round(plan, 1000.0, 0, 1010.0) == Slot(1, 1060.0)  # a 10 s round: the next one waits 50 s
    assert next_round(plan, 1000.0, 3, 1240.0) == Slot(4, 1240.0)  # a round due exactly now is on time


def test_an_overrun_starts_the_next_round_at_once_in_the_current_slot_without_pile_up() -> None:
    plan = Schedule(every=60, span=600)
    # round in slot 1 ran from 1060 to 1230: slot 2 (1120) and 3 (1180) were overrun; the next round starts now, in
    # slot 3 (the one 1230 falls in), and the one after that is on the grid again (slot 4 at 1240)
    late = next_round(plan, 1000.0, 1, 1230.0)
    assert late == Slot(3, 1230.0, late=110.0, skipped=1)
    assert next_round(plan, 1000.0, late.index, 1235.0) == Slot(4, 1240.0)


def test_no_round_starts_once_the_span_has_passed() -> None:
    plan = Schedule(every=60, span=150)  # slots at 0, 60, 120
    assert next_round(plan, 0.0, 1, 70.0) == Slot(2, 120.0)
    assert next_round(plan, 0.0, 2, 130.0) is None  # slot 3 (180) lies beyond 150
    assert next_round(plan, 0.0, 1, 151.0) is None  # overran past the end: no catch-up round after it
    assert next_round(Schedule(every=600, span=60), 0.0, 0, 1.0) is None  # every > for: one round


@pytest.mark.parametrize(("every", "span", "dry", "problem"), [
    ("1m", None, False, "go together"),
    (None, "1h", False, "go together"),
    ("1m", "1h", True, "--dry-run"),
    ("soon", "1h", False, "not a duration"),
    ("0s", "1h", False, "longer than 0"),
])
def test_bad_soak_arguments_are_one_usage_line(every: str | None, span: str | None, dry: bool, problem: str) -> None:
    schedule, message = schedule_from_args(every, span, dry)
    assert schedule is None and message is not None and problem in message


def test_soak_arguments_parse_with_units() -> None:
    assert schedule_from_args("10m", "8 hours", False) == (Schedule(600.0, 28800.0), None)
    assert schedule_from_args(None, None, False) == (None, None)


# ------------------------------------------------------------------------------------------ the loop (fake rounds)

class Rounds:
    """Fake rounds: each writes a summary with the next status and takes ``seconds`` on a fake clock."""

    def __init__(self, reports: Path, statuses: list[str], seconds: float, clock: list[float]) -> None:
        self.reports, self.statuses, self.seconds, self.clock = reports, statuses, seconds, clock
        self.seen: list[tuple[str, dict[str, object]]] = []

    def __call__(self, run_id: str, meta: dict[str, object], forward: Forwarder) -> int:
        self.seen.append((run_id, meta))
        status = self.statuses[len(self.seen) - 1]
        (self.reports / run_id).mkdir(parents=True)
        (self.reports / run_id / "summary.json").write_text(json.dumps({"status": status}))
        self.clock[0] += self.seconds
        return 0 if status == "passed" else 1


def ids() -> Callable[[], str]:
    counter = iter(range(1, 1000))
    return lambda: f"run-{next(counter)}"


def test_rounds_overrunning_a_short_slot_follow_each_other_and_say_so(tmp_path: Path) -> None:
    clock = [0.0]
    rounds = Rounds(tmp_path, ["passed", "failed", "passed"], seconds=25.0, clock=clock)
    out = io.StringIO()
    code = run_soak(Schedule(every=10, span=70), "soak-1", tmp_path, rounds, ids(), out, clock=lambda: clock[0])
    text = out.getvalue()
    # rounds at 0, 25, 50 (each overran its 10 s slot); at 75 the span (70) has passed
    assert [meta for _, meta in rounds.seen] == [{"soak_id": "soak-1", "round": n} for n in (1, 2, 3)]
    assert "round 1 overran its 10 seconds slot by 15.00 s: round 2 starts at once; 1 slot(s) skipped" in text
    assert code == 1  # one round failed
    assert text.rstrip().splitlines()[-1] == (
        "soak soak-1: 3 round(s) in 75 s (1 failed, 2 passed); every 10 seconds for 70 seconds done; FAILED")


def test_a_soak_whose_rounds_all_pass_exits_0(tmp_path: Path) -> None:
    clock = [0.0]
    rounds = Rounds(tmp_path, ["passed", "passed"], seconds=5.0, clock=clock)

    def tick() -> float:  # the wait between rounds polls the clock: let fake time run
        clock[0] += 1.0
        return clock[0]

    out = io.StringIO()
    plan = Schedule(every=0.3, span=0.5)
    assert run_soak(plan, "s", tmp_path, rounds, ids(), out, clock=tick) == 0
    assert "no round failed" in out.getvalue().splitlines()[-1]


def between_rounds(reports: Path) -> dict[str, object]:
    """running.json once it says the soak waits between rounds."""
    path = reports / "running.json"

    def read() -> dict[str, object] | None:
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, ValueError):
            return None

    found = wait_until(read, lambda r: bool(r and r.get("between_rounds")), timeout=10, interval=0.02,
                       what="running.json between rounds")
    assert found is not None
    return found


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_between_rounds_ends_the_wait_at_once(tmp_path: Path, signum: signal.Signals) -> None:
    clock = [0.0]
    rounds = Rounds(tmp_path, ["passed"] * 5, seconds=0.0, clock=clock)
    sent: list[float] = []

    def send() -> None:
        running = between_rounds(tmp_path)
        assert running["pid"] == os.getpid() and running["run_id"] == "run-1" and running["soak_id"] == "s"
        sent.append(time.monotonic())
        os.kill(os.getpid(), signum)

    threading.Thread(target=send, daemon=True).start()
    out = io.StringIO()
    code = run_soak(Schedule(every=60, span=600), "s", tmp_path, rounds, ids(), out)
    ended = time.monotonic()
    assert code == {signal.SIGINT: 130, signal.SIGTERM: 143}[signum]
    assert len(rounds.seen) == 1  # round 2 (due 60 s after round 1) never started
    assert sent and ended - sent[0] < 1.0, "the wait did not end at once"
    assert f"stopped by {signum.name}" in out.getvalue().splitlines()[-1]
    assert not (tmp_path / "running.json").exists()


def test_abort_stops_a_soak_between_rounds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(abort, "_is_run", lambda pid: True)  # pytest is not a failover-tester process
    clock = [0.0]
    rounds = Rounds(tmp_path, ["passed"] * 5, seconds=0.0, clock=clock)
    codes: list[int] = []

    def abort_it() -> None:
        between_rounds(tmp_path)
        codes.append(abort.abort_command(argparse.Namespace(reports_dir=str(tmp_path), no_wait=True, wait=5.0)))

    threading.Thread(target=abort_it, daemon=True).start()
    code = run_soak(Schedule(every=60, span=600), "s", tmp_path, rounds, ids(), io.StringIO())
    assert code == 143 and codes == [0] and len(rounds.seen) == 1
    assert "stopping run run-1 (soak s, between rounds)" in capsys.readouterr().out
    assert not (tmp_path / "run-1" / "journal.jsonl").exists()  # the finished round is not journaled as aborted


def test_a_signal_during_a_round_stops_the_soak_after_it(tmp_path: Path) -> None:
    clock = [0.0]
    rounds = Rounds(tmp_path, ["passed"] * 5, seconds=0.0, clock=clock)

    def interrupted_round(run_id: str, meta: dict[str, object], forward: Forwarder) -> int:
        rounds(run_id, meta, forward)
        if meta["round"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # what behave's run would see; the round reports interrupted
            wait_until(lambda: forward.first, lambda first: first is not None, timeout=5, what="the signal noted")
            return 130
        return 0

    out = io.StringIO()
    code = run_soak(Schedule(every=0.01, span=600), "s", tmp_path, interrupted_round, ids(), out)
    assert code == 130 and len(rounds.seen) == 2
    assert "(1 interrupted, 1 passed); stopped by SIGINT" in out.getvalue()


def test_a_round_that_cannot_load_its_config_counts_as_failed(tmp_path: Path) -> None:
    runner = soak.round_runner(run._run, str(tmp_path / "missing.yaml"), [], ["features"], [])
    clock = [0.0]
    code = run_soak(Schedule(every=60, span=30), "s", tmp_path, runner, ids(), io.StringIO(), clock=lambda: clock[0])
    assert code == 1
