"""Resource exhaustion on a DC host: CPU and memory (stress-ng), disk (a filled file in the snapshot directory).

The DC's cgroup is found from outside: the cgroup of a PE of a declared job running in the DC (REST
``processId``, then ``/proc/<pid>/cgroup`` on its host), on cgroup v1 or v2 (the host's layout is detected,
never assumed):

- **cgroup v1** (cpu and memory hierarchies): CPU stress joins the PE's cpu (and memory) groups, so it feels
  exactly the DC's limits; memory stress runs in a tagged child group ``<DC memory cgroup>/<tag>-<id>`` whose
  ``memory.limit_in_bytes`` bounds the stress itself.
- **cgroup v2** (unified): a group holding processes cannot have controlled children, so the application's
  group is the parent of the PE's own group (the group that holds the PE groups and carries the DC's
  ``cpu.max``/``memory.max``). Both stresses run in a tagged child ``<application group>/<tag>-<id>``:
  bounded by the application group's limits, and for memory by its own ``memory.max`` (and
  ``memory.swap.max`` 0). Without the controller delegated to the application group (its
  ``cgroup.subtree_control``), the child is not made: CPU stress joins the PE's group, memory stress runs
  unconfined and is bounded by ``faults.memory_max`` only.

Without a cgroup the processes run unconfined (doctor says so). The child group is removed by heal and by the
dead-man timer.

How much: CPU = one busy worker per CPU the host offers (``nproc``); memory = the DC's headroom (cgroup limit
minus usage, or the host's MemAvailable when the cgroup has no limit), at most ``faults.memory_max``; disk =
the snapshot file system's free space, at most ``faults.disk_max``. When the bound is smaller than the
headroom the journal says ``bounded``.
"""

from __future__ import annotations

import shlex
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from support.faults.base import Fault, FaultContext, FaultError, Verified, poll
from support.faults.executor import Result
from support.faults.guard import ENV_TAG, kill_tagged
from support.faults.process import locate_any_pe
from support.units import format_size

__all__ = ["CgroupLayout", "CpuExhaustion", "DiskExhaustion", "MemoryExhaustion", "cgroup_script"]

CGROUP_SCRIPT = r"""__pid={pid}
[ -r {proc}/$__pid/cgroup ] || {{ echo "no process $__pid" >&2; exit 3; }}
__v1=$(awk '$3=="cgroup" {{print $4}}' {proc}/mounts | tr ',' '\n' | grep -xE 'cpu|memory' | sort -u | tr '\n' ' ')
__m2=$(awk '$3=="cgroup2"{{print $2; exit}}' {proc}/mounts)
if [ -n "$__v1" ] && [ -n "$__m2" ]; then echo "CGVERSION hybrid"; elif [ -n "$__v1" ]; then echo "CGVERSION v1"
elif [ -n "$__m2" ]; then echo "CGVERSION v2"; else echo "CGVERSION none"; fi
while IFS=: read -r __id __ctrls __path; do
  [ "$__path" = / ] && continue
  if [ "$__id" = 0 ]; then
    if [ -n "$__m2" ] && [ -d "$__m2$__path" ]; then
      echo "CG v2 $__m2$__path"
      __app=$(dirname "$__m2$__path")
      echo "CGAPP $__app $(cat "$__app/cgroup.subtree_control" 2>/dev/null)"
    fi
  else
    for __c in $(echo "$__ctrls" | tr ',' ' '); do
      case "$__c" in cpu|memory)
        __m=$(awk -v c="$__c" '$3=="cgroup" {{n=split($4,o,","); for(i=1;i<=n;i++) if(o[i]==c){{print $2; exit}}}}' \
          {proc}/mounts)
        [ -n "$__m" ] && [ -d "$__m$__path" ] && echo "CG $__c $__m$__path";;
      esac
    done
  fi
done < {proc}/$__pid/cgroup
echo "NPROC $(nproc)"
awk '/^(MemAvailable|MemTotal):/ {{printf "MEM %s %.0f\n", $1, $2 * 1024}}' {proc}/meminfo
"""


