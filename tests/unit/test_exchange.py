"""DataExchangeClient against a fake transport: discovery, inject (JSON, CSV), retrieve, failures."""

from __future__ import annotations

import base64
import csv
import io
import logging
from pathlib import Path
from typing import Any

import pytest
from fake_http import READ_TIMEOUT, REFUSE, FakeTransport, answer, json_answer, streams_error

from support.config import load_config
from support.streams.errors import (
    StreamsApiError,
    StreamsConnectionError,
    StreamsError,
    StreamsNotFound,
    StreamsTimeout,
)
from support.streams.exchange import BufferMark, DataExchangeClient, Endpoints, SinkCursor, SinkRead
from support.streams.http import HttpSettings

ROOT = "https://198.18.1.10:9715/streams/data"
SOURCE = f"{ROOT}/jobs/3/OrdersIn/ports/0/tuples"
SINK = f"{ROOT}/jobs/3/OrdersOut/ports/0/tuples"
SETTINGS = HttpSettings(connect_timeout=1.0, read_timeout=5.0, retries=2, backoff=0.001)
APP = {"job_name": "orders", "source": {"operator": "OrdersIn", "port": 0}, "sink": {"operator": "OrdersOut"}}
ITEMS = [
    {"id": "r1-1", "key": "c1", "seq": 1, "amount": 12.5, "sent_at": 1764139201.25, "crc": 123},
    {"id": "r1-2", "key": "c2", "seq": 1, "amount": 3.0, "sent_at": 1764139201.5, "crc": 456, "note": "a,b"},
]


def listing(*jobs: dict[str, Any]) -> dict[str, Any]:
    return {"jobs": list(jobs), "total": len(jobs)}


def orders_job(job_id: str = "3", name: str = "orders") -> dict[str, Any]:
    base = f"{ROOT}/jobs/{job_id}"
    return {
        "jobId": job_id,
        "jobName": name,
        "applicationName": "orders",
        "status": "running",
        "openapi": f"{base}/openapi.json",
        "endpoints": [
            {"operator": "OrdersIn", "port": 0, "kind": "source", "url": f"{base}/OrdersIn/ports/0/tuples"},
            {"operator": "OrdersOut", "port": 0, "kind": "sink", "url": f"{base}/OrdersOut/ports/0/tuples"},
        ],
    }


def lab_document(job_id: str = "3") -> dict[str, Any]:
    """The OpenAPI document the lab publishes for an orders job (its own generator)."""
    from lab.apps import APPS
    from lab.instance import openapi
    from lab.instance.model import Job

    job = Job(job_id, "orders", APPS["orders"], {}, [], 0)
    return openapi.document(job, ROOT, "StreamsInstance")


@pytest.fixture
def transport() -> FakeTransport:
    fake = FakeTransport()
    fake.route("GET", ROOT, json_answer(listing(orders_job())))
    fake.route("GET", f"{ROOT}/jobs/3/openapi.json", json_answer(lab_document()))
    return fake


def client_for(transport: FakeTransport, **kwargs: Any) -> DataExchangeClient:
    options: dict[str, Any] = {
        "auth": {"type": "basic", "username": "streamsadmin", "password": "pw-secret"},
        "settings": SETTINGS,
        "adapter": transport,
        "name": "dc1",
    }
    options.update(kwargs)
    return DataExchangeClient(ROOT, **options)


# ------------------------------------------------------------------------------------- discovery


def test_jobs_lists_the_running_data_exchange_jobs(transport: FakeTransport) -> None:
    assert [job["jobName"] for job in client_for(transport).jobs()] == ["orders"]


def test_endpoints_are_chosen_by_operator_and_port_from_the_application(transport: FakeTransport) -> None:
    assert client_for(transport).endpoints("orders", APP) == Endpoints("3", SOURCE, SINK)


def test_endpoints_are_chosen_by_kind_without_an_application(transport: FakeTransport) -> None:
    assert client_for(transport).endpoints("orders") == Endpoints("3", SOURCE, SINK)


