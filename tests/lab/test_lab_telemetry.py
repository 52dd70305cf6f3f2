"""The lab's second application, `telemetry` (Readings -> Peak -> Alerts, alias TelemetryXDC), covered as `orders`
is: its topology in REST, the data exchange and the exporter; its output; the failover of its active/passive
deployment (`lab reset --app telemetry`: telemetry in dc1, the standalone stub in dc2 running
telemetry-failover-restoring.sh) with the state restored; its active/active deployment. Its defect switches are
in test_lab_defects.py.

The module deploys telemetry (which takes the DCs' toolkit ports: orders is canceled meanwhile) and leaves the
default orders deployment behind.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from labprobes import collect, events, inject, readings, sink_items, wait_event
from labwire import ADDR, LAB_DIR, Lab, run_lab, wait_until
from openapi_spec_validator import validate

pytestmark = pytest.mark.lab

OUT_FIELDS = {"deviceId", "trackingId", "readingsSoFar", "peakReading"}


def _reset(*args: str) -> None:
    r = run_lab("reset", *args)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture(scope="module")
def orders_afterwards(lab: Lab) -> Iterator[None]:
    yield
    _reset()


@pytest.fixture()
def telemetry(lab: Lab, orders_afterwards: None) -> Lab:
    """Telemetry in dc1, its passive stub in dc2 (deployed if a test changed that)."""
    d1, stub = lab.job("dc1", "telemetry"), lab.standby()
    if not (d1 and d1["health"] == "healthy" and stub) or lab.job("dc2", "telemetry"):
        _reset("--app", "telemetry")
    return lab


def _job(lab: Lab, dc: str = "dc1") -> dict[str, Any]:
    job = lab.job(dc, "telemetry")
    assert job is not None and job["health"] == "healthy", job
    return job


def test_topology_in_rest_data_exchange_and_exporter(telemetry: Lab) -> None:
    lab = telemetry
    job = _job(lab)
    assert job["applicationName"] == "telemetry::Telemetry" and lab.job("dc1", "orders") is None
    params = {p["name"]: p["value"] for p in job["submitParameters"]}
    assert params["configFileName"] == str(LAB_DIR / "dc1" / "crossdc" / "telemetry.cfg")
    ops = {o["name"]: o for o in lab.get(job["operators"]).json()["operators"]}
    assert {"Readings", "Peak", "Alerts", "SpecialMessagePort", "TelemetryXDC.HeartbeatMessagePreparer"} <= set(ops)
    assert not [n for n in ops if n.startswith("Orders")]
    assert ops["Readings"]["operatorKind"] == "spl.endpoint::EndpointSource"
    assert ops["Peak"]["operatorKind"] == "telemetry::Peak"
    assert ops["Alerts"]["operatorKind"] == "spl.endpoint::EndpointSink"
    listed = next(j for j in lab.get(lab.data("dc1")).json()["jobs"] if j["jobId"] == job["id"])
    assert {e["kind"]: e["operator"] for e in listed["endpoints"]} == {"source": "Readings", "sink": "Alerts"}
    api = lab.get(listed["openapi"]).json()
    validate(api)
    schemas = api["components"]["schemas"]
    fields_in = set(schemas["InTuple"]["properties"])
    assert {"deviceId", "reading", "region", "trackingId", "readingSeq", "sentAt"} <= fields_in
    assert set(schemas["OutTuple"]["properties"]) == OUT_FIELDS and not schemas["OutTuple"]["additionalProperties"]
    assert any(p.endswith("/Alerts/ports/0/tuples") for p in api["paths"])
    # the exporter lists the telemetry operators under the job
    device = f"exp-{uuid.uuid4().hex[:6]}"
    inject(lab, "dc1", job, readings(device, 3))
    collect(lab, "dc1", job, 3)

    def peak_processed() -> bool:
        text = lab.http.get(f"http://{ADDR['dc1']}:25500/metrics", timeout=10).text
        return any('operatorname="Peak"' in line and 'jobname="telemetry"' in line
                   and "streams_operator_ip_nTuplesProcessed" in line and not line.endswith(" 0")
                   for line in text.splitlines())

    wait_until(peak_processed, 30, "the exporter to count Peak's input")
    # the standby stub runs the telemetry failover script with the telemetry standby config
    stub = lab.standby()
    assert stub is not None
    assert "standalone telemetry::TelemetryStandby" in (LAB_DIR / "logs" / "dc2-standalone.log").read_text()


def test_output_counts_readings_and_keeps_the_peak_per_device(telemetry: Lab) -> None:
    lab = telemetry
    job = _job(lab)
    sink_items(lab, "dc1", job)
    a, b = f"dev-{uuid.uuid4().hex[:6]}", f"dev-{uuid.uuid4().hex[:6]}"
    inject(lab, "dc1", job, [*readings(a, 4, values=[3.5, -2.0, 7.25, 1.0]), *readings(b, 2, values=[-40.0, -41.0])])
    out = collect(lab, "dc1", job, 6)
    assert all(set(o) == OUT_FIELDS for o in out), out  # no checksum, no time, no DC
    got = {(o["trackingId"], o["readingsSoFar"], o["peakReading"]) for o in out}
    assert got == {(f"{a}-0", 1, 3.5), (f"{a}-1", 2, 3.5), (f"{a}-2", 3, 7.25), (f"{a}-3", 4, 7.25),
                   (f"{b}-0", 1, -40.0), (f"{b}-1", 2, -40.0)}
    assert [o["readingsSoFar"] for o in out if o["deviceId"] == a] == [1, 2, 3, 4]  # in order per device


def test_failover_continues_from_the_restored_counts_and_peaks(telemetry: Lab) -> None:
    lab = telemetry
    job1 = _job(lab)
    sink_items(lab, "dc1", job1)
    device = f"fo-{uuid.uuid4().hex[:6]}"
    inject(lab, "dc1", job1, readings(device, 5, values=[10.0, 55.5, 20.0, 30.0, 12.0]))
    assert collect(lab, "dc1", job1, 5)[-1]["peakReading"] == 55.5
    processed = time.time()
    sent = wait_until(lambda: [e for e in events(lab, "snapshot_sent", job1, since=processed)
                               if e["taken_at"] > processed], 10, "a snapshot after the readings")[0]
    stored = wait_until(lambda: [e for e in lab.events("snapshot_stored", "dc2", since=processed)
                                 if e["digest"] == sent["digest"]], 10, "dc2 to store it")[0]
    assert stored["snapshot_origin"] == "Peak" and stored["file"].endswith("/dc1-Peak.snapshot")
    t_cancel = time.time()
    assert lab.delete(job1["self"]).status_code == 204
    job2 = wait_until(lambda: (j := lab.job("dc2", "telemetry")) and j["health"] == "healthy" and j, 15,
                      "telemetry running in dc2")
    assert job2["applicationName"] == "telemetry::Telemetry"
    launched = wait_event(lab, "failover_launched", dc="dc2", since=t_cancel)
    assert launched["script"].endswith("/crossdc/telemetry-failover-restoring.sh")
    restored = wait_event(lab, "snapshot_restored", job2, since=t_cancel)
    assert restored["snapshot_origin"] == "Peak" and restored["origin"] == "dc1"
    inject(lab, "dc2", job2, readings(device, 2, start=5, values=[40.0, 60.0]))
    out = collect(lab, "dc2", job2, 2)
    assert [(o["readingsSoFar"], o["peakReading"]) for o in out] == [(6, 55.5), (7, 60.0)]  # empty: (1, 40.0)
    result = (LAB_DIR / "dc2" / "crossdc" / "telemetry-failover-result.txt").read_text()
    assert "sent SendMeDataFromSnapshotFiles" in result


def test_active_active_survivor_merges_the_failed_dcs_counts_and_peaks(telemetry: Lab) -> None:
    lab = telemetry
    _reset("--app", "telemetry", "--mode", "active-active")
    try:
        j1, j2 = _job(lab, "dc1"), _job(lab, "dc2")
        assert "crossDCOperationMode=1" in (LAB_DIR / "dc2" / "crossdc" / "telemetry.cfg").read_text().splitlines()
        assert lab.standby() is None
        da, db = f"a-{uuid.uuid4().hex[:6]}", f"b-{uuid.uuid4().hex[:6]}"
        t0 = time.time()
        inject(lab, "dc1", j1, readings(da, 3, values=[1.0, 9.0, 2.0]))
        inject(lab, "dc2", j2, readings(db, 4, values=[5.0, 4.0, 8.5, 3.0]))
        assert collect(lab, "dc1", j1, 3)[-1]["peakReading"] == 9.0
        assert collect(lab, "dc2", j2, 4)[-1]["peakReading"] == 8.5
        sent = wait_until(lambda: [e for e in events(lab, "snapshot_sent", j2, since=t0) if e["total_count"] >= 4],
                          5, "a dc2 snapshot after processing")[-1]
        wait_until(lambda: [e for e in events(lab, "snapshot_stored", j1, since=t0) if e["digest"] == sent["digest"]],
                   5, "dc1 to store dc2's snapshot")
        t_cancel = time.time()
        assert lab.delete(j2["self"]).status_code == 204
        restored = wait_event(lab, "snapshot_restored", j1, since=t_cancel)
        assert restored["origin"] == "dc2" and restored["snapshot_origin"] == "Peak"
        inject(lab, "dc1", j1, [*readings(db, 1, start=4, values=[6.0]), *readings(da, 1, start=3, values=[10.0])])
        out = {o["deviceId"]: o for o in collect(lab, "dc1", j1, 2)}
        assert (out[db]["readingsSoFar"], out[db]["peakReading"]) == (5, 8.5)  # dc2's device goes on in dc1
        assert (out[da]["readingsSoFar"], out[da]["peakReading"]) == (4, 10.0)
    finally:
        _reset("--app", "telemetry")  # the next test's fixture would do it; here it also happens on a failure
