"""StreamsRestClient against a fake transport: navigation, auth, retries, errors, payloads, timeouts."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from fake_http import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    REFUSE,
    FakeTransport,
    answer,
    json_answer,
    streams_error,
)

from support.config import load_config
from support.streams.errors import (
    StreamsApiError,
    StreamsAuthError,
    StreamsConflict,
    StreamsConnectionError,
    StreamsError,
    StreamsNotFound,
    StreamsTimeout,
    parse_error_body,
)
from support.streams.http import HttpSettings
from support.streams.rest import StreamsRestClient

BASE = "https://198.18.1.10:9714/streams"
ROOT = f"{BASE}/resources"
INSTANCES = f"{BASE}/instances"
INSTANCE = f"{INSTANCES}/streams-dc1"
JOBS = f"{INSTANCE}/jobs"
JOB = f"{JOBS}/3"
PASSWORD = "pa55-w0rd-very-secret"
SETTINGS = HttpSettings(connect_timeout=1.5, read_timeout=4.0, retries=2, backoff=0.001)


def instance_element(instance_id: str = "streams-dc1") -> dict[str, Any]:
    url = f"{INSTANCES}/{instance_id}"
    return {
        "id": instance_id,
        "restid": instance_id,
        "resourceType": "instance",
        "self": url,
        "status": "running",
        "jobs": f"{url}/jobs",
        "pes": f"{url}/pes",
        "operators": f"{url}/operators",
    }


def job_element(job_id: str = "3", name: str = "orders", status: str = "running") -> dict[str, Any]:
    url = f"{JOBS}/{job_id}"
    return {
        "id": job_id,
        "restid": job_id,
        "resourceType": "job",
        "self": url,
        "name": name,
        "status": status,
        "health": "healthy",
        "pes": f"{url}/pes",
        "operators": f"{url}/operators",
        "instance": INSTANCE,
    }


def job_list(*jobs: dict[str, Any]) -> dict[str, Any]:
    return {"jobs": list(jobs), "total": len(jobs), "resourceType": "jobList"}


def metric_list(**values: int) -> dict[str, Any]:
    metrics = [{"name": k, "value": v, "metricKind": "counter", "resourceType": "metric"} for k, v in values.items()]
    return {"metrics": metrics, "total": len(metrics), "resourceType": "metricList"}


@pytest.fixture
def transport() -> FakeTransport:
    fake = FakeTransport()
    fake.route("GET", ROOT, json_answer({"resources": [{"name": "instances", "resource": INSTANCES}]}))
    fake.route(
        "GET",
        INSTANCES,
        json_answer({"instances": [instance_element()], "total": 1, "resourceType": "instanceList"}),
    )
    fake.route("GET", JOBS, json_answer(job_list(job_element())))
    fake.route("GET", JOB, json_answer(job_element()))
    return fake


def client_for(transport: FakeTransport, **kwargs: Any) -> StreamsRestClient:
    options: dict[str, Any] = {
        "auth": {"type": "basic", "username": "streamsadmin", "password": PASSWORD},
        "instance_id": "streams-dc1",
        "settings": SETTINGS,
        "adapter": transport,
        "name": "dc1",
    }
    options.update(kwargs)
    return StreamsRestClient(ROOT, **options)


# ------------------------------------------------------------------------------------ navigation


def test_instance_is_found_by_navigating_from_the_root_and_cached(transport: FakeTransport) -> None:
    client = client_for(transport)

    assert client.instance()["id"] == "streams-dc1"
    assert client.instance()["jobs"] == JOBS

    assert [a.url for a in transport.attempts] == [ROOT, INSTANCES]


def test_only_instance_is_used_when_none_is_configured(transport: FakeTransport) -> None:
    assert client_for(transport, instance_id=None).instance()["id"] == "streams-dc1"


def test_several_instances_and_none_configured_is_an_error(transport: FakeTransport) -> None:
    two = {"instances": [instance_element("a"), instance_element("b")], "total": 2}
    transport.route("GET", INSTANCES, json_answer(two))

    with pytest.raises(StreamsError, match=r"2 instances \(a, b\); configure datacenters.dc1.rest.instance"):
        client_for(transport, instance_id=None).instance()


def test_unknown_configured_instance_names_the_available_ones(transport: FakeTransport) -> None:
    with pytest.raises(StreamsNotFound, match=r"instance 'nope' not found .*\(instances: streams-dc1\)"):
        client_for(transport, instance_id="nope").instance()


def test_instance_summary_without_links_is_read_from_its_self_url(transport: FakeTransport) -> None:
    summary = {"id": "streams-dc1", "self": INSTANCE, "resourceType": "instance"}
    transport.route("GET", INSTANCES, json_answer({"instances": [summary], "total": 1}))
    transport.route("GET", INSTANCE, json_answer(instance_element()))

    assert client_for(transport).instance()["jobs"] == JOBS


def test_root_without_instances_resource_is_not_found(transport: FakeTransport) -> None:
    transport.route("GET", ROOT, json_answer({"resources": [{"name": "domains", "resource": f"{BASE}/domains"}]}))

    with pytest.raises(StreamsNotFound, match=r"no 'instances' resource .*domains"):
        client_for(transport).instance()


def test_jobs_filters_by_name_on_the_server_and_the_client(transport: FakeTransport) -> None:
    other = job_element("4", name="other")
    transport.route("GET", JOBS, json_answer(job_list(job_element(), other)))

    jobs = client_for(transport).jobs("orders")

    assert [job["id"] for job in jobs] == ["3"]
    assert transport.attempts_for("GET", JOBS)[-1].query == {"name": "orders"}


def test_collections_follow_next_links(transport: FakeTransport) -> None:
    page2 = f"{JOBS}?page=2"
    transport.route(
        "GET",
        JOBS,
        json_answer({**job_list(job_element("3")), "next": page2}),
        json_answer(job_list(job_element("5"))),
    )

    assert [job["id"] for job in client_for(transport).jobs()] == ["3", "5"]
    assert transport.attempts_for("GET", JOBS)[-1].query == {"page": "2"}


def test_find_job_skips_canceled_and_canceling_jobs_and_takes_the_newest(transport: FakeTransport) -> None:
    jobs = job_list(
        job_element("3", status="canceled"),
        job_element("12", status="running"),
        job_element("9", status="running"),
        job_element("20", status="canceling"),
    )
    transport.route("GET", JOBS, json_answer(jobs))
    client = client_for(transport)

    found = client.find_job("orders")

    assert found is not None and found["id"] == "12"
    transport.route("GET", JOBS, json_answer(job_list(job_element("3", status="canceled"))))
    assert client.find_job("orders") is None


def test_job_by_id_reads_the_element_under_the_jobs_collection(transport: FakeTransport) -> None:
    assert client_for(transport).job("3")["name"] == "orders"
    assert transport.attempts[-1].url == JOB


# ------------------------------------------------------------------------------------------ auth


def test_basic_auth_header_is_sent_on_every_request(transport: FakeTransport) -> None:
    client_for(transport).jobs()

    expected = "Basic " + base64.b64encode(f"streamsadmin:{PASSWORD}".encode()).decode()
    assert transport.attempts
    assert all(a.headers.get("Authorization") == expected for a in transport.attempts)


def test_bearer_auth_header_is_sent(transport: FakeTransport) -> None:
    client_for(transport, auth={"type": "bearer", "token": "tok-123"}).instance()

    assert all(a.headers.get("Authorization") == "Bearer tok-123" for a in transport.attempts)


def test_credentials_never_appear_in_reprs(transport: FakeTransport) -> None:
    client = client_for(transport)

    assert PASSWORD not in repr(client)
    assert PASSWORD not in repr(client.session.auth)


def test_tls_verification_uses_the_ca_bundle_or_the_default_store(transport: FakeTransport, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not really a certificate\n")
    client_for(transport, ca_bundle=str(ca)).instance()
    assert transport.sends and all(send.verify == str(ca) for send in transport.sends)

    other = FakeTransport()
    other.routes = transport.routes
    client_for(other).instance()
    assert other.sends and all(send.verify is True for send in other.sends)


# --------------------------------------------------------------------------------------- retries


def test_get_is_retried_on_503_then_succeeds(transport: FakeTransport) -> None:
    transport.route("GET", JOBS, answer(503), answer(503), json_answer(job_list(job_element())))

    jobs = client_for(transport).jobs()

    assert [job["id"] for job in jobs] == ["3"]
    assert len(transport.attempts_for("GET", JOBS)) == 3


def test_get_gives_up_after_the_configured_retries(transport: FakeTransport) -> None:
    transport.route("GET", JOBS, streams_error(503, "CDISW9999E", "CDISW9999E busy"))

    with pytest.raises(StreamsApiError) as caught:
        client_for(transport).jobs()

    assert caught.value.status == 503
    assert len(transport.attempts_for("GET", JOBS)) == 1 + SETTINGS.retries


def test_post_is_not_retried_on_503(transport: FakeTransport) -> None:
    transport.route("POST", JOBS, answer(503), json_answer(job_element(), status=201))

    with pytest.raises(StreamsApiError) as caught:
        client_for(transport).submit_job("orders", job_name="orders")

    assert caught.value.status == 503
    assert len(transport.attempts_for("POST", JOBS)) == 1


def test_post_read_timeout_is_not_retried_and_is_a_timeout(transport: FakeTransport) -> None:
    transport.route("POST", JOBS, READ_TIMEOUT)

    with pytest.raises(StreamsTimeout) as caught:
        client_for(transport).submit_job("orders")

    assert caught.value.request_sent is True
    assert len(transport.attempts_for("POST", JOBS)) == 1


def test_connection_error_names_method_url_and_attempts(transport: FakeTransport) -> None:
    transport.route("GET", ROOT, REFUSE)

    with pytest.raises(StreamsConnectionError) as caught:
        client_for(transport).instance()

    error = caught.value
    assert not isinstance(error, StreamsTimeout)
    assert error.attempts == 3 and error.request_sent is False
    assert str(error).startswith(f"GET {ROOT} failed after 3 attempts: ")
    assert "Connection refused" in str(error)
    assert len(transport.attempts_for("GET", ROOT)) == 3


def test_connect_timeout_is_retried_then_a_timeout(transport: FakeTransport) -> None:
    transport.route("GET", ROOT, CONNECT_TIMEOUT, CONNECT_TIMEOUT, json_answer({"resources": []}))

    assert client_for(transport).resources() == {"resources": []}

    transport.route("GET", ROOT, CONNECT_TIMEOUT)
    with pytest.raises(StreamsTimeout, match=r"connect timed out \(connect timeout 1.5 s\)") as caught:
        client_for(transport).resources()
    assert caught.value.request_sent is False


# ---------------------------------------------------------------------------------------- errors


def test_404_is_not_found_with_id_and_message_parsed(transport: FakeTransport) -> None:
    transport.route("GET", f"{JOBS}/99", streams_error(404, "CDISW5000E", "CDISW5000E job 99 not found"))

    with pytest.raises(StreamsNotFound) as caught:
        client_for(transport).job("99")

    error = caught.value
    assert (error.status, error.error_id, error.message) == (404, "CDISW5000E", "CDISW5000E job 99 not found")
    assert error.url == f"{JOBS}/99"
    assert str(error) == f"GET {JOBS}/99: HTTP 404: CDISW5000E job 99 not found"


def test_error_body_with_a_messages_list_is_parsed() -> None:
    body = '{"messages":[{"id":"CDISW1234E","message":"CDISW1234E broken"},{"id":"X","message":"y"}]}'
    assert parse_error_body(body) == ("CDISW1234E", "CDISW1234E broken")
    assert parse_error_body("<html>oops</html>") == (None, "<html>oops</html>")
    assert parse_error_body(b"") == (None, None)


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_are_auth_errors(transport: FakeTransport, status: int) -> None:
    transport.route("GET", ROOT, streams_error(status, "CDISW0001E", "CDISW0001E not authorized"))

    with pytest.raises(StreamsAuthError) as caught:
        client_for(transport).resources()

    assert caught.value.status == status
    assert PASSWORD not in str(caught.value)


def test_409_on_submit_is_a_conflict(transport: FakeTransport) -> None:
    transport.route("POST", JOBS, streams_error(409, "CDISW5001E", "CDISW5001E job orders is already running"))

    with pytest.raises(StreamsConflict, match="already running"):
        client_for(transport).submit_job("orders", job_name="orders")


def test_other_4xx_is_an_api_error(transport: FakeTransport) -> None:
    transport.route("GET", JOBS, streams_error(400, "CDISW4000E", "CDISW4000E bad filter"))

    with pytest.raises(StreamsApiError, match="HTTP 400: CDISW4000E bad filter"):
        client_for(transport).jobs()


def test_non_json_answer_is_an_api_error(transport: FakeTransport) -> None:
    transport.route("GET", ROOT, answer(200, "<html>login</html>"))

    with pytest.raises(StreamsApiError, match="expected a JSON answer"):
        client_for(transport).resources()


# ----------------------------------------------------------------------------------- submit/cancel


def test_submit_sends_the_job_configuration_overlay_and_expects_201(transport: FakeTransport) -> None:
    transport.route("POST", JOBS, json_answer(job_element("7"), status=201))

    job = client_for(transport).submit_job(
        "orders", job_name="orders", submission_parameters={"heartbeatExchangeInterval": "0.5", "crossDCInitDelay": "1"}
    )

    assert job["id"] == "7"
    (post,) = transport.attempts_for("POST", JOBS)
    assert post.headers["Content-Type"] == "application/json"
    assert post.json() == {
        "application": "orders",
        "jobConfigurationOverlay": {
            "jobConfigOverlays": [
                {
                    "jobConfig": {
                        "jobName": "orders",
                        "submissionParameters": [
                            {"name": "heartbeatExchangeInterval", "value": "0.5"},
                            {"name": "crossDCInitDelay", "value": "1"},
                        ],
                    }
                }
            ]
        },
    }


def test_submit_without_options_sends_only_the_application(transport: FakeTransport) -> None:
    transport.route("POST", JOBS, json_answer(job_element("7"), status=201))

    client_for(transport).submit_job("orders_standby")

    assert transport.attempts_for("POST", JOBS)[0].json() == {"application": "orders_standby"}


def test_submit_answered_with_200_is_unexpected(transport: FakeTransport) -> None:
    transport.route("POST", JOBS, json_answer(job_element("7"), status=200))

    with pytest.raises(StreamsApiError, match="expected HTTP 201, got 200"):
        client_for(transport).submit_job("orders")


def test_cancel_deletes_the_job_and_expects_204(transport: FakeTransport) -> None:
    transport.route("DELETE", JOB, answer(204))
    client = client_for(transport)

    client.cancel_job("3")
    client.cancel_job(job_element("3"))

    assert [a.url for a in transport.attempts_for("DELETE", JOB)] == [JOB, JOB]


def test_cancel_of_an_unknown_job_is_not_found(transport: FakeTransport) -> None:
    transport.route("DELETE", f"{JOBS}/42", streams_error(404, "CDISW5000E", "CDISW5000E job 42 not found"))

    with pytest.raises(StreamsNotFound):
        client_for(transport).cancel_job(42)


# ------------------------------------------------------------------------- PEs, operators, metrics


OPERATORS = f"{JOB}/operators"
WATCHDOG = f"{OPERATORS}/CrossDCFailover.RemoteDataCenterHeartbeatWatchdog"


def operator_element(name: str, with_port_links: bool = True) -> dict[str, Any]:
    url = f"{OPERATORS}/{name}"
    element: dict[str, Any] = {"name": name, "resourceType": "operator", "self": url, "metrics": f"{url}/metrics"}
    if with_port_links:
        element["inputPorts"] = f"{url}/inputports"
        element["outputPorts"] = f"{url}/outputports"
    return element


def test_pes_and_pe_trace_follow_links(transport: FakeTransport) -> None:
    pe = {"id": "11", "self": f"{INSTANCE}/pes/11", "launchCount": 1, "applicationTrace": f"{INSTANCE}/pes/11/trace"}
    transport.route("GET", f"{JOB}/pes", json_answer({"pes": [pe], "total": 1, "resourceType": "peList"}))
    transport.route("GET", f"{INSTANCE}/pes/11/trace", answer(200, "line 1\nremote data center dc1 is DOWN\n"))
    client = client_for(transport)

    pes = client.pes("3")

    assert [p["id"] for p in pes] == ["11"]
    assert "is DOWN" in client.pe_trace(pes[0])


def test_operator_is_found_by_full_name_or_last_segment(transport: FakeTransport) -> None:
    names = ["OrdersIn", "CrossDCFailover.RemoteDataCenterHeartbeatWatchdog"]
    transport.route("GET", OPERATORS, json_answer({"operators": [operator_element(n) for n in names]}))
    client = client_for(transport)
    job = job_element()

    assert client.operator(job, "OrdersIn")["name"] == "OrdersIn"
    assert client.operator(job, "RemoteDataCenterHeartbeatWatchdog")["self"] == WATCHDOG
    with pytest.raises(StreamsNotFound, match=r"no operator 'Nope' .*OrdersIn"):
        client.operator(job, "Nope")


def test_metrics_follow_the_metrics_link(transport: FakeTransport) -> None:
    transport.route("GET", f"{INSTANCE}/pes/11/metrics", json_answer(metric_list(nCpuMilliseconds=120)))

    metrics = client_for(transport).metrics({"id": "11", "metrics": f"{INSTANCE}/pes/11/metrics"})

    assert metrics == {"nCpuMilliseconds": 120}


def test_port_metrics_follow_the_ports_link(transport: FakeTransport) -> None:
    watchdog = operator_element("CrossDCFailover.RemoteDataCenterHeartbeatWatchdog")
    transport.route("GET", OPERATORS, json_answer({"operators": [watchdog]}))
    ports = [
        {"indexWithinOperator": 0, "self": f"{WATCHDOG}/inputports/0", "metrics": f"{WATCHDOG}/inputports/0/metrics"}
    ]
    transport.route("GET", f"{WATCHDOG}/inputports", json_answer({"inputPorts": ports, "total": 1}))
    transport.route("GET", f"{WATCHDOG}/inputports/0/metrics", json_answer(metric_list(nTuplesProcessed=17)))

    metrics = client_for(transport).port_metrics(job_element(), "RemoteDataCenterHeartbeatWatchdog", "input")

    assert metrics == {"nTuplesProcessed": 17}


def test_port_metrics_without_ports_link_use_the_operator_url(transport: FakeTransport) -> None:
    watchdog = operator_element("CrossDCFailover.RemoteDataCenterHeartbeatWatchdog", with_port_links=False)
    transport.route("GET", OPERATORS, json_answer({"operators": [watchdog]}))
    transport.route("GET", f"{WATCHDOG}/outputports/0/metrics", json_answer(metric_list(nTuplesSubmitted=2)))

    metrics = client_for(transport).port_metrics("3", "RemoteDataCenterHeartbeatWatchdog", "output", 0)

    assert metrics == {"nTuplesSubmitted": 2}


# -------------------------------------------------------------------------------------- timeouts


def test_every_call_carries_the_configured_timeouts(transport: FakeTransport) -> None:
    transport.route("POST", JOBS, json_answer(job_element("7"), status=201))
    transport.route("DELETE", JOB, answer(204))
    transport.route("GET", f"{JOB}/pes", json_answer({"pes": []}))
    client = client_for(transport)

    client.jobs()
    client.find_job("orders")
    client.submit_job("orders")
    client.pes("3")
    client.cancel_job("3")

    assert len(transport.sends) >= 6
    assert all(send.timeout == (1.5, 4.0) for send in transport.sends)
    assert all((a.connect_timeout, a.read_timeout) == (1.5, 4.0) for a in transport.attempts)


def test_from_config_reads_url_instance_auth_and_http_settings(tmp_path: Path, transport: FakeTransport) -> None:
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    lab = Path(__file__).resolve().parents[2] / "config" / "lab.yaml"
    config = load_config(
        lab,
        overrides=[
            f"datacenters.dc1.rest.auth.password=${{file:{secret}}}",
            f"datacenters.dc2.rest.auth.password=${{file:{secret}}}",
            "datacenters.dc1.rest.ca_bundle=null",
            "http.connect_timeout=2 seconds",
            "http.read_timeout=7 s",
            "http.backoff=1 ms",
        ],
    )

    client = StreamsRestClient.from_settings(config.settings, "dc1", adapter=transport)
    client.instance()

    assert client.root_url == ROOT and client.instance_id == "streams-dc1"
    assert all(send.timeout == (2.0, 7.0) for send in transport.sends)
    expected = "Basic " + base64.b64encode(f"streamsadmin:{PASSWORD}".encode()).decode()
    assert transport.attempts[0].headers["Authorization"] == expected
