"""Orchestration behind the CLI: `lab up|down|status|logs|reset` (root; runs in the root netns)."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import string
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lab import (
    bastion,
    bundles,
    cgroups,
    clock,
    crossdc,
    netns,
    parts,
    paths,
    prometheus,
    restclient,
    streamtool,
    stub,
    truth,
)
from lab.procs import alive, argv_of, children_tree, proc_starttime, with_descendants

T = TypeVar("T")

NOT_ROOT = (
    "lab: the embedded lab needs root to create network namespaces (running as uid {uid}); "
    "to test a real deployment run: failover-tester run --config config/example-two-dc.yaml"
)

#: the lab's applications (`lab.apps`); `lab up` deploys the first, `lab reset --app` any
APPLICATIONS: tuple[str, ...] = ("orders", "telemetry")
DEFAULT_APP = APPLICATIONS[0]

#: the toolkit config files `lab up` writes per DC under crossdc_dir(dc): file name -> crossDCOperationMode
#: (`<app>.cfg` for the application, `<app>-standby.cfg` for its standalone passive stub)
CONFIG_FILES: dict[str, int] = {
    name: mode for app in APPLICATIONS for name, mode in ((f"{app}.cfg", 1), (f"{app}-standby.cfg", 0))
}


def config_file(dc: str, name: str) -> str:
    return str(paths.crossdc_dir(dc) / name)


def _cfg(dc: str, name: str) -> dict[str, str]:
    return {"configFileName": config_file(dc, name)}


#: deployments `lab up` / `lab reset --mode` make: the DCs whose jobs are submitted through REST ...
DEPLOYMENTS: dict[str, tuple[str, ...]] = {"active-passive": ("dc1",), "active-active": ("dc2", "dc1")}
#: ... and the DC that runs the standalone passive stub (`lab.stub`), if any
STANDBY_DC: dict[str, str | None] = {"active-passive": "dc2", "active-active": None}
DEFAULT_SCRIPT = "restoring"


def layout(mode: str, app: str = DEFAULT_APP) -> tuple[tuple[str, str, dict[str, str]], ...]:
    """The jobs of a deployment: (dc, application, submission parameters), each with its DC's `<app>.cfg`."""
    return tuple((dc, app, _cfg(dc, f"{app}.cfg")) for dc in DEPLOYMENTS[mode])


def write_config_files() -> None:
    """Each DC's toolkit config files with the lab's whole-second timings (`crossdc.lab_file_settings`)."""
    for dc in paths.DCS:
        for name, mode in CONFIG_FILES.items():
            role = "application (active)" if mode == 1 else "standalone passive stub"
            crossdc.write_config_file(
                paths.crossdc_dir(dc) / name, crossdc.lab_file_settings(dc, mode), f"{dc}: {role}, written by lab up"
            )


class LabError(RuntimeError):
    pass


def wait_for(cond: Callable[[], T | None], deadline_s: float, what: str, interval: float = 0.02) -> T:
    """Poll `cond` until it returns something truthy; raise LabError at the deadline."""
    end = time.monotonic() + deadline_s
    waiter = threading.Event()
    while True:
        result = cond()
        if result:
            return result
        if time.monotonic() > end:
            raise LabError(f"timed out after {deadline_s:.0f} s waiting for {what}")
        waiter.wait(interval)


# ------------------------------------------------------------------------------------------ processes


def load_state() -> dict[str, Any]:
    try:
        doc: dict[str, Any] = json.loads(paths.state_file().read_text())
        return doc
    except (OSError, ValueError):
        return {}


def save_state(state: dict[str, Any]) -> None:
    tmp = paths.state_file().with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, paths.state_file())


def recorded_pids(state: dict[str, Any]) -> set[int]:
    """PIDs from state.json that still belong to the process we started (start time checked)."""
    pids: set[int] = set()
    for info in state.get("processes", {}).values():
        pid = int(info.get("pid", 0))
        if pid > 0 and proc_starttime(pid) == info.get("starttime"):
            pids.add(pid)
    return pids


