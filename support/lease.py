"""The lease of a pair: one run (or ``lab up``, ``faults inject``, ``faults clean``) at a time per pair.

Two runs on one pair would cancel each other's jobs and flag each other's faults as residue, so every command
that changes a pair takes its lease first and a second one is refused with ONE line naming the holder
(:class:`LeaseHeld`; the CLIs exit 3). The lease has two parts:

Local: a lock file ``<dir>/pair-<key>.lock``. ``<dir>`` is ``$FAILOVER_TESTER_LEASE_DIR``, else
``/tmp/failover-tester`` (one directory per machine, so that every user of the machine sees it); ``<key>`` is
:func:`pair_key` of the data centers' REST URLs (scheme, host and port), so two configs naming the same pair
share it. The holder takes ``flock(LOCK_EX)`` on it for the life of the lease and writes its holder record (JSON)
into it. The kernel drops the lock when the process ends, however it ends: a crashed holder frees it at once.
``lab/lease.py`` speaks the same protocol for ``python -m lab up|down`` (the lab never imports ``support``).

On the hosts (every declared host the fault executor can reach): the file ``<faults.state_dir>/lease`` holds
one line ``RUN_ID EXPIRES BASE64(holder JSON)``, read and written only under ``flock`` on
``<faults.state_dir>/lease.lock`` (a few milliseconds, never across the run: a remote lock held by a process of
ours would have to outlive SSH sessions and be killed by PID at the end). The record expires ``faults.ttl``
after it was written (host clock); a heartbeat thread rewrites it every third of the TTL (at most every
minute), so it lives as long as the holder does. Another holder's record is taken over when it has expired (its
holder stopped renewing: gone, hung or cut off), or at once when its holder ran on this machine and that process
no longer exists (a SIGKILLed ``faults inject``).

Re-entry: while a lease is held, ``FAILOVER_TESTER_LEASE_RUN_ID`` is set in this process' environment, so the
processes it starts (behave, ``lab up``, ``faults ...``) pass through a lease that names their own run id.
"""

from __future__ import annotations

import base64
import binascii
import errno
import fcntl
import getpass
import hashlib
import json
import logging
import os
import shlex
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from support.config.settings import Settings
from support.faults.base import FaultError, FaultUnsupported, Topology
from support.faults.executor import ExecutorPool, Result
from support.faults.guard import Allowlist

__all__ = [
    "ENV_DIR",
    "ENV_RUN_ID",
    "Lease",
    "LeaseError",
    "LeaseHeld",
    "acquire",
    "describe",
    "holder",
    "host_holders",
    "lease_dir",
    "lock_path",
    "new_lease_id",
    "pair_key",
]

log = logging.getLogger(__name__)

ENV_DIR = "FAILOVER_TESTER_LEASE_DIR"
ENV_RUN_ID = "FAILOVER_TESTER_LEASE_RUN_ID"
DEFAULT_DIR = "/tmp/failover-tester"
HOST_FILE = "lease"
HOST_TIMEOUT = 20.0  # seconds one host lease command may take (flock -w 10 included)
MAX_HEARTBEAT = 60.0


class LeaseHeld(Exception):
    """The pair is leased by someone else; ``str()`` is one line naming the holder."""

    def __init__(self, holder: dict[str, Any], where: str = "") -> None:
        super().__init__(describe(holder, where))
        self.holder = holder
        self.where = where


class LeaseError(Exception):
    """The lease could not be checked (a host unreachable, no ``flock`` there, the lock file unusable)."""


# ------------------------------------------------------------------------------------------- the holder


def pair_key(urls: Iterable[str]) -> str:
    """The pair's key: a hash of the data centers' REST endpoints (``scheme://host:port``, sorted)."""
    endpoints = sorted({_endpoint(url) for url in urls})
    return hashlib.sha256("\n".join(endpoints).encode()).hexdigest()[:16]


def _endpoint(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{port}"


def _settings_key(settings: Settings) -> str:
    return pair_key(dc.rest.url for dc in settings.datacenters.values())


def _pair_name(settings: Settings) -> str:
    return settings.name or " + ".join(sorted(settings.datacenters))


def lease_dir() -> Path:
    return Path(os.environ.get(ENV_DIR) or DEFAULT_DIR)


def lock_path(settings: Settings) -> Path:
    """The local lock file of the pair of ``settings``."""
    return lease_dir() / f"pair-{_settings_key(settings)}.lock"


def _when(epoch: Any) -> str:
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(epoch)))
    except (TypeError, ValueError, OverflowError):
        return "?"


