"""The metrics of one scenario: sources chosen from config, one background sampler, one store, export."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from support.config import Config
from support.metrics.jmx import JmxEndpoint, JmxSource
from support.metrics.prometheus import PrometheusClient, PrometheusSource
from support.metrics.rest import RestMetricsSource
from support.metrics.series import Baseline, Sampler, SeriesStore, Source

log = logging.getLogger(__name__)

DEFAULT_SOURCES = ("rest", "prometheus")


def build_sources(config: Config, rest: Mapping[str, Any], job_name: str, operators: list[str]) -> list[Source]:
    """The sources ``metrics.sources`` asks for (default rest and prometheus; jmx on request), each only when
    its endpoint is configured."""
    wanted = list(config.get("metrics.sources", None) or DEFAULT_SOURCES)
    sources: list[Source] = []
    if "rest" in wanted:
        sources.append(RestMetricsSource(rest, job_name, operators))
    url = config.get("metrics.prometheus.url", None)
    if "prometheus" in wanted and url:
        client = PrometheusClient(str(url))
        label = str(config.get("metrics.prometheus.dc_label", "dc"))
        operator = operators[1] if len(operators) > 1 else (operators[0] if operators else "")
        sources.append(PrometheusSource.for_application(client, job_name, operator, dc_label=label))
    if "jmx" in wanted:
        endpoints = []
        for dc in config.datacenters():
            jmx = config.get(f"datacenters.{dc}.jmx", None)
            if jmx and jmx.get("url"):
                instance = jmx.get("instance") or config.get(f"datacenters.{dc}.rest.instance", dc)
                endpoints.append(JmxEndpoint(dc, str(jmx["url"]), str(instance), jmx.get("username"),
                                             jmx.get("password")))
        if endpoints:
            sources.append(JmxSource(endpoints))
    return sources


class MetricsSession:
    """Starts sampling when the application is deployed; exports ``metrics.csv``/``metrics.json`` at the end."""

    def __init__(self, sources: list[Source], interval: float, max_duration: float) -> None:
        self.store = SeriesStore()
        self.sampler = Sampler(self.store, sources, interval, max_duration)
        self.baselines: dict[str, Baseline] = {}

    @classmethod
    def from_config(cls, config: Config, rest: Mapping[str, Any], job_name: str, operators: list[str],
                    max_duration: float) -> MetricsSession:
        interval = config.duration("metrics.interval", 1.0)
        return cls(build_sources(config, rest, job_name, operators), interval, max_duration)

    def start(self) -> None:
        self.sampler.start()

    def stop(self) -> None:
        self.sampler.stop()

    def capture_baselines(self, start: float, end: float) -> dict[str, Baseline]:
        """Baselines of every series over the steady window (counters as rates per second)."""
        for name in self.store.names():
            times, values = self.store.series(name)
            inside = (times >= start) & (times <= end)
            if inside.sum() < 2:
                continue
            baseline = Baseline.of(name, values[inside], start, end)
            if baseline is not None:
                self.baselines[name] = baseline
        return self.baselines

    def export(self, folder: Path) -> list[Path]:
        try:
            return self.store.write(folder)
        except OSError as exc:
            log.warning("metrics export to %s failed: %s", folder, exc)
            return []
