"""The metrics of one scenario: sources chosen from config, one background sampler, one store, export."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from support.config.settings import Settings
from support.metrics.jmx import JmxEndpoint, JmxSource, shared_bridge
from support.metrics.prometheus import PrometheusClient, PrometheusSource
from support.metrics.rest import RestMetricsSource
from support.metrics.series import Baseline, Sampler, SeriesStore, Source

log = logging.getLogger(__name__)

def build_sources(settings: Settings, rest: Mapping[str, Any], job_name: str, operators: list[str],
                  main_composite: str | None = None) -> list[Source]:
    """The sources ``metrics.sources`` asks for (schema default: rest and prometheus; jmx on request), each only
    when its endpoint is configured. The application's jobs are those named ``job_name`` and, with
    ``main_composite``, the ones the instance named ``<main_composite>_<id>`` (a failover script's job)."""
    wanted = settings.metrics.sources
    sources: list[Source] = []
    if "rest" in wanted:
        sources.append(RestMetricsSource(rest, job_name, operators, main_composite=main_composite))
    prometheus = settings.metrics.prometheus
    if "prometheus" in wanted and prometheus is not None:
        client = PrometheusClient.from_settings(prometheus)
        operator = operators[1] if len(operators) > 1 else (operators[0] if operators else "")
        sources.append(PrometheusSource.for_application(client, job_name, operator, dc_label=prometheus.dc_label,
                                                        instance_label=prometheus.instance_label,
                                                        main_composite=main_composite))
    if "jmx" in wanted:
        endpoints = []
        classpath: list[str] = []
        for dc, dc_settings in settings.datacenters.items():
            jmx = dc_settings.jmx
            if jmx is not None:
                # documented in the schema: the instance name defaults to the rest instance id
                instance = jmx.instance or dc_settings.rest.instance or dc
                endpoints.append(JmxEndpoint(dc, jmx.url, instance, jmx.username, jmx.password, jmx.ca_bundle,
                                             jmx.tls_protocols))
                classpath += [entry for entry in jmx.classpath if entry not in classpath]
        if endpoints:
            # one bridge JVM for every data center and every scenario of the run: the classpath of all of them
            sources.append(JmxSource(endpoints, bridge=shared_bridge(classpath)))
    return sources


class MetricsSession:
    """Starts sampling when the application is deployed; exports ``metrics.csv``/``metrics.json`` at the end."""

    def __init__(self, sources: list[Source], interval: float, max_duration: float) -> None:
        self.store = SeriesStore()
        self.sampler = Sampler(self.store, sources, interval, max_duration)
        self.baselines: dict[str, Baseline] = {}

    @classmethod
    def from_settings(cls, settings: Settings, rest: Mapping[str, Any], job_name: str, operators: list[str],
                      max_duration: float, main_composite: str | None = None) -> MetricsSession:
        return cls(build_sources(settings, rest, job_name, operators, main_composite), settings.metrics.interval,
                   max_duration)

    def start(self) -> None:
        self.sampler.start()

    def stop(self) -> None:
        self.sampler.stop()
        for source in self.sampler.sources:
            close = getattr(source, "close", None)
            if callable(close):
                try:
                    close()  # the JMX bridge JVM
                except Exception as exc:  # closing must not fail the scenario's teardown
                    log.warning("metrics source %s did not close: %s", source.name, exc)

    @property
    def problems(self) -> dict[str, str]:
        """Per source.dc, why a source's endpoint did not answer at the last sample (e.g. "JMX unreachable: ...")."""
        out: dict[str, str] = {}
        for source in self.sampler.sources:
            for dc, problem in (getattr(source, "problems", None) or {}).items():
                out[f"{source.name}.{dc}"] = str(problem)
        return out

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
