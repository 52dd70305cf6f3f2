"""support/clocks.py: NTP-style offsets from stamps of a simulated data center clock (no lab, no network)."""

from __future__ import annotations

import math
import random

import pytest
import requests

from support import clocks
from support.clocks import Clocks, Estimate, Sample, combine, error_bound, http_date, probe


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
