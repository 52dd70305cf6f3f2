"""Prometheus exporter per DC that behaves like the streams-metric-exporter (v5) on a refresh rate of 0.

`python -m lab.exporter --dc dcN` serves `GET /metrics` and `GET /prometheus` on `<dc host>:25500`
(plain HTTP, like the real exporter's default). Every scrape first refreshes from the instance's REST
management API (HTTPS verified against the lab CA, Basic auth; one kept-alive connection): the stand-in for
the real exporter's JMX pull (`snapshotJobs`, `snapshotJobMetrics`, `retrieveResourceMetrics`).

Like the real exporter (IBMStreams/streamsx.jmxclients `streams-metric-exporter`, `MetricsExporter`,
`PrometheusMetricsExporter`, `StreamsInstanceTracker`, `JobDetails`), every value lives in a gauge registry
that persists between scrapes; a series is only removed when its job goes or the tracker resets. Families
(all gauges, each with `# HELP` / `# TYPE`; a family whose series were removed keeps its two header lines):

- instance `streams_instance_{status,health,startTime,jobCount}` {instancename}
- resource `streams_resource_{status,<host metric>}` {instancename, resource};
  `streams_resource_role` {instancename, resource, role} = 1
- job `streams_job_{submitTime,healthy,health,status,pecount,nCpuMilliseconds,nResidentMemoryConsumption,
  nMemoryConsumption,avg_congestionFactor,max_congestionFactor,min_congestionFactor,sum_congestionFactor}`
  {instancename, jobname}
- PE `streams_pe_{status,health,launchCount,nCpuMilliseconds,nMemoryConsumption,nResidentMemoryConsumption}`
  {instancename, jobname, resource, peid}
- PE ports `streams_pe_ip_<metric>`, `streams_pe_op_<metric>` {..., peid, index} (index = indexWithinPE);
  PE output connections `streams_pe_op_connection_<metric>` {..., peid, index, connectionid}
- operator `streams_operator_<metric>` {..., peid, operatorname, operatorkind} (operator-level metrics);
  operator ports `streams_operator_ip_<metric>` {..., inputportname}, `streams_operator_op_<metric>`
  {..., outputportname}

There is no `streams_pe_nTuplesProcessed`: tuple counters are PE *port* metrics (`streams_pe_ip_nTuplesProcessed`).

Behaviour copied from the real code:
- Encodings: health healthy 1, partially* 0.5, else 0 (`streams_job_healthy` uses the same function); job
  status running 1, canceling/constructed 0.5; PE status running 1, starting/constructed/restarting/stopping/
  submitted 0.5; instance status running 1, partiallyRunning/partiallyFailed 0.5; resource status running 1,
  partiallyFailed/partiallyRunning/restarting/stopping/starting 0.5; else 0.
- A PE that is not healthy gets no metric update: its PE, port, connection and operator series keep their
  last values until it is healthy again (its status/health/launchCount are updated). Job aggregates sum the
  healthy PEs only; `avg_congestionFactor` is a long division, `min_congestionFactor` 0 without connections.
- **Losing the source** (REST unreachable or failing, instance not found, or found but not started): the
  tracker resets. Every series of the instance is removed, then `streams_instance_status` is set again from
  the **last known** instance status (still 1 when the API stopped answering while the instance ran; 0 when
  the instance answered `stopped`). There is no `streams_instance_health`, `startTime`, `jobCount`, job, PE,
  operator or resource sample until the source answers again; the first scrape after that exports everything.

Lab choices: `resource` is the PE's `resource` link (the DC host 198.18.N.10); operator port names are the
port's `streamName`; a PE whose values do not come within PE_TIMEOUT is skipped for that scrape (its series
keep their values), so a scrape stays within Prometheus' timeout. Standard library only.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import logging
import math
import re
import signal
import ssl
import sys
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from lab import paths
from lab.httpd import LabHTTPServer

PORT = 25500
PE_TIMEOUT = 0.4  # s per PE-scoped REST call (the instance asks the PE itself for these values)
log = logging.getLogger("lab.exporter")

HEALTH_HALF = {"partiallyHealthy", "partiallyUnhealthy"}
JOB_STATUS_HALF = {"canceling", "constructed"}
PE_STATUS_HALF = {"starting", "constructed", "restarting", "stopping", "submitted"}
INSTANCE_STATUS_HALF = {"partiallyRunning", "partiallyFailed"}
RESOURCE_STATUS_HALF = {"partiallyFailed", "partiallyRunning", "restarting", "stopping", "starting"}
#: the PE-level system metrics (reference §4.1); tuple counters belong to the PE's ports
PE_METRICS = ("nCpuMilliseconds", "nMemoryConsumption", "nResidentMemoryConsumption")


@dataclass(frozen=True)
class Kind:
    """One of the real exporter's `StreamsObjectType`s: name prefix, label names, default help prefix."""

    prefix: str
    labels: tuple[str, ...]
    description: str


