"""Metrics from the Streams REST management API: job health, PE launch counts and CPU, operator port counters."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from support.metrics.series import Point
from support.streams.errors import StreamsError
from support.streams.rest import is_app_job

log = logging.getLogger(__name__)

HEALTH = {"healthy": 1.0, "partiallyHealthy": 0.5, "partiallyUnhealthy": 0.5}


class RestApi(Protocol):
    def jobs(self, name: str | None = None) -> list[dict[str, Any]]: ...

    def pes(self, job: Mapping[str, Any]) -> list[dict[str, Any]]: ...

    def operators(self, job: Mapping[str, Any]) -> list[dict[str, Any]]: ...

    def get(self, url: str, **params: Any) -> Any: ...

    def metrics(self, element_or_url: Mapping[str, Any] | str) -> dict[str, int]: ...


class RestMetricsSource:
    """Per data center: ``rest.<dc>.job.running|health``, ``rest.<dc>.pe.launchCount|nCpuMilliseconds`` (sums
    over the job's PEs) and ``rest.<dc>.<operator>.<metric>`` for the named operators' port 0 counters."""

    name = "rest"

    def __init__(self, rest: Mapping[str, RestApi], job_name: str, operators: Sequence[str] = (),
                 min_interval: float = 1.0, main_composite: str | None = None) -> None:
        self._rest = rest
        self._job_name = job_name
        self._main_composite = main_composite
        self._operators = list(operators)
        self.min_interval = min_interval
        self._ports: dict[tuple[str, str], dict[str, list[str]]] = {}  # (dc, job id) -> operator -> URLs

    def sample(self) -> list[Point]:
        points: list[Point] = []
        for dc, api in self._rest.items():
            try:
                points += self._sample_dc(dc, api)
            except StreamsError as exc:
                log.debug("rest metrics of %s unavailable: %s", dc, exc)
                points.append((f"rest.{dc}.job.running", 0.0))
        return points

    def _sample_dc(self, dc: str, api: RestApi) -> list[Point]:
        listed = api.jobs() if self._main_composite else api.jobs(self._job_name)
        jobs = [j for j in listed
                if j.get("status") == "running" and is_app_job(j, self._job_name, self._main_composite)]
        prefix = f"rest.{dc}"
        if not jobs:
            return [(f"{prefix}.job.running", 0.0)]
        job = max(jobs, key=lambda j: int(j.get("id", 0)) if str(j.get("id", "")).isdigit() else 0)
        points: list[Point] = [(f"{prefix}.job.running", 1.0),
                               (f"{prefix}.job.health", HEALTH.get(str(job.get("health")), 0.0))]
        pes = api.pes(job)
        points.append((f"{prefix}.pe.launchCount", float(sum(int(p.get("launchCount") or 0) for p in pes))))
        points.append((f"{prefix}.pe.running", float(sum(p.get("status") == "running" for p in pes))))
        cpu = 0
        for pe in pes:
            cpu += api.metrics(pe).get("nCpuMilliseconds", 0)
        points.append((f"{prefix}.pe.nCpuMilliseconds", float(cpu)))
        for operator, urls in self._port_urls(dc, api, job).items():
            for url in urls:
                for metric, value in api.metrics(url).items():
                    points.append((f"{prefix}.{operator}.{metric}", float(value)))
        return points

    def _port_urls(self, dc: str, api: RestApi, job: Mapping[str, Any]) -> dict[str, list[str]]:
        key = (dc, str(job.get("id")))
        if key not in self._ports:
            found: dict[str, list[str]] = {}
            for op in api.operators(job):
                if op.get("name") not in self._operators:
                    continue
                urls = []
                for link, list_key in (("inputPorts", "inputPorts"), ("outputPorts", "outputPorts")):
                    if isinstance(op.get(link), str):
                        document = api.get(op[link])
                        ports = document.get(list_key, []) if isinstance(document, Mapping) else []
                        urls += [p["metrics"] for p in ports[:1] if isinstance(p.get("metrics"), str)]
                found[str(op["name"])] = urls or ([op["metrics"]] if isinstance(op.get("metrics"), str) else [])
            self._ports = {k: v for k, v in self._ports.items() if k[0] != dc}
            self._ports[key] = found
        return self._ports[key]
