"""Prometheus exporter per DC with the streams-metric-exporter's names, labels and encodings.

`python -m lab.exporter --dc dcN` serves `GET /metrics` and `GET /prometheus` on `<dc host>:25500`
(plain HTTP, like the real exporter's default). Every scrape pulls the instance's state from its REST
management API (HTTPS verified against the lab CA, Basic auth; one kept-alive connection) — the stand-in
for the real exporter's JMX pull with refresh rate 0.

Series (all gauges, each with `# HELP` and `# TYPE`; labels of streams-metric-exporter v5):
- `streams_instance_{status,health,startTime,creationTime,jobCount}` {instancename}
- `streams_job_{submitTime,health,healthy,status,pecount,nCpuMilliseconds,nResidentMemoryConsumption,
  nMemoryConsumption,avg_congestionFactor,max_congestionFactor,min_congestionFactor,sum_congestionFactor}`
  {instancename, jobname}
- `streams_pe_{status,health,launchCount}` + every PE metric of the REST API (`streams_pe_nTuplesProcessed`, ...)
  {instancename, jobname, resource, peid}
- `streams_operator_ip_<metric>` {..., operatorname, operatorkind, inputportname},
  `streams_operator_op_<metric>` {..., operatorname, operatorkind, outputportname}

Encodings as the real exporter (JobDetails / StreamsInstanceTracker): health healthy 1, partially* 0.5,
else 0 (`streams_job_healthy` is computed by the same function as `health`, as in the real code); job status
running 1, canceling/constructed 0.5, else 0; PE status running 1,
starting/constructed/restarting/stopping/submitted 0.5, else 0; instance status running 1,
starting/partiallyRunning/partiallyFailed/stopping 0.5, else 0. PE-scoped metric values (PE metrics, operator
port metrics) are skipped while the PE is not healthy; a job's series vanish with the job.

Standard library only.
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
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import quote, urlsplit

from lab import paths
from lab.httpd import LabHTTPServer

PORT = 25500
PE_TIMEOUT = 0.4  # s per PE-scoped REST call (the instance asks the PE itself for these values)
log = logging.getLogger("lab.exporter")

HEALTH_HALF = {"partiallyHealthy", "partiallyUnhealthy"}
JOB_STATUS_HALF = {"canceling", "constructed"}
PE_STATUS_HALF = {"starting", "constructed", "restarting", "stopping", "submitted"}
INSTANCE_STATUS_HALF = {"starting", "partiallyRunning", "partiallyFailed", "stopping"}

INSTANCE_LABELS = ("instancename",)
JOB_LABELS = ("instancename", "jobname")
PE_LABELS = ("instancename", "jobname", "resource", "peid")
OP_LABELS = ("instancename", "jobname", "resource", "peid", "operatorname", "operatorkind")

HELP: dict[str, str] = {
    "streams_instance_status": "Instance status, 1: running, .5: partially up, 0: stopped, failed, unknown",
    "streams_instance_health": "Instance health, 1: healthy, .5: partially healthy, 0: unhealthy, unknown",
    "streams_instance_startTime": "Epoch time in milliseconds when the instance was started",
    "streams_instance_creationTime": "Epoch time in milliseconds when the instance was created",
    "streams_instance_jobCount": "Number of jobs currently deployed into the streams instance",
    "streams_job_submitTime": "Epoch time in milliseconds when job was submitted",
    "streams_job_healthy": "DEPRECTED: Use helath: Job health, set to 1 of job is healthy else 0",
    "streams_job_health": "Job health, 1: healthy, .5: partially healthy, 0: unhealthy, unknown",
    "streams_job_status": "Job status, 1: running, .5: cancelling, constructed, 0: canceled, failed, unknown",
    "streams_job_nCpuMilliseconds": "Sum of each pe metric: nCpuMilliseconds",
    "streams_job_nResidentMemoryConsumption": "Sum of each pe metric: nResidentMemoryConsumption",
    "streams_job_nMemoryConsumption": "Sum of each pe metric: nMemoryConsumption",
    "streams_job_avg_congestionFactor": "Average of all pe connection metric: congestionFactor",
    "streams_job_max_congestionFactor": "Maximum of all pe connection metric: congestionFactor",
    "streams_job_min_congestionFactor": "Minimum of all pe connection metric: congestionFactor",
    "streams_job_sum_congestionFactor": "Sum of each pe metric: congestionFactor (no value used by itself",
    "streams_job_pecount": "Number of pes deployed for this job",
}
HELP_PREFIX = {
    "streams_instance_": "Streams instance metric",
    "streams_job_": "Streams job metric",
    "streams_pe_": "Streams pe metric",
    "streams_operator_ip_": "Streams operator input port metric",
    "streams_operator_op_": "Streams operator output port metric",
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


_ILLEGAL = re.compile(r"[^a-zA-Z0-9_:]")


def metric_name(prefix: str, name: str) -> str:
    """streams_<object>[_<sub>]_<metric>: whitespace becomes `_`, other illegal characters are removed."""
    return prefix + _ILLEGAL.sub("", re.sub(r"\s+", "_", name))


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


class Series:
    """Gauges collected during one scrape, rendered in the Prometheus text format 0.0.4."""

    def __init__(self) -> None:
        self.families: dict[str, list[tuple[tuple[tuple[str, str], ...], float]]] = {}

    def add(self, name: str, labels: tuple[str, ...], values: tuple[str, ...], value: float) -> None:
        self.families.setdefault(name, []).append((tuple(zip(labels, values, strict=True)), float(value)))

    def render(self) -> bytes:
        out: list[str] = []
        for name, samples in self.families.items():
            help_text = HELP.get(name)
            if help_text is None:
                prefix = max((p for p in HELP_PREFIX if name.startswith(p)), key=len, default="")
                help_text = f"{HELP_PREFIX.get(prefix, 'Streams metric')}: {name[len(prefix) :]}"
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} gauge")
            for labels, value in samples:
                lab = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
                out.append(f"{name}{{{lab}}} {java_double(value)}")
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


class Collector:
    def __init__(self, dc: str, password: str) -> None:
        self.dc = dc
        self.rest = RestPuller(dc, password)
        self.lock = threading.Lock()
        # port names are fixed for the life of a job: (job id, operator, kind) -> {index: name}
        self.port_names: dict[tuple[str, str, str], dict[int, str]] = {}
        self.failing = False
        self.slow_pes: set[str] = set()  # PEs whose values timed out in the last scrape (logged once)
        self.last_started = 0.0
        self.last_body = b""

    def scrape(self) -> bytes:
        arrived = time.monotonic()
        with self.lock:
            if self.last_started >= arrived:
                return self.last_body  # a scrape that began after this request arrived: fresh enough
            self.last_started = time.monotonic()
            self.last_body = self._scrape()
            return self.last_body

    def _scrape(self) -> bytes:
        s = Series()
        try:
            self._collect(s)
            if self.failing:
                log.info("REST API of %s answers again", paths.instance_id(self.dc))
            self.failing = False
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # the instance is not reachable: the real exporter reports it as not running, no job series
            if not self.failing:
                log.warning("cannot pull %s: %s", paths.instance_id(self.dc), exc)
            self.failing = True
            self.rest.close()
            s = Series()
            iname = paths.instance_id(self.dc)
            s.add("streams_instance_status", INSTANCE_LABELS, (iname,), 0)
            s.add("streams_instance_health", INSTANCE_LABELS, (iname,), 0)
        return s.render()

    def _port_names(self, job_id: str, op: dict[str, Any], kind: str) -> dict[int, str]:
        key = (job_id, str(op["name"]), kind)
        names = self.port_names.get(key)
        if names is None:
            doc = self.rest.get(f"{self.rest.iurl}/jobs/{job_id}/operators/{quote(str(op['name']), safe='')}/{kind}")
            ports = (doc or {}).get("inputPorts" if kind == "inputports" else "outputPorts", [])
            names = {int(p["indexWithinOperator"]): str(p.get("streamName") or p["name"]) for p in ports}
            self.port_names[key] = names
        return names

    def _collect(self, s: Series) -> None:
        r = self.rest
        slow: set[str] = set()
        inst = r.get(r.iurl)
        if inst is None:
            raise OSError(f"instance {r.iurl} not found")
        iname = str(inst["id"])
        jobs = r.get(f"{r.iurl}/jobs")["jobs"]
        pes = r.get(f"{r.iurl}/pes")["pes"]
        ops = r.get(f"{r.iurl}/operators")["operators"]
        hosts = r.get(f"{r.iurl}/hosts")
        host_names = [str(h.get("name") or h["restid"]) for h in (hosts or {}).get("hosts", [])]
        default_resource = host_names[0] if len(host_names) == 1 else ""

        s.add("streams_instance_status", INSTANCE_LABELS, (iname,), instance_status_value(str(inst["status"])))
        s.add("streams_instance_health", INSTANCE_LABELS, (iname,), health_value(str(inst["health"])))
        for field in ("startTime", "creationTime"):
            if isinstance(inst.get(field), int):
                s.add(f"streams_instance_{field}", INSTANCE_LABELS, (iname,), inst[field])
        s.add("streams_instance_jobCount", INSTANCE_LABELS, (iname,), len(jobs))

        live_jobs = {str(j["id"]) for j in jobs}
        self.port_names = {k: v for k, v in self.port_names.items() if k[0] in live_jobs}
        for job in jobs:
            jid, jname = str(job["id"]), str(job["name"])
            jl = (iname, jname)
            health = health_value(str(job["health"]))
            s.add("streams_job_submitTime", JOB_LABELS, jl, job["submitTime"])
            s.add("streams_job_healthy", JOB_LABELS, jl, health)
            s.add("streams_job_health", JOB_LABELS, jl, health)
            s.add("streams_job_status", JOB_LABELS, jl, job_status_value(str(job["status"])))
            job_pes = [p for p in pes if _tail_id(str(p["job"])) == jid]
            totals = {"nCpuMilliseconds": 0.0, "nResidentMemoryConsumption": 0.0, "nMemoryConsumption": 0.0}
            for pe in sorted(job_pes, key=lambda p: int(p["indexWithinJob"])):
                pid = str(pe["id"])
                resource = _tail_id(str(pe["resource"])) if pe.get("resource") else default_resource
                pl = (iname, jname, resource, pid)
                s.add("streams_pe_status", PE_LABELS, pl, pe_status_value(str(pe["status"])))
                s.add("streams_pe_health", PE_LABELS, pl, health_value(str(pe["health"])))
                s.add("streams_pe_launchCount", PE_LABELS, pl, pe["launchCount"])
                if pe["health"] != "healthy":
                    continue  # as the real exporter: a PE that is not healthy gets no metric values
                try:
                    pe_series = self._pe_values(jid, pid, pl, ops, totals)
                except TimeoutError:
                    # the instance could not reach the PE in time (e.g. stopped, not yet reported unhealthy):
                    # no values for it in this scrape, the rest of the scrape stays within Prometheus' timeout
                    if pid not in self.slow_pes:
                        log.info("PE %s: metric values not available within %.1f s; skipped", pid, PE_TIMEOUT)
                    slow.add(pid)
                    continue
                for name, labels, label_values, value in pe_series:
                    s.add(name, labels, label_values, value)
            s.add("streams_job_pecount", JOB_LABELS, jl, len(job_pes))
            for name, total in totals.items():
                s.add(f"streams_job_{name}", JOB_LABELS, jl, total)
            # the lab's PE connections carry no congestionFactor metric: the real exporter's aggregates over
            # zero connections are 0
            for agg in ("sum", "avg", "max", "min"):
                s.add(f"streams_job_{agg}_congestionFactor", JOB_LABELS, jl, 0)
        self.slow_pes = slow

    def _pe_values(
        self, jid: str, pid: str, pl: tuple[str, ...], ops: list[dict[str, Any]], totals: dict[str, float]
    ) -> list[tuple[str, tuple[str, ...], tuple[str, ...], float]]:
        """The PE's metric values and its operators' port metrics (all or nothing: TimeoutError)."""
        r = self.rest
        out: list[tuple[str, tuple[str, ...], tuple[str, ...], float]] = []
        metrics = r.get(f"{r.iurl}/pes/{pid}/metrics", timeout=PE_TIMEOUT)
        for m in (metrics or {}).get("metrics", []):
            out.append((metric_name("streams_pe_", str(m["name"])), PE_LABELS, pl, m["value"]))
        for op in ops:
            if _tail_id(str(op["pe"])) != pid or _tail_id(str(op["job"])) != jid:
                continue
            ol = (*pl, str(op["name"]), str(op["operatorKind"]))
            op_path = f"{r.iurl}/jobs/{jid}/operators/{quote(str(op['name']), safe='')}"
            for kind, prefix, label in (
                ("inputports", "streams_operator_ip_", "inputportname"),
                ("outputports", "streams_operator_op_", "outputportname"),
            ):
                for idx, port_name in sorted(self._port_names(jid, op, kind).items()):
                    port_metrics = r.get(f"{op_path}/{kind}/{idx}/metrics", timeout=PE_TIMEOUT)
                    for m in (port_metrics or {}).get("metrics", []):
                        name = metric_name(prefix, str(m["name"]))
                        out.append((name, (*OP_LABELS, label), (*ol, port_name), m["value"]))
        for m in (metrics or {}).get("metrics", []):
            if str(m["name"]) in totals:
                totals[str(m["name"])] += m["value"]
        return out


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