def test_newest_job_of_that_name_wins_and_other_names_are_ignored(transport: FakeTransport) -> None:
    transport.route("GET", ROOT, json_answer(listing(orders_job("3"), orders_job("11"), orders_job("12", "other"))))
    transport.route("GET", f"{ROOT}/jobs/11/openapi.json", json_answer(lab_document("11")))

    endpoints = client_for(transport).endpoints("orders", APP)

    assert endpoints is not None and endpoints.job_id == "11"
    assert endpoints.source_url == f"{ROOT}/jobs/11/OrdersIn/ports/0/tuples"


def test_no_such_job_gives_none(transport: FakeTransport) -> None:
    transport.route("GET", ROOT, json_answer(listing()))

    assert client_for(transport).endpoints("orders", APP) is None


def test_configured_operator_missing_is_not_found(transport: FakeTransport) -> None:
    app = {**APP, "source": {"operator": "Elsewhere", "port": 0}}

    with pytest.raises(StreamsNotFound, match=r"no source endpoint Elsewhere port 0 .*OrdersIn:0"):
        client_for(transport).endpoints("orders", app)


def test_two_sources_without_configuration_are_ambiguous(transport: FakeTransport) -> None:
    job = orders_job()
    job["endpoints"].append({"operator": "More", "port": 0, "kind": "source", "url": f"{ROOT}/x"})
    transport.route("GET", ROOT, json_answer(listing(job)))

    with pytest.raises(StreamsError, match="2 source endpoints"):
        client_for(transport).endpoints("orders")


def test_listing_of_an_unexpected_shape_is_an_api_error(transport: FakeTransport) -> None:
    transport.route("GET", ROOT, json_answer([1, 2]))

    with pytest.raises(StreamsApiError, match="expected"):
        client_for(transport).jobs()


# ---------------------------------------------------------------------------------------- inject


def test_inject_json_posts_items_and_returns_the_accepted_count(transport: FakeTransport) -> None:
    transport.route("POST", SOURCE, json_answer({"accepted": 2}))

    accepted = client_for(transport).inject(SOURCE, ITEMS)

    assert accepted == 2
    (post,) = transport.attempts_for("POST", SOURCE)
    assert post.headers["Content-Type"] == "application/json"
    assert post.json() == {"items": ITEMS}
    expected_auth = "Basic " + base64.b64encode(b"streamsadmin:pw-secret").decode()
    assert post.headers["Authorization"] == expected_auth
    assert (post.connect_timeout, post.read_timeout) == (1.0, 5.0)


def test_inject_csv_posts_a_header_and_one_row_per_item(transport: FakeTransport) -> None:
    transport.route("POST", SOURCE, json_answer({"accepted": 2}))

    client_for(transport).inject(SOURCE, ITEMS, fmt="csv")

    (post,) = transport.attempts_for("POST", SOURCE)
    assert post.headers["Content-Type"] == "text/csv"
    assert post.body is not None
    rows = list(csv.reader(io.StringIO(post.body.decode())))
    assert rows == [
        ["id", "key", "seq", "amount", "sent_at", "crc", "note"],
        ["r1-1", "c1", "1", "12.5", "1764139201.25", "123", ""],
        ["r1-2", "c2", "1", "3.0", "1764139201.5", "456", "a,b"],
    ]


def test_inject_timeout_argument_sets_the_read_timeout(transport: FakeTransport) -> None:
    transport.route("POST", SOURCE, json_answer({"accepted": 2}))

    client_for(transport).inject(SOURCE, ITEMS, timeout=0.75)

    assert transport.sends[-1].timeout == (1.0, 0.75)


def test_inject_of_nothing_sends_nothing(transport: FakeTransport) -> None:
    assert client_for(transport).inject(SOURCE, []) == 0
    assert transport.attempts == []


def test_inject_after_cancel_is_not_found(transport: FakeTransport) -> None:
    transport.route(
        "POST",
        SOURCE,
        json_answer({"accepted": 2}),
        streams_error(404, "CDISW5000E", "CDISW5000E job 3 not found"),
    )
    client = client_for(transport)
    assert client.inject(SOURCE, ITEMS) == 2

    with pytest.raises(StreamsNotFound) as caught:
        client.inject(SOURCE, ITEMS)

    assert caught.value.error_id == "CDISW5000E"