def cgroup_script(pid: int | str, proc: str = "/proc") -> str:
    """Shell printing the cgroup version of the host (``CGVERSION v1|v2|hybrid|none``), the groups of process
    ``pid`` (``CG cpu|memory|v2 <dir>``; on v2 also ``CGAPP <application group> <controllers delegated to its
    children>``), ``NPROC`` and ``MEM``. ``proc`` is where procfs is (a recorded layout in tests)."""
    return CGROUP_SCRIPT.format(pid=pid, proc=proc)


@dataclass
class CgroupLayout:
    """What :func:`cgroup_script` found on a host."""

    version: str = "none"
    groups: dict[str, str] = field(default_factory=dict)  # cpu / memory (v1), v2 -> directory
    app: str | None = None  # v2: the application group (parent of the PE's group)
    delegated: tuple[str, ...] = ()  # v2: controllers the application group gives its children
    nproc: int = 1
    mem_available: int = 0

    @classmethod
    def parse(cls, result: Result) -> CgroupLayout:
        layout = cls()
        for fields in result.lines("CGVERSION"):
            layout.version = fields[0] if fields else "none"
        for fields in result.lines("CG"):
            if len(fields) == 2:
                layout.groups[fields[0]] = fields[1]
        for fields in result.lines("CGAPP"):
            if fields:
                layout.app, layout.delegated = fields[0], tuple(fields[1:])
        for fields in result.lines("NPROC"):
            layout.nproc = max(1, int(fields[0]))
        for fields in result.lines("MEM"):
            if fields[0] == "MemAvailable:":
                layout.mem_available = int(float(fields[1]))
        return layout

    def v2_child(self, name: str, controller: str) -> str | None:
        """v2: the tagged child group for a stress that needs ``controller``, when it is delegated."""
        if "v2" not in self.groups or not self.app or controller not in self.delegated:
            return None
        return f"{self.app}/{name}"


def make_child_script(child: str, limits: dict[str, str]) -> str:
    """Shell making cgroup ``child`` and writing its limit files (a missing optional file, e.g.
    ``memory.swap.max`` without swap accounting, is skipped when its name is prefixed with ``?``)."""
    quoted = shlex.quote(child)
    script = f"mkdir -p {quoted} || exit 4\n"
    for name, value in limits.items():
        if name.startswith("?"):
            leaf = shlex.quote(name[1:])
            script += (f"if [ -e {quoted}/{leaf} ]; then echo {shlex.quote(value)} > {quoted}/{leaf} || exit 4; "
                       "fi\n")
        else:
            script += f"echo {shlex.quote(value)} > {quoted}/{shlex.quote(name)} || exit 4\n"
    return script


def remove_child_script(child: str) -> str:
    quoted = shlex.quote(child)
    return (f"for __i in $(seq 100); do [ -d {quoted} ] || break; rmdir {quoted} 2>/dev/null && break; "
            "sleep 0.02; done\ntrue\n")


def _session(sid_file: str) -> str:
    """Shell printing ``<processes> <CPU ticks> <RSS kB>`` of the session whose id is in ``sid_file``.

    stress-ng renames its workers (which clobbers their environment, so the XDC_FAULT tag is lost), but they
    stay in the session ``setsid`` gave the stress-ng parent; the kernel never reuses a PID still in use as a
    session id, so the session's members are exactly the fault's processes."""
    return (
        f"__sid=$(cat {shlex.quote(sid_file)} 2>/dev/null)\n"
        "if [ -z \"$__sid\" ]; then echo '0 0 0'; else\n"
        "awk -v s=\"$__sid\" 'FNR == 1 { line = $0; sub(/^.*\\) /, \"\", line); split(line, f, \" \"); "
        "if (f[4] == s && f[1] != \"Z\") { c++; t += f[12] + f[13]; r += f[22] } } "
        "END { print c + 0, t + 0, r * 4 }' "
        "/proc/[0-9]*/stat 2>/dev/null; fi\n"
    )


def _kill_session(sid_file: str) -> str:
    """Shell killing every process of the session in ``sid_file`` (SIGKILL: stress keeps nothing worth saving)."""
    count = _session(sid_file).replace("print c + 0, t + 0, r * 4", "print c + 0")
    return (
        f"__sid=$(cat {shlex.quote(sid_file)} 2>/dev/null)\n"
        "if [ -n \"$__sid\" ]; then\n"
        "  __pids=$(awk -v s=\"$__sid\" 'FNR == 1 { line = $0; sub(/^.*\\) /, \"\", line); split(line, f, \" \"); "
        "if (f[4] == s) print substr(FILENAME, 7, length(FILENAME) - 11) }' /proc/[0-9]*/stat 2>/dev/null)\n"
        "  [ -n \"$__pids\" ] && kill -KILL $__pids 2>/dev/null\n"
        f"  for __i in $(seq 100); do [ \"$({count.strip()})\" = 0 ] && break; sleep 0.02; done\n"
        "fi\ntrue\n"
    )


