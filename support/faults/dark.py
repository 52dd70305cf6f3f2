"""A whole data center goes dark, as in a power loss: ``dark``.

One command per host of the data center, sent to every host in parallel, does three things in a row:

1. cuts the network: the ``isolate`` rules (:class:`support.faults.network.Isolate`: everything in and out is
   dropped except loopback, the DC's own hosts and the controller's SSH connection). Dropped, not refused: the
   other data center and the clients get no answer at all, as from hosts without power;
2. freezes (SIGSTOP) what would relaunch the application: the parent process of the PEs (the host controller of
   a Streams host, the instance service in the lab). Nothing restarts a PE in a power loss; a frozen parent also
   leaves the instance's REST API hanging, as a dark data center's does;
3. SIGKILLs, in one ``kill``, every PE of the declared jobs running in the data center (process ids from REST,
   read before the fault) and the standalone passive stub if one runs there (the process holding the toolkit's
   heartbeat port that is no PE, as :class:`support.dchost.StandbyStub` finds it).

Every signal is guarded by the process start time read before the fault, so a recycled PID is never hit.

Proof of effect: the PEs' and the stub's processes are gone, the parents frozen (state ``T``), the crossdc ports
unanswered both ways between the data center and the others, and the controller's connects to the data
center's REST and data exchange endpoints unanswered. Revert (heal, dead-man timer, ``faults clean``): the rules
are deleted first, then the parents continue (SIGCONT); they find their PEs dead and relaunch them, as Streams
does after a host failure. Proof of heal: the crossdc ports answer again both ways, the parents run, and the
data center's REST API and data exchange answer the controller again.
"""

from __future__ import annotations

import shlex
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from support.faults.base import Fault, FaultContext, FaultError, Verified, now, poll
from support.faults.executor import run_on_hosts
from support.faults.network import Isolate, ProbeResult, run_probes
from support.faults.process import PeRef, locate_pes
from support.streams.errors import StreamsError

__all__ = ["Dark", "Proc"]

PARENTS_PLACEHOLDER = "${PE_PARENTS}"
KILL_PLACEHOLDER = "${PE_PIDS} ${STANDBY_STUB_PID}"
#: fields of /proc/PID/stat after the command name: state, parent pid, start time
_STAT = "$(sed 's/.*) //' /proc/{pid}/stat 2>/dev/null | cut -d' ' -f1,2,20)"


@dataclass(frozen=True)
class Proc:
    """A process on a host as read before the fault: its start time guards every signal."""

    host: str
    pid: int
    starttime: str
    what: str  # "PE 3 of orders", "instance/host controller (python3)", "standby stub"

    def guard(self) -> str:
        """Shell condition: /proc/PID is still this process."""
        start = shlex.quote(self.starttime)
        return f"[ \"$(sed 's/.*) //' /proc/{self.pid}/stat 2>/dev/null | cut -d' ' -f20)\" = {start} ]"


def _read_script(pids: list[int], port: int) -> str:
    """Shell printing ``PE pid state ppid start``, ``PARENT pid state ppid start comm`` per PE parent and
    ``LISTENER pid state ppid start`` per process holding TCP ``port``."""
    lines = []
    for pid in pids:
        lines.append(f"__s={_STAT.format(pid=int(pid))}; echo \"PE {int(pid)} $__s\"\n"
                     "__pp=$(echo \"$__s\" | cut -d' ' -f2)\n"
                     "[ -n \"$__pp\" ] && echo \"PARENT $__pp $(sed 's/.*) //' /proc/$__pp/stat 2>/dev/null "
                     "| cut -d' ' -f1,2,20) $(cat /proc/$__pp/comm 2>/dev/null | tr ' ' _)\"\n")
    lines.append(f"for __l in $(ss -Hltnp 'sport = :{int(port)}' 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 "
                 "| sort -u); do echo \"LISTENER $__l $(sed 's/.*) //' /proc/$__l/stat 2>/dev/null "
                 "| cut -d' ' -f1,2,20)\"; done\ntrue\n")
    return "".join(lines)


def _state_script(procs: list[Proc]) -> str:
    """Shell printing ``STATE pid state start`` for each process (empty state and start when gone)."""
    return "".join(f"echo \"STATE {p.pid} $(sed 's/.*) //' /proc/{p.pid}/stat 2>/dev/null | cut -d' ' -f1,20)\"\n"
                   for p in procs) + "true\n"


