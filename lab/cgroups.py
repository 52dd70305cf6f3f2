"""cgroup v1 `cpu` and `memory` groups `/sys/fs/cgroup/<ctrl>/xdc-lab/<dc>` (detected, never assumed).

Each DC's Streams processes (instance service, PEs, the JMX JVM) run in the DC's groups, which get limits
(`LIMITS`: 2 GiB memory, 1 CPU per DC) where the v1 controllers exist. Infrastructure (sshd, the exporters,
Prometheus) stays outside, so a CPU or memory fault on a DC cannot lock the tester out; a process started over
SSH joins a DC's groups by writing its PID to `/sys/fs/cgroup/{cpu,memory}/xdc-lab/<dc>/cgroup.procs`
(`exec_prefix` does that for a command).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS: tuple[str, ...] = ("cpu", "memory")
LAB_GROUP = "xdc-lab"

# (controller, file, value) written into each DC's group at `lab up`
LIMITS: tuple[tuple[str, str, str], ...] = (
    ("memory", "memory.limit_in_bytes", str(2 * 1024**3)),
    ("cpu", "cpu.cfs_period_us", "100000"),
    ("cpu", "cpu.cfs_quota_us", "100000"),  # 1 CPU per DC
)


def available() -> dict[str, bool]:
    """Which v1 controllers are mounted and writable here."""
    result: dict[str, bool] = {}
    for ctrl in CONTROLLERS:
        base = CGROUP_ROOT / ctrl
        result[ctrl] = (base / "cgroup.procs").exists() and os.access(base, os.W_OK)
    return result


def group_dir(ctrl: str, dc: str) -> Path:
    return CGROUP_ROOT / ctrl / LAB_GROUP / dc


def create(dc: str) -> list[Path]:
    made: list[Path] = []
    for ctrl, ok in available().items():
        if ok:
            d = group_dir(ctrl, dc)
            d.mkdir(parents=True, exist_ok=True)
            made.append(d)
    return made


def join(dc: str, pid: int) -> None:
    """Move `pid` into the DC's groups. Safe in a preexec_fn (no threads, no allocation-heavy work)."""
    for ctrl in CONTROLLERS:
        procs = group_dir(ctrl, dc) / "cgroup.procs"
        if procs.exists():
            with open(procs, "w") as f:
                f.write(str(pid))


def existing_dirs() -> list[Path]:
    dirs: list[Path] = []
    for ctrl in CONTROLLERS:
        top = CGROUP_ROOT / ctrl / LAB_GROUP
        if top.is_dir():
            dirs.extend(sorted(p for p in top.iterdir() if p.is_dir()))
            dirs.append(top)
    return dirs


def procs() -> set[int]:
    pids: set[int] = set()
    for d in existing_dirs():
        try:
            text = (d / "cgroup.procs").read_text()
        except OSError:
            continue
        pids.update(int(p) for p in text.split() if p.isdigit())
    return pids


def remove(deadline_s: float = 5.0) -> list[str]:
    """rmdir the lab groups (children first). Returns the ones that could not be removed."""
    end = time.monotonic() + deadline_s
    waiter = threading.Event()
    left: list[str] = []
    for d in existing_dirs():
        while True:
            try:
                d.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:  # EBUSY while the last tasks finish exiting
                if time.monotonic() > end:
                    left.append(str(d))
                    break
                waiter.wait(0.02)
    return left


def apply_limits(dc: str) -> dict[str, str]:
    """Write `LIMITS` into the DC's groups; returns {"<ctrl>/<file>": value or "error: ..."} for what exists."""
    applied: dict[str, str] = {}
    for ctrl, fname, value in LIMITS:
        f = group_dir(ctrl, dc) / fname
        if not f.exists():
            continue
        try:
            f.write_text(value)
            applied[f"{ctrl}/{fname}"] = value
        except OSError as exc:
            applied[f"{ctrl}/{fname}"] = f"error: {exc.strerror or exc}"
    return applied


def read_limits(dc: str) -> dict[str, str]:
    """Current values of the `LIMITS` files of the DC's groups (those that exist)."""
    out: dict[str, str] = {}
    for ctrl, fname, _value in LIMITS:
        f = group_dir(ctrl, dc) / fname
        try:
            out[f"{ctrl}/{fname}"] = f.read_text().strip()
        except OSError:
            continue
    return out


def members(dc: str) -> dict[str, set[int]]:
    """PIDs in each existing controller group of the DC."""
    out: dict[str, set[int]] = {}
    for ctrl in CONTROLLERS:
        try:
            text = (group_dir(ctrl, dc) / "cgroup.procs").read_text()
        except OSError:
            continue
        out[ctrl] = {int(p) for p in text.split() if p.isdigit()}
    return out


def exec_prefix(dc: str) -> list[str]:
    """argv prefix that moves the process into the DC's groups, then execs the rest of the argv.

    Used instead of a `preexec_fn` so that it is safe from a multi-threaded parent.
    """
    files = [str(group_dir(ctrl, dc) / "cgroup.procs") for ctrl in CONTROLLERS if group_dir(ctrl, dc).is_dir()]
    script = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 97; shift; n=$((n-1)); done; exec "$@"'
    return ["sh", "-c", script, "sh", str(len(files)), *files]
