"""The ``dark`` fault without the lab: what it would run (dry run), what it finds before the fault (PEs, their
parents, the standby stub), and its inject and revert scripts run for real in a private network namespace
against a parent that relaunches its child, as an instance relaunches a PE."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from faultfakes import NetnsExecutor, fake_context, is_root, lab_shaped_config, private_netns

from support.faults.base import FaultContext, FaultError
from support.faults.dark import Dark, Proc
from support.faults.executor import ExecutorPool, Result, run_on_hosts
from support.faults.session import KINDS, make_fault

DC1, DC2 = "198.18.1.10", "198.18.2.10"
needs_root = pytest.mark.skipif(not is_root(), reason="needs root (network namespaces, iptables, signals)")


@pytest.fixture
def ctx(tmp_path: Path) -> FaultContext:
    return fake_context(lab_shaped_config(tmp_path))


def test_dark_is_a_kind_with_a_dead_man_on_the_dcs_hosts_only(ctx: FaultContext) -> None:
    assert KINDS["dark"] is Dark
    fault = make_fault(ctx, "dark", dc="dc1")
    assert fault.reversible and fault.describe() == {"dc": "dc1"}
    armed = fault.armed_scripts()
    assert set(armed) == {DC1}  # dc2's host only probes
    assert set(fault.hosts()) == {DC1, DC2}
    script = armed[DC1]
    # the dead-man first, then the network cut, the parents frozen, then one kill for every process
    order = [script.index(part) for part in ("setsid sh -c 'sleep", "iptables-restore", "kill -STOP $__stop",
                                             "kill -KILL $__kill")]
    assert order == sorted(order)
    assert f'--comment "xdc-ut:{fault.id}" -j DROP' in script and "${SSH_CONNECTION%% *}" in script
    assert "${PE_PARENTS}" in script and "${PE_PIDS} ${STANDBY_STUB_PID}" in script


def test_revert_deletes_the_rules_before_the_parents_continue(ctx: FaultContext) -> None:
    fault = make_fault(ctx, "dark", dc="dc1")
    heal = fault.heal_scripts()[DC1]
    assert heal.index("iptables-save") < heal.index("kill -CONT") < heal.index(f"rm -f /run/xdc-lab/faults/{fault.id}@")


def test_dry_run_plan_names_the_phases(ctx: FaultContext) -> None:
    fault = make_fault(ctx, "dark", dc="dc2")
    phases = {(phase, host) for phase, host, _ in fault.commands()}
    assert ("inject", DC2) in phases and ("heal", DC2) in phases and ("verify", DC1) in phases
    assert "found through REST and ss" in fault.sizing()[0]


class FakeRest:
    """Two jobs' PEs in dc1 as REST lists them (the undeclared job is never asked for)."""

    def __init__(self) -> None:
        self.jobs = {"orders": {"id": "7"}}

    def find_job(self, name: str) -> dict[str, Any] | None:
        return self.jobs.get(name)

    def pes(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"id": "1", "processId": "101", "launchCount": 1, "host": "h"},
                {"id": "2", "processId": "102", "launchCount": 1, "host": "h"},
                {"id": "3", "processId": "", "status": "restarting", "launchCount": 2, "host": "h"}]

    def get(self, link: str) -> dict[str, Any]:
        return {"ipAddress": DC1}


def test_prepare_finds_the_pes_their_parent_and_the_stub(tmp_path: Path) -> None:
    def answer(script: str) -> Result:
        if "ss -Hltnp" not in script:
            return Result(DC1, 0, "", "", 0.0)
        out = ("PE 101 S 50 9001\nPARENT 50 S 1 4000 python3\n"
               "PE 102 S 50 9002\nPARENT 50 S 1 4000 python3\n"
               "LISTENER 101 S 50 9001\n"   # the application's own heartbeat port: a PE
               "LISTENER 50 S 1 4000\n"     # held by the instance itself
               "LISTENER 300 S 1 7000\n")   # a process nobody relaunches: the standby stub
        return Result(DC1, 0, out, "", 0.0)

    ctx = fake_context(lab_shaped_config(tmp_path), answer=answer, rest={"dc1": FakeRest()})
    fault = make_fault(ctx, "dark", dc="dc1")
    assert isinstance(fault, Dark)
    fault.cut.prepare = lambda: None  # type: ignore[method-assign]  # baseline probes: the lab tests run them
    fault.prepare()
    assert [(p.pid, p.starttime, p.what) for p in fault.killed] == [
        (101, "9001", "PE 1 of orders"), (102, "9002", "PE 2 of orders"), (300, "7000", "standby stub")]
    assert [(p.pid, p.starttime) for p in fault.frozen] == [(50, "4000")]
    assert fault.describe() == {"dc": "dc1", "pes": 2, "stub": 300, "frozen": [50]}
    assert fault.frozen_pids() == {DC1: [50]}
    script = fault.inject_scripts()[DC1]
    assert "= 4000 ] && __stop=\"$__stop 50\"" in script and "= 7000 ] && __kill=\"$__kill 300\"" in script
    assert "/proc/50/stat" in fault.revert_scripts()[DC1] and "kill -CONT 50" in fault.revert_scripts()[DC1]
    assert "stopped_pids" in fault.meta() and fault.meta()["stopped_pids"] == "50"


