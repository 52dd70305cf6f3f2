"""What each fault kind would run, where: rules tagged, the right hosts, the dead-man armed first."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from faultfakes import fake_context, lab_shaped_config

from support.faults.base import Fault, FaultError
from support.faults.guard import qdisc_major
from support.faults.session import make_fault

DC1, DC2 = "198.18.1.10", "198.18.2.10"


@pytest.fixture
def ctx(tmp_path: Path):  # type: ignore[no-untyped-def]
    return fake_context(lab_shaped_config(tmp_path))


def scripts(fault: Fault) -> dict[str, str]:
    return fault.armed_scripts()


def test_partition_drops_on_arrival_both_ways_with_tagged_rules(ctx) -> None:  # type: ignore[no-untyped-def]
    fault = make_fault(ctx, "partition", between=("dc1", "dc2"))
    armed = scripts(fault)
    assert set(armed) == {DC1, DC2}
    assert f'-I INPUT 1 -s {DC2} -m comment --comment "xdc-ut:{fault.id}" -j DROP' in armed[DC1]
    assert f'-I INPUT 1 -s {DC1} -m comment --comment "xdc-ut:{fault.id}" -j DROP' in armed[DC2]
    assert "OUTPUT" not in armed[DC1]


def test_one_way_partition_only_touches_the_receiver(ctx) -> None:  # type: ignore[no-untyped-def]
    fault = make_fault(ctx, "partition", between=("dc1", "dc2"), one_way=True)
    armed = scripts(fault)
    assert set(armed) == {DC2}
    assert f"-s {DC1} " in armed[DC2]


def test_dead_man_is_armed_before_the_fault_is_applied(ctx) -> None:  # type: ignore[no-untyped-def]
    fault = make_fault(ctx, "partition", between=("dc1", "dc2"))
    fault.ttl = 42.0
    script = scripts(fault)[DC1]
    timer = script.index("setsid sh -c 'sleep")
    rules = script.index("iptables-restore")
    assert timer < rules
    assert f"xdc-ut-deadman-{fault.id}@{DC1} 42.000 /run/xdc-lab/faults/{fault.id}@{DC1}.revert" in script
    assert f"XDC_FAULT=xdc-ut:deadman-{fault.id}@{DC1}" in script
    assert "</dev/null >/dev/null 2>&1 &" in script  # detached: survives the SSH session and the tester


def test_heal_disarms_the_timer_then_reverts_and_removes_the_fault_files(ctx) -> None:  # type: ignore[no-untyped-def]
    fault = make_fault(ctx, "partition", between=("dc1", "dc2"))
    heal = fault.heal_scripts()[DC1]
    removal = heal.index(f"rm -f /run/xdc-lab/faults/{fault.id}@")
    assert heal.index("kill -TERM --") < heal.index("iptables-save") < removal
    assert f'--comment "xdc-ut:{fault.id}' in heal


def test_isolation_keeps_loopback_own_dc_and_the_controllers_ssh(ctx) -> None:  # type: ignore[no-untyped-def]
    fault = make_fault(ctx, "isolate", dc="dc1")
    script = scripts(fault)[DC1]
    assert set(scripts(fault)) == {DC1}
    assert "${SSH_CONNECTION%% *}" in script
    lines = [line for line in script.splitlines() if line.startswith("-I ")]
    # inserted at position 1 in reverse: drop ends up last, after the accepts
    assert lines[0].endswith("-j DROP") and "INPUT" in lines[0]
    assert any("--dport @SSHPORT@" in line and "ACCEPT" in line for line in lines)
    assert any("-i lo" in line for line in lines) and any("-o lo" in line for line in lines)


def test_latency_uses_netem_or_the_delayer(ctx) -> None:  # type: ignore[no-untyped-def]
    fault = make_fault(ctx, "latency", between=("dc1", "dc2"), delay=0.2, jitter=0.02)
    fault.mode = {DC1: "netem", DC2: "delayer"}  # type: ignore[attr-defined]
    armed = scripts(fault)
    major = qdisc_major("xdc-ut")
    assert f"tc qdisc add dev \"$__d\" root handle {major}: htb default 1" in armed[DC1]
    assert "netem delay 200.000ms 20.000ms" in armed[DC1]
    assert f"match ip dst \"$__ip/32\" flowid {major}:2" in armed[DC1]
    assert "--queue-bypass" in armed[DC2] and "NFQUEUE" in armed[DC2]
    staged = fault.stage_scripts()
    assert set(staged) == {DC2}  # the delayer starts before the apply time, the rule makes it effective
    assert f"XDC_FAULT=xdc-ut:{fault.id}@{DC2} setsid python3" in staged[DC2]
    assert "--delay-ms 200.000 --jitter-ms 20.000" in staged[DC2]
    assert "setsid python3" not in armed[DC2]


def test_latency_rejects_jitter_larger_than_the_delay(ctx) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FaultError, match="jitter"):
        make_fault(ctx, "latency", between=("dc1", "dc2"), delay=0.1, jitter=0.2)


def test_loss_uses_the_statistic_match_on_arrival(ctx) -> None:  # type: ignore[no-untyped-def]
    fault = make_fault(ctx, "loss", between=("dc1", "dc2"), probability=0.3)
    armed = scripts(fault)
    assert f"-I INPUT 1 -s {DC2} -m statistic --mode random --probability 0.300000" in armed[DC1]
    assert f"-I INPUT 1 -s {DC1} -m statistic --mode random --probability 0.300000" in armed[DC2]


def test_bandwidth_shapes_with_tbf(ctx) -> None:  # type: ignore[no-untyped-def]
    fault = make_fault(ctx, "bandwidth", between=("dc1", "dc2"), rate="1mbit")
    armed = scripts(fault)
    assert "tbf rate 1000000bit burst 3028 latency 100ms" in armed[DC1]
    assert fault.describe()["rate_kbit"] == 1000


def test_pe_signals_are_guarded_by_the_process_start_time(ctx) -> None:  # type: ignore[no-untyped-def]
    kill = make_fault(ctx, "pe-kill", dc="dc1", operator="Aggregator")
    hang = make_fault(ctx, "pe-hang", dc="dc1", operator="Aggregator")
    kill_script = scripts(kill)[DC1]
    assert "kill -KILL ${PE_PID}" in kill_script and "${PE_STARTTIME}" in kill_script
    assert "setsid" not in kill_script  # nothing to revert: no dead-man timer
    hang_script = scripts(hang)[DC1]
    assert "kill -STOP ${PE_PID}" in hang_script
    assert re.search(r"kill -CONT \$\{PE_PID\}", hang.heal_scripts()[DC1])


def test_resource_faults_are_tagged_and_bounded(ctx) -> None:  # type: ignore[no-untyped-def]
    cpu = make_fault(ctx, "cpu", dc="dc1")
    cpu.cgroups = {"cpu": "/sys/fs/cgroup/cpu/xdc-lab/dc1"}  # type: ignore[attr-defined]
    script = scripts(cpu)[DC1]
    assert f"XDC_FAULT=xdc-ut:{cpu.id}@{DC1} setsid sh -c" in script
    assert "exec stress-ng --cpu" in script and "/sys/fs/cgroup/cpu/xdc-lab/dc1" in script
    assert f"--timeout {int(cpu.ttl) + 1}s" in script  # stress-ng's own timeout is one more dead-man
    disk = make_fault(ctx, "disk", dc="dc1")
    assert disk.file == f"/run/xdc-lab/dc1/snapshots/.xdc-ut-fill-{disk.id}"  # type: ignore[attr-defined]
    assert "fallocate -l" in scripts(disk)[DC1]
    assert f"rm -f /run/xdc-lab/dc1/snapshots/.xdc-ut-fill-{disk.id}" in disk.heal_scripts()[DC1]


def test_orderly_shutdown_is_sent_from_the_dc_host(ctx) -> None:  # type: ignore[no-untyped-def]
    fault = make_fault(ctx, "orderly-shutdown", dc="dc1")
    assert scripts(fault) == {
        DC1: f"printf 'OrderlyShutdown\\n' > /dev/tcp/{DC1}/<SpecialMessagePort from the name service> || exit 3\n"}
    fault.port = 25099  # as prepare() finds it in the name service (or the configured port)
    assert scripts(fault) == {DC1: f"printf 'OrderlyShutdown\\n' > /dev/tcp/{DC1}/25099 || exit 3\n"}


def test_instance_stop_uses_streamtool_on_the_dc_host_and_no_credentials(tmp_path: Path) -> None:
    ctx = fake_context(lab_shaped_config(tmp_path), dry_run=True)
    fault = make_fault(ctx, "instance-stop", dc="dc1")
    armed = scripts(fault)[DC1]
    assert armed.rstrip().endswith("/run/xdc-lab/bin/streamtool stopinstance -i streams-dc1 --force")
    revert = fault.revert_scripts()[DC1]
    assert revert == "/run/xdc-lab/bin/streamtool startinstance -i streams-dc1 >/dev/null\n"
    assert "DEADMAN" in armed  # the dead-man timer restarts it if the tester dies
    assert "unit-secret-pw" not in armed and "curl" not in armed


def test_poll_places_the_change_between_the_last_failing_probe_and_the_successful_one() -> None:
    from support.faults.core import poll

    changed_at = time.monotonic() + 0.15
    seen: list[float] = []

    def check() -> tuple[bool, str]:
        seen.append(time.monotonic())
        return seen[-1] >= changed_at, "gone" if seen[-1] >= changed_at else "still there"

    verified = poll(check, 5.0, "the change", interval=0.02)
    assert verified.probes == len(seen) >= 2 and verified.since is not None
    # the estimate lies between the last failing probe and the successful one, and before the proof
    assert seen[-2] <= verified.since[1] <= seen[-1] <= verified.at[1]
    assert abs(verified.since[1] - changed_at) <= (seen[-1] - seen[-2])
    assert poll(lambda: (True, "at once"), 1.0, "nothing").since is None