_PE_L = ("instancename", "jobname", "resource", "peid")
_OP_L = (*_PE_L, "operatorname", "operatorkind")
INSTANCE = Kind("streams_instance_", ("instancename",), "Streams instance metric")
RESOURCE = Kind("streams_resource_", ("instancename", "resource"), "Streams resource metric")
RESOURCE_ROLE = Kind("streams_resource_", ("instancename", "resource", "role"), "Streams resource role")
JOB = Kind("streams_job_", ("instancename", "jobname"), "Streams job metric")
PE = Kind("streams_pe_", _PE_L, "Streams pe metric")
PE_INPUTPORT = Kind("streams_pe_ip_", (*_PE_L, "index"), "Streams pe input port metric")
PE_OUTPUTPORT = Kind("streams_pe_op_", (*_PE_L, "index"), "Streams pe output port metric")
PE_OUTPUTPORT_CONNECTION = Kind(
    "streams_pe_op_connection_", (*_PE_L, "index", "connectionid"), "Streams pe output port connection metric"
)
OPERATOR = Kind("streams_operator_", _OP_L, "Streams operator metric")
OPERATOR_INPUTPORT = Kind("streams_operator_ip_", (*_OP_L, "inputportname"), "Streams operator input port metric")
# the real metricDescriptionPrefix() lacks a `break` after this case and falls through to "Streams metric"
OPERATOR_OUTPUTPORT = Kind("streams_operator_op_", (*_OP_L, "outputportname"), "Streams metric")

INSTANCE_HELP = {
    "status": "Instance status, 1: running, .5: partially up, 0: stopped, failed, unknown",
    "health": "Instance health, 1: healthy, .5: partially healthy, 0: unhealthy, unknown",
    "startTime": "Epoch time in milliseconds when the instance was started",
    "jobCount": "Number of jobs currently deployed into the streams instance",
}
# JobDetails.createExportedMetrics(); its `status` goes to the instance type by mistake there (a no-op, the
# instance's `status` exists already), so `streams_job_status` gets the default help
JOB_HELP = {
    "submitTime": "Epoch time in milliseconds when job was submitted",
    "healthy": "DEPRECTED: Use helath: Job health, set to 1 of job is healthy else 0",
    "health": "Job health, 1: healthy, .5: partially healthy, 0: unhealthy, unknown",
    "nCpuMilliseconds": "Sum of each pe metric: nCpuMilliseconds",
    "nResidentMemoryConsumption": "Sum of each pe metric: nResidentMemoryConsumption",
    "nMemoryConsumption": "Sum of each pe metric: nMemoryConsumption",
    "avg_congestionFactor": "Average of all pe connection metric: congestionFactor",
    "max_congestionFactor": "Maximum of all pe connection metric: congestionFactor",
    "min_congestionFactor": "Minimum of all pe connection metric: congestionFactor",
    "sum_congestionFactor": "Sum of each pe metric: congestionFactor (no value used by itself",
    "pecount": "Number of pes deployed for this job",
}


