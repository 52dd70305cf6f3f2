"""The fault library against the lab: every kind injected, verified, healed and verified healed over SSH and
REST, each effect also checked here from the lab's side (its namespaces, /proc, cgroups, truth log); the
dead-man timer healing partition, PE hang and CPU exhaustion after the CLI is SIGKILLed; faults list/clean.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faultwire import cli, fault_session, start_and_kill
from labwire import ADDR, ROOT, Lab, run_lab, wait_until

from support.faults.session import FaultSession

pytestmark = pytest.mark.lab

TAG = "xdc-fault"
CROSSDC = 25091


# ------------------------------------------------------------------ the lab's side of the story


def ns(dc: str, *cmd: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", f"xdc-{dc}", *cmd], capture_output=True, text=True,
                          timeout=timeout, check=False)


def connect_seconds(src: str, dst: str, limit: float = 1.0) -> float | None:
    """Seconds a TCP connect from ``src``'s namespace to ``dst``'s crossdc port takes (refused counts as an
    answer); None when no answer within ``limit``."""
    started = time.monotonic()
    done = ns(src, "timeout", str(limit), "bash", "-c", f"exec 3<>/dev/tcp/{ADDR[dst]}/{CROSSDC}")
    elapsed = time.monotonic() - started
    answered = done.returncode == 0 or "refused" in done.stderr
    return elapsed if answered else None


def tagged_rules(dc: str) -> list[str]:
    return [line for line in ns(dc, "iptables-save", "-t", "filter").stdout.splitlines() if TAG in line]


def qdiscs(dc: str) -> str:
    return ns(dc, "tc", "qdisc", "show").stdout


def proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def aggregator_pe(lab: Lab, dc: str = "dc1") -> dict[str, Any]:
    job = lab.job(dc, "orders")
    assert job is not None, f"no orders job in {dc}"
    pes = lab.get(f"{lab.rest(dc)}/pes", params={"job.restid": job["id"]}).json()["pes"]
    pe = next(p for p in pes if p["indexWithinJob"] == 1)
    return dict(pe)


def stress_in_dc(dc: str) -> list[int]:
    procs = Path(f"/sys/fs/cgroup/cpu/xdc-lab/{dc}/cgroup.procs").read_text().split()
    found = []
    for pid in procs:
        try:
            if Path(f"/proc/{pid}/comm").read_text().startswith("stress-ng"):
                found.append(int(pid))
        except OSError:
            continue
    return found


# --------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", autouse=True)
def leave_the_default_deployment(lab: Lab) -> Iterator[None]:
    """Partitions and API faults can make dc2 take over: later test files get the default deployment back."""
    yield
    assert run_lab("reset").returncode == 0


@pytest.fixture()
def session(default_deployment: Lab) -> Iterator[FaultSession]:
    with fault_session(ROOT / "config" / "lab.yaml", "lab faults") as faults:
        yield faults


def effective(session: FaultSession) -> dict[str, Any]:
    event = session.journal.events("fault.effective")[-1]
    return dict(event.fields)


# ------------------------------------------------------------------------------- network faults


def test_partition_both_ways(session: FaultSession) -> None:
    assert connect_seconds("dc1", "dc2") is not None
    fault = session.inject("partition", between=("dc1", "dc2"))
    assert connect_seconds("dc1", "dc2", 0.5) is None and connect_seconds("dc2", "dc1", 0.5) is None
    assert len(tagged_rules("dc1")) == 1 and len(tagged_rules("dc2")) == 1
    assert effective(session)["apply_s"] < 1.0
    session.heal(fault)
    assert connect_seconds("dc1", "dc2") is not None and connect_seconds("dc2", "dc1") is not None
    assert tagged_rules("dc1") == [] and tagged_rules("dc2") == []


def test_one_way_drop_only_on_the_receiver(session: FaultSession) -> None:
    fault = session.inject("partition", between=("dc1", "dc2"), one_way=True)
    assert tagged_rules("dc1") == [] and len(tagged_rules("dc2")) == 1
    assert connect_seconds("dc1", "dc2", 0.5) is None
    session.heal(fault)
    assert connect_seconds("dc1", "dc2") is not None and tagged_rules("dc2") == []


def test_isolation_keeps_the_controllers_ssh(session: FaultSession) -> None:
    fault = session.inject("isolate", dc="dc1")
    assert connect_seconds("dc2", "dc1", 0.5) is None and connect_seconds("dc1", "dc2", 0.5) is None
    assert session.pool.get(ADDR["dc1"]).run("echo still reachable").stdout == "still reachable\n"
    session.heal(fault)
    assert connect_seconds("dc2", "dc1") is not None and tagged_rules("dc1") == []


def test_latency_with_jitter(session: FaultSession) -> None:
    baseline = connect_seconds("dc1", "dc2")
    assert baseline is not None
    fault = session.inject("latency", between=("dc1", "dc2"), delay=0.15, jitter=0.01)
    slowed = connect_seconds("dc1", "dc2", 3.0)
    assert slowed is not None and slowed >= baseline + 0.25  # ~2 x 150 ms: each direction is delayed
    assert fault.describe()["mode"] in (["netem"], ["delayer"])
    session.heal(fault)
    healed = connect_seconds("dc1", "dc2")
    assert healed is not None and healed < baseline + 0.1
    assert tagged_rules("dc1") == [] and "netem" not in qdiscs("dc1")


def test_packet_loss(session: FaultSession) -> None:
    fault = session.inject("loss", between=("dc1", "dc2"), probability=0.3)
    rules = tagged_rules("dc2")
    assert len(rules) == 1 and "--probability 0.29999" in rules[0] and f"-s {ADDR['dc1']}" in rules[0]
    listing = ns("dc2", "iptables", "-w", "-L", "INPUT", "-v", "-x", "-n").stdout
    before = next(int(line.split()[0]) for line in listing.splitlines() if TAG in line)
    sent = ns("dc1", "bash", "-c", f"for i in $(seq 400); do printf x > /dev/udp/{ADDR['dc2']}/9; done")
    assert sent.returncode == 0, sent.stderr
    listing = ns("dc2", "iptables", "-w", "-L", "INPUT", "-v", "-x", "-n").stdout
    dropped = next(int(line.split()[0]) for line in listing.splitlines() if TAG in line) - before
    assert 40 <= dropped <= 240, f"{dropped} of 400 datagrams dropped at 30% loss"
    session.heal(fault)
    assert tagged_rules("dc1") == [] and tagged_rules("dc2") == []


def test_bandwidth_limit(session: FaultSession) -> None:
    fault = session.inject("bandwidth", between=("dc1", "dc2"), rate="1mbit")
    assert "tbf" in qdiscs("dc1") and "rate 1Mbit" in qdiscs("dc1") and "rate 1Mbit" in qdiscs("dc2")
    session.heal(fault)
    assert "tbf" not in qdiscs("dc1") and "tbf" not in qdiscs("dc2")
    assert connect_seconds("dc1", "dc2") is not None


# ------------------------------------------------------------------------------- process faults


def test_pe_kill_and_the_instance_restarts_it(session: FaultSession, default_deployment: Lab) -> None:
    before = aggregator_pe(default_deployment)
    pid = int(before["processId"])
    fault = session.inject("pe-kill", dc="dc1", operator="Aggregator")
    assert proc_state(pid) in ("gone", "Z")
    session.heal(fault)
    after = aggregator_pe(default_deployment)
    assert after["status"] == "running" and after["launchCount"] == before["launchCount"] + 1
    assert int(after["processId"]) != pid


def test_pe_hang_stops_then_resumes_the_same_process(session: FaultSession, default_deployment: Lab) -> None:
    pid = int(aggregator_pe(default_deployment)["processId"])
    fault = session.inject("pe-hang", dc="dc1", operator="Aggregator")
    assert proc_state(pid) == "T"
    session.heal(fault)
    assert proc_state(pid) in ("S", "R")
    assert int(aggregator_pe(default_deployment)["processId"]) == pid


# ------------------------------------------------------------------------------ resource faults


def test_cpu_exhaustion_runs_in_the_dcs_cgroup(session: FaultSession) -> None:
    fault = session.inject("cpu", dc="dc1")
    assert len(stress_in_dc("dc1")) >= 2  # the parent and its workers, inside dc1's cpu cgroup
    session.heal(fault)
    wait_until(lambda: not stress_in_dc("dc1"), 5, "stress-ng gone from dc1")


def test_memory_exhaustion_is_bounded_by_its_own_cgroup(session: FaultSession) -> None:
    fault = session.inject("memory", dc="dc1")
    child = Path(fault.child)  # type: ignore[attr-defined]
    assert child.parent == Path("/sys/fs/cgroup/memory/xdc-lab/dc1")
    used = int((child / "memory.usage_in_bytes").read_text())
    assert used >= 0.9 * fault.size  # type: ignore[attr-defined]
    session.heal(fault)
    assert not child.exists()


def test_disk_exhaustion_fills_the_snapshot_directory(session: FaultSession) -> None:
    fault = session.inject("disk", dc="dc1")
    fill = Path(fault.file)  # type: ignore[attr-defined]
    assert fill.parent == Path("/run/xdc-lab/dc1/snapshots") and fill.stat().st_blocks * 512 >= fault.size * 0.99  # type: ignore[attr-defined]
    session.heal(fault)
    assert not fill.exists()


# ---------------------------------------------------------------------------------- API faults


def test_job_cancel(session: FaultSession, default_deployment: Lab) -> None:
    since = time.time()
    session.inject("job-cancel", dc="dc1", app="orders")
    assert default_deployment.job("dc1", "orders") is None or default_deployment.job("dc1", "orders")["status"] in (
        "canceled", "canceling")
    # DELETE answers at once; the job is gone once its PEs are
    wait_until(lambda: default_deployment.events("job_canceled", "dc1", since=since), 10, "the job canceled")
    session.heal_all()
    assert run_lab("reset").returncode == 0


def test_instance_stop_and_start(session: FaultSession, default_deployment: Lab) -> None:
    fault = session.inject("instance-stop", dc="dc1")
    instance = default_deployment.get(default_deployment.rest("dc1")).json()
    assert instance["status"] == "stopped"
    # the dead-man timer restarts it with streamtool on the host: no credentials were written there
    host = session.pool.get(ADDR["dc1"])
    assert host.run(f"grep -l 'streamtool startinstance' /run/xdc-lab/faults/{fault.id}@{ADDR['dc1']}.*").ok
    assert not host.run(f"ls /run/xdc-lab/faults/{fault.id}@{ADDR['dc1']}.curl").ok
    session.heal(fault)
    assert default_deployment.get(default_deployment.rest("dc1")).json()["status"] == "running"
    assert run_lab("reset").returncode == 0


def test_orderly_shutdown_reaches_the_toolkit(session: FaultSession, default_deployment: Lab) -> None:
    since = time.time()
    session.inject("orderly-shutdown", dc="dc1")
    assert default_deployment.events("orderly_shutdown_sent", "dc1", since=since)
    session.heal_all()
    assert run_lab("reset").returncode == 0


# ---------------------------------------------------------- the CLI, SIGKILLed: the dead-man heals


def test_sigkilled_partition_is_healed_by_the_dead_man(default_deployment: Lab) -> None:
    killed = start_and_kill(["faults", "inject", "partition", "--between", "dc1", "dc2", "--ttl", "5s"])
    assert connect_seconds("dc1", "dc2", 0.3) is None, "the partition should outlive the killed CLI"
    wait_until(lambda: connect_seconds("dc1", "dc2", 0.3) is not None and connect_seconds("dc2", "dc1", 0.3)
               is not None, 7.5, "dc1 and dc2 reconnected by the dead-man timer")
    assert time.monotonic() - killed < 7.0
    assert tagged_rules("dc1") == [] and tagged_rules("dc2") == []


def test_sigkilled_pe_hang_is_resumed_by_the_dead_man(default_deployment: Lab) -> None:
    pid = int(aggregator_pe(default_deployment)["processId"])
    killed = start_and_kill(["faults", "inject", "pe-hang", "--dc", "dc1", "--operator", "Aggregator",
                             "--ttl", "5s"])
    assert proc_state(pid) == "T"
    wait_until(lambda: proc_state(pid) in ("S", "R"), 7.5, "the PE running again")
    assert time.monotonic() - killed < 7.0


def test_sigkilled_cpu_exhaustion_is_stopped_by_the_dead_man(default_deployment: Lab) -> None:
    killed = start_and_kill(["faults", "inject", "cpu", "--dc", "dc1", "--ttl", "5s"])
    assert stress_in_dc("dc1")
    wait_until(lambda: not stress_in_dc("dc1"), 7.5, "stress-ng gone")
    assert time.monotonic() - killed < 7.0


def test_faults_list_and_clean(default_deployment: Lab) -> None:
    inject = subprocess.run(cli("faults", "inject", "partition", "--between", "dc1", "dc2", "--ttl", "60s",
                                "--detach"), cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert inject.returncode == 0, inject.stderr
    listed = subprocess.run(cli("faults", "list"), cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert listed.returncode == 0, listed.stderr
    assert len([line for line in listed.stdout.splitlines() if "partition (between" in line]) == 2, listed.stdout
    assert tagged_rules("dc1")
    cleaned = subprocess.run(cli("faults", "clean"), cwd=ROOT, capture_output=True, text=True, timeout=60,
                             check=False)
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert "CLEANED" not in cleaned.stdout and "fault" in cleaned.stdout
    assert tagged_rules("dc1") == [] and tagged_rules("dc2") == []
    assert connect_seconds("dc1", "dc2") is not None
    again = subprocess.run(cli("faults", "list"), cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert again.stdout.count("no faults active") == 2


def test_doctor_reports_every_host(lab: Lab) -> None:
    done = subprocess.run(cli("doctor"), cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    for host in ADDR.values():
        assert f"host {host}" in done.stdout
    assert "latency" in done.stdout and "from the controller" in done.stdout