def test_a_pe_that_ended_since_rest_listed_it_is_skipped(tmp_path: Path) -> None:
    outputs = {"some": "PE 101 S 50 9001\nPARENT 50 S 1 4000 python3\nPE 102 \n", "none": "PE 101 \nPE 102 \n"}
    for case, out in outputs.items():
        def answer(script: str, out: str = out) -> Result:
            return Result(DC1, 0, out if "ss -Hltnp" in script else "", "", 0.0)

        ctx = fake_context(lab_shaped_config(tmp_path), answer=answer, rest={"dc1": FakeRest()})
        fault = make_fault(ctx, "dark", dc="dc1")
        assert isinstance(fault, Dark)
        fault.cut.prepare = lambda: None  # type: ignore[method-assign]
        if case == "some":
            fault.prepare()
            assert [p.pid for p in fault.killed] == [101] and [p.pid for p in fault.frozen] == [50]
        else:
            with pytest.raises(FaultError, match="cannot find what relaunches the PEs of dc1"):
                fault.prepare()


RELAUNCHER = """
import subprocess, sys
while True:
    child = subprocess.Popen(["sleep", "120"])
    print(child.pid, flush=True)
    child.wait()
"""


def _start(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


@needs_root
def test_inject_and_revert_for_real(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parent is frozen before its child is killed (so it cannot relaunch it), the rules cut everything but
    the SSH session; the revert deletes the rules, the parent continues and relaunches its child."""
    monkeypatch.setenv("SSH_CONNECTION", "192.0.2.7 40000 198.18.1.10 22")
    config = lab_shaped_config(tmp_path, f"faults.state_dir={tmp_path / 'faults'}")
    parent = subprocess.Popen([sys.executable, "-c", RELAUNCHER], stdout=subprocess.PIPE, text=True)
    children: list[int] = []
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        children.append(child)
        with private_netns() as ns:
            base = fake_context(config)
            pool = ExecutorPool(base.topology, base.allowlist, factory=lambda host: NetnsExecutor(host, ns))
            ctx = FaultContext(base.topology, base.settings, pool, base.allowlist, {})
            fault = Dark(ctx, "dc1")
            fault.killed = [Proc(DC1, child, _start(child), "PE 1 of orders")]
            fault.frozen = [Proc(DC1, parent.pid, _start(parent.pid), "the PEs' parent (python3)")]
            fault.prepared = True
            fault.ttl = 30.0
            done = run_on_hosts(pool, fault.armed_scripts(), what="inject dark")
            assert f"DARK stopped: {parent.pid} killed: {child}" in done[DC1].stdout
            assert _state(parent.pid) == "T" and _state(child) in ("Z", "gone")
            states = fault._states()
            assert states[(DC1, parent.pid)] == "T" and states[(DC1, child)] in ("Z", "gone")
            rules = pool.get(DC1).run("iptables-save -t filter").stdout
            assert rules.count(f"xdc-ut:{fault.id}") == 8 and "-s 192.0.2.7/32 -p tcp -m tcp --dport 22 " in rules
            fault.heal()
            assert f"xdc-ut:{fault.id}" not in pool.get(DC1).run("iptables-save -t filter").stdout
            relaunched = int(parent.stdout.readline())  # the parent continued, reaped its child, relaunched it
            children.append(relaunched)
            assert relaunched != child and _state(parent.pid) in ("S", "R")
            assert not list((tmp_path / "faults").glob(f"{fault.id}@*"))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(parent.pid, signal.SIGCONT)
        parent.kill()
        parent.wait()
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_the_residue_audit_watches_the_frozen_parents(tmp_path: Path) -> None:
    from support.faults.session import FaultSession
    from support.orchestration import CleanupStack, Journal

    config = lab_shaped_config(tmp_path)
    log: list[tuple[str, str]] = []
    ctx = fake_context(config, log=log)
    session = FaultSession(config, Journal(None), CleanupStack(), {}, pool=ctx.executors, probe=None)
    fault = Dark(session.ctx, "dc1")
    fault.frozen = [Proc(DC1, 50, "4000", "the PEs' parent (python3)")]
    session.faults.append(fault)
    run_on_hosts(ctx.executors, {DC1: "true"}, what="touch")
    assert session.audit() == []
    audit = [script for host, script in log if host == DC1 and "RESIDUE" in script][-1]
    assert "/proc/50/stat" in audit and 'echo "RESIDUE stopped process 50"' in audit