def describe(record: dict[str, Any], where: str = "") -> str:
    """One line naming a holder: run id, purpose, pid, user@host, since, expires (and where it was found)."""
    expires = record.get("expires")
    until = _when(expires) if expires else f"when pid {record.get('pid', '?')} ends"
    place = f" (lease on {where})" if where else ""
    return (f"pair {record.get('pair', '?')} is leased by run {record.get('run_id', '?')} "
            f"({record.get('purpose', '?')}), pid {record.get('pid', '?')} "
            f"{record.get('user', '?')}@{record.get('host', '?')}, since {_when(record.get('since'))}, "
            f"expires {until}{place}")


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    try:
        value = json.loads(text) if text else None
    except json.JSONDecodeError:
        return {"run_id": "?", "purpose": f"unreadable holder record {text[:80]!r}"}
    return value if isinstance(value, dict) else None


def holder(settings: Settings) -> dict[str, Any] | None:
    """The local holder of the pair's lease (its record), or None when nobody on this machine holds it."""
    path = lock_path(settings)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LeaseError(f"cannot read the lease file {path}: {exc.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_record(path) or {"purpose": "record not written yet", "pair": _pair_name(settings)}
        return None  # nobody holds it: what the file says is the record of a finished (or crashed) holder
    finally:
        os.close(fd)


def _pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


# ------------------------------------------------------------------------------------------- local lock


def _open_lock(path: Path) -> int:
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if folder == Path(DEFAULT_DIR) and folder.stat().st_uid == os.geteuid():
            folder.chmod(0o1777)  # every user of the machine takes its leases here (sticky: own files only)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise LeaseError(f"cannot open the lease file {path}: {exc.strerror} (set ${ENV_DIR} to another "
                         "folder)") from None
    if os.fstat(fd).st_uid == os.geteuid():
        os.fchmod(fd, 0o644)  # readable by every user (holder record), whatever the umask
    return fd


