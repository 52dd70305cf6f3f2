"""Metrics sources against fakes, the store, baselines, comparisons, the sampler and the export."""

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from support.metrics.prometheus import (
    PrometheusClient,
    PrometheusSource,
    config_interval,
    parse_duration,
    range_window,
    targets_interval,
)
from support.metrics.rest import RestMetricsSource
from support.metrics.series import Baseline, Sampler, SeriesStore
from support.streams.errors import StreamsConnectionError
from support.waits import wait_until


def test_baseline_band_and_recovery() -> None:
    store = SeriesStore()
    for t, v in enumerate([100, 102, 98, 100, 101, 99, 0, 0, 40, 95, 99]):
        store.add("throughput.dc1", float(t), v)
    baseline = store.baseline("throughput.dc1", 0, 5)
    assert baseline is not None and baseline.samples == 6 and abs(baseline.mean - 100.0) < 1e-9
    assert baseline.p50 == 100.0 and 101 <= baseline.p95 <= 102 and 1.0 < baseline.stddev < 1.5
    assert baseline.band(0.9) == pytest.approx(90.0)
    assert store.recovered_at("throughput.dc1", baseline, 0.9, after=6) == 9.0
    assert store.recovered_at("throughput.dc1", baseline, 0.99, after=6) == 10.0
    assert store.recovered_at("throughput.dc1", baseline, 1.5, after=6) is None
    assert Baseline.of("x", [], 0, 1) is None


def test_export_csv_and_json(tmp_path: Path) -> None:
    store = SeriesStore()
    store.add("a", 1.0, 2.0, {"dc": "dc1"})
    store.add("b", 1.5, 3.25)
    csv_path, json_path = store.write(tmp_path)
    assert csv_path.read_text().splitlines() == ["series,t,value", "a,1.000,2", "b,1.500,3.25"]
    assert json.loads(json_path.read_text()) == {"a": {"t": [1.0], "value": [2.0], "labels": {"dc": "dc1"}},
                                                 "b": {"t": [1.5], "value": [3.25]}}


class Counting:
    def __init__(self, name: str, min_interval: float, fail: bool = False) -> None:
        self.name = name
        self.min_interval = min_interval
        self.fail = fail
        self.calls = 0

    def sample(self) -> list[tuple[str, float]]:
        self.calls += 1
        if self.fail:
            raise RuntimeError("endpoint down")
        return [(f"{self.name}.calls", float(self.calls))]


def test_sampler_respects_each_source_interval_and_survives_failures() -> None:
    fast, slow, broken = Counting("fast", 0.0), Counting("slow", 3600.0), Counting("broken", 0.0, fail=True)
    store = SeriesStore()
    sampler = Sampler(store, [fast, slow, broken], interval=0.01, max_duration=10)
    sampler.start()
    try:
        wait_until(lambda: fast.calls, lambda n: n >= 5, timeout=5, interval=0.01, what="five samples")
    finally:
        sampler.stop()
    assert slow.calls == 1 and broken.calls >= 5
    assert sampler.errors == {"broken": "endpoint down"}
    assert len(store.series("fast.calls")[0]) >= 5 and store.names() == ["fast.calls", "slow.calls"]


class FakeProm:
    def __init__(self, targets: list[dict[str, Any]] | None = None) -> None:
        self.queries: list[str] = []
        self.targets = targets if targets is not None else [
            {"labels": {"dc": d, "job": "streams"}, "scrapeInterval": "10s"} for d in ("dc1", "dc2")
        ]
        self.answers: dict[str, list[dict[str, Any]]] = {}

    def custom_query(self, query: str, params: Any = None) -> list[dict[str, Any]]:
        self.queries.append(query)
        for marker, answer in self.answers.items():
            if marker in query:
                return answer
        return [{"metric": {"dc": "dc1", "jobname": "orders"}, "value": [1700000000.5, "123.5"]},
                {"metric": {"dc": "dc2"}, "value": [1700000000.5, "NaN"]}]

    def custom_query_range(self, query: str, start_time: Any, end_time: Any, step: str) -> list[dict[str, Any]]:
        assert step == "1s" and end_time > start_time
        return [{"metric": {"dc": "dc1"}, "values": [[1.0, "1"], [2.0, "2.5"]]}]

    def get_targets(self, state: str | None = None) -> dict[str, Any]:
        assert state == "active"
        return {"activeTargets": self.targets, "droppedTargets": []}


