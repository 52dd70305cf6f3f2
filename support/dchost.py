"""What the tester does on a data center's first host besides faults, as a team would do it by hand.

- :class:`StandbyStub`: the passive side of active/passive, as in the toolkit's passive sample: a standalone
  process (not a Streams job: REST, JMX and the exporter never see it) that holds the toolkit's heartbeat port
  and runs a failover script on every DOWN. It is found by that port (``ss``), started detached over SSH with the
  configured command, and stopped by PID.
- :class:`ToolkitFiles`: the toolkit's configuration files (``configFileName``): keys read and rewritten over
  SSH, the original text restored afterwards.
- :func:`lookup_special_port`: the SpecialMessagePort's address from the instance's name service
  (``streamtool getnsentry``), unless the configuration fixes the port.
"""

from __future__ import annotations

import base64
import logging
import re
import shlex
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from support.config.settings import StandbySettings
from support.faults.core import DataCenterInfo, FaultError
from support.faults.executor import Executor, ExecutorPool
from support.orchestration import Journal
from support.waits import WaitTimeout, wait_until

log = logging.getLogger(__name__)

_PID = re.compile(r"pid=(\d+)")


def _listeners(executor: Executor, port: int) -> set[int]:
    """PIDs of the processes listening on TCP ``port`` on the host."""
    result = executor.run(f"ss -Hltnp 'sport = :{int(port)}'", timeout=10)
    if not result.ok:
        raise FaultError(f"cannot list listeners on {executor.host}: {result.why()}")
    return {int(pid) for pid in _PID.findall(result.stdout)}


@dataclass
class StandbyStub:
    """The standalone passive stub of one application in one data center."""

    app: str
    dc: DataCenterInfo
    command: str
    log_file: str
    executor: Executor
    journal: Journal

    def pid(self) -> int | None:
        """The process holding the toolkit's heartbeat port, if any (the application must not run here)."""
        pids = _listeners(self.executor, self.dc.crossdc_port)
        return min(pids) if pids else None

    def start_script(self) -> str:
        """The shell that starts the stub detached (own session, output appended to its log) and returns at once."""
        directory = shlex.quote(self.log_file.rsplit("/", 1)[0] or "/")
        # only the stub goes to the background, with every descriptor of this session replaced: a background list
        # (`a && b &`) would keep the session's stderr open in its subshell, and the command would never end
        return (f"mkdir -p {directory} && cd / || exit 1\n"
                f"setsid nohup sh -c {shlex.quote(self.command)} >> {shlex.quote(self.log_file)} 2>&1 < /dev/null &\n"
                "echo started")

    def start(self, timeout: float = 30.0) -> int:
        """Start the stub and wait until it holds the heartbeat port."""
        result = self.executor.run(self.start_script(), timeout=15)
        if not result.ok:
            raise FaultError(f"cannot start the {self.app} standby on {self.executor.host}: {result.why()}")
        pid = wait_until(self.pid, lambda found: found is not None, timeout=timeout, interval=0.1,
                         what=f"the {self.app} standby in {self.dc.name} to hold port {self.dc.crossdc_port} "
                              f"(log: {self.executor.host}:{self.log_file})")
        assert pid is not None
        self.journal.record("deployment.standby_started", dc=self.dc.name, app=self.app, pid=pid,
                            host=self.executor.host)
        return pid

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the stub by PID (TERM, then KILL), if one runs."""
        pid = self.pid()
        if pid is None:
            return
        self.executor.run(f"kill {pid} 2>/dev/null; true", timeout=10)
        try:
            wait_until(lambda: self._alive(pid), lambda alive: not alive, timeout=timeout, interval=0.1,
                       what=f"the {self.app} standby (pid {pid}) in {self.dc.name} to exit")
        except WaitTimeout:
            self.executor.run(f"kill -KILL {pid} 2>/dev/null; true", timeout=10)
            wait_until(lambda: self._alive(pid), lambda alive: not alive, timeout=timeout, interval=0.1,
                       what=f"the {self.app} standby (pid {pid}) in {self.dc.name} to exit after SIGKILL")
        self.journal.record("deployment.standby_stopped", dc=self.dc.name, app=self.app, pid=pid)

    def _alive(self, pid: int) -> bool:
        return self.executor.run(f"kill -0 {pid} 2>/dev/null", timeout=10).ok


@runtime_checkable
class _HasStandby(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def standby(self) -> StandbySettings | None: ...


def standby_stubs(pool: ExecutorPool, state_dir: str, journal: Journal) -> Callable[[Any, str], StandbyStub]:
    """The standalone stub of an application in a data center, on that data center's first host."""

    def stub(app: Any, dc: str) -> StandbyStub:
        assert isinstance(app, _HasStandby)
        if app.standby is None:
            raise FaultError(f"application {app.name} has no standby configured (applications.{app.name}.standby)")
        info = pool.topology.dc(dc)
        log_file = (app.standby.log_file or f"{state_dir}/standby-{app.name}-{{dc}}.log").replace("{dc}", dc)
        return StandbyStub(app.name, info, app.standby.command.replace("{dc}", dc), log_file,
                           pool.get(info.primary_host), journal)

    return stub


