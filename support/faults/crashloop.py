"""``pe-crash-loop``: a processing element that keeps crashing, killed on its host each time it comes back.

How: a loop started on the PE's host by the inject command (``bash``, detached with ``setsid``, tagged
``XDC_FAULT=<tag>:<id>@<host>``, ends by itself at the fault's TTL like the NFQUEUE delayer) polls the
children of the PE's parent process (``pgrep -P``, only to list PIDs) every :data:`INTERVAL` seconds and sends
SIGKILL to each one whose ``/proc/<pid>/cmdline`` is the original PE's command line, the original included.
That is how a relaunch looks on a real Streams host too: the host controller (the lab: the instance service)
starts the PE again as its child with the same command line. A relaunch is caught within the interval, long
before it becomes ready, so every relaunch counts as a failed launch and the instance gives up on the PE
after its automatic retries (REST ``stopped``, ``statusReason`` ``failure``; the lab after 5 launches, see
lab/README.md "PE supervision"). The loop also stops when the parent process is gone (its start time
changed), so a recycled PID is never hit.

* Effect proven (REST): the PE was relaunched and killed again (``launchCount`` at least 2 above the one seen
  before the fault, or 1 above and ``stopped``), its status ``restarting`` or ``stopped``.
* Heal (and the dead-man timer): stop the loop, then ``streamtool restartpe -i <instance> -j <job>`` on the
  host, which restarts the job's stopped PEs (none when the instance had not given up yet). Healed proven:
  REST shows the PE ``running`` with a process; while it is still ``stopped`` after the loop is gone the
  heal asks again (the instance may mark it stopped just after the first ask).

A PE the instance relocates to another host escapes the loop (it only watches the original host).
"""

from __future__ import annotations

import base64
import shlex
from typing import Any

from support.faults.base import FaultContext, FaultError, Verified, now, poll
from support.faults.guard import kill_tagged
from support.faults.process import _PeFault, _stat_field

__all__ = ["INTERVAL", "LOOP_PROGRAM", "PECrashLoop"]

#: seconds between two looks for a relaunch (a PE needs far longer than this to become ready)
INTERVAL = 0.02
#: how often verify_healed asks ``streamtool restartpe`` again while the PE stays stopped
RESTART_AGAIN = 2.0

#: the loop run on the host: bash only builtins per look, plus one ``pgrep -P`` (PIDs) and one ``sleep``.
#: Arguments: parent PID, parent start time, file with the original command line, TTL seconds, interval.
LOOP_PROGRAM = r"""set -u
ppid=$1; pstart=$2; cmdfile=$3; ttl=$4; every=$5
[ -n "${EPOCHREALTIME:-}" ] || { echo "needs bash >= 5.0 (EPOCHREALTIME), this is $BASH_VERSION"; exit 2; }
starttime() { local s; read -r s < "/proc/$1/stat" 2>/dev/null || return 1; s=${s##*) }; set -- $s; echo "${20}"; }
mapfile -d '' want < "$cmdfile" || { echo "cannot read $cmdfile"; exit 2; }
want="${want[*]}"
end=$(( ${EPOCHREALTIME/[.,]/} + ${ttl%.*} * 1000000 ))
kills=0
echo "READY parent $ppid"
while [ "${EPOCHREALTIME/[.,]/}" -lt "$end" ]; do
  [ "$(starttime "$ppid")" = "$pstart" ] || { echo "PARENT $ppid gone after $kills kill(s)"; exit 0; }
  for p in $(pgrep -P "$ppid"); do
    have=(); mapfile -d '' have < "/proc/$p/cmdline" 2>/dev/null || continue
    [ "${have[*]}" = "$want" ] || continue
    if kill -KILL "$p" 2>/dev/null; then kills=$((kills + 1)); echo "KILLED $p $EPOCHREALTIME $kills"; fi
  done
  sleep "$every"
done
echo "TTL reached after $kills kill(s)"
"""