def _start_stress(label: str, sid_file: str, args: str, dirs: list[str]) -> str:
    joined = " ".join(shlex.quote(d) for d in dirs)
    return (
        f"{ENV_TAG}={shlex.quote(label)} setsid sh -c "
        "'for d in \"$@\"; do echo $$ > \"$d/cgroup.procs\" || exit 5; done; "
        f"exec stress-ng {args} --quiet' {shlex.quote(label + '-stress')} {joined} </dev/null >/dev/null 2>&1 &\n"
        f"__s=$!; echo $__s > {shlex.quote(sid_file)}\n"
        f"for __i in $(seq 100); do [ \"$({_session(sid_file).strip()} | cut -d' ' -f1)\" -ge 2 ] && break; "
        "[ -d /proc/$__s ] || break; sleep 0.02; done\n"
        "[ -d /proc/$__s ] || { echo 'stress-ng exited at once (cgroup join or options refused)' >&2; exit 4; }\n"
        "echo \"STRESS $__s\"\n"
    )


class _HostResource(Fault):
    """A resource fault on the host of a DC (its first declared host; the one running a DC PE when known)."""

    requires = ("stress-ng",)

    def __init__(self, ctx: FaultContext, dc: str, fault_id: str | None = None) -> None:
        super().__init__(ctx, fault_id)
        self.dc = ctx.topology.dc(ctx.allowlist.check_dc(dc))
        self.host = self.dc.primary_host
        self.layout = CgroupLayout()
        self.pe_pid: int | None = None
        self.child = ""  # the tagged child group the stress runs in (made at inject, removed at heal)
        self.probed = False  # prepare() read the host (its cgroups, CPUs, memory); a dry run never does

    @property
    def cgroups(self) -> dict[str, str]:
        return self.layout.groups

    @cgroups.setter
    def cgroups(self, groups: dict[str, str]) -> None:
        self.layout.groups = dict(groups)

    @property
    def nproc(self) -> int:
        return self.layout.nproc

    @property
    def mem_available(self) -> int:
        return self.layout.mem_available

    def hosts(self) -> list[str]:
        return [self.host]

    def child_name(self) -> str:
        return f"{self.ctx.settings.tag}-{self.id}"

    def prepare(self) -> None:
        pe = locate_any_pe(self.ctx, self.dc.name)
        if pe is not None:
            self.host, self.pe_pid = pe.host, pe.pid
            result = self.ctx.executors.get(self.host).check(cgroup_script(pe.pid), what="find the DC's cgroup")
        else:
            result = self.ctx.executors.get(self.host).check(cgroup_script("$$"), what="read the host")
            result = type(result)(result.host, result.rc, "\n".join(
                line for line in result.stdout.splitlines() if line.split()[:1] not in (["CG"], ["CGAPP"])),
                result.stderr, result.seconds)
        self.layout = CgroupLayout.parse(result)
        self.probed = True
        super().prepare()

    def revert_scripts(self) -> dict[str, str]:
        script = _kill_session(self._sid_file()) + kill_tagged(self.host_label(self.host))
        if self.child:
            script += remove_child_script(self.child)
        return {self.host: script}

    def _child_gone(self, gone: Verified, timeout: float) -> Verified:
        if not self.child:
            return gone

        def check() -> tuple[bool, str]:
            result = self.ctx.executors.get(self.host).run(f"[ -d {shlex.quote(self.child)} ] && echo LEFT")
            return not result.lines("LEFT"), f"cgroup {self.child} {'left' if result.lines('LEFT') else 'removed'}"

        removed = poll(check, timeout, f"cgroup {self.child} removed", interval=0.05)
        return Verified(removed.at, gone.probes + removed.probes, f"{gone.evidence}; {removed.evidence}")

    def describe(self) -> dict[str, Any]:
        return {"dc": self.dc.name, "host": self.host,
                "cgroup_version": self.layout.version if self.probed else "read at run time",
                **({"cgroups": sorted(self.cgroups.values())} if self.cgroups else {}),
                **({"child_cgroup": self.child} if self.child else {})}

    def _sid_file(self) -> str:
        return self.state_file(self.host, "stress")

    def _sample(self) -> tuple[int, int, int]:
        """(stress processes, CPU ticks used so far, resident kB) of the fault's stress-ng session."""
        result = self.ctx.executors.get(self.host).check(f"echo \"SESSION $({self._session_cmd()})\"",
                                                         what="read the stress processes")
        fields = (result.lines("SESSION") or [[]])[0]
        if len(fields) != 3 or not all(f.isdigit() for f in fields):  # a poll takes it as "no answer yet"
            raise FaultError(f"{self.host}: unreadable stress session {result.stdout.strip()[:120]!r}")
        return int(fields[0]), int(fields[1]), int(fields[2])

    def _session_cmd(self) -> str:
        return _session(self._sid_file()).strip()

    def _stress_gone(self, timeout: float) -> Verified:
        def check() -> tuple[bool, str]:
            left = self._sample()[0]
            return left == 0, f"{left} stress process(es) left on {self.host}"

        return poll(check, timeout, f"stress gone from {self.host}", interval=0.05)

