"""Client of the Streams data exchange service: discover endpoints, inject batches, retrieve output.

The service root (``datacenters.<dc>.exchange.url``) lists running data-exchange jobs with their
endpoint URLs and a link to each job's OpenAPI document; the request and reply shapes are taken from that
document (:mod:`support.streams.openapi`, cached per job), nothing else is hard-coded. Every 2xx answer
to an injection is acceptance (no body needed). Injection is a POST and is never re-sent once it may have
reached the server (no retry on read timeouts or 5xx): a :class:`StreamsTimeout` (or any
``StreamsConnectionError`` with ``request_sent``) means the batch may or may not have been taken, and
callers must record its outcome as unknown. Only connection-establishment errors are retried.

:class:`SinkCursor` reads a sink so that every tuple the application delivered is returned once, whether
the sink's reads are consuming or not (see its docstring for the rule).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from requests.adapters import BaseAdapter

from support.config.settings import AppSettings, AuthSettings, HttpSettings
from support.streams.errors import StreamsApiError, StreamsConflict, StreamsError, StreamsNotFound, safe_url
from support.streams.http import (
    POOL_SIZE,
    HomeSession,
    Timeout,
    default_http_settings,
    json_body,
    make_session,
    request,
)
from support.streams.openapi import (
    DEFAULT_SINK,
    DEFAULT_SOURCE,
    SinkShape,
    SourceShape,
    endpoint_operation,
    sink_shape,
    source_shape,
)
from support.streams.rest import is_app_job

if TYPE_CHECKING:
    from requests.auth import AuthBase

    from support.config.settings import Settings

__all__ = ["UNPARSED", "BufferMark", "DataExchangeClient", "Endpoints", "SinkCursor", "SinkRead", "is_unparsed",
           "unparsed_text"]

log = logging.getLogger(__name__)

SHAPES_KEPT = 64  # endpoint shapes remembered (a few per job; old jobs' entries go first)
#: Key of the stand-in for an output tuple that is not a JSON object (or a body that is not JSON) in
#: :attr:`SinkRead.items`: ``{UNPARSED: raw text}``. Readers record it as unparsed, never drop it.
UNPARSED = "__unparsed__"
UNPARSED_MAX = 2000  # characters of a malformed tuple's raw text kept


def unparsed_text(item: Any) -> str:
    """The raw text of a malformed output tuple (JSON when it was JSON, else its text), bounded."""
    text = item if isinstance(item, str) else json.dumps(item, default=str)
    return text[:UNPARSED_MAX]


@dataclass(frozen=True)
class Endpoints:
    """Where to inject into (``source_url``) and retrieve from (``sink_url``) a running job."""

    job_id: str
    source_url: str
    sink_url: str


@dataclass(frozen=True)
class BufferMark:
    """Where a returned tuple sits in the sink's buffer: its ``position`` (in the order tuples reached the
    sink) and ``time_ms`` (epoch ms at which it reached the sink). A re-read of the same buffered tuple has
    the same mark; a second tuple with the same attributes has another."""

    position: int
    time_ms: int


@dataclass(frozen=True)
class SinkRead:
    """One read of a sink: the tuples (oldest first), their buffer marks (None when the service gives
    none), the service's warning ("" when none) and ``sent_ms``, the client's clock when the request left.
    A tuple that is not a JSON object is in ``items`` as ``{UNPARSED: raw text}`` (see :func:`is_unparsed`)."""

    items: list[dict[str, Any]]
    marks: list[BufferMark] | None = None
    warning: str = ""
    sent_ms: int = 0


def _wanted(application: AppSettings | Mapping[str, Any] | None, kind: str) -> tuple[str, int] | None:
    """(operator, port) of the application's ``kind`` endpoint (``source``/``sink``), None when not given."""
    if isinstance(application, AppSettings):
        endpoint = application.source if kind == "source" else application.sink
        return endpoint.operator, endpoint.port
    raw = (application or {}).get(kind)
    if not raw:
        return None
    return str(raw.get("operator")), int(raw.get("port", 0))


