"""Metrics from the instances' JMX API (``com.ibm.streams.management`` MBeans) through jmxquery.

jmxquery starts a JVM for every ``query()`` (~200 ms), so all attributes of one data center are read in one
batched query, and sampling is never faster than once a second. When the target JVM does not answer (e.g.
SIGSTOPped), jmxquery's timeout path raises ``AttributeError: 'NoneType' object has no attribute 'decode'``:
that is reported as a timeout.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from support.metrics.series import Point
from support.units import format_seconds

log = logging.getLogger(__name__)

JOB_ATTRIBUTES = ("Status", "Health")
PE_ATTRIBUTES = ("LaunchCount", "Status", "Health")
#: status and health values (camelCase as in REST, or enum constants such as PARTIALLY_HEALTHY) as numbers
STATUS = {"running": 1.0, "healthy": 1.0, "partiallyhealthy": 0.5, "partiallyunhealthy": 0.5}
MIN_INTERVAL = 1.0


class JmxTimeout(Exception):
    """The JMX endpoint did not answer in time."""


@dataclass(frozen=True)
class JmxEndpoint:
    dc: str
    url: str
    instance: str
    username: str | None = None
    password: str | None = None


def _connection(endpoint: JmxEndpoint) -> Any:
    import jmxquery

    return jmxquery.JMXConnection(endpoint.url, endpoint.username, endpoint.password)


def query(endpoint: JmxEndpoint, beans: Mapping[str, tuple[str, ...]], timeout: float = 5.0,
          connection: Any = None) -> list[tuple[str, str, Any]]:
    """Read every (MBean pattern, attributes) in ONE jmxquery call; returns (mbean, attribute, value)."""
    import jmxquery

    queries = [jmxquery.JMXQuery(bean, attribute=attr) for bean, attrs in beans.items() for attr in attrs]
    conn = connection or _connection(endpoint)
    try:
        results = conn.query(queries, timeout=timeout)
    except AttributeError as exc:  # jmxquery's timeout path: err.output is None
        if "decode" in str(exc):
            raise JmxTimeout(f"JMX of {endpoint.dc} did not answer within {format_seconds(timeout, None)}") from None
        raise
    except subprocess.CalledProcessError as exc:
        raise JmxTimeout(f"JMX of {endpoint.dc} failed: exit {exc.returncode}") from None
    return [(str(r.mBeanName), str(r.attribute), r.value) for r in results]


def _label(mbean: str, key: str) -> str:
    for part in mbean.split(":", 1)[-1].split(","):
        name, _, value = part.partition("=")
        if name == key:
            return value.strip('"')
    return "?"


class JmxSource:
    """Per data center, one batched query of the job and PE MBeans: ``jmx.<dc>.job.<id>.<attr>``,
    ``jmx.<dc>.pe.<id>.<attr>`` (status and health as 1 / 0.5 / 0)."""

    name = "jmx"

    def __init__(self, endpoints: list[JmxEndpoint], timeout: float = 5.0, min_interval: float = MIN_INTERVAL,
                 connections: Mapping[str, Any] | None = None) -> None:
        self._endpoints = endpoints
        self._timeout = timeout
        self.min_interval = max(MIN_INTERVAL, min_interval)
        self._connections = dict(connections or {})
        self.timeouts: dict[str, int] = {}

    def sample(self) -> list[Point]:
        points: list[Point] = []
        for ep in self._endpoints:
            beans = {
                f'com.ibm.streams.management:type=instance.job,instance="{ep.instance}",*': JOB_ATTRIBUTES,
                f'com.ibm.streams.management:type=instance.pe,instance="{ep.instance}",*': PE_ATTRIBUTES,
            }
            try:
                rows = query(ep, beans, self._timeout, self._connections.get(ep.dc))
            except JmxTimeout as exc:
                self.timeouts[ep.dc] = self.timeouts.get(ep.dc, 0) + 1
                log.debug("%s", exc)
                points.append((f"jmx.{ep.dc}.reachable", 0.0))
                continue
            points.append((f"jmx.{ep.dc}.reachable", 1.0))
            for mbean, attribute, value in rows:
                kind = "job" if "type=instance.job," in mbean else "pe"
                if isinstance(value, str):
                    number = STATUS.get(value.replace("_", "").lower(), 0.0)
                else:
                    number = float(value or 0)
                points.append((f"jmx.{ep.dc}.{kind}.{_label(mbean, 'id')}.{attribute}", number))
        return points