def _connect(url: str, timeout: float) -> str:
    """``open``, ``refused`` or ``timeout``/``error`` for a TCP connect from the controller to ``url``'s port."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return "open"
    except ConnectionRefusedError:
        return "refused"
    except TimeoutError:
        return "timeout"
    except OSError as exc:
        return f"error ({exc.strerror or exc})"


class Dark(Fault):
    kind = "dark"
    requires = ("bash", "iptables", "ss")

    def __init__(self, ctx: FaultContext, dc: str, fault_id: str | None = None) -> None:
        super().__init__(ctx, fault_id)
        self.cut = Isolate(ctx, dc, fault_id=self.id)  # same id: the same rule comment
        self.dc = self.cut.dc
        self.pes: list[PeRef] = []
        self.killed: list[Proc] = []  # the PEs and the stub
        self.frozen: list[Proc] = []  # the PEs' parents

    # -- description --------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        if self.prepared:
            found = {"pes": len([p for p in self.killed if p.what.startswith("PE ")]),
                     "stub": next((p.pid for p in self.killed if p.what == "standby stub"), None),
                     "frozen": [p.pid for p in self.frozen]}
        return {"dc": self.dc.name, **found}

    def sizing(self) -> list[str]:
        if not self.prepared:
            return [f"every PE of the declared jobs running in {self.dc.name} and its standby stub, if any: "
                    "found through REST and ss when the fault is injected"]
        lines = [f"{p.host}: SIGKILL {p.pid} ({p.what})" for p in self.killed]
        lines += [f"{p.host}: SIGSTOP {p.pid} ({p.what})" for p in self.frozen]
        return lines or [f"no PE of a declared job and no standby stub runs in {self.dc.name}: only the network "
                         "is cut"]

    def hosts(self) -> list[str]:
        return self.cut.hosts()

    def meta(self) -> dict[str, str]:
        return {**super().meta(), "stopped_pids": " ".join(str(p.pid) for p in self.frozen)}

    def frozen_pids(self) -> dict[str, list[int]]:
        """host -> the parents this fault froze (the residue audit reports them while still stopped)."""
        found: dict[str, list[int]] = {}
        for proc in self.frozen:
            found.setdefault(proc.host, []).append(proc.pid)
        return found

    # -- life ---------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Baseline probes (every crossdc port answers both ways), then the PEs from REST and, on each host of
        the data center, their processes, their parents and the stub holding the heartbeat port."""
        self.cut.prepare()
        self.pes = locate_pes(self.ctx, self.dc.name)
        by_host: dict[str, list[PeRef]] = {host: [] for host in self.dc.hosts}
        for pe in self.pes:
            by_host.setdefault(pe.host, []).append(pe)
        scripts = {host: _read_script([pe.pid for pe in pes], self.dc.crossdc_port) for host, pes in by_host.items()}
        results = run_on_hosts(self.ctx.executors, scripts, what=f"read the processes of {self.dc.name}")
        killed: list[Proc] = []
        frozen: dict[tuple[str, int], Proc] = {}
        missing: list[str] = []
        for host, result in results.items():
            seen: dict[int, list[str]] = {int(f[0]): f[1:] for f in result.lines("PE") if f and f[0].isdigit()}
            for pe in by_host.get(host, []):
                fields = seen.get(pe.pid, [])
                if len(fields) < 3 or fields[0] in ("Z", "X"):
                    missing.append(f"PE {pe.pe_id} of {pe.job_name} (process {pe.pid}) on {host}")
                    continue  # it ended since REST listed it (its parent relaunches it unless frozen below)
                killed.append(Proc(host, pe.pid, fields[2], f"PE {pe.pe_id} of {pe.job_name}"))
            for fields in result.lines("PARENT"):
                if len(fields) < 4 or not fields[0].isdigit():
                    continue
                pid = int(fields[0])
                if pid <= 1:
                    continue  # an orphaned PE: nothing would relaunch it
                comm = fields[4] if len(fields) > 4 else "?"
                frozen[(host, pid)] = Proc(host, pid, fields[3], f"the PEs' parent ({comm})")
            pes = {p.pid for p in killed if p.host == host}
            parents = {pid for (h, pid) in frozen if h == host}
            for fields in result.lines("LISTENER"):
                if len(fields) < 4 or not fields[0].isdigit():
                    continue
                pid, ppid = int(fields[0]), fields[2]
                if pid in pes or pid in parents or (ppid.isdigit() and int(ppid) in parents):
                    continue  # the application itself (or a process of its instance)
                killed.append(Proc(host, pid, fields[3], "standby stub"))
        if missing and not frozen:
            raise FaultError(f"cannot find what relaunches the PEs of {self.dc.name}: {', '.join(missing)} ended "
                             "since REST listed it, and no other PE runs there")
        self.killed = killed
        self.frozen = list(frozen.values())
        super().prepare()

    def _on(self, host: str, procs: list[Proc]) -> list[Proc]:
        return [p for p in procs if p.host == host]

    def inject_scripts(self) -> dict[str, str]:
        scripts = {}
        for host, cut in self.cut.inject_scripts().items():
            if self.prepared:
                stop = "".join(f"{p.guard()} && __stop=\"$__stop {p.pid}\"\n" for p in self._on(host, self.frozen))
                kill = "".join(f"{p.guard()} && __kill=\"$__kill {p.pid}\"\n" for p in self._on(host, self.killed))
            else:
                stop = f"__stop=\"{PARENTS_PLACEHOLDER}\"\n"
                kill = f"__kill=\"{KILL_PLACEHOLDER}\"\n"
            scripts[host] = (
                cut
                + "__stop=''; __kill=''\n" + stop + kill
                # the parents first, so none relaunches a PE; then every process in one kill
                + "[ -n \"$__stop\" ] && kill -STOP $__stop\n"
                + "[ -n \"$__kill\" ] && kill -KILL $__kill\n"
                + "echo \"DARK stopped:$__stop killed:$__kill\"\ntrue\n"
            )
        return scripts

    def revert_scripts(self) -> dict[str, str]:
        reverts = {}
        for host, delete in self.cut.revert_scripts().items():
            if self.prepared:
                resume = "".join(f"{p.guard()} && kill -CONT {p.pid}\n" for p in self._on(host, self.frozen))
            else:
                resume = f"kill -CONT {PARENTS_PLACEHOLDER}\n"
            # the network first: the relaunched application then finds the other data center at once
            reverts[host] = delete + resume + "true\n"
        return reverts

    def verify_scripts(self) -> dict[str, str]:
        scripts = self.cut.verify_scripts()
        for host in self.dc.hosts:
            procs = [*self._on(host, self.killed), *self._on(host, self.frozen)]
            scripts[host] = scripts.get(host, "") + (_state_script(procs) if procs else "")
        return scripts

    def _states(self) -> dict[tuple[str, int], str]:
        """(host, pid) -> state letter, or ``gone`` when the process is not the one seen before the fault."""
        procs = [*self.killed, *self.frozen]
        hosts = sorted({p.host for p in procs})
        if not hosts:
            return {}
        results = run_on_hosts(self.ctx.executors, {h: _state_script(self._on(h, procs)) for h in hosts},
                               what=f"read the processes of {self.dc.name}")
        start = {(p.host, p.pid): p.starttime for p in procs}
        states: dict[tuple[str, int], str] = {}
        for host, result in results.items():
            for fields in result.lines("STATE"):
                key = (host, int(fields[0]))
                alive = len(fields) >= 3 and fields[2] == start.get(key)
                states[key] = fields[1] if alive else "gone"
        return states

    def _endpoints(self) -> list[tuple[str, str]]:
        """(name, url) of the data center's REST and data exchange endpoints."""
        found = []
        if self.dc.rest is not None:
            found.append(("REST", self.dc.rest.url))
        if self.dc.exchange_url:
            found.append(("data exchange", self.dc.exchange_url))
        return found

    def _controller(self, timeout: float) -> Callable[[], list[str]]:
        """Start the controller's connects to the endpoints (in parallel, while the hosts are probed); the returned
        call waits for them and gives one line each."""
        endpoints = self._endpoints()
        pool = ThreadPoolExecutor(max_workers=max(1, len(endpoints)), thread_name_prefix=f"dark-{self.id}")
        futures = [pool.submit(_connect, url, timeout) for _, url in endpoints]
        pool.shutdown(wait=False)
        return lambda: [f"controller->{name} {urlsplit(url).netloc} {future.result()}"
                        for (name, url), future in zip(endpoints, futures, strict=True)]

    def verify(self, timeout: float) -> Verified:
        def check() -> tuple[bool, str]:
            connects = self._controller(self.cut.block_timeout)
            states = self._states()
            dead = [f"{p.what} {p.pid} {states.get((p.host, p.pid), '?')}" for p in self.killed]
            stopped = [f"{p.what} {p.pid} {states.get((p.host, p.pid), '?')}" for p in self.frozen]
            ok = (all(states.get((p.host, p.pid)) in ("gone", "Z", "X") for p in self.killed)
                  and all(states.get((p.host, p.pid)) in ("T", "t") for p in self.frozen))
            probes: list[ProbeResult] = run_probes(self.ctx, self.cut._pairs(), timeout=self.cut.block_timeout)
            controller = connects()
            ok = ok and not any(p.reachable for p in probes) and all(
                line.endswith(("timeout", "error (timed out)")) for line in controller)
            return ok, "; ".join([*dead, *stopped, *map(str, probes), *controller])

        return poll(check, timeout, f"{self.dc.name} dark")

    def verify_healed(self, timeout: float) -> Verified:
        if not self.prepared:
            return Verified(now(), 0, "nothing injected")
        client = self.ctx.rest.get(self.dc.name)

        def check() -> tuple[bool, str]:
            connects = self._controller(max(self.cut.block_timeout, 0.5))
            states = self._states()
            resumed = all(states.get((p.host, p.pid)) not in ("T", "t") for p in self.frozen)
            probes = run_probes(self.ctx, self.cut._pairs(), timeout=max(self.cut.block_timeout, 0.5))
            controller = connects()
            rest = "no REST client"
            answered = client is None
            if client is not None:
                try:
                    rest = f"REST instance {client.instance(refresh=True).get('status')}"
                    answered = True
                except StreamsError as exc:
                    rest = f"REST: {str(exc)[:120]}"
            ok = (resumed and answered and all(p.reachable for p in probes)
                  and all(line.endswith(("open", "refused")) for line in controller))
            parents = [f"{p.what} {p.pid} {states.get((p.host, p.pid), '?')}" for p in self.frozen]
            return ok, "; ".join([*parents, *map(str, probes), *controller, rest])

        return poll(check, timeout, f"{self.dc.name} back (network, parents and REST answering)", interval=0.05)