class DataExchangeClient:
    """Data exchange client of one data center (one long-lived session; thread-safe)."""

    def __init__(
        self,
        root_url: str,
        *,
        auth: AuthBase | AuthSettings | Mapping[str, Any] | None = None,
        ca_bundle: str | None = None,
        settings: HttpSettings | None = None,
        adapter: BaseAdapter | None = None,
        name: str = "",
    ) -> None:
        self.root_url = root_url
        self.settings = settings or default_http_settings()
        self.name = name or safe_url(root_url)
        self.session: HomeSession = make_session(
            auth, ca_bundle, self.settings.retries, self.settings.backoff, POOL_SIZE, adapter, home=root_url
        )
        self._lock = threading.Lock()
        # endpoint URL -> its shape, from the OpenAPI document of its job (bounded: jobs come and go)
        self._shapes: OrderedDict[str, SourceShape | SinkShape] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings, dc: str, adapter: BaseAdapter | None = None) -> DataExchangeClient:
        """The client of data center ``dc``; auth and ca_bundle default to the DC's rest settings."""
        exchange = settings.datacenters[dc].exchange
        return cls(
            exchange.url,
            auth=exchange.auth,
            ca_bundle=exchange.ca_bundle,
            settings=settings.http,
            adapter=adapter,
            name=dc,
        )

    def __repr__(self) -> str:
        return f"DataExchangeClient({self.name!r}, {safe_url(self.root_url)!r})"

    def __enter__(self) -> DataExchangeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def _timeout(self, timeout: Timeout | None) -> Timeout:
        if timeout is None:
            return self.settings.timeout
        if isinstance(timeout, tuple):
            return timeout
        return (self.settings.connect_timeout, float(timeout))

    # ------------------------------------------------------------------------------ discovery

    def jobs(self) -> list[dict[str, Any]]:
        """Running jobs that have data exchange endpoints, as listed by the service root."""
        response = request(self.session, "GET", self.root_url, timeout=self.settings.timeout, expected=(200,))
        document = json_body(response)
        if not isinstance(document, Mapping) or not isinstance(document.get("jobs"), list):
            raise StreamsApiError(
                f"GET {safe_url(self.root_url)}: expected {{'jobs': [...]}}", url=self.root_url, method="GET"
            )
        return [job for job in document["jobs"] if isinstance(job, dict)]

    def endpoints(self, job_name: str, application: AppSettings | Mapping[str, Any] | None = None
                  ) -> Endpoints | None:
        """The endpoints of the running job ``job_name``, or None when no such job is listed.

        ``application`` is the application's settings (or the raw ``applications.<app>`` mapping): its
        ``source`` and ``sink`` (operator, port) pick the endpoints, and its ``main_composite`` also makes a job of
        that ``applicationName`` the application's (a failover script's job has the instance's default name).
        Without it, the job's only source and only sink are used.
        """
        main = (application.get("main_composite") if isinstance(application, Mapping)
                else getattr(application, "main_composite", None))
        jobs = [job for job in self.jobs()
                if is_app_job({"name": _job_name(job), "applicationName": job.get("applicationName")}, job_name, main)
                and job.get("status", "running") == "running"]
        if not jobs:
            return None
        job = max(jobs, key=lambda j: _as_int(_job_id(j)))
        endpoints = [e for e in job.get("endpoints", []) if isinstance(e, Mapping)]
        job_id = _job_id(job)
        source = self._pick(endpoints, "source", _wanted(application, "source"), job_name, job_id)
        sink = self._pick(endpoints, "sink", _wanted(application, "sink"), job_name, job_id)
        if not self._known(source) or not self._known(sink):
            self._learn_shapes(job, [source], [sink])
        return Endpoints(job_id=job_id, source_url=source, sink_url=sink)

    # ------------------------------------------------------------------------------ shapes

    def _known(self, url: str) -> bool:
        with self._lock:
            return url in self._shapes

    def _remember(self, url: str, shape: SourceShape | SinkShape) -> None:
        with self._lock:
            self._shapes[url] = shape
            self._shapes.move_to_end(url)
            while len(self._shapes) > SHAPES_KEPT:
                self._shapes.popitem(last=False)

    def _learn_shapes(self, job: Mapping[str, Any], sources: Sequence[str], sinks: Sequence[str]) -> None:
        """Read the job's OpenAPI document and remember the shapes of its ``sources`` and ``sinks``.

        A job that lists no document, a document that cannot be had (4xx, not JSON) or that does not describe
        an endpoint leaves that endpoint with the fallback shape (an ``items`` array), logged; a connection
        failure is raised (the service is not reachable, so neither is the endpoint)."""
        doc_url = _doc_url(job)
        doc: Mapping[str, Any] | None = None
        problem = f"job {_job_id(job)} lists no OpenAPI document"
        if doc_url is not None:
            try:
                document = json_body(
                    request(self.session, "GET", doc_url, timeout=self.settings.timeout, expected=(200,))
                )
            except (StreamsApiError, StreamsNotFound, StreamsConflict) as exc:  # connection/auth errors propagate
                problem = f"{safe_url(doc_url)}: {exc}"
            else:
                if isinstance(document, Mapping):
                    doc = document
                else:
                    problem = f"{safe_url(doc_url)} is not an OpenAPI document"
        for urls, method, derive, fallback in ((sources, "post", source_shape, DEFAULT_SOURCE),
                                                (sinks, "get", sink_shape, DEFAULT_SINK)):
            for url in urls:
                op = endpoint_operation(doc, doc_url or "", url, method) if doc is not None else None
                if doc is not None and op is None:
                    problem = f"{safe_url(doc_url or '')} does not describe {method.upper()} {safe_url(url)}"
                if op is None:
                    log.warning("%s: %s; assuming JSON bodies with an 'items' array for %s", self.name, problem,
                                safe_url(url))
                    self._remember(url, fallback)
                else:
                    self._remember(url, derive(doc or {}, op))

    def _shape(self, url: str, kind: str) -> SourceShape | SinkShape:
        """The shape of endpoint ``url``: remembered, else from the document of the job listing it."""
        with self._lock:
            shape = self._shapes.get(url)
        if shape is None:
            try:
                for job in self.jobs():
                    listed = {e.get("url") for e in job.get("endpoints", []) if isinstance(e, Mapping)}
                    if url in listed:
                        self._learn_shapes(job, [url] if kind == "source" else [], [url] if kind == "sink" else [])
                        break
            except StreamsError as exc:  # not the request's outcome: let the request itself tell
                log.debug("%s: cannot learn the shape of %s: %s", self.name, safe_url(url), exc)
            with self._lock:
                shape = self._shapes.get(url)
        if shape is None:  # not listed (the job is gone): the request will tell
            return DEFAULT_SOURCE if kind == "source" else DEFAULT_SINK
        return shape

    @staticmethod
    def _pick(
        endpoints: list[Mapping[str, Any]],
        kind: str,
        wanted: tuple[str, int] | None,
        job_name: str,
        job_id: str,
    ) -> str:
        if wanted:
            operator, port = wanted
            matches = [e for e in endpoints if e.get("operator") == operator and _as_int(e.get("port", 0)) == port]
            what = f"{kind} endpoint {operator} port {port}"
        else:
            matches = [e for e in endpoints if e.get("kind") == kind]
            what = f"{kind} endpoint"
        urls = [e["url"] for e in matches if isinstance(e.get("url"), str)]
        if len(urls) == 1:
            return urls[0]
        listed = ", ".join(f"{e.get('operator')}:{e.get('port')} ({e.get('kind')})" for e in endpoints) or "none"
        if not urls:
            raise StreamsNotFound(f"job {job_name} ({job_id}) has no {what} (endpoints: {listed})")
        raise StreamsError(f"job {job_name} ({job_id}) has {len(urls)} {kind} endpoints ({listed}); configure which")

    # --------------------------------------------------------------------------- inject/retrieve

    def inject(
        self,
        url: str,
        items: Sequence[Mapping[str, Any]],
        fmt: Literal["json", "csv"] = "json",
        timeout: Timeout | None = None,
    ) -> int:
        """POST a batch to a source endpoint; return how many tuples the server accepted.

        The body is shaped as the job's OpenAPI document says. Any 2xx is acceptance: an answer without a
        body (204), with an empty body or without the documented count means the whole batch; a documented
        count in the answer is returned as it is. 404 -> ``StreamsNotFound`` (job or endpoint gone); a
        timeout -> ``StreamsTimeout``: the batch may have been taken (unknown outcome).
        """
        if not items:
            return 0
        shape = self._shape(url, "source")
        assert isinstance(shape, SourceShape)
        if fmt == "json":
            document: Any = list(items) if shape.wrapper is None else {shape.wrapper: list(items)}
            body = json.dumps(document, separators=(",", ":"), allow_nan=False).encode("utf-8")
            content_type = "application/json"
        elif fmt == "csv":
            body = _to_csv(items).encode("utf-8")
            content_type = "text/csv"
        else:
            raise ValueError(f"fmt must be 'json' or 'csv', not {fmt!r}")
        response = request(
            self.session,
            "POST",
            url,
            timeout=self._timeout(timeout),
            data=body,
            headers={"Content-Type": content_type},
        )
        if not 200 <= response.status_code < 300:
            raise StreamsApiError(
                f"POST {safe_url(url)}: expected a 2xx answer, got {response.status_code}",
                url=url,
                status=response.status_code,
                method="POST",
            )
        if shape.count is None or not response.content.strip():
            return len(items)
        try:
            document = response.json()
        except ValueError:
            return len(items)  # a 2xx with a body that is not JSON: accepted all the same
        accepted = document.get(shape.count) if isinstance(document, Mapping) else None
        if not isinstance(accepted, int) or isinstance(accepted, bool):
            return len(items)
        return accepted

    def retrieve(self, url: str, start_time_ms: int | None = None) -> list[dict[str, Any]]:
        """GET buffered tuples from a sink endpoint (only the tuples that are JSON objects; :meth:`read` also gives
        their marks and the malformed ones)."""
        return [item for item in self.read(url, start_time_ms).items if UNPARSED not in item]

    def read(self, url: str, start_time_ms: int | None = None) -> SinkRead:
        """GET buffered tuples from a sink endpoint, shaped as the job's OpenAPI document says: the tuples
        that reached the sink at or after ``start_time_ms`` (epoch ms; all buffered ones when None, or when
        the endpoint documents no start-time parameter), with their buffer marks when the service gives
        them. A consuming sink removes what it returns."""
        shape = self._shape(url, "sink")
        assert isinstance(shape, SinkShape)
        params = None
        if start_time_ms is not None and shape.start is not None:
            value = (str(int(start_time_ms)) if shape.start_format == "ms"
                     else datetime.fromtimestamp(start_time_ms / 1000, UTC).isoformat(timespec="milliseconds"))
            params = {shape.start: value}
        sent_ms = _now_ms()
        response = request(self.session, "GET", url, timeout=self.settings.timeout, params=params)
        if not 200 <= response.status_code < 300:
            raise StreamsApiError(f"GET {safe_url(url)}: expected a 2xx answer, got {response.status_code}",
                                  url=url, status=response.status_code, method="GET")
        if not response.content.strip():
            return SinkRead([], [] if shape.marks else None, "", sent_ms)
        try:
            document = response.json()
        except ValueError:  # not JSON at all: the whole body is one unparsed output (taken off the server)
            log.warning("%s: GET %s: the answer is not JSON (%d bytes): recorded as unparsed", self.name,
                        safe_url(url), len(response.content))
            return SinkRead([{UNPARSED: unparsed_text(response.text)}], None, "", sent_ms)
        warning = ""
        marks_raw: Any = None
        if isinstance(document, list):
            raw: Any = document
        elif isinstance(document, Mapping) and shape.items is not None and isinstance(document.get(shape.items), list):
            raw = document[shape.items]
            if shape.warning and document.get(shape.warning):
                warning = str(document[shape.warning])
                log.warning("%s: %s: %s", self.name, safe_url(url), warning)
            if shape.marks is not None:
                marks_raw = document.get(shape.marks)
        else:
            wanted = f"{{{shape.items!r}: [...]}}" if shape.items else "a JSON array"
            raise StreamsApiError(
                f"GET {safe_url(url)}: expected {wanted}",
                url=url,
                status=response.status_code,
                method="GET",
            )
        # a tuple that is not a JSON object is kept (as unparsed, with its mark): a reader records it, never drops it
        items = [item if isinstance(item, dict) and UNPARSED not in item else {UNPARSED: unparsed_text(item)}
                 for item in raw]
        marks = _marks(marks_raw, list(range(len(raw))), shape) if marks_raw is not None else None
        return SinkRead(items, marks, warning, sent_ms)


