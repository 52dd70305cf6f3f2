"""Metrics from the instances' JMX API (``com.ibm.streams.management`` MBeans) through the tester's JMX bridge.

Real Streams serves JMX over JMXMP with TLS and credentials (``service:jmx:jmxmp://<host>:9975``, provider
package ``com.ibm.streams.management``), and job and PE beans exist only after
``InstanceMXBean.registerJobById``. jmxquery can do neither (RMI only, no operations), so the tester ships
its own client: ``support/metrics/java/JmxBridge.java`` (JDK only), compiled at first use into the user's
cache directory and run as ONE long-lived JVM per run, spoken to with JSON lines on stdin/stdout. The JMXMP
provider comes from ``datacenters.<dc>.jmx.classpath``: IBM's ``com.ibm.streams.management`` jar of the
Streams install against a real pair, the lab's stand-in classes (``/run/xdc-lab/java``) against the lab.

Each sample, per data center: connect if needed, read the instance bean (Status, Health, Jobs) and the job and
PE beans, register the jobs the instance lists that have no bean yet (new jobs, or beans dropped after
inactivity) and read again. An endpoint that cannot be reached, times out or refuses the credentials is
"JMX unreachable" (``jmx.<dc>.reachable`` 0 and :attr:`JmxSource.problems`), never a statement about the
data center: the data center's state is judged from REST and the workload, not from JMX.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from support.metrics.series import Point
from support.units import format_seconds

log = logging.getLogger(__name__)

DOMAIN = "com.ibm.streams.management"
INSTANCE_ATTRIBUTES = ("Status", "Health", "Jobs")
JOB_ATTRIBUTES = ("Status", "Health")
PE_ATTRIBUTES = ("LaunchCount", "Status", "Health")
#: status and health values (camelCase as in REST, or enum constants such as PARTIALLY_HEALTHY) as numbers
STATUS = {"running": 1.0, "healthy": 1.0, "partiallyhealthy": 0.5, "partiallyunhealthy": 0.5,
          "partiallyrunning": 0.5, "partiallyfailed": 0.5}
MIN_INTERVAL = 1.0
#: how long one sample() waits for the data centers' reads; the rest arrive with a later sample
WAIT = 0.5
#: the first request of a connection also waits for the bridge JVM to start and the TLS handshake
CONNECT_TIMEOUT = 10.0
BRIDGE_SOURCE = Path(__file__).resolve().parent / "java" / "JmxBridge.java"
BRIDGE_CLASS = "JmxBridge"
JVM_OPTIONS = ("-Xmx64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.net.preferIPv4Stack=true")


class JmxError(Exception):
    """A JMX request failed; ``kind`` is ``io``, ``timeout``, ``auth`` or ``error`` (as the bridge reports)."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


class JmxTimeout(JmxError):
    """The JMX endpoint (or the bridge) did not answer in time."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "timeout")


@dataclass(frozen=True)
class JmxEndpoint:
    dc: str
    url: str
    instance: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_bundle: str | None = None
    tls_protocols: str | None = None


# --------------------------------------------------------------------------------------------- the bridge JVM


def cache_dir() -> Path:
    """Where the compiled bridge lives: ``$XDG_CACHE_HOME`` (or ``~/.cache``), one folder per source version."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(BRIDGE_SOURCE.read_bytes()).hexdigest()[:16]
    return base / "streams-failover-tester" / "jmx-bridge" / digest


