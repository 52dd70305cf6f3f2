"""Instance service of one DC: `python -m lab.instance --dc dc1` (started by `lab up` inside the DC netns).

Serves the REST management API (HTTPS :9714, paths as Teracloud 7.2) and the data exchange service
(HTTPS :9715), both with HTTP Basic auth, and launches/supervises the PEs of submitted jobs as child
processes (`python -m lab.pe`). Standard library only.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hmac
import io
import json
import logging
import math
import os
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from lab import crossdc, paths, truth
from lab.apps import APPS, AppSpec, EndpointSpec, OperatorSpec, StreamSpec
from lab.httpd import LabHTTPServer
from lab.peruntime import TRACE_LEVELS

log = logging.getLogger("lab.instance")

PE_READY_TIMEOUT = 15.0
STOP_GRACE = 1.0
MAX_FAILED_LAUNCHES = 5
REFUSE_EVERY = 50  # defect refuse-but-deliver: every 50th processed injection POST is answered 500
LOST_ACK_EVERY = 50  # defect lost-ack: every 50th processed injection POST gets no answer at all ...
LOST_ACK_AT = 25  # ... the 25th, 75th, ... (so that both defects can be on together)
#: the instance pings every running PE this often (the PE's heartbeat to its instance) ...
LIVENESS_INTERVAL = 0.5
#: ... and reports it unhealthy when the answer takes longer than this (SIGSTOP, hang)
PING_TIMEOUT = 0.5
METRICS_TIMEOUT = 1.0


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
    responsive: bool = True  # answers the instance's liveness pings
    thread: threading.Thread | None = None
    last_metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])


@dataclass
class Job:
    id: str
    name: str
    app: AppSpec
    params: dict[str, str]
    submit_params: list[dict[str, str]]
    submit_time: int
    group: str = "default"
    tracing: str = "info"
    status: str = "running"
    pes: list[PE] = field(default_factory=list)

    def pe_of(self, op: OperatorSpec) -> PE:
        return self.pes[op.pe_index]

    def operator(self, name: str) -> OperatorSpec | None:
        return next((o for o in self.app.operators if o.name == name), None)

    def pe_links(self) -> list[tuple[PE, PE]]:
        """PE connections (source PE output port 0 -> target PE input port 0)."""
        return [(self.pes[s], self.pes[d]) for s, d in sorted(self.app.downstream.items())]


class ApiError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class DropConnection(Exception):
    """The request was handled but no answer is sent: the server closes the connection (defect `lost-ack`)."""


class PingChannel:
    """The instance's liveness channel to one PE process: numbered pings on one kept connection, so a late
    answer from a stopped-then-continued PE is recognised and skipped."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buf = b""
        self.seq = 0

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock = None
        self.buf = b""

    def ping(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        try:
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
            self.seq += 1
            self.sock.settimeout(max(0.01, end - time.monotonic()))
            self.sock.sendall(json.dumps({"cmd": "ping", "seq": self.seq}).encode() + b"\n")
            while True:
                while b"\n" in self.buf:
                    line, self.buf = self.buf.split(b"\n", 1)
                    with contextlib.suppress(ValueError, AttributeError):
                        if json.loads(line).get("seq") == self.seq:
                            return True
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.sock.settimeout(left)
                chunk = self.sock.recv(4096)
                if not chunk:
                    self.close()
                    return False
                self.buf += chunk
        except TimeoutError:
            return False  # keep the connection: the answer may still come, it is skipped by its number
        except OSError:
            self.close()
            return False


class Instance:
    def __init__(self, dc: str) -> None:
        self.dc = dc
        self.id = paths.instance_id(dc)
        self.addr = paths.DC_ADDR[dc]
        self.lock = threading.RLock()
        self.jobs: dict[str, Job] = {}
        self.next_job = 1
        self.next_pe = 1
        self.creation_time = now_ms()
        self.start_time = self.creation_time
        self.status = "running"
        self.pes_root = paths.pes_dir(dc)
        self.pes_root.mkdir(parents=True, exist_ok=True)
        self.state_lock = threading.Lock()  # serialises stop/start

    # -------------------------------------------------------------- health
    @staticmethod
    def connection_status(src: PE, dst: PE) -> str:
        return "connected" if src.status == "running" and dst.status == "running" else "disconnected"

    def pe_connections(self, pe: PE) -> list[tuple[PE, PE]]:
        return [(s, d) for s, d in pe.job.pe_links() if pe in (s, d)]

    def pe_required_connections(self, pe: PE) -> str:
        states = [self.connection_status(s, d) for s, d in self.pe_connections(pe)]
        if all(st == "connected" for st in states):
            return "connected"
        return "disconnected" if all(st == "disconnected" for st in states) else "partiallyConnected"

    def pe_health(self, pe: PE) -> str:
        """Healthy iff running and all its connections connected (reference §1.6); a running PE that stopped
        answering its instance's liveness pings is unhealthy; running with a connection down is partially
        healthy."""
        if pe.status != "running" or not pe.responsive:
            return "unhealthy"
        return "healthy" if self.pe_required_connections(pe) == "connected" else "partiallyHealthy"

    def job_health(self, job: Job) -> str:
        if job.status != "running":
            return "unknown"
        healths = [self.pe_health(p) for p in job.pes]
        unhealthy = sum(1 for h in healths if h == "unhealthy")
        if all(h == "healthy" for h in healths):
            return "healthy"
        if unhealthy == len(healths):
            return "unhealthy"
        return "partiallyUnhealthy" if unhealthy * 2 > len(healths) else "partiallyHealthy"

    def health(self) -> str:
        if self.status != "running":
            return "unknown"
        healths = {self.job_health(j) for j in self.all_jobs()}
        if healths <= {"healthy"}:
            return "healthy"
        return "unhealthy" if healths == {"unhealthy"} else "partiallyHealthy"

    # -------------------------------------------------------------- jobs
    def submit(
        self,
        app: AppSpec,
        name: str,
        params: dict[str, str],
        given: list[dict[str, str]],
        group: str = "default",
        tracing: str = "info",
    ) -> Job:
        with self.lock:
            if self.status != "running":
                raise ApiError(409, f"The {self.id} instance is not running: start it before submitting jobs.")
            if any(j.name == name for j in self.jobs.values()):
                raise ApiError(409, f"A job with the name {name} already exists in the {self.id} instance.")
            job = Job(str(self.next_job), name, app, params, given, now_ms(), group=group, tracing=tracing)
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

    def cancel(self, job: Job, reason: str = "userRequest") -> None:
        with self.lock:
            if job.status in ("canceling", "canceled"):
                return
            job.status = "canceling"
            procs: list[subprocess.Popen[bytes]] = []
            for pe in job.pes:
                pe.stopping = True
                if pe.proc is not None and pe.proc.poll() is None:
                    pe.status = "stopping"
                    pe.status_reason = reason
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
                with contextlib.suppress(ProcessLookupError):
                    pe.proc.kill()
        for pe in job.pes:
            if pe.thread is not None:
                pe.thread.join(5.0)
        with self.lock:
            job.status = "canceled"
            self.jobs.pop(job.id, None)
            for pe in job.pes:
                pe.listener.close()
        truth.emit(self.dc, "instance", "job_canceled", job_id=job.id, job_name=job.name, reason=reason)
        log.info("job %s (%s) canceled", job.id, job.name)

    def shutdown_all(self) -> None:
        with self.lock:
            for job in self.jobs.values():
                for pe in job.pes:
                    pe.stopping = True
                    if pe.proc is not None and pe.proc.poll() is None:
                        pe.proc.terminate()

    # -------------------------------------------------------------- instance stop/start (lab extension)
    def stop(self) -> None:
        """Stop the instance: every job's PEs are stopped and the jobs are gone (like `streamtool
        stopinstance --force`); the REST API keeps answering with instance status `stopped`."""
        with self.state_lock:
            with self.lock:
                if self.status == "stopped":
                    return
                self.status = "stopping"
                jobs = list(self.jobs.values())
            truth.emit(self.dc, "instance", "instance_stopping", jobs=[j.id for j in jobs])
            threads = [threading.Thread(target=self.cancel, args=(j, "userRequest"), daemon=True) for j in jobs]
            for t in threads:
                t.start()
            for t in threads:
                t.join(10.0)
            with self.lock:
                self.status = "stopped"
            truth.emit(self.dc, "instance", "instance_stopped", jobs=[j.id for j in jobs])
            log.info("instance %s stopped (%d job(s) canceled)", self.id, len(jobs))

    def start(self) -> None:
        with self.state_lock:
            with self.lock:
                if self.status == "running":
                    return
                self.status = "running"
                self.start_time = now_ms()
            truth.emit(self.dc, "instance", "instance_started")
            log.info("instance %s started", self.id)

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
            "tracing": job.tracing,
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
        chan = PingChannel(pe.port)
        try:
            while time.monotonic() < end:
                if proc.poll() is not None or pe.stopping:
                    return False
                if chan.ping(min(0.05, max(0.0, end - time.monotonic()))):
                    return True
            return False
        finally:
            chan.close()

    def _watch(self, pe: PE, proc: subprocess.Popen[bytes]) -> int:
        """Wait for the PE process to end; meanwhile ping it every LIVENESS_INTERVAL (its heartbeat)."""
        chan = PingChannel(pe.port)
        try:
            while True:
                try:
                    return proc.wait(timeout=LIVENESS_INTERVAL)
                except subprocess.TimeoutExpired:
                    pass
                if pe.stopping:
                    continue
                ok = chan.ping(PING_TIMEOUT)
                if proc.poll() is None:
                    self._set_responsive(pe, ok)
        finally:
            chan.close()

    def _set_responsive(self, pe: PE, ok: bool) -> None:
        with self.lock:
            if pe.responsive == ok:
                return
            pe.responsive = ok
        event = "pe_responsive" if ok else "pe_unresponsive"
        if ok:
            log.info("PE %s (pid %s) answers its liveness pings again", pe.id, pe.pid)
        else:
            log.warning("PE %s (pid %s) stopped answering its liveness pings", pe.id, pe.pid)
        truth.emit(self.dc, "instance", event, job_id=pe.job.id, job_name=pe.job.name, pe_id=pe.id, pid=pe.pid)

    def _supervise(self, pe: PE) -> None:
        failed_launches = 0
        while True:
            with self.lock:
                if pe.stopping:
                    pe.status = "stopped"
                    return
                pe.launch_count += 1
                pe.responsive = True
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
            rc = self._watch(pe, proc) if ready else proc.wait()
            with self.lock:
                if pe.stopping:
                    pe.status = "stopped"
                    stopped = True
                else:
                    pe.status = "restarting"
                    pe.status_reason = "crash"
                    stopped = False
                job_health = self.job_health(pe.job)
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
                status="restarting",
                job_health=job_health,
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
        """The PE's counters; the last known ones while it does not answer (stopped, hung, restarting)."""
        if pe.status == "running" and pe.responsive:
            with contextlib.suppress(OSError, ValueError):
                pe.last_metrics = self.pe_request(pe, {"cmd": "metrics"}, timeout=METRICS_TIMEOUT)
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

    def all_pes(self) -> list[PE]:
        return [p for j in self.all_jobs() for p in j.pes]


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


class HostStats:
    """Resource metrics of the DC host (reference §4.1 resource/host), from /proc and /sys of its netns."""

    def __init__(self, iface: str) -> None:
        self.iface = iface
        self.lock = threading.Lock()
        self.last_cpu: tuple[float, int, int] | None = None  # (monotonic, busy, total)
        self.last_net: tuple[float, int] | None = None
        self.cpu_util = 0
        self.net_util = 0

    @staticmethod
    def _cpu_times() -> tuple[int, int]:
        vals = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
        return sum(vals) - idle, sum(vals)

    def _net_bytes(self) -> int:
        for line in Path("/proc/net/dev").read_text().splitlines()[2:]:
            name, _, rest = line.partition(":")
            if name.strip() == self.iface:
                f = rest.split()
                return int(f[0]) + int(f[8])
        return 0

    def capacity_kbps(self) -> int:
        try:
            speed = int(Path(f"/sys/class/net/{self.iface}/speed").read_text().strip())
        except (OSError, ValueError):
            speed = -1
        return speed * 1000 if speed > 0 else 10_000_000  # veths report no speed: 10 Gbit/s

    def metrics(self) -> list[tuple[str, int, str]]:
        now = time.monotonic()
        with self.lock:
            try:
                busy, total = self._cpu_times()
                if self.last_cpu is not None and total > self.last_cpu[2]:
                    self.cpu_util = round(100 * (busy - self.last_cpu[1]) / (total - self.last_cpu[2]))
                self.last_cpu = (now, busy, total)
                nbytes = self._net_bytes()
                if self.last_net is not None and now > self.last_net[0]:
                    kbps = (nbytes - self.last_net[1]) * 8 / 1000 / (now - self.last_net[0])
                    self.net_util = round(100 * kbps / self.capacity_kbps())
                self.last_net = (now, nbytes)
            except (OSError, ValueError, IndexError):
                pass
            cpu_util, net_util = self.cpu_util, self.net_util
        mem: dict[str, int] = {}
        with contextlib.suppress(OSError, ValueError):
            for line in Path("/proc/meminfo").read_text().splitlines():
                k, _, v = line.partition(":")
                mem[k] = int(v.split()[0])
        mhz = 0
        with contextlib.suppress(OSError, ValueError):
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("cpu MHz"):
                    mhz = round(float(line.split(":")[1]))
                    break
        load = 0
        with contextlib.suppress(OSError, ValueError):
            load = round(float(Path("/proc/loadavg").read_text().split()[0]) * 100)
        cap = mem.get("MemTotal", 0)
        used = cap - mem.get("MemAvailable", cap)
        return [
            ("nProcessors", os.cpu_count() or 1, "gauge"),
            ("cpuSpeed", mhz, "gauge"),
            ("loadAverage", load, "gauge"),
            ("cpuUtilization", cpu_util, "gauge"),
            ("memoryCapacity", cap, "gauge"),
            ("memoryUtilization", round(100 * used / cap) if cap else 0, "gauge"),
            ("appNetworkCapacity", self.capacity_kbps(), "gauge"),
            ("appNetworkUtilization", net_util, "gauge"),
        ]


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
Elements = list[tuple[dict[str, Any], dict[str, Any]]]


def _wanted(q: Query, *names: str) -> set[str] | None:
    vals = [v for n in names for v in q.get(n, [])]
    if not vals:
        return None
    return {f.strip() for v in vals for f in v.split(",") if f.strip()}


def pick_fields(doc: dict[str, Any], q: Query, *names: str) -> dict[str, Any]:
    wanted = _wanted(q, *(names or ("fields",)))
    if wanted is None:
        return doc
    return {k: v for k, v in doc.items() if k in wanted or k in _KEEP}


def _int_param(q: Query, name: str) -> int | None:
    if not q.get(name):
        return None
    try:
        return int(q[name][0])
    except ValueError as exc:
        raise ApiError(400, f"The {name} query parameter is not an integer: {q[name][0]!r}") from exc


def collection(url: str, key: str, rtype: str, elements: Elements, q: Query) -> Response:
    """A collection envelope: property filters, `fields`/`listFields`, `count`+`page` paging with `next`/`previous`.

    Filters compare an element property (or a pseudo property such as `job.restid` given in the element's
    extras) with a comma-separated list of values; unknown properties are ignored (reference §1.3).
    """
    filters = {k: {x for v in vals for x in v.split(",")} for k, vals in q.items() if k not in _RESERVED_QUERY}
    matched: list[dict[str, Any]] = []
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
            matched.append(pick_fields(doc, q, "fields", "listFields"))
    out: dict[str, Any] = {key: matched, "total": len(matched), "resourceType": rtype}
    count = _int_param(q, "count")
    if count is not None:
        if count < 1:
            raise ApiError(400, f"The count query parameter must be at least 1, not {count}.")
        pages = max(1, math.ceil(len(matched) / count))
        page = _int_param(q, "page") or 1
        if page == -1:
            page = pages
        if page < 1:
            raise ApiError(400, f"The page query parameter must be 1 or more, or -1 for the last page, not {page}.")
        out[key] = matched[(page - 1) * count : page * count]

        def page_url(n: int) -> str:
            query = {k: v for k, v in q.items() if k != "page"}
            query["page"] = [str(n)]
            return f"{url}?{urlencode(query, doseq=True)}"

        if page < pages:
            out["next"] = page_url(page + 1)
        if page > 1:
            out["previous"] = page_url(min(page - 1, pages))
    return json_response(out)


class Api(Protocol):
    def handle(self, method: str, path: str, q: Query, body: bytes, headers: dict[str, str]) -> Response: ...


_PE_IN = "inputports"
_PE_OUT = "outputports"


class RestApi:
    """The REST management API of one instance (reference §1; Teracloud 7.2 paths, no `/rest`)."""

    def __init__(self, inst: Instance) -> None:
        self.inst = inst
        self.base = paths.rest_base(inst.dc)
        self.iurl = f"{self.base}/streams/instances/{inst.id}"
        self.host_stats = HostStats(f"xdc-d{inst.dc[-1]}")

    # -------------------------------------------------------------- URLs
    def job_url(self, job: Job) -> str:
        return f"{self.iurl}/jobs/{job.id}"

    def pe_url(self, pe: PE) -> str:
        return f"{self.iurl}/pes/{pe.id}"

    def op_url(self, job: Job, op: OperatorSpec | str) -> str:
        name = op if isinstance(op, str) else op.name
        return f"{self.job_url(job)}/operators/{quote(name, safe='')}"

    def host_url(self) -> str:
        return f"{self.iurl}/hosts/{self.inst.addr}"

    def alloc_url(self) -> str:
        return f"{self.iurl}/resourceallocations/{self.inst.addr}"

    # -------------------------------------------------------------- documents
    def instance_doc(self) -> dict[str, Any]:
        i = self.inst
        u = self.iurl
        return {
            "self": u,
            "restid": i.id,
            "resourceType": "instance",
            "id": i.id,
            "status": i.status,
            "health": i.health(),
            "owner": paths.USER,
            "creationTime": i.creation_time,
            "creationUser": paths.USER,
            "startTime": i.start_time,
            "startedBy": paths.USER,
            "productVersion": paths.PRODUCT_VERSION,
            "activeVersion": {
                "productName": paths.PRODUCT_NAME,
                "productVersion": paths.PRODUCT_VERSION,
                "architecture": "x86_64",
                "fullProductVersion": paths.PRODUCT_VERSION,
                "buildVersion": "lab",
                "editionName": "Lab Edition",
            },
            "jobs": f"{u}/jobs",
            "pes": f"{u}/pes",
            "operators": f"{u}/operators",
            "hosts": f"{u}/hosts",
            "views": f"{u}/views",
            "exportedStreams": f"{u}/exportedstreams",
            "importedStreams": f"{u}/importedstreams",
            "operatorConnections": f"{u}/operatorconnections",
            "peConnections": f"{u}/peconnections",
            "resourceAllocations": f"{u}/resourceallocations",
            "activeServices": f"{u}/activeservices",
            "applicationConfigurations": f"{u}/applicationconfigurations",
            "jobGroups": f"{u}/jobgroups",
            "actions": f"{u}/actions",
        }

    def job_doc(self, job: Job) -> dict[str, Any]:
        u = self.job_url(job)
        app = job.app
        return {
            "self": u,
            "restid": job.id,
            "resourceType": "job",
            "id": job.id,
            "name": job.name,
            "applicationName": app.name,
            "applicationVersion": app.version,
            "applicationPath": str(paths.LAB_DIR / "bundles" / app.name),
            "applicationScope": "Default",
            "adlFile": f"output/{app.main_composite.replace('::', '.')}.adl",
            "dataPath": str(paths.LAB_DIR / self.inst.dc / "data"),
            "outputPath": str(paths.LAB_DIR / self.inst.dc / "output" / job.id),
            "status": job.status,
            "health": self.inst.job_health(job),
            "jobGroup": job.group,
            "startedBy": paths.USER,
            "submitTime": job.submit_time,
            "submitParameters": self._submit_parameters(job),
            "instance": self.iurl,
            "pes": f"{u}/pes",
            "operators": f"{u}/operators",
            "hosts": f"{u}/hosts",
            "views": f"{u}/views",
            "operatorConnections": f"{u}/operatorconnections",
            "peConnections": f"{u}/peconnections",
            "resourceAllocations": f"{u}/resourceallocations",
            "applicationLogTrace": f"{u}/applicationlogtrace",
        }

    def _submit_parameters(self, job: Job) -> list[dict[str, Any]]:
        given = {p["name"]: p["value"] for p in job.submit_params}
        names = list(job.app.parameters) + [n for n in given if n not in job.app.parameters]
        dc_defaults = crossdc.dc_defaults(self.inst.dc)
        out = []
        for name in names:
            default = job.app.parameters.get(name, "") or dc_defaults.get(name, "")
            value = given.get(name, default)
            out.append(
                {
                    "name": name,
                    "value": value,
                    "values": [value],
                    "defaultValue": default,
                    "composite": job.app.main_composite,
                    "parameterKind": "named",
                    "required": False,
                }
            )
        return out

    def pe_doc(self, pe: PE, verbose: bool = False) -> dict[str, Any]:
        u = self.pe_url(pe)
        inst = self.inst
        doc: dict[str, Any] = {
            "self": u,
            "restid": pe.id,
            "resourceType": "pe",
            "id": pe.id,
            "indexWithinJob": pe.index,
            "status": pe.status,
            "statusReason": pe.status_reason,
            "health": inst.pe_health(pe),
            "launchCount": pe.launch_count,
            "processId": str(pe.pid) if pe.pid is not None and pe.status not in ("stopped", "restarting") else "",
            "relocatable": False,
            "restartable": True,
            "requiredConnections": inst.pe_required_connections(pe),
            "optionalConnections": "connected",
            "tracingLevel": pe.job.tracing,
            "pendingTracingLevel": pe.job.tracing,
            "osCapabilities": [],
            "resourceTags": [],
            "currentWorkingPath": str(pe.dir),
            "job": self.job_url(pe.job),
            "instance": self.iurl,
            "host": self.host_url(),
            "resource": self.host_url(),
            "resourceAllocation": self.alloc_url(),
            "operators": f"{u}/operators",
            "inputPorts": f"{u}/inputports",
            "outputPorts": f"{u}/outputports",
            "connections": f"{u}/connections",
            "metrics": f"{u}/metrics",
            "applicationTrace": f"{u}/applicationTrace",
            "consoleLog": f"{u}/consoleLog",
        }
        if verbose:
            doc["restartPriority"] = 0
        return doc

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
            "pe": self.pe_url(job.pe_of(op)),
            "host": self.host_url(),
            "resourceAllocation": self.alloc_url(),
            "inputPorts": f"{u}/inputports",
            "outputPorts": f"{u}/outputports",
            "connections": f"{u}/connections",
            "metrics": f"{u}/metrics",
        }

    def op_port_doc(self, job: Job, op: OperatorSpec, kind: str, n: int) -> dict[str, Any]:
        u = f"{self.op_url(job, op)}/{kind}/{n}"
        stream = job.app.stream_in(op.name, n) if kind == _PE_IN else job.app.stream_out(op.name, n)
        return {
            "self": u,
            "restid": str(n),
            "resourceType": "operatorInputPort" if kind == _PE_IN else "operatorOutputPort",
            "name": stream,
            "streamName": stream,
            "indexWithinOperator": n,
            "operator": self.op_url(job, op),
            "connections": f"{u}/connections",
            "metrics": f"{u}/metrics",
        }

    def pe_ports(self, pe: PE, kind: str) -> int:
        """Number of PE input (output) ports: the lab's PEs have at most one of each."""
        links = pe.job.app.downstream
        if kind == _PE_IN:
            return 1 if pe.index in links.values() else 0
        return 1 if pe.index in links else 0

    def pe_port_doc(self, pe: PE, kind: str, n: int) -> dict[str, Any]:
        u = f"{self.pe_url(pe)}/{kind}/{n}"
        return {
            "self": u,
            "restid": str(n),
            "resourceType": "peInputPort" if kind == _PE_IN else "peOutputPort",
            "id": f"{pe.id}{'i' if kind == _PE_IN else 'o'}{n}",
            "indexWithinPE": n,
            "transportType": "TCP",
            "pe": self.pe_url(pe),
            "connections": f"{u}/connections",
            "metrics": f"{u}/metrics",
        }

    def conn_doc(self, src: PE, dst: PE) -> dict[str, Any]:
        cid = f"o{src.id}p0i{dst.id}p0"
        u = f"{self.iurl}/peconnections/{cid}"
        return {
            "self": u,
            "restid": cid,
            "resourceType": "peConnection",
            "id": cid,
            "required": True,
            "status": self.inst.connection_status(src, dst),
            "metrics": f"{u}/metrics",
            "source": {"job": self.job_url(src.job), "pe": self.pe_url(src), "outputPort": 0},
            "target": {"job": self.job_url(dst.job), "pe": self.pe_url(dst), "inputPort": 0},
        }

    def _pe_conn_elements(self, pes: list[PE] | None = None) -> Elements:
        out: Elements = []
        for job in self.inst.all_jobs():
            for src, dst in job.pe_links():
                if pes is None or src in pes or dst in pes:
                    out.append((self.conn_doc(src, dst), {"job.restid": job.id}))
        return out

    def opconn_doc(self, job: Job, s: StreamSpec) -> dict[str, Any]:
        cid = f"{job.id}.{s.src}.o{s.src_port}.{s.dst}.i{s.dst_port}"
        src, dst = self.op_url(job, s.src), self.op_url(job, s.dst)
        return {
            "self": f"{self.iurl}/operatorconnections/{quote(cid, safe='')}",
            "restid": cid,
            "resourceType": "operatorConnection",
            "id": cid,
            "streamName": s.name,
            "job": self.job_url(job),
            "source": {"operator": src, "outputPort": f"{src}/outputports/{s.src_port}"},
            "target": {"operator": dst, "inputPort": f"{dst}/inputports/{s.dst_port}"},
        }

    def _opconn_elements(self, jobs: list[Job]) -> Elements:
        return [
            (self.opconn_doc(job, s), {"job.restid": job.id, "source.operator": s.src, "target.operator": s.dst})
            for job in jobs
            for s in job.app.streams
        ]

    def host_doc(self) -> dict[str, Any]:
        a = self.inst.addr
        u = self.host_url()
        return {
            "self": u,
            "restid": a,
            "resourceType": "host",
            "name": a,
            "ipAddress": a,
            "processorCount": os.cpu_count() or 1,
            "status": "running" if self.inst.status == "running" else "stopped",
            "tags": ["application", "management"],
            "restrictedTags": [],
            "services": ["application", "management", "dataExchange"],
            "instance": self.iurl,
            "jobs": f"{u}/jobs",
            "pes": f"{u}/pes",
            "metrics": f"{u}/metrics",
        }

    def alloc_doc(self) -> dict[str, Any]:
        u = self.alloc_url()
        return {
            "self": u,
            "restid": self.inst.addr,
            "resourceType": "resourceAllocation",
            "applicationResource": True,
            "schedulerStatus": "schedulable",
            "status": "running" if self.inst.status == "running" else "stopped",
            "resource": self.host_url(),
            "instance": self.iurl,
            "jobs": f"{self.host_url()}/jobs",
            "pes": f"{self.host_url()}/pes",
        }

    def services(self) -> list[dict[str, Any]]:
        out = []
        for name, url in (
            ("management", f"{self.base}/streams/resources"),
            ("dataExchange", f"{paths.data_base(self.inst.dc)}/streams/data"),
        ):
            out.append(
                {
                    "self": f"{self.iurl}/activeservices/{name}",
                    "restid": name,
                    "resourceType": "activeService",
                    "name": name,
                    "host": self.host_url(),
                    "status": "running",
                    "url": url,
                    "instance": self.iurl,
                }
            )
        return out

    def job_group_doc(self, name: str) -> dict[str, Any]:
        return {
            "self": f"{self.iurl}/jobgroups/{quote(name, safe='')}",
            "restid": name,
            "resourceType": "jobGroup",
            "name": name,
            "instance": self.iurl,
            "jobs": f"{self.iurl}/jobs?jobGroup={quote(name, safe='')}",
        }

    # -------------------------------------------------------------- metrics
    def metric_list(self, owner: str, items: list[tuple[str, int, str]]) -> Response:
        t = now_ms()
        return json_response(
            {
                "metrics": [
                    {
                        "name": n,
                        "description": _METRIC_DESCRIPTIONS.get(n, n),
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
        if kind == _PE_IN:
            return [
                ("nTuplesProcessed", counters.get("in", 0), "counter"),
                ("nTuplesDropped", counters.get("dropped", 0), "counter"),
                ("nTuplesQueued", counters.get("queued", 0), "gauge"),
                ("nWindowPunctsProcessed", 0, "counter"),
                ("nFinalPunctsProcessed", 0, "counter"),
                ("nWindowPunctsQueued", 0, "gauge"),
                ("nFinalPunctsQueued", 0, "gauge"),
                ("queueSize", 0, "gauge"),
                ("maxItemsQueued", 0, "gauge"),
                ("recentMaxItemsQueued", 0, "gauge"),
                ("recentMaxItemsQueuedInterval", 0, "time"),
                ("nEnqueueWaits", 0, "counter"),
            ]
        return [
            ("nTuplesSubmitted", counters.get("out", 0), "counter"),
            ("nWindowPunctsSubmitted", 0, "counter"),
            ("nFinalPunctsSubmitted", 0, "counter"),
        ]

    def pe_port_metrics(self, pe: PE, kind: str) -> list[tuple[str, int, str]]:
        c = self.inst.pe_counters(pe).get("ports", {})
        if kind == _PE_IN:
            return [
                ("nTuplesProcessed", c.get("in_tuples", 0), "counter"),
                ("nTupleBytesProcessed", c.get("in_bytes", 0), "counter"),
                ("nWindowPunctsProcessed", 0, "counter"),
                ("nFinalPunctsProcessed", 0, "counter"),
            ]
        conns = [(s, d) for s, d in pe.job.pe_links() if s is pe]
        connected = sum(1 for s, d in conns if self.inst.connection_status(s, d) == "connected")
        return [
            ("nTuplesSubmitted", c.get("out_tuples", 0), "counter"),
            ("nTupleBytesSubmitted", c.get("out_bytes", 0), "counter"),
            ("nWindowPunctsSubmitted", 0, "counter"),
            ("nFinalPunctsSubmitted", 0, "counter"),
            ("nBrokenConnections", c.get("broken", 0), "counter"),
            ("nRequiredConnecting", len(conns) - connected, "gauge"),
            ("nOptionalConnecting", 0, "gauge"),
            ("nTuplesTransmitted", c.get("out_tuples", 0), "counter"),
            ("nTupleBytesTransmitted", c.get("out_bytes", 0), "counter"),
            ("nConnections", connected, "gauge"),
        ]

    def pe_metrics(self, pe: PE) -> list[tuple[str, int, str]]:
        counters = self.inst.pe_counters(pe).get("pe", {})
        alive = pe.status not in ("stopped",)
        cpu, rss, vsz = _proc_stats(pe.pid if alive else None)
        return [
            ("nCpuMilliseconds", cpu, "counter"),
            ("nResidentMemoryConsumption", rss, "gauge"),
            ("nMemoryConsumption", vsz, "gauge"),
            ("nTuplesProcessed", counters.get("nTuplesProcessed", 0), "counter"),
            ("nTuplesSubmitted", counters.get("nTuplesSubmitted", 0), "counter"),
        ]

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
                url = f"{self.base}/streams/instances"
                return collection(url, "instances", "instanceList", [(self.instance_doc(), {})], q)
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
        if rest == ["actions"] and method == "POST":
            return self._action(body)
        if len(rest) == 2 and rest[0] == "jobs" and method == "DELETE":
            job = inst.job(rest[1])
            inst.cancel(job)
            return Response(204)
        self._only(method, "GET")
        u = self.iurl
        verbose = (q.get("verbose") or ["false"])[0].lower() == "true"
        match rest:
            case []:
                return json_response(pick_fields(self.instance_doc(), q))
            case ["jobs"]:
                elems: Elements = [(self.job_doc(j), {}) for j in inst.all_jobs()]
                return collection(f"{u}/jobs", "jobs", "jobList", elems, q)
            case ["jobs", j, *more]:
                return self._job(inst.job(j), more, q, verbose)
            case ["pes"]:
                elems = [(self.pe_doc(p, verbose), self._pe_extra(p)) for p in inst.all_pes()]
                return collection(f"{u}/pes", "pes", "peList", elems, q)
            case ["pes", p, *more]:
                return self._pe(inst.pe(p), more, q, verbose)
            case ["operators"]:
                elems = [e for j in inst.all_jobs() for e in self._ops(j)]
                return collection(f"{u}/operators", "operators", "operatorList", elems, q)
            case ["hosts"]:
                return collection(f"{u}/hosts", "hosts", "hostList", [(self.host_doc(), {})], q)
            case ["hosts", h, *more]:
                if h != inst.addr:
                    raise ApiError(404, f"The {h} host does not exist in the {inst.id} instance.")
                return self._host(more, q, verbose)
            case ["resourceallocations"]:
                return collection(
                    f"{u}/resourceallocations", "resourceAllocations", "resourceAllocationList",
                    [(self.alloc_doc(), {})], q,
                )
            case ["resourceallocations", h]:
                if h != inst.addr:
                    raise ApiError(404, f"The {h} resource allocation does not exist in the {inst.id} instance.")
                return json_response(pick_fields(self.alloc_doc(), q))
            case ["peconnections"]:
                return collection(f"{u}/peconnections", "connections", "peConnectionList", self._pe_conn_elements(), q)
            case ["peconnections", c, *more]:
                return self._pe_connection(c, more, q)
            case ["operatorconnections"]:
                elems = self._opconn_elements(inst.all_jobs())
                return collection(f"{u}/operatorconnections", "connections", "operatorConnectionList", elems, q)
            case ["operatorconnections", c]:
                for doc, _ in self._opconn_elements(inst.all_jobs()):
                    if doc["restid"] == c:
                        return json_response(pick_fields(doc, q))
                raise ApiError(404, f"The {c} operator connection does not exist in the {inst.id} instance.")
            case ["views"]:
                return collection(f"{u}/views", "views", "viewList", [], q)
            case ["exportedstreams"]:
                return collection(f"{u}/exportedstreams", "exportedStreams", "exportedStreamList", [], q)
            case ["importedstreams"]:
                return collection(f"{u}/importedstreams", "importedStreams", "importedStreamList", [], q)
            case ["applicationconfigurations"]:
                return collection(
                    f"{u}/applicationconfigurations", "applicationConfigurations", "applicationConfigurationList",
                    [], q,
                )
            case ["activeservices"]:
                elems = [(s, {}) for s in self.services()]
                return collection(f"{u}/activeservices", "activeServices", "activeServiceList", elems, q)
            case ["activeservices", name]:
                found = next((s for s in self.services() if s["restid"] == name), None)
                if found is None:
                    raise ApiError(404, f"The {name} service does not exist in the {inst.id} instance.")
                return json_response(pick_fields(found, q))
            case ["jobgroups"]:
                groups = sorted({"default", *(j.group for j in inst.all_jobs())})
                elems = [(self.job_group_doc(g), {}) for g in groups]
                return collection(f"{u}/jobgroups", "jobGroups", "jobGroupList", elems, q)
            case ["jobgroups", g]:
                if g != "default" and g not in {j.group for j in inst.all_jobs()}:
                    raise ApiError(404, f"The {g} job group does not exist in the {inst.id} instance.")
                return json_response(pick_fields(self.job_group_doc(g), q))
        raise ApiError(404, f"The /{'/'.join(rest)} resource does not exist in the {inst.id} instance.")

    def _pe_extra(self, pe: PE) -> dict[str, Any]:
        return {"job.restid": pe.job.id, "host.restid": self.inst.addr, "resource.restid": self.inst.addr}

    def _ops(self, job: Job) -> Elements:
        return [
            (self.op_doc(job, op), {"job.restid": job.id, "pe.restid": job.pe_of(op).id, "host.restid": self.inst.addr})
            for op in job.app.operators
        ]

    def _job(self, job: Job, more: list[str], q: Query, verbose: bool) -> Response:
        u = self.job_url(job)
        match more:
            case []:
                return json_response(pick_fields(self.job_doc(job), q))
            case ["pes"]:
                elems = [(self.pe_doc(p, verbose), self._pe_extra(p)) for p in job.pes]
                return collection(f"{u}/pes", "pes", "peList", elems, q)
            case ["operators"]:
                return collection(f"{u}/operators", "operators", "operatorList", self._ops(job), q)
            case ["operators", name, *tail]:
                return self._operator(job, name, tail, q)
            case ["hosts"]:
                return collection(f"{u}/hosts", "hosts", "hostList", [(self.host_doc(), {})], q)
            case ["resourceallocations"]:
                return collection(
                    f"{u}/resourceallocations", "resourceAllocations", "resourceAllocationList",
                    [(self.alloc_doc(), {})], q,
                )
            case ["peconnections"]:
                return collection(
                    f"{u}/peconnections", "connections", "peConnectionList", self._pe_conn_elements(job.pes), q
                )
            case ["operatorconnections"]:
                elems = self._opconn_elements([job])
                return collection(f"{u}/operatorconnections", "connections", "operatorConnectionList", elems, q)
            case ["views"]:
                return collection(f"{u}/views", "views", "viewList", [], q)
            case ["applicationlogtrace"]:
                return Response(200, self._log_trace_archive(job), "application/x-compressed",
                                {"Content-Disposition": f'attachment; filename="job{job.id}-logtrace.tar.gz"'})
        raise ApiError(404, f"The resource does not exist on the {job.id} job.")

    def _log_trace_archive(self, job: Job) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for pe in job.pes:
                for fname in ("trace.log", "console.log"):
                    data = _tail(pe.dir / fname)
                    info = tarfile.TarInfo(f"job{job.id}/pe{pe.id}/{fname}")
                    info.size = len(data)
                    info.mtime = int(time.time())
                    tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    def _pe(self, pe: PE, more: list[str], q: Query, verbose: bool) -> Response:
        u = self.pe_url(pe)
        match more:
            case []:
                return json_response(pick_fields(self.pe_doc(pe, verbose), q))
            case ["operators"]:
                ops = [e for e in self._ops(pe.job) if e[1]["pe.restid"] == pe.id]
                return collection(f"{u}/operators", "operators", "operatorList", ops, q)
            case ["metrics"]:
                return self.metric_list(u, self.pe_metrics(pe))
            case ["connections"]:
                elems: Elements = self._pe_conn_elements([pe])
                return collection(f"{u}/connections", "connections", "peConnectionList", elems, q)
            case [("inputports" | "outputports") as kind]:
                key = "inputPorts" if kind == _PE_IN else "outputPorts"
                rtype = "peInputPortList" if kind == _PE_IN else "peOutputPortList"
                elems = [(self.pe_port_doc(pe, kind, n), {}) for n in range(self.pe_ports(pe, kind))]
                return collection(f"{u}/{kind}", key, rtype, elems, q)
            case [("inputports" | "outputports") as kind, n, *tail]:
                if not n.isdigit() or int(n) >= self.pe_ports(pe, kind):
                    raise ApiError(404, f"The port {n} does not exist on the {pe.id} processing element.")
                if tail == []:
                    return json_response(pick_fields(self.pe_port_doc(pe, kind, int(n)), q))
                if tail == ["metrics"]:
                    return self.metric_list(f"{u}/{kind}/{n}", self.pe_port_metrics(pe, kind))
                if tail == ["connections"]:
                    links = [(s, d) for s, d in pe.job.pe_links() if (s is pe if kind == _PE_OUT else d is pe)]
                    elems = [(self.conn_doc(s, d), {}) for s, d in links]
                    return collection(f"{u}/{kind}/{n}/connections", "connections", "peConnectionList", elems, q)
            case ["applicationTrace" | "consoleLog"]:
                fname = "trace.log" if more[0] == "applicationTrace" else "console.log"
                return Response(200, _tail(pe.dir / fname), "text/plain; charset=utf-8")
        raise ApiError(404, f"The resource does not exist on the {pe.id} processing element.")

    def _host(self, more: list[str], q: Query, verbose: bool) -> Response:
        u = self.host_url()
        match more:
            case []:
                return json_response(pick_fields(self.host_doc(), q))
            case ["metrics"]:
                return self.metric_list(u, self.host_stats.metrics())
            case ["jobs"]:
                elems: Elements = [(self.job_doc(j), {}) for j in self.inst.all_jobs()]
                return collection(f"{u}/jobs", "jobs", "jobList", elems, q)
            case ["pes"]:
                elems = [(self.pe_doc(p, verbose), self._pe_extra(p)) for p in self.inst.all_pes()]
                return collection(f"{u}/pes", "pes", "peList", elems, q)
        raise ApiError(404, f"The resource does not exist on the {self.inst.addr} host.")

    def _pe_connection(self, cid: str, more: list[str], q: Query) -> Response:
        for job in self.inst.all_jobs():
            for src, dst in job.pe_links():
                doc = self.conn_doc(src, dst)
                if doc["restid"] != cid:
                    continue
                if more == []:
                    return json_response(pick_fields(doc, q))
                if more == ["metrics"]:
                    return self.metric_list(
                        doc["self"], [("congestionFactor", 0, "gauge"), ("nTuplesFilteredOut", 0, "counter")]
                    )
        raise ApiError(404, f"The {cid} PE connection does not exist in the {self.inst.id} instance.")

    def _operator(self, job: Job, name: str, more: list[str], q: Query) -> Response:
        op = job.operator(name)
        if op is None:
            raise ApiError(404, f"The {name} operator does not exist in the {job.id} job.")
        u = self.op_url(job, op)
        match more:
            case []:
                return json_response(pick_fields(self.op_doc(job, op), q))
            case ["metrics"]:
                # operator-level metrics, followed (a lab convenience) by the metrics of port 0 of each kind
                items: list[tuple[str, int, str]] = [("relativeOperatorCost", 0, "gauge")]
                if op.inputs:
                    items += self.op_port_metrics(job, op, _PE_IN)
                if op.outputs:
                    items += self.op_port_metrics(job, op, _PE_OUT)
                return self.metric_list(u, items)
            case ["connections"]:
                elems = [
                    e for e in self._opconn_elements([job])
                    if op.name in (e[1]["source.operator"], e[1]["target.operator"])
                ]
                return collection(f"{u}/connections", "connections", "operatorConnectionList", elems, q)
            case [("inputports" | "outputports") as kind]:
                n_ports = op.inputs if kind == _PE_IN else op.outputs
                key = "inputPorts" if kind == _PE_IN else "outputPorts"
                rtype = "operatorInputPortList" if kind == _PE_IN else "operatorOutputPortList"
                elems = [(self.op_port_doc(job, op, kind, n), {}) for n in range(n_ports)]
                return collection(f"{u}/{kind}", key, rtype, elems, q)
            case [("inputports" | "outputports") as kind, n, *tail]:
                n_ports = op.inputs if kind == _PE_IN else op.outputs
                if not n.isdigit() or int(n) >= n_ports:
                    raise ApiError(404, f"The port {n} does not exist on the {op.name} operator.")
                if tail == []:
                    return json_response(pick_fields(self.op_port_doc(job, op, kind, int(n)), q))
                if tail == ["metrics"]:
                    return self.metric_list(f"{u}/{kind}/{n}", self.op_port_metrics(job, op, kind))
                if tail == ["connections"]:
                    side = "target.operator" if kind == _PE_IN else "source.operator"
                    port_key = "inputPort" if kind == _PE_IN else "outputPort"
                    port_url = f"{u}/{kind}/{n}"
                    end = "target" if kind == _PE_IN else "source"
                    elems = [
                        e
                        for e in self._opconn_elements([job])
                        if e[1][side] == op.name and e[0][end][port_key] == port_url
                    ]
                    return collection(f"{port_url}/connections", "connections", "operatorConnectionList", elems, q)
        raise ApiError(404, f"The resource does not exist on the {op.name} operator.")

    # -------------------------------------------------------------- actions
    def _action(self, body: bytes) -> Response:
        """Lab extension: `POST .../instances/{i}/actions {"type": "stop" | "start"}` -> 200 + instance."""
        try:
            doc = json.loads(body or b"{}")
            kind = str(doc.get("type", "")) if isinstance(doc, dict) else ""
        except ValueError as exc:
            raise ApiError(400, f"The request body is not valid JSON: {exc}") from exc
        if kind == "stop":
            self.inst.stop()
        elif kind == "start":
            self.inst.start()
        else:
            raise ApiError(400, f"The action type {kind!r} is not supported: use stop or start.")
        return json_response(self.instance_doc())

    def _submit(self, body: bytes) -> Response:
        try:
            doc = json.loads(body or b"{}")
            if not isinstance(doc, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            raise ApiError(400, f"The request body is not valid JSON: {exc}") from exc
        app_name = str(doc.get("application") or "")
        # a bundle name, or a bundle file/URL such as `https://host/bundles/orders.sab` (its base name counts)
        app = APPS.get(app_name) or APPS.get(app_name.rstrip("/").rsplit("/", 1)[-1].removesuffix(".sab"))
        if app is None:
            raise ApiError(404, f"The {app_name} application bundle does not exist.")
        name = app.name
        group = str(doc.get("jobGroup") or "default")
        tracing = "info"
        given: list[dict[str, str]] = []
        try:
            overlays = (doc.get("jobConfigurationOverlay") or {}).get("jobConfigOverlays") or []
            for ov in overlays:
                jc = ov.get("jobConfig") or {}
                name = str(jc.get("jobName") or name)
                group = str(jc.get("jobGroup") or group)
                tracing = str(jc.get("tracing") or tracing)
                given += [
                    {"name": str(p["name"]), "value": str(p["value"])} for p in jc.get("submissionParameters") or []
                ]
            given += [{"name": str(p["name"]), "value": str(p["value"])} for p in doc.get("submitParameters") or []]
        except (AttributeError, KeyError, TypeError) as exc:
            raise ApiError(400, f"The job configuration overlay is not valid: {exc}") from exc
        if tracing not in TRACE_LEVELS:
            raise ApiError(400, f"The tracing level {tracing!r} is not valid: use one of {', '.join(TRACE_LEVELS)}.")
        if doc.get("jobName"):
            name = str(doc["jobName"])
        params = {p["name"]: p["value"] for p in given}
        if doc.get("preview") is True:
            if any(j.name == name for j in self.inst.all_jobs()):
                raise ApiError(409, f"A job with the name {name} already exists in the {self.inst.id} instance.")
            preview = Job("", name, app, params, given, now_ms(), group=group, tracing=tracing, status="constructed")
            return json_response({"name": name, "applicationName": app.name, "jobGroup": group,
                                  "submitParameters": self._submit_parameters(preview), "preview": True}, 200)
        job = self.inst.submit(app, name, params, given, group=group, tracing=tracing)
        return json_response(self.job_doc(job), 201)


_METRIC_DESCRIPTIONS: dict[str, str] = {
    "nTuplesProcessed": "Number of tuples processed",
    "nTuplesDropped": "Number of tuples dropped",
    "nTuplesQueued": "Number of tuples queued",
    "nTuplesSubmitted": "Number of tuples submitted",
    "nCpuMilliseconds": "CPU time used by the PE, in milliseconds",
    "nResidentMemoryConsumption": "Resident memory of the PE, in KB",
    "nMemoryConsumption": "Virtual memory of the PE, in KB",
    "nTupleBytesProcessed": "Number of tuple bytes processed",
    "nTupleBytesSubmitted": "Number of tuple bytes submitted",
    "nBrokenConnections": "Number of broken connections",
    "nConnections": "Number of active connections",
    "congestionFactor": "Congestion factor of the connection (0-100)",
    "relativeOperatorCost": "Relative cost of the operator within its PE",
}

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




def to_yaml(doc: Any, indent: int = 0) -> str:
    """A small block-style YAML writer (scalars as JSON, which YAML reads) for the OpenAPI documents."""
    pad = "  " * indent
    if isinstance(doc, dict):
        if not doc:
            return pad + "{}\n"
        out = []
        for k, v in doc.items():
            key = json.dumps(str(k))
            if isinstance(v, dict | list) and v:
                out.append(f"{pad}{key}:\n{to_yaml(v, indent + 1)}")
            else:
                out.append(f"{pad}{key}: {json.dumps(v)}\n")
        return "".join(out)
    if isinstance(doc, list):
        if not doc:
            return pad + "[]\n"
        out = []
        for v in doc:
            if isinstance(v, dict | list) and v:
                inner = to_yaml(v, indent + 1)
                out.append(f"{pad}- {inner.lstrip()}")
            else:
                out.append(f"{pad}- {json.dumps(v)}\n")
        return "".join(out)
    return pad + json.dumps(doc) + "\n"


class DataApi:
    def __init__(self, inst: Instance) -> None:
        self.inst = inst
        self.base = f"{paths.data_base(inst.dc)}/streams/data"
        self.defects = paths.active_defects()
        self._posts_lock = threading.Lock()
        self.injected_posts = 0  # injection POSTs the source operator took (defects refuse-but-deliver, lost-ack)

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
                        "openapiYaml": f"{self.base}/jobs/{j.id}/openapi.yaml",
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
            case ["streams", "data", "jobs", j, "openapi.yaml"]:
                RestApi._only(method, "GET")
                return Response(200, to_yaml(self._openapi(self._job(j))).encode(), "application/yaml")
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
        self._defective_answer(ep)
        return json_response({"accepted": reply.get("accepted", len(items))})

    def _defective_answer(self, ep: EndpointSpec) -> None:
        """Defects that break the answer to an injection the operator has already taken."""
        if not self.defects & {"refuse-but-deliver", "lost-ack"}:
            return
        with self._posts_lock:
            self.injected_posts += 1
            n = self.injected_posts
        if "refuse-but-deliver" in self.defects and n % REFUSE_EVERY == 0:
            raise ApiError(500, f"The {ep.operator} operator could not accept the tuples: an internal error occurred.")
        if "lost-ack" in self.defects and n % LOST_ACK_EVERY == LOST_ACK_AT:
            raise DropConnection()

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
            "info": {
                "title": f"{job.name} ({job.app.name}) data exchange",
                "description": f"Endpoints of job {job.id} of the {paths.instance_id(self.inst.dc)} instance",
                "version": job.app.version,
            },
            "servers": [{"url": self.base}],
            "paths": paths_doc,
            "components": {
                "schemas": {"InTuple": tuple_schema, "OutTuple": out_schema},
                "securitySchemes": {"authBasic": {"type": "http", "scheme": "basic"}},
            },
            "security": [{"authBasic": []}],
        }


class TLSServer(LabHTTPServer):
    request_queue_size = 64

    def __init__(self, addr: tuple[str, int], ctx: ssl.SSLContext, api: Api, password: str) -> None:
        self.ctx = ctx
        self.api = api
        token = base64.b64encode(f"{paths.USER}:{password}".encode()).decode()
        self.expected_auth = f"Basic {token}".encode()
        super().__init__(addr, Handler)

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
            except DropConnection:
                log.info("%s %s -> connection closed without an answer", self.command, self.path)
                self.close_connection = True
                return
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
    dc = paths.service_dc("python -m lab.instance", argv)
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
