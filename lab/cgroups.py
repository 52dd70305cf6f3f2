"""cgroup v1 `cpu` and `memory` groups `/sys/fs/cgroup/<ctrl>/xdc-lab/<dc>` (detected, never assumed)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS: tuple[str, ...] = ("cpu", "memory")
LAB_GROUP = "xdc-lab"


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
