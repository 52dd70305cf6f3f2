"""Fixtures for the embedded lab tests: one `python -m lab up` per session, `down` at the end.

The lab is one per machine (fixed namespaces, addresses and /run/xdc-lab): a session holds the lock file
``/tmp/xdc-lab.lock`` while it uses the lab, so that two test sessions never share or break one lab.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator

import pytest
from labwire import NEEDS_ROOT, Lab, run_lab

LOCK_FILE = "/tmp/xdc-lab.lock"


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip(f"{NEEDS_ROOT} (running as uid {os.geteuid()})")
    lock = open(LOCK_FILE, "a")  # noqa: SIM115 - held for the whole session
    fcntl.flock(lock, fcntl.LOCK_EX)
    up = run_lab("up")
    assert up.returncode == 0, f"lab up failed:\n{up.stdout}\n{up.stderr}"
    try:
        yield Lab()
    finally:
        run_lab("down")
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


@pytest.fixture()
def default_deployment(lab: Lab) -> Lab:
    """The default deployment (orders in dc1 without fencing, the standalone passive stub in dc2 running the
    restoring failover script), restored if a test changed it."""
    d1, stub = lab.job("dc1", "orders"), lab.standby()
    fencing = {p["name"]: p["value"] for p in d1["submitParameters"]}.get("fencing") if d1 else None
    if (
        not (d1 and d1["health"] == "healthy" and fencing == "false" and stub and stub["script"] == "restoring")
        or lab.job("dc2", "orders")
    ):
        r = run_lab("reset", "--failover-script", "restoring")
        assert r.returncode == 0, r.stderr
    return lab
