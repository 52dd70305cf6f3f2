from pathlib import Path

from support.data.ledger import ReceivedRow
from support.data.validate import check_delivery
from support.measure import check_objectives, check_recovery_time, check_takeover, recovery_timeline
from support.orchestration import Journal


def row(dc: str, t: float) -> ReceivedRow:
    return ReceivedRow("x", "k", 1, dc, t, t, 1, 1.0, True)


def journal_with(tmp_path: Path, events: list[tuple[str, float, dict]]) -> Journal:
    journal = Journal(tmp_path / "j.jsonl", "s")
    for name, t, fields in events:
        entry = journal.record(name, **fields)
        object.__setattr__(entry, "t", t)  # pin the time for the test
    return journal


def test_phases_from_journal_and_ledger(tmp_path: Path) -> None:
    journal = journal_with(tmp_path, [
        ("fault.effective", 100.0, {"kind": "job-cancel"}),
        ("toolkit.remote_down", 102.0, {"dc": "dc2"}),
        ("toolkit.takeover", 102.5, {"dc": "dc2"}),
    ])
    received = [row("dc1", 99.0), row("dc1", 100.2), row("dc2", 103.25), row("dc2", 104.0)]
    timeline = recovery_timeline(journal, received, "dc2")
    assert timeline.phases() == {"down_detected": 2.0, "takeover": 2.5, "first_output": 3.25}
    assert timeline.rto == 3.25
    assert check_takeover(timeline, "dc2", 3).passed
    assert not check_takeover(timeline, "dc2", 2).passed
    assert check_recovery_time(timeline, 4).passed
    verdict = check_recovery_time(timeline, 3)
    assert not verdict.passed and "3.25 s" in verdict.summary


def test_no_fault_no_output(tmp_path: Path) -> None:
    timeline = recovery_timeline(journal_with(tmp_path, []), [row("dc2", 5.0)], "dc2")
    assert timeline.rto is None
    assert not check_takeover(timeline, "dc2", 45).passed
    assert not check_recovery_time(timeline, 60).passed


def test_objectives_combine_every_check(tmp_path: Path) -> None:
    journal = journal_with(tmp_path, [("fault.effective", 10.0, {})])
    timeline = recovery_timeline(journal, [row("dc2", 15.0)], "dc2")
    report = check_delivery([], [])
    assert check_objectives("orders", timeline, report, {"rto": 60, "max_lost": 0}).passed
    failed = check_objectives("orders", timeline, report, {"rto": 1, "max_lost": 0})
    assert not failed.passed and "misses" in failed.summary
    assert not check_objectives("orders", timeline, report, {}).passed
