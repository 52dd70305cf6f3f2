"""``pe-crash-loop`` and ``clients-cut`` against the lab: each effect also checked from the lab's side (REST
documents, /proc, the namespaces' iptables), healed and proven healed, and reverted by the dead-man timer after
the CLI is SIGKILLed. A crash loop makes dc2 take over (the Aggregator's PE carries the Cross-DC composite):
the crash-loop tests run last and the module leaves the default deployment behind (one reset).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faultwire import fault_session
from labwire import ADDR, ROOT, Lab, run_lab, wait_until
from test_lab_faults import aggregator_pe, connect_seconds, proc_state, start_and_kill, tagged_rules

from support.faults.session import FaultSession

pytestmark = pytest.mark.lab

EXCHANGE = 9715
REST = 9714


@pytest.fixture(scope="module", autouse=True)
def leave_the_default_deployment(lab: Lab) -> Iterator[None]:
    yield
    assert run_lab("reset").returncode == 0


@pytest.fixture()
def session(default_deployment: Lab) -> Iterator[FaultSession]:
    with fault_session(ROOT / "config" / "lab.yaml", "lab crash loops and clients") as faults:
        yield faults


def answers(dc: str, port: int, limit: float = 0.5) -> bool:
    """A TCP connect from here (the controller's namespace) to ``dc``'s port is answered."""
    try:
        with socket.create_connection((ADDR[dc], port), timeout=limit):
            return True
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def tagged_processes() -> list[int]:
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if b"XDC_FAULT=xdc-fault:" in environ.read_bytes() and b"deadman" not in environ.read_bytes():
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


# ------------------------------------------------------------------------------------------ clients-cut


def test_clients_cut_drops_only_the_testers_exchange_traffic(session: FaultSession) -> None:
    fault = session.inject("clients-cut", dc="dc1", ttl=20)
    assert not answers("dc1", EXCHANGE) and answers("dc1", REST)
    assert answers("dc2", EXCHANGE), "only dc1 is cut off"
    assert connect_seconds("dc2", "dc1") is not None and connect_seconds("dc1", "dc2") is not None, \
        "the data centers still see each other"
    rules = tagged_rules("dc1")
    assert len(rules) == 1 and f"--dport {EXCHANGE}" in rules[0] and "-j DROP" in rules[0]
    session.heal(fault)
    assert answers("dc1", EXCHANGE) and tagged_rules("dc1") == []


def test_sigkilled_clients_cut_is_healed_by_the_dead_man(default_deployment: Lab) -> None:
    killed = start_and_kill(["faults", "inject", "clients-cut", "--dc", "dc1", "--ttl", "4s"])
    assert not answers("dc1", EXCHANGE, 0.3), "the cut should outlive the killed CLI"
    wait_until(lambda: answers("dc1", EXCHANGE, 0.3), 6.5, "dc1's exchange answering after the dead-man")
    assert time.monotonic() - killed < 6.0
    assert tagged_rules("dc1") == []


# ---------------------------------------------------------------------------------------- pe-crash-loop


def test_crash_loop_until_the_instance_gives_up_then_restartpe(session: FaultSession,
                                                               default_deployment: Lab) -> None:
    before = aggregator_pe(default_deployment)
    pid = int(before["processId"])
    fault = session.inject("pe-crash-loop", dc="dc1", operator="Aggregator", ttl=30)
    assert proc_state(pid) in ("gone", "Z")

    def gave_up() -> dict[str, Any] | None:
        pe = aggregator_pe(default_deployment)
        return pe if pe["status"] == "stopped" else None

    stopped = wait_until(gave_up, 15, "the instance gives up on the Aggregator's PE")
    # the running PE killed once (not a failed launch), then the lab's 5 launches in a row that never became ready
    assert stopped["statusReason"] == "failure" and stopped["launchCount"] == before["launchCount"] + 5
    assert stopped["processId"] == ""
    session.heal(fault)
    after = aggregator_pe(default_deployment)
    assert after["status"] == "running" and after["launchCount"] == before["launchCount"] + 6
    assert tagged_processes() == []


def test_sigkilled_crash_loop_is_reverted_by_the_dead_man(lab: Lab) -> None:
    """After the previous test dc2 runs orders too (it took over); dc1's job still runs, which is all this needs."""
    before = aggregator_pe(lab)
    killed = start_and_kill(["faults", "inject", "pe-crash-loop", "--dc", "dc1", "--operator", "Aggregator",
                             "--ttl", "5s"])
    assert tagged_processes(), "the crash loop should outlive the killed CLI"

    def running_again() -> dict[str, Any] | None:
        pe = aggregator_pe(lab)
        return pe if pe["status"] == "running" and pe["launchCount"] > before["launchCount"] + 1 else None

    wait_until(running_again, 9, "the Aggregator's PE running again after the dead-man")
    assert time.monotonic() - killed < 9.0
    assert tagged_processes() == []