class SinkCursor:
    """Turns repeated reads of one sink endpoint into the tuples the application delivered there, each
    once per delivery, for consuming and non-consuming sinks alike. Not thread-safe (one reader).

    The rule (docs/spec/lab-contract.md, "Reading a sink"):

    - Every read asks for the tuples that reached the sink at or after :meth:`start_time_ms`: the first
      read from ``since_ms`` (tuples buffered earlier are not this run's), later reads from the newest
      buffer time seen minus ``overlap_ms`` (never earlier than the previous start). A non-consuming sink
      returns the tuples of that overlap again.
    - **With buffer marks** (the service says where each tuple sits in its buffer): a tuple whose mark
      (position, time) was seen before is a re-read and is skipped; a tuple with a new mark is a delivery,
      even if a tuple with the same id came before: an application that delivers a tuple twice puts two
      tuples in the buffer, with two marks, and is recorded as duplicated. A tuple older than the start
      is skipped (it was read before, or it is from before ``since_ms``). Marks older than the start
      cannot come back and are forgotten, so memory holds the tuples of one overlap (at most
      ``max_remembered``).
    - **Without marks**: the start is the client's clock when the previous read left, minus
      ``overlap_ms`` (which must then cover the clock difference to the service and the request's
      latency). A non-consuming read returns a tail of the previous read followed by new tuples: the longest
      tail of the previous read's ids that this read starts with is a re-read, the rest is new. Memory
      holds one read's ids. Limitation: a consuming sink gives no tail to re-read, so a real duplicate that
      exactly repeats the end of the previous read would be taken for a re-read.
    """

    def __init__(self, since_ms: int, overlap_ms: int = 500, max_remembered: int = 100_000, id_field: str = "id"
                 ) -> None:
        self._id_field = id_field  # the output field that carries the tuple id (the application contract's)
        self._start = since_ms
        self._overlap = max(0, overlap_ms)
        self._max = max_remembered
        self._seen: OrderedDict[tuple[int, int], int] = OrderedDict()  # mark -> its time, oldest first
        self._newest: int | None = None
        self._previous: list[str] = []
        self.rereads = 0  # tuples skipped as re-reads (for the journal and tests)

    def start_time_ms(self) -> int:
        return self._start

    def admit(self, read: SinkRead) -> list[dict[str, Any]]:
        """The tuples of ``read`` (made with :meth:`start_time_ms`) that are deliveries not yet returned."""
        if read.marks is not None and len(read.marks) == len(read.items):
            fresh = self._admit_marked(read)
        else:
            fresh = self._admit_unmarked(read)
        self.rereads += len(read.items) - len(fresh)
        return fresh

    def _admit_marked(self, read: SinkRead) -> list[dict[str, Any]]:
        assert read.marks is not None
        start = self._start
        fresh: list[dict[str, Any]] = []
        for item, mark in zip(read.items, read.marks, strict=True):
            key = (mark.position, mark.time_ms)
            if mark.time_ms < start or key in self._seen:
                continue
            self._seen[key] = mark.time_ms
            fresh.append(item)
            if self._newest is None or mark.time_ms > self._newest:
                self._newest = mark.time_ms
        if self._newest is not None:
            self._start = max(self._start, self._newest - self._overlap)
        while self._seen and (next(iter(self._seen.values())) < self._start or len(self._seen) > self._max):
            self._seen.popitem(last=False)
        return fresh

    def _admit_unmarked(self, read: SinkRead) -> list[dict[str, Any]]:
        id_field = self._id_field
        ids = [str(item.get(id_field, item.get(UNPARSED, ""))) for item in read.items]
        skip = _overlap(self._previous, ids)
        self._previous = ids[-self._max:]
        if read.sent_ms:
            self._start = max(self._start, read.sent_ms - self._overlap)
        return read.items[skip:]


