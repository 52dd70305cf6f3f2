"""Process faults on a processing element, found through the REST API and signalled on its host over SSH.

* ``pe-kill``: SIGKILL the PE's process (``processId`` from REST). Nothing to revert: the instance restarts
  a restartable PE; healed = the PE runs again (REST ``running``, new process).
* ``pe-hang``: SIGSTOP the process (state ``T`` in /proc); heal = SIGCONT (the dead-man timer sends it too).

Every signal is guarded by the process start time read before the fault, so a recycled PID is never hit.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from support.faults.base import Fault, FaultContext, FaultError, FaultRefused, Verified, now, poll
from support.streams.errors import StreamsError

__all__ = ["PEHang", "PEKill", "PeRef", "locate_any_pe", "locate_pe", "locate_pes"]

PID_PLACEHOLDER = "${PE_PID}"


@dataclass(frozen=True)
class PeRef:
    dc: str
    job_name: str
    job_id: str
    pe_id: str
    pid: int
    launch_count: int
    host: str


def _stat_field(pid: str, field: int) -> str:
    """Shell reading field ``field`` (1-based, counted after the command name) of /proc/PID/stat."""
    return f"$(sed 's/.*) //' /proc/{pid}/stat 2>/dev/null | cut -d' ' -f{field})"


def locate_pe(ctx: FaultContext, dc: str, operator: str, app: str | None = None) -> PeRef:
    """The PE running ``operator`` in a declared job of ``dc`` (``app``: only that application's jobs)."""
    ctx.allowlist.check_dc(dc)
    info = ctx.topology.dc(dc)
    client = ctx.rest.get(dc)
    if client is None:
        raise FaultError(f"no REST client for {dc}")
    names = [ctx.allowlist.check_application(app)] if app else list(ctx.topology.jobs)
    seen: list[str] = []
    for job_name in names:
        ctx.allowlist.check_job(dc, job_name)
        job = client.find_job(job_name)
        if job is None:
            continue
        seen.append(job_name)
        try:
            op = client.operator(job, operator)
        except StreamsError:
            continue
        link = op.get("pe")
        pe = client.get(link) if isinstance(link, str) else None
        if not isinstance(pe, dict):
            raise FaultError(f"operator {operator} of {job_name} in {dc} has no PE link")
        pid = str(pe.get("processId") or "")
        if not pid.isdigit():
            raise FaultError(f"the PE running {operator} in {dc} ({job_name}, PE {pe.get('id')}) has no process "
                             f"(status {pe.get('status')})")
        host = _pe_host(ctx, client, pe, info.hosts, dc)
        return PeRef(dc, job_name, str(job.get("id")), str(pe.get("id")), int(pid), int(pe.get("launchCount") or 0),
                     host)
    where = f"running jobs {', '.join(seen)}" if seen else "no running declared job"
    raise FaultError(f"no PE runs operator {operator} in {dc} ({where})")


def _running_pes(ctx: FaultContext, dc: str, client: Any) -> Iterator[PeRef]:
    """The PEs with a process of the declared jobs running in ``dc``, job by job, as REST lists them."""
    info = ctx.topology.dc(dc)
    for job_name in ctx.topology.jobs:
        job = client.find_job(job_name)
        if job is None:
            continue
        for pe in client.pes(job):
            pid = str(pe.get("processId") or "")
            if pid.isdigit():
                host = _pe_host(ctx, client, pe, info.hosts, dc)
                yield PeRef(dc, job_name, str(job.get("id")), str(pe.get("id")), int(pid),
                            int(pe.get("launchCount") or 0), host)


def locate_any_pe(ctx: FaultContext, dc: str) -> PeRef | None:
    """Some PE of a declared job running in ``dc`` (to find the DC's cgroup), or None."""
    client = ctx.rest.get(dc)
    if client is None:
        return None
    return next(_running_pes(ctx, dc, client), None)


def locate_pes(ctx: FaultContext, dc: str) -> list[PeRef]:
    """Every PE with a process of the declared jobs running in ``dc`` (empty when none runs there)."""
    ctx.allowlist.check_dc(dc)
    client = ctx.rest.get(dc)
    if client is None:
        raise FaultError(f"no REST client for {dc}")
    return list(_running_pes(ctx, dc, client))


def _pe_host(ctx: FaultContext, client: Any, pe: dict[str, Any], hosts: tuple[str, ...], dc: str) -> str:
    for key in ("host", "resource"):
        link = pe.get(key)
        if isinstance(link, str) and link:
            try:
                doc = client.get(link)
            except StreamsError:
                continue
            for name in (doc.get("ipAddress"), doc.get("name"), doc.get("displayName")):
                if name in hosts:
                    return str(name)
            if isinstance(doc, dict):
                raise FaultRefused(f"refused: the PE runs on {doc.get('ipAddress') or doc.get('name')}, which is not "
                                   f"a declared host of {dc} ({', '.join(hosts) or 'none'})")
    if len(hosts) == 1:
        return hosts[0]
    if not hosts:
        raise FaultRefused(f"refused: {dc} declares no hosts (datacenters.{dc}.hosts)")
    raise FaultError(f"cannot tell which host of {dc} runs PE {pe.get('id')} (the REST API gives no host link)")


class _PeFault(Fault):
    requires: ClassVar[tuple[str, ...]] = ("bash",)

    def __init__(self, ctx: FaultContext, dc: str, operator: str, app: str | None = None,
                 fault_id: str | None = None) -> None:
        super().__init__(ctx, fault_id)
        self.dc = ctx.allowlist.check_dc(dc)
        self.operator = operator
        if app:
            ctx.allowlist.check_application(app)
        self.app = app
        self.pe: PeRef | None = None
        self.starttime = ""

    def describe(self) -> dict[str, Any]:
        found = {"job": self.pe.job_name, "pe": self.pe.pe_id, "pid": self.pe.pid, "host": self.pe.host} \
            if self.pe else {}
        return {"dc": self.dc, "operator": self.operator, **found}

    def hosts(self) -> list[str]:
        return [self.pe.host] if self.pe else [self.ctx.topology.dc(self.dc).primary_host]

    @property
    def pid(self) -> str:
        return str(self.pe.pid) if self.pe else PID_PLACEHOLDER

    def prepare(self) -> None:
        self.pe = locate_pe(self.ctx, self.dc, self.operator, self.app)
        result = self.ctx.executors.get(self.pe.host).check(
            f"echo \"START {_stat_field(self.pid, 20)}\"", what="read the PE's start time")
        fields = result.lines("START")
        if not fields or not fields[0]:
            raise FaultError(f"PE process {self.pid} not found on {self.pe.host}")
        self.starttime = fields[0][0]
        super().prepare()

    def _guarded(self, command: str) -> str:
        """``command`` only if /proc/PID is still the PE process seen before the fault."""
        start = shlex.quote(self.starttime) if self.starttime else "\"${PE_STARTTIME}\""
        return (f"if [ \"{_stat_field(self.pid, 20)}\" = {start} ]; then {command}; "
                f"else echo 'process {self.pid} is no longer the PE seen before the fault' >&2; exit 3; fi\n")

    def _state(self) -> tuple[str, str]:
        """(state letter or 'gone', start time) of the PE's process now."""
        assert self.pe is not None
        result = self.ctx.executors.get(self.pe.host).run(
            f"echo \"STATE {_stat_field(self.pid, 1)} {_stat_field(self.pid, 20)}\"")
        fields = (result.lines("STATE") or [[]])[0]
        if len(fields) < 2 or fields[1] != self.starttime:
            return "gone", fields[1] if len(fields) > 1 else ""
        return fields[0], fields[1]

    def verify_scripts(self) -> dict[str, str]:
        return {host: f"echo \"STATE {_stat_field(self.pid, 1)} {_stat_field(self.pid, 20)}\"\n"
                for host in self.hosts()}

    def _running_again(self, timeout: float, relaunched: bool) -> Verified:
        assert self.pe is not None
        client = self.ctx.rest[self.dc]

        def check() -> tuple[bool, str]:
            job = client.find_job(self.pe.job_name)  # type: ignore[union-attr]
            if job is None:
                return False, f"{self.pe.job_name} not running in {self.dc}"  # type: ignore[union-attr]
            pes = {str(p.get("id")): p for p in client.pes(job)}
            pe = pes.get(self.pe.pe_id)  # type: ignore[union-attr]
            if pe is None:
                return False, f"PE {self.pe.pe_id} gone from {self.pe.job_name}"  # type: ignore[union-attr]
            launches = int(pe.get("launchCount") or 0)
            ok = pe.get("status") == "running" and (not relaunched or launches > self.pe.launch_count)  # type: ignore[union-attr]
            return ok, (f"PE {pe.get('id')} {pe.get('status')}, launchCount {launches}, "
                        f"processId {pe.get('processId')}")

        return poll(check, timeout, f"PE {self.pe.pe_id} running {self.operator} in {self.dc} again", interval=0.05)


class PEKill(_PeFault):
    kind = "pe-kill"
    reversible = False

    def inject_scripts(self) -> dict[str, str]:
        return {host: self._guarded(f"kill -KILL {self.pid}") for host in self.hosts()}

    def verify(self, timeout: float) -> Verified:
        def check() -> tuple[bool, str]:
            state, _ = self._state()
            return state in ("gone", "Z", "X"), f"process {self.pid}: {state}"

        return poll(check, timeout, f"PE process {self.pid} killed")

    def heal(self) -> None:
        """Nothing to revert: the instance restarts the PE."""

    def heal_scripts(self) -> dict[str, str]:
        return {}

    def verify_healed(self, timeout: float) -> Verified:
        if self.pe is None:
            return Verified(now(), 0, "nothing injected")
        return self._running_again(timeout, relaunched=True)


class PEHang(_PeFault):
    kind = "pe-hang"

    def inject_scripts(self) -> dict[str, str]:
        return {host: self._guarded(f"kill -STOP {self.pid}") for host in self.hosts()}

    def revert_scripts(self) -> dict[str, str]:
        start = shlex.quote(self.starttime) if self.starttime else "\"${PE_STARTTIME}\""
        return {host: f"[ \"{_stat_field(self.pid, 20)}\" = {start} ] && kill -CONT {self.pid}\ntrue\n"
                for host in self.hosts()}

    def meta(self) -> dict[str, str]:
        return {**super().meta(), "stopped_pid": self.pid}

    def verify(self, timeout: float) -> Verified:
        def check() -> tuple[bool, str]:
            state, _ = self._state()
            return state == "T", f"process {self.pid} state {state}"

        return poll(check, timeout, f"PE process {self.pid} stopped (state T)")

    def verify_healed(self, timeout: float) -> Verified:
        if self.pe is None:
            return Verified(now(), 0, "nothing injected")

        def check() -> tuple[bool, str]:
            state, _ = self._state()
            return state not in ("T", "t"), f"process {self.pid} state {state}"

        resumed = poll(check, timeout, f"PE process {self.pid} running again")
        running = self._running_again(timeout, relaunched=False)
        return Verified(resumed.at, resumed.probes + running.probes, f"{resumed.evidence}; {running.evidence}")

    def watch_pids(self) -> list[int]:
        return [self.pe.pid] if self.pe else []
