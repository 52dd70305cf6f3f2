"""The `Instance` of one DC: jobs and their PEs, PE launch and supervision (relaunch on crash, give up after
repeated failed launches), PE liveness pings, job cancel (answered at once, finished in the background),
instance stop/start (behind `streamtool stopinstance|startinstance`), the instance's bundles and application
configurations (`lab.instance.store`).

Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from lab import paths, truth
from lab.apps import AppSpec
from lab.instance.model import PE, ApiError, Job, now_ms
from lab.instance.store import AppConfigStore, BundleStore

log = logging.getLogger("lab.instance")

PE_READY_TIMEOUT = 15.0
STOP_GRACE = 1.0
MAX_FAILED_LAUNCHES = 5
#: the instance pings every running PE this often (the PE's heartbeat to its instance) ...
LIVENESS_INTERVAL = 0.5
#: ... and reports it unhealthy when the answer takes longer than this (SIGSTOP, hang)
PING_TIMEOUT = 0.5
METRICS_TIMEOUT = 1.0


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
        self.bundles = BundleStore(dc)
        self.appconfigs = AppConfigStore(dc)

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
        bundle_path: str = "",
    ) -> Job:
        with self.lock:
            if self.status != "running":
                raise ApiError(409, f"The {self.id} instance is not running: start it before submitting jobs.")
            name = name or f"{app.main_composite}_{self.next_job}"  # the product's default job name
            if any(j.name == name for j in self.jobs.values()):
                raise ApiError(409, f"A job with the name {name} already exists in the {self.id} instance.")
            job = Job(
                str(self.next_job), name, app, params, given, now_ms(), group=group, tracing=tracing,
                bundle_path=bundle_path,
            )
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

    def begin_cancel(self, job: Job, reason: str = "userRequest") -> list[subprocess.Popen[bytes]] | None:
        """Mark the job `canceling` and its running PEs `stopping`; the PE processes to stop, or None when the
        job is already canceling (or gone)."""
        with self.lock:
            if job.status in ("canceling", "canceled"):
                return None
            job.status = "canceling"
            procs: list[subprocess.Popen[bytes]] = []
            for pe in job.pes:
                pe.stopping = True
                if pe.proc is not None and pe.proc.poll() is None:
                    pe.status = "stopping"
                    pe.status_reason = reason
                    procs.append(pe.proc)
        truth.emit(self.dc, "instance", "job_canceling", job_id=job.id, job_name=job.name, reason=reason)
        return procs

    def cancel_async(self, job: Job, reason: str = "userRequest") -> None:
        """`DELETE <job>`: answer at once; the job shows `canceling` until its PEs are gone, then it is removed
        (reference §2: 204, and a real job may still be canceling when the answer arrives)."""
        procs = self.begin_cancel(job, reason)
        if procs is None:
            return
        threading.Thread(
            target=self._finish_cancel, args=(job, procs, reason), name=f"cancel-{job.id}", daemon=True
        ).start()

    def cancel(self, job: Job, reason: str = "userRequest") -> None:
        """Cancel and return once the job is gone (instance stop), also when a DELETE already began it."""
        procs = self.begin_cancel(job, reason)
        if procs is not None:
            self._finish_cancel(job, procs, reason)
        else:
            job.gone.wait(STOP_GRACE + 10.0)

    def _finish_cancel(self, job: Job, procs: list[subprocess.Popen[bytes]], reason: str) -> None:
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
        job.gone.set()
        truth.emit(self.dc, "instance", "job_canceled", job_id=job.id, job_name=job.name, reason=reason)
        log.info("job %s (%s) canceled", job.id, job.name)

    def shutdown_all(self) -> None:
        with self.lock:
            for job in self.jobs.values():
                for pe in job.pes:
                    pe.stopping = True
                    if pe.proc is not None and pe.proc.poll() is None:
                        pe.proc.terminate()

    # -------------------------------------------------------------- instance stop/start (streamtool; lab-only REST)
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
                user_restart, pe.user_restart = pe.user_restart, False
                if pe.stopping:
                    pe.status = "stopped"
                    stopped = True
                else:
                    pe.status = "restarting"
                    pe.status_reason = "userRequest" if user_restart else "crash"
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
            if user_restart:
                log.info("PE %s (pid %s) stopped by restartpe: relaunching", pe.id, proc.pid)
                failed_launches = 0
                continue
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

    def restart_pe(self, pe: PE) -> None:
        """`streamtool restartpe`: a PE the instance gave up on (`stopped`, reason `failure` or `crash`) is
        launched again (its failed-launch count starts afresh, `launchCount` + 1, reason `userRequest`); a running
        PE is stopped and launched again (reason `userRequest`, not counted as a crash). Teracloud's "Recovering
        from PE failures": once the automatic retry count is exceeded, the PE must be restarted by hand with
        `streamtool restartpe`."""
        with self.lock:
            if pe.job.status != "running" or pe.stopping:
                raise ApiError(409, f"The {pe.id} processing element cannot be restarted: its job is {pe.job.status}.")
            alive = pe.thread is not None and pe.thread.is_alive()
            if alive:
                if pe.proc is None or pe.proc.poll() is not None:
                    raise ApiError(409, f"The {pe.id} processing element is already restarting.")
                pe.user_restart = True
                with contextlib.suppress(ProcessLookupError):
                    pe.proc.terminate()
                return
            pe.status = "restarting"
            pe.status_reason = "userRequest"
            pe.thread = threading.Thread(target=self._supervise, args=(pe,), name=f"pe-{pe.id}", daemon=True)
            pe.thread.start()
        log.info("PE %s restarted on request", pe.id)
        truth.emit(self.dc, "instance", "pe_restart_requested", job_id=pe.job.id, job_name=pe.job.name, pe_id=pe.id)

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