def test_inject_is_not_retried_on_503(transport: FakeTransport) -> None:
    transport.route("POST", SOURCE, answer(503), json_answer({"accepted": 2}))

    with pytest.raises(StreamsApiError) as caught:
        client_for(transport).inject(SOURCE, ITEMS)

    assert caught.value.status == 503
    assert len(transport.attempts_for("POST", SOURCE)) == 1


def test_inject_read_timeout_is_a_timeout_with_unknown_outcome_and_not_retried(transport: FakeTransport) -> None:
    transport.route("POST", SOURCE, READ_TIMEOUT, json_answer({"accepted": 2}))

    with pytest.raises(StreamsTimeout) as caught:
        client_for(transport).inject(SOURCE, ITEMS)

    assert caught.value.request_sent is True and caught.value.outcome_unknown
    assert len(transport.attempts_for("POST", SOURCE)) == 1


def test_inject_is_retried_when_the_connection_cannot_be_established(transport: FakeTransport) -> None:
    transport.route("POST", SOURCE, REFUSE, json_answer({"accepted": 2}))
    assert client_for(transport).inject(SOURCE, ITEMS) == 2
    assert len(transport.attempts_for("POST", SOURCE)) == 2

    transport.route("POST", SOURCE, REFUSE)
    with pytest.raises(StreamsConnectionError) as caught:
        client_for(transport).inject(SOURCE, ITEMS)
    assert caught.value.request_sent is False and caught.value.attempts == 3


@pytest.mark.parametrize(
    "reply",
    [answer(204), answer(200), answer(201, b"{}", {"Content-Type": "application/json"}), json_answer({"ok": True}),
     answer(202, b"queued", {"Content-Type": "text/plain"})],
    ids=["204", "200-empty", "201-empty-object", "no-count", "202-text"],
)
def test_every_2xx_accepts_the_whole_batch_without_needing_a_body(transport: FakeTransport, reply: Any) -> None:
    transport.route("POST", SOURCE, reply)

    assert client_for(transport).inject(SOURCE, ITEMS) == len(ITEMS)


def test_a_documented_count_in_the_reply_is_taken_as_it_is(transport: FakeTransport) -> None:
    transport.route("POST", SOURCE, json_answer({"accepted": 1}))

    assert client_for(transport).inject(SOURCE, ITEMS) == 1


# --------------------------------------------------------------------------------- OpenAPI shapes


def other_service_document() -> dict[str, Any]:
    """A service with other shapes than the lab's: bare arrays, a 'tuples' property, an ISO start time
    named 'since', a reply count named 'n', Swagger-like relative server URL."""
    return {
        "openapi": "3.0.0",
        "servers": [{"url": "/streams/data"}],
        "paths": {
            "/jobs/{jobId}/OrdersIn/ports/{port}/tuples": {
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": {
                        "type": "array", "items": {"$ref": "#/components/schemas/T"}}}}},
                    "responses": {"204": {"description": "taken"}},
                }
            },
            "/jobs/{jobId}/OrdersOut/ports/{port}/tuples": {
                "get": {
                    "parameters": [{"name": "since", "in": "query", "schema": {"type": "string",
                                                                                  "format": "date-time"}}],
                    "responses": {"200": {"content": {"application/json": {"schema": {
                        "type": "object",
                        "properties": {"tuples": {"type": "array", "items": {"$ref": "#/components/schemas/T"}},
                                       "note": {"type": "string"}},
                    }}}}},
                }
            },
        },
        "components": {"schemas": {"T": {"type": "object", "properties": {"id": {"type": "string"}}}}},
    }


