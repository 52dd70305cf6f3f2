"""Data exchange service: inject JSON and CSV, retrieve with consuming reads."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import yaml
from labprobes import cancel, healthy, inject, operator_port_metric, pe, sink_items, submit, tuples
from labwire import Lab, wait_until
from openapi_spec_validator import validate

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
    assert doc["total"] == len(doc["jobs"])
    job = next(j for j in doc["jobs"] if j["jobName"] == "orders")
    assert job["status"] == "running" and job["applicationName"] == "orders"
    kinds = {e["kind"]: e for e in job["endpoints"]}
    assert kinds["source"]["operator"] == "OrdersIn" and kinds["sink"]["operator"] == "OrdersOut"
    api = lab.get(job["openapi"]).json()
    validate(api)  # a valid OpenAPI 3 document (openapi-spec-validator)
    assert api["openapi"].startswith("3.0")
    server = api["servers"][0]["url"]
    by_url = {server + path: ops for path, ops in api["paths"].items()}
    assert set(by_url[kinds["source"]["url"]]) == {"post"} and set(by_url[kinds["sink"]["url"]]) == {"get"}
    assert set(by_url[kinds["source"]["url"]]["post"]["requestBody"]["content"]) == {"application/json", "text/csv"}
    params = by_url[kinds["sink"]["url"]]["get"]["parameters"]
    assert [p["name"] for p in params] == ["startTime"]
    as_yaml = lab.get(job["openapiYaml"])
    assert as_yaml.status_code == 200 and yaml.safe_load(as_yaml.text) == api
    # the passive stub has no endpoints: dc2 lists nothing
    assert lab.get(lab.data("dc2")).json()["total"] == 0


def test_sink_buffer_size_and_non_consuming_reads_per_submission(lab: Lab) -> None:
    params = {
        "crossDCHttpPort": 26391,
        "specialMessagePort": 26399,
        "crossDCInitDelay": 3600,
        "OrdersOut.bufferSize": 5,
        "OrdersOut.consumingReads": "false",
    }
    job = submit(lab, "dc1", "orders", "data_probe", params)
    try:
        healthy(lab, job)
        inject(lab, "dc1", job, tuples("k", 8))
        wait_until(
            lambda: operator_port_metric(lab, job, "OrdersOut", "inputports", "nTuplesProcessed") >= 8,
            5,
            "8 tuples at the sink",
        )
        sink = lab.endpoints("dc1", job["id"])["sink"]
        first = lab.get(sink).json()
        assert [o["id"] for o in first["items"]] == [f"k-{i}" for i in range(3, 8)]  # oldest 3 dropped
        assert "warning" in first
        again = lab.get(sink).json()  # not consuming: the same tuples again, the drop already reported
        assert [o["id"] for o in again["items"]] == [f"k-{i}" for i in range(3, 8)] and "warning" not in again
        since_start = lab.get(sink, params={"startTime": 0}).json()
        assert len(since_start["items"]) == 5 and "warning" in since_start  # start time precedes the oldest kept
        assert operator_port_metric(lab, job, "OrdersOut", "inputports", "nTuplesDropped") == 3
        trace = lab.get(pe(lab, job, 2)["applicationTrace"]).text
        assert "bufferSize=5 consumingReads=false" in trace and "WARN [OrdersOut] bufferSize 5 exceeded" in trace
    finally:
        cancel(lab, job)


def test_default_buffer_keeps_the_newest_1000(default_deployment: Lab) -> None:
    lab = default_deployment
    job = lab.job("dc1", "orders")
    assert job is not None
    sink_items(lab, "dc1", job)  # drain
    before = operator_port_metric(lab, job, "OrdersOut", "inputports", "nTuplesProcessed")
    key = f"cust-{uuid.uuid4().hex[:8]}"
    for start in range(0, 1010, 202):
        inject(lab, "dc1", job, tuples(key, 202, start=start))
    wait_until(
        lambda: operator_port_metric(lab, job, "OrdersOut", "inputports", "nTuplesProcessed") >= before + 1010,
        10,
        "1010 tuples at the sink",
    )
    sink = lab.endpoints("dc1", job["id"])["sink"]
    doc = lab.get(sink).json()
    assert len(doc["items"]) == 1000 and doc["items"][0]["id"] == f"{key}-10" and "warning" in doc
    assert lab.get(sink).json() == {"items": []}  # consuming reads


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


def test_every_tuple_once_and_in_order_per_key(default_deployment: Lab) -> None:
    """The clean counterpart of the drop-sink and reorder defects: 2000 in, 2000 out, per-key order kept."""
    lab = default_deployment
    job = lab.job("dc1", "orders")
    assert job is not None
    sink_items(lab, "dc1", job)
    tag = uuid.uuid4().hex[:6]
    sent = [
        {"id": f"{tag}-{i}", "key": f"{tag}-k{i % 10}", "seq": i // 10, "amount": 1.0, "sent_at": time.time()}
        for i in range(2000)
    ]
    got: list[dict[str, Any]] = []
    for start in range(0, 2000, 200):
        inject(lab, "dc1", job, sent[start : start + 200])
        got += _collect(lab, sink_items_url(lab, job), 200)
    assert sorted(o["id"] for o in got) == sorted(s["id"] for s in sent)
    for k in range(10):
        seqs = [o["seq"] for o in got if o["key"] == f"{tag}-k{k}"]
        assert seqs == sorted(seqs) == list(range(200))
        counts = [o["count_for_key"] for o in got if o["key"] == f"{tag}-k{k}"]
        assert counts == list(range(1, 201))


def sink_items_url(lab: Lab, job: dict[str, Any]) -> str:
    return lab.endpoints("dc1", job["id"])["sink"]