class CpuExhaustion(_HostResource):
    kind = "cpu"

    def workers(self) -> int:
        return self.nproc

    def prepare(self) -> None:
        super().prepare()
        # v2: a tagged child of the application group, bounded by its cpu.max (v1: join the DC's groups)
        self.child = self.layout.v2_child(self.child_name(), "cpu") or ""

    def inject_scripts(self) -> dict[str, str]:
        args = f"--cpu {self.workers()} --cpu-load 100 --timeout {int(self.ttl) + 1}s"
        script = ""
        if self.child:
            script, dirs = make_child_script(self.child, {}), [self.child]
        else:
            dirs = [d for key, d in sorted(self.cgroups.items()) if key in ("cpu", "memory", "v2")]
        return {self.host: script + _start_stress(self.host_label(self.host), self._sid_file(), args, dirs)}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "workers": self.workers() if self.probed else "one per CPU"}

    def sizing(self) -> list[str]:
        if self.probed:
            return [f"cpu: {self.workers()} busy stress-ng worker(s), one per CPU of {self.host} (nproc), 100 % load"]
        return [f"cpu: one busy stress-ng worker per CPU of {self.host}, 100 % load: the CPUs are counted on the "
                "host at run time (nproc; this plan shows --cpu 1)",
                "bounded by the DC's cgroup (cpu.max / cpu shares) where the stress can join it, found at run time "
                "from a PE of the DC"]

    def verify(self, timeout: float) -> Verified:
        tick = 0.01  # USER_HZ is 100 on Linux

        def check() -> tuple[bool, str]:
            procs, before, _ = self._sample()
            started = time.monotonic()
            threading.Event().wait(0.3)
            _, after, _ = self._sample()
            busy = (after - before) * tick / (time.monotonic() - started)
            return procs > 1 and busy >= 0.5, f"{procs} stress process(es) keep {busy:.2f} CPU(s) busy"

        return poll(check, timeout, f"CPU of {self.dc.name} exhausted")

    def verify_healed(self, timeout: float) -> Verified:
        return self._child_gone(self._stress_gone(timeout), timeout)