def test_prometheus_values_come_back_as_strings_and_are_converted() -> None:
    fake = FakeProm()
    client = PrometheusClient("http://127.0.0.1:1", connection=fake)
    samples = client.instant("up")
    assert samples[0].value == 123.5 and samples[0].labels["dc"] == "dc1" and samples[1].value != samples[1].value
    assert client.range("up", 10.0, 20.0) == [({"dc": "dc1"}, [(1.0, 1.0), (2.0, 2.5)])]
    source = PrometheusSource.for_application(client, "orders", "Aggregator")
    points = dict(source.sample())
    assert points["prom.dc1.tuples_per_s"] == 123.5
    assert any('operatorname="Aggregator"' in q and "sum by (dc)" in q for q in fake.queries)
    assert any('jobname=~"orders"' in q for q in fake.queries)
    fake.queries.clear()
    PrometheusSource.for_application(client, "orders", "Aggregator", main_composite="com.example::Orders").sample()
    assert any('jobname=~"orders|com[.]example::Orders_[0-9]+"' in q for q in fake.queries)  # a failover script's job


@pytest.mark.parametrize(
    ("interval", "intervals", "window"),
    [(10.0, 4.0, "40s"), (1.0, 4.0, "4s"), (15.0, 4.0, "60s"), (0.5, 4.0, "2s"),
     (0.25, 4.0, "1s"), (0.3, 4.0, "1200ms"), (10.0, 1.0, "20s"), (10.0, 3.0, "30s")],
)
def test_range_windows_span_at_least_two_scrape_intervals(interval: float, intervals: float, window: str) -> None:
    assert range_window(interval, intervals) == window
    assert parse_duration(window) >= 2 * interval


def test_range_window_refuses_a_non_positive_interval() -> None:
    with pytest.raises(ValueError):
        range_window(0)


@pytest.mark.parametrize(("text", "seconds"), [("10s", 10.0), ("500ms", 0.5), ("1m30s", 90.0), ("2h", 7200.0)])
def test_prometheus_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "10 s", "s10"])
def test_prometheus_durations_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_scrape_interval_from_the_targets_of_the_dc_label() -> None:
    targets = [{"labels": {"dc": "dc1"}, "scrapeInterval": "10s"}, {"labels": {"dc": "dc2"}, "scrapeInterval": "15s"},
               {"labels": {"job": "prometheus"}, "scrapeInterval": "1m"}]
    assert targets_interval(targets, "dc") == 15.0
    assert targets_interval(targets, "site") == 60.0, "no target has the label: all of them"
    assert targets_interval([{"labels": {"dc": "dc1"}}], "dc") is None
    assert targets_interval([], "dc") is None


def test_scrape_interval_from_the_configuration_when_targets_do_not_say() -> None:
    assert config_interval("global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: a\n") == 15.0
    assert config_interval("scrape_configs:\n  - job_name: a\n    scrape_interval: 10s\n") == 10.0
    assert config_interval("global: {}\n") == 60.0, "Prometheus' own default"
    client = PrometheusClient("http://127.0.0.1:1", connection=FakeProm(targets=[{"labels": {"dc": "dc1"}}]))
    client.config_yaml = lambda: "global:\n  scrape_interval: 30s\n"  # type: ignore[method-assign]
    assert client.scrape_interval() == 30.0


def test_windows_come_from_the_discovered_interval_not_a_fixed_five_seconds() -> None:
    fake = FakeProm()
    source = PrometheusSource.for_application(PrometheusClient("http://127.0.0.1:1", connection=fake), "orders",
                                              "Aggregator", dc_label="site", instance_label="inst")
    source.sample()
    assert source.scrape_interval == 10.0 and source.window == "40s"
    rate = next(q for q in fake.queries if "rate(" in q)
    assert "[40s]" in rate and "sum by (site)" in rate
    assert not [q for q in fake.queries if "[5s]" in q or "$" in q]
    assert any("timestamp(streams_instance_health) > 20" in q and "on (site, inst)" in q for q in fake.queries)


def test_discovery_is_retried_until_prometheus_answers() -> None:
    fake = FakeProm()
    calls = {"n": 0}

    def targets(state: str | None = None) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("refused")
        return {"activeTargets": [{"labels": {"dc": "dc1"}, "scrapeInterval": "1s"}]}

    fake.get_targets = targets  # type: ignore[method-assign]
    source = PrometheusSource.for_application(PrometheusClient("http://127.0.0.1:1", connection=fake), "o", "A")
    with pytest.raises(ConnectionError):
        source.sample()
    assert not fake.queries
    source.sample()
    assert source.window == "4s"