def lab_pids(state: dict[str, Any]) -> set[int]:
    pids = recorded_pids(state) | cgroups.procs() | netns.pids_in_namespaces()
    pids.discard(os.getpid())
    return {p for p in pids if alive(p)}


def _signal_all(pids: set[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def spawn_instance(dc: str, defects: list[str]) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(paths.PROJECT_ROOT)
    env[paths.DEFECTS_ENV] = ",".join(defects)
    env["PYTHONUNBUFFERED"] = "1"
    logfile = paths.logs_dir() / f"{dc}-instance.log"

    def preexec() -> None:
        cgroups.join(dc, os.getpid())

    with open(logfile, "ab") as log:
        return subprocess.Popen(
            ["ip", "netns", "exec", paths.netns(dc), sys.executable, "-m", "lab.instance", "--dc", dc],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=paths.LAB_DIR,
            env=env,
            start_new_session=True,
            preexec_fn=preexec,  # the CLI is single-threaded: preexec_fn is safe here
        )


# ----------------------------------------------------------------------------------------------- REST


def rest_ready(dc: str) -> bool:
    try:
        r = restclient.for_dc(dc, timeout=2.0)
        status, _ = r.call("GET", f"/streams/instances/{paths.instance_id(dc)}")
        return status == 200
    except OSError:
        return False


def upload_bundle(dc: str, app: str) -> str:
    """Upload ``bundles_dir()/<app>.sab`` to the DC's instance (``POST applicationbundles``); its bundleId."""
    data = bundles.bundle_path(app).read_bytes()
    status, doc = restclient.for_dc(dc).call(
        "POST", f"/streams/instances/{paths.instance_id(dc)}/applicationbundles", raw=data,
        content_type="application/x-jar",
    )
    if status != 200 or not isinstance(doc, dict) or not doc.get("bundleId"):
        raise LabError(f"uploading the {app} bundle to {dc} answered {status}: {doc}")
    return str(doc["bundleId"])


def submit(dc: str, app: str, params: dict[str, str] | None = None) -> str:
    """Submit `app` to the DC by its bundle (uploaded first, as a real instance requires), job name = `app`."""
    r = restclient.for_dc(dc)
    params = dict(params or {})
    body: dict[str, Any] = {"application": upload_bundle(dc, app), "jobName": app}
    if params:
        body["submitParameters"] = [{"name": k, "value": v} for k, v in params.items()]
    status, job = r.call("POST", f"/streams/instances/{paths.instance_id(dc)}/jobs", body)
    if status != 201:
        raise LabError(f"submitting {app} to {dc} answered {status}: {job}")
    return str(job["id"])


def _jobs_of(dc: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = restclient.for_dc(dc).get(f"/streams/instances/{paths.instance_id(dc)}/jobs")["jobs"]
    return found


def _cancel_listed(dc: str) -> bool:
    """Cancel every job of ``dc`` that is not canceling yet; True once none is listed."""
    jobs = _jobs_of(dc)
    for job in jobs:
        if job.get("status") != "canceling":
            restclient.for_dc(dc).call("DELETE", f"/streams/instances/{paths.instance_id(dc)}/jobs/{job['id']}")
    return not jobs


def job_healthy(dc: str, job_id: str) -> bool:
    try:
        status, job = restclient.for_dc(dc, timeout=2.0).call(
            "GET", f"/streams/instances/{paths.instance_id(dc)}/jobs/{job_id}"
        )
    except OSError:
        return False
    return status == 200 and job.get("health") == "healthy"


def remote_up_seen(dc: str, job_id: str) -> bool:
    return any(
        e.get("event") == "remote_up" and e.get("dc") == dc and e.get("job_id") == job_id for e in truth.read_events()
    )


def stub_up_seen(dc: str, pid: int) -> bool:
    return any(
        e.get("event") == "remote_up" and e.get("dc") == dc and e.get("stub_pid") == pid for e in truth.read_events()
    )


def standby_command(dc: str, script: str, app: str = DEFAULT_APP) -> list[str]:
    """The passive stub's command line on the DC host (what a team runs there, e.g. over SSH)."""
    return [
        str(paths.bin_dir() / "standalone"),
        "-P",
        f"configFileName={config_file(dc, f'{app}-standby.cfg')}",
        "-P",
        f"shellScriptName={stub.script_path(dc, script, app)}",
    ]


def start_standby(dc: str, script: str, defects: list[str], app: str = DEFAULT_APP) -> dict[str, Any]:
    """Start the standalone passive stub in `dc`'s network namespace and cgroup: its state.json record."""
    env = dict(os.environ)
    env[paths.DEFECTS_ENV] = ",".join(defects)
    cmd = standby_command(dc, script, app)

    def preexec() -> None:
        cgroups.join(dc, os.getpid())

    with open(paths.logs_dir() / f"{dc}-standalone.log", "ab") as log:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", paths.netns(dc), *cmd],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=paths.crossdc_dir(dc),
            env=env,
            start_new_session=True,
            preexec_fn=preexec,  # the CLI is single-threaded: preexec_fn is safe here
        )
    return {
        "dc": dc,
        "pid": proc.pid,
        "starttime": proc_starttime(proc.pid),
        "app": app,
        "script": script,
        "command": cmd,
        "started_at": time.time(),
    }


def standby_alive(info: dict[str, Any] | None) -> bool:
    if not info:
        return False
    pid = int(info.get("pid", 0))
    return pid > 0 and proc_starttime(pid) == info.get("starttime")


def stop_standby(info: dict[str, Any] | None) -> None:
    """Stop the recorded stub by its PID (checked against its start time), never by name."""
    if info is None or not standby_alive(info):
        return
    pid = int(info["pid"])
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    with contextlib.suppress(LabError):
        wait_for(lambda: not standby_alive(info), 3.0, "the passive stub to exit")
    if standby_alive(info):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def is_stub_or_failover_script(argv: list[bytes]) -> bool:
    """A command line of the lab's stub program, or of one of the failover scripts a stub launches."""
    return b"lab.stub" in argv or any(a.endswith(b".sh") and b"/crossdc/" in a and b"failover-" in a for a in argv)


def stop_host_stubs() -> list[int]:
    """Stop every passive stub running on a DC host, also one that someone started over SSH (the tester starts its
    own), and every failover script a stub launched, with what the script runs (`streamtool submitjob`): a script
    outlives its stub (the restoring one stops the stub first) and would submit a job after a reset cleared the
    instance. They are the processes of the lab's network namespaces whose command is the lab's stub program or
    one of its failover scripts, and their descendants. Only lab processes live in those namespaces (as `lab down`
    relies on too); each is signalled by PID, never by name."""
    roots = [pid for pid in sorted(netns.pids_in_namespaces()) if is_stub_or_failover_script(argv_of(pid))]
    targets = with_descendants(roots, children_tree())
    stopped: list[int] = []
    for pid in targets:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            stopped.append(pid)
    for pid in stopped:
        with contextlib.suppress(LabError):
            wait_for(lambda pid=pid: not Path(f"/proc/{pid}").exists(), 3.0, f"process {pid} to exit")  # type: ignore[misc]
        with contextlib.suppress(ProcessLookupError):
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)
    return stopped


def deploy_default(
    t0: float,
    ready: dict[str, float],
    mode: str = "active-passive",
    script: str = DEFAULT_SCRIPT,
    defects: list[str] | None = None,
    state: dict[str, Any] | None = None,
    fencing: bool = False,
    app: str = DEFAULT_APP,
) -> dict[str, str]:
    """Submit the mode's jobs of `app`, start its passive stub (recorded in `state["standby"]` at once), and wait
    until every job is healthy and every toolkit composite has seen its remote UP."""
    jobs: dict[str, str] = {}
    jobs_layout = layout(mode, app)
    for dc, name, params in jobs_layout:
        jobs[dc] = submit(dc, name, {**params, "fencing": str(fencing).lower()})
    standby_dc = STANDBY_DC[mode]
    standby: dict[str, Any] | None = None
    if standby_dc is not None:
        standby = start_standby(standby_dc, script, defects or [], app)
    if state is not None:
        state.update(standby=standby, failover_script=script, deployment=mode, fencing=fencing, app=app)
        save_state(state)
    for dc, name, _params in jobs_layout:
        wait_for(lambda dc=dc: job_healthy(dc, jobs[dc]), 30, f"{name} in {dc} to be healthy")  # type: ignore[misc]
        ready[f"{dc} job {app} healthy"] = time.monotonic() - t0
    for dc, _app, _params in jobs_layout:
        wait_for(
            lambda dc=dc: remote_up_seen(dc, jobs[dc]),  # type: ignore[misc]
            30,
            f"{dc} crossdc to see the remote UP",
        )
        ready[f"{dc} crossdc remote UP"] = time.monotonic() - t0
    if standby is not None:
        sdc, pid = standby["dc"], int(standby["pid"])
        wait_for(lambda: stub_up_seen(sdc, pid), 30, f"the {sdc} passive stub to see the remote UP")
        ready[f"{sdc} passive stub remote UP"] = time.monotonic() - t0
    return jobs


def _start_jmx(state: dict[str, Any], javac: subprocess.Popen[bytes] | None) -> None:
    """The JMX JVMs need the compiled classes: started once javac is done, recorded at once."""
    try:
        parts.start_jmx(state, javac)
    finally:
        save_state(state)


# ------------------------------------------------------------------------------------------- commands


def check_root() -> None:
    if os.geteuid() != 0:
        print(NOT_ROOT.format(uid=os.geteuid()), file=sys.stderr)
        raise SystemExit(2)


def parse_defects(raw: list[str]) -> list[str]:
    names: list[str] = []
    for chunk in raw:
        for name in chunk.split(","):
            name = name.strip()
            if not name:
                continue
            if name not in paths.KNOWN_DEFECTS:
                print(
                    f"lab: unknown defect {name!r} (known: {', '.join(paths.KNOWN_DEFECTS)})",
                    file=sys.stderr,
                )
                raise SystemExit(2)
            if name not in names:
                names.append(name)
    return names


def anything_exists() -> bool:
    return bool(paths.LAB_DIR.exists() or netns.existing() or cgroups.existing_dirs())


def running(state: dict[str, Any]) -> bool:
    """The lab is up: `lab up` finished, its namespaces exist and every process it recorded still runs."""
    if not state.get("up"):
        return False
    if any(not netns.ns_exists(ns) for ns in netns.NAMESPACES):
        return False
    return len(recorded_pids(state)) == len(state.get("processes", {}))


def unreachable_dcs() -> list[str]:
    """The DCs whose REST API does not answer from the root namespace (a fault may hold them: a DC cut off
    from the network, CPU exhaustion)."""
    return [dc for dc in paths.DCS if not rest_ready(dc)]


def _held_by_a_fault(unreachable: list[str]) -> str:
    return (
        f"lab: up, but the REST API of {', '.join(unreachable)} does not answer from here (a fault may hold it, "
        "e.g. a data center cut off from the network); not rebuilding the lab: that would replace the password "
        "and CA under a run that uses them. Heal the fault (`failover-tester faults list|clean`) or run "
        "`python -m lab down` first."
    )


def _make_password() -> None:
    f = paths.password_file()
    if f.exists():
        return
    f.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    alphabet = string.ascii_letters + string.digits
    pw = "".join(secrets.choice(alphabet) for _ in range(24))
    fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(pw + "\n")


def switch_bastion_mode(state: dict[str, Any], on: bool) -> None:
    """Bastion mode on or off (lab/bastion.py), recorded in state.json (`bastion`)."""
    bastion.set_mode(on)
    state["bastion"] = on
    save_state(state)


def _instance_pids(state: dict[str, Any]) -> dict[str, int]:
    """dc -> PID of its instance service (only while it is the process `lab up` recorded)."""
    found: dict[str, int] = {}
    for dc in paths.DCS:
        info = state.get("processes", {}).get(f"{dc}-instance")
        if info and alive(int(info["pid"])) and proc_starttime(int(info["pid"])) == info.get("starttime"):
            found[dc] = int(info["pid"])
    return found


def switch_defects(state: dict[str, Any], defects: list[str], script: str, bastion_mode: bool) -> int:
    """Other defect switches on an up lab: only what reads them is restarted (the passive stub and both instance
    services, whose PEs inherit the switches), then the default deployment is made again. The network, the
    certificates and the password, sshd, the exporters, JMX and Prometheus stay: a defect changes what the
    instances and the toolkit do, nothing else (the exporters and JMX mirror the instances' REST API, and lose
    and find their source as they would on a real instance restart)."""
    t0 = time.monotonic()
    stop_standby(state.get("standby"))
    stop_host_stubs()
    old = _instance_pids(state)
    family = with_descendants(list(old.values()), children_tree())  # the instances and their PEs
    _signal_all(set(old.values()), signal.SIGTERM)  # each stops its PEs, then exits
    try:
        wait_for(lambda: not any(alive(p) for p in family), 5.0, "the instances and their PEs to exit")
    except LabError:
        _signal_all({p for p in family if alive(p)}, signal.SIGKILL)
        wait_for(lambda: not any(alive(p) for p in family), 3.0, "the instances and their PEs to die")
    for dc in paths.DCS:
        for f in paths.snapshots_dir(dc).glob("*.snapshot"):
            f.unlink(missing_ok=True)
    write_config_files()
    stub.install(defects)
    ready: dict[str, float] = {}
    state.update(defects=defects, up=False)
    for dc in paths.DCS:
        proc = spawn_instance(dc, defects)
        state["processes"][f"{dc}-instance"] = {
            "pid": proc.pid, "starttime": proc_starttime(proc.pid), "dc": dc, "started_at": time.time()}
    save_state(state)
    try:
        for dc in paths.DCS:
            wait_for(lambda dc=dc: rest_ready(dc), 20, f"the {dc} REST API")  # type: ignore[misc]
            ready[f"{dc} instance REST API"] = time.monotonic() - t0
        jobs = deploy_default(t0, ready, script=script, defects=defects, state=state)
        if bool(state.get("bastion")) != bastion_mode:
            switch_bastion_mode(state, bastion_mode)
    except (LabError, bastion.BastionError, OSError) as exc:
        print(f"lab: switching the defects failed: {exc}; run `python -m lab down`", file=sys.stderr)
        return 1
    total = time.monotonic() - t0
    state.update(up=True, jobs=jobs)
    save_state(state)
    truth.emit("lab", "lab", "lab_defects", switch_s=round(total, 3), defects=defects, jobs=jobs)
    print(f"lab: defect switches now {','.join(defects) or 'none'} (instances restarted, default deployment made "
          f"again) in {total:.2f} s")
    return 0


def up(defects: list[str], script: str = DEFAULT_SCRIPT, scrape_interval: float = prometheus.DEFAULT_INTERVAL,
       bastion_mode: bool = False) -> int:
    """Bring the lab up; `script` is the stub's failover script, `scrape_interval` (s) the lab Prometheus'
    scrape interval; `bastion_mode`: the DC hosts' SSH only through the bastion (switched without a rebuild
    when the lab is up)."""
    check_root()
    t0 = time.monotonic()
    clock.reset()  # every data center reports true time again (`python -m lab skew`)
    previous = load_state()
    if running(previous):
        # A DC that does not answer while every process runs is held by a fault, not half up: tearing the lab
        # down here would make a new password under a run that read the old one (HTTP 401 from then on).
        same_interval = previous.get("scrape_interval_s", prometheus.DEFAULT_INTERVAL) == scrape_interval
        if sorted(previous.get("defects", [])) == sorted(defects) and same_interval:
            if bool(previous.get("bastion")) != bastion_mode:
                switch_bastion_mode(previous, bastion_mode)
                print(f"lab: bastion mode {'on' if bastion_mode else 'off'}")
            unreachable = unreachable_dcs()
            if unreachable:
                print(_held_by_a_fault(unreachable), file=sys.stderr)
                return 1
            if previous.get("failover_script", DEFAULT_SCRIPT) != script:
                print(f"lab: already up; switching the failover script to {script}")
                return reset(
                    str(previous.get("deployment") or "active-passive"),
                    script,
                    app=str(previous.get("app") or DEFAULT_APP),
                )
            print("lab: already up and healthy (nothing to do); `python -m lab status` for details")
            return 0
        if same_interval:
            unreachable = unreachable_dcs()
            if unreachable:
                print(_held_by_a_fault(unreachable), file=sys.stderr)
                return 1
            return switch_defects(previous, defects, script, bastion_mode)
        print("lab: up with another scrape interval; tearing down first")
        down(quiet=True)
    elif anything_exists():
        print("lab: found a half-up lab; tearing it down first")
        down(quiet=True)
    ready: dict[str, float] = {}

    try:
        netns.setup()  # guard route first, route via wan before any process starts
    except netns.NetError as exc:
        print(f"lab: network setup failed: {exc}; run `python -m lab down`", file=sys.stderr)
        return 1
    ready["network"] = time.monotonic() - t0

    for d in (paths.logs_dir(), paths.snapshots_dir("dc1"), paths.snapshots_dir("dc2")):
        d.mkdir(parents=True, exist_ok=True)
    paths.truth_file().touch()
    write_config_files()
    _make_password()
    from lab import certs  # lazy: `cryptography` only where certificates are made

    certs.make_all()
    ready["certificates"] = time.monotonic() - t0
    bundles.write_all()  # the .sab files a team's build host would have
    streamtool.install()  # /run/xdc-lab/bin/streamtool on the DC hosts
    stub.install(defects)  # /run/xdc-lab/bin/standalone, the passive stub
    for dc in paths.DCS:
        stub.install_scripts(dc, APPLICATIONS)  # crossdc/failover-reference.sh, telemetry-failover-reference.sh, ...

    cg = cgroups.available()
    for dc in paths.DCS:
        cgroups.create(dc)
    state: dict[str, Any] = {
        "up": False,
        "started_at": time.time(),
        "defects": defects,
        "scrape_interval_s": scrape_interval,
        "netns": list(netns.NAMESPACES),
        "cgroups": [str(p) for p in cgroups.existing_dirs()],
        "cgroups_available": cg,
        "processes": {},
    }
    try:
        javac = parts.start_infrastructure(state)  # sshd, exporters, Prometheus; javac in the background
    except (parts.PartError, OSError) as exc:
        save_state(state)
        print(f"lab: starting the real parts failed: {exc}; run `python -m lab down`", file=sys.stderr)
        return 1
    for dc in paths.DCS:
        proc = spawn_instance(dc, defects)
        state["processes"][f"{dc}-instance"] = {
            "pid": proc.pid,
            "starttime": proc_starttime(proc.pid),
            "dc": dc,
            "started_at": time.time(),
        }
    save_state(state)
    try:
        for dc in paths.DCS:
            wait_for(lambda dc=dc: rest_ready(dc), 20, f"the {dc} REST API")  # type: ignore[misc]
            ready[f"{dc} instance REST API"] = time.monotonic() - t0
        _start_jmx(state, javac)
        jobs = deploy_default(t0, ready, script=script, defects=defects, state=state)
        parts.wait_ready(t0, ready, set(jobs))  # sshd, exporters, Prometheus, JMX
        switch_bastion_mode(state, bastion_mode)
    except (LabError, parts.PartError, bastion.BastionError, OSError) as exc:
        print(f"lab: up failed: {exc}; logs in {paths.logs_dir()}; run `python -m lab down`", file=sys.stderr)
        return 1
    total = time.monotonic() - t0
    state.update(up=True, ready_s={k: round(v, 3) for k, v in ready.items()}, up_s=round(total, 3), jobs=jobs)
    save_state(state)
    truth.emit("lab", "lab", "lab_up", up_s=round(total, 3), defects=defects, jobs=jobs)
    for what, t in sorted(ready.items(), key=lambda kv: kv[1]):
        print(f"lab: {what:<34} ready at {t:6.2f} s")
    print(
        f"lab: up in {total:.2f} s — REST {paths.rest_base('dc1')}/streams/resources, "
        f"{paths.rest_base('dc2')}/streams/resources; CA {paths.ca_pem()}; "
        f"user {paths.USER}, password in {paths.password_file()}"
        + (f"; defects: {','.join(defects)}" if defects else "")
    )
    return 0


def down(quiet: bool = False) -> int:
    check_root()
    state = load_state()
    stop_standby(state.get("standby"))
    pids = lab_pids(state)
    _signal_all(pids, signal.SIGTERM)
    with contextlib.suppress(LabError):
        wait_for(lambda: not any(alive(p) for p in pids), 3.0, "lab processes to exit")
    # anything left (or started meanwhile) in the lab's cgroups / namespaces
    for _ in range(3):
        rest = lab_pids(state)
        if not rest:
            break
        _signal_all(rest, signal.SIGKILL)
        with contextlib.suppress(LabError):
            wait_for(lambda rest=rest: not any(alive(p) for p in rest), 3.0, "lab processes to die")  # type: ignore[misc]
    left_pids = lab_pids(state)
    netns.teardown()
    left_other = parts.after_down(state)
    left_cg = cgroups.remove()
    shutil.rmtree(paths.LAB_DIR, ignore_errors=True)
    problems = []
    if left_pids:
        problems.append(f"processes still alive: {sorted(left_pids)}")
    if left_cg:
        problems.append(f"cgroups left: {left_cg}")
    if netns.existing():
        problems.append(f"network objects left: {netns.existing()}")
    problems += left_other
    if problems:
        print("lab: down incomplete: " + "; ".join(problems), file=sys.stderr)
        return 1
    if not quiet:
        print(f"lab: down ({len(pids)} process(es) stopped; {paths.LAB_NET} left unreachable)")
    return 0


def collect_status() -> dict[str, Any]:
    state = load_state()
    doc: dict[str, Any] = {
        "up": bool(state.get("up")),
        "lab_dir": str(paths.LAB_DIR),
        "defects": state.get("defects", []),
        "scrape_interval_s": state.get("scrape_interval_s"),
        "network": {ns: netns.ns_exists(ns) for ns in netns.NAMESPACES},
        "route": netns.route_get(paths.DC_ADDR["dc1"]) if os.geteuid() == 0 else "unknown (not root)",
        "cgroups": {
            "available": cgroups.available(),
            "dirs": [str(p) for p in cgroups.existing_dirs()],
        },
        "components": {},
        "ready_s": state.get("ready_s", {}),
        "deployment": state.get("deployment", "active-passive"),
        "app": state.get("app", DEFAULT_APP),
        "failover_script": state.get("failover_script", DEFAULT_SCRIPT),
        "fencing": bool(state.get("fencing", False)),
        "standby": None,
        "bastion": {"mode": bool(state.get("bastion")), "address": bastion.ADDR, "fault_user": bastion.FAULT_USER},
    }
    if os.geteuid() == 0 and netns.ns_exists(paths.netns("dc1")):
        doc["bastion"]["rules"] = bastion.mode_rules()
    standby = state.get("standby")
    if standby:
        # not part of `healthy`: the stub ends on purpose when it has launched the application
        doc["standby"] = {
            "dc": standby["dc"],
            "pid": standby["pid"],
            "alive": standby_alive(standby),
            "script": standby.get("script"),
            "script_path": str(
                stub.script_path(standby["dc"], str(standby.get("script")), str(standby.get("app") or DEFAULT_APP))
            ),
            "command": standby.get("command"),
        }
    doc["cgroups"].update(parts.cgroup_report(state))
    healthy_all = doc["up"] and all(doc["network"].values())
    for name, part in parts.statuses(state.get("processes", {})).items():
        healthy_all = healthy_all and part["health"] == "ok"
        doc["components"][name] = part
    for name, info in state.get("processes", {}).items():
        if info.get("kind"):
            continue  # a real part (above)
        dc = info["dc"]
        pid = int(info["pid"])
        comp: dict[str, Any] = {"pid": pid, "alive": proc_starttime(pid) == info.get("starttime")}
        if comp["alive"] and paths.password_file().exists():
            try:
                r = restclient.for_dc(dc, timeout=3.0)
                jobs = r.get(f"/streams/instances/{paths.instance_id(dc)}/jobs")
                comp["rest"] = "ok"
                comp["jobs"] = [
                    {"id": j["id"], "name": j["name"], "status": j["status"], "health": j["health"]}
                    for j in jobs["jobs"]
                ]
                data = r.call("GET", "/streams/resources")
                comp["rest_status"] = data[0]
            except (OSError, restclient.RestError) as exc:
                comp["rest"] = f"error: {exc}"
        healthy_all = healthy_all and comp["alive"] and comp.get("rest") == "ok"
        doc["components"][name] = comp
    doc["healthy"] = bool(healthy_all)
    return doc


def reset(mode: str = "active-passive", script: str | None = None, fencing: bool = False,
          app: str = DEFAULT_APP) -> int:
    """Restore a deployment of application `app` (default orders; or telemetry): `active-passive` (default: the
    application in dc1 through REST, the standalone passive stub in dc2 with `<app>-standby.cfg`, running the
    application's failover script `script`, default: the one in force) or `active-active` (the application in
    both, each with its DC's `<app>.cfg`, mode 1); with the application option `fencing` (default off, like
    the toolkit's samples); started instances, the lab's config files, no snapshot files. Every other job is
    canceled: both applications use the DC's toolkit ports. For tests/ops only."""
    check_root()
    state = load_state()
    script = script or state.get("failover_script") or DEFAULT_SCRIPT
    if not running(state):
        print("lab: not up; run `python -m lab up`", file=sys.stderr)
        return 1
    unreachable = unreachable_dcs()
    if unreachable:
        print(_held_by_a_fault(unreachable), file=sys.stderr)
        return 1
    t0 = time.monotonic()
    clock.reset()  # every data center reports true time again (`python -m lab skew`)
    stop_standby(state.get("standby"))
    stop_host_stubs()  # a stub the lab did not start (e.g. the tester's) would hold the toolkit's ports
    for dc in paths.DCS:
        r = restclient.for_dc(dc)
        if r.get(f"/streams/instances/{paths.instance_id(dc)}").get("status") != "running":
            # what `streamtool startinstance` does (the lab-only REST action behind it)
            r.call("POST", f"/streams/instances/{paths.instance_id(dc)}/actions", {"type": "start"},
                   headers=dict(streamtool.INTERNAL_HEADER))
    try:
        # DELETE answers at once; the jobs show `canceling` until their PEs are gone. A submission already on its
        # way when the scripts were stopped lands later: it is canceled as it appears
        for dc in paths.DCS:
            wait_for(lambda dc=dc: _cancel_listed(dc), 30, f"the canceled jobs of {dc} to be gone")  # type: ignore[misc]
    except LabError as exc:
        print(f"lab: reset failed: {exc}", file=sys.stderr)
        return 1
    for dc in paths.DCS:
        for f in paths.snapshots_dir(dc).glob("*.snapshot"):
            f.unlink(missing_ok=True)
    write_config_files()
    ready: dict[str, float] = {}
    try:
        jobs = deploy_default(
            t0, ready, mode, script=script, defects=list(state.get("defects", [])), state=state, fencing=fencing,
            app=app,
        )
    except LabError as exc:
        print(f"lab: reset failed: {exc}", file=sys.stderr)
        return 1
    state["jobs"] = jobs
    save_state(state)
    standby = state.get("standby")
    extra = f"; passive stub pid {standby['pid']} in {standby['dc']}, failover script {script}" if standby else ""
    print(f"lab: {mode} deployment of {app} restored in {time.monotonic() - t0:.2f} s (jobs {jobs}{extra})")
    return 0
