"""The real parts around each DC's instance: sshd, the Prometheus exporter, the JMX JVM — and the Prometheus
server in the root namespace. Start, readiness, status; `lab.control` calls these.

Placement:
- `dcN-sshd`, `dcN-exporter`: DC namespace, outside the DC's cgroups (infrastructure);
- `bastion-sshd`: the bastion's namespace (lab/bastion.py);
- `dcN-jmx`: DC namespace, inside the DC's cgroups (part of the Streams deployment);
- `prometheus`: root namespace, 127.0.0.1:19090.
Every process is recorded in `state.json` (PID + kernel start time) and stopped by PID at `lab down`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from lab import bastion, cgroups, exporter, jmx, paths, prometheus, sshd
from lab.procs import proc_starttime

# never through a proxy from the environment: the lab's addresses are loopback and lab namespaces only
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class PartError(RuntimeError):
    pass


# ------------------------------------------------------------------------------------------------ helpers


def _poll(cond: Callable[[], bool], deadline_s: float, what: str, interval: float = 0.05) -> None:
    end = time.monotonic() + deadline_s
    waiter = threading.Event()
    while not cond():
        if time.monotonic() > end:
            raise PartError(f"timed out after {deadline_s:.0f} s waiting for {what}")
        waiter.wait(interval)


def _spawn(name: str, argv: list[str], dc: str, kind: str) -> dict[str, Any]:
    """Start a detached process (own session) logging to logs/<name>.log; no preexec_fn (thread-safe)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(paths.PROJECT_ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    with open(paths.logs_dir() / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=paths.LAB_DIR,
            env=env,
            start_new_session=True,
        )
    return {"pid": proc.pid, "starttime": proc_starttime(proc.pid), "dc": dc, "kind": kind, "started_at": time.time()}


def _alive(info: dict[str, Any]) -> bool:
    pid = int(info.get("pid", 0))
    return pid > 0 and proc_starttime(pid) == info.get("starttime")


# ------------------------------------------------------------------------------------------------- start


def start_infrastructure(state: dict[str, Any]) -> subprocess.Popen[bytes] | None:
    """Before the instances: cgroup limits, javac (background), sshd x2, exporters x2, Prometheus.

    Returns the javac process (None when the classes are up to date); pass it to `start_jmx`.
    """
    procs: dict[str, Any] = state.setdefault("processes", {})
    state["cgroup_limits"] = {dc: cgroups.apply_limits(dc) for dc in paths.DCS}
    javac = jmx.start_compile(paths.logs_dir() / "jmx-javac.log")
    state["created_run_sshd"] = sshd.prepare_privsep_dir() or bool(state.get("created_run_sshd"))
    try:
        bastion.create_fault_user()
    except bastion.BastionError as exc:
        raise PartError(str(exc)) from None
    sshd.make_keys()
    for dc in paths.DCS:
        sshd.write_config(dc)
        procs[f"{dc}-sshd"] = _spawn(f"{dc}-sshd", sshd.argv(dc), dc, "sshd")
    bastion.write_config()
    procs["bastion-sshd"] = _spawn("bastion-sshd", bastion.argv(), "bastion", "bastion")
    for dc in paths.DCS:
        argv = ["ip", "netns", "exec", paths.netns(dc), sys.executable, "-m", "lab.exporter", "--dc", dc]
        procs[f"{dc}-exporter"] = _spawn(f"{dc}-exporter", argv, dc, "exporter")
    prometheus.write_config(float(state.get("scrape_interval_s", prometheus.DEFAULT_INTERVAL)))
    if not prometheus.listen_address_free():
        raise PartError(f"{prometheus.LISTEN} (the lab's Prometheus) is already in use: a Prometheus left from an "
                        f"earlier lab? `ss -ltnp 'sport = :{prometheus.LISTEN.rsplit(':', 1)[1]}'` names its PID")
    procs["prometheus"] = _spawn("prometheus", prometheus.argv(), "root", "prometheus")
    return javac


def start_jmx(state: dict[str, Any], javac: subprocess.Popen[bytes] | None) -> None:
    """Wait for javac (if it ran), then one JVM per DC in the DC's namespace and cgroups."""
    if javac is not None:
        try:
            rc = javac.wait(timeout=60)
        except subprocess.TimeoutExpired as exc:
            javac.kill()
            raise PartError("javac of lab/java (StreamsJmx + JMXMP provider) took more than 60 s") from exc
        if rc != 0:
            raise PartError(f"javac of {jmx.JAVA_DIR} failed (exit {rc}); see {paths.logs_dir() / 'jmx-javac.log'}")
    procs: dict[str, Any] = state.setdefault("processes", {})
    for dc in paths.DCS:
        # join the cgroups before `ip netns exec`: it remounts /sys, hiding /sys/fs/cgroup
        argv = [*cgroups.exec_prefix(dc), "ip", "netns", "exec", paths.netns(dc), *jmx.argv(dc)]
        procs[f"{dc}-jmx"] = _spawn(f"{dc}-jmx", argv, dc, "jmx")


# ---------------------------------------------------------------------------------------------- readiness


def exporter_metrics(dc: str, timeout: float = 3.0) -> str:
    with _OPENER.open(f"http://{paths.DC_ADDR[dc]}:{exporter.PORT}/metrics", timeout=timeout) as r:
        return str(r.read().decode())


def exporter_problem(dc: str, need_jobs: bool = True) -> str | None:
    """None when the DC's exporter serves the instance as running (and, with `need_jobs`, job series)."""
    try:
        text = exporter_metrics(dc)
    except (OSError, urllib.error.URLError) as exc:
        return f"{type(exc).__name__}: {exc}"
    inst = paths.instance_id(dc)
    if f'streams_instance_health{{instancename="{inst}"}} ' not in text:
        # like the real exporter, a lost source leaves only the last known status: no health sample
        return "exporter has no source (no streams_instance_health: REST pull failing or instance stopped)"
    if f'streams_instance_status{{instancename="{inst}"}} 1.0' not in text:
        return "instance not reported running"
    if need_jobs and "streams_job_status{" not in text:
        return "no job series"
    return None


def _ready_checks(job_dcs: set[str]) -> dict[str, tuple[Callable[[], str | None], float, float]]:
    """label -> (check returning None when ready, deadline s, poll interval s)."""
    checks: dict[str, tuple[Callable[[], str | None], float, float]] = {}
    for dc in paths.DCS:
        checks[f"{dc} sshd (client key accepted)"] = (lambda dc=dc: sshd.login_ok(dc), 15.0, 0.05)  # type: ignore[misc]
    checks["bastion sshd (forwards to the DC hosts)"] = (bastion.jump_ok, 15.0, 0.05)
    for dc in paths.DCS:
        checks[f"{dc} exporter :{exporter.PORT}"] = (
            lambda dc=dc: exporter_problem(dc, need_jobs=dc in job_dcs),  # type: ignore[misc]
            15.0,
            0.05,
        )
    # targets start on Prometheus' 5 s reload tick, then at an offset within one scrape interval
    interval = prometheus.configured_interval() or prometheus.DEFAULT_INTERVAL
    checks["prometheus sample from dc1+dc2"] = (_prometheus_problem, 20.0 + 2 * interval, 0.1)
    for dc in paths.DCS:
        checks[f"{dc} JMX :{jmx.PORT} (JMXMP TLS)"] = (lambda dc=dc: jmx.answers(dc), 30.0, 0.1)  # type: ignore[misc]
    return checks


def _prometheus_problem() -> str | None:
    got = prometheus.dcs_with_samples()
    missing = sorted(set(paths.DCS) - got)
    return None if not missing else f"no sample yet from {','.join(missing)}"


def wait_ready(t0: float, ready: dict[str, float], job_dcs: set[str] | None = None) -> None:
    """Wait (in parallel) until every part answers; record the ready time of each in `ready`. The exporter and
    JMX of a DC in `job_dcs` (default: every DC) must also show its jobs; a DC without a job (dc2 of an
    active/passive pair: the standby is a standalone process) only has to answer."""
    checks = _ready_checks(set(paths.DCS) if job_dcs is None else job_dcs)
    last: dict[str, str | None] = {}

    def run(label: str) -> None:
        check, deadline, interval = checks[label]

        def ok() -> bool:
            last[label] = check()
            return last[label] is None

        try:
            _poll(ok, deadline, label, interval)
        except PartError as exc:
            raise PartError(f"{exc} (last: {last.get(label)})") from None
        ready[label] = time.monotonic() - t0

    with ThreadPoolExecutor(max_workers=len(checks)) as pool:
        futures = [pool.submit(run, label) for label in checks]
        errors = [str(f.exception()) for f in futures if f.exception() is not None]
    if errors:
        raise PartError("; ".join(errors))


# ------------------------------------------------------------------------------------------------- status


def component_status(name: str, info: dict[str, Any]) -> dict[str, Any]:
    """Health of one recorded part: {"pid", "alive", "kind", "health": "ok" | reason, ...}."""
    kind = str(info.get("kind", ""))
    dc = str(info.get("dc", ""))
    comp: dict[str, Any] = {"pid": int(info["pid"]), "alive": _alive(info), "kind": kind}
    if not comp["alive"]:
        comp["health"] = "process not running"
        return comp
    problem: str | None
    if kind == "sshd":
        problem = sshd.login_ok(dc)
        comp["endpoint"] = f"{paths.DC_ADDR[dc]}:{sshd.SSH_PORT}"
    elif kind == "bastion":
        problem = bastion.jump_ok()
        comp["endpoint"] = f"{bastion.FAULT_USER}@{bastion.ADDR}:{bastion.SSH_PORT}"
    elif kind == "exporter":
        problem = exporter_problem(dc, need_jobs=False)
        comp["endpoint"] = f"http://{paths.DC_ADDR[dc]}:{exporter.PORT}/metrics"
    elif kind == "jmx":
        problem = jmx.answers(dc)
        comp["endpoint"] = jmx.url(dc)
        comp["cgroups"] = sorted(c for c, pids in cgroups.members(dc).items() if comp["pid"] in pids)
    elif kind == "prometheus":
        comp["endpoint"] = prometheus.URL
        comp["targets"] = prometheus.targets_health()
        interval = prometheus.configured_interval()
        comp["scrape_interval"] = prometheus.duration(interval) if interval is not None else "unknown"
        problem = _prometheus_problem()
        if problem is None and any(not h.startswith("up") for h in comp["targets"].values()):
            problem = f"targets not all up: {comp['targets']}"
    else:
        problem = f"unknown component kind {kind!r}"
    comp["health"] = "ok" if problem is None else problem
    return comp


def statuses(processes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """component_status of every recorded part (kind set), checked in parallel."""
    names = [n for n, info in processes.items() if info.get("kind")]
    if not names:
        return {}
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        results = list(pool.map(lambda n: component_status(n, processes[n]), names))
    return dict(zip(names, results, strict=True))


def cgroup_report(state: dict[str, Any]) -> dict[str, Any]:
    avail = cgroups.available()
    doc: dict[str, Any] = {
        "limits_wanted": {f"{c}/{f}": v for c, f, v in cgroups.LIMITS},
        "applied": state.get("cgroup_limits", {}),
        "current": {dc: cgroups.read_limits(dc) for dc in paths.DCS},
        "members": {dc: {c: len(p) for c, p in cgroups.members(dc).items()} for dc in paths.DCS},
    }
    missing = [c for c, ok in avail.items() if not ok]
    if missing:
        doc["note"] = (
            f"cgroup v1 {'/'.join(missing)} not available here: DC processes run without "
            f"{' and '.join('CPU' if c == 'cpu' else 'memory' for c in missing)} limits"
        )
    return doc


# --------------------------------------------------------------------------------------------------- down


def after_down(state: dict[str, Any]) -> list[str]:
    """Remove what the parts created outside /run/xdc-lab (the sshd privilege-separation dir, if ours; the fault
    user and its sudoers file); what could not be removed."""
    if state.get("created_run_sshd"):
        sshd.remove_privsep_dir()
    return bastion.remove_fault_user()
