"""A fake HTTP transport for client tests.

``FakeTransport`` is a real ``requests`` ``HTTPAdapter`` whose urllib3 connection pools never open a
socket: each attempt is answered from a table of canned answers and recorded. Because only the wire is
faked, the real urllib3 retry loop (the clients' ``RetryPolicy``) and requests' error mapping run.

    transport = FakeTransport()
    transport.route("GET", "https://h:9714/streams/resources", json_answer({"resources": []}))
    transport.route("POST", url, answer(503), answer(201, {...}))   # first 503, then 201 (last repeats)
    transport.route("GET", url, REFUSE)                              # connection refused
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ProtocolError, ReadTimeoutError
from urllib3.response import HTTPResponse

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    failure: str | None = None  # "refuse" | "connect_timeout" | "read_timeout" | "reset"


def answer(status: int = 200, body: Any = b"", headers: dict[str, str] | None = None) -> Answer:
    """An HTTP answer; dict/list bodies are sent as JSON, str as text/plain."""
    all_headers = dict(headers or {})
    if isinstance(body, dict | list):
        data = json.dumps(body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        data = body.encode()
        all_headers.setdefault("Content-Type", "text/plain")
    else:
        data = body
    return Answer(status, data, all_headers)


def json_answer(document: Any, status: int = 200) -> Answer:
    return answer(status, document)


def streams_error(status: int, error_id: str, message: str) -> Answer:
    """A Streams error answer ``{"id": ..., "message": ...}``."""
    return answer(status, {"id": error_id, "message": message})


REFUSE = Answer(failure="refuse")
CONNECT_TIMEOUT = Answer(failure="connect_timeout")
READ_TIMEOUT = Answer(failure="read_timeout")
RESET = Answer(failure="reset")


@dataclass
class Attempt:
    """One attempt on the wire (retries show up as several attempts)."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    connect_timeout: float | None
    read_timeout: float | None

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.url).query))

    def json(self) -> Any:
        assert self.body is not None
        return json.loads(self.body)


@dataclass
class Send:
    """One call of the adapter by requests (before retries)."""

    method: str
    url: str
    timeout: Any
    verify: Any
    headers: dict[str, str]


def _key(url: str) -> tuple[str, str, int, str]:
    parts = urlsplit(url)
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    return parts.scheme, (parts.hostname or "").lower(), port, parts.path or "/"


Handler = Callable[[Attempt], Answer]


class FakeTransport(HTTPAdapter):
    def __init__(self) -> None:
        self.routes: dict[tuple[str, tuple[str, str, int, str]], list[Answer | Handler]] = {}
        self.attempts: list[Attempt] = []
        self.sends: list[Send] = []
        super().__init__()

    # ---------------------------------------------------------------------------------- setup

    def route(self, method: str, url: str, *answers: Answer | Handler) -> None:
        """Answer ``method url`` (any query) with ``answers`` in turn; the last one repeats."""
        assert answers, "give at least one answer"
        self.routes[(method.upper(), _key(url))] = list(answers)

    def attempts_for(self, method: str, url: str) -> list[Attempt]:
        key = _key(url)
        return [a for a in self.attempts if a.method == method.upper() and _key(a.url) == key]

    # ---------------------------------------------------------------------------- requests side

    def send(self, request: Any, stream: bool = False, timeout: Any = None, verify: Any = True,
             cert: Any = None, proxies: Any = None) -> Any:  # fmt: skip
        self.sends.append(Send(request.method, request.url, timeout, verify, dict(request.headers)))
        return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": self._pool_class(HTTPConnectionPool),
            "https": self._pool_class(HTTPSConnectionPool),
        }

    def _pool_class(self, base: type[HTTPConnectionPool]) -> type[HTTPConnectionPool]:
        transport = self

        class FakePool(base):  # type: ignore[valid-type,misc]
            def _make_request(self, conn: Any, method: str, url: str, body: Any = None, headers: Any = None,
                              retries: Any = None, timeout: Any = None, chunked: bool = False,
                              response_conn: Any = None, preload_content: bool = True,
                              decode_content: bool = True, enforce_content_length: bool = True) -> Any:  # fmt: skip
                full_url = f"{self.scheme}://{self.host}:{self.port}{url}"
                return transport._serve(
                    self, conn, method, full_url, url, body, headers, timeout, response_conn,
                    preload_content, decode_content,
                )  # fmt: skip

        return FakePool

    # ------------------------------------------------------------------------------- wire side

    def _serve(self, pool: Any, conn: Any, method: str, full_url: str, request_uri: str, body: Any,
               headers: Any, timeout: Any, response_conn: Any, preload_content: bool,
               decode_content: bool) -> HTTPResponse:  # fmt: skip
        data = body.encode() if isinstance(body, str) else body
        attempt = Attempt(
            method,
            full_url,
            dict(headers or {}),
            data,
            getattr(timeout, "connect_timeout", None),
            getattr(timeout, "read_timeout", None),
        )
        self.attempts.append(attempt)
        queue = self.routes.get((method.upper(), _key(full_url)))
        if queue is None:
            raise AssertionError(f"FakeTransport: no route for {method} {full_url}")
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        canned = item if isinstance(item, Answer) else item(attempt)
        if canned.failure == "refuse":
            raise NewConnectionError(conn, "Failed to establish a new connection: [Errno 111] Connection refused")
        if canned.failure == "connect_timeout":
            raise ConnectTimeoutError(conn, f"Connection to {pool.host} timed out.")
        if canned.failure == "read_timeout":
            raise ReadTimeoutError(pool, request_uri, f"Read timed out. (read timeout={attempt.read_timeout})")
        if canned.failure == "reset":
            raise ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))
        response_headers = {"Content-Length": str(len(canned.body)), **canned.headers}
        return HTTPResponse(
            body=io.BytesIO(canned.body),
            headers=response_headers,
            status=canned.status,
            version=11,
            version_string="HTTP/1.1",
            reason={200: "OK", 201: "Created", 204: "No Content"}.get(canned.status, "Error"),
            preload_content=preload_content,
            decode_content=decode_content,
            pool=pool,
            connection=response_conn,
            request_method=method,
            request_url=full_url,
        )