def _lock_local(path: Path, record: dict[str, Any]) -> int:
    fd = _open_lock(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise LeaseError(f"cannot lock {path}: {exc.strerror}") from None
        current = _read_record(path) or {"pair": record["pair"], "purpose": "record not written yet"}
        raise LeaseHeld(current, str(path)) from None
    _write_record(fd, record)
    return fd


def _write_record(fd: int, record: dict[str, Any]) -> None:
    data = (json.dumps(record, sort_keys=True) + "\n").encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


# ------------------------------------------------------------------------------------------- host lease


def _host_script(action: str, directory: str, run_id: str = "", ttl: float = 0.0, record: str = "",
                 take: str = "") -> str:
    """The script that reads, takes (``acquire``, also the renewal) or drops (``release``) the host lease.
    Prints ``LEASED <expires> <now>``, ``HELD <run_id> <expires> <b64> <now>``, ``FREE <now>``, ``RELEASED``
    or ``NOT-OURS``; ``LEASE-ERROR <why>`` with exit 4 when it cannot lock."""
    head = (
        f"d={shlex.quote(directory)}\n"
        "command -v flock >/dev/null 2>&1 || { echo 'LEASE-ERROR flock not found (util-linux)'; exit 4; }\n"
        'mkdir -p "$d" && chmod 700 "$d" || { echo "LEASE-ERROR cannot create $d"; exit 4; }\n'
        'exec 9>>"$d/lease.lock" || { echo "LEASE-ERROR cannot open $d/lease.lock"; exit 4; }\n'
        'flock -w 10 9 || { echo "LEASE-ERROR $d/lease.lock stayed locked for 10 s"; exit 4; }\n'
        "now=$(date +%s); rid=; exp=0; rec=\n"
        f'[ -s "$d/{HOST_FILE}" ] && read -r rid exp rec < "$d/{HOST_FILE}"\n'
        'case "$exp" in ""|*[!0-9]*) exp=0;; esac\n'
        f"my={shlex.quote(run_id)}\n"
    )
    if action == "read":
        return head + 'if [ -n "$rid" ]; then echo "HELD $rid $exp $rec $now"; else echo "FREE $now"; fi\n'
    if action == "release":
        return head + f'if [ "$rid" = "$my" ]; then rm -f "$d/{HOST_FILE}"; echo RELEASED; else echo NOT-OURS; fi\n'
    return head + (
        f"take={shlex.quote(take or '-')}\n"
        'if [ -n "$rid" ] && [ "$rid" != "$my" ] && [ "$rid" != "$take" ] && [ "$exp" -gt "$now" ]; then\n'
        '  echo "HELD $rid $exp $rec $now"; exit 0\n'
        "fi\n"
        f"until=$((now + {max(1, round(ttl))}))\n"
        f"printf '%s %s %s\\n' \"$my\" \"$until\" {shlex.quote(record)} > \"$d/{HOST_FILE}.tmp\" && "
        f'mv -f "$d/{HOST_FILE}.tmp" "$d/{HOST_FILE}" && echo "LEASED $until $now"\n'
    )


def _decode(fields: list[str]) -> dict[str, Any]:
    """The holder record of a ``HELD run_id expires b64 now`` line (fields after HELD)."""
    record: dict[str, Any] = {}
    if len(fields) >= 3:
        try:
            value = json.loads(base64.b64decode(fields[2]).decode(errors="replace"))
            record = value if isinstance(value, dict) else {}
        except (binascii.Error, ValueError):
            record = {}
    record["run_id"] = fields[0] if fields else "?"
    if len(fields) >= 2:
        record["expires"] = int(fields[1])
    return record


def _answer(result: Result, what: str) -> tuple[str, list[str]]:
    for line in result.stdout.splitlines():
        words = line.split()
        if words and words[0] in ("LEASED", "HELD", "FREE", "RELEASED", "NOT-OURS", "LEASE-ERROR"):
            if words[0] == "LEASE-ERROR":
                raise LeaseError(f"{what} on {result.host}: {line.removeprefix('LEASE-ERROR ')}")
            return words[0], words[1:]
    raise LeaseError(f"{what} on {result.host}: {result.why()}")


class _HostLease:
    """The lease records on the pair's hosts, renewed by a heartbeat thread until released. A host that cannot
    be reached is ``pending`` (with why): the heartbeat keeps trying to take it (commands cannot reach it either)."""

    def __init__(self, pool: ExecutorPool, directory: str, ttl: float, record: dict[str, Any]) -> None:
        self.pool = pool
        self.directory = directory
        self.ttl = ttl
        self.run_id = str(record["run_id"])
        self._blob = base64.b64encode(json.dumps(record, sort_keys=True).encode()).decode()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.held: list[str] = []
        self.pending: dict[str, str] = {}  # host -> why it could not be reached

    def ask(self, scripts: dict[str, str], what: str) -> dict[str, tuple[str, list[str]] | str]:
        """Run one lease script per host, in parallel: host -> (answer word, fields), or why it failed."""

        def one(host: str) -> tuple[str, list[str]] | str:
            try:
                return _answer(self.pool.get(host).run(scripts[host], HOST_TIMEOUT), what)
            except (FaultError, LeaseError) as exc:
                return str(exc)

        if not scripts:
            return {}
        with ThreadPoolExecutor(max_workers=min(8, len(scripts))) as threads:
            return dict(zip(scripts, threads.map(one, scripts), strict=True))

    def take(self, hosts: list[str], take: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
        """Take (or renew) the lease on ``hosts``; the other holders met (host -> record)."""
        take = take or {}
        scripts = {h: _host_script("acquire", self.directory, self.run_id, self.ttl, self._blob, take.get(h, ""))
                   for h in hosts}
        held: dict[str, dict[str, Any]] = {}
        for host, answer in self.ask(scripts, "lease").items():
            if isinstance(answer, str):
                self.pending[host] = answer  # a held host keeps its record until it expires
                continue
            self.pending.pop(host, None)
            word, fields = answer
            if word == "LEASED":
                if host not in self.held:
                    self.held.append(host)
            else:
                held[host] = _decode(fields)
                if host in self.held:
                    self.held.remove(host)
        return held

    def start_heartbeat(self) -> None:
        interval = min(self.ttl / 3, MAX_HEARTBEAT)

        def beat() -> None:
            while not self._stop.wait(interval):  # a period, not a wait for a condition
                renewing = list(dict.fromkeys([*self.held, *self.pending]))
                for host, other in self.take(renewing).items():
                    log.warning("lease on %s lost: %s", host, describe(other, host))
                for host, why in self.pending.items():
                    log.warning("lease on %s not renewed (its record expires with the TTL): %s", host, why)

        self._thread = threading.Thread(target=beat, name="lease-heartbeat", daemon=True)
        self._thread.start()

    def release(self) -> list[str]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=HOST_TIMEOUT + 10)
        problems: list[str] = []
        scripts = {h: _host_script("release", self.directory, self.run_id) for h in self.held}
        for answer in self.ask(scripts, "lease release").values():
            if isinstance(answer, str):
                problems.append(f"{answer} (its record expires with the TTL)")
        self.held = []
        self.pool.close()
        return problems


def _reachable_hosts(pool: ExecutorPool, topology: Topology) -> list[str]:
    hosts = []
    for host in topology.all_hosts():
        try:
            pool.get(host)
        except FaultUnsupported:
            continue  # no way to run commands there: faults cannot touch it either
        hosts.append(host)
    return hosts


def host_holders(settings: Settings,
                 pool: ExecutorPool | None = None) -> dict[str, dict[str, Any] | str | None]:
    """Each host's lease record (None: free; a string: why it could not be read). An expired record is
    returned too (compare its ``expires`` with the time)."""
    topology = Topology.from_settings(settings)
    own = pool is None
    pool = pool or _pool(settings, topology)
    try:
        hosts = _reachable_hosts(pool, topology)
        lease = _HostLease(pool, settings.faults.directory, settings.faults.ttl, {"run_id": ""})
        answers = lease.ask({h: _host_script("read", settings.faults.directory) for h in hosts}, "lease read")
        out: dict[str, dict[str, Any] | str | None] = {}
        for host, answer in answers.items():
            out[host] = answer if isinstance(answer, str) else _decode(answer[1]) if answer[0] == "HELD" else None
        return out
    finally:
        if own:
            pool.close()


def _pool(settings: Settings, topology: Topology) -> ExecutorPool:
    return ExecutorPool(topology, Allowlist(topology), retries=settings.faults.ssh_retries,
                        connect_timeout=settings.faults.ssh_timeout)


# ------------------------------------------------------------------------------------------- the lease


class Lease:
    """A held lease (context manager); :meth:`release` is idempotent. ``reentered``: the caller's run already
    held it (its own child process), so this one holds nothing."""

    def __init__(self, record: dict[str, Any], fd: int | None, hosts: _HostLease | None,
                 reentered: bool = False) -> None:
        self.record = record
        self.run_id = str(record["run_id"])
        self.reentered = reentered
        self._fd = fd
        self._hosts = hosts
        self._previous_env = os.environ.get(ENV_RUN_ID)
        if not reentered:
            os.environ[ENV_RUN_ID] = self.run_id

    @property
    def hosts(self) -> list[str]:
        return list(self._hosts.held) if self._hosts else []

    def release(self) -> list[str]:
        """Drop the lease (hosts first, then the local lock); one line per problem (records then expire)."""
        problems: list[str] = []
        if self._hosts is not None:
            problems = self._hosts.release()
            self._hosts = None
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            finally:
                os.close(self._fd)  # closing drops the flock
            self._fd = None
            if os.environ.get(ENV_RUN_ID) == self.run_id:
                if self._previous_env is None:
                    os.environ.pop(ENV_RUN_ID, None)
                else:
                    os.environ[ENV_RUN_ID] = self._previous_env
        for problem in problems:
            log.warning("%s", problem)
        return problems

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()


def acquire(settings: Settings, purpose: str, run_id: str, *, hosts: bool = True,
            pool_factory: Callable[[Settings, Topology], ExecutorPool] | None = None) -> Lease:
    """Take the pair's lease for ``purpose`` (``run``, ``faults inject`` ...) under ``run_id``: the local lock,
    then the record on every host the fault executor can reach (``hosts=False``: local only). Raises
    :class:`LeaseHeld` (one line, nothing left held) when someone else holds it; :class:`LeaseError` when the
    local lock file cannot be used. A host that does not answer is logged and left to the heartbeat."""
    record = {"run_id": run_id, "purpose": purpose, "pid": os.getpid(), "user": _user(),
              "host": socket.gethostname(), "since": round(time.time(), 3), "pair": _pair_name(settings),
              "key": _settings_key(settings)}
    path = lock_path(settings)
    try:
        fd = _lock_local(path, record)
    except LeaseHeld as exc:
        inherited = os.environ.get(ENV_RUN_ID)
        if inherited and exc.holder.get("run_id") == inherited:
            return Lease(exc.holder, None, None, reentered=True)  # a process started by the holder itself
        raise
    if not hosts:
        return Lease(record, fd, None)
    topology = Topology.from_settings(settings)
    host_lease: _HostLease | None = None
    try:
        pool = (pool_factory or _pool)(settings, topology)
        host_lease = _HostLease(pool, settings.faults.directory, settings.faults.ttl, record)
        targets = _reachable_hosts(pool, topology)
        held = host_lease.take(targets)
        stale = {h: str(r.get("run_id")) for h, r in held.items()
                 if r.get("host") == record["host"] and not _pid_alive(r.get("pid"))}
        if stale:  # its holder ran on this machine and that process is gone (a SIGKILLed CLI)
            log.info("taking over the lease left by dead process(es): %s", stale)
            held = {**{h: r for h, r in held.items() if h not in stale}, **host_lease.take(list(stale), stale)}
        if held:
            where, other = next(iter(held.items()))
            raise LeaseHeld(other, where)
        for host, why in host_lease.pending.items():
            log.warning("lease: %s not reached (commands cannot reach it either; retried every heartbeat): %s",
                        host, why)
        host_lease.start_heartbeat()
    except BaseException:
        if host_lease is not None:
            host_lease.release()
        os.close(fd)
        raise
    return Lease(record, fd, host_lease)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.geteuid())


def new_lease_id() -> str:
    """A run id for a command that is not a run (``faults inject``): the inherited one, else a fresh one."""
    return os.environ.get(ENV_RUN_ID) or time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:4]
