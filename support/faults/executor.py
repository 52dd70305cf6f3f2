"""Where fault commands run: SSH (paramiko), the local machine, or nowhere (dry run).

SSH keeps ONE connection per host for the executor's life, and on it one persistent ``bash`` session:
each command is sent to that shell (``timeout -k 1 T bash -c <reader> <<'<marker>'`` with the script in the
quoted here-document, see :func:`_wrap`) and framed by a random marker,
so a command costs a fork on the target, not a new SSH channel (a channel + exec costs ~100-150 ms with
OpenSSH; a command on the open shell ~2 ms). Host keys are checked with ``RejectPolicy`` against the
configured ``known_hosts`` only (no agent, no ~/.ssh keys). Connection errors are retried with
exponential backoff; then one error says what was tried. Host key and authentication failures are
reported at once (retrying cannot fix them).

Scripts reach the hosts on stdin, never in arguments: the command line of every process the tester starts on
a host (``timeout``, ``bash -c <reader>``) is the same constant text for every script, so ``ps`` on the host shows
no configuration value and no script; the reader takes the script from its stdin (a quoted here-document: the
login shell expands nothing in it), then runs it with stdin at end of file.

Non-root logins: with ``ssh.sudo`` every script runs as ``<prefix> timeout -k 1 T bash -c <reader>``
(``sudo -n`` by default, or a configured prefix such as ``sudo -n -u root`` or ``pbrun``): the prefix comes
first, so ``timeout`` and the script (and the dead-man timers it starts) run with root rights, and ``-n``
makes a missing sudo right fail at once instead of waiting for a password. The persistent shell itself stays
the login user's.

Bastion (``ssh.bastion``, like OpenSSH ``ProxyJump``): one SSH connection to the bastion per executor, a
``direct-tcpip`` channel on it to the target's SSH port, and the target's SSH session over that channel. Both
hops check host keys with ``RejectPolicy`` against the same ``known_hosts``.

Targets need ``bash``, ``timeout``, ``cat`` and ``base64`` (coreutils). Scripts never read stdin (it is at end
of file when they run).
"""

from __future__ import annotations

import base64
import logging
import secrets
import shlex
import socket
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import paramiko

from support.faults.core import FaultError, FaultUnsupported, SshSettings, Topology
from support.faults.guard import Allowlist
from support.units import format_seconds

__all__ = [
    "READER",
    "DryRunExecutor",
    "Executor",
    "ExecutorError",
    "ExecutorPool",
    "LocalExecutor",
    "Result",
    "SSHExecutor",
    "run_on_hosts",
]

log = logging.getLogger(__name__)

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "local"})
_SLACK = 5.0  # seconds the reader waits beyond the remote `timeout` before calling the shell lost


class ExecutorError(FaultError):
    """A command could not be run on a host (connection, host key, auth, lost shell)."""