def _encoded(value: str, full: str, half: set[str]) -> float:
    """The exporter's encoding of a state: 1 for the good one, 0.5 for the in-between ones, else 0."""
    if value == full:
        return 1.0
    return 0.5 if value in half else 0.0


def health_value(health: str) -> float:
    return _encoded(health, "healthy", HEALTH_HALF)


def job_status_value(status: str) -> float:
    return _encoded(status, "running", JOB_STATUS_HALF)


def pe_status_value(status: str) -> float:
    return _encoded(status, "running", PE_STATUS_HALF)


def instance_status_value(status: str) -> float:
    return _encoded(status, "running", INSTANCE_STATUS_HALF)


def resource_status_value(status: str) -> float:
    return _encoded(status, "running", RESOURCE_STATUS_HALF)


def sanitize(name: str) -> str:
    """PrometheusMetricsExporter.sanitizeMetricName: whitespace runs become `_`, then every non-word character
    (and an underscore in first place) is removed."""
    name = re.sub(r"\s+", "_", name)
    name = name[1:] if name.startswith("_") else name
    return re.sub(r"[^a-zA-Z0-9_]", "", name)


def metric_name(kind: Kind, metric: str) -> str:
    return kind.prefix + sanitize(metric)


def java_double(v: float) -> str:
    """A value the way the real exporter (Java simpleclient, Double.toString) prints it."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == 0:
        return "0.0"
    if 1e-3 <= abs(v) < 1e7:
        r = repr(float(v))
        return r if ("." in r or "e" in r) else r + ".0"
    sign, digits, exp = Decimal(repr(float(v))).normalize().as_tuple()
    ds = "".join(str(d) for d in digits)
    e10 = len(ds) - 1 + int(exp)
    mant = ds[0] + "." + (ds[1:] or "0")
    return ("-" if sign else "") + f"{mant}E{e10}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@dataclass
class Gauge:
    name: str
    help: str
    labels: tuple[str, ...]
    children: dict[tuple[str, ...], float] = field(default_factory=dict)


class Registry:
    """The gauges of one exporter, kept between scrapes (simpleclient's registry + the real label index)."""

    def __init__(self) -> None:
        self.gauges: dict[str, Gauge] = {}

    def create(self, metric: str, kind: Kind, help_text: str) -> None:
        name = metric_name(kind, metric)
        if name not in self.gauges:
            self.gauges[name] = Gauge(name, help_text, kind.labels)

    def set(self, metric: str, kind: Kind, values: tuple[str, ...], value: float) -> None:
        self.create(metric, kind, f"{kind.description}: {metric}")
        gauge = self.gauges[metric_name(kind, metric)]
        if len(values) != len(gauge.labels):
            raise ValueError(f"{gauge.name}: labels {gauge.labels} do not fit {values}")
        gauge.children[values] = float(value)

    def remove_children(self, *prefix: str) -> None:
        """Remove every series whose first label values are `prefix` (removeAllChildStreamsMetrics)."""
        n = len(prefix)
        for gauge in self.gauges.values():
            for values in [v for v in gauge.children if v[:n] == prefix]:
                del gauge.children[values]

    def render(self) -> bytes:
        """The Prometheus text format 0.0.4, as simpleclient writes it (headers even without samples)."""
        out: list[str] = []
        for g in self.gauges.values():
            out.append(f"# HELP {g.name} {g.help.replace(chr(92), chr(92) * 2).replace(chr(10), chr(92) + 'n')}")
            out.append(f"# TYPE {g.name} gauge")
            for values, value in g.children.items():
                lab = ",".join(f'{k}="{_escape(v)}"' for k, v in zip(g.labels, values, strict=True))
                out.append(f"{g.name}{{{lab}}} {java_double(value)}")
        return ("\n".join(out) + "\n").encode()


class RestPuller:
    """One kept-alive HTTPS connection to the DC's own REST API (re-opened after any error)."""

    def __init__(self, dc: str, password: str, timeout: float = 3.0) -> None:
        base = urlsplit(paths.rest_base(dc))
        self.host = base.hostname or ""
        self.port = base.port or 443
        self.ctx = ssl.create_default_context(cafile=str(paths.ca_pem()))
        token = base64.b64encode(f"{paths.USER}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Accept": "application/json"}
        self.timeout = timeout
        self.conn: http.client.HTTPSConnection | None = None
        self.iurl = f"/streams/instances/{paths.instance_id(dc)}"

    def get(self, path: str, timeout: float | None = None) -> Any:
        t = timeout or self.timeout
        for attempt in (1, 2):  # a kept-alive connection the server closed meanwhile fails once
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=t)
            self.conn.timeout = t
            if self.conn.sock is not None:
                self.conn.sock.settimeout(t)
            try:
                self.conn.request("GET", path, headers=self.headers)
                resp = self.conn.getresponse()
                body = resp.read()
            except TimeoutError:
                self.close()  # the answer may still come: this connection is unusable
                raise
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
                continue
            if resp.status == 404:
                return None
            if resp.status != 200:
                raise OSError(f"GET {path} answered {resp.status}")
            return json.loads(body)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.close()
            self.conn = None


