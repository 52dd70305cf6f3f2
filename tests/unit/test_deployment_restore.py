"""A restore (the scenario's cleanup) that meets HTTP 401 (issue 10 §4): one attempt, then a loud error and a
journal event saying what was tried; against a fake transport, so the real retry policy runs."""

from __future__ import annotations

from typing import Any

import pytest
from fake_http import FakeTransport, answer, json_answer, streams_error

from support.config.settings import StandbySettings
from support.deployment import AppSpec, RestoreError, ensure_active_passive, guarded_restore
from support.orchestration import Journal
from support.streams.errors import StreamsApiError
from support.streams.http import HttpSettings
from support.streams.rest import StreamsRestClient

SETTINGS = HttpSettings(connect_timeout=1.0, read_timeout=2.0, retries=2, backoff=0.001)
APP = AppSpec("orders", "orders", "https://build.example/orders.sab", StandbySettings("standalone", None), {})


class FakeStub:
    """The standalone stub, already running in the standby DC."""

    def __init__(self, running: bool) -> None:
        self.running = running

    def pid(self) -> int | None:
        return 4242 if self.running else None

    def start(self) -> int:
        self.running = True
        return 4242

    def stop(self) -> None:
        self.running = False


STUBS = {"dc1": FakeStub(False), "dc2": FakeStub(True)}
ADDR = {"dc1": "198.18.1.10", "dc2": "198.18.2.10"}
UNAUTHENTICATED = streams_error(401, "CDISW5000E", "The user is not authenticated: provide valid credentials.")


def base(dc: str) -> str:
    return f"https://{ADDR[dc]}:9714/streams"


def instance(dc: str) -> str:
    return f"{base(dc)}/instances/streams-{dc}"


def route_instance(transport: FakeTransport, dc: str) -> None:
    url = instance(dc)
    transport.route("GET", f"{base(dc)}/resources",
                    json_answer({"resources": [{"name": "instances", "resource": f"{base(dc)}/instances"}]}))
    transport.route("GET", f"{base(dc)}/instances", json_answer({"instances": [
        {"id": f"streams-{dc}", "self": url, "jobs": f"{url}/jobs", "status": "running"}]}))


def job(dc: str, job_id: str, name: str) -> dict[str, Any]:
    return {"id": job_id, "name": name, "status": "running", "self": f"{instance(dc)}/jobs/{job_id}"}


@pytest.fixture()
def transport() -> FakeTransport:
    """dc2 still runs the job it took over; dc1 answers 401 to its job list (its credentials changed)."""
    fake = FakeTransport()
    for dc in ADDR:
        route_instance(fake, dc)
    fake.route("GET", f"{instance('dc2')}/jobs", json_answer({"jobs": [job("dc2", "3", "orders")], "total": 1}))
    fake.route("DELETE", f"{instance('dc2')}/jobs/3", answer(204))
    fake.route("GET", f"{instance('dc2')}/jobs/3", streams_error(404, "CDISW5000E", "The job 3 was not found."))
    fake.route("GET", f"{instance('dc1')}/jobs", UNAUTHENTICATED)
    return fake


@pytest.fixture()
def rest(transport: FakeTransport) -> dict[str, StreamsRestClient]:
    return {dc: StreamsRestClient(f"{base(dc)}/resources", auth={"type": "basic", "username": "u", "password": "p"},
                                  settings=SETTINGS, adapter=transport, name=dc) for dc in ADDR}


def restore(rest: dict[str, StreamsRestClient], journal: Journal) -> None:
    def stub(app: AppSpec, dc: str) -> Any:
        return STUBS[dc]

    guarded_restore("restore orders", lambda: ensure_active_passive(rest, stub, APP, "dc1", "dc2", journal, timeout=5),
                    rest, journal)()


def test_a_401_in_a_restore_is_tried_once_and_reported_with_what_was_done(
    transport: FakeTransport, rest: dict[str, StreamsRestClient]
) -> None:
    journal = Journal(None, "cut off")
    journal.record("deployment.ready", app="orders", active="dc1", standby="dc2")
    with pytest.raises(RestoreError) as caught:
        restore(rest, journal)
    text = str(caught.value)
    assert text.startswith("dc1 rejected the run's credentials (GET https://198.18.1.10:9714/streams/instances/"
                           "streams-dc1/jobs: HTTP 401: CDISW5000E The user is not authenticated")
    assert "not retried" in text and "accepted earlier in this scenario" in text
    assert "done before the error: canceled orders in dc2" in text
    assert len(transport.attempts_for("GET", f"{instance('dc1')}/jobs")) == 1  # no retry on the wire
    failed = journal.last("restore.failed")
    assert failed is not None
    assert failed.fields == {
        "what": "restore orders", "dc": "dc1", "request": f"GET {instance('dc1')}/jobs", "status": 401,
        "retried": False, "done": ["canceled orders in dc2"], "accepted_earlier": True,
    }


def test_credentials_never_accepted_point_to_the_config(rest: dict[str, StreamsRestClient]) -> None:
    with pytest.raises(RestoreError, match=r"not accepted earlier in this scenario: .* check datacenters\.dc1\.rest"):
        restore(rest, Journal(None, "s"))


def test_other_errors_pass_unchanged_after_the_layers_retries(
    transport: FakeTransport, rest: dict[str, StreamsRestClient]
) -> None:
    transport.route("GET", f"{instance('dc1')}/jobs", answer(503))
    journal = Journal(None, "s")
    with pytest.raises(StreamsApiError, match="HTTP 503"):
        restore(rest, journal)
    assert len(transport.attempts_for("GET", f"{instance('dc1')}/jobs")) == 1 + SETTINGS.retries  # transient: retried
    assert journal.last("restore.failed") is None


def test_the_other_applications_are_the_other_jobs_of_the_configuration() -> None:
    from support.deployment import other_apps

    fenced = AppSpec("orders-fenced", "orders", APP.bundle, APP.standby, {"fencing": "true"})
    telemetry = AppSpec("telemetry", "telemetry", "https://build.example/telemetry.sab", APP.standby, {},
                        main_composite="telemetry::Telemetry")
    telemetry_too = AppSpec("telemetry-b", "telemetry", telemetry.bundle, APP.standby, {},
                            main_composite="telemetry::Telemetry")
    # variants of one application are one job; each other job once
    assert other_apps([APP, fenced, telemetry, telemetry_too], APP) == [telemetry]
    assert other_apps([APP, fenced, telemetry], telemetry) == [APP]
