"""The dead-man timer and the sweep, run for real in a throwaway network namespace (root only), and the
session's order of events (heal registered before injecting, timing, idempotent heal) with fakes."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import pytest
from faultfakes import NetnsExecutor, fake_context, is_root, lab_shaped_config, private_netns

from support.faults.base import Fault, FaultContext, Verified, now
from support.faults.executor import Result, run_on_hosts
from support.faults.guard import arm_script, audit_script, heal_script, qdisc_major, sweep_script
from support.faults.probe import Capabilities, parse_probe_output, skip_reason
from support.faults.session import KINDS, FaultSession
from support.orchestration import CleanupStack, Journal

needs_root = pytest.mark.skipif(not is_root(), reason="needs root (network namespaces, iptables)")
TAG = "xdc-ut"
RULE = f'iptables -w -A INPUT -s 192.0.2.1 -m comment --comment "{TAG}:cafe0001" -j DROP\n'


def rules(executor: NetnsExecutor) -> str:
    return executor.run("iptables-save -t filter").stdout


@needs_root
def test_dead_man_reverts_on_the_target_without_the_tester() -> None:
    with private_netns() as ns:
        host = NetnsExecutor("198.18.1.10", ns)
        key = "cafe0001@198.18.1.10"
        revert = f"__r=$(iptables-save -t filter | grep -F -- '{TAG}:cafe0001' | sed 's/^-A /-D /')\n" \
                 "printf '*filter\\n%s\\nCOMMIT\\n' \"$__r\" | iptables-restore -w -n\n"
        armed = host.run(arm_script(TAG, key, "partition", 1.0, revert) + RULE)
        assert armed.ok, armed.stderr
        assert f"{TAG}:cafe0001" in rules(host)
        deadline = time.monotonic() + 5
        while f"{TAG}:cafe0001" in rules(host):  # nobody heals: the timer on the target must
            assert time.monotonic() < deadline, "the dead-man timer did not revert within 5 s"
            time.sleep(0.05)
        assert host.run(audit_script(TAG, "198.18.1.10", [])).stdout.strip() == ""


@needs_root
def test_heal_stops_the_timer_and_sweep_finds_what_a_crash_left() -> None:
    with private_netns() as ns:
        host = NetnsExecutor("198.18.1.10", ns)
        key = "cafe0002@198.18.1.10"
        revert = f"iptables -w -D INPUT -s 192.0.2.1 -m comment --comment {TAG}:cafe0002 -j DROP\n"
        rule = RULE.replace("cafe0001", "cafe0002")
        assert host.run(arm_script(TAG, key, "partition", 60.0, revert) + rule).ok
        residue = host.run(audit_script(TAG, "198.18.1.10", [])).stdout
        assert "RESIDUE iptables" in residue and "RESIDUE process" in residue and "RESIDUE file" in residue
        assert host.run(heal_script(TAG, key, revert)).ok
        assert host.run(audit_script(TAG, "198.18.1.10", [])).stdout.strip() == ""
        # a crashed tester: rules and a timer left behind, then `faults clean`
        assert host.run(arm_script(TAG, "cafe0003@198.18.1.10", "partition", 60.0, "true\n")
                        + RULE.replace("cafe0001", "cafe0003")).ok
        assert host.run("iptables -w -A OUTPUT -d 192.0.2.9 -m comment --comment "
                        f"{TAG}:orphan -j DROP").ok
        swept = host.run(sweep_script(TAG, "198.18.1.10", []))
        assert "CLEANED fault cafe0003@198.18.1.10 (partition)" in swept.stdout
        assert "CLEANED 2 iptables rule(s)" in swept.stdout
        assert host.run(audit_script(TAG, "198.18.1.10", [])).stdout.strip() == ""
        assert TAG not in rules(host)


@needs_root
def test_sweep_removes_tagged_qdiscs_and_fill_files(tmp_path: Path) -> None:
    with private_netns() as ns:
        host = NetnsExecutor("198.18.1.10", ns)
        major = qdisc_major(TAG)
        assert host.run(f"tc qdisc add dev lo root handle {major}: htb default 1").ok
        fill = tmp_path / f".{TAG}-fill-cafe0004"
        fill.write_bytes(b"x" * 1024)
        audit = host.run(audit_script(TAG, "198.18.1.10", [str(tmp_path)])).stdout
        assert f"RESIDUE tc qdisc htb {major}:" in audit and f"RESIDUE file {fill}" in audit
        swept = host.run(sweep_script(TAG, "198.18.1.10", [str(tmp_path)])).stdout
        assert "CLEANED qdisc on lo" in swept and f"CLEANED file {fill}" in swept
        assert not fill.exists()


class ToyFault(Fault):
    """A fault whose effect is a flag; verification takes ``probes_needed`` looks."""

    kind = "toy"

    def __init__(self, ctx: FaultContext, probes_needed: int = 1) -> None:
        super().__init__(ctx)
        self.events: list[str] = []
        self.active = False
        self.probes_needed = probes_needed

    def describe(self) -> dict[str, Any]:
        return {"dc": "dc1"}

    def hosts(self) -> list[str]:
        return []

    def inject_scripts(self) -> dict[str, str]:
        return {}

    def inject(self) -> None:
        self.events.append("inject")
        self.active = True

    def verify(self, timeout: float) -> Verified:
        self.events.append("verify")
        time.sleep(0.01)
        return Verified(now(), self.probes_needed, "toy active")

    def heal(self) -> None:
        self.events.append("heal")
        self.active = False

    def verify_healed(self, timeout: float) -> Verified:
        return Verified(now(), 1, "toy gone")


def session_with(tmp_path: Path, fault: ToyFault) -> FaultSession:
    session = FaultSession(lab_shaped_config(tmp_path), Journal(None), CleanupStack(), {}, probe=None)
    session.make = lambda kind, **params: fault  # type: ignore[method-assign]
    return session


def test_heal_is_on_the_cleanup_stack_before_the_fault_exists(tmp_path: Path) -> None:
    fault = ToyFault(fake_context(lab_shaped_config(tmp_path)))
    session = session_with(tmp_path, fault)
    original = fault.inject

    def inject() -> None:
        assert len(session.cleanup) == 1, "the heal must be registered before injecting"
        original()

    fault.inject = inject  # type: ignore[method-assign]
    session.inject("toy")
    assert session.cleanup.run_all() == []
    assert fault.events == ["inject", "verify", "heal"] and not fault.active
    session.heal(fault)  # idempotent
    assert fault.events.count("heal") == 1
    names = [e.event for e in session.journal.events()]
    assert names == ["fault.injected", "fault.effective", "fault.heal_started", "fault.healed"]


def test_effective_is_the_command_return_when_the_first_look_proves_it(tmp_path: Path) -> None:
    fault = ToyFault(fake_context(lab_shaped_config(tmp_path)), probes_needed=1)
    session = session_with(tmp_path, fault)
    session.inject("toy")
    injected, effective = session.journal.events()[:2]
    assert effective.mono - injected.mono < 0.009  # the return of inject, not the end of the 10 ms verify
    assert effective.fields["apply_s"] >= 0.01


def test_effective_is_the_verification_instant_when_it_took_several_looks(tmp_path: Path) -> None:
    fault = ToyFault(fake_context(lab_shaped_config(tmp_path)), probes_needed=3)
    session = session_with(tmp_path, fault)
    session.inject("toy")
    injected, effective = session.journal.events()[:2]
    assert effective.mono - injected.mono >= 0.01


def test_a_duration_heals_by_itself_and_is_bounded_by_the_ttl(tmp_path: Path) -> None:
    fault = ToyFault(fake_context(lab_shaped_config(tmp_path)))
    session = session_with(tmp_path, fault)
    session.inject("toy", duration=0.2)
    assert fault.ttl == pytest.approx(2.2)  # the dead-man outlives the duration by the grace
    deadline = time.monotonic() + 3
    while fault.active:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with pytest.raises(AssertionError, match="longer than the fault TTL"):
        session.inject("toy", duration=10_000)
    session.close()


def test_audit_reports_residue_per_host(tmp_path: Path) -> None:
    config = lab_shaped_config(tmp_path)

    def answer(script: str) -> Result:
        return Result("198.18.1.10", 0, "RESIDUE iptables -A INPUT -s 198.18.2.10/32 ... xdc-fault:ab\n", "", 0)

    ctx = fake_context(config, answer=answer)
    session = FaultSession(config, Journal(None), CleanupStack(), {}, pool=ctx.executors, probe=None)
    assert session.audit() == []  # no host touched: nothing to audit
    run_on_hosts(ctx.executors, {"198.18.1.10": "true"}, what="touch")
    assert session.audit() == ["dc1 198.18.1.10: iptables -A INPUT -s 198.18.2.10/32 ... xdc-fault:ab"]


def test_capabilities_and_requires_tags() -> None:
    caps = parse_probe_output("h", "CAP iptables yes v1.8\nCAP netem no Error: Specified qdisc kind is unknown.\n"
                              "CAP nfqueue yes xt_NFQUEUE\nCAP delayer yes python3\n")
    assert caps.has("ssh") and caps.has("latency") and not caps.has("netem")
    assert caps.missing(["iptables", "netem"]) == "netem: no (Error: Specified qdisc kind is unknown.)"
    no_queue = Capabilities("h", {"delayer": (True, "python3"), "nfqueue": (False, "no xt_NFQUEUE")})
    assert not no_queue.has("delayer") and not no_queue.has("latency")
    lookup = {"netem": "h: netem: no", "iptables": None}
    assert skip_reason(["smoke", "requires.iptables"], lookup.get) is None
    assert skip_reason(["requires.netem"], lookup.get) == "requires netem: h: netem: no"


def test_every_published_kind_is_registered() -> None:
    assert set(KINDS) == {"partition", "isolate", "latency", "loss", "bandwidth", "pe-kill", "pe-hang", "cpu",
                          "memory", "disk", "job-cancel", "instance-stop", "orderly-shutdown", "heartbeat-cut",
                          "replication-cut", "pe-crash-loop", "clients-cut", "dark", "snapshots-lost",
                          "snapshots-corrupted"}
    assert io.StringIO  # (keeps the import list honest for the dry-run tests in test_faults_safety)


def test_the_unit_tests_fault_tag_is_not_the_labs(tmp_path: Path) -> None:
    """The unit tests run beside the lab tests: a dead-man timer a unit test arms for real names a lab host, and under
    the lab's tag the lab's residue audit reported it as the lab run's residue (CI failed so once)."""
    import yaml
    from faultfakes import PROJECT, UNIT_TAG

    lab_tag = yaml.safe_load((PROJECT / "config" / "lab.yaml").read_text())["faults"]["tag"]
    assert lab_shaped_config(tmp_path).settings.faults.tag == UNIT_TAG != lab_tag
    assert not lab_tag.startswith(UNIT_TAG) and not UNIT_TAG.startswith(lab_tag)