def _tail_id(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _path(url: str) -> str:
    return urlsplit(url).path


@dataclass
class PeShape:
    """The ports of a PE (indexWithinPE) and the connections of each output port; fixed for a job's life."""

    inputs: list[int]
    outputs: list[int]
    connections: dict[int, list[str]]


Value = tuple[str, Kind, tuple[str, ...], float]


class Puller(Protocol):
    """What the tracker needs of its source (RestPuller; a fake in the unit tests)."""

    iurl: str

    def get(self, path: str, timeout: float | None = None) -> Any: ...

    def close(self) -> None: ...


class SourceLost(Exception):
    """The instance cannot be tracked (not found, or found but not started)."""


class Collector:
    """The instance tracker: refreshes the registry from REST on every scrape, resets it when the source goes."""

    def __init__(self, dc: str, password: str, rest: Puller | None = None) -> None:
        self.dc = dc
        self.iname = paths.instance_id(dc)
        self.rest: Puller = rest if rest is not None else RestPuller(dc, password)
        self.registry = Registry()
        self.lock = threading.Lock()
        self.available = False
        self.status = "unknown"  # last known instance status (kept across a reset, as InstanceInfo)
        self.health = "unknown"
        self.lost_reason: str | None = None
        self.jobs: dict[str, str] = {}  # job id -> job name (the job map)
        self.port_names: dict[tuple[str, str, str], dict[int, str]] = {}  # (job, operator, kind) -> names
        self.shapes: dict[tuple[str, str], PeShape] = {}  # (job, PE)
        self.resources: set[str] = set()
        self.slow_pes: set[str] = set()  # PEs whose values timed out in the last scrape (logged once)
        self.last_started = 0.0
        self.last_body = b""
        self._create_instance_metrics()

    # ------------------------------------------------------------------ scrape
    def scrape(self) -> bytes:
        arrived = time.monotonic()
        with self.lock:
            if self.last_started >= arrived:
                return self.last_body  # a scrape that began after this request arrived: fresh enough
            self.last_started = time.monotonic()
            self.refresh()
            self.last_body = self.registry.render()
            return self.last_body

    def _create_instance_metrics(self) -> None:
        for metric, help_text in INSTANCE_HELP.items():
            self.registry.create(metric, INSTANCE, help_text)
        self.registry.set("status", INSTANCE, (self.iname,), instance_status_value(self.status))

    def reset(self, reason: str) -> None:
        """resetTracker(): drop every series of the instance; only the last known status comes back."""
        if self.available or reason != self.lost_reason:
            log.warning(
                "lost the source of %s (%s): tracker reset, last known status %s", self.iname, reason, self.status
            )
        self.available = False
        self.lost_reason = reason
        self.jobs.clear()
        self.port_names.clear()
        self.shapes.clear()
        self.resources.clear()
        self.rest.close()
        self.registry.remove_children(self.iname)
        self._create_instance_metrics()

    def refresh(self) -> None:
        try:
            self._refresh()
        except SourceLost as exc:
            self.reset(str(exc))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.reset(f"{type(exc).__name__}: {exc}")

    def _refresh(self) -> None:
        r = self.rest
        inst = r.get(r.iurl)
        if inst is None:
            raise SourceLost(f"instance {self.iname} not found")
        self.status, self.health = str(inst["status"]), str(inst["health"])
        start = inst.get("startTime")
        # a started instance has a start time; the lab's REST keeps the last one on a stopped instance
        if not isinstance(start, int) or self.status == "stopped":
            raise SourceLost(f"instance {self.iname} found but not started (status {self.status})")
        if not self.available:
            log.info("instance %s available, status %s", self.iname, self.status)
        self.available, self.lost_reason = True, None
        self.registry.set("status", INSTANCE, (self.iname,), instance_status_value(self.status))
        self.registry.set("health", INSTANCE, (self.iname,), health_value(self.health))
        self.registry.set("startTime", INSTANCE, (self.iname,), start)
        self._resources()
        self._jobs()
        self.registry.set("jobCount", INSTANCE, (self.iname,), len(self.jobs))

    # ------------------------------------------------------------------ resources
    def _resources(self) -> None:
        r = self.rest
        hosts = r.get(f"{r.iurl}/hosts")
        current: dict[str, dict[str, Any]] = {}
        for h in (hosts or {}).get("hosts", []):
            current[str(h.get("name") or h["restid"])] = h
        for gone in self.resources - set(current):
            self.registry.remove_children(self.iname, gone)
        self.resources = set(current)
        for rid, h in current.items():
            rl = (self.iname, rid)
            self.registry.set("status", RESOURCE, rl, resource_status_value(str(h.get("status"))))
            services = {str(s) for s in h.get("services", [])}
            if "application" in services:
                self.registry.set("role", RESOURCE_ROLE, (*rl, "application"), 1)
            if "management" in services or "service" in services:
                self.registry.set("role", RESOURCE_ROLE, (*rl, "service"), 1)
            doc = r.get(_path(str(h["metrics"])))
            for m in (doc or {}).get("metrics", []):
                self.registry.set(str(m["name"]), RESOURCE, rl, m["value"])

    # ------------------------------------------------------------------ jobs
    def _jobs(self) -> None:
        r = self.rest
        jobs = r.get(f"{r.iurl}/jobs")["jobs"]
        pes = r.get(f"{r.iurl}/pes")["pes"]
        ops = r.get(f"{r.iurl}/operators")["operators"]
        current = {str(j["id"]): str(j["name"]) for j in jobs}
        for jid, name in list(self.jobs.items()):
            if current.get(jid) != name:  # the job is gone: all its series go (JobDetails.close)
                self.registry.remove_children(self.iname, name)
                del self.jobs[jid]
                self.port_names = {k: v for k, v in self.port_names.items() if k[0] != jid}
                self.shapes = {k: v for k, v in self.shapes.items() if k[0] != jid}
        slow: set[str] = set()
        for job in jobs:
            jid = str(job["id"])
            if jid not in self.jobs:
                self.jobs[jid] = current[jid]
                for metric, help_text in JOB_HELP.items():
                    self.registry.create(metric, JOB, help_text)
            job_pes = sorted((p for p in pes if _tail_id(str(p["job"])) == jid), key=lambda p: int(p["indexWithinJob"]))
            self._job(job, job_pes, [o for o in ops if _tail_id(str(o["job"])) == jid], slow)
        self.slow_pes = slow

    def _job(
        self, job: dict[str, Any], job_pes: list[dict[str, Any]], ops: list[dict[str, Any]], slow: set[str]
    ) -> None:
        reg = self.registry
        jid, jname = str(job["id"]), str(job["name"])
        jl = (self.iname, jname)
        health = health_value(str(job["health"]))
        reg.set("submitTime", JOB, jl, job["submitTime"])
        reg.set("healthy", JOB, jl, health)
        reg.set("health", JOB, jl, health)
        reg.set("status", JOB, jl, job_status_value(str(job["status"])))
        labels: dict[str, tuple[str, ...]] = {}
        for pe in job_pes:
            pid = str(pe["id"])
            resource = _tail_id(str(pe["resource"])) if pe.get("resource") else ""
            pl = labels[pid] = (self.iname, jname, resource, pid)
            reg.set("status", PE, pl, pe_status_value(str(pe["status"])))
            reg.set("health", PE, pl, health_value(str(pe["health"])))
            reg.set("launchCount", PE, pl, pe["launchCount"])
        totals = dict.fromkeys(PE_METRICS, 0)
        congestion: list[int] = []
        for pe in job_pes:
            pid = str(pe["id"])
            if pe["health"] != "healthy":
                continue  # as the real exporter: no metric update for a PE that is not healthy
            try:
                values, factors = self._pe_values(jid, pid, labels[pid], ops)
            except TimeoutError:
                # the instance could not reach the PE in time (e.g. stopped, not yet reported unhealthy):
                # no update for it in this scrape, the rest of the scrape stays within Prometheus' timeout
                if pid not in self.slow_pes:
                    log.info("PE %s: metric values not available within %.1f s; skipped", pid, PE_TIMEOUT)
                slow.add(pid)
                continue
            for metric, kind, label_values, value in values:
                reg.set(metric, kind, label_values, value)
                if kind is PE and metric in totals:
                    totals[metric] += int(value)
            congestion += factors
        reg.set("pecount", JOB, jl, len(job_pes))
        for metric, total in totals.items():
            reg.set(metric, JOB, jl, total)
        reg.set("sum_congestionFactor", JOB, jl, sum(congestion))
        reg.set("avg_congestionFactor", JOB, jl, sum(congestion) // len(congestion) if congestion else 0)
        reg.set("max_congestionFactor", JOB, jl, max([0, *congestion]))
        reg.set("min_congestionFactor", JOB, jl, min(congestion) if congestion else 0)

    def _pe_shape(self, jid: str, pid: str) -> PeShape:
        shape = self.shapes.get((jid, pid))
        if shape is None:
            r = self.rest
            base = f"{r.iurl}/pes/{pid}"
            ins = r.get(f"{base}/inputports", timeout=PE_TIMEOUT)
            outs = r.get(f"{base}/outputports", timeout=PE_TIMEOUT)
            inputs = sorted(int(p["indexWithinPE"]) for p in (ins or {}).get("inputPorts", []))
            outputs = sorted(int(p["indexWithinPE"]) for p in (outs or {}).get("outputPorts", []))
            conns: dict[int, list[str]] = {}
            for n in outputs:
                doc = r.get(f"{base}/outputports/{n}/connections", timeout=PE_TIMEOUT)
                conns[n] = [str(c["id"]) for c in (doc or {}).get("connections", [])]
            shape = self.shapes[(jid, pid)] = PeShape(inputs, outputs, conns)
        return shape

    def _port_names(self, jid: str, op: dict[str, Any], kind: str) -> dict[int, str]:
        key = (jid, str(op["name"]), kind)
        names = self.port_names.get(key)
        if names is None:
            doc = self.rest.get(f"{self.rest.iurl}/jobs/{jid}/operators/{quote(str(op['name']), safe='')}/{kind}")
            ports = (doc or {}).get("inputPorts" if kind == "inputports" else "outputPorts", [])
            names = {int(p["indexWithinOperator"]): str(p.get("streamName") or p["name"]) for p in ports}
            self.port_names[key] = names
        return names

    def _pe_values(
        self, jid: str, pid: str, pl: tuple[str, ...], ops: list[dict[str, Any]]
    ) -> tuple[list[Value], list[int]]:
        """One healthy PE's values (as snapshotJobMetrics has them) and its connections' congestion factors;
        all or nothing (TimeoutError)."""
        r = self.rest
        out: list[Value] = []
        factors: list[int] = []
        base = f"{r.iurl}/pes/{pid}"
        for m in (r.get(f"{base}/metrics", timeout=PE_TIMEOUT) or {}).get("metrics", []):
            if str(m["name"]) in PE_METRICS:
                out.append((str(m["name"]), PE, pl, m["value"]))
        shape = self._pe_shape(jid, pid)
        for kind, side, ports in (
            (PE_INPUTPORT, "inputports", shape.inputs),
            (PE_OUTPUTPORT, "outputports", shape.outputs),
        ):
            for n in ports:
                for m in (r.get(f"{base}/{side}/{n}/metrics", timeout=PE_TIMEOUT) or {}).get("metrics", []):
                    out.append((str(m["name"]), kind, (*pl, str(n)), m["value"]))
        for n, cids in shape.connections.items():
            for cid in cids:
                doc = r.get(f"{r.iurl}/peconnections/{quote(cid, safe='')}/metrics", timeout=PE_TIMEOUT)
                for m in (doc or {}).get("metrics", []):
                    if m["name"] == "congestionFactor":
                        factors.append(int(m["value"]))
                    out.append((str(m["name"]), PE_OUTPUTPORT_CONNECTION, (*pl, str(n), cid), m["value"]))
        for op in ops:
            if _tail_id(str(op["pe"])) != pid:
                continue
            ol = (*pl, str(op["name"]), str(op["operatorKind"]))
            op_path = f"{r.iurl}/jobs/{jid}/operators/{quote(str(op['name']), safe='')}"
            port_metric_names: set[str] = set()
            for kind, side in ((OPERATOR_INPUTPORT, "inputports"), (OPERATOR_OUTPUTPORT, "outputports")):
                for idx, port_name in sorted(self._port_names(jid, op, side).items()):
                    doc = r.get(f"{op_path}/{side}/{idx}/metrics", timeout=PE_TIMEOUT)
                    for m in (doc or {}).get("metrics", []):
                        port_metric_names.add(str(m["name"]))
                        out.append((str(m["name"]), kind, (*ol, port_name), m["value"]))
            # operator-level metrics; the lab's REST list also repeats port 0's metrics (a lab convenience
            # that the real snapshot keeps under the ports): those are left out here
            for m in (r.get(f"{op_path}/metrics", timeout=PE_TIMEOUT) or {}).get("metrics", []):
                if str(m["name"]) not in port_metric_names:
                    out.append((str(m["name"]), OPERATOR, ol, m["value"]))
        return out, factors


class ExporterServer(LabHTTPServer):
    def __init__(self, addr: tuple[str, int], collector: Collector) -> None:
        self.collector = collector
        super().__init__(addr, Handler)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ExporterServer
    server_version = "streams-metric-exporter"
    sys_version = ""

    def do_GET(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        if path in ("/metrics", "/prometheus"):
            body = self.server.collector.scrape()
            ctype = "text/plain; version=0.0.4; charset=utf-8"
            status = 200
        else:
            body, ctype, status = b"not found: use /metrics or /prometheus\n", "text/plain; charset=utf-8", 404
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


def main(argv: list[str] | None = None) -> int:
    dc = paths.service_dc("python -m lab.exporter", argv)
    collector = Collector(dc, paths.read_password())
    server = ExporterServer((paths.DC_ADDR[dc], PORT), collector)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log.info("exporter for %s on http://%s:%d/metrics", paths.instance_id(dc), paths.DC_ADDR[dc], PORT)
    started = time.monotonic()
    try:
        server.serve_forever()
    finally:
        log.info("exporter stopping after %.0f s", time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