class _BastionError(Exception):
    """The bastion hop failed (``fatal``: host key or authentication, which retrying cannot fix)."""

    def __init__(self, message: str, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


@dataclass(frozen=True)
class Result:
    host: str
    rc: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def lines(self, prefix: str) -> list[list[str]]:
        """Fields of the stdout lines starting with ``prefix`` (the prefix dropped)."""
        return [line.split()[1:] for line in self.stdout.splitlines() if line.split()[:1] == [prefix]]

    def why(self) -> str:
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return f"exit {self.rc}: {text[-1][:200] if text else 'no output'}"


#: The only program text on a host's command lines: read the script from stdin (whole, so nothing the script
#: runs can read the rest of it), then run it with stdin at end of file. ``$1``, when given, is the login's
#: SSH_CONNECTION, handed over a privilege prefix (sudo resets the environment).
READER = ('if [ "$#" -gt 0 ]; then SSH_CONNECTION="$1"; export SSH_CONNECTION; set --; fi; '
          '__xdc_s=$(cat; printf x); eval "${__xdc_s%x}"')


def _heredoc_marker(script: str) -> str:
    """A here-document delimiter that is no line of ``script``."""
    lines = set(script.splitlines())
    while True:
        marker = "__xdc_script_" + secrets.token_hex(8)
        if marker not in lines:
            return marker


def _wrap(script: str, timeout: float, prefix: tuple[str, ...] = (), redirections: str = "") -> str:
    """The command a persistent shell runs for ``script`` (under the privilege ``prefix``, e.g. ``sudo -n``):
    ``[prefix] timeout -k 1 T bash -c READER`` with ``redirections``, and the script in a quoted here-document
    on the following lines (the login shell expands nothing in it; the text ends with the delimiter line and
    a newline, so the caller continues on the next line)."""
    marker = _heredoc_marker(script)
    body = script if script.endswith("\n") or not script else script + "\n"
    lead = "".join(f"{shlex.quote(word)} " for word in prefix)
    # sudo resets the environment: hand the script the login's SSH_CONNECTION (network faults exempt the
    # controller's -- or the bastion's -- SSH connection by it), expanded by the login shell
    keep = ' xdc-script "$SSH_CONNECTION"' if prefix else ""
    return (f"{lead}timeout -k 1 {timeout:.3f} bash -c {shlex.quote(READER)}{keep}{redirections} "
            f"<<'{marker}'\n{body}{marker}\n")


class Executor(ABC):
    """Runs shell scripts on one host."""

    def __init__(self, host: str, redact: Callable[[str], str] | None = None) -> None:
        self.host = host
        self.redact = redact or (lambda text: text)

    @abstractmethod
    def run(self, script: str, timeout: float = 30.0) -> Result:
        """Run ``script`` with bash; never raises for a non-zero exit (see Result.rc)."""

    def check(self, script: str, timeout: float = 30.0, what: str = "command") -> Result:
        result = self.run(script, timeout)
        if not result.ok:
            raise FaultError(f"{what} on {self.host}: {result.why()}")
        return result

    def close(self) -> None:  # noqa: B027 - most executors hold nothing to release
        """Release the connection (idempotent)."""

    def describe(self) -> str:
        return self.host


class LocalExecutor(Executor):
    """Runs scripts on this machine (``bash -c READER``, the script on stdin): tests, and hosts declared as
    ``localhost``."""

    def run(self, script: str, timeout: float = 30.0) -> Result:
        started = time.monotonic()
        try:
            done = subprocess.run(["timeout", "-k", "1", f"{timeout:.3f}", "bash", "-c", READER],
                                  input=script, capture_output=True, text=True,
                                  timeout=timeout + _SLACK, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ExecutorError(f"local command on {self.host} did not end within "
                                f"{format_seconds(timeout + _SLACK, None)}") from exc
        return Result(self.host, done.returncode, done.stdout, done.stderr, time.monotonic() - started)

    def describe(self) -> str:
        return f"{self.host} (local)"


@dataclass
class DryRunExecutor(Executor):
    """Records every script it is given and runs nothing (``--dry-run``)."""

    host: str
    recorded: list[tuple[str, str]] = field(default_factory=list)
    redact: Callable[[str], str] = field(default=lambda text: text)

    def run(self, script: str, timeout: float = 30.0) -> Result:
        self.recorded.append((self.host, script))
        return Result(self.host, 0, "", "", 0.0)

    def describe(self) -> str:
        return f"{self.host} (dry run)"


class SSHExecutor(Executor):
    """One persistent SSH connection (and bash session) to one host."""

    def __init__(
        self,
        host: str,
        ssh: SshSettings,
        *,
        retries: int = 3,
        connect_timeout: float = 5.0,
        backoff: float = 0.2,
        redact: Callable[[str], str] | None = None,
        client_factory: Callable[[], paramiko.SSHClient] = paramiko.SSHClient,
        pause: Callable[[float], None] | None = None,
    ) -> None:
        super().__init__(host, redact)
        self.ssh = ssh
        self.retries = retries
        self.connect_timeout = connect_timeout
        self.backoff = backoff
        self._client_factory = client_factory
        self._pause = pause or threading.Event().wait
        self._client: paramiko.SSHClient | None = None
        self._jump: paramiko.SSHClient | None = None
        self._shell: paramiko.Channel | None = None
        self._buffer = b""
        self._lock = threading.Lock()
        self.connects = 0

    def describe(self) -> str:
        via = f" via bastion {self.ssh.bastion.describe()}" if self.ssh.bastion else ""
        return f"{self.ssh.user}@{self.host}:{self.ssh.port}{via}"

    # -- connection --------------------------------------------------------------------------------
    def _login(self, host: str, port: int, user: str, key_file: str, passphrase: str | None,
               sock: paramiko.Channel | None = None) -> paramiko.SSHClient:
        client = self._client_factory()
        try:
            client.load_host_keys(self.ssh.known_hosts)
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
            client.connect(
                host,
                port=port,
                username=user,
                key_filename=key_file,
                passphrase=passphrase,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
                allow_agent=False,
                look_for_keys=False,
                **({"sock": sock} if sock is not None else {}),
            )
        except BaseException:
            client.close()
            raise
        return client

    def _connect_once(self) -> paramiko.SSHClient:
        bastion = self.ssh.bastion
        if bastion is None:
            return self._login(self.host, self.ssh.port, self.ssh.user, self.ssh.key_file, self.ssh.key_passphrase)
        try:
            jump = self._login(bastion.host, bastion.port, bastion.user, bastion.key_file, bastion.key_passphrase)
        except paramiko.BadHostKeyException:
            raise _BastionError("host key does not match known_hosts", fatal=True) from None
        except paramiko.AuthenticationException as exc:
            raise _BastionError(f"authentication failed with key {bastion.key_file}: {exc}", fatal=True) from None
        except paramiko.SSHException as exc:
            fatal = "known_hosts" in str(exc)
            raise _BastionError("host key not in known_hosts" if fatal else str(exc) or type(exc).__name__,
                                fatal=fatal) from None
        except (OSError, EOFError) as exc:
            raise _BastionError(str(exc) or type(exc).__name__) from None
        try:
            transport = jump.get_transport()
            if transport is None:
                raise _BastionError("no transport after connect")
            try:
                channel = transport.open_channel("direct-tcpip", (self.host, self.ssh.port), ("127.0.0.1", 0),
                                                 timeout=self.connect_timeout)
            except paramiko.ChannelException as exc:
                raise _BastionError(f"cannot forward to {self.host}:{self.ssh.port} ({exc})") from None
            except (paramiko.SSHException, OSError, EOFError) as exc:
                raise _BastionError(f"cannot forward to {self.host}:{self.ssh.port} "
                                    f"({exc or type(exc).__name__})") from None
            client = self._login(self.host, self.ssh.port, self.ssh.user, self.ssh.key_file,
                                 self.ssh.key_passphrase, sock=channel)
        except BaseException:
            jump.close()
            raise
        self._jump = jump
        return client

    def _connect(self) -> None:
        """Connect with retries; raise ExecutorError saying what was tried."""
        attempts = self.retries + 1
        started = time.monotonic()
        errors: list[str] = []
        for attempt in range(1, attempts + 1):
            try:
                client = self._connect_once()
            except FileNotFoundError as exc:
                raise ExecutorError(f"ssh {self.describe()}: cannot read {exc.filename}: file not found") from None
            except _BastionError as exc:
                if exc.fatal:
                    raise ExecutorError(f"ssh {self.describe()}: bastion: {exc} "
                                        f"(known_hosts {self.ssh.known_hosts}; rejected)") from None
                errors.append(f"bastion: {exc}")
            except paramiko.BadHostKeyException:
                raise ExecutorError(
                    f"ssh {self.describe()}: host key does not match known_hosts {self.ssh.known_hosts} (rejected)"
                ) from None
            except paramiko.AuthenticationException as exc:
                raise ExecutorError(
                    f"ssh {self.describe()}: authentication failed with key {self.ssh.key_file}: {exc}"
                ) from None
            except paramiko.SSHException as exc:
                if "known_hosts" in str(exc):
                    raise ExecutorError(
                        f"ssh {self.describe()}: host key not in known_hosts {self.ssh.known_hosts} (rejected)"
                    ) from None
                errors.append(str(exc) or type(exc).__name__)
            except (OSError, EOFError) as exc:
                errors.append(str(exc) or type(exc).__name__)
            else:
                self._client = client
                self.connects += 1
                self._open_shell()
                return
            if attempt < attempts:
                self._pause(min(self.backoff * 2 ** (attempt - 1), 2.0))
        raise ExecutorError(
            f"ssh {self.describe()}: {attempts} attempt(s) over {format_seconds(time.monotonic() - started, 1)} "
            "failed, last: "
            f"{errors[-1] if errors else 'unknown error'}; tried key {self.ssh.key_file}, "
            f"known_hosts {self.ssh.known_hosts}"
        )

    def _open_shell(self) -> None:
        assert self._client is not None
        transport = self._client.get_transport()
        if transport is None:
            raise ExecutorError(f"ssh {self.describe()}: no transport after connect")
        channel = transport.open_session(timeout=self.connect_timeout)
        channel.exec_command("exec bash --noprofile --norc")
        self._shell = channel
        self._buffer = b""

    def _alive(self) -> bool:
        if self._client is None or self._shell is None:
            return False
        transport = self._client.get_transport()
        return bool(transport and transport.is_active() and not self._shell.closed
                    and not self._shell.exit_status_ready())

    def _drop(self) -> None:
        if self._shell is not None:
            try:
                self._shell.close()
            except Exception:  # closing a broken channel may raise anything; it is gone either way
                log.debug("closing the shell on %s failed", self.host, exc_info=True)
        if self._client is not None:
            self._client.close()
        if self._jump is not None:
            self._jump.close()
        self._shell = None
        self._client = None
        self._jump = None

    def close(self) -> None:
        with self._lock:
            self._drop()

    # -- commands ------------------------------------------------------------------------------------
    def run(self, script: str, timeout: float = 30.0) -> Result:
        with self._lock:
            if not self._alive():
                self._drop()
                self._connect()
            started = time.monotonic()
            try:
                rc, out, err = self._exchange(script, timeout)
            except (OSError, EOFError, paramiko.SSHException) as exc:
                self._drop()
                raise ExecutorError(
                    f"ssh {self.describe()}: connection lost while running a command ({exc or type(exc).__name__}); "
                    "its outcome is unknown"
                ) from None
            return Result(self.host, rc, out, err, time.monotonic() - started)

    def _exchange(self, script: str, timeout: float) -> tuple[int, str, str]:
        assert self._shell is not None
        marker = "__xdc_end_" + secrets.token_hex(8)
        command = (
            f"exec 3>&1; __xdc_err=$({_wrap(script, timeout, self.ssh.sudo, ' 2>&1 1>&3 3>&-')}); __xdc_rc=$?; "
            f"printf '\\n%s %d %s\\n' {marker} \"$__xdc_rc\" \"$(printf %s \"$__xdc_err\" | base64 -w0)\"\n"
        )
        self._shell.sendall(command.encode())
        deadline = time.monotonic() + timeout + _SLACK
        needle = ("\n" + marker + " ").encode()
        while True:
            index = self._buffer.find(needle)
            if index >= 0:
                end = self._buffer.find(b"\n", index + len(needle))
                if end >= 0:
                    out = self._buffer[:index]
                    tail = self._buffer[index + len(needle):end].decode().split(" ", 1)
                    self._buffer = self._buffer[end + 1:]
                    err = base64.b64decode(tail[1]).decode(errors="replace") if len(tail) > 1 and tail[1] else ""
                    return int(tail[0]), out.decode(errors="replace"), err
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._drop()
                raise ExecutorError(f"ssh {self.describe()}: no answer within "
                                    f"{format_seconds(timeout + _SLACK, None)}; shell dropped")
            self._shell.settimeout(min(remaining, 1.0))
            try:
                chunk = self._shell.recv(65536)
            except TimeoutError:
                continue
            except socket.timeout:  # noqa: UP041 - paramiko raises socket.timeout
                continue
            if not chunk:
                stderr = b""
                while self._shell.recv_stderr_ready():
                    stderr += self._shell.recv_stderr(65536)
                raise EOFError(f"the remote shell ended ({stderr.decode(errors='replace').strip()[:200]})")
            self._buffer += chunk


class ExecutorPool:
    """One executor per declared host, created on first use; refuses undeclared hosts."""

    def __init__(
        self,
        topology: Topology,
        allowlist: Allowlist,
        *,
        retries: int = 3,
        connect_timeout: float = 5.0,
        dry_run: bool = False,
        redact: Callable[[str], str] | None = None,
        factory: Callable[[str], Executor] | None = None,
    ) -> None:
        self.topology = topology
        self.allowlist = allowlist
        self.retries = retries
        self.connect_timeout = connect_timeout
        self.dry_run = dry_run
        self.redact = redact or (lambda text: text)
        self._factory = factory
        self._executors: dict[str, Executor] = {}
        self._lock = threading.Lock()
        self.recorded: list[tuple[str, str]] = []

    def get(self, host: str) -> Executor:
        self.allowlist.check_host(host)
        with self._lock:
            if host not in self._executors:
                self._executors[host] = self._make(host)
            return self._executors[host]

    def _make(self, host: str) -> Executor:
        if self._factory is not None:
            return self._factory(host)
        if self.dry_run:
            return DryRunExecutor(host, self.recorded)
        dc = self.topology.dc(self.topology.dc_of_host(host))
        if dc.ssh is not None:
            return SSHExecutor(host, dc.ssh, retries=self.retries, connect_timeout=self.connect_timeout,
                               redact=self.redact)
        if host in LOCAL_HOSTS:
            return LocalExecutor(host, self.redact)
        raise FaultUnsupported(f"no SSH access configured for {dc.name} (datacenters.{dc.name}.ssh): "
                               f"cannot run commands on {host}")

    def opened(self) -> list[str]:
        with self._lock:
            return list(self._executors)

    def close(self) -> None:
        with self._lock:
            executors, self._executors = list(self._executors.values()), {}
        for executor in executors:
            executor.close()


def run_on_hosts(pool: ExecutorPool, scripts: Mapping[str, str], *, what: str,
                 timeout: float = 30.0, check: bool = True) -> dict[str, Result]:
    """Run one script per host, in parallel; with ``check`` raise one FaultError naming every failure."""
    if not scripts:
        return {}
    for host in scripts:
        pool.allowlist.check_host(host)

    def one(item: tuple[str, str]) -> Result:
        host, script = item
        return pool.get(host).run(script, timeout)

    if len(scripts) == 1:
        results = [one(next(iter(scripts.items())))]
    else:
        with ThreadPoolExecutor(max_workers=min(8, len(scripts))) as threads:
            results = list(threads.map(one, scripts.items()))
    by_host = {r.host: r for r in results}
    if check:
        failed = [f"{r.host}: {r.why()}" for r in results if not r.ok]
        if failed:
            raise FaultError(f"{what}: " + "; ".join(failed))
    return by_host
