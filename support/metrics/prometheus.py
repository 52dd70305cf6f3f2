"""Metrics from Prometheus (scraping each data center's streams-metric-exporter), through prometheus-api-client.

Instant and range PromQL queries. Prometheus returns sample values as strings: they are converted here.

Range windows are sized from the scrape interval Prometheus reports (``/api/v1/targets`` ``scrapeInterval``,
else the ``scrape_interval`` of ``/api/v1/status/config``): a fixed ``[5s]`` returns nothing when the exporter
is scraped every 10 s, as its sample ``prometheus.yml`` does. A query names its window ``$window`` (four
scrape intervals) and its staleness bound ``$stale`` (two scrape intervals, in seconds).

When the exporter loses its JMX source it removes every series but ``streams_instance_status``, which keeps
the *last known* value (it can stay 1). So the source is judged from a fresh ``streams_instance_health``
sample, never from the status alone: ``prom.<dc>.exporter_has_source`` is 1 while the health series is fresh
and 0 when the exporter answers without it; the status is only reported next to a fresh health sample.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
import yaml
from prometheus_api_client import PrometheusConnect

from support.config.settings import PrometheusSettings
from support.metrics.series import Point

log = logging.getLogger(__name__)

#: Prometheus' own default when a configuration sets no scrape_interval
PROMETHEUS_DEFAULT_INTERVAL = 60.0
#: a range window spans this many scrape intervals (never fewer than MIN_WINDOW_INTERVALS)
WINDOW_INTERVALS = 4.0
MIN_WINDOW_INTERVALS = 2.0
#: a series whose last sample is older than this many scrape intervals counts as gone
STALE_INTERVALS = 2.0

#: ``streams_instance_health`` with a sample from the last ``$stale`` seconds; ``{dc}``/``{instance}``: labels
FRESH_HEALTH = (
    "(streams_instance_health unless on ({dc}, {instance}) "
    "(time() - timestamp(streams_instance_health) > $stale))"
)

#: Series sampled by default: name -> PromQL. In a query ``{dc}`` is the label that names the data center and
#: ``{instance}`` the instance label; in a name ``{dc}`` is the data center. ``$window`` / ``$stale`` come from
#: the discovered scrape interval.
DEFAULT_QUERIES = {
    "prom.{dc}.tuples_per_s":
        'sum by ({dc}) (rate(streams_operator_ip_nTuplesProcessed{{operatorname="{operator}"}}[$window]))',
    "prom.{dc}.job_health": 'min by ({dc}) (streams_job_health{{jobname=~"{job}"}})',
    "prom.{dc}.pe_launch_count": 'sum by ({dc}) (streams_pe_launchCount{{jobname=~"{job}"}})',
    "prom.{dc}.instance_health": "max by ({dc}) " + FRESH_HEALTH,
    "prom.{dc}.instance_status": "max by ({dc}) (streams_instance_status and on ({dc}, {instance}) "
                                 + FRESH_HEALTH + ")",
}
def _literal(text: str) -> str:
    """``text`` as an RE2 pattern matching itself, safe inside a PromQL double-quoted string (no backslashes)."""
    return "".join(ch if ch.isalnum() or ch in "_:-" else f"[{ch}]" if ch not in "]^\\\"" else "." for ch in text)


#: the exporter answers Prometheus (``up``) per data center
EXPORTER_UP = 'max by ({dc}) (up{{{dc}!=""}})'

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 31536000.0}


def parse_duration(text: str) -> float:
    """Seconds of a Prometheus duration (``10s``, ``500ms``, ``1m30s``)."""
    raw = str(text).strip()
    parts = _DURATION.findall(raw)
    if not parts or "".join(n + u for n, u in parts) != raw:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(float(n) * _UNIT[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    """A PromQL duration of at least ``seconds`` (whole milliseconds, rounded up)."""
    ms = math.ceil(round(seconds * 1000, 6))
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def range_window(scrape_interval: float, intervals: float = WINDOW_INTERVALS) -> str:
    """The PromQL range for ``rate()``/``*_over_time()``: ``intervals`` scrape intervals, at least two (a range
    needs two samples to give a rate)."""
    if scrape_interval <= 0:
        raise ValueError(f"scrape interval must be positive, got {scrape_interval}")
    return format_duration(scrape_interval * max(intervals, MIN_WINDOW_INTERVALS))


def config_interval(config_yaml: str) -> float:
    """The longest scrape interval of a Prometheus configuration (its global one where a job sets none)."""
    doc = yaml.safe_load(config_yaml) or {}
    default = parse_duration(str((doc.get("global") or {}).get("scrape_interval", "1m")))
    jobs = doc.get("scrape_configs") or []
    return max((parse_duration(str(j["scrape_interval"])) if j.get("scrape_interval") else default for j in jobs),
               default=default)


def targets_interval(targets: Iterable[Mapping[str, Any]], dc_label: str) -> float | None:
    """The longest ``scrapeInterval`` of the active targets that carry ``dc_label`` (of all of them when none
    does); None when Prometheus reports no interval (older releases) or has no target."""
    targets = list(targets)
    ours = [t for t in targets if dc_label in (t.get("labels") or {})] or targets
    found = [parse_duration(str(t["scrapeInterval"])) for t in ours if t.get("scrapeInterval")]
    return max(found) if found else None


@dataclass(frozen=True)
class PromSample:
    labels: dict[str, str]
    t: float
    value: float


def _value(raw: Any) -> float:
    try:
        return float(raw)  # "1", "NaN", "+Inf" all parse
    except (TypeError, ValueError):
        return float("nan")


class PrometheusClient:
    """Thin typed wrapper around ``PrometheusConnect``.

    Like the REST client: basic or bearer auth, a CA bundle (else the default trust store) and
    (connect, read) timeouts on every request (:meth:`from_settings`). The bearer token travels in the
    session's ``Authorization`` header only (never in a URL, a log line or a command line)."""

    def __init__(self, url: str, timeout: float = 5.0, connection: Any = None, *,
                 session: requests.Session | None = None, connect_timeout: float | None = None) -> None:
        self.url = url
        self._timeout = timeout
        self._request_timeout: float | tuple[float, float] = (
            (connect_timeout, timeout) if connect_timeout is not None else timeout)
        self._prom = connection or PrometheusConnect(
            url=url, disable_ssl=url.startswith("http://"), session=session,
            timeout=self._request_timeout)  # requests takes (connect, read) too

    @classmethod
    def from_settings(cls, settings: PrometheusSettings) -> PrometheusClient:
        """A client for ``metrics.prometheus`` (auth, ca_bundle, connect_timeout, read_timeout)."""
        session = requests.Session()
        session.verify = settings.ca_bundle or True
        auth = settings.auth
        if auth is not None and auth.type == "basic":
            session.auth = (auth.username or "", auth.password or "")
        elif auth is not None and auth.type == "bearer":
            session.headers["Authorization"] = f"Bearer {auth.token}"
        return cls(settings.url, timeout=settings.read_timeout, session=session,
                   connect_timeout=settings.connect_timeout)

    def ready_status(self) -> tuple[bool, str]:
        """``GET /-/ready`` with the client's auth, CA bundle and timeouts: (ready, detail)."""
        prom = self._prom
        try:
            response = prom._session.get(f"{prom.url.rstrip('/')}/-/ready", headers=prom.headers, auth=prom.auth,
                                         timeout=self._request_timeout)
        except requests.RequestException as exc:
            return False, str(exc).splitlines()[0][:160]
        return response.ok, f"{self.url} HTTP {response.status_code}"

    def instant(self, query: str) -> list[PromSample]:
        result = self._prom.custom_query(query=query, params={"timeout": f"{self._timeout:g}s"})
        out = []
        for item in result or []:
            t, raw = item.get("value", [0, "nan"])
            out.append(PromSample(dict(item.get("metric", {})), float(t), _value(raw)))
        return out

    def range(self, query: str, start: float, end: float, step: float = 1.0
              ) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
        result = self._prom.custom_query_range(
            query=query,
            start_time=dt.datetime.fromtimestamp(start, tz=dt.UTC),
            end_time=dt.datetime.fromtimestamp(end, tz=dt.UTC),
            step=f"{step:g}s",
        )
        return [(dict(item.get("metric", {})), [(float(t), _value(v)) for t, v in item.get("values", [])])
                for item in result or []]

    def ready(self) -> bool:
        return bool(self._prom.check_prometheus_connection())

    def active_targets(self) -> list[dict[str, Any]]:
        data = self._prom.get_targets(state="active") or {}
        return list(data.get("activeTargets") or [])

    def config_yaml(self) -> str:
        """The running configuration (``/api/v1/status/config``; prometheus-api-client has no call for it)."""
        prom = self._prom
        response = prom._session.request(
            method="GET", url=f"{prom.url}/api/v1/status/config", verify=prom._session.verify,
            headers=prom.headers, auth=prom.auth, cert=prom._session.cert, timeout=self._request_timeout,
        )
        response.raise_for_status()
        return str(response.json()["data"]["yaml"])

    def scrape_interval(self, dc_label: str = "dc") -> float:
        """The scrape interval of the exporters' targets as Prometheus reports it (targets, else its config)."""
        found = targets_interval(self.active_targets(), dc_label)
        return found if found is not None else config_interval(self.config_yaml())


