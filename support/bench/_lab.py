"""Shared by the lab benchmarks: hold the lab lock, bring the lab up, always bring it down."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCK_FILE = "/tmp/xdc-lab.lock"


def lab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=180, check=False)


@contextmanager
def lab_session() -> Iterator[None]:
    """The lab is one per machine: hold /tmp/xdc-lab.lock while using it; leave it down."""
    if os.geteuid() != 0:
        raise SystemExit("bench: the embedded lab needs root")
    with open(LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            up = lab("up")
            if up.returncode != 0:
                raise SystemExit(f"bench: lab up failed: {up.stderr.strip()[-500:]}")
            yield
        finally:
            lab("down")
            fcntl.flock(lock, fcntl.LOCK_UN)