def test_shapes_come_from_the_job_document_not_from_constants(transport: FakeTransport) -> None:
    transport.route("GET", f"{ROOT}/jobs/3/openapi.json", json_answer(other_service_document()))
    transport.route("POST", SOURCE, answer(204))
    transport.route("GET", SINK, json_answer({"tuples": ITEMS, "note": "buffer overflowed"}))
    client = client_for(transport)

    assert client.endpoints("orders", APP) == Endpoints("3", SOURCE, SINK)
    assert client.inject(SOURCE, ITEMS) == 2
    read = client.read(SINK, start_time_ms=1764139200250)

    (post,) = transport.attempts_for("POST", SOURCE)
    assert post.json() == ITEMS  # a bare array, as documented
    (get,) = transport.attempts_for("GET", SINK)
    assert get.query == {"since": "2025-11-26T06:40:00.250+00:00"}
    assert read.items == ITEMS and read.marks is None and read.warning == "buffer overflowed"


def test_the_document_is_read_once_per_job(transport: FakeTransport) -> None:
    transport.route("POST", SOURCE, json_answer({"accepted": 2}))
    transport.route("GET", SINK, json_answer({"items": [], "buffered": []}))
    client = client_for(transport)

    client.endpoints("orders", APP)
    client.endpoints("orders", APP)
    client.inject(SOURCE, ITEMS)
    client.read(SINK)

    assert len(transport.attempts_for("GET", f"{ROOT}/jobs/3/openapi.json")) == 1


def test_an_endpoint_used_before_discovery_learns_its_shape_from_the_listing(transport: FakeTransport) -> None:
    transport.route("POST", SOURCE, json_answer({"accepted": 2}))

    client_for(transport).inject(SOURCE, ITEMS)

    assert [a.path for a in transport.attempts] == ["/streams/data", "/streams/data/jobs/3/openapi.json",
                                                     "/streams/data/jobs/3/OrdersIn/ports/0/tuples"]


def test_the_lab_document_describes_items_count_start_time_and_buffer_marks() -> None:
    from support.streams.openapi import endpoint_operation, sink_shape, source_shape

    doc = lab_document()
    url = f"{ROOT}/jobs/3/openapi.json"
    source = source_shape(doc, endpoint_operation(doc, url, SOURCE, "post") or {})
    sink = sink_shape(doc, endpoint_operation(doc, url, SINK, "get") or {})

    assert (source.content_type, source.wrapper, source.count, source.csv) == ("application/json", "items",
                                                                               "accepted", True)
    assert (sink.start, sink.start_format, sink.items, sink.warning) == ("startTime", "ms", "items", "warning")
    assert (sink.marks, sink.position, sink.time) == ("buffered", "position", "time")


