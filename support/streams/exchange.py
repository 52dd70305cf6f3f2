"""Client of the Streams data exchange service: discover endpoints, inject batches, retrieve output.

The service root (``datacenters.<dc>.exchange.url``) lists running data-exchange jobs with their
endpoint URLs; nothing else is hard-coded. Injection is a POST and is never re-sent once it may have
reached the server (no retry on read timeouts or 5xx): a :class:`StreamsTimeout` (or any
``StreamsConnectionError`` with ``request_sent``) means the batch may or may not have been taken, and
callers must record its outcome as unknown. Only connection-establishment errors are retried.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from requests.adapters import BaseAdapter

from support.config.settings import AppSettings, AuthSettings, HttpSettings
from support.streams.errors import StreamsApiError, StreamsError, StreamsNotFound, safe_url
from support.streams.http import POOL_SIZE, Timeout, default_http_settings, json_body, make_session, request

if TYPE_CHECKING:
    import requests
    from requests.auth import AuthBase

    from support.config.settings import Settings

__all__ = ["DataExchangeClient", "Endpoints"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Endpoints:
    """Where to inject into (``source_url``) and retrieve from (``sink_url``) a running job."""

    job_id: str
    source_url: str
    sink_url: str


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
        self.session: requests.Session = make_session(
            auth, ca_bundle, self.settings.retries, self.settings.backoff, POOL_SIZE, adapter
        )

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
        ``source`` and ``sink`` (operator, port) pick the endpoints. Without it, the job's only source and
        only sink are used.
        """
        jobs = [job for job in self.jobs() if _job_name(job) == job_name and job.get("status", "running") == "running"]
        if not jobs:
            return None
        job = max(jobs, key=lambda j: _as_int(_job_id(j)))
        endpoints = [e for e in job.get("endpoints", []) if isinstance(e, Mapping)]
        job_id = _job_id(job)
        source = self._pick(endpoints, "source", _wanted(application, "source"), job_name, job_id)
        sink = self._pick(endpoints, "sink", _wanted(application, "sink"), job_name, job_id)
        return Endpoints(job_id=job_id, source_url=source, sink_url=sink)

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

        404 -> ``StreamsNotFound`` (job or endpoint gone); a timeout -> ``StreamsTimeout``: the batch
        may have been taken (unknown outcome).
        """
        if not items:
            return 0
        if fmt == "json":
            body = json.dumps({"items": list(items)}, separators=(",", ":"), allow_nan=False).encode("utf-8")
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
            expected=(200, 201),
        )
        document = json_body(response)
        accepted = document.get("accepted") if isinstance(document, Mapping) else None
        if not isinstance(accepted, int) or isinstance(accepted, bool):
            raise StreamsApiError(
                f"POST {safe_url(url)}: expected {{'accepted': N}}, got {str(document)[:120]!r}",
                url=url,
                status=response.status_code,
                method="POST",
            )
        return accepted

    def retrieve(self, url: str, start_time_ms: int | None = None) -> list[dict[str, Any]]:
        """GET buffered tuples from a sink endpoint (consuming reads remove them on the server)."""
        params = {"startTime": str(int(start_time_ms))} if start_time_ms is not None else None
        response = request(self.session, "GET", url, timeout=self.settings.timeout, params=params, expected=(200,))
        document = json_body(response)
        if isinstance(document, list):
            items: Any = document
        elif isinstance(document, Mapping) and isinstance(document.get("items"), list):
            items = document["items"]
            if document.get("warning"):
                log.warning("%s: %s: %s", self.name, safe_url(url), document["warning"])
        else:
            raise StreamsApiError(
                f"GET {safe_url(url)}: expected {{'items': [...]}}",
                url=url,
                status=response.status_code,
                method="GET",
            )
        return [item for item in items if isinstance(item, dict)]


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
