"""The skew test: `python -m lab skew` shifts what one data center reports, and the tester's NTP-style estimate
(support/clocks.py) finds the skew within its stated bound, from the REST and data exchange `Date` headers.

The lab's processes share one kernel clock, so the true offset is exactly the skew set. The skews are set back
to 0 whatever happens (finally)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from labprobes import collect, inject, sink_items, tuples
from labwire import CA, Lab, run_lab

from support.clocks import Clocks, Estimate, estimate_all

pytestmark = pytest.mark.lab

SKEWS = {"dc1": -1.5, "dc2": 3.0}
#: a bound wider than this would make the estimate useless for RTO phases measured in seconds
USEFUL_BOUND = 0.05


@dataclass
class Endpoint:
    """What a clock probe needs: a session (auth, CA) and a URL to GET."""

    root_url: str
    session: requests.Session


def _endpoints(lab: Lab) -> tuple[dict[str, Endpoint], dict[str, Endpoint]]:
    session = requests.Session()
    session.trust_env = False
    session.auth = lab.auth
    session.verify = str(CA)
    return ({dc: Endpoint(lab.root(dc), session) for dc in SKEWS},
            {dc: Endpoint(lab.data(dc), session) for dc in SKEWS})


def _set(dc: str, seconds: float) -> None:
    r = run_lab("skew", "--dc", dc, f"--by={seconds}s")  # --by=-1.5s: a negative value needs the = form
    assert r.returncode == 0, r.stderr


def _found(estimates: dict[str, Estimate | None]) -> dict[str, Estimate]:
    assert all(e is not None for e in estimates.values()), estimates
    return {dc: e for dc, e in estimates.items() if e is not None}


def test_the_estimate_finds_each_skew_within_its_bound(default_deployment: Lab) -> None:
    lab = default_deployment
    rest, exchange = _endpoints(lab)
    job = lab.job("dc1", "orders")
    assert job is not None
    try:
        before = _found(estimate_all(rest, exchange))
        for dc, e in before.items():  # one kernel clock: no skew, offset 0
            assert abs(e.offset_s) <= e.bound_s, (dc, e)
        for dc, seconds in SKEWS.items():
            _set(dc, seconds)
        shown = run_lab("skew")
        assert "dc1: -1.5 s" in shown.stdout and "dc2: +3 s" in shown.stdout, shown.stdout
        skewed = _found(estimate_all(rest, exchange))
        report = []
        for dc, seconds in SKEWS.items():
            e = skewed[dc]
            report.append(f"{dc}: skew {seconds:+g} s, estimate {e.offset_s:+.4f} s ± {e.bound_s:.4f} s "
                          f"({e.source}, {e.samples} exchanges, min rtt {1000 * (e.min_rtt_s or 0):.1f} ms)")
            assert abs(e.offset_s - seconds) <= e.bound_s, report[-1]
            assert e.bound_s <= USEFUL_BOUND, report[-1]
            for source, other in e.others.items():  # the other source finds it too, within its own bound
                assert abs(other["offset_s"] - seconds) <= other["bound_s"], (dc, source, other)
        print("\n".join(report))
        _reported_times_move(lab, job, Clocks(start=skewed))
    finally:
        for dc in SKEWS:
            _set(dc, 0.0)
    after = run_lab("skew")
    assert "dc1: +0 s" in after.stdout and "dc2: +0 s" in after.stdout, after.stdout


def _reported_times_move(lab: Lab, job: dict[str, Any], clocks: Clocks) -> None:
    """REST metrics, output tuples' processed_at and sink arrival times of dc1 are on its skewed clock; corrected
    by the estimate they fall back on the tester's timeline."""
    skew, bound = SKEWS["dc1"], clocks.bound("dc1") or 0.0
    sink_items(lab, "dc1", job)  # what is buffered already is not this test's
    t0 = time.time()
    metrics = lab.get(f"{job['operators']}/OrdersOut/inputports/0/metrics").json()["metrics"]
    t1 = time.time()
    stamp = metrics[0]["lastTimeRetrieved"] / 1000
    assert t0 - 0.002 <= stamp - skew <= t1 + 0.002, (t0, stamp, t1)
    key = f"clock-{uuid.uuid4().hex[:8]}"
    sent = time.time()
    inject(lab, "dc1", job, tuples(key, 2))
    out = collect(lab, "dc1", job, 2)
    got = time.time()
    for item in out:
        processed = float(item["processed_at"])
        assert sent - 0.002 <= processed - skew <= got + 0.002, (sent, processed, got)
        corrected = processed - clocks.offset("dc1")
        assert sent - bound - 0.002 <= corrected <= got + bound + 0.002
