"""CPU and memory faults on a cgroup v2 host, shown on a recorded v2 layout (this machine has only v1).

The layout is what a RHEL 9 / Ubuntu 22.04 host shows for a Streams instance run as a systemd service with
``Delegate=yes`` (its PEs in child groups): ``/proc/mounts`` with the unified hierarchy only, the PE's
``/proc/<pid>/cgroup`` line ``0::<path>``, and the service group's ``cgroup.subtree_control``, ``memory.max``
and ``memory.current``. The tree is rebuilt under a temp directory (the mount point rewritten) and the fault's
real shell runs on it; only stress-ng itself is not started.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from faultfakes import lab_shaped_config

from support.faults.base import FaultContext, FaultError, Topology
from support.faults.executor import ExecutorPool, LocalExecutor
from support.faults.guard import Allowlist
from support.faults.process import PeRef
from support.faults.resource import (
    CgroupLayout,
    CpuExhaustion,
    MemoryExhaustion,
    cgroup_script,
    make_child_script,
    remove_child_script,
)

DC1 = "198.18.1.10"
PE_PID = 4242
APP = "system.slice/streams-dc1.service"  # the application's group: the instance's service
PE_GROUP = f"{APP}/pe-12"

#: recorded on a cgroup v2 host (RHEL 9): only the unified hierarchy is mounted
MOUNTS = """\
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
sysfs /sys sysfs rw,seclabel,nosuid,nodev,noexec,relatime 0 0
cgroup2 {root} cgroup2 rw,seclabel,nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot 0 0
/dev/mapper/rhel-root / xfs rw,seclabel,relatime,attr2,inode64,logbufs=8,logbsize=32k,noquota 0 0
"""
MEMINFO = "MemTotal:       16303560 kB\nMemFree:         9123456 kB\nMemAvailable:   12582912 kB\n"


def _v2_host(tmp_path: Path, delegated: str = "cpu memory pids") -> Path:
    """The recorded layout under ``tmp_path``; returns the procfs directory."""
    root, proc = tmp_path / "sys-fs-cgroup", tmp_path / "proc"
    (proc / str(PE_PID)).mkdir(parents=True)
    (proc / "mounts").write_text(MOUNTS.format(root=root))
    (proc / "meminfo").write_text(MEMINFO)
    (proc / str(PE_PID) / "cgroup").write_text(f"0::/{PE_GROUP}\n")
    (root / PE_GROUP).mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (root / APP / "cgroup.controllers").write_text("cpu memory pids\n")
    (root / APP / "cgroup.subtree_control").write_text(delegated + "\n")
    (root / APP / "memory.max").write_text("2147483648\n")
    (root / APP / "memory.current").write_text("1610612736\n")
    (root / APP / "cpu.max").write_text("100000 100000\n")
    (root / PE_GROUP / "cgroup.procs").write_text(f"{PE_PID}\n")
    return proc


@pytest.fixture
def v2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[FaultContext, Path]:
    """A fault context whose DC host is this machine with the recorded v2 layout as its /proc."""
    from support.faults import resource

    proc = _v2_host(tmp_path)
    config = lab_shaped_config(tmp_path)
    topology = Topology.from_settings(config.settings, str(config.source))
    allowlist = Allowlist(topology)
    pool = ExecutorPool(topology, allowlist, factory=LocalExecutor)
    ctx = FaultContext(topology, config.settings.faults, pool, allowlist, {})
    pe = PeRef(dc="dc1", job_name="orders", job_id="1", pe_id="12", pid=PE_PID, launch_count=1, host=DC1)
    monkeypatch.setattr(resource, "locate_any_pe", lambda ctx, dc: pe)
    monkeypatch.setattr(resource, "cgroup_script", lambda pid, proc_dir="/proc": cgroup_script(pid, str(proc)))
    return ctx, tmp_path / "sys-fs-cgroup"


def test_the_host_probe_detects_v2_and_the_application_group(tmp_path: Path) -> None:
    proc = _v2_host(tmp_path)
    layout = CgroupLayout.parse(LocalExecutor("local").check(cgroup_script(PE_PID, str(proc))))
    root = tmp_path / "sys-fs-cgroup"
    assert layout.version == "v2"
    assert layout.groups == {"v2": f"{root}/{PE_GROUP}"}
    assert layout.app == f"{root}/{APP}" and layout.delegated == ("cpu", "memory", "pids")
    assert layout.mem_available == 12582912 * 1024


def test_this_machine_reports_its_own_cgroup_version() -> None:
    layout = CgroupLayout.parse(LocalExecutor("local").check(cgroup_script("$$")))
    assert layout.version in ("v1", "v2", "hybrid", "none")


def test_memory_fault_on_v2_runs_in_a_bounded_child_of_the_application_group(
        v2: tuple[FaultContext, Path]) -> None:
    ctx, root = v2
    fault = MemoryExhaustion(ctx, "dc1")
    fault.prepare()
    child = f"{root}/{APP}/xdc-ut-{fault.id}"
    assert fault.child == child
    assert fault.size == 2147483648 - 1610612736  # the application group's headroom (memory.max - current)
    assert fault.describe()["cgroup_version"] == "v2"
    armed = fault.inject_scripts()[DC1]
    assert f"mkdir -p {child}" in armed and f"> {child}/memory.max" in armed
    assert f"{root}/{PE_GROUP}" not in armed  # never inside the PE's own group
    assert f"exec stress-ng --vm 1 --vm-bytes {fault.size}" in armed and f" {child} </dev/null" in armed
    # the v2 commands that make the child run for real on the recorded tree
    make = make_child_script(child, {"memory.max": str(fault.size + fault.SLACK), "?memory.swap.max": "0"})
    assert LocalExecutor("local").run(make).ok
    assert Path(child, "memory.max").read_text().strip() == str(fault.size + fault.SLACK)
    assert not Path(child, "memory.swap.max").exists()  # optional file: skipped where absent
    revert = fault.revert_scripts()[DC1]
    assert remove_child_script(child) in revert and "kill -KILL" in revert


def test_cpu_fault_on_v2_runs_in_a_child_bounded_by_the_application_group(v2: tuple[FaultContext, Path]) -> None:
    ctx, root = v2
    fault = CpuExhaustion(ctx, "dc1")
    fault.prepare()
    child = f"{root}/{APP}/xdc-ut-{fault.id}"
    armed = fault.inject_scripts()[DC1]
    assert fault.child == child and f"mkdir -p {child}" in armed
    assert "exec stress-ng --cpu" in armed and f" {child} </dev/null" in armed
    assert f"{root}/{PE_GROUP} " not in armed
    assert remove_child_script(child) in fault.revert_scripts()[DC1]


def test_without_delegated_controllers_memory_stress_stays_out_of_the_pe_group(
        tmp_path: Path, v2: tuple[FaultContext, Path]) -> None:
    ctx, root = v2
    (root / APP / "cgroup.subtree_control").write_text("pids\n")
    fault = MemoryExhaustion(ctx, "dc1")
    fault.prepare()
    assert fault.child == ""
    assert fault.size == min(12582912 * 1024, ctx.settings.memory_max)  # bounded by faults.memory_max only
    armed = fault.inject_scripts()[DC1]
    assert "mkdir" not in armed and str(root) not in armed


def test_an_unreadable_stress_session_is_no_answer_yet_not_a_crash(v2: tuple[FaultContext, Path],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A probe whose session line comes back empty (the host answered nothing useful) is polled again; the verify
    ends with a FaultError that says what was read, never an IndexError out of the parser."""
    ctx, _ = v2
    fault = CpuExhaustion(ctx, "dc1")
    fault.prepare()
    monkeypatch.setattr(fault, "_session_cmd", lambda: "true")  # prints nothing after "SESSION"
    with pytest.raises(FaultError, match="unreadable stress session 'SESSION'"):
        fault.verify(0.3)
