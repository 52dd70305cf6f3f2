"""The pair lease of the lab, for ``python -m lab up|down``: the local half of ``support/lease.py``'s protocol.

The lab never imports ``support``, so it speaks the protocol itself: the lock file
``<dir>/pair-<key>.lock`` (``<dir>``: ``$FAILOVER_TESTER_LEASE_DIR``, else ``/tmp/failover-tester``; ``<key>``:
the first 16 hex digits of the SHA-256 of the sorted ``scheme://host:port`` of the DCs' REST URLs), held with
``flock`` for the life of the command, the holder record (JSON) written in it. A run of the failover tester
against the lab holds the same file, so ``lab up`` during a run is refused (exit 3) with one line naming the
holder instead of rebuilding the lab (and its password) under the run. A process started by the holder
(``$FAILOVER_TESTER_LEASE_RUN_ID`` = the holder's run id) passes through.
"""

from __future__ import annotations

import errno
import fcntl
import getpass
import hashlib
import json
import os
import socket
import time
import uuid
from pathlib import Path
from typing import Any

from lab import paths

ENV_DIR = "FAILOVER_TESTER_LEASE_DIR"
ENV_RUN_ID = "FAILOVER_TESTER_LEASE_RUN_ID"
DEFAULT_DIR = "/tmp/failover-tester"
REFUSED = 3  # the exit code of a command refused because the pair is leased


class Held(Exception):
    """The lab's pair is leased by another command; ``str()`` is one line naming the holder."""


def key() -> str:
    endpoints = sorted(f"https://{paths.DC_ADDR[dc]}:{paths.REST_PORT}" for dc in paths.DC_ADDR)
    return hashlib.sha256("\n".join(endpoints).encode()).hexdigest()[:16]


def lock_path() -> Path:
    return Path(os.environ.get(ENV_DIR) or DEFAULT_DIR) / f"pair-{key()}.lock"


def _when(epoch: Any) -> str:
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(epoch)))
    except (TypeError, ValueError, OverflowError):
        return "?"


def describe(record: dict[str, Any], where: str) -> str:
    """The same line as support.lease.describe."""
    expires = record.get("expires")
    until = _when(expires) if expires else f"when pid {record.get('pid', '?')} ends"
    return (f"pair {record.get('pair', '?')} is leased by run {record.get('run_id', '?')} "
            f"({record.get('purpose', '?')}), pid {record.get('pid', '?')} "
            f"{record.get('user', '?')}@{record.get('host', '?')}, since {_when(record.get('since'))}, "
            f"expires {until} (lease on {where})")


def take(purpose: str) -> int | None:
    """Take the lab's lease for ``purpose`` and keep it until this process ends: the lock's file descriptor
    (None: passing through, the holder started this process). Raises :class:`Held`."""
    path = lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.parent == Path(DEFAULT_DIR) and path.parent.stat().st_uid == os.geteuid():
        path.parent.chmod(0o1777)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise
        try:
            record = json.loads(path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            record = {}
        record = record if isinstance(record, dict) else {}
        if record.get("run_id") and record.get("run_id") == os.environ.get(ENV_RUN_ID):
            return None
        raise Held(describe(record or {"pair": "embedded-lab"}, str(path))) from None
    if os.fstat(fd).st_uid == os.geteuid():
        os.fchmod(fd, 0o644)
    record = {"run_id": os.environ.get(ENV_RUN_ID) or f"lab-{uuid.uuid4().hex[:8]}", "purpose": purpose,
              "pid": os.getpid(), "user": getpass.getuser(), "host": socket.gethostname(),
              "since": round(time.time(), 3), "pair": "embedded-lab", "key": key()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(record, sort_keys=True) + "\n").encode(), 0)
    return fd
