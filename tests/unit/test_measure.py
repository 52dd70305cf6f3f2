from pathlib import Path
from typing import Any

import numpy as np

from support.data.ledger import ReceivedRow
from support.measure import (
    check_no_failover,
    check_recovery_time,
    check_takeover,
    check_throughput,
    recovery_timeline,
    throughput_baseline,
    throughput_recovered_at,
)
from support.orchestration import Journal


def row(dc: str, t: float, processed: float | None = None, i: int = 0) -> ReceivedRow:
    return ReceivedRow(f"x{i}", "k", 1, dc, t, t if processed is None else processed, 1, 1.0, True)


def journal_with(tmp_path: Path, events: list[tuple[str, float, dict[str, Any]]]) -> Journal:
    journal = Journal(tmp_path / "j.jsonl", "s")
    for name, t, fields in events:
        entry = journal.record(name, **fields)
        object.__setattr__(entry, "t", t)  # pin the time for the test
    return journal


def test_phases_from_journal_and_ledger(tmp_path: Path) -> None:
    journal = journal_with(tmp_path, [
        ("fault.effective", 100.0, {"kind": "job-cancel"}),
        ("toolkit.remote_down", 102.0, {"dc": "dc2", "source": "operator metrics"}),
        ("toolkit.takeover", 102.5, {"dc": "dc2", "source": "job list"}),
    ])
    received = [row("dc1", 99.0), row("dc1", 100.2), row("dc2", 103.25), row("dc2", 104.0)]
    timeline = recovery_timeline(journal, received, "dc2")
    assert timeline.phases() == {"down_detected": 2.0, "takeover": 2.5, "first_output": 3.25,
                                 "throughput_recovered": None}
    assert timeline.rto == 3.25
    assert check_takeover(timeline, "dc2", 3).passed
    assert not check_takeover(timeline, "dc2", 2).passed
    assert check_recovery_time(timeline, 4).passed
    verdict = check_recovery_time(timeline, 3)
    assert not verdict.passed and "3.25 s" in verdict.summary
    assert timeline.to_json()["sources"]["takeover"] == "job list (look)"


def test_deployment_stamps_and_emission_times_are_preferred(tmp_path: Path) -> None:
    journal = journal_with(tmp_path, [
        ("fault.effective", 100.0, {}),
        ("toolkit.remote_down", 102.08, {"dc": "dc2", "happened_at": 102.013, "source": "operator metrics"}),
        ("toolkit.takeover", 102.31, {"dc": "dc2", "happened_at": 102.2}),
    ])
    received = [row("dc2", 103.9, processed=103.1)]  # retrieved later than it was emitted
    timeline = recovery_timeline(journal, received, "dc2")
    assert timeline.phases()["down_detected"] == 2.013
    assert timeline.phases()["takeover"] == 2.2
    assert timeline.phases()["first_output"] == 3.1
    assert "dc time" in timeline.sources["down_detected"]


def test_down_is_inferred_from_the_takeover_when_the_toolkit_said_nothing(tmp_path: Path) -> None:
    journal = journal_with(tmp_path, [("fault.effective", 10.0, {}),
                                      ("toolkit.takeover", 13.0, {"dc": "dc2", "inferred": True, "source": "output"})])
    timeline = recovery_timeline(journal, [row("dc2", 13.5)], "dc2")
    assert timeline.phases()["down_detected"] == 3.0
    assert set(timeline.inferred) == {"takeover", "down_detected"}
    assert timeline.to_json()["inferred"] == ["takeover", "down_detected"]


def test_no_fault_no_output(tmp_path: Path) -> None:
    timeline = recovery_timeline(journal_with(tmp_path, []), [row("dc2", 5.0)], "dc2")
    assert timeline.rto is None
    assert not check_takeover(timeline, "dc2", 45).passed
    assert not check_recovery_time(timeline, 60).passed


def steady_then_gap(rate: float = 100.0, fault: float = 20.0, back: float = 23.0, slow_until: float = 23.0,
                    end: float = 30.0) -> list[ReceivedRow]:
    """dc1 at ``rate`` until the fault, nothing until ``back``, dc2 at half the rate until ``slow_until``,
    then at full rate."""
    rows = []
    for t in np.arange(0, end, 1 / rate):
        if t < fault:
            rows.append(row("dc1", float(t), i=len(rows)))
        elif t >= back and (t >= slow_until or round(float(t) * rate) % 2 == 0):
            rows.append(row("dc2", float(t), i=len(rows)))
    return rows


def test_baseline_and_throughput_back_in_the_band(tmp_path: Path) -> None:
    rows = steady_then_gap(slow_until=26.0)
    baseline = throughput_baseline(rows, 5.0, 15.0)
    assert baseline is not None and abs(baseline.mean - 100.0) <= 1.0 and baseline.samples == 10
    assert baseline.stddev < 1.0 and baseline.p50 == baseline.p95 == 100.0
    journal = journal_with(tmp_path, [("fault.effective", 20.0, {}), ("toolkit.takeover", 22.5, {"dc": "dc2"})])
    timeline = recovery_timeline(journal, rows, "dc2", old="dc1", baseline=baseline, fraction=0.9)
    recovered = timeline.phases()["throughput_recovered"]
    assert timeline.phases()["first_output"] == 3.0
    assert recovered is not None and 5.5 <= recovered <= 6.05  # half rate until 26 s, the window reaches into it
    assert check_throughput(timeline, 0.9, 7).passed
    verdict = check_throughput(timeline, 0.9, 5)
    assert not verdict.passed and "90% of the baseline (100 tuples/s)" in verdict.summary
    assert check_throughput(recovery_timeline(journal, rows, "dc2", baseline=None), 0.9, 60).passed is False


def test_throughput_that_never_recovers() -> None:
    times = np.array([float(t) for t in np.arange(0, 10, 0.1)])
    assert throughput_recovered_at(times, 0.0, rate=20.0, fraction=0.9) is None
    assert throughput_recovered_at(times, 0.0, rate=10.0, fraction=0.9) == 0.0


def test_no_failover_watch(tmp_path: Path) -> None:
    quiet = journal_with(tmp_path, [("fault.effective", 10.0, {}), ("toolkit.trace", 11.0, {"dc": "dc2"})])
    assert check_no_failover(quiet, 10.0, 40.0).passed
    busy = journal_with(tmp_path, [("fault.effective", 10.0, {}), ("toolkit.remote_down", 16.5, {"dc": "dc2"})])
    verdict = check_no_failover(busy, 10.0, 40.0)
    assert not verdict.passed and verdict.summary == "dc2 declared its remote DOWN 6.50 s into the 30 s watch."


def test_active_active_first_output_counts_only_the_failed_dcs_keys(tmp_path: Path) -> None:
    rows = [ReceivedRow(f"a{i}", "A", i, "dc1", i * 0.1, i * 0.1, i, 1.0, True) for i in range(1, 50)]
    rows += [ReceivedRow(f"b{i}", "B", i, "dc2", i * 0.1, i * 0.1, i, 1.0, True) for i in range(1, 100)]
    rows += [ReceivedRow(f"a{i}", "A", i, "dc2", i * 0.1, i * 0.1, i, 1.0, True) for i in range(70, 100)]
    journal = journal_with(tmp_path, [("fault.effective", 5.0, {})])
    timeline = recovery_timeline(journal, rows, "dc2", old="dc1")
    assert timeline.phases()["first_output"] == 2.0 and "keys dc1 served" in timeline.sources["first_output"]
