"""The skew test: `python -m lab skew` shifts what one data center reports, and the tester's NTP-style estimate
(support/clocks.py) finds the skew within its stated bound, from the REST and data exchange `Date` headers; a
failover measured under skew still matches the lab's ground truth within the phases' stated error bounds.

The lab's processes share one kernel clock, so the true offset is exactly the skew set, and the ground truth
(true time) is on the tester's clock. The skews are set back to 0 whatever happens (finally)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from labprobes import collect, inject, sink_items, tuples
from labwire import CA, ROOT, Lab, run_lab, truth_instants

from support.clocks import Clocks, Estimate, estimate_all
from support.config import load_config
from support.judge import facts
from support.world import RunContext, World

pytestmark = pytest.mark.lab

SKEWS = {"dc1": -1.5, "dc2": 3.0}
#: a bound wider than this would make the estimate useless for RTO phases measured in seconds
USEFUL_BOUND = 0.05
#: what a phase may be off besides its clock bound: the tester's own look at the fault (tests/integration
#: test_accuracy.py measures a p95 of a few ms; one failover here, so with room)
LOOK_ERROR = 0.1


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


def _truth_phases(truth: list[dict[str, Any]], fault_t: float) -> dict[str, float]:
    """The failover's phases as the lab recorded them (true time)."""
    real = truth_instants(truth, fault_t)
    return {name: real[name] - real["fault_effective"] for name in ("down_detected", "takeover", "first_output")}


def test_a_failover_under_skew_matches_the_ground_truth(lab: Lab, tmp_path: Any) -> None:
    """Driven in-process as tests/integration/test_accuracy.py does: dc1 (the active) 1.5 s behind, dc2 (the
    standby) 3 s ahead; uncorrected, the takeover and first output would be 3 s late."""
    run_id = time.strftime("clocks-%H%M%S")
    config = load_config(str(ROOT / "config" / "lab.yaml"), [f"run.reports_dir={tmp_path}"], run_id=run_id)
    run = RunContext.open(config, run_id, tmp_path / run_id)
    try:
        for dc, seconds in SKEWS.items():
            _set(dc, seconds)
        found = _found(run.measure_clocks("start"))
        world = World(run, "clocks", "failover under skew", [])
        try:
            world.deploy_active_passive("orders", "dc1", "dc2")
            world.start_traffic(100)
            world.wait_steady(2)
            world.cancel_job("orders", "dc1")
            world.claim("takeover", dc="dc2", within=10)
            world.claim("recovery_time", limit=10)
            line = facts.timeline(world.history())
        finally:
            errors = world.close()
        assert not errors, errors
    finally:
        for dc in SKEWS:
            _set(dc, 0.0)
        run.close()
    assert line.fault_effective is not None
    real = _truth_phases(lab.truth(), line.fault_effective)
    report = [f"{dc}: estimate {e.offset_s:+.4f} s ± {e.bound_s:.4f} s" for dc, e in found.items()]
    for phase, true in real.items():
        measured = line.phases()[phase]
        bound = line.error_bounds.get(phase, 0.0)
        assert measured is not None and bound is not None, (phase, line.to_json())
        report.append(f"{phase}: measured {measured:.3f} s, truth {true:.3f} s, error {measured - true:+.4f} s, "
                      f"clock bound {bound:.4f} s ({', '.join(line.clocks_used.get(phase, ())) or 'tester'})")
        assert abs(measured - true) <= bound + LOOK_ERROR, report[-1]
    assert line.clocks_used.get("first_output") == ("dc2",)  # dated by dc2's (skewed, corrected) processed_at
    print("\n".join(report))
