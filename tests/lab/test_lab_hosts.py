"""Real-host SSH against the lab: faults injected and healed as the non-root fault user (`sudo -n`) through the
bastion, with the DC hosts' port 22 closed to the controller (`lab up --bastion`); the dead-man timer under
sudo; doctor through the bastion. The module switches bastion mode off again (`lab up`) when it ends."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faultwire import fault_session
from labwire import ADDR, ROOT, Lab, run_lab, wait_until

from support.faults.session import FaultSession

pytestmark = pytest.mark.lab

CONFIG = ROOT / "config" / "lab-bastion.yaml"
BASTION = "198.18.3.10"
TAG = "xdc-fault"


def ns(dc: str, *cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", f"xdc-{dc}", *cmd], capture_output=True, text=True, timeout=10,
                          check=False)


def crossdc_answers(src: str, dst: str, limit: float = 0.5) -> bool:
    done = ns(src, "timeout", str(limit), "bash", "-c", f"exec 3<>/dev/tcp/{ADDR[dst]}/25091")
    return done.returncode == 0 or "refused" in done.stderr


def tagged_rules(dc: str) -> list[str]:
    return [line for line in ns(dc, "iptables-save", "-t", "filter").stdout.splitlines() if TAG in line]


def proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "support.cli", *args]


@pytest.fixture(scope="module", autouse=True)
def bastion_mode(lab: Lab) -> Iterator[None]:
    up = run_lab("up", "--bastion")
    assert up.returncode == 0, up.stdout + up.stderr
    yield
    back = run_lab("up")
    assert back.returncode == 0 and "bastion mode off" in back.stdout, back.stdout + back.stderr
    assert run_lab("reset").returncode == 0  # a partition can make dc2 take over


@pytest.fixture()
def session(default_deployment: Lab) -> Iterator[FaultSession]:
    with fault_session(CONFIG, "lab faults through the bastion") as faults:
        yield faults


def test_bastion_mode_closes_port_22_to_the_controller(lab: Lab) -> None:
    for addr in ADDR.values():
        with pytest.raises(ConnectionRefusedError):  # tcp-reset from the DC namespace's rule
            socket.create_connection((addr, 22), timeout=2).close()
    socket.create_connection((BASTION, 22), timeout=2).close()
    status = run_lab("status", "--json")
    doc = json.loads(status.stdout)
    assert doc["bastion"]["mode"] is True and doc["bastion"]["rules"] == {"dc1": True, "dc2": True}
    assert doc["components"]["bastion-sshd"]["health"] == "ok"
    assert doc["components"]["dc1-sshd"]["health"] == "ok"  # checked through the bastion
    assert "ssh: bastion mode ON" in run_lab("status").stdout


def test_the_fault_user_runs_scripts_as_root_through_sudo(session: FaultSession) -> None:
    executor = session.pool.get(ADDR["dc1"])
    assert executor.describe() == f"xdcfault@{ADDR['dc1']}:22 via bastion xdcfault@{BASTION}:22"
    result = executor.run('echo "$(id -un) $SUDO_USER ${SSH_CONNECTION%% *}"')
    assert result.stdout.split() == ["root", "xdcfault", BASTION]


def test_partition_through_the_bastion_as_the_fault_user(session: FaultSession) -> None:
    assert crossdc_answers("dc1", "dc2")
    fault = session.inject("partition", between=("dc1", "dc2"))
    assert not crossdc_answers("dc1", "dc2") and not crossdc_answers("dc2", "dc1")
    assert len(tagged_rules("dc1")) == 1 and len(tagged_rules("dc2")) == 1
    session.heal(fault)
    assert crossdc_answers("dc1", "dc2") and crossdc_answers("dc2", "dc1")
    assert tagged_rules("dc1") == [] and tagged_rules("dc2") == []


def test_pe_kill_through_the_bastion_as_the_fault_user(session: FaultSession, default_deployment: Lab) -> None:
    def aggregator() -> dict[str, Any]:
        job = default_deployment.job("dc1", "orders")
        assert job is not None
        pes = default_deployment.get(f"{default_deployment.rest('dc1')}/pes",
                                     params={"job.restid": job["id"]}).json()["pes"]
        return dict(next(p for p in pes if p["indexWithinJob"] == 1))

    before = aggregator()
    fault = session.inject("pe-kill", dc="dc1", operator="Aggregator")
    assert proc_state(int(before["processId"])) in ("gone", "Z")
    session.heal(fault)
    after = aggregator()
    assert after["status"] == "running" and after["launchCount"] == before["launchCount"] + 1


def test_the_dead_man_heals_a_partition_under_sudo(default_deployment: Lab) -> None:
    proc = subprocess.Popen(cli("faults", "inject", "--config", str(CONFIG), "partition", "--between", "dc1", "dc2",
                                "--ttl", "4s"), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if ": effective after " in line:
                break
        else:
            pytest.fail(f"the CLI ended before the fault was effective: {proc.stderr.read() if proc.stderr else ''}")
        killed = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert not crossdc_answers("dc1", "dc2", 0.3), "the partition should outlive the killed CLI"
    wait_until(lambda: crossdc_answers("dc1", "dc2", 0.3) and crossdc_answers("dc2", "dc1", 0.3), 6.5,
               "dc1 and dc2 reconnected by the dead-man timer (run as root through sudo)")
    assert time.monotonic() - killed < 6.0
    assert tagged_rules("dc1") == [] and tagged_rules("dc2") == []


def test_doctor_through_the_bastion(lab: Lab) -> None:
    done = subprocess.run(cli("doctor", "--config", str(CONFIG)), cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for addr in ADDR.values():
        assert f"connected as xdcfault@{addr}:22 via bastion" in out  # the table cuts details at 70 characters
    assert out.count(f"through xdcfault@{BASTION}:22") == 2
    assert out.count("root rights: via ssh.sudo `sudo -n`") == 2
    assert out.count("cgroup         yes  hybrid: v1 cpu memory") == 2  # this machine: v1 controllers + v2
