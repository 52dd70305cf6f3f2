"""The ``dark`` fault against the lab: a data center goes dark as in a power loss and comes back.

Checked from the lab's side (its namespaces, /proc, state.json, the truth log): the PEs' processes are killed,
the instance that would relaunch them is frozen (its REST API hangs), nothing answers across the DCs or from the
controller; healed, the instance continues, notices its dead PEs and relaunches them (launchCount + 1, as after
a host failure). The dead-man timer brings the data center back after the CLI is SIGKILLed; ``faults clean``
sweeps a detached one.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from faultwire import fault_session
from labwire import ADDR, LAB_DIR, ROOT, Lab, run_lab, wait_until
from test_lab_faults import connect_seconds, proc_state, start_and_kill, tagged_rules

from support.faults.session import FaultSession

pytestmark = pytest.mark.lab


def instance_pid(dc: str) -> int:
    return int(json.loads((LAB_DIR / "state.json").read_text())["processes"][f"{dc}-instance"]["pid"])


def lab_damage() -> list[str]:
    """What makes `lab reset` say "not up": recorded processes that ended, namespaces that are gone."""
    state = json.loads((LAB_DIR / "state.json").read_text())
    damage = [f"state.json up={state.get('up')}"] if not state.get("up") else []
    for name, info in state.get("processes", {}).items():
        try:
            fields = Path(f"/proc/{info['pid']}/stat").read_text().rsplit(")", 1)[1].split()
            if fields[0] == "Z" or int(fields[19]) != int(info["starttime"]):
                damage.append(f"{name} ({info['pid']}) ended")
        except OSError:
            damage.append(f"{name} ({info['pid']}) gone")
    for ns in ("xdc-wan", "xdc-dc1", "xdc-dc2", "xdc-bastion"):
        if not Path(f"/run/netns/{ns}").exists():
            damage.append(f"netns {ns} gone")
    return damage


def reset() -> None:
    done = run_lab("reset")
    assert done.returncode == 0, f"{done.stderr.strip()} {lab_damage()}"


def orders_pes(lab: Lab, dc: str = "dc1") -> list[dict[str, Any]]:
    job = lab.job(dc, "orders")
    assert job is not None, f"no orders job in {dc}"
    return list(lab.get(f"{lab.rest(dc)}/pes", params={"job.restid": job["id"]}).json()["pes"])


def listeners(dc: str) -> list[int]:
    """PIDs holding the DC's crossdc heartbeat port."""
    out = subprocess.run(["ip", "netns", "exec", f"xdc-{dc}", "ss", "-Hltnp", "sport = :25091"], capture_output=True,
                         text=True, timeout=10, check=False).stdout
    return sorted({int(pid) for pid in re.findall(r"pid=(\d+)", out)})


def rest_answers(lab: Lab, dc: str, timeout: float = 0.5) -> bool:
    try:
        lab.get(lab.rest(dc), timeout=timeout)
        return True
    except requests.RequestException:
        return False


@pytest.fixture(scope="module", autouse=True)
def leave_the_default_deployment(lab: Lab) -> Iterator[None]:
    """A dark dc1 makes dc2 take over once detection runs out; a dark dc2 kills its stub: later files get the
    default deployment back."""
    yield
    reset()


@pytest.fixture()
def session(default_deployment: Lab) -> Iterator[FaultSession]:
    with fault_session(ROOT / "config" / "lab.yaml", "lab dark") as faults:
        yield faults


def test_dark_standby_loses_its_stub(session: FaultSession, default_deployment: Lab) -> None:
    # the stub holding dc2's heartbeat port (the lab's, or one a tester started over SSH: the fault finds it by
    # the port, as the tester does)
    holders = listeners("dc2")
    assert len(holders) == 1, holders
    fault = session.inject("dark", dc="dc2")
    assert fault.describe()["stub"] == holders[0] and fault.describe()["pes"] == 0
    assert proc_state(holders[0]) in ("gone", "Z")
    # no PE runs in dc2: nothing to freeze; the cut network keeps its REST API from answering
    assert fault.describe()["frozen"] == [] and proc_state(instance_pid("dc2")) in ("S", "R")
    assert not rest_answers(default_deployment, "dc2")
    session.heal(fault)
    assert listeners("dc2") == []  # nothing restarts the stub: "comes back" starts a new one
    assert rest_answers(default_deployment, "dc2", 5)
    reset()


def test_dark_kills_the_pes_freezes_the_instance_and_cuts_the_network(session: FaultSession,
                                                                      default_deployment: Lab) -> None:
    lab = default_deployment
    before = {pe["id"]: pe for pe in orders_pes(lab)}
    pids = [int(pe["processId"]) for pe in before.values()]
    instance = instance_pid("dc1")
    since = time.time()
    fault = session.inject("dark", dc="dc1")
    assert all(proc_state(pid) in ("gone", "Z") for pid in pids)
    assert proc_state(instance) == "T"
    assert connect_seconds("dc2", "dc1", 0.3) is None and connect_seconds("dc1", "dc2", 0.3) is None
    assert not rest_answers(lab, "dc1")
    assert tagged_rules("dc1") and not tagged_rules("dc2")

    session.heal(fault)
    assert proc_state(instance) in ("S", "R")
    assert tagged_rules("dc1") == []
    # the instance finds its PEs dead and relaunches each of them, as Streams does after a host failure
    after = wait_until(lambda: (lambda pes: pes if all(p["status"] == "running" for p in pes) else None)(
        orders_pes(lab)), 10, "every PE of orders in dc1 running again")
    for pe in after:
        assert pe["launchCount"] == before[pe["id"]]["launchCount"] + 1
        assert int(pe["processId"]) not in pids
    crashed = {e["pe_id"] for e in lab.events("pe_crashed", "dc1", since=since)}
    assert crashed == set(before)
    assert lab_damage() == []
    reset()  # dc2's stub may be taking over right now (detection ends ~3.6 s after the fault)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "support.cli", *args]


def test_sigkilled_dark_is_brought_back_by_the_dead_man(default_deployment: Lab) -> None:
    instance = instance_pid("dc1")
    killed = start_and_kill(["faults", "inject", "dark", "--dc", "dc1", "--ttl", "5s"])
    assert proc_state(instance) == "T", "the dark data center should outlive the killed CLI"
    assert not rest_answers(default_deployment, "dc1", 0.3)
    wait_until(lambda: proc_state(instance) in ("S", "R") and connect_seconds("dc2", "dc1", 0.3) is not None
               and rest_answers(default_deployment, "dc1"), 7.5, "dc1 back by the dead-man timer")
    assert time.monotonic() - killed < 7.0
    assert tagged_rules("dc1") == []


def test_faults_clean_brings_a_detached_dark_dc_back(default_deployment: Lab) -> None:
    instance = instance_pid("dc1")
    inject = subprocess.run(cli("faults", "inject", "dark", "--dc", "dc1", "--ttl", "60s", "--detach"), cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    assert inject.returncode == 0, inject.stderr
    assert proc_state(instance) == "T"
    meta = list(Path("/run/xdc-lab/faults").glob(f"*@{ADDR['dc1']}.meta"))
    assert meta and "kind=dark" in meta[0].read_text()
    cleaned = subprocess.run(cli("faults", "clean"), cwd=ROOT, capture_output=True, text=True, timeout=60,
                             check=False)
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert "(dark)" in cleaned.stdout, cleaned.stdout
    assert proc_state(instance) in ("S", "R") and tagged_rules("dc1") == []
    wait_until(lambda: rest_answers(default_deployment, "dc1"), 5, "dc1's REST answering again")
