"""Instance service of one DC: `python -m lab.instance --dc dc1` (started by `lab up` inside the DC netns).

Serves the REST management API (HTTPS :9714, paths as Teracloud 7.2) and the data exchange service
(HTTPS :9715), both with HTTP Basic auth, and launches/supervises the PEs of submitted jobs as child
processes (`python -m lab.pe`). Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import csv
import hmac
import io
import json
import logging
import os
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, unquote, urlsplit

from lab import paths, truth
from lab.apps import APPS, AppSpec, EndpointSpec, OperatorSpec

log = logging.getLogger("lab.instance")

PE_READY_TIMEOUT = 15.0
STOP_GRACE = 1.0
MAX_FAILED_LAUNCHES = 5


def now_ms() -> int:
    return int(time.time() * 1000)


# ----------------------------------------------------------------------------------------------- model


@dataclass
class PE:
    id: str
    index: int
    job: Job
    listener: socket.socket
    dir: Path
    status: str = "constructed"
    status_reason: str = "none"
    launch_count: int = 0
    pid: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    stopping: bool = False
    thread: threading.Thread | None = None
    last_metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    @property
    def health(self) -> str:
        return "healthy" if self.status == "running" else "unhealthy"


@dataclass
class Job:
    id: str
    name: str
    app: AppSpec
    params: dict[str, str]
    submit_params: list[dict[str, str]]
    submit_time: int
    status: str = "running"
    pes: list[PE] = field(default_factory=list)

    @property
    def health(self) -> str:
        if self.status != "running":
            return "unknown"
        running = sum(1 for p in self.pes if p.status == "running")
        if running == len(self.pes):
            return "healthy"
        return "partiallyHealthy" if running else "unhealthy"

    def pe_of(self, op: OperatorSpec) -> PE:
        return self.pes[op.pe_index]

    def operator(self, name: str) -> OperatorSpec | None:
        return next((o for o in self.app.operators if o.name == name), None)


class ApiError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class Instance:
    def __init__(self, dc: str) -> None:
        self.dc = dc
        self.id = paths.instance_id(dc)
        self.addr = paths.DC_ADDR[dc]
        self.lock = threading.RLock()
        self.jobs: dict[str, Job] = {}
        self.next_job = 1
        self.next_pe = 1
        self.start_time = now_ms()
        self.pes_root = paths.pes_dir(dc)
        self.pes_root.mkdir(parents=True, exist_ok=True)

    # -------------------------------------------------------------- jobs
    def submit(self, app: AppSpec, name: str, params: dict[str, str], given: list[dict[str, str]]) -> Job:
        with self.lock:
            if any(j.name == name for j in self.jobs.values()):
                raise ApiError(409, f"A job with the name {name} already exists in the {self.id} instance.")
            job = Job(str(self.next_job), name, app, params, given, now_ms())
            self.next_job += 1
            for idx in range(app.pe_count):
                lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                lst.bind(("127.0.0.1", 0))
                lst.listen(64)
                pe_id = str(self.next_pe)
                self.next_pe += 1
                d = self.pes_root / pe_id
                d.mkdir(parents=True, exist_ok=True)
                pe = PE(pe_id, idx, job, lst, d)
                (d / "control.port").write_text(f"{pe.port}\n")
                job.pes.append(pe)
            self.jobs[job.id] = job
        truth.emit(
            self.dc,
            "instance",
            "job_submitted",
            job_id=job.id,
            job_name=name,
            application=app.name,
            params=params,
        )
        log.info("job %s (%s) submitted, params %s", job.id, name, params)
        for pe in job.pes:
            pe.thread = threading.Thread(target=self._supervise, args=(pe,), name=f"pe-{pe.id}", daemon=True)
            pe.thread.start()
        return job

    def cancel(self, job: Job) -> None:
        with self.lock:
            job.status = "canceling"
            procs: list[subprocess.Popen[bytes]] = []
            for pe in job.pes:
                pe.stopping = True
                if pe.proc is not None and pe.proc.poll() is None:
                    pe.status = "stopping"
                    pe.status_reason = "userRequest"
                    procs.append(pe.proc)
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.terminate()
        end = time.monotonic() + STOP_GRACE
        for pe in job.pes:
            if pe.thread is not None:
                pe.thread.join(max(0.0, end - time.monotonic()))
        for pe in job.pes:
            if pe.proc is not None and pe.proc.poll() is None:
                pe.proc.kill()
        for pe in job.pes:
            if pe.thread is not None:
                pe.thread.join(5.0)
        with self.lock:
            job.status = "canceled"
            self.jobs.pop(job.id, None)
            for pe in job.pes:
                pe.listener.close()
        truth.emit(self.dc, "instance", "job_canceled", job_id=job.id, job_name=job.name)
        log.info("job %s (%s) canceled", job.id, job.name)

    def shutdown_all(self) -> None:
        with self.lock:
            for job in self.jobs.values():
                for pe in job.pes:
                    pe.stopping = True
                    if pe.proc is not None and pe.proc.poll() is None:
                        pe.proc.terminate()

    # -------------------------------------------------------------- PEs
    def _spawn(self, pe: PE) -> subprocess.Popen[bytes]:
        job = pe.job
        down = job.app.downstream.get(pe.index)
        cfg = {
            "dc": self.dc,
            "instance_id": self.id,
            "job_id": job.id,
            "job_name": job.name,
            "app": job.app.name,
            "pe_id": pe.id,
            "index": pe.index,
            "launch_count": pe.launch_count,
            "params": job.params,
            "listen_fd": pe.listener.fileno(),
            "downstream_port": job.pes[down].port if down is not None else None,
            "pe_dir": str(pe.dir),
        }
        cfg_file = pe.dir / "config.json"
        cfg_file.write_text(json.dumps(cfg, indent=1) + "\n")
        argv = [sys.executable, "-m", "lab.pe", "--dc", self.dc, "--job", job.id, "--pe", pe.id]
        with open(pe.dir / "console.log", "ab") as console:
            return subprocess.Popen(
                [*argv, "--config", str(cfg_file)],
                pass_fds=(pe.listener.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                cwd=pe.dir,
            )

    def _wait_ready(self, pe: PE, proc: subprocess.Popen[bytes]) -> bool:
        """Ready = the PE answers a ping on its control socket (polled with a deadline)."""
        end = time.monotonic() + PE_READY_TIMEOUT
        try:
            s = socket.create_connection(("127.0.0.1", pe.port), timeout=1.0)
        except OSError:
            return False
        with s:
            s.sendall(b'{"cmd":"ping"}\n')
            s.settimeout(0.05)
            buf = b""
            while time.monotonic() < end:
                try:
                    chunk = s.recv(4096)
                except TimeoutError:
                    if proc.poll() is not None or pe.stopping:
                        return False
                    continue
                except OSError:
                    return False
                if not chunk:
                    return False
                buf += chunk
                if b"\n" in buf:
                    return True
        return False

    def _supervise(self, pe: PE) -> None:
        failed_launches = 0
        while True:
            with self.lock:
                if pe.stopping:
                    pe.status = "stopped"
                    return
                pe.launch_count += 1
                try:
                    proc = self._spawn(pe)
                except OSError as exc:
                    log.error("PE %s: launch failed: %s", pe.id, exc)
                    pe.status = "stopped"
                    pe.status_reason = "failure"
                    return
                pe.proc = proc
                pe.pid = proc.pid
                if pe.status != "restarting":
                    pe.status = "starting"
            ready = self._wait_ready(pe, proc)
            with self.lock:
                if ready and not pe.stopping:
                    pe.status = "running"
                    failed_launches = 0
            if ready:
                truth.emit(
                    self.dc,
                    "instance",
                    "pe_started",
                    job_id=pe.job.id,
                    job_name=pe.job.name,
                    pe_id=pe.id,
                    index=pe.index,
                    pid=proc.pid,
                    launch_count=pe.launch_count,
                )
            rc = proc.wait()
            with self.lock:
                if pe.stopping:
                    pe.status = "stopped"
                    stopped = True
                else:
                    pe.status = "restarting"
                    pe.status_reason = "crash"
                    stopped = False
            if stopped:
                truth.emit(
                    self.dc,
                    "instance",
                    "pe_stopped",
                    job_id=pe.job.id,
                    job_name=pe.job.name,
                    pe_id=pe.id,
                    pid=proc.pid,
                    returncode=rc,
                )
                return
            log.warning("PE %s (pid %s) exited with %s: relaunching", pe.id, proc.pid, rc)
            truth.emit(
                self.dc,
                "instance",
                "pe_crashed",
                job_id=pe.job.id,
                job_name=pe.job.name,
                pe_id=pe.id,
                pid=proc.pid,
                returncode=rc,
                launch_count=pe.launch_count,
            )
            if not ready:
                failed_launches += 1
                if failed_launches >= MAX_FAILED_LAUNCHES:
                    with self.lock:
                        pe.status = "stopped"
                        pe.status_reason = "failure"
                    log.error("PE %s: giving up after %d failed launches", pe.id, failed_launches)
                    return

    def pe_request(self, pe: PE, msg: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        if pe.stopping or pe.status == "stopped":
            raise OSError("PE is stopped")
        with socket.create_connection(("127.0.0.1", pe.port), timeout=timeout) as s:
            s.sendall(json.dumps(msg, separators=(",", ":")).encode() + b"\n")
            with s.makefile("rb") as f:
                line = f.readline()
        if not line:
            raise OSError("PE closed the control connection")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def pe_counters(self, pe: PE) -> dict[str, Any]:
        with contextlib.suppress(OSError, ValueError):
            pe.last_metrics = self.pe_request(pe, {"cmd": "metrics"}, timeout=2.0)
        return pe.last_metrics

    # -------------------------------------------------------------- lookups
    def job(self, job_id: str) -> Job:
        with self.lock:
            job = self.jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"The {job_id} job does not exist in the {self.id} instance.")
        return job

    def pe(self, pe_id: str) -> PE:
        with self.lock:
            for job in self.jobs.values():
                for pe in job.pes:
                    if pe.id == pe_id:
                        return pe
        raise ApiError(404, f"The {pe_id} processing element does not exist in the {self.id} instance.")

    def all_jobs(self) -> list[Job]:
        with self.lock:
            return sorted(self.jobs.values(), key=lambda j: int(j.id))


def _proc_stats(pid: int | None) -> tuple[int, int, int]:
    """(cpu ms, resident KB, virtual KB) of a live process."""
    if pid is None:
        return 0, 0, 0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu_ms = (int(fields[11]) + int(fields[12])) * 1000 // ticks
        statm = Path(f"/proc/{pid}/statm").read_text().split()
        page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
        return cpu_ms, int(statm[1]) * page_kb, int(statm[0]) * page_kb
    except (OSError, ValueError, IndexError):
        return 0, 0, 0


# ------------------------------------------------------------------------------------------------ HTTP


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(doc: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(doc, separators=(",", ":")).encode())


def error_response(status: int, text: str) -> Response:
    return json_response({"id": "CDISW5000E", "message": f"CDISW5000E {text}"}, status)


Query = dict[str, list[str]]
_RESERVED_QUERY = {"fields", "count", "page", "listFields", "verbose"}
_KEEP = ("self", "restid", "resourceType")


def pick_fields(doc: dict[str, Any], q: Query) -> dict[str, Any]:
    if "fields" not in q:
        return doc
    wanted = {f.strip() for v in q["fields"] for f in v.split(",") if f.strip()}
    return {k: v for k, v in doc.items() if k in wanted or k in _KEEP}


def collection(key: str, rtype: str, elements: list[tuple[dict[str, Any], dict[str, Any]]], q: Query) -> Response:
    filters = {k: {x for v in vals for x in v.split(",")} for k, vals in q.items() if k not in _RESERVED_QUERY}
    out: list[dict[str, Any]] = []
    for doc, extra in elements:
        ok = True
        for k, allowed in filters.items():
            if k in extra:
                value = extra[k]
            elif k in doc and not isinstance(doc[k], dict | list):
                value = doc[k]
            else:
                continue  # unknown property: ignored
            sval = str(value).lower() if isinstance(value, bool) else str(value)
            if sval not in allowed:
                ok = False
                break
        if ok:
            out.append(pick_fields(doc, q))
    return json_response({key: out, "total": len(out), "resourceType": rtype})


class Api(Protocol):
    def handle(self, method: str, path: str, q: Query, body: bytes, headers: dict[str, str]) -> Response: ...


class RestApi:
    def __init__(self, inst: Instance) -> None:
        self.inst = inst
        self.base = paths.rest_base(inst.dc)
        self.iurl = f"{self.base}/streams/instances/{inst.id}"

    # -------------------------------------------------------------- JSON documents
    def instance_doc(self) -> dict[str, Any]:
        i = self.inst
        return {
            "self": self.iurl,
            "restid": i.id,
            "resourceType": "instance",
            "id": i.id,
            "status": "running",
            "health": "healthy",
            "owner": paths.USER,
            "creationTime": i.start_time,
            "creationUser": paths.USER,
            "startTime": i.start_time,
            "startedBy": paths.USER,
            "productVersion": paths.PRODUCT_VERSION,
            "activeVersion": {
                "productName": paths.PRODUCT_NAME,
                "productVersion": paths.PRODUCT_VERSION,
                "architecture": "x86_64",
                "fullProductVersion": paths.PRODUCT_VERSION,
            },
            "jobs": f"{self.iurl}/jobs",
            "pes": f"{self.iurl}/pes",
            "operators": f"{self.iurl}/operators",
            "hosts": f"{self.iurl}/hosts",
            "peConnections": f"{self.iurl}/peconnections",
        }

    def job_url(self, job: Job) -> str:
        return f"{self.iurl}/jobs/{job.id}"

    def job_doc(self, job: Job) -> dict[str, Any]:
        u = self.job_url(job)
        return {
            "self": u,
            "restid": job.id,
            "resourceType": "job",
            "id": job.id,
            "name": job.name,
            "applicationName": job.app.name,
            "applicationVersion": job.app.version,
            "status": job.status,
            "health": job.health,
            "submitTime": job.submit_time,
            "startedBy": paths.USER,
            "jobGroup": "default",
            "submitParameters": [{"name": p["name"], "value": p["value"]} for p in job.submit_params],
            "instance": self.iurl,
            "pes": f"{u}/pes",
            "operators": f"{u}/operators",
        }

    def pe_doc(self, pe: PE) -> dict[str, Any]:
        u = f"{self.iurl}/pes/{pe.id}"
        return {
            "self": u,
            "restid": pe.id,
            "resourceType": "pe",
            "id": pe.id,
            "indexWithinJob": pe.index,
            "status": pe.status,
            "statusReason": pe.status_reason,
            "health": pe.health,
            "launchCount": pe.launch_count,
            "processId": str(pe.pid) if pe.pid is not None and pe.status != "stopped" else "",
            "restartable": True,
            "relocatable": False,
            "job": self.job_url(pe.job),
            "instance": self.iurl,
            "operators": f"{u}/operators",
            "metrics": f"{u}/metrics",
            "applicationTrace": f"{u}/applicationTrace",
            "consoleLog": f"{u}/consoleLog",
        }

    def op_url(self, job: Job, op: OperatorSpec) -> str:
        return f"{self.job_url(job)}/operators/{quote(op.name, safe='')}"

    def op_doc(self, job: Job, op: OperatorSpec) -> dict[str, Any]:
        u = self.op_url(job, op)
        return {
            "self": u,
            "restid": op.name,
            "resourceType": "operator",
            "name": op.name,
            "logicalName": op.name,
            "operatorKind": op.kind,
            "indexWithinJob": job.app.operators.index(op),
            "job": self.job_url(job),
            "pe": f"{self.iurl}/pes/{job.pe_of(op).id}",
            "metrics": f"{u}/metrics",
            "inputPorts": f"{u}/inputports",
            "outputPorts": f"{u}/outputports",
        }

    def port_doc(self, job: Job, op: OperatorSpec, kind: str, n: int) -> dict[str, Any]:
        u = f"{self.op_url(job, op)}/{kind}/{n}"
        return {
            "self": u,
            "restid": str(n),
            "resourceType": "operatorInputPort" if kind == "inputports" else "operatorOutputPort",
            "name": f"{op.name}_{'in' if kind == 'inputports' else 'out'}{n}",
            "indexWithinOperator": n,
            "operator": self.op_url(job, op),
            "metrics": f"{u}/metrics",
        }

    def metric_list(self, owner: str, items: list[tuple[str, int, str]]) -> Response:
        t = now_ms()
        return json_response(
            {
                "metrics": [
                    {
                        "name": n,
                        "value": int(v),
                        "metricKind": kind,
                        "metricType": "system",
                        "lastTimeRetrieved": t,
                        "resourceType": "metric",
                    }
                    for n, v, kind in items
                ],
                "total": len(items),
                "resourceType": "metricList",
                "owner": owner,
            }
        )

    def op_port_metrics(self, job: Job, op: OperatorSpec, kind: str) -> list[tuple[str, int, str]]:
        counters = self.inst.pe_counters(job.pe_of(op)).get("operators", {}).get(op.name, {})
        if kind == "inputports":
            return [
                ("nTuplesProcessed", counters.get("in", 0), "counter"),
                ("nTuplesDropped", counters.get("dropped", 0), "counter"),
                ("nTuplesQueued", counters.get("queued", 0), "gauge"),
            ]
        return [("nTuplesSubmitted", counters.get("out", 0), "counter")]

    # -------------------------------------------------------------- routing
    def handle(self, method: str, path: str, q: Query, body: bytes, headers: dict[str, str]) -> Response:
        segs = [unquote(s) for s in path.split("/") if s]
        if segs[:1] != ["streams"]:
            raise ApiError(404, f"The {path} resource does not exist.")
        match segs[1:]:
            case ["resources"]:
                self._only(method, "GET")
                return json_response(
                    {"resources": [{"name": "instances", "resource": f"{self.base}/streams/instances"}]}
                )
            case ["instances"]:
                self._only(method, "GET")
                return collection("instances", "instanceList", [(self.instance_doc(), {})], q)
            case ["instances", iid, *rest]:
                if iid != self.inst.id:
                    raise ApiError(404, f"The {iid} instance does not exist.")
                return self._instance(method, rest, q, body)
        raise ApiError(404, f"The {path} resource does not exist.")

    @staticmethod
    def _only(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise ApiError(405, f"The {method} method is not supported for this resource.")

    def _instance(self, method: str, rest: list[str], q: Query, body: bytes) -> Response:
        inst = self.inst
        if rest == ["jobs"] and method == "POST":
            return self._submit(body)
        if len(rest) == 2 and rest[0] == "jobs" and method == "DELETE":
            job = inst.job(rest[1])
            inst.cancel(job)
            return Response(204)
        self._only(method, "GET")
        match rest:
            case []:
                return json_response(pick_fields(self.instance_doc(), q))
            case ["jobs"]:
                return collection("jobs", "jobList", [(self.job_doc(j), {}) for j in inst.all_jobs()], q)
            case ["jobs", j]:
                return json_response(pick_fields(self.job_doc(inst.job(j)), q))
            case ["jobs", j, "pes"]:
                job = inst.job(j)
                return collection("pes", "peList", [(self.pe_doc(p), {"job.restid": job.id}) for p in job.pes], q)
            case ["jobs", j, "operators"]:
                job = inst.job(j)
                return collection("operators", "operatorList", self._ops(job), q)
            case ["jobs", j, "operators", name, *more]:
                return self._operator(inst.job(j), name, more, q)
            case ["pes"]:
                elems = [(self.pe_doc(p), {"job.restid": j.id}) for j in inst.all_jobs() for p in j.pes]
                return collection("pes", "peList", elems, q)
            case ["pes", p]:
                return json_response(pick_fields(self.pe_doc(inst.pe(p)), q))
            case ["pes", p, "operators"]:
                pe = inst.pe(p)
                ops = [e for e in self._ops(pe.job) if e[1]["pe.restid"] == pe.id]
                return collection("operators", "operatorList", ops, q)
            case ["pes", p, "metrics"]:
                return self._pe_metrics(inst.pe(p))
            case ["pes", p, ("applicationTrace" | "consoleLog") as what]:
                pe = inst.pe(p)
                fname = "trace.log" if what == "applicationTrace" else "console.log"
                return Response(200, _tail(pe.dir / fname), "text/plain; charset=utf-8")
            case ["operators"]:
                return collection("operators", "operatorList", [e for j in inst.all_jobs() for e in self._ops(j)], q)
            case ["hosts"]:
                return collection("hosts", "hostList", [(self._host_doc(), {})], q)
            case ["hosts", h]:
                if h != inst.addr:
                    raise ApiError(404, f"The {h} host does not exist in the {inst.id} instance.")
                return json_response(pick_fields(self._host_doc(), q))
            case ["peconnections"]:
                return collection("connections", "peConnectionList", self._connections(), q)
        raise ApiError(404, f"The /{'/'.join(rest)} resource does not exist in the {inst.id} instance.")

    def _ops(self, job: Job) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [
            (self.op_doc(job, op), {"job.restid": job.id, "pe.restid": job.pe_of(op).id}) for op in job.app.operators
        ]

    def _operator(self, job: Job, name: str, more: list[str], q: Query) -> Response:
        op = job.operator(name)
        if op is None:
            raise ApiError(404, f"The {name} operator does not exist in the {job.id} job.")
        match more:
            case []:
                return json_response(pick_fields(self.op_doc(job, op), q))
            case ["metrics"]:
                items = []
                if op.inputs:
                    items += self.op_port_metrics(job, op, "inputports")
                if op.outputs:
                    items += self.op_port_metrics(job, op, "outputports")
                return self.metric_list(self.op_url(job, op), items)
            case [("inputports" | "outputports") as kind]:
                n_ports = op.inputs if kind == "inputports" else op.outputs
                key = "inputPorts" if kind == "inputports" else "outputPorts"
                rtype = "operatorInputPortList" if kind == "inputports" else "operatorOutputPortList"
                return collection(key, rtype, [(self.port_doc(job, op, kind, n), {}) for n in range(n_ports)], q)
            case [("inputports" | "outputports") as kind, n, *tail]:
                n_ports = op.inputs if kind == "inputports" else op.outputs
                if not n.isdigit() or int(n) >= n_ports:
                    raise ApiError(404, f"The port {n} does not exist on the {op.name} operator.")
                if tail == []:
                    return json_response(pick_fields(self.port_doc(job, op, kind, int(n)), q))
                if tail == ["metrics"]:
                    owner = f"{self.op_url(job, op)}/{kind}/{n}"
                    return self.metric_list(owner, self.op_port_metrics(job, op, kind))
        raise ApiError(404, f"The resource does not exist on the {op.name} operator.")

    def _pe_metrics(self, pe: PE) -> Response:
        counters = self.inst.pe_counters(pe).get("pe", {})
        alive = pe.status not in ("stopped",)
        cpu, rss, vsz = _proc_stats(pe.pid if alive else None)
        return self.metric_list(
            f"{self.iurl}/pes/{pe.id}",
            [
                ("nCpuMilliseconds", cpu, "counter"),
                ("nResidentMemoryConsumption", rss, "gauge"),
                ("nMemoryConsumption", vsz, "gauge"),
                ("nTuplesProcessed", counters.get("nTuplesProcessed", 0), "counter"),
                ("nTuplesSubmitted", counters.get("nTuplesSubmitted", 0), "counter"),
            ],
        )

    def _host_doc(self) -> dict[str, Any]:
        a = self.inst.addr
        return {
            "self": f"{self.iurl}/hosts/{a}",
            "restid": a,
            "resourceType": "host",
            "name": a,
            "ipAddress": a,
            "processorCount": os.cpu_count() or 1,
            "status": "running",
            "tags": [],
            "instance": self.iurl,
        }

    def _connections(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        out: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for job in self.inst.all_jobs():
            for src_idx, dst_idx in job.app.downstream.items():
                src, dst = job.pes[src_idx], job.pes[dst_idx]
                cid = f"o{src.id}p0i{dst.id}p0"
                ok = src.status == "running" and dst.status == "running"
                out.append(
                    (
                        {
                            "self": f"{self.iurl}/peconnections/{cid}",
                            "restid": cid,
                            "resourceType": "peConnection",
                            "id": cid,
                            "required": True,
                            "status": "connected" if ok else "disconnected",
                            "source": {
                                "job": self.job_url(job),
                                "pe": f"{self.iurl}/pes/{src.id}",
                                "outputPort": 0,
                            },
                            "target": {
                                "job": self.job_url(job),
                                "pe": f"{self.iurl}/pes/{dst.id}",
                                "inputPort": 0,
                            },
                        },
                        {"job.restid": job.id},
                    )
                )
        return out

    def _submit(self, body: bytes) -> Response:
        try:
            doc = json.loads(body or b"{}")
            if not isinstance(doc, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            raise ApiError(400, f"The request body is not valid JSON: {exc}") from exc
        app_name = str(doc.get("application") or "")
        app = APPS.get(app_name)
        if app is None:
            raise ApiError(404, f"The {app_name} application bundle does not exist.")
        name = app.name
        given: list[dict[str, str]] = []
        try:
            overlays = (doc.get("jobConfigurationOverlay") or {}).get("jobConfigOverlays") or []
            for ov in overlays:
                jc = ov.get("jobConfig") or {}
                name = str(jc.get("jobName") or name)
                given += [
                    {"name": str(p["name"]), "value": str(p["value"])} for p in jc.get("submissionParameters") or []
                ]
            given += [{"name": str(p["name"]), "value": str(p["value"])} for p in doc.get("submitParameters") or []]
        except (AttributeError, KeyError, TypeError) as exc:
            raise ApiError(400, f"The job configuration overlay is not valid: {exc}") from exc
        if doc.get("jobName"):
            name = str(doc["jobName"])
        params = {p["name"]: p["value"] for p in given}
        job = self.inst.submit(app, name, params, given)
        return json_response(self.job_doc(job), 201)


def _tail(path: Path, limit: int = 1 << 20) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read()
    except FileNotFoundError:
        return b""


_INT_COLUMNS = ("seq", "crc")
_FLOAT_COLUMNS = ("amount", "sent_at")


def parse_tuples(body: bytes, content_type: str) -> list[dict[str, Any]]:
    ctype = content_type.split(";")[0].strip().lower()
    text = body.decode("utf-8")
    if ctype in ("text/csv", "application/csv"):
        rows: list[dict[str, Any]] = []
        for row in csv.DictReader(io.StringIO(text)):
            item: dict[str, Any] = dict(row)
            for c in _INT_COLUMNS:
                if item.get(c) not in (None, ""):
                    item[c] = int(item[c])
            for c in _FLOAT_COLUMNS:
                if item.get(c) not in (None, ""):
                    item[c] = float(item[c])
            rows.append(item)
        return rows
    doc = json.loads(text)
    items = doc.get("items") if isinstance(doc, dict) else doc
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ValueError("expected {'items': [objects]} or a JSON array of objects")
    return items


class DataApi:
    def __init__(self, inst: Instance) -> None:
        self.inst = inst
        self.base = f"{paths.data_base(inst.dc)}/streams/data"

    def _endpoint_url(self, job: Job, ep: EndpointSpec) -> str:
        return f"{self.base}/jobs/{job.id}/{ep.operator}/ports/{ep.port}/tuples"

    def _jobs(self) -> list[Job]:
        return [j for j in self.inst.all_jobs() if j.status == "running" and j.app.endpoints]

    def handle(self, method: str, path: str, q: Query, body: bytes, headers: dict[str, str]) -> Response:
        segs = [unquote(s) for s in path.split("/") if s]
        match segs:
            case ["streams", "data"]:
                RestApi._only(method, "GET")
                docs = [
                    {
                        "jobId": j.id,
                        "jobName": j.name,
                        "applicationName": j.app.name,
                        "status": j.status,
                        "openapi": f"{self.base}/jobs/{j.id}/openapi.json",
                        "endpoints": [
                            {
                                "operator": e.operator,
                                "port": e.port,
                                "kind": e.kind,
                                "url": self._endpoint_url(j, e),
                            }
                            for e in j.app.endpoints
                        ],
                    }
                    for j in self._jobs()
                ]
                return json_response({"jobs": docs, "total": len(docs)})
            case ["streams", "data", "jobs", j, "openapi.json"]:
                RestApi._only(method, "GET")
                return json_response(self._openapi(self._job(j)))
            case ["streams", "data", "jobs", j, op, "ports", n, "tuples"]:
                job = self._job(j)
                ep = next((e for e in job.app.endpoints if e.operator == op and str(e.port) == n), None)
                if ep is None:
                    raise ApiError(404, f"The {op} endpoint port {n} does not exist in the {j} job.")
                if ep.kind == "source":
                    RestApi._only(method, "POST")
                    return self._inject(job, ep, body, headers.get("content-type", "application/json"))
                RestApi._only(method, "GET")
                return self._retrieve(job, ep, q)
        raise ApiError(404, f"The {path} resource does not exist.")

    def _job(self, j: str) -> Job:
        job = self.inst.job(j)
        if job.status != "running" or not job.app.endpoints:
            raise ApiError(404, f"The {j} job has no data exchange endpoints.")
        return job

    def _inject(self, job: Job, ep: EndpointSpec, body: bytes, ctype: str) -> Response:
        try:
            items = parse_tuples(body, ctype)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"The request body cannot be read: {exc}") from exc
        try:
            reply = self.inst.pe_request(job.pes[ep.pe_index], {"cmd": "inject", "items": items}, timeout=10.0)
        except (OSError, ValueError) as exc:
            raise ApiError(503, f"The {ep.operator} operator cannot be reached: {exc}") from exc
        if "error" in reply:
            raise ApiError(503, f"The {ep.operator} operator failed: {reply['error']}")
        return json_response({"accepted": reply.get("accepted", len(items))})

    def _retrieve(self, job: Job, ep: EndpointSpec, q: Query) -> Response:
        msg: dict[str, Any] = {"cmd": "fetch"}
        if q.get("startTime"):
            try:
                msg["startTime"] = int(float(q["startTime"][0]))
            except ValueError as exc:
                raise ApiError(400, f"startTime is not a number: {exc}") from exc
        try:
            reply = self.inst.pe_request(job.pes[ep.pe_index], msg, timeout=10.0)
        except (OSError, ValueError) as exc:
            raise ApiError(503, f"The {ep.operator} operator cannot be reached: {exc}") from exc
        if "error" in reply:
            raise ApiError(503, f"The {ep.operator} operator failed: {reply['error']}")
        return json_response(reply)

    def _openapi(self, job: Job) -> dict[str, Any]:
        tuple_schema = {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "key": {"type": "string"},
                "seq": {"type": "integer", "format": "int64"},
                "amount": {"type": "number", "format": "double"},
                "sent_at": {"type": "number", "format": "double"},
                "crc": {"type": "integer", "format": "int64"},
            },
            "additionalProperties": True,
        }
        out_schema = {
            "allOf": [
                {"$ref": "#/components/schemas/InTuple"},
                {
                    "type": "object",
                    "properties": {
                        "dc": {"type": "string"},
                        "count_for_key": {"type": "integer", "format": "int64"},
                        "sum_for_key": {"type": "number", "format": "double"},
                        "processed_at": {"type": "number", "format": "double"},
                    },
                },
            ]
        }
        paths_doc: dict[str, Any] = {}
        prefix = f"/jobs/{job.id}"
        for ep in job.app.endpoints:
            p = f"{prefix}/{ep.operator}/ports/{ep.port}/tuples"
            if ep.kind == "source":
                paths_doc[p] = {
                    "post": {
                        "summary": f"Inject tuples into {ep.operator} port {ep.port}",
                        "requestBody": {
                            "required": True,
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "items": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/InTuple"},
                                            }
                                        },
                                    }
                                },
                                "text/csv": {"schema": {"type": "string"}},
                            },
                        },
                        "responses": {
                            "200": {
                                "description": "accepted",
                                "content": {
                                    "application/json": {
                                        "schema": {
                                            "type": "object",
                                            "properties": {"accepted": {"type": "integer"}},
                                        }
                                    }
                                },
                            },
                            "400": {"description": "unreadable body"},
                            "404": {"description": "unknown job or endpoint"},
                            "503": {"description": "operator unreachable"},
                        },
                    }
                }
            else:
                paths_doc[p] = {
                    "get": {
                        "summary": f"Retrieve buffered tuples of {ep.operator} port {ep.port}",
                        "parameters": [
                            {
                                "name": "startTime",
                                "in": "query",
                                "required": False,
                                "schema": {"type": "integer", "format": "int64"},
                                "description": "epoch milliseconds; only tuples buffered at or after it",
                            }
                        ],
                        "responses": {
                            "200": {
                                "description": "tuples",
                                "content": {
                                    "application/json": {
                                        "schema": {
                                            "type": "object",
                                            "properties": {
                                                "items": {
                                                    "type": "array",
                                                    "items": {"$ref": "#/components/schemas/OutTuple"},
                                                },
                                                "warning": {"type": "string"},
                                            },
                                        }
                                    }
                                },
                            },
                            "404": {"description": "unknown job or endpoint"},
                            "503": {"description": "operator unreachable"},
                        },
                    }
                }
        return {
            "openapi": "3.0.3",
            "info": {"title": f"{job.app.name} data exchange", "version": job.app.version},
            "servers": [{"url": self.base}],
            "paths": paths_doc,
            "components": {
                "schemas": {"InTuple": tuple_schema, "OutTuple": out_schema},
                "securitySchemes": {"authBasic": {"type": "http", "scheme": "basic"}},
            },
            "security": [{"authBasic": []}],
        }


class TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr: tuple[str, int], ctx: ssl.SSLContext, api: Api, password: str) -> None:
        self.ctx = ctx
        self.api = api
        token = base64.b64encode(f"{paths.USER}:{password}".encode()).decode()
        self.expected_auth = f"Basic {token}".encode()
        super().__init__(addr, Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would call socket.getfqdn(): a DNS lookup the lab must never make
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(30)
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", client_address, exc)
            return
        try:
            Handler(tls, client_address, self)
        except (ssl.SSLError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError):
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("error while serving %s", client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: avoid the 40 ms delayed-ACK stall
    server: TLSServer
    server_version = "TeracloudStreams/7.2"
    sys_version = ""

    def _authorized(self) -> bool:
        got = (self.headers.get("Authorization") or "").encode()
        return hmac.compare_digest(got, self.server.expected_auth)

    def _send(self, resp: Response) -> None:
        self.send_response(resp.status)
        if resp.status != 204:
            self.send_header("Content-Type", resp.content_type)
        if resp.status != 204:
            self.send_header("Content-Length", str(len(resp.body)))
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.end_headers()
        if resp.body and self.command != "HEAD":
            self.wfile.write(resp.body)

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        parts = urlsplit(self.path)
        q = parse_qs(parts.query)
        if not self._authorized():
            resp = error_response(401, "The user is not authenticated: provide valid credentials.")
            resp.headers["WWW-Authenticate"] = 'Basic realm="streams"'
        else:
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                resp = self.server.api.handle(self.command, parts.path, q, body, headers)
            except ApiError as exc:
                resp = error_response(exc.status, exc.text)
            except Exception as exc:
                log.exception("internal error on %s %s", self.command, self.path)
                resp = error_response(500, f"Internal error: {type(exc).__name__}: {exc}")
        if resp.status >= 400 or (self.command != "GET" and parts.path.startswith("/streams/instances")):
            log.info("%s %s -> %d", self.command, self.path, resp.status)
        self._send(resp)

    do_GET = _dispatch
    do_POST = _dispatch
    do_DELETE = _dispatch
    do_PUT = _dispatch
    do_PATCH = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.instance")
    parser.add_argument("--dc", required=True, choices=paths.DCS)
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    dc: str = args.dc
    inst = Instance(dc)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    tls = paths.tls_dir(dc)
    ctx.load_cert_chain(str(tls / "server.pem"), str(tls / "server.key"))
    password = paths.read_password()
    rest = TLSServer((inst.addr, paths.REST_PORT), ctx, RestApi(inst), password)
    data = TLSServer((inst.addr, paths.DATA_PORT), ctx, DataApi(inst), password)

    def on_term(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping PEs and exiting", signum)
        inst.shutdown_all()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    threading.Thread(target=data.serve_forever, name="data-exchange", daemon=True).start()
    log.info(
        "instance %s serving REST on %s:%d and data exchange on %s:%d (defects: %s)",
        inst.id,
        inst.addr,
        paths.REST_PORT,
        inst.addr,
        paths.DATA_PORT,
        ",".join(sorted(paths.active_defects())) or "none",
    )
    rest.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
