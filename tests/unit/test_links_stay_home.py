"""Credentials stay home (issue 13, gap 3): the REST and data exchange clients send requests, and their auth,
only to the configured origin (scheme, host, port) of the data center; a server-given link elsewhere is refused
before anything is sent, and the refusal is told to the listeners (journaled as ``link.refused`` in a run).

Real sockets: two local HTTP servers, "home" (the configured URL) and "elsewhere" (another port), each
recording the requests (and their Authorization headers) it received."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from support.streams.errors import StreamsLinkRefused
from support.streams.exchange import DataExchangeClient
from support.streams.http import HomeOnlyAuth, origin
from support.streams.rest import StreamsRestClient

AUTH = {"type": "basic", "username": "admin", "password": "home-only-secret"}


class Recorder(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: list[tuple[str, str, str | None]] = []  # (method, path, Authorization)
        self.routes: dict[str, tuple[int, dict[str, str], Any]] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: Recorder

    def _answer(self) -> None:
        self.server.seen.append((self.command, self.path, self.headers.get("Authorization")))
        status, headers, body = self.server.routes.get(self.path.split("?")[0], (404, {}, {"message": "nope"}))
        data = json.dumps(body).encode()
        self.send_response(status)
        for key, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def servers() -> Iterator[tuple[Recorder, Recorder]]:
    home, elsewhere = Recorder(), Recorder()
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
               for s in (home, elsewhere)]
    for thread in threads:
        thread.start()
    yield home, elsewhere
    for server in (home, elsewhere):
        server.shutdown()
        server.server_close()


def test_a_rest_link_to_another_port_is_refused_and_no_credentials_go_there(
        servers: tuple[Recorder, Recorder]) -> None:
    home, elsewhere = servers
    home.routes["/streams/resources"] = (200, {}, {"resources": [
        {"name": "instances", "resource": f"{elsewhere.url}/streams/instances"}]})
    elsewhere.routes["/streams/instances"] = (200, {}, {"instances": []})
    client = StreamsRestClient(f"{home.url}/streams/resources", auth=AUTH)
    refusals: list[tuple[str, str]] = []
    client.session.on_link_refused.append(lambda url, expected: refusals.append((url, expected)))

    with pytest.raises(StreamsLinkRefused) as caught:
        client.instance()

    assert elsewhere.seen == []  # nothing at all reached the other origin
    assert home.seen and all(auth and auth.startswith("Basic ") for _, _, auth in home.seen)
    assert f"{elsewhere.url}/streams/instances" in str(caught.value) and home.url in str(caught.value)
    assert refusals == [(f"{elsewhere.url}/streams/instances", f"{home.url}")]


def test_a_redirect_to_another_origin_is_refused(servers: tuple[Recorder, Recorder]) -> None:
    home, elsewhere = servers
    home.routes["/streams/resources"] = (302, {"Location": f"{elsewhere.url}/steal"}, {})
    client = StreamsRestClient(f"{home.url}/streams/resources", auth=AUTH)
    with pytest.raises(StreamsLinkRefused):
        client.resources()
    assert elsewhere.seen == []


def test_an_exchange_endpoint_elsewhere_is_refused(servers: tuple[Recorder, Recorder]) -> None:
    home, elsewhere = servers
    listing = {"jobs": [{"jobId": "1", "jobName": "orders", "status": "running", "endpoints": [
        {"kind": "source", "operator": "In", "port": 0, "url": f"{elsewhere.url}/in"},
        {"kind": "sink", "operator": "Out", "port": 0, "url": f"{home.url}/out"}]}]}
    home.routes["/streams/data"] = (200, {}, listing)
    home.routes["/out"] = (200, {}, {"items": [{"id": "a"}]})
    client = DataExchangeClient(f"{home.url}/streams/data", auth=AUTH)
    endpoints = client.endpoints("orders")
    assert endpoints is not None
    with pytest.raises(StreamsLinkRefused):
        client.inject(endpoints.source_url, [{"id": "x"}])
    assert client.retrieve(endpoints.sink_url) == [{"id": "a"}]  # the home endpoint still works
    assert elsewhere.seen == []


def test_origin_compares_scheme_host_and_port() -> None:
    assert origin("https://Host.example:443/x") == origin("https://host.example/y") == "https://host.example:443"
    assert origin("http://h/x") != origin("https://h/x")
    assert origin("https://h:9714/a") != origin("https://h:9715/a")
    assert origin("https://[::1]:9714/a") == "https://[::1]:9714"


def test_the_auth_is_attached_only_at_home() -> None:
    import requests

    from support.streams.http import BasicAuth

    guard = HomeOnlyAuth(BasicAuth("admin", "home-only-secret"), "https://h:9714/streams/resources")
    at_home = guard(requests.Request("GET", "https://h:9714/streams/jobs").prepare())
    elsewhere = guard(requests.Request("GET", "https://evil:9714/streams/jobs").prepare())
    assert "Authorization" in at_home.headers and "Authorization" not in elsewhere.headers
    assert "home-only-secret" not in repr(guard)


def test_a_run_journals_every_refusal_in_the_running_scenario(tmp_path: Path) -> None:
    from faultfakes import lab_shaped_config

    from support.orchestration import Journal
    from support.world import RunContext

    run = RunContext.open(lab_shaped_config(tmp_path), "r1", tmp_path / "run")
    try:
        run.journal = Journal(tmp_path / "journal.jsonl", "s")
        with pytest.raises(StreamsLinkRefused):
            run.rest["dc1"].get("https://203.0.113.9:9714/streams/jobs")
        with pytest.raises(StreamsLinkRefused):
            run.exchange["dc2"].session.post("https://203.0.113.9:9715/in", json=[{"id": "x"}])
        refused = [(e.fields["url"], e.fields["expected"]) for e in run.journal.events("link.refused")]
        assert refused == [("https://203.0.113.9:9714/streams/jobs", "https://198.18.1.10:9714"),
                           ("https://203.0.113.9:9715/in", "https://198.18.2.10:9715")]
    finally:
        run.close()