class MemoryExhaustion(_HostResource):
    kind = "memory"
    SLACK = 32 * 1024**2

    def __init__(self, ctx: FaultContext, dc: str, fault_id: str | None = None) -> None:
        super().__init__(ctx, dc, fault_id)
        self.size = 0
        self.bounded = False

    def _limit_files(self) -> tuple[str, str, str] | None:
        """(group whose limit bounds the DC, its limit file, its usage file), per cgroup version."""
        if "memory" in self.cgroups:
            return self.cgroups["memory"], "memory.limit_in_bytes", "memory.usage_in_bytes"
        if self.layout.app and "memory" in self.layout.delegated:
            return self.layout.app, "memory.max", "memory.current"
        return None

    def prepare(self) -> None:
        super().prepare()
        headroom = self.mem_available
        limit = self._limit_files()
        if limit:
            group, limit_file, usage_file = (shlex.quote(x) for x in limit)
            limits = self.ctx.executors.get(self.host).check(
                f"echo \"LIMIT $(cat {group}/{limit_file}) $(cat {group}/{usage_file})\"",
                what="read the DC's memory limit")
            fields = (limits.lines("LIMIT") or [[]])[0]
            if len(fields) == 2 and fields[0].isdigit() and int(fields[0]) < (1 << 60):
                headroom = min(headroom or int(fields[0]), int(fields[0]) - int(fields[1]))
        if "memory" in self.cgroups:
            self.child = f"{self.cgroups['memory']}/{self.child_name()}"
        else:
            self.child = self.layout.v2_child(self.child_name(), "memory") or ""
        self.bounded = headroom > self.ctx.settings.memory_max or headroom <= 0
        self.size = min(headroom, self.ctx.settings.memory_max) if headroom > 0 else self.ctx.settings.memory_max
        if self.size < 16 * 1024**2:
            raise FaultError(f"memory of {self.dc.name} is already exhausted ({format_size(self.size)} headroom)")

    def describe(self) -> dict[str, Any]:
        if not self.size:
            return {**super().describe(), "size": f"headroom at run time, at most {format_size(self.bound)}"}
        return {**super().describe(), "size": format_size(self.size), "bounded": self.bounded}

    @property
    def bound(self) -> int:
        """The most memory the fault takes (``faults.memory_max``)."""
        return self.ctx.settings.memory_max

    def sizing(self) -> list[str]:
        bound = f"{format_size(self.bound)} (faults.memory_max)"
        if self.size:
            return [f"memory: {format_size(self.size)}, "
                    + (f"bounded by {bound}" if self.bounded else f"the DC's headroom (under the bound {bound})")]
        return [f"memory: the DC's headroom on {self.host}, read at run time: its cgroup's memory limit minus its "
                "usage, or the host's MemAvailable where the cgroup has no limit",
                f"bounded by {bound}: the commands below show that bound as --vm-bytes"]

    def _v2(self) -> bool:
        return bool(self.child) and "memory" not in self.cgroups

    def inject_scripts(self) -> dict[str, str]:
        size = self.size or self.ctx.settings.memory_max
        script = ""
        if self._v2():
            # the child holds the stress alone: its memory.max bounds it (no swap to escape to)
            script = make_child_script(self.child, {"memory.max": str(size + self.SLACK), "?memory.swap.max": "0"})
            dirs = [self.child]
        else:
            dirs = [d for key, d in sorted(self.cgroups.items()) if key in ("cpu", "v2")]
            if self.child:
                script = make_child_script(self.child, {"memory.limit_in_bytes": str(size + self.SLACK)})
                dirs.append(self.child)
            elif "memory" in self.cgroups:
                dirs.append(self.cgroups["memory"])
            if "v2" in self.cgroups and not self.child:
                dirs.remove(self.cgroups["v2"])  # never stress memory inside the PE's own group
        args = f"--vm 1 --vm-bytes {size} --vm-keep --timeout {int(self.ttl) + 1}s"
        return {self.host: script + _start_stress(self.host_label(self.host), self._sid_file(), args, dirs)}

    def _used(self) -> int:
        if self.child:
            usage = "memory.current" if self._v2() else "memory.usage_in_bytes"
            result = self.ctx.executors.get(self.host).check(
                f"echo \"USED $(cat {shlex.quote(self.child)}/{usage} 2>/dev/null || echo 0)\"",
                what="read the stress memory")
            return int((result.lines("USED") or [["0"]])[0][0])
        return self._sample()[2] * 1024

    def verify(self, timeout: float) -> Verified:
        def check() -> tuple[bool, str]:
            used = self._used()
            return used >= 0.9 * self.size, f"stress holds {format_size(used)} of {format_size(self.size)}" + (
                " (bounded by faults.memory_max)" if self.bounded else "")

        return poll(check, timeout, f"memory of {self.dc.name} exhausted", interval=0.05)

    def verify_healed(self, timeout: float) -> Verified:
        return self._child_gone(self._stress_gone(timeout), timeout)