class PrometheusSource:
    """Samples a set of instant queries; each result series is named after its ``dc`` label.

    The scrape interval is asked of Prometheus on the first sample (and again until it answers); ``$window``
    and ``$stale`` in the queries are then replaced. Besides the queries, every round adds per data center
    ``prom.<dc>.exporter_up`` (Prometheus reaches the exporter) and, while it does,
    ``prom.<dc>.exporter_has_source`` (1: a fresh ``streams_instance_health`` sample, 0: none).
    """

    name = "prometheus"

    def __init__(self, client: PrometheusClient, queries: Mapping[str, str], dc_label: str = "dc",
                 min_interval: float = 1.0, instance_label: str = "instancename") -> None:
        self._client = client
        self._templates = dict(queries)
        self._dc_label = dc_label
        self._instance_label = instance_label
        self.min_interval = min_interval
        self.scrape_interval: float | None = None
        self.window: str | None = None
        self._queries: dict[str, str] = {}

    @classmethod
    def for_application(cls, client: PrometheusClient, job: str, operator: str, dc_label: str = "dc",
                        min_interval: float = 1.0, instance_label: str = "instancename",
                        main_composite: str | None = None) -> PrometheusSource:
        """The default queries for the application's jobs: named ``job``, or (with ``main_composite``) named by the
        instance ``<main_composite>_<id>``, as a failover script's job is (the exporter has no application label)."""
        pattern = _literal(job) + (f"|{_literal(main_composite)}_[0-9]+" if main_composite else "")
        queries = {name: query.format(dc=dc_label, instance=instance_label, job=pattern, operator=operator)
                   for name, query in DEFAULT_QUERIES.items()}
        return cls(client, queries, dc_label, min_interval, instance_label)

    def _sized(self) -> dict[str, str]:
        if self.scrape_interval is None:
            interval = self._client.scrape_interval(self._dc_label)
            self.window = range_window(interval)
            stale = format_duration(interval * STALE_INTERVALS)
            stale_s = f"{parse_duration(stale):g}"
            self._queries = {name: q.replace("$window", self.window).replace("$stale", stale_s)
                             for name, q in self._templates.items()}
            self.scrape_interval = interval
            log.info("Prometheus scrapes every %g s: range windows [%s], series older than %s s count as gone",
                     interval, self.window, stale_s)
        return self._queries

    def sample(self) -> list[Point]:
        points: list[Point] = []
        queries = self._sized()
        health: set[str] = set()
        for name, query in queries.items():
            for sample in self._client.instant(query):
                dc = sample.labels.get(self._dc_label, "all")
                points.append((name.format(dc=dc), sample.value))
                if name.endswith(".instance_health"):
                    health.add(dc)
        for sample in self._client.instant(EXPORTER_UP.format(dc=self._dc_label)):
            dc = sample.labels.get(self._dc_label, "all")
            points.append((f"prom.{dc}.exporter_up", sample.value))
            if sample.value == 1:
                points.append((f"prom.{dc}.exporter_has_source", 1.0 if dc in health else 0.0))
        return points
