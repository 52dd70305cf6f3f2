"""Metrics from Prometheus (scraping each data center's streams-metric-exporter), through prometheus-api-client.

Instant and range PromQL queries. Prometheus returns sample values as strings: they are converted here.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_api_client import PrometheusConnect

from support.metrics.series import Point

log = logging.getLogger(__name__)

#: Series sampled by default: name -> PromQL. ``{dc}`` is the label that names the data center.
DEFAULT_QUERIES = {
    "prom.{dc}.tuples_per_s":
        'sum by (dc) (rate(streams_operator_ip_nTuplesProcessed{{operatorname="{operator}"}}[5s]))',
    "prom.{dc}.job_health": 'min by (dc) (streams_job_health{{jobname="{job}"}})',
    "prom.{dc}.pe_launch_count": 'sum by (dc) (streams_pe_launchCount{{jobname="{job}"}})',
}


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
    """Thin typed wrapper around ``PrometheusConnect``."""

    def __init__(self, url: str, timeout: float = 5.0, connection: Any = None) -> None:
        self.url = url
        self._timeout = timeout
        self._prom = connection or PrometheusConnect(url=url, disable_ssl=url.startswith("http://"))

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


class PrometheusSource:
    """Samples a set of instant queries; each result series is named after its ``dc`` label."""

    name = "prometheus"

    def __init__(self, client: PrometheusClient, queries: Mapping[str, str], dc_label: str = "dc",
                 min_interval: float = 1.0) -> None:
        self._client = client
        self._queries = dict(queries)
        self._dc_label = dc_label
        self.min_interval = min_interval

    @classmethod
    def for_application(cls, client: PrometheusClient, job: str, operator: str, dc_label: str = "dc",
                        min_interval: float = 1.0) -> PrometheusSource:
        queries = {name: query.format(job=job, operator=operator).replace("(dc)", f"({dc_label})")
                   for name, query in DEFAULT_QUERIES.items()}
        return cls(client, queries, dc_label, min_interval)

    def sample(self) -> list[Point]:
        points: list[Point] = []
        for name, query in self._queries.items():
            for sample in self._client.instant(query):
                dc = sample.labels.get(self._dc_label, "all")
                points.append((name.format(dc=dc), sample.value))
        return points
