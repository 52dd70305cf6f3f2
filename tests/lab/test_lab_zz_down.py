"""`lab down` leaves nothing behind (runs last: file name sorts after the others)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from labwire import LAB_DIR, Lab, run_lab

pytestmark = pytest.mark.lab


def _lab_pids() -> set[int]:
    pids: set[int] = set()
    state = json.loads((LAB_DIR / "state.json").read_text())
    pids.update(int(p["pid"]) for p in state["processes"].values())
    for procs in Path("/sys/fs/cgroup").glob("*/xdc-lab/*/cgroup.procs"):
        pids.update(int(p) for p in procs.read_text().split())
    return pids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _lab_part_processes() -> dict[int, str]:
    """Live processes that belong to the lab's real parts, recognised by their command lines (assertion only)."""
    found: dict[int, str] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        cmd = " ".join(a.decode(errors="replace") for a in argv if a)
        if any(marker in cmd for marker in (str(LAB_DIR), "lab.exporter", "StreamsJmx")) and _alive(int(proc.name)):
            found[int(proc.name)] = cmd
    return found


def test_down_leaves_nothing(lab: Lab) -> None:
    pids = _lab_pids()
    assert pids and all(_alive(p) for p in pids)
    state = json.loads((LAB_DIR / "state.json").read_text())
    created_run_sshd = bool(state.get("created_run_sshd"))
    kinds = {p.get("kind") for p in state["processes"].values()}
    assert {"sshd", "exporter", "jmx", "prometheus"} <= kinds
    parts = _lab_part_processes()
    for what in ("sshd", "prometheus", "java", "lab.exporter"):
        assert any(what in cmd for cmd in parts.values()), f"no {what} process of the lab before down"
    r = run_lab("down")
    assert r.returncode == 0, r.stderr
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert "xdc-" not in netns
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert "xdc-" not in links
    assert not list(Path("/sys/fs/cgroup").glob("*/xdc-lab"))
    assert not any(_alive(p) for p in pids)
    assert not _lab_part_processes(), "sshd / prometheus / java / exporter processes of the lab left behind"
    if created_run_sshd:
        assert not Path("/run/sshd").exists(), "the sshd privilege-separation dir the lab created is left"
    assert not LAB_DIR.exists()
    # the non-root fault user and its sudo rights (lab/bastion.py) are gone with the lab
    assert "\nxdcfault:" not in "\n" + Path("/etc/passwd").read_text()
    assert not Path("/etc/sudoers.d/xdc-lab-fault").exists()
    route = subprocess.run(["ip", "route", "get", "198.18.1.10"], capture_output=True, text=True, check=False)
    # the kernel answers an `unreachable` route with EHOSTUNREACH ("No route to host")
    assert route.returncode != 0 and "no route to host" in (route.stdout + route.stderr).lower()
    guard = subprocess.run(["ip", "route", "show", "198.18.0.0/15"], capture_output=True, text=True, check=True)
    assert guard.stdout.split()[:2] == ["unreachable", "198.18.0.0/15"]
    # and down again is harmless
    assert run_lab("down").returncode == 0