def test_a_lost_source_is_a_missing_health_series_not_a_zero() -> None:
    """dc2's exporter answers but has lost its source: only its last known status is left (here 1)."""
    fake = FakeProm()
    fake.answers = {
        "up{": [{"metric": {"dc": "dc1"}, "value": [1.0, "1"]}, {"metric": {"dc": "dc2"}, "value": [1.0, "1"]}],
        # the status query keeps dc2 out by joining on a fresh health sample: Prometheus answers dc1 only
        "streams_instance_status and on": [{"metric": {"dc": "dc1"}, "value": [1.0, "1"]}],
        "max by (dc) (streams_instance_health": [{"metric": {"dc": "dc1"}, "value": [1.0, "1"]}],
        "streams_job_health": [{"metric": {"dc": "dc1"}, "value": [1.0, "1"]}],
        "streams_pe_launchCount": [{"metric": {"dc": "dc1"}, "value": [1.0, "3"]}],
        "rate(": [{"metric": {"dc": "dc1"}, "value": [1.0, "20"]}],
    }
    source = PrometheusSource.for_application(PrometheusClient("http://127.0.0.1:1", connection=fake), "orders",
                                              "Aggregator")
    points = dict(source.sample())
    assert points["prom.dc1.exporter_has_source"] == 1.0 and points["prom.dc2.exporter_has_source"] == 0.0
    assert points["prom.dc2.exporter_up"] == 1.0
    assert not [n for n in points if n.startswith("prom.dc2.") and n not in
                ("prom.dc2.exporter_up", "prom.dc2.exporter_has_source")], "no invented 0 for dc2"
    status_query = next(q for q in fake.queries if "streams_instance_status" in q)
    assert "and on (dc, instancename)" in status_query and "streams_instance_health" in status_query


def test_an_unreachable_exporter_says_nothing_about_the_source() -> None:
    fake = FakeProm()
    fake.answers = {"up{": [{"metric": {"dc": "dc1"}, "value": [1.0, "0"]}], "streams_": []}
    source = PrometheusSource.for_application(PrometheusClient("http://127.0.0.1:1", connection=fake), "o", "A")
    assert dict(source.sample()) == {"prom.dc1.exporter_up": 0.0}


class FakeRestMetrics:
    def __init__(self) -> None:
        self.down = False

    def jobs(self, name: str | None = None) -> list[dict[str, Any]]:
        if self.down:
            raise StreamsConnectionError("refused", url="https://x")
        return [{"id": "4", "name": "orders", "status": "running", "health": "partiallyHealthy"}]

    def pes(self, job: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [{"id": "1", "launchCount": 1, "status": "running", "metrics": "pe1"},
                {"id": "2", "launchCount": 2, "status": "restarting", "metrics": "pe2"}]

    def operators(self, job: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [{"name": "OrdersIn", "outputPorts": "ports/OrdersIn"}, {"name": "Other"}]

    def get(self, url: str, **params: Any) -> Any:
        return {"outputPorts": [{"metrics": "m/OrdersIn"}]}

    def metrics(self, element_or_url: Mapping[str, Any] | str) -> dict[str, int]:
        if isinstance(element_or_url, Mapping):
            return {"nCpuMilliseconds": 10 * int(element_or_url["id"])}
        return {"nTuplesSubmitted": 77}


def test_rest_source_reads_job_pe_and_operator_metrics() -> None:
    dc1, dc2 = FakeRestMetrics(), FakeRestMetrics()
    dc2.down = True
    points = dict(RestMetricsSource({"dc1": dc1, "dc2": dc2}, "orders", ["OrdersIn"]).sample())
    assert points == {"rest.dc1.job.running": 1.0, "rest.dc1.job.health": 0.5, "rest.dc1.pe.launchCount": 3.0,
                      "rest.dc1.pe.running": 1.0, "rest.dc1.pe.nCpuMilliseconds": 30.0,
                      "rest.dc1.OrdersIn.nTuplesSubmitted": 77.0, "rest.dc2.job.running": 0.0}


def _recording_prometheus() -> tuple[Any, list[dict[str, str]]]:
    """A local HTTP server answering the Prometheus query API; it records each request's headers."""
    import http.server
    import json as _json
    import threading

    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
            body = _json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {"dc": "dc1"}, "value": [1.0, "1"]}]}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


@pytest.mark.parametrize("auth", [
    {"type": "basic", "username": "prom", "password": "s3cret"},
    {"type": "bearer", "token": "tok-123"},
])
def test_prometheus_client_sends_the_configured_auth_with_timeouts(auth: dict[str, str]) -> None:
    import base64

    from support.config.settings import AuthSettings, PrometheusSettings

    server, seen = _recording_prometheus()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        settings = PrometheusSettings(url=url, instance_label="instancename", dc_label="dc",
                                      auth=AuthSettings(**auth), ca_bundle="/etc/ssl/certs/ca-certificates.crt",
                                      connect_timeout=1.5, read_timeout=4.0)
        client = PrometheusClient.from_settings(settings)
        assert client._prom._session.verify == "/etc/ssl/certs/ca-certificates.crt"
        assert client._prom._timeout == (1.5, 4.0)
        assert [s.value for s in client.instant("up")] == [1.0]
        assert client.ready_status()[0]
    finally:
        server.shutdown()
        server.server_close()
    expected = ("Basic " + base64.b64encode(b"prom:s3cret").decode() if auth["type"] == "basic"
                else "Bearer tok-123")
    assert [h.get("authorization") for h in seen] == [expected, expected]
    assert "timeout=4s" in seen[0]["path"]  # the server-side query timeout is the read timeout
    assert "s3cret" not in repr(settings) and "tok-123" not in repr(settings)
