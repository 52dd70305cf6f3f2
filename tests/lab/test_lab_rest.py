"""REST management API conformance basics (over HTTPS, verified against the lab CA)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from labwire import Lab, wait_until

pytestmark = pytest.mark.lab

PROBE = {
    "application": "orders_standby",
    "jobName": "rest_probe",
    # own crossdc ports and a long init delay: the probe never talks to anyone
    "submitParameters": [
        {"name": "crossDCHttpPort", "value": "26091"},
        {"name": "crossDCInitDelay", "value": "3600"},
    ],
}


def test_resources_root(lab: Lab) -> None:
    for dc in ("dc1", "dc2"):
        r = lab.get(f"{lab.root(dc)}/resources")
        assert r.status_code == 200
        res = r.json()["resources"]
        assert {"name": "instances", "resource": f"{lab.root(dc)}/instances"} in res


def test_instances_and_instance(lab: Lab) -> None:
    doc = lab.get(f"{lab.root('dc1')}/instances").json()
    assert doc["resourceType"] == "instanceList"
    assert doc["total"] == 1 and len(doc["instances"]) == 1
    inst = lab.get(lab.rest("dc1")).json()
    assert inst["id"] == "streams-dc1" and inst["restid"] == "streams-dc1"
    assert inst["resourceType"] == "instance" and inst["self"] == lab.rest("dc1")
    assert inst["status"] == "running" and inst["productVersion"] == "7.2.0.0"
    assert inst["activeVersion"]["productVersion"] == "7.2.0.0"
    for link in ("jobs", "pes", "operators", "hosts", "peConnections"):
        assert inst[link].startswith(lab.rest("dc1") + "/")
        assert lab.get(inst[link]).status_code == 200


def test_jobs_list_envelope_and_filters(default_deployment: Lab) -> None:
    lab = default_deployment
    doc = lab.get(f"{lab.rest('dc1')}/jobs").json()
    assert doc["resourceType"] == "jobList" and doc["total"] == len(doc["jobs"]) >= 1
    job = next(j for j in doc["jobs"] if j["name"] == "orders")
    for key in ("id", "name", "applicationName", "status", "health", "submitTime", "jobGroup", "submitParameters"):
        assert key in job
    assert job["status"] == "running" and job["health"] == "healthy" and isinstance(job["id"], str)
    assert job["self"] == f"{lab.rest('dc1')}/jobs/{job['id']}" and job["resourceType"] == "job"
    assert lab.get(f"{lab.rest('dc1')}/jobs", params={"name": "nope"}).json()["total"] == 0
    slim = lab.get(f"{lab.rest('dc1')}/jobs", params={"name": "orders", "fields": "name"}).json()["jobs"][0]
    assert set(slim) == {"name", "self", "restid", "resourceType"}


def test_401_without_or_with_bad_credentials(lab: Lab) -> None:
    for auth in (None, ("streamsadmin", "wrong-password")):
        r = lab.get(f"{lab.rest('dc1')}/jobs", auth=auth)
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"] == 'Basic realm="streams"'
        assert r.json()["id"].startswith("CDISW")
    r = lab.get(f"{lab.data('dc1')}", auth=None)
    assert r.status_code == 401


def test_404_error_body(lab: Lab) -> None:
    for url in (
        f"{lab.rest('dc1')}/jobs/99999",
        f"{lab.rest('dc1')}/pes/99999",
        f"{lab.root('dc1')}/instances/streams-nope",
    ):
        r = lab.get(url)
        assert r.status_code == 404, url
        body = r.json()
        assert body["id"] == "CDISW5000E" and body["message"].startswith("CDISW5000E ")


def test_submit_conflict_and_unknown_application(default_deployment: Lab) -> None:
    lab = default_deployment
    r = lab.post(f"{lab.rest('dc1')}/jobs", json={"application": "orders"})
    assert r.status_code == 409 and r.json()["id"] == "CDISW5000E"
    r = lab.post(f"{lab.rest('dc1')}/jobs", json={"application": "no_such_bundle"})
    assert r.status_code == 404 and r.json()["id"] == "CDISW5000E"


def test_submit_pes_cancel(lab: Lab) -> None:
    r = lab.post(f"{lab.rest('dc1')}/jobs", json=PROBE)
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["name"] == "rest_probe" and job["applicationName"] == "orders_standby"
    assert {"name": "crossDCInitDelay", "value": "3600"} in job["submitParameters"]

    def running_pes() -> list[dict[str, object]] | None:
        pes = lab.get(job["pes"]).json()["pes"]
        return pes if pes and all(p["status"] == "running" for p in pes) else None

    pes = wait_until(running_pes, 5, "the probe's PEs to run")
    pids = []
    for pe in pes:
        assert pe["resourceType"] == "pe" and pe["launchCount"] == 1 and pe["health"] == "healthy"
        pid = int(str(pe["processId"]))
        os.kill(pid, 0)  # a real, live process
        assert b"lab.pe" in Path(f"/proc/{pid}/cmdline").read_bytes()
        pids.append(pid)
        metrics = lab.get(str(pe["metrics"])).json()
        assert metrics["resourceType"] == "metricList"
        assert {"nCpuMilliseconds", "nResidentMemoryConsumption"} <= {m["name"] for m in metrics["metrics"]}
        trace = lab.get(str(pe["applicationTrace"]))
        assert trace.status_code == 200 and trace.headers["Content-Type"].startswith("text/plain")
    filtered = lab.get(f"{lab.rest('dc1')}/pes", params={"job.restid": job["id"]}).json()
    assert {p["id"] for p in filtered["pes"]} == {p["id"] for p in pes}

    r = lab.delete(job["self"])
    assert r.status_code == 204
    assert lab.get(job["self"]).status_code == 404
    assert lab.delete(job["self"]).status_code == 404
    for pid in pids:
        assert not _alive(pid)


def test_operator_metrics(default_deployment: Lab) -> None:
    lab = default_deployment
    job = lab.job("dc1", "orders")
    assert job is not None
    ops = lab.get(job["operators"]).json()
    names = {o["name"] for o in ops["operators"]}
    assert {"OrdersIn", "Aggregator", "OrdersOut", "CrossDCFailover.RemoteDataCenterHeartbeatWatchdog"} <= names
    wd = f"{job['operators']}/CrossDCFailover.RemoteDataCenterHeartbeatWatchdog"
    inp = {m["name"]: m["value"] for m in lab.get(f"{wd}/inputports/0/metrics").json()["metrics"]}
    out = {m["name"]: m["value"] for m in lab.get(f"{wd}/outputports/0/metrics").json()["metrics"]}
    assert inp["nTuplesProcessed"] >= 1  # heartbeats received from dc2
    assert out["nTuplesSubmitted"] == 1  # one transition so far: UP


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_pe_crash_is_relaunched(default_deployment: Lab) -> None:
    lab = default_deployment
    job = lab.job("dc1", "orders")
    assert job is not None
    sink = next(p for p in lab.get(job["pes"]).json()["pes"] if p["indexWithinJob"] == 2)
    old_pid = int(sink["processId"])
    t0 = time.time()
    os.kill(old_pid, signal.SIGKILL)

    def relaunched() -> dict[str, Any] | None:
        pe = lab.get(sink["self"]).json()
        return pe if pe["launchCount"] == sink["launchCount"] + 1 and pe["status"] == "running" else None

    pe = wait_until(relaunched, 10, "the sink PE to be relaunched")
    assert pe["statusReason"] == "crash" and int(pe["processId"]) != old_pid
    os.kill(int(pe["processId"]), 0)
    crashed = [e for e in lab.events("pe_crashed", "dc1", since=t0) if e["pe_id"] == sink["id"]]
    assert crashed and crashed[0]["pid"] == old_pid
    wait_until(lambda: lab.get(job["self"]).json()["health"] == "healthy", 5, "the job to be healthy again")