def test_a_job_without_a_document_link_falls_back_to_an_items_array(transport: FakeTransport,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    job = orders_job()
    del job["openapi"]
    transport.route("GET", ROOT, json_answer(listing(job)))
    transport.route("POST", SOURCE, answer(204))

    with caplog.at_level(logging.WARNING, logger="support.streams.exchange"):
        client = client_for(transport)
        client.endpoints("orders", APP)
        client.inject(SOURCE, ITEMS)

    assert transport.attempts_for("POST", SOURCE)[0].json() == {"items": ITEMS}
    assert "no OpenAPI document" in caplog.text


def test_a_document_that_cannot_be_had_falls_back_and_is_not_fetched_again(transport: FakeTransport) -> None:
    transport.route("GET", f"{ROOT}/jobs/3/openapi.json", streams_error(404, "CDISW5000E", "no document"))
    transport.route("POST", SOURCE, json_answer({"accepted": 2}))
    client = client_for(transport)

    assert client.endpoints("orders", APP) == Endpoints("3", SOURCE, SINK)
    assert client.endpoints("orders", APP) == Endpoints("3", SOURCE, SINK)
    assert client.inject(SOURCE, ITEMS) == 2

    assert transport.attempts_for("POST", SOURCE)[0].json() == {"items": ITEMS}
    assert len(transport.attempts_for("GET", f"{ROOT}/jobs/3/openapi.json")) == 1


# -------------------------------------------------------------------------------------- retrieve


def test_retrieve_returns_items_and_sends_the_start_time(transport: FakeTransport) -> None:
    out = [{**ITEMS[0], "dc": "dc1", "count_for_key": 1, "sum_for_key": 12.5, "processed_at": 1764139201.3}]
    transport.route("GET", SINK, json_answer({"items": out, "buffered": [{"position": 7, "time": 1764139201301}]}))
    client = client_for(transport)

    assert client.read(SINK).marks == [BufferMark(7, 1764139201301)]
    assert client.retrieve(SINK) == out
    assert client.retrieve(SINK, start_time_ms=1764139200000) == out

    first, second, third = transport.attempts_for("GET", SINK)
    assert first.query == second.query == {}
    assert third.query == {"startTime": "1764139200000"}


def test_retrieve_logs_the_buffer_overflow_warning(transport: FakeTransport, caplog: pytest.LogCaptureFixture) -> None:
    transport.route("GET", SINK, json_answer({"items": [], "warning": "start time precedes the oldest tuple"}))

    with caplog.at_level(logging.WARNING, logger="support.streams.exchange"):
        assert client_for(transport).retrieve(SINK, start_time_ms=1) == []

    assert "precedes the oldest tuple" in caplog.text


def test_a_sink_reply_without_a_body_is_no_tuples(transport: FakeTransport) -> None:
    transport.route("GET", SINK, answer(204))

    read = client_for(transport).read(SINK)

    assert (read.items, read.marks, read.warning) == ([], [], "")


def test_retrieve_after_cancel_is_not_found(transport: FakeTransport) -> None:
    transport.route("GET", SINK, streams_error(404, "CDISW5000E", "CDISW5000E job 3 not found"))

    with pytest.raises(StreamsNotFound):
        client_for(transport).retrieve(SINK)


# ------------------------------------------------------------------------------------ from_config


def lab_config(tmp_path: Path, *extra: str) -> Any:
    secret = tmp_path / "pw"
    secret.write_text("lab-password\n")
    lab = Path(__file__).resolve().parents[2] / "config" / "lab.yaml"
    overrides = [f"datacenters.{dc}.rest.auth.password=${{file:{secret}}}" for dc in ("dc1", "dc2")]
    return load_config(lab, overrides=[*overrides, *extra])


def test_from_config_defaults_auth_and_ca_bundle_to_the_rest_settings(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("CA\n")
    config = lab_config(tmp_path, "http.read_timeout=9 seconds", f"datacenters.dc1.rest.ca_bundle={ca}")
    transport = FakeTransport()
    transport.route("GET", ROOT, json_answer(listing()))

    client = DataExchangeClient.from_settings(config.settings, "dc1", adapter=transport)
    client.jobs()

    (send,) = transport.sends
    assert send.verify == str(ca)
    assert send.timeout == (3.0, 9.0)
    assert send.headers["Authorization"] == "Basic " + base64.b64encode(b"streamsadmin:lab-password").decode()


def test_from_config_uses_exchange_auth_when_given(tmp_path: Path) -> None:
    config = lab_config(
        tmp_path,
        "datacenters.dc1.exchange.auth.type=bearer",
        "datacenters.dc1.exchange.auth.token=tok-9",
        "datacenters.dc1.rest.ca_bundle=null",
    )
    transport = FakeTransport()
    transport.route("GET", ROOT, json_answer(listing()))

    DataExchangeClient.from_settings(config.settings, "dc1", adapter=transport).jobs()

    assert transport.sends[0].headers["Authorization"] == "Bearer tok-9"


def test_retrieve_is_not_retried_after_a_read_timeout(transport: FakeTransport) -> None:
    # Consuming reads: a second GET after a timed-out one could hide tuples the first one removed.
    transport.route("GET", SINK, READ_TIMEOUT, json_answer({"items": []}))

    expected = r"GET .* failed after 1 attempt: read timed out \(read timeout 5 s\)"
    with pytest.raises(StreamsTimeout, match=expected) as c:
        client_for(transport).retrieve(SINK)

    assert c.value.request_sent is True
    assert len(transport.attempts_for("GET", SINK)) == 1


# ------------------------------------------------------------------------------------ sink cursor


class FakeSink:
    """An EndpointSink buffer: tuples with their position and arrival time, consuming or not."""

    def __init__(self, consuming: bool, marks: bool = True, size: int = 1000) -> None:
        self.consuming, self.marks, self.size = consuming, marks, size
        self.buffer: list[tuple[int, int, dict[str, Any]]] = []
        self.position = 0
        self.now = 1_000_000

    def arrive(self, *ids: str, step: int = 10) -> None:
        for i in ids:
            self.now += step
            self.buffer.append((self.now, self.position, {"id": i}))
            self.position += 1
        del self.buffer[:-self.size]

    def read(self, start: int | None) -> SinkRead:
        taken = [e for e in self.buffer if start is None or e[0] >= start]
        if self.consuming:
            self.buffer = [e for e in self.buffer if e not in taken]
        marks = [BufferMark(p, t) for t, p, _ in taken] if self.marks else None
        return SinkRead([dict(i) for _, _, i in taken], marks, "", self.now)


def poll(cursor: SinkCursor, sink: FakeSink) -> list[str]:
    return [item["id"] for item in cursor.admit(sink.read(cursor.start_time_ms()))]


@pytest.mark.parametrize("consuming", [False, True], ids=["non-consuming", "consuming"])
def test_cursor_records_each_delivery_once_and_a_real_duplicate_twice(consuming: bool) -> None:
    sink = FakeSink(consuming)
    cursor = SinkCursor(since_ms=0, overlap_ms=100)
    sink.arrive("a", "b", "c")
    assert poll(cursor, sink) == ["a", "b", "c"]
    assert poll(cursor, sink) == []  # re-read of the overlap (non-consuming) or nothing (consuming)
    sink.arrive("d", "c")  # the application delivers c a second time: a second tuple in the buffer
    assert poll(cursor, sink) == ["d", "c"]
    assert poll(cursor, sink) == []
    if not consuming:
        assert cursor.rereads > 0
        assert cursor.start_time_ms() == sink.now - 100  # the newest arrival seen minus the overlap


def test_cursor_skips_what_the_sink_buffered_before_the_run() -> None:
    sink = FakeSink(consuming=False)
    sink.arrive("old-1", "old-2")
    cursor = SinkCursor(since_ms=sink.now + 1, overlap_ms=100)
    sink.arrive("new-1")
    assert poll(cursor, sink) == ["new-1"]


def test_cursor_ignores_tuples_older_than_its_start_when_the_service_ignores_start_time() -> None:
    sink = FakeSink(consuming=False)
    cursor = SinkCursor(since_ms=0, overlap_ms=15)
    sink.arrive("a", "b", "c")
    assert [i["id"] for i in cursor.admit(sink.read(None))] == ["a", "b", "c"]
    sink.arrive("d")
    assert [i["id"] for i in cursor.admit(sink.read(None))] == ["d"]  # a, b, c again: forgotten but too old


def test_cursor_memory_holds_one_overlap() -> None:
    sink = FakeSink(consuming=False, size=50)
    cursor = SinkCursor(since_ms=0, overlap_ms=100)  # 10 tuples per overlap (one every 10 ms)
    received: list[str] = []
    for n in range(200):
        sink.arrive(*(f"t{n}-{k}" for k in range(5)))
        received += poll(cursor, sink)
    assert len(received) == 1000 and len(set(received)) == 1000
    assert len(cursor._seen) <= 11


def test_cursor_without_marks_takes_the_tail_of_the_previous_read_as_a_re_read() -> None:
    sink = FakeSink(consuming=False, marks=False)
    cursor = SinkCursor(since_ms=0, overlap_ms=25)
    sink.arrive("a", "b", "c")
    assert poll(cursor, sink) == ["a", "b", "c"]
    sink.arrive("d", "c", "e")  # c delivered a second time
    assert poll(cursor, sink) == ["d", "c", "e"]  # the read starts with b, c: the previous read's tail
    assert poll(cursor, sink) == []
    assert cursor.start_time_ms() == sink.now - 25  # the client's clock at the previous read minus the overlap