class DiskExhaustion(Fault):
    kind = "disk"
    requires = ("fallocate",)
    RESERVE = 64 * 1024

    def __init__(self, ctx: FaultContext, dc: str, fault_id: str | None = None) -> None:
        super().__init__(ctx, fault_id)
        self.dc = ctx.topology.dc(ctx.allowlist.check_dc(dc))
        self.host = self.dc.primary_host
        if not self.dc.snapshot_dir:
            raise FaultError(f"disk exhaustion needs the snapshot directory of {dc} "
                             f"(datacenters.{dc}.crossdc.snapshot_dir)")
        self.directory = self.dc.snapshot_dir.rstrip("/") or "/"
        self.file = f"{self.directory}/.{ctx.settings.tag}-fill-{self.id}"
        self.size = 0
        self.avail_before = 0
        self.bounded = False

    def hosts(self) -> list[str]:
        return [self.host]

    def describe(self) -> dict[str, Any]:
        if not self.size:
            return {"dc": self.dc.name, "host": self.host, "file": self.file,
                    "size": f"free space at run time, at most {format_size(self.ctx.settings.disk_max)}"}
        return {"dc": self.dc.name, "host": self.host, "file": self.file, "size": format_size(self.size),
                "bounded": self.bounded}

    def sizing(self) -> list[str]:
        bound = f"{format_size(self.ctx.settings.disk_max)} (faults.disk_max)"
        if self.size:
            return [f"disk: fill {self.directory} with {format_size(self.size)} of its {format_size(self.avail_before)}"
                    " free, " + (f"bounded by {bound}" if self.bounded else f"all but {format_size(self.RESERVE)}")]
        return [f"disk: fill the file system of {self.directory} on {self.host} to its free space, read at run time "
                f"(df), less {format_size(self.RESERVE)} kept free",
                f"bounded by {bound}: the commands below show that bound as the fallocate size"]

    def _avail(self) -> int:
        result = self.ctx.executors.get(self.host).check(
            f"echo \"AVAIL $(df -B1 --output=avail {shlex.quote(self.directory)} | tail -n1)\"",
            what=f"read free space of {self.directory}")
        return int((result.lines("AVAIL") or [["0"]])[0][0])

    def prepare(self) -> None:
        self.avail_before = self._avail()
        free = max(0, self.avail_before - self.RESERVE)
        self.bounded = free > self.ctx.settings.disk_max
        self.size = min(free, self.ctx.settings.disk_max)
        if self.size <= 0:
            raise FaultError(f"{self.directory} on {self.host} is already full")
        super().prepare()

    def inject_scripts(self) -> dict[str, str]:
        size = self.size or self.ctx.settings.disk_max
        target = shlex.quote(self.file)
        return {self.host: f"fallocate -l {size} {target} || {{ rm -f {target}; exit 4; }}\n"}

    def revert_scripts(self) -> dict[str, str]:
        return {self.host: f"rm -f {shlex.quote(self.file)}\n"}

    def verify_scripts(self) -> dict[str, str]:
        return {self.host: f"stat -c '%b %B' {shlex.quote(self.file)}; df -B1 --output=avail "
                           f"{shlex.quote(self.directory)}\n"}

    def verify(self, timeout: float) -> Verified:
        def check() -> tuple[bool, str]:
            result = self.ctx.executors.get(self.host).run(
                f"echo \"FILL $(stat -c '%b %B' {shlex.quote(self.file)} 2>/dev/null) "
                f"$(df -B1 --output=avail {shlex.quote(self.directory)} | tail -n1)\"")
            fields = (result.lines("FILL") or [[]])[0]
            if len(fields) != 3:
                return False, f"{self.file} missing"
            allocated = int(fields[0]) * int(fields[1])
            return allocated >= 0.99 * self.size, (
                f"{self.file} holds {format_size(allocated)}; {format_size(int(fields[2]))} left free"
                + (" (bounded by faults.disk_max)" if self.bounded else ""))

        return poll(check, timeout, f"disk of {self.dc.name} exhausted", interval=0.05)

    def verify_healed(self, timeout: float) -> Verified:
        def check() -> tuple[bool, str]:
            result = self.ctx.executors.get(self.host).run(f"[ -e {shlex.quote(self.file)} ] && echo LEFT")
            return not result.lines("LEFT"), f"{self.file} {'still there' if result.lines('LEFT') else 'removed'}"

        return poll(check, timeout, f"{self.file} removed", interval=0.05)

