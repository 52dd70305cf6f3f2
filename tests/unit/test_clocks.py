"""support/clocks.py: NTP-style offsets from stamps of a simulated data center clock (no lab, no network)."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from typing import Any

import pytest
import requests

from support import clocks
from support.clocks import Clocks, Estimate, Sample, combine, error_bound, http_date, probe
from support.data.contract import ORDERS
from support.data.ledger import ReceivedRow
from support.measure import check_detection, check_recovery_time, check_takeover, recovery_timeline
from support.orchestration import Journal
from support.reporting.html import render
from support.reporting.judged import bound_text, shown
from support.reporting.summary import with_drift
from support.toolkit import StandbyWatch, ToolkitNames
from support.traffic import received_columns


class FakeDC:
    """A data center whose clock runs ``offset`` s ahead of the tester's; each exchange takes ``rtt`` s (a random
    share of it before the stamp) on a virtual tester clock."""

    def __init__(self, offset: float, rtt: float, resolution: float = 1.0, seed: int = 1, start: float = 1e9 + 0.37
                 ) -> None:
        self.offset, self.rtt, self.resolution = offset, rtt, resolution
        self.now = start
        self.random = random.Random(seed)
        self.reads = 0

    def clock(self) -> float:
        return self.now

    def wait(self, seconds: float) -> None:
        self.now += max(0.0, seconds)

    def read(self) -> float:
        self.reads += 1
        jitter = self.rtt * (0.5 + self.random.random())  # round trips vary from 0.5 to 1.5 rtt
        before = jitter * self.random.random()
        self.now += before
        stamp = math.floor((self.now + self.offset) / self.resolution) * self.resolution
        self.now += jitter - before
        return stamp


@pytest.mark.parametrize("offset", [0.0, 3.0, -1.5, 0.4321, -7.9999])
def test_date_header_probe_finds_the_offset_within_about_a_round_trip(offset: float) -> None:
    dc = FakeDC(offset, rtt=0.003)
    start = dc.now
    found = probe(dc.read, "rest Date", 1.0, clock=dc.clock, wait=dc.wait)
    assert found is not None and found.consistent
    assert abs(found.offset_s - offset) <= found.bound_s
    assert found.bound_s <= 0.01  # from half a second (one Date header) down to a few round trips
    assert dc.now - start <= clocks.MAX_SECONDS + 0.1
    assert found.samples <= clocks.MAX_SAMPLES


@pytest.mark.parametrize("offset", [0.0, 3.0, -1.5, 0.4321, -7.9999])
def test_a_prior_aims_the_probe_at_the_turn_over_and_it_ends_in_one_pass(offset: float) -> None:
    """The end of a drill, aimed by its start estimate (20 s earlier, 2 ms off): as narrow, in one pass (at most a
    second, not about two). Ten minutes later the drift allowance (500 ppm) widens the window: no slower, as
    narrow."""
    start = Estimate(offset + 0.002, 0.003, "rest Date", 1e9 - 20)
    prior = clocks.prior_of(start, 1e9)
    assert prior is not None and prior[1] - prior[0] == pytest.approx(2 * (0.003 + clocks.PRIOR_MARGIN + 0.01))
    aimed, plain = FakeDC(offset, rtt=0.003), FakeDC(offset, rtt=0.003)
    found = probe(aimed.read, "rest Date", 1.0, clock=aimed.clock, wait=aimed.wait, prior=prior)
    alone = probe(plain.read, "rest Date", 1.0, clock=plain.clock, wait=plain.wait)
    assert found is not None and alone is not None and found.consistent
    assert abs(found.offset_s - offset) <= found.bound_s <= 0.01
    assert aimed.now - 1e9 - 0.37 <= 1.0 < plain.now - 1e9 - 0.37  # one pass; without the prior, two
    later = FakeDC(offset, rtt=0.003)
    found = probe(later.read, "rest Date", 1.0, clock=later.clock, wait=later.wait,
                  prior=clocks.prior_of(replace(start, at=1e9 - 600), 1e9))
    assert found is not None and abs(found.offset_s - offset) <= found.bound_s <= 0.01
    assert later.now <= plain.now + 0.01  # (a round trip or so either way)


@pytest.mark.parametrize("stepped_by", [0.25, -0.6, 2.0])
def test_a_prior_the_exchanges_contradict_is_dropped(stepped_by: float) -> None:
    """The clock was stepped since the start estimate: the probe finds the new offset from its exchanges alone."""
    dc = FakeDC(1.2 + stepped_by, rtt=0.003)
    found = probe(dc.read, "rest Date", 1.0, clock=dc.clock, wait=dc.wait,
                  prior=clocks.prior_of(Estimate(1.2, 0.003, "rest Date", 1e9), 1e9))
    assert found is not None and found.consistent
    assert abs(found.offset_s - (1.2 + stepped_by)) <= found.bound_s <= 0.01


def test_no_prior_from_a_missing_or_inconsistent_estimate() -> None:
    assert clocks.prior_of(None, 1e9) is None
    assert clocks.prior_of(Estimate(1.0, 0.5, "x", 1e9, consistent=False), 1e9) is None


def test_fine_stamps_take_the_smallest_round_trip() -> None:
    dc = FakeDC(2.5, rtt=0.004, resolution=0.001)
    found = probe(dc.read, "metrics", 0.001, clock=dc.clock, wait=dc.wait)
    assert found is not None
    assert abs(found.offset_s - 2.5) <= found.bound_s <= 0.004
    assert dc.reads <= 8


def test_one_exchange_is_ntp() -> None:
    s = Sample(t0=100.0, t1=100.2, stamp=103.05, resolution=0.001)
    found = combine([s], "x")
    assert found is not None
    assert found.offset_s == pytest.approx(103.05 + 0.0005 - 100.1)
    assert found.bound_s == pytest.approx(0.1 + 0.0005)


def test_contradicting_exchanges_fall_back_to_the_smallest_round_trip() -> None:
    quick = Sample(10.0, 10.01, 15.0, 0.001)
    stepped = Sample(11.0, 11.5, 11.0, 0.001)  # the clock was stepped back between the two
    found = combine([quick, stepped], "x")
    assert found is not None and not found.consistent
    assert found.offset_s == pytest.approx(combine([quick], "x").offset_s)  # type: ignore[union-attr]


def test_no_answer_gives_no_estimate() -> None:
    dc = FakeDC(0.0, 0.003)
    assert probe(lambda: None, "x", clock=dc.clock, wait=dc.wait) is None


def test_error_bound_sums_the_clocks_and_their_drift() -> None:
    table = Clocks(start={"dc1": Estimate(0.1, 0.002, "rest Date", 1.0), "dc2": Estimate(3.0, 0.003, "x", 1.0)},
                   end={"dc1": Estimate(0.105, 0.002, "rest Date", 9.0)})
    assert table.bound("dc1") == pytest.approx(0.007)  # 2 ms bound + 5 ms drift
    assert error_bound(table, ["dc1", "dc2"]) == pytest.approx(0.010)
    assert error_bound(table, []) == 0.0
    assert error_bound(table, ["dc3"]) is None
    assert table.offset("dc2") == 3.0 and table.offset("dc3") == 0.0
    doc = table.to_json()
    assert doc["dc1"]["drift_s"] == pytest.approx(0.005) and "end" not in doc["dc2"]
    again = Clocks.from_json(doc)
    assert again.offsets() == table.offsets() and again.bound("dc1") == pytest.approx(0.007)


def test_http_date() -> None:
    response = requests.Response()
    response.headers["Date"] = "Sun, 06 Dec 2026 21:40:05 GMT"
    assert http_date(response) == pytest.approx(_epoch(2026, 12, 6, 21, 40, 5))
    response.headers["Date"] = "not a date"
    assert http_date(response) is None


def _epoch(*parts: int) -> float:
    import calendar
    return float(calendar.timegm((*parts, 0, 0, 0)))


def test_estimate_dc_keeps_the_narrowest_source_and_the_others() -> None:
    fine = FakeDC(1.0, 0.003, resolution=0.001)
    slow = FakeDC(1.0, 0.05, seed=2)  # a Date header over a slow path: a wider bound

    def probe_with(dc: FakeDC) -> clocks.Estimate | None:
        return probe(dc.read, "x", dc.resolution, clock=dc.clock, wait=dc.wait)

    found = {name: probe_with(dc) for name, dc in (("fine", fine), ("slow", slow))}
    assert found["fine"] is not None and found["slow"] is not None
    assert found["fine"].bound_s < found["slow"].bound_s
    best = clocks.estimate_dc({"fine": FakeDC(1.0, 0.003, resolution=0.001).read, "silent": lambda: None},
                              resolution=0.001)
    assert best is not None and best.source == "fine" and best.others == {}


# ------------------------------------------------------------------ phases that mix clocks state their bound


def _journal(tmp_path: Any, events: list[tuple[str, float, dict[str, Any]]]) -> Journal:
    journal = Journal(tmp_path / "j.jsonl", "s")
    for name, t, fields in events:
        entry = journal.record(name, **fields)
        object.__setattr__(entry, "t", t)  # pin the time for the test
    return journal


def _row(dc: str, t: float, processed: float, i: int = 0) -> ReceivedRow:
    return ReceivedRow(f"x{i}", "k", 1, dc, t, processed, 1, 1.0, True)


TABLE = Clocks(start={"dc1": Estimate(-1.5, 0.002, "rest Date", 1.0), "dc2": Estimate(3.0, 0.004, "rest Date", 1.0)})


def test_a_phase_dated_by_a_data_center_states_that_clock_s_bound(tmp_path: Any) -> None:
    journal = _journal(tmp_path, [
        ("fault.effective", 100.0, {"kind": "dark"}),
        ("toolkit.remote_down", 102.08, {"dc": "dc2", "happened_at": 102.013, "source": "operator metrics"}),
        ("toolkit.takeover", 102.5, {"dc": "dc2", "source": "job list"}),  # a look: the tester's clock
    ])
    received = [_row("dc1", 99.5, 99.4), _row("dc2", 103.9, 103.1, 1)]
    line = recovery_timeline(journal, received, "dc2", old="dc1", clocks=TABLE)
    doc = line.to_json()
    assert doc["error_bound_s"] == {"down_detected": 0.004, "takeover": 0.0, "first_output": 0.004, "rto": 0.004}
    assert doc["clocks_used"] == {"down_detected": ["dc2"], "first_output": ["dc2"], "rto": ["dc2"]}
    unknown = recovery_timeline(journal, received, "dc2", old="dc1").to_json()  # no estimate: the bound is unknown
    assert unknown["error_bound_s"]["first_output"] is None
    assert "reported dc1 DOWN 2.01 s ± 4 ms after the fault" in check_detection(line, "dc1", 5).summary
    assert "dc2 took over 2.50 s after the fault" in check_takeover(line, "dc2", 5).summary  # a look: no bound
    assert "from dc2 3.10 s ± 4 ms after the fault" in check_recovery_time(line, 5).summary


def test_outputs_of_a_skewed_data_center_land_on_the_tester_s_timeline() -> None:
    items = [{"id": "a", "key": "k", "seq": 1, "dc": "dc2", "processed_at": 1003.25},
             {"id": "b", "key": "k", "seq": 2, "dc": "dc1", "processed_at": 998.75},
             {"id": "c", "key": "k", "seq": 3, "dc": "dc1", "processed_at": 0}]
    columns = received_columns(ORDERS, items, "dc2", 1001.0, TABLE.offsets())
    assert columns["processed_at"] == [1000.25, 1000.25, 0]  # 0: not stamped, stays so


def test_trace_stamps_of_a_skewed_data_center_are_corrected(tmp_path: Any) -> None:
    journal = _journal(tmp_path, [])
    stamps = "\n".join([
        "2026-12-06T21:40:03.500Z INFO [Application_Logic] Received a notification about the remote data center "
        "going down", ""])
    watch = StandbyWatch("dc2", lambda offset: stamps if offset == 0 else "", lambda: 0, ToolkitNames(), journal,
                         clock_offset=3.0)
    watch.look()
    down = journal.last("toolkit.remote_down")
    assert down is not None and down.fields["happened_at"] == pytest.approx(_epoch(2026, 12, 6, 21, 40, 0) + 0.5)


def test_the_summary_adds_the_drift_and_reports_show_the_bound() -> None:
    record = {"name": "s", "rto_s": 3.1, "recovery": {"error_bound_s": {"first_output": 0.004, "rto": 0.004,
                                                                          "takeover": 0.0},
                                                        "clocks_used": {"first_output": ["dc2"], "rto": ["dc2"]}}}
    table = Clocks(start=TABLE.start, end={"dc2": Estimate(3.01, 0.004, "rest Date", 9.0)})
    drifted = with_drift(record, table)
    assert drifted["recovery"]["error_bound_s"] == {"first_output": 0.014, "rto": 0.014, "takeover": 0.0}
    assert record["recovery"]["error_bound_s"]["rto"] == 0.004  # the record itself is left alone
    split = {"keys": 0, "error_bound_s": 0.004, "clocks_used": ["dc2"]}
    assert with_drift({**record, "split_brain": split}, table)["split_brain"]["error_bound_s"] == 0.014
    assert with_drift({**record, "split_brain": {**split, "error_bound_s": None}}, table)["split_brain"][
        "error_bound_s"] is None
    assert bound_text(drifted, "rto") == "± 14 ms" and bound_text(drifted, "takeover") == ""
    assert shown(drifted, "rto").value == "3.10 s ± 14 ms"
    assert "± 14 ms" in render({"run_id": "r", "status": "passed", "totals": {}, "scenarios": [
        {**drifted, "status": "passed", "phases_s": {"first_output": 3.1}}], "clocks": table.to_json()})


def test_the_lab_skew_switch_takes_effect_at_once(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from lab import clock, paths

    monkeypatch.setattr(paths, "LAB_DIR", tmp_path)
    monkeypatch.setattr(clock, "_bound", None)
    clock.bind("dc2")
    assert clock.skew() == 0.0
    clock.set_skew("dc2", 3.0)
    assert clock.skew() == 3.0 and clock.skew("dc1") == 0.0
    assert abs(clock.now() - 3.0 - __import__("time").time()) < 0.05
    clock.set_skew("dc2", -1.25)  # a change is seen on the next stamp (the file is re-read when it changes)
    assert clock.skew() == -1.25
    assert "dc2: -1.25 s" in clock.describe()
    clock.reset()
    assert clock.skew() == 0.0 and not list(tmp_path.iterdir())
    assert clock.parse_seconds("-1500ms") == -1.5 and clock.parse_seconds("2.5s") == 2.5


def test_summary_json_carries_the_clocks_and_validates(tmp_path: Any) -> None:
    from support.reporting.summary import build_summary, validate_summary, write_run_meta

    table = Clocks(start=dict(TABLE.start), end={"dc1": Estimate(-1.4995, 0.003, "rest Date", 9.0),
                                                 "dc2": Estimate(3.0, 0.004, "data exchange Date", 9.0)})
    write_run_meta(tmp_path, {"run_id": "r", "clocks": table.to_json()})
    summary = build_summary(tmp_path)
    validate_summary(summary)
    assert summary["clocks"]["dc1"]["drift_s"] == pytest.approx(0.0005)
    assert summary["clocks"]["dc2"]["end"]["source"] == "data exchange Date"
    assert set(summary["clocks"]["dc1"]["start"]) >= {"offset_s", "bound_s", "source", "at"}


def test_an_imprecise_end_estimate_widens_the_bound_only_as_far_as_it_must() -> None:
    start = {"dc1": Estimate(0.0009, 0.0022, "rest Date", 1.0)}
    inside = Clocks(start=start, end={"dc1": Estimate(0.0005, 0.001, "rest Date", 9.0)})  # within the start bound
    assert inside.drift_allowance("dc1") == 0.0 and inside.bound("dc1") == pytest.approx(0.0022)
    coarse = Clocks(start=start, end={"dc1": Estimate(0.0134, 0.0169, "rest Date", 9.0)})
    # the offset may have moved anywhere up to 13.4 + 16.9 ms from where the start estimate put it
    assert coarse.bound("dc1") == pytest.approx(0.0134 - 0.0009 + 0.0169)
