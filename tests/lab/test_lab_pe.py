"""PE life cycle (issue 3 item 2): real processes, crash relaunch, stopped PE unhealthy, sink buffer loss."""

from __future__ import annotations

import os
import signal
import time
import uuid
from typing import Any

import pytest
from labprobes import events, inject, operator_port_metric, pe, sink_items, stopped, tuples, wait_event
from labwire import Lab, wait_until

pytestmark = pytest.mark.lab


def _orders(lab: Lab) -> dict[str, Any]:
    job = lab.job("dc1", "orders")
    assert job is not None
    return job


def test_crashed_pe_is_relaunched_through_restarting(default_deployment: Lab) -> None:
    lab = default_deployment
    job = _orders(lab)
    sink = pe(lab, job, 2)
    old_pid = int(sink["processId"])
    t0 = time.time()
    seen: list[tuple[str, str, str]] = []  # (pe status, pe statusReason, job health) as polled
    os.kill(old_pid, signal.SIGKILL)

    def relaunched() -> dict[str, Any] | None:
        doc: dict[str, Any] = lab.get(sink["self"]).json()
        seen.append((doc["status"], doc["statusReason"], lab.get(job["self"]).json()["health"]))
        return doc if doc["launchCount"] == sink["launchCount"] + 1 and doc["status"] == "running" else None

    doc = wait_until(relaunched, 10, "the sink PE to be relaunched", interval=0.005)
    assert doc["statusReason"] == "crash" and int(doc["processId"]) != old_pid
    os.kill(int(doc["processId"]), 0)
    crashed = [e for e in events(lab, "pe_crashed", job, since=t0) if e["pe_id"] == sink["id"]]
    assert crashed and crashed[0]["pid"] == old_pid
    assert crashed[0]["status"] == "restarting" and crashed[0]["job_health"] == "partiallyHealthy"
    started = [e for e in events(lab, "pe_started", job, since=t0) if e["pe_id"] == sink["id"]]
    assert started and started[0]["launch_count"] == sink["launchCount"] + 1
    # observed over the wire: restarting (reason crash) while the job is partially healthy, then running
    assert ("restarting", "crash", "partiallyHealthy") in seen, seen
    wait_until(lambda: lab.get(job["self"]).json()["health"] == "healthy", 5, "the job to be healthy again")


def test_stopped_pe_is_reported_unhealthy_until_continued(default_deployment: Lab) -> None:
    lab = default_deployment
    job = _orders(lab)
    sink = pe(lab, job, 2)
    pid = int(sink["processId"])
    t0 = time.time()
    with stopped(pid):
        doc = wait_until(
            lambda: (d := lab.get(sink["self"]).json())["health"] == "unhealthy" and d,
            3,
            "the stopped PE to be reported unhealthy",
        )
        detected = time.time() - t0
        assert doc["status"] == "running" and doc["processId"] == str(pid)  # still running: only its heartbeat stopped
        assert lab.get(job["self"]).json()["health"] == "partiallyHealthy"
        wait_event(lab, "pe_unresponsive", job, since=t0)
        t_cont = time.time()
    wait_until(lambda: lab.get(sink["self"]).json()["health"] == "healthy", 3, "the PE to be healthy again")
    assert wait_event(lab, "pe_responsive", job, since=t_cont)["pid"] == pid
    assert lab.get(sink["self"]).json()["launchCount"] == sink["launchCount"]  # not restarted
    print(f"SIGSTOP -> unhealthy over REST after {detected:.2f} s")
    assert detected < 1.5


def test_killing_the_sink_pe_loses_its_buffered_tuples(default_deployment: Lab) -> None:
    lab = default_deployment
    job = _orders(lab)
    sink_items(lab, "dc1", job)  # drain
    before = operator_port_metric(lab, job, "OrdersOut", "inputports", "nTuplesProcessed")
    key = f"cust-{uuid.uuid4().hex[:8]}"
    inject(lab, "dc1", job, tuples(key, 20))
    wait_until(
        lambda: operator_port_metric(lab, job, "OrdersOut", "inputports", "nTuplesProcessed") >= before + 20,
        5,
        "20 tuples buffered in the sink",
    )
    sink = pe(lab, job, 2)
    os.kill(int(sink["processId"]), signal.SIGKILL)
    wait_until(
        lambda: (d := lab.get(sink["self"]).json())["status"] == "running" and d["launchCount"] > sink["launchCount"],
        10,
        "the sink PE relaunched",
    )
    assert sink_items(lab, "dc1", job) == []  # the 20 buffered tuples died with the process
    inject(lab, "dc1", job, tuples(key, 1, start=20))
    out = wait_until(lambda: sink_items(lab, "dc1", job), 5, "output after the relaunch")
    assert [o["id"] for o in out] == [f"{key}-20"] and out[0]["count_for_key"] == 21  # the aggregator kept its state