class PECrashLoop(_PeFault):
    kind = "pe-crash-loop"
    requires = ("bash", "pgrep", "streamtool")

    def __init__(self, ctx: FaultContext, dc: str, operator: str, app: str | None = None,
                 fault_id: str | None = None) -> None:
        super().__init__(ctx, dc, operator, app, fault_id)
        info = ctx.topology.dc(self.dc)
        self.streamtool = info.streamtool
        self.instance_id = (info.rest.instance if info.rest is not None else None) or f"<instance id of {dc}>"
        self.parent = "${PE_PARENT}"
        self.parent_start = "${PE_PARENT_STARTTIME}"
        self.cmdline = b""

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "instance": self.instance_id}

    def prepare(self) -> None:
        super().prepare()  # the PE (REST), its host and start time
        assert self.pe is not None
        client = self.ctx.rest[self.dc]
        self.instance_id = str(client.instance(refresh=True).get("id") or self.instance_id)
        pid = self.pid
        result = self.ctx.executors.get(self.pe.host).check(
            f"__pp={_stat_field(pid, 2)}\n"
            f"echo \"PARENT $__pp {_stat_field('$__pp', 20)} {_stat_field(pid, 20)}\"\n"
            f"echo \"CMDLINE $(base64 -w0 < /proc/{pid}/cmdline)\"\n",
            what="read the PE's parent and command line")
        parent = (result.lines("PARENT") or [[]])[0]
        cmd = (result.lines("CMDLINE") or [[]])[0]
        if len(parent) != 3 or not parent[0].isdigit() or parent[2] != self.starttime or not cmd:
            raise FaultError(f"cannot read the parent and command line of PE process {pid} on {self.pe.host} "
                             f"(got {' '.join(parent) or 'nothing'})")
        self.parent, self.parent_start = parent[0], parent[1]
        self.cmdline = base64.b64decode(cmd[0])

    # -- scripts ----------------------------------------------------------------------------------------
    def _restartpe(self) -> str:
        job = self.pe.job_id if self.pe else "${PE_JOB_ID}"
        return " ".join([shlex.quote(self.streamtool), "restartpe", "-i", shlex.quote(self.instance_id),
                         "-j", shlex.quote(job)])

    def inject_scripts(self) -> dict[str, str]:
        scripts = {}
        directory = shlex.quote(self.ctx.settings.directory)
        for host in self.hosts():
            program = shlex.quote(self.state_file(host, "loop.sh"))
            cmdfile = shlex.quote(self.state_file(host, "cmdline"))
            log = shlex.quote(self.state_file(host, "loop.log"))
            encoded = base64.b64encode(self.cmdline).decode() if self.cmdline else "${PE_CMDLINE_BASE64}"
            start = (
                f"mkdir -p {directory}\n"
                f"printf %s {base64.b64encode(LOOP_PROGRAM.encode()).decode()} | base64 -d > {program}\n"
                f"printf %s {encoded} | base64 -d > {cmdfile}\n"
                f"XDC_FAULT={shlex.quote(self.host_label(host))} setsid bash {program} {self.parent} "
                f"{shlex.quote(self.parent_start)} {cmdfile} {max(1, round(self.ttl))} {INTERVAL} "
                f"</dev/null >{log} 2>&1 &\n"
                f"for __i in $(seq 250); do grep -q READY {log} 2>/dev/null && break; "
                "[ -d /proc/$! ] || break; sleep 0.02; done\n"
                f"grep -q READY {log} || {{ echo \"crash loop did not start: $(tail -n 3 {log} | tr '\\n' ' ')\" >&2; "
                "exit 3; }\n"
            )
            scripts[host] = self._guarded("true") + start  # only while the PE is the process seen before
        return scripts

    def revert_scripts(self) -> dict[str, str]:
        return {host: kill_tagged(self.host_label(host)) + f"{self._restartpe()} >/dev/null 2>&1\ntrue\n"
                for host in self.hosts()}

    def meta(self) -> dict[str, str]:
        return {**super().meta(), "pe": self.pe.pe_id if self.pe else "", "parent": self.parent}

    def verify_scripts(self) -> dict[str, str]:
        return {f"REST {self.dc}": f"GET <instance>/pes/{self.pe.pe_id if self.pe else '<pe id>'}: launchCount, "
                                   "status, statusReason"}

    # -- proofs -----------------------------------------------------------------------------------------
    def _look(self) -> dict[str, Any] | None:
        assert self.pe is not None
        client = self.ctx.rest[self.dc]
        job = client.find_job(self.pe.job_name)
        if job is None:
            return None
        return {str(p.get("id")): p for p in client.pes(job)}.get(self.pe.pe_id)

    @staticmethod
    def _says(pe: dict[str, Any] | None) -> str:
        if pe is None:
            return "PE gone"
        return (f"PE {pe.get('id')} {pe.get('status')}/{pe.get('statusReason')}, launchCount "
                f"{pe.get('launchCount')}, processId {pe.get('processId') or '-'}")

    def verify(self, timeout: float) -> Verified:
        assert self.pe is not None
        before = self.pe.launch_count

        def check() -> tuple[bool, str]:
            pe = self._look()
            if pe is None:
                return False, f"PE {self.pe.pe_id} gone from {self.pe.job_name}"  # type: ignore[union-attr]
            launches = int(pe.get("launchCount") or 0)
            status = pe.get("status")
            ok = status in ("restarting", "stopped") and (
                launches >= before + 2 or (launches >= before + 1 and status == "stopped"))
            return ok, f"{self._says(pe)} (launchCount {before} before the fault)"

        return poll(check, timeout, f"PE {self.pe.pe_id} running {self.operator} in {self.dc} relaunched and killed "
                    "again", interval=0.02)

    def gave_up(self) -> bool:
        """True when the instance has given up on the PE (``stopped``, reason ``failure``)."""
        pe = self._look()
        return pe is not None and pe.get("status") == "stopped" and pe.get("statusReason") == "failure"

    def verify_healed(self, timeout: float) -> Verified:
        if self.pe is None:
            return Verified(now(), 0, "nothing injected")
        host = self.pe.host
        asked = [now()[1]]

        def check() -> tuple[bool, str]:
            pe = self._look()
            if pe is not None and pe.get("status") == "stopped" and now()[1] - asked[0] >= RESTART_AGAIN:
                asked[0] = now()[1]
                self.ctx.executors.get(host).run(f"{self._restartpe()} >/dev/null 2>&1\ntrue\n")
            ok = pe is not None and pe.get("status") == "running" and str(pe.get("processId") or "").isdigit()
            return ok, self._says(pe)

        return poll(check, timeout, f"PE {self.pe.pe_id} running {self.operator} in {self.dc} again", interval=0.05)
