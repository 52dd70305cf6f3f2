"""Data exchange service: inject JSON and CSV; retrieve with non-consuming reads (the EndpointSink default),
startTime and buffer marks; consumingReads as an application option; the OpenAPI document of each job."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import yaml
from labprobes import cancel, healthy, inject, operator_port_metric, pe, read_new, sink_items, submit, tuples
from labwire import Lab, wait_until
from openapi_spec_validator import validate

pytestmark = pytest.mark.lab


def _skip_buffered(lab: Lab, sink: str) -> None:
    read_new(lab, sink)  # what is already buffered is not this test's


def _collect(lab: Lab, sink: str, n: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []

    def enough() -> bool:
        got.extend(read_new(lab, sink))
        return len(got) >= n

    wait_until(enough, 5, f"{n} output tuples")
    return got


def test_listing_and_openapi(default_deployment: Lab) -> None:
    lab = default_deployment
    doc = lab.get(lab.data("dc1")).json()
    assert doc["total"] == len(doc["jobs"])
    job = next(j for j in doc["jobs"] if j["jobName"] == "orders")
    assert job["status"] == "running" and job["applicationName"] == "orders::Orders"
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
    # the document describes exactly the shapes the service uses
    post = by_url[kinds["source"]["url"]]["post"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["items"] and body["properties"]["items"]["type"] == "array"
    reply = post["responses"]["200"]["content"]["application/json"]["schema"]
    assert reply["required"] == ["accepted"] and reply["properties"]["accepted"]["type"] == "integer"
    get = by_url[kinds["sink"]["url"]]["get"]
    answer = get["responses"]["200"]["content"]["application/json"]["schema"]
    assert set(answer["properties"]) == {"items", "buffered", "warning"}
    marks = api["components"]["schemas"]["Buffered"]
    assert set(marks["properties"]) == {"position", "time"}
    assert "consumingReads false" in get["description"]
    items = [{"id": f"doc-{uuid.uuid4().hex[:6]}", "key": "doc", "seq": 0, "amount": 1.0, "sent_at": 0.0}]
    answered = lab.post(kinds["source"]["url"], json={"items": items}).json()
    assert set(answered) == set(reply["properties"])
    wait_until(lambda: (doc := lab.get(kinds["sink"]["url"]).json())["items"] and doc, 5, "a buffered tuple")
    assert set(lab.get(kinds["sink"]["url"]).json()) <= set(answer["properties"])
    as_yaml = lab.get(job["openapiYaml"])
    assert as_yaml.status_code == 200 and yaml.safe_load(as_yaml.text) == api
    # the passive stub has no endpoints: dc2 lists nothing
    assert lab.get(lab.data("dc2")).json()["total"] == 0


def test_sink_buffer_size_and_consuming_reads_per_submission(lab: Lab) -> None:
    params = {
        "crossDCHttpPort": 26391,
        "specialMessagePort": 26399,
        "crossDCInitDelay": 3600,
        "OrdersOut.bufferSize": 5,
        "OrdersOut.consumingReads": "true",
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
        assert [m["position"] for m in first["buffered"]] == list(range(3, 8))
        assert "warning" in first
        assert lab.get(sink).json() == {"items": [], "buffered": []}  # consuming: what was returned is gone
        inject(lab, "dc1", job, tuples("k", 2, start=8))
        more: list[dict[str, Any]] = []
        wait_until(lambda: more.extend(lab.get(sink, params={"startTime": 0}).json()["items"]) or len(more) >= 2,
                   5, "2 more tuples")
        assert [o["id"] for o in more] == ["k-8", "k-9"]  # each returned once: consuming reads with startTime too
        assert operator_port_metric(lab, job, "OrdersOut", "inputports", "nTuplesDropped") == 3
        trace = lab.get(pe(lab, job, 2)["applicationTrace"]).text
        assert "bufferSize=5 consumingReads=true" in trace and "WARN [OrdersOut] bufferSize 5 exceeded" in trace
        api = lab.get(f"{lab.data('dc1')}/jobs/{job['id']}/openapi.json").json()
        (get,) = [ops["get"] for ops in api["paths"].values() if "get" in ops]
        assert "bufferSize 5" in get["description"] and "consumingReads true" in get["description"]
    finally:
        cancel(lab, job)


def test_reads_do_not_consume_by_default(default_deployment: Lab) -> None:
    """consumingReads defaults to false like the real EndpointSink: a read leaves the tuples in the buffer,
    and a re-read returns the same buffered tuples with the same marks."""
    lab = default_deployment
    job = lab.job("dc1", "orders")
    assert job is not None
    params = {p["name"]: p for p in lab.get(job["self"]).json()["submitParameters"]}
    assert params["OrdersOut.consumingReads"]["value"] == params["OrdersOut.consumingReads"]["defaultValue"] == "false"
    assert "consumingReads=false" in lab.get(pe(lab, job, 2)["applicationTrace"]).text
    sink = lab.endpoints("dc1", job["id"])["sink"]
    _skip_buffered(lab, sink)
    key = f"cust-{uuid.uuid4().hex[:8]}"
    inject(lab, "dc1", job, tuples(key, 3))
    _collect(lab, sink, 3)

    def mine(doc: dict[str, Any]) -> list[tuple[str, dict[str, int]]]:
        return [(o["id"], m) for o, m in zip(doc["items"], doc["buffered"], strict=True) if o["key"] == key]

    first = mine(lab.get(sink).json())
    again = mine(lab.get(sink).json())
    assert [i for i, _ in first] == [f"{key}-{n}" for n in range(3)] and again == first
    positions = [m["position"] for _, m in first]
    assert positions == list(range(positions[0], positions[0] + 3))


def test_default_buffer_keeps_the_newest_1000(default_deployment: Lab) -> None:
    lab = default_deployment
    job = lab.job("dc1", "orders")
    assert job is not None
    sink_items(lab, "dc1", job)  # what is already buffered is not this test's
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
    assert len(doc["items"]) == 1000 and doc["items"][0]["id"] == f"{key}-10"
    positions = [m["position"] for m in doc["buffered"]]
    assert positions == list(range(positions[0], positions[0] + 1000))
    again = lab.get(sink).json()  # not consuming: the same 1000 again
    assert again["items"] == doc["items"] and again["buffered"] == doc["buffered"]
    assert "warning" in lab.get(sink, params={"startTime": 0}).json()  # tuples after that start were dropped


def test_inject_json_and_csv_then_read(default_deployment: Lab) -> None:
    lab = default_deployment
    job = lab.job("dc1", "orders")
    assert job is not None
    ep = lab.endpoints("dc1", job["id"])
    _skip_buffered(lab, ep["sink"])
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
    # not consuming: a second read returns them again
    assert [o["id"] for o in lab.get(ep["sink"]).json()["items"] if o["key"] == key] == [o["id"] for o in out]


def test_start_time_filter(default_deployment: Lab) -> None:
    """A read with startTime returns the tuples that reached the sink at or after it; the marks say when."""
    lab = default_deployment
    job = lab.job("dc1", "orders")
    assert job is not None
    ep = lab.endpoints("dc1", job["id"])
    _skip_buffered(lab, ep["sink"])
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
    again = lab.get(ep["sink"], params={"startTime": start_ms}).json()  # not consuming: b again
    assert [o["id"] for o in again["items"]] == ["b"] and again["buffered"][0]["time"] >= start_ms
    everything = lab.get(ep["sink"]).json()
    mine = [(o["id"], m["time"]) for o, m in zip(everything["items"], everything["buffered"], strict=True)
            if o["key"] == key]
    assert [i for i, _ in mine] == ["a", "b"] and mine[0][1] < start_ms <= mine[1][1]


def _collect_since(lab: Lab, sink: str, start_ms: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []

    def some() -> bool:
        got[:] = lab.get(sink, params={"startTime": start_ms}).json()["items"]
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