def compile_bridge(javac: str = "javac", timeout: float = 120.0) -> Path:
    """The folder holding ``JmxBridge.class``, compiled now if this source version never was."""
    target = cache_dir()
    if (target / f"{BRIDGE_CLASS}.class").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="build-", dir=target.parent))
    try:
        done = subprocess.run([javac, "-encoding", "UTF-8", "-d", str(staging), str(BRIDGE_SOURCE)],
                              capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise JmxError(f"javac of {BRIDGE_SOURCE} failed: {done.stderr.strip()[:300]}")
        try:
            staging.rename(target)  # atomic: a parallel run compiling the same source loses the race harmlessly
        except OSError:
            if not (target / f"{BRIDGE_CLASS}.class").exists():
                raise
    except FileNotFoundError as exc:
        raise JmxError(f"cannot compile the JMX bridge: {exc.filename} not found (install a JDK)") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def bridge_command(classpath: Sequence[str] = ()) -> list[str]:
    """``java ... JmxBridge`` with the compiled bridge and the configured provider classpath."""
    entries = [str(compile_bridge()), *classpath]
    return ["java", *JVM_OPTIONS, "-cp", os.pathsep.join(entries), BRIDGE_CLASS]


class JmxBridge:
    """One long-lived bridge process; thread-safe requests, answers matched by id (out of order is fine)."""

    def __init__(self, classpath: Sequence[str] = (), command: Sequence[str] | None = None) -> None:
        self._classpath = tuple(classpath)
        self._command = list(command) if command is not None else None
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._answers = threading.Condition()
        self._pending: dict[int, dict[str, Any] | None] = {}
        self._next = 0
        self._stderr: deque[str] = deque(maxlen=20)
        self._closed = False
        self.started = 0

    def _ensure(self) -> subprocess.Popen[str]:
        if self._closed:
            raise JmxError("JMX bridge closed", "io")
        proc = self._proc
        if proc is not None and proc.poll() is None:
            return proc
        command = self._command if self._command is not None else bridge_command(self._classpath)
        try:
            proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, encoding="utf-8", bufsize=1)
        except OSError as exc:
            raise JmxError(f"cannot start the JMX bridge ({command[0]}): {exc}") from None
        self._proc = proc
        self.started += 1
        assert proc.stdout is not None and proc.stderr is not None
        threading.Thread(target=self._read_answers, args=(proc, proc.stdout), name="jmx-bridge-out",
                         daemon=True).start()
        threading.Thread(target=self._read_stderr, args=(proc.stderr,), name="jmx-bridge-err", daemon=True).start()
        return proc

    def _read_answers(self, proc: subprocess.Popen[str], out: IO[str]) -> None:
        for line in out:
            try:
                answer = json.loads(line)
            except ValueError:
                log.debug("JMX bridge said: %s", line.rstrip())
                continue
            with self._answers:
                ident = answer.get("id")
                if isinstance(ident, int) and ident in self._pending:
                    self._pending[ident] = answer
                    self._answers.notify_all()
        with self._answers:  # EOF: the process is gone, wake every waiter
            self._answers.notify_all()

    def _read_stderr(self, err: IO[str]) -> None:
        for line in err:
            self._stderr.append(line.rstrip())

    def request(self, op: str, timeout: float, **fields: Any) -> dict[str, Any]:
        """Send one request and wait for its answer; raises :class:`JmxTimeout` / :class:`JmxError`."""
        with self._lock:
            proc = self._ensure()
            self._next += 1
            ident = self._next
            with self._answers:
                self._pending[ident] = None
            try:
                assert proc.stdin is not None
                proc.stdin.write(json.dumps({"id": ident, "op": op, **fields}) + "\n")
                proc.stdin.flush()
            except (OSError, ValueError) as exc:
                with self._answers:
                    self._pending.pop(ident, None)
                raise JmxError(f"JMX bridge gone: {exc} {self.stderr_tail()}".strip(), "io") from None
        deadline = time.monotonic() + timeout
        with self._answers:
            try:
                while self._pending.get(ident) is None:
                    left = deadline - time.monotonic()
                    if proc.poll() is not None and self._pending.get(ident) is None:
                        raise JmxError(f"JMX bridge exited ({proc.returncode}) {self.stderr_tail()}".strip(), "io")
                    if left <= 0:
                        raise JmxTimeout(f"no answer to {op} within {format_seconds(timeout, None)}")
                    self._answers.wait(min(left, 0.5))
                answer = self._pending[ident]
            finally:
                self._pending.pop(ident, None)
        assert answer is not None
        if not answer.get("ok"):
            kind = str(answer.get("kind") or "error")
            message = str(answer.get("error") or "failed")
            raise JmxTimeout(message) if kind == "timeout" else JmxError(message, kind)
        return answer

    @property
    def classpath(self) -> tuple[str, ...]:
        return self._classpath

    def stderr_tail(self) -> str:
        return " | ".join(self._stderr)

    def close(self, timeout: float = 5.0) -> None:
        """End the JVM for good: EOF on its stdin, then kill if it does not exit in time."""
        with self._lock:
            self._closed = True
            proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


