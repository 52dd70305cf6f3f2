"""The Cross-DC channel faults against the lab: heartbeat-cut and replication-cut injected, verified, healed and
verified healed over SSH, each effect also checked here from the lab's namespaces (which ports answer, which
rules are there), and the dead-man timer healing each after the `faults inject` CLI is SIGKILLed.

A heartbeat cut held for more than M+1 ticks makes dc2 take over; these tests do not depend on it either way
(a port that refuses still answers), and the module leaves the default deployment behind.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator

import pytest
from faultwire import fault_session, start_and_kill
from labwire import ADDR, ROOT, Lab, run_lab, wait_until

from support.faults.session import FaultSession

pytestmark = pytest.mark.lab

TAG = "xdc-fault"
HEARTBEAT = 25091  # datacenters.<dc>.crossdc.http_port of config/lab.yaml
SNAPSHOT = HEARTBEAT + 1  # numberOfHttpSenderReceiverPairs 1: one snapshot receiver


def answers(src: str, dst: str, port: int, limit: float = 0.5) -> bool:
    """A TCP connect from ``src``'s namespace to ``dst``'s ``port`` gets an answer (accept or refuse)."""
    done = subprocess.run(["ip", "netns", "exec", f"xdc-{src}", "timeout", str(limit), "bash", "-c",
                           f"exec 3<>/dev/tcp/{ADDR[dst]}/{port}"], capture_output=True, text=True, timeout=10,
                          check=False)
    return done.returncode == 0 or "refused" in done.stderr


def tagged_rules(dc: str) -> list[str]:
    saved = subprocess.run(["ip", "netns", "exec", f"xdc-{dc}", "iptables-save", "-t", "filter"],
                           capture_output=True, text=True, timeout=10, check=False)
    return [line for line in saved.stdout.splitlines() if TAG in line]


@pytest.fixture(scope="module", autouse=True)
def leave_the_default_deployment(lab: Lab) -> Iterator[None]:
    """A heartbeat cut that outlives detection makes dc2 take over: put the default deployment back if so."""
    yield
    if lab.job("dc2", "orders") or not lab.job("dc1", "orders"):
        assert run_lab("reset", "--failover-script", "restoring").returncode == 0


@pytest.fixture()
def session(lab: Lab) -> Iterator[FaultSession]:
    with fault_session(ROOT / "config" / "lab.yaml", "lab channel faults") as faults:
        yield faults


def test_heartbeat_cut_drops_only_heartbeats_both_ways(session: FaultSession) -> None:
    fault = session.inject("heartbeat-cut", between=("dc1", "dc2"))
    assert not answers("dc1", "dc2", HEARTBEAT) and not answers("dc2", "dc1", HEARTBEAT)
    assert answers("dc1", "dc2", SNAPSHOT) and answers("dc2", "dc1", SNAPSHOT)
    assert answers("dc1", "dc2", 22), "SSH (like any other traffic) still gets through"
    assert len(tagged_rules("dc1")) == 1 and len(tagged_rules("dc2")) == 1
    assert session.journal.events("fault.effective")[-1].fields["apply_s"] < 1.5
    session.heal(fault)
    assert answers("dc1", "dc2", HEARTBEAT) and answers("dc2", "dc1", HEARTBEAT)
    assert tagged_rules("dc1") == [] and tagged_rules("dc2") == []


def test_replication_cut_drops_only_snapshots_to_the_target(session: FaultSession) -> None:
    fault = session.inject("replication-cut", between=("dc1", "dc2"))
    assert not answers("dc1", "dc2", SNAPSHOT)
    assert answers("dc1", "dc2", HEARTBEAT), "heartbeats keep flowing"
    assert answers("dc2", "dc1", SNAPSHOT), "the other direction is untouched"
    assert tagged_rules("dc1") == [] and len(tagged_rules("dc2")) == 1
    session.heal(fault)
    assert answers("dc1", "dc2", SNAPSHOT) and tagged_rules("dc2") == []


@pytest.mark.parametrize(("kind", "cut"), [("heartbeat-cut", HEARTBEAT), ("replication-cut", SNAPSHOT)])
def test_sigkilled_channel_cut_is_healed_by_the_dead_man(lab: Lab, kind: str, cut: int) -> None:
    killed = start_and_kill(["faults", "inject", kind, "--between", "dc1", "dc2", "--ttl", "3s"])
    assert not answers("dc1", "dc2", cut, 0.3), f"the {kind} should outlive the killed CLI"
    wait_until(lambda: answers("dc1", "dc2", cut, 0.3) and answers("dc2", "dc1", cut, 0.3), 5.0,
               f"port {cut} answering again after the dead-man timer")
    assert time.monotonic() - killed < 5.0
    assert tagged_rules("dc1") == [] and tagged_rules("dc2") == []
