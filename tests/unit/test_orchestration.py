import json
import threading
import time
from pathlib import Path

import pytest

from support.orchestration import CleanupStack, Journal
from support.streams.errors import StreamsConnectionError
from support.waits import TRANSIENT, WaitTimeout, wait_until


def test_journal_is_on_disk_as_events_happen(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.jsonl", "scenario A")
    journal.record("fault.effective", dc="dc1")
    lines = (tmp_path / "journal.jsonl").read_text().splitlines()
    entry = json.loads(lines[0])
    assert entry["event"] == "fault.effective" and entry["dc"] == "dc1" and entry["scenario"] == "scenario A"
    assert entry["t"] > 0 and entry["mono"] > 0
    assert journal.first("fault.effective", dc="dc1") is not None
    assert journal.first("fault.effective", dc="dc2") is None


def test_cleanups_run_lifo_and_all_despite_failures(tmp_path: Path) -> None:
    order: list[str] = []
    stack = CleanupStack(Journal(None))
    stack.push("first", lambda: order.append("first"))

    def broken() -> None:
        order.append("broken")
        raise RuntimeError("boom")

    stack.push("broken", broken)
    stack.push("last", lambda: order.append("last"))
    errors = stack.run_all()
    assert order == ["last", "broken", "first"]
    assert errors == ["broken: boom"]
    assert len(stack) == 0


def test_wait_until_returns_value_or_names_last_observation() -> None:
    started = time.monotonic()
    values = iter(range(100))
    assert wait_until(lambda: next(values), lambda v: v >= 3, timeout=5, interval=0.01, what="count") == 3
    with pytest.raises(WaitTimeout) as caught:
        wait_until(lambda: "stopped", lambda v: v == "running", timeout=0.2, interval=0.05, what="job running")
    assert "job running" in str(caught.value) and "last observed: stopped" in str(caught.value)
    assert time.monotonic() - started < 3


def test_wait_until_counts_errors_as_observations() -> None:
    def probe() -> int:
        raise ConnectionError("refused")

    with pytest.raises(WaitTimeout, match="error: refused"):
        wait_until(probe, bool, timeout=0.1, interval=0.02, what="service up")


def test_wait_until_can_be_interrupted() -> None:
    stop = threading.Event()
    stop.set()
    with pytest.raises(WaitTimeout, match="interrupted"):
        wait_until(lambda: 0, bool, timeout=10, interval=1, what="x", stop=stop)


def test_wait_until_lets_a_bug_in_the_probe_surface_as_itself() -> None:
    def probe() -> int:
        raise TypeError("unsupported operand")

    with pytest.raises(TypeError, match="unsupported operand"):
        wait_until(probe, bool, timeout=5, interval=0.01, what="a buggy probe")


def test_wait_until_retries_streams_errors_and_declared_transients() -> None:
    attempts = iter([StreamsConnectionError("refused"), KeyError("not yet"), 7])

    def probe() -> int:
        item = next(attempts)
        if isinstance(item, BaseException):
            raise item
        return item

    assert wait_until(probe, bool, timeout=5, interval=0.01, what="x", transient=(*TRANSIENT, KeyError)) == 7


def test_a_wait_timeout_is_not_an_assertion_error() -> None:
    assert not issubclass(WaitTimeout, AssertionError)