_SHARED: dict[tuple[str, ...], JmxBridge] = {}
_SHARED_LOCK = threading.Lock()


def shared_bridge(classpath: Sequence[str] = ()) -> JmxBridge:
    """The process-wide bridge for this classpath: one JVM for the whole run, every scenario's source uses it
    (started at the first request, ended when the tester exits)."""
    key = tuple(classpath)
    with _SHARED_LOCK:
        bridge = _SHARED.get(key)
        if bridge is None:
            bridge = _SHARED[key] = JmxBridge(key)
            atexit.register(bridge.close)
        return bridge


# --------------------------------------------------------------------------------------------- the source


def _label(mbean: str, key: str) -> str:
    for part in mbean.split(":", 1)[-1].split(","):
        name, _, value = part.partition("=")
        if name == key:
            return value.strip('"')
    return "?"


def _number(value: Any) -> float:
    if isinstance(value, str):
        return STATUS.get(value.replace("_", "").lower(), 0.0)
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return 0.0


def instance_name(instance: str) -> str:
    return f'{DOMAIN}:type=instance,name="{instance}"'


class JmxSource:
    """Per data center: ``jmx.<dc>.reachable`` (1/0), ``jmx.<dc>.instance.<attr>``, ``jmx.<dc>.job.<id>.<attr>``,
    ``jmx.<dc>.pe.<id>.<attr>`` (status and health as 1 / 0.5 / 0). Data centers are read in parallel, in the
    background; points carry the time the sampler collected them (at most one sampling interval late)."""

    name = "jmx"

    def __init__(self, endpoints: list[JmxEndpoint], bridge: JmxBridge | None = None, timeout: float = 3.0,
                 min_interval: float = MIN_INTERVAL, classpath: Sequence[str] = (), wait: float = WAIT,
                 connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.endpoints = endpoints
        self._owns_bridge = bridge is None
        self.bridge = bridge if bridge is not None else JmxBridge(classpath)
        self._timeout = timeout
        self._connect_timeout = max(timeout, connect_timeout)
        self._wait = wait
        self.min_interval = max(MIN_INTERVAL, min_interval)
        self._connected: set[str] = set()
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(endpoints)), thread_name_prefix="jmx")
        self._inflight: dict[str, Future[list[Point]]] = {}
        self.timeouts: dict[str, int] = {}
        #: dc -> why its JMX did not answer in the last sample ("JMX unreachable: ..."); JMX only, never "DC down"
        self.problems: dict[str, str] = {}
        self.registered: dict[str, set[str]] = {}

    def sample(self) -> list[Point]:
        """Start a read of every data center not still busy with the previous one, wait up to ``wait`` seconds,
        and return the points of every read finished by then. A slow or hanging endpoint never holds up the
        sampler (and its other sources) longer than that: its answer, or its "unreachable", comes with a later
        sample."""
        for ep in self.endpoints:
            if ep.dc not in self._inflight:
                self._inflight[ep.dc] = self._pool.submit(self._sample_dc, ep)
        futures_wait(list(self._inflight.values()), timeout=self._wait)
        points: list[Point] = []
        for dc, future in list(self._inflight.items()):
            if future.done():
                del self._inflight[dc]
                points += future.result()
        return points

    def _sample_dc(self, ep: JmxEndpoint) -> list[Point]:
        try:
            points = self._read(ep)
        except JmxError as exc:
            self._connected.discard(ep.dc)
            if isinstance(exc, JmxTimeout):
                self.timeouts[ep.dc] = self.timeouts.get(ep.dc, 0) + 1
            problem = f"JMX unreachable: {exc}" if exc.kind != "auth" else f"JMX unreachable: {exc} (check credentials)"
            if self.problems.get(ep.dc) != problem:
                log.warning("%s %s (%s); the data center itself is judged from REST, not JMX", ep.dc, problem, ep.url)
            self.problems[ep.dc] = problem
            return [(f"jmx.{ep.dc}.reachable", 0.0)]
        if self.problems.pop(ep.dc, None) is not None:
            log.info("%s JMX answers again (%s)", ep.dc, ep.url)
        return [(f"jmx.{ep.dc}.reachable", 1.0), *points]

    def _connect(self, ep: JmxEndpoint) -> None:
        self.bridge.request("connect", self._connect_timeout, conn=ep.dc, url=ep.url, user=ep.username,
                             password=ep.password, ca=ep.ca_bundle, tls_protocols=ep.tls_protocols,
                             timeout_ms=int(self._timeout * 1000))
        self._connected.add(ep.dc)

    def _beans(self, ep: JmxEndpoint, with_instance: bool) -> dict[str, dict[str, Any]]:
        queries = [
            {"pattern": f'{DOMAIN}:type=instance.job,instance="{ep.instance}",*', "attributes": list(JOB_ATTRIBUTES)},
            {"pattern": f'{DOMAIN}:type=instance.pe,instance="{ep.instance}",*', "attributes": list(PE_ATTRIBUTES)},
        ]
        if with_instance:
            queries.insert(0, {"pattern": instance_name(ep.instance), "attributes": list(INSTANCE_ATTRIBUTES)})
        beans: dict[str, dict[str, Any]] = self.bridge.request("read", self._timeout, conn=ep.dc,
                                                                queries=queries)["beans"]
        return beans

    def _read(self, ep: JmxEndpoint) -> list[Point]:
        if ep.dc not in self._connected:
            self._connect(ep)
        beans = self._beans(ep, with_instance=True)
        inst = next((a for n, a in beans.items() if _label(n, "type") == "instance"), None)
        if inst is None:
            raise JmxError(f"no instance bean {instance_name(ep.instance)} (check datacenters.{ep.dc}.jmx.instance)")
        have = {_label(n, "id") for n in beans if _label(n, "type") == "instance.job"}
        missing = [str(j) for j in inst.get("Jobs") or () if str(j) not in have]
        registered = self.registered.setdefault(ep.dc, set())
        for job in missing:
            try:
                self.bridge.request("invoke", self._timeout, conn=ep.dc, name=instance_name(ep.instance),
                                     operation="registerJobById", args=[job], signature=["java.lang.String"])
            except JmxError as exc:
                if exc.kind != "error":
                    raise
                log.debug("%s registerJobById(%s): %s", ep.dc, job, exc)  # e.g. the job ended meanwhile
                continue
            registered.add(job)
        if missing:
            beans = {n: a for n, a in beans.items() if _label(n, "type") == "instance"} | self._beans(ep, False)
        points: list[Point] = []
        for mbean, attributes in beans.items():
            kind = {"instance": "instance", "instance.job": "job", "instance.pe": "pe"}.get(_label(mbean, "type"))
            if kind is None:
                continue
            prefix = f"jmx.{ep.dc}.instance" if kind == "instance" else f"jmx.{ep.dc}.{kind}.{_label(mbean, 'id')}"
            for attribute, value in attributes.items():
                if attribute == "Jobs":
                    points.append((f"{prefix}.jobCount", float(len(value or ()))))
                else:
                    points.append((f"{prefix}.{attribute}", _number(value)))
        return points

    def close(self) -> None:
        """End this source: its own bridge is closed (in-flight requests fail at once); on a shared bridge its
        connections are closed and the JVM stays for the next scenario."""
        if self._owns_bridge:
            self.bridge.close()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if not self._owns_bridge:
            for dc in sorted(self._connected):
                try:
                    self.bridge.request("close", self._timeout, conn=dc)
                except JmxError as exc:
                    log.debug("closing the JMX connection of %s: %s", dc, exc)
            self._connected.clear()