def start_instance(pool: ExecutorPool, dc: str, instance_id: str) -> None:
    """``streamtool startinstance`` on the data center's first host (idempotent)."""
    info = pool.topology.dc(dc)
    result = pool.get(info.primary_host).run(
        f"{shlex.quote(info.streamtool)} startinstance -i {shlex.quote(instance_id)}", timeout=60)
    if not result.ok:
        raise FaultError(f"cannot start instance {instance_id} in {dc}: {result.why()}")


# --------------------------------------------------------------------------------------- config files

_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def parse_config(text: str) -> dict[str, str]:
    """The toolkit's reading of a config file (``readValueFromConfigFile``): lines trimmed of spaces, empty and
    ``#`` lines skipped, a line split at ``=`` with empty tokens dropped must give exactly two tokens
    (``key=value``; ``a==b`` reads as ``b``, ``a=b=c`` is ignored); the first line of a key wins."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip(" ")
        if not line or line.startswith("#"):
            continue
        tokens = [token for token in line.split("=") if token]
        if len(tokens) == 2:
            values.setdefault(tokens[0].strip(" "), tokens[1].strip(" "))
    return values


def rewrite_config(text: str, changes: Mapping[str, str]) -> str:
    """``text`` with each key of ``changes`` set: its active lines replaced (commented ones kept), or appended."""
    for key in changes:
        if not _KEY.match(key):
            raise ValueError(f"not a toolkit key: {key!r}")
    done: set[str] = set()
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        key = line.split("=", 1)[0].strip() if "=" in line and not line.startswith("#") else ""
        if key in changes:
            if key not in done:
                out.append(f"{key}={changes[key]}")
                done.add(key)
            continue
        out.append(raw)
    out.extend(f"{key}={value}" for key, value in changes.items() if key not in done)
    return "\n".join(out) + "\n"


@dataclass
class ToolkitFiles:
    """The toolkit's configuration files of one data center, on its first host."""

    dc: DataCenterInfo
    executor: Executor

    def paths(self) -> dict[str, str]:
        return dict(self.dc.config_files)

    def read(self, role: str) -> str:
        path = self.dc.config_files[role]
        result = self.executor.run(f"cat -- {shlex.quote(path)}", timeout=10)
        if not result.ok:
            raise FaultError(f"cannot read the toolkit's {role} config file {self.executor.host}:{path}: "
                             f"{result.why()}")
        return result.stdout

    def values(self, role: str) -> dict[str, str]:
        return parse_config(self.read(role))

    def write(self, role: str, text: str) -> None:
        """Replace the file atomically (a temporary file beside it, then ``mv``) with exactly ``text`` (shipped
        base64-encoded: any content, with or without a final newline, arrives byte for byte)."""
        path = self.dc.config_files[role]
        tmp = f"{path}.tester-tmp"
        encoded = base64.b64encode(text.encode()).decode()
        script = (f"printf %s {encoded} | base64 -d > {shlex.quote(tmp)} || exit 1\n"
                  f"mv -f -- {shlex.quote(tmp)} {shlex.quote(path)}")
        result = self.executor.run(script, timeout=10)
        if not result.ok:
            raise FaultError(f"cannot write the toolkit's {role} config file {self.executor.host}:{path}: "
                             f"{result.why()}")

    def set(self, role: str, changes: Mapping[str, str]) -> Callable[[], None]:
        """Set keys in the ``role`` file; return the undo (writes the original text back)."""
        original = self.read(role)
        self.write(role, rewrite_config(original, changes))
        return lambda: self.write(role, original)


@dataclass
class SnapshotStore:
    """The toolkit's snapshot files (``dataSnapshotStorageDirectory``) on a data center's first host."""

    directory: str
    executor: Executor

    def newest(self) -> float | None:
        """Modification time (epoch s, host clock) of the newest ``*.snapshot`` file, None when there is none."""
        script = (f"find {shlex.quote(self.directory)} -maxdepth 1 -name '*.snapshot' -printf '%T@\\n' "
                  "2>/dev/null | sort -n | tail -1")
        result = self.executor.run(script, timeout=10)
        text = result.stdout.strip()
        try:
            return float(text) if result.ok and text else None
        except ValueError:
            return None


# --------------------------------------------------------------------------------------- name service


def lookup_special_port(dc: DataCenterInfo, executor: Executor, job_id: str, timeout: float = 20.0
                        ) -> tuple[str, int]:
    """``(host, port)`` of the SpecialMessagePort of job ``job_id``: the configured port on the first host, or
    the name-service entry (``streamtool getnsentry SpecialMessagePort --jobs ID``), polled until registered."""
    if dc.special_message_port is not None:
        return dc.primary_host, dc.special_message_port
    command = (f"{shlex.quote(dc.streamtool)} getnsentry SpecialMessagePort --jobs {shlex.quote(str(job_id))}")

    def look() -> tuple[str, int] | None:
        result = executor.run(command, timeout=15)
        for line in result.stdout.splitlines():
            match = re.search(r"(\S+):(\d+)\s*$", line.strip())
            if result.ok and match:
                return match.group(1), int(match.group(2))
        return None

    started = time.monotonic()
    found = wait_until(look, lambda entry: entry is not None, timeout=timeout, interval=0.2,
                       what=f"the SpecialMessagePort of job {job_id} in {dc.name}'s name service ({command})")
    assert found is not None
    log.debug("%s: SpecialMessagePort of job %s at %s:%s (%.1f s)", dc.name, job_id, *found,
              time.monotonic() - started)
    return found