def is_unparsed(item: Mapping[str, Any]) -> bool:
    """Whether ``item`` of a :class:`SinkRead` stands for a malformed output tuple."""
    return UNPARSED in item


def _overlap(previous: list[str], current: list[str]) -> int:
    """The length of the longest tail of ``previous`` that ``current`` starts with."""
    if not previous or not current:
        return 0
    first = current[0]
    for j, value in enumerate(previous):
        if value == first:
            k = len(previous) - j
            if k <= len(current) and previous[j:] == current[:k]:
                return k
    return 0


def _marks(raw: Any, keep: list[int], shape: SinkShape) -> list[BufferMark] | None:
    """The buffer marks of the kept tuples, or None when they do not line up with the tuples."""
    if not isinstance(raw, list) or len(raw) < (keep[-1] + 1 if keep else 0):
        return None
    out: list[BufferMark] = []
    for i in keep:
        entry = raw[i]
        if not isinstance(entry, Mapping):
            return None
        try:
            out.append(BufferMark(int(entry[shape.position]), int(entry[shape.time])))
        except (KeyError, TypeError, ValueError):
            return None
    return out


def _now_ms() -> int:
    return int(time.time() * 1000)


def _doc_url(job: Mapping[str, Any]) -> str | None:
    """The link to a listed job's OpenAPI document (JSON)."""
    for key in ("openapi", "openapiJson", "openApi", "swagger", "apiDocs", "docs", "documentation"):
        value = job.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, Mapping):
            for sub in ("json", "url", "href"):
                if isinstance(value.get(sub), str):
                    return str(value[sub])
    for value in job.values():
        if isinstance(value, str) and value.rstrip("/").endswith(("openapi.json", "swagger.json")):
            return value
    return None


def _to_csv(items: Sequence[Mapping[str, Any]]) -> str:
    """Header line (union of keys, first-seen order) and one row per item; missing values empty."""
    columns: dict[str, None] = {}
    for item in items:
        for key in item:
            columns.setdefault(str(key), None)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for item in items:
        writer.writerow([_csv_value(item.get(column)) for column in columns])
    return buffer.getvalue()


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Mapping | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _job_name(job: Mapping[str, Any]) -> str | None:
    value = job.get("jobName", job.get("name"))
    return None if value is None else str(value)


def _job_id(job: Mapping[str, Any]) -> str:
    return str(job.get("jobId", job.get("id", "")))


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1
