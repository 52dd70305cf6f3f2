"""Interrupts, cleanup-first closing and atomic reports (issue 13), without the lab: the interrupt flags and the
waits, World.close's order with fakes, the signal forwarding of ``run``, ``abort``'s view of running.json."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import atomic
from support.atomic import write_atomic
from support.cli.abort import NoRun, find_running
from support.cli.run import _Forwarder
from support.data.ledger import IdTable, Ledger, SentRow
from support.orchestration import CleanupStack, Journal
from support.reporting.allure import RESIDUE_PREFIX
from support.reporting.summary import append_scenario, write_summary
from support.waits import (
    Interrupted,
    WaitTimeout,
    closing,
    interrupt,
    reset_interrupt,
    shielded,
    wait_until,
)
from support.world import World


@pytest.fixture(autouse=True)
def _no_interrupt() -> Iterator[None]:
    reset_interrupt()
    yield
    reset_interrupt()


# -- atomic writes ------------------------------------------------------------------------------------------------
def test_write_atomic_replaces_the_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    write_atomic(target, "old")
    write_atomic(target, "new")
    assert target.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    target = tmp_path / "run.json"
    write_atomic(target, '{"ok": 1}')

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, '{"ok": 2, "half": ')
    assert json.loads(target.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_ledgers_are_fsynced_when_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    ids = IdTable(tmp_path / "ids.txt")
    ledger = Ledger(tmp_path / "sent.csv", SentRow, ids)
    ledger.close()
    ids.close()
    assert len(synced) >= 3  # the columns, the CSV and the id file at least


# -- the interrupt flags and the waits ----------------------------------------------------------------------------
def test_a_second_signal_within_five_seconds_hurries() -> None:
    assert interrupt("SIGINT", now=100.0) == "first"
    assert interrupt("SIGINT", now=106.0) == "again"  # not quick: still only stopping
    assert interrupt("SIGINT", now=108.0) == "hurry"


def test_an_interrupt_ends_a_wait_of_a_step_at_its_next_poll() -> None:
    timer = threading.Timer(0.3, interrupt, ("SIGTERM",))
    timer.start()
    began = time.monotonic()
    with pytest.raises(Interrupted, match="SIGTERM") as caught:
        wait_until(lambda: 0, lambda v: v == 1, timeout=30, interval=5.0, what="a takeover")
    assert time.monotonic() - began < 1.0  # a 5 s interval is paced in slices
    assert isinstance(caught.value, KeyboardInterrupt)  # behave's abort path; no `except Exception` takes it


def test_heals_and_restores_are_shielded_from_every_interrupt() -> None:
    interrupt("SIGINT", now=1.0)
    interrupt("SIGINT", now=1.5)  # hurried too
    seen: list[int] = []

    def probe() -> int:
        seen.append(1)
        return len(seen)

    with shielded():
        assert wait_until(probe, lambda n: n >= 3, timeout=5, interval=0.01, what="the network to be whole") == 3


def test_the_closing_waits_end_only_on_a_second_quick_signal() -> None:
    interrupt("SIGINT")
    with closing(), pytest.raises(WaitTimeout):
        wait_until(lambda: 0, lambda v: v == 1, timeout=0.3, interval=0.05, what="output to drain")
    interrupt("SIGINT")
    with closing(), pytest.raises(Interrupted):
        wait_until(lambda: 0, lambda v: v == 1, timeout=5, interval=0.05, what="output to drain")


def test_background_threads_are_not_interrupted() -> None:
    interrupt("SIGINT")
    result: list[object] = []

    def worker() -> None:
        try:
            result.append(wait_until(lambda: len(result) + 1, lambda v: v == 1, timeout=2, what="a sample"))
        except BaseException as exc:  # the test reports whatever ended the thread
            result.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(5)
    assert result == [1]


# -- World.close: heals first, every later step isolated ---------------------------------------------------------
class FailingJournal(Journal):
    """A journal on a full disk: nothing can be recorded."""

    def record(self, event: str, at: Any = None, **fields: Any) -> Any:
        raise OSError(28, "No space left on device")


class FakeTraffic:
    def __init__(self, calls: list[str], drain_error: BaseException | None = None) -> None:
        self.calls, self.drain_error = calls, drain_error
        self.sent, self.received = self, self

    def drain(self, timeout: float, quiet: float) -> None:
        self.calls.append("drain")
        if self.drain_error is not None:
            raise self.drain_error

    def stop(self) -> None:
        self.calls.append("traffic.stop")

    def close(self) -> None:
        self.calls.append("ledger.close")


class FakeFaults:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def audit(self) -> list[str]:
        self.calls.append("audit")
        return ["dc1/host1: a DROP rule"]

    def close(self) -> None:
        self.calls.append("faults.close")


class FakeMonitor:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def stop(self) -> None:
        self.calls.append("monitor.stop")
        raise RuntimeError("monitor thread wedged")


class FakeMetrics:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def stop(self) -> None:
        self.calls.append("metrics.stop")
        raise ValueError("minlength must be non-negative")  # what np.bincount says about a 0 s window


def closing_world(tmp_path: Path, journal: Journal, calls: list[str], drain_error: BaseException | None = None
                  ) -> World:
    world = object.__new__(World)
    world.journal = journal
    world.cleanup = CleanupStack(journal)
    world.cleanup.push("restore orders", lambda: calls.append("restore"))
    world.cleanup.push("heal the partition", lambda: calls.append("heal"))
    world.traffic = FakeTraffic(calls, drain_error)  # type: ignore[assignment]
    world.monitor = FakeMonitor(calls)  # type: ignore[assignment]
    world.metrics = FakeMetrics(calls)  # type: ignore[assignment]
    world.ids = None
    world.faults = FakeFaults(calls)  # type: ignore[assignment]
    world.stop_watch, world._remove_stop_check = None, None  # no run.stop_conditions
    settings = type("S", (), {"drain_timeout": 1.0, "drain_quiet": 0.1})()
    world.run = type("R", (), {"judge_settings": settings})()
    return world


def test_a_full_disk_does_not_skip_the_heals(tmp_path: Path) -> None:
    calls: list[str] = []
    errors = closing_world(tmp_path, FailingJournal(None), calls).close()
    assert calls.index("heal") < calls.index("restore") < calls.index("monitor.stop")
    assert {"heal", "restore", "metrics.stop", "ledger.close", "audit", "faults.close"} <= set(calls)
    assert any(e.startswith("journal the end of the steps: ") for e in errors)


def test_one_failing_closing_step_is_reported_and_the_rest_still_run(tmp_path: Path) -> None:
    calls: list[str] = []
    journal = Journal(tmp_path / "journal.jsonl", "s", "01-s")
    errors = closing_world(tmp_path, journal, calls, drain_error=RuntimeError("exchange gone")).close()
    assert calls[:3] == ["drain", "heal", "restore"]
    assert calls[3:] == ["monitor.stop", "metrics.stop", "traffic.stop", "ledger.close", "ledger.close", "audit",
                         "faults.close"]
    assert errors == ["drain the outputs: exchange gone", "stop the toolkit monitor: monitor thread wedged",
                      "export the metrics: minlength must be non-negative", RESIDUE_PREFIX + "dc1/host1: a DROP rule"]
    failed = [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]
    assert {e["what"] for e in failed if e["event"] == "cleanup.failed"} == {
        "drain the outputs", "stop the toolkit monitor", "export the metrics"}


def test_a_second_quick_signal_ends_the_drain_and_the_heals_still_run(tmp_path: Path) -> None:
    calls: list[str] = []
    journal = Journal(tmp_path / "journal.jsonl", "s", "01-s")
    interrupt("SIGINT", now=1.0)
    interrupt("SIGINT", now=2.0)
    world = closing_world(tmp_path, journal, calls, drain_error=Interrupted("SIGINT", "output to drain"))
    errors = world.close()
    assert world.interrupted == "SIGINT"
    assert calls[:3] == ["drain", "heal", "restore"]
    assert not any(e.startswith("drain") for e in errors)  # asked for, not a failure


# -- the summary -----------------------------------------------------------------------------------------------
def test_an_interrupted_scenario_makes_an_interrupted_run(tmp_path: Path) -> None:
    record = {"feature": "F", "name": "partition", "status": "interrupted", "tags": [], "duration_s": 3.0,
              "rto_s": None, "phases_s": {}, "lost": None, "duplicated": None, "unknown": None, "verdicts": [],
              "error": "interrupted by SIGINT during 'Then no failover happens for 120 seconds'"}
    append_scenario(tmp_path, record)
    summary = write_summary(tmp_path, 1)
    assert summary["status"] == "interrupted"
    assert summary["totals"]["interrupted"] == 1 and summary["totals"]["failed"] == 0


# -- run forwards signals; abort finds the run -------------------------------------------------------------------
CHILD = """
import pathlib, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])
pathlib.Path(sys.argv[1]).write_text("ready")
sys.exit(7 if signal.sigtimedwait([signal.SIGINT], 20) else 1)
"""


def test_run_forwards_a_signal_to_behave_and_notes_it(tmp_path: Path) -> None:
    ready = tmp_path / "ready"

    def signal_when_ready() -> None:
        wait_until(ready.exists, bool, timeout=20, interval=0.02, what="the child to be ready")
        os.kill(os.getpid(), signal.SIGINT)

    sender = threading.Thread(target=signal_when_ready)
    before = signal.getsignal(signal.SIGINT)
    with _Forwarder() as forward:
        sender.start()
        code = forward.run([sys.executable, "-c", CHILD, str(ready)])
    sender.join(5)
    assert code == 7  # the child got exactly the forwarded SIGINT and ended on its own terms
    assert forward.first == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) == before  # restored


def test_abort_says_when_no_run_is_in_progress_or_the_file_is_stale(tmp_path: Path) -> None:
    with pytest.raises(NoRun, match="no run in progress"):
        find_running(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    (tmp_path / "running.json").write_text(json.dumps({"pid": int(dead.stdout), "run_id": "r1"}))
    with pytest.raises(NoRun, match="stale: run r1"):
        find_running(tmp_path)
    (tmp_path / "running.json").write_text(json.dumps({"pid": os.getpid(), "run_id": "r1"}))
    with pytest.raises(NoRun, match="not a failover-tester run"):
        find_running(tmp_path)


def test_a_signal_before_behave_starts_means_behave_never_starts(tmp_path: Path) -> None:
    with _Forwarder() as forward:
        os.kill(os.getpid(), signal.SIGTERM)  # handled in this (main) thread before the next line
        code = forward.run([sys.executable, "-c", f"open({str(tmp_path / 'started')!r}, 'w')"])
    assert code == 1 and forward.first == signal.SIGTERM
    assert not (tmp_path / "started").exists()


def test_abort_sees_an_ended_but_unreaped_run_as_ended() -> None:
    from support.cli.abort import _alive

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        wait_until(lambda: _alive(child.pid), lambda alive: not alive, timeout=20, interval=0.02,
                   what="the child to end (a zombie until reaped)")
        os.kill(child.pid, 0)  # still there to a signal (not reaped yet): what abort alone used to look at
    finally:
        child.wait()


def test_overrides_reach_behave_in_its_environment_not_its_command_line(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret given with --set must not show in ps: behave gets the overrides in its environment (readable by
    its owner only), and before_all reads them from there."""
    import contextlib

    from faultfakes import lab_shaped_config

    from support.cli import build_parser
    from support.cli import run as run_cli
    from support.world import OVERRIDES_ENV, run_overrides

    config = lab_shaped_config(tmp_path)
    seen: dict[str, Any] = {}

    def fake_run(self: _Forwarder, cmd: list[str], env: dict[str, str] | None = None) -> int:
        seen["cmd"], seen["env"] = cmd, env or {}
        return 0

    monkeypatch.setattr(_Forwarder, "run", fake_run)
    monkeypatch.setattr(run_cli, "_report", lambda *args: True)
    monkeypatch.setattr(run_cli, "acquire", lambda *args, **kw: contextlib.nullcontext())
    secret = "s3cret-Only-In-Env"
    args = build_parser().parse_args(["run", "--config", str(config.source),
                                      "--set", f"run.reports_dir={tmp_path / 'r'}",
                                      "--set", f"datacenters.dc1.rest.auth.password={secret}",
                                      "features/process_faults.feature"])
    assert run_cli.run_command(args) == 0
    assert not any(secret in word for word in seen["cmd"])
    monkeypatch.setenv(OVERRIDES_ENV, seen["env"][OVERRIDES_ENV])
    assert f"datacenters.dc1.rest.auth.password={secret}" in run_overrides()
