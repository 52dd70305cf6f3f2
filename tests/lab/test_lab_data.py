"""Data exchange service: inject JSON and CSV, retrieve with consuming reads."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from labwire import Lab, wait_until

pytestmark = pytest.mark.lab


def _drain(lab: Lab, sink: str) -> None:
    lab.get(sink)


def _collect(lab: Lab, sink: str, n: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []

    def enough() -> bool:
        got.extend(lab.get(sink).json()["items"])
        return len(got) >= n

    wait_until(enough, 5, f"{n} output tuples")
    return got


def test_listing_and_openapi(default_deployment: Lab) -> None:
    lab = default_deployment
    doc = lab.get(lab.data("dc1")).json()
    job = next(j for j in doc["jobs"] if j["jobName"] == "orders")
    kinds = {e["kind"]: e for e in job["endpoints"]}
    assert kinds["source"]["operator"] == "OrdersIn" and kinds["sink"]["operator"] == "OrdersOut"
    api = lab.get(job["openapi"]).json()
    assert api["openapi"].startswith("3.0")
    assert any(p.endswith("/OrdersIn/ports/0/tuples") for p in api["paths"])
    # the passive stub has no endpoints: dc2 lists nothing
    assert lab.get(lab.data("dc2")).json()["total"] == 0


def test_inject_json_and_csv_then_consuming_reads(default_deployment: Lab) -> None:
    lab = default_deployment
    job = lab.job("dc1", "orders")
    assert job is not None
    ep = lab.endpoints("dc1", job["id"])
    _drain(lab, ep["sink"])
    key = f"cust-{uuid.uuid4().hex[:8]}"
    now = time.time()
    items = [
        {"id": f"{key}-{i}", "key": key, "seq": i, "amount": 10.005, "sent_at": now, "crc": 7, "note": "x"}
        for i in range(3)
    ]
    r = lab.post(ep["source"], json={"items": items})
    assert r.status_code == 200 and r.json() == {"accepted": 3}
    r = lab.post(ep["source"], json=[{"id": f"{key}-3", "key": key, "seq": 3, "amount": 1, "sent_at": now}])
    assert r.status_code == 200 and r.json() == {"accepted": 1}
    csv_body = f"id,key,seq,amount,sent_at,crc\n{key}-4,{key},4,2.5,{now},9\n{key}-5,{key},5,0.5,{now},9\n"
    r = lab.post(ep["source"], data=csv_body, headers={"Content-Type": "text/csv"})
    assert r.status_code == 200 and r.json() == {"accepted": 2}

    out = _collect(lab, ep["sink"], 6)
    assert [o["id"] for o in out] == [f"{key}-{i}" for i in range(6)]
    assert [o["count_for_key"] for o in out] == [1, 2, 3, 4, 5, 6]
    assert out[0]["sum_for_key"] == 10.01 and out[2]["sum_for_key"] == 30.02  # rounded after each add
    assert out[-1]["sum_for_key"] == 34.02
    assert all(o["dc"] == "dc1" and o["processed_at"] >= now for o in out)
    assert out[0]["note"] == "x"  # business fields pass through
    assert out[4]["seq"] == 4 and isinstance(out[4]["seq"], int) and out[4]["amount"] == 2.5  # CSV converted
    # consuming reads: a second read returns nothing
    assert lab.get(ep["sink"]).json()["items"] == []


def test_start_time_filter(default_deployment: Lab) -> None:
    lab = default_deployment
    job = lab.job("dc1", "orders")
    assert job is not None
    ep = lab.endpoints("dc1", job["id"])
    _drain(lab, ep["sink"])
    sink_in = f"{job['operators']}/OrdersOut/inputports/0/metrics"

    def received() -> int:
        return {m["name"]: m["value"] for m in lab.get(sink_in).json()["metrics"]}["nTuplesProcessed"]

    before = received()
    key = f"cust-{uuid.uuid4().hex[:8]}"
    lab.post(ep["source"], json={"items": [{"id": "a", "key": key, "seq": 0, "amount": 1.0, "sent_at": 0.0}]})
    wait_until(lambda: received() > before, 5, "tuple a buffered in the sink")
    start_ms = int(time.time() * 1000) + 2
    wait_until(lambda: time.time() * 1000 > start_ms, 1, "a later start time", interval=0.001)
    lab.post(ep["source"], json={"items": [{"id": "b", "key": key, "seq": 1, "amount": 1.0, "sent_at": 0.0}]})
    got = _collect_since(lab, ep["sink"], start_ms)
    assert [o["id"] for o in got] == ["b"]
    rest = lab.get(ep["sink"]).json()["items"]
    assert [o["id"] for o in rest] == ["a"]


def _collect_since(lab: Lab, sink: str, start_ms: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []

    def some() -> bool:
        got.extend(lab.get(sink, params={"startTime": start_ms}).json()["items"])
        return bool(got)

    wait_until(some, 5, "output after startTime")
    return got


def test_bad_requests(default_deployment: Lab) -> None:
    lab = default_deployment
    job = lab.job("dc1", "orders")
    assert job is not None
    ep = lab.endpoints("dc1", job["id"])
    r = lab.post(ep["source"], data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["id"] == "CDISW5000E"
    r = lab.post(f"{lab.data('dc1')}/jobs/99999/OrdersIn/ports/0/tuples", json={"items": []})
    assert r.status_code == 404 and r.json()["id"] == "CDISW5000E"
    r = lab.get(f"{lab.data('dc1')}/jobs/{job['id']}/Nope/ports/0/tuples")
    assert r.status_code == 404
