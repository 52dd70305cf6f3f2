"""Capability probe: what each declared host (and the controller's view of each DC) can do.

Host capabilities are found by trying, never by guessing from versions: the kernel features (iptables
matches, netem, tbf, NFQUEUE) are tried in a throwaway network namespace (``unshare -n``), so probing leaves
nothing on the host. One SSH command per host. Controller-side capabilities (REST, Prometheus, JMX) are
tried with the configured clients.

Scenarios name what they need with tags ``@requires.<capability>`` (e.g. ``@requires.netem``,
``@requires.latency``); :func:`skip_reason` returns why a scenario cannot run here, or None.
"""

from __future__ import annotations

import re
import shlex
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from support.config import Config
from support.faults.core import FaultError, FaultSettings, Topology
from support.faults.executor import ExecutorPool

__all__ = ["ADVICE", "CAPABILITIES", "Capabilities", "CapabilityProbe", "doctor_table", "skip_reason"]

#: host capabilities, in table order
HOST_CAPABILITIES = ("ssh", "bastion", "sudo", "bash", "iptables", "statistic", "nfqueue", "netem", "tbf", "delayer",
                     "stress-ng", "cgroup", "cgroup-cpu", "cgroup-memory", "fallocate", "snapshot-dir", "ss",
                     "pgrep", "streamtool")
#: per-DC capabilities checked from the controller
DC_CAPABILITIES = ("rest", "prometheus", "jmx")
#: derived: latency works with netem or the delayer
CAPABILITIES = (*HOST_CAPABILITIES, "latency", *DC_CAPABILITIES)

ADVICE = {
    "ssh": "check datacenters.<dc>.ssh (user, key_file, known_hosts) and that sshd runs on the host",
    "bastion": "check datacenters.<dc>.ssh.bastion (host, port, user, key_file), that the bastion's host key is in "
               "ssh.known_hosts and that it forwards TCP to the hosts' SSH port (AllowTcpForwarding, PermitOpen)",
    "sudo": "log in as root, or set datacenters.<dc>.ssh.sudo: true (`sudo -n`: the login user needs NOPASSWD sudo for "
            "`timeout`, which runs every fault script) or a command prefix such as 'sudo -n -u root' or 'pbrun'",
    "bash": "install bash on the host",
    "iptables": "install iptables (partition, isolation, loss, dark, delayer rules need it) and log in as root",
    "statistic": "the kernel lacks xt_statistic: packet loss cannot be injected",
    "nfqueue": "the kernel lacks xt_NFQUEUE: the latency delayer cannot run (netem still can)",
    "netem": "the kernel has no sch_netem: latency uses the NFQUEUE delayer instead",
    "tbf": "the kernel lacks htb/tbf/u32: bandwidth limits (and netem scoping) are unavailable",
    "delayer": "install python3 and libnetfilter-queue1 on the host (or set faults.python) for latency without netem",
    "stress-ng": "install stress-ng (CPU and memory exhaustion)",
    "cgroup": "no cgroup file system mounted: CPU and memory stress run unconfined (bounded by faults.memory_max)",
    "cgroup-cpu": "no cpu cgroup controller: CPU stress is not bounded to the DC's cgroup",
    "cgroup-memory": "no memory cgroup controller: memory stress is bounded by faults.memory_max only",
    "fallocate": "install util-linux fallocate (disk exhaustion)",
    "snapshot-dir": "set datacenters.<dc>.crossdc.snapshot_dir to the toolkit's dataSnapshotStorageDirectory, a "
                    "directory the fault user can write (snapshots-lost, snapshots-corrupted, disk)",
    "ss": "install iproute2 (the tester finds the standalone standby stub by the port it holds, with ss)",
    "pgrep": "install procps (pgrep lists the PE's relaunches for the crash loop)",
    "streamtool": "set datacenters.<dc>.crossdc.streamtool to streamtool on the hosts (instance stop and start, "
                  "name-service lookups)",
    "rest": "check datacenters.<dc>.rest (url, auth, ca_bundle)",
    "prometheus": "check metrics.prometheus (url, auth, ca_bundle, timeouts), or leave it out to use REST metrics "
                  "only",
    "jmx": "check datacenters.<dc>.jmx (url, credentials, ca_bundle, classpath with the com.ibm.streams.management "
           "JMXMP provider) and that a JDK is installed on the controller",
}

_HTB_TBF = ("ip link set lo up; tc qdisc add dev lo root handle 1: htb default 1 && "
            "tc class add dev lo parent 1: classid 1:2 htb rate 1gbit && "
            "tc qdisc add dev lo parent 1:2 handle 2: {leaf} && "
            "tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip dst 127.0.0.2/32 flowid 1:2")


def host_probe_script(python: str, streamtool: str = "streamtool", privilege: str = "root login",
                      snapshot_dir: str | None = None) -> str:
    """One shell printing ``CAP <name> yes|no <detail>`` per host capability (``privilege`` says how the script
    got root rights: the detail of ``sudo``; ``snapshot_dir``: the DC's snapshot directory, which must be a
    writable directory)."""
    if snapshot_dir:
        store = (f"__sd={shlex.quote(snapshot_dir)}\n[ -d \"$__sd\" ] && [ -w \"$__sd\" ] && [ -x \"$__sd\" ]\n"
                 "cap snapshot-dir $? \"$__sd writable\" \"$__sd is not a writable directory\"\n")
    else:
        store = "cap snapshot-dir 1 \"\" \"no datacenters.<dc>.crossdc.snapshot_dir configured\"\n"
    netem = _HTB_TBF.format(leaf="netem delay 1ms")
    tbf = _HTB_TBF.format(leaf="tbf rate 1mbit burst 3028 latency 100ms")
    return rf"""cap() {{ if [ "$2" = 0 ]; then echo "CAP $1 yes $3"; else echo "CAP $1 no $4"; fi; }}
try() {{ __o=$("$@" 2>&1); __rc=$?; __w=$(printf %s "$__o" | tail -n1 | cut -c1-120); return $__rc; }}
cap bash 0 "bash $BASH_VERSION" ""
if [ "$(id -u)" = 0 ]; then cap sudo 0 {shlex.quote("root rights: " + privilege)} ""
else cap sudo 1 "" "commands run as uid $(id -u) ($(id -un 2>/dev/null)), not root"; fi
if command -v iptables >/dev/null 2>&1; then
  try unshare -n iptables -w -A OUTPUT -m comment --comment probe -j ACCEPT; cap iptables $? "$(iptables -V)" "$__w"
  try unshare -n iptables -w -A OUTPUT -m statistic --mode random --probability 0.5 -j ACCEPT
  cap statistic $? "xt_statistic" "$__w"
  try unshare -n iptables -w -A OUTPUT -j NFQUEUE --queue-num 1 --queue-bypass; cap nfqueue $? "xt_NFQUEUE" "$__w"
else cap iptables 1 "" "iptables not installed"; cap statistic 1 "" "no iptables"; cap nfqueue 1 "" "no iptables"; fi
if command -v tc >/dev/null 2>&1; then
  try unshare -n sh -c '{netem}'; cap netem $? "htb + netem + u32" "$__w"
  try unshare -n sh -c '{tbf}'; cap tbf $? "htb + tbf + u32" "$__w"
else cap netem 1 "" "tc not installed"; cap tbf 1 "" "tc not installed"; fi
__py={shlex.quote(python)}
try "$__py" -c 'import ctypes, ctypes.util as u; ctypes.CDLL(u.find_library("netfilter_queue") or \
  "libnetfilter_queue.so.1")'
cap delayer $? "$__py + libnetfilter_queue" "$__w"
if command -v stress-ng >/dev/null 2>&1; then cap stress-ng 0 "$(stress-ng --version 2>&1 | head -n1 | cut -c1-60)" ""
else cap stress-ng 1 "" "stress-ng not installed"; fi
__v1=$(awk '$3=="cgroup" {{print $4}}' /proc/mounts | tr ',' '\n' | grep -xE 'cpu|memory' | sort -u | tr '\n' ' ')
__v2=$(cat /sys/fs/cgroup/cgroup.controllers /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null | tr '\n' ' ')
__m2=$(awk '$3=="cgroup2" {{print $2; exit}}' /proc/mounts)
if [ -n "$__v1" ] && [ -n "$__m2" ]; then cap cgroup 0 "hybrid: v1 $__v1+ v2 at $__m2" ""
elif [ -n "$__v1" ]; then cap cgroup 0 "v1 ($__v1)" ""
elif [ -n "$__m2" ]; then cap cgroup 0 "v2 (unified at $__m2)" ""
else cap cgroup 1 "" "no cgroup file system mounted"; fi
for __c in cpu memory; do
  case " $__v1 " in *" $__c "*) cap cgroup-$__c 0 "v1" "";; *)
    case " $__v2 " in *" $__c "*) cap cgroup-$__c 0 "v2" "";;
      *) cap cgroup-$__c 1 "" "no $__c controller mounted";; esac;;
  esac
done
command -v fallocate >/dev/null 2>&1; cap fallocate $? "util-linux" "fallocate not installed"
{store}command -v ss >/dev/null 2>&1
cap ss $? "$(ss --version 2>/dev/null | head -n1 | cut -c1-60)" "ss not installed"
command -v pgrep >/dev/null 2>&1
cap pgrep $? "procps" "pgrep not installed"
__st={shlex.quote(streamtool)}
command -v "$__st" >/dev/null 2>&1
cap streamtool $? "$__st" "$__st not found"
true
"""


@dataclass
class Capabilities:
    """What one host (or DC, for controller-side checks) has: name -> (available, detail)."""

    host: str
    found: dict[str, tuple[bool, str]] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        if name == "latency":
            return self.has("netem") or self.has("delayer")
        if name == "delayer":
            return self.found.get("delayer", (False, ""))[0] and self.found.get("nfqueue", (False, ""))[0]
        return self.found.get(name, (False, ""))[0]

    def reason(self, name: str) -> str:
        if name == "latency":
            return f"{self.reason('netem')}; {self.reason('delayer')}"
        if name == "delayer" and self.found.get("delayer", (False, ""))[0] and not self.has("delayer"):
            name = "nfqueue"
        ok, detail = self.found.get(name, (False, "not probed"))
        return f"{name}: {'yes' if ok else 'no'}" + (f" ({detail})" if detail else "")

    def missing(self, names: Iterable[str]) -> str | None:
        for name in names:
            if not self.has(name):
                return self.reason(name)
        return None


def parse_probe_output(host: str, text: str) -> Capabilities:
    caps = Capabilities(host, {"ssh": (True, "connected")})
    for line in text.splitlines():
        parts = line.split(" ", 3)
        if len(parts) >= 3 and parts[0] == "CAP":
            caps.found[parts[1]] = (parts[2] == "yes", parts[3].strip() if len(parts) > 3 else "")
    return caps


class CapabilityProbe:
    """Probes hosts (over the executors) and DCs (over the wire) once each, then answers from its cache."""

    def __init__(self, config: Config, topology: Topology, pool: ExecutorPool,
                 rest: Mapping[str, Any] | None = None, settings: FaultSettings | None = None) -> None:
        self.config = config
        self.topology = topology
        self.pool = pool
        self.rest = rest or {}
        self.settings = settings or config.settings.faults
        self._hosts: dict[str, Capabilities] = {}
        self._dcs: dict[str, Capabilities] = {}
        self._lock = threading.Lock()

    def __call__(self, host: str) -> Capabilities:
        return self.host(host)

    def host(self, host: str) -> Capabilities:
        with self._lock:
            if host in self._hosts:
                return self._hosts[host]
        dc = self.topology.dc(self.topology.dc_of_host(host))
        ssh = dc.ssh
        bastion = ssh.bastion if ssh is not None else None
        privilege = "root login" if ssh is None or not ssh.sudo else f"via ssh.sudo `{' '.join(ssh.sudo)}`"
        try:
            executor = self.pool.get(host)
            result = executor.run(host_probe_script(self.settings.python, dc.streamtool, privilege, dc.snapshot_dir),
                                  timeout=30)
            caps = parse_probe_output(host, result.stdout)
            caps.found["ssh"] = (True, f"connected as {executor.describe()}")
            if not result.ok:
                caps.found.setdefault("bash", (False, result.why()))
                if ssh is not None and ssh.sudo:
                    caps.found.setdefault("sudo", (False, f"`{' '.join(ssh.sudo)}` failed: {result.why()}"))
        except FaultError as exc:
            caps = Capabilities(host, {"ssh": (False, str(exc))})
            for name in HOST_CAPABILITIES[1:]:
                caps.found[name] = (False, "no SSH")
            if bastion is not None:
                failed = "bastion:" in str(exc)
                caps.found["bastion"] = (not failed, f"{bastion.describe()} " + (
                    "failed (see ssh)" if failed else "reached; the host behind it did not answer"))
        if bastion is None:
            caps.found["bastion"] = (True, "none configured (direct connection)")
        elif caps.has("ssh"):
            caps.found["bastion"] = (True, f"through {bastion.describe()}")
        with self._lock:
            self._hosts[host] = caps
        return caps

    def dc(self, name: str) -> Capabilities:
        with self._lock:
            if name in self._dcs:
                return self._dcs[name]
        caps = Capabilities(name)
        caps.found["rest"] = self._rest(name)
        caps.found["prometheus"] = self._prometheus()
        caps.found["jmx"] = self._jmx(name)
        with self._lock:
            self._dcs[name] = caps
        return caps

    def _rest(self, dc: str) -> tuple[bool, str]:
        client = self.rest.get(dc)
        if client is None:
            from support.streams.rest import StreamsRestClient

            client = StreamsRestClient.from_settings(self.config.settings, dc)
        try:
            instance = client.instance(refresh=True)
        except Exception as exc:  # any failure means "not available"; the detail says which
            return False, str(exc).splitlines()[0][:160]
        return True, f"instance {instance.get('id')} {instance.get('status')}"

    def _prometheus(self) -> tuple[bool, str]:
        prometheus = self.config.settings.metrics.prometheus
        if prometheus is None or not prometheus.url:
            return False, "not configured (metrics.prometheus.url)"
        from support.metrics.prometheus import PrometheusClient  # lazy: prometheus-api-client only when asked

        return PrometheusClient.from_settings(prometheus).ready_status()

    def _jmx(self, dc: str) -> tuple[bool, str]:
        jmx = self.config.settings.datacenters[dc].jmx
        url = jmx.url if jmx is not None else None
        if not url:
            return False, f"not configured (datacenters.{dc}.jmx.url)"
        match = re.search(r"//([^/:]+):(\d+)", str(url))
        if match is None:
            return False, f"cannot find host:port in {url}"
        try:
            with socket.create_connection((match.group(1), int(match.group(2))), timeout=2):
                pass
        except OSError as exc:
            return False, f"{match.group(1)}:{match.group(2)} {exc.strerror or exc}"
        from support.metrics.jmx import JmxBridge, JmxEndpoint, JmxError, JmxSource

        dc_settings = self.config.settings.datacenters[dc]
        assert jmx is not None
        endpoint = JmxEndpoint(dc, str(url), jmx.instance or dc_settings.rest.instance or dc, jmx.username,
                               jmx.password, jmx.ca_bundle, jmx.tls_protocols)
        source = JmxSource([endpoint], bridge=JmxBridge(jmx.classpath), timeout=10.0)
        try:
            points = dict(source.sample())
        except JmxError as exc:  # the bridge could not even start (no JDK, javac failed)
            return False, f"port open, JMX client failed: {str(exc)[:120]}"
        finally:
            source.close()
        if not points.get(f"jmx.{dc}.reachable"):
            return False, f"port open, {source.problems.get(dc, 'no answer')[:160]}"
        return True, f"{match.group(1)}:{match.group(2)} answers (JMXMP, instance bean {endpoint.instance})"

    def all_hosts(self) -> list[Capabilities]:
        hosts = list(self.topology.all_hosts())
        threads = [threading.Thread(target=self.host, args=(h,)) for h in hosts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return [self.host(h) for h in hosts]

    def requirement(self, name: str) -> str | None:
        """None when every declared host (or DC) has ``name``, else why not."""
        if name not in CAPABILITIES:
            return f"unknown capability {name!r} in @requires.{name} (known: {', '.join(CAPABILITIES)})"
        if name in DC_CAPABILITIES:
            for dc in self.topology.datacenters:
                caps = self.dc(dc)
                if not caps.has(name):
                    return f"{dc}: {caps.reason(name)}"
            return None
        hosts = list(self.topology.all_hosts())
        if not hosts:
            return f"{name}: no hosts declared (datacenters.<dc>.hosts)"
        for caps in self.all_hosts():
            if not caps.has(name):
                return f"{caps.host}: {caps.reason(name)}"
        return None


def skip_reason(tags: Iterable[str], probe: Callable[[str], str | None]) -> str | None:
    """Why a scenario tagged ``@requires.<capability>`` cannot run here (None: it can)."""
    for tag in tags:
        if tag.startswith("requires."):
            reason = probe(tag.removeprefix("requires."))
            if reason:
                return f"requires {tag.removeprefix('requires.')}: {reason}"
    return None


def doctor_table(probe: CapabilityProbe) -> tuple[str, bool]:
    """The doctor report: per host, then per DC from the controller; (text, every capability present)."""
    lines: list[str] = []
    complete = True
    by_dc: dict[str, list[str]] = {}
    for host, dc_of_host in probe.topology.all_hosts().items():
        by_dc.setdefault(dc_of_host, []).append(host)
    probe.all_hosts()
    width = max(len(n) for n in CAPABILITIES)
    for dc_name, dc in probe.topology.datacenters.items():
        lines.append(f"{dc_name}")
        for host in by_dc.get(dc_name, []):
            caps = probe.host(host)
            lines.append(f"  host {host}")
            for name in (*HOST_CAPABILITIES, "latency"):
                ok = caps.has(name)
                complete = complete and ok
                detail = caps.found.get(name, (False, ""))[1]
                if name == "latency":
                    detail = "netem" if caps.has("netem") else ("NFQUEUE delayer" if caps.has("delayer") else "none")
                elif name == "delayer" and not ok and caps.found.get("delayer", (False, ""))[0]:
                    detail = "no NFQUEUE target in the kernel"
                advice = "" if ok else f"  -> {ADVICE.get(name, '')}"
                lines.append(f"    {name:<{width}}  {'yes' if ok else 'NO ':<3}  {detail[:70]}{advice}")
        if not dc.hosts:
            lines.append("  (no hosts declared: network, process and resource faults cannot target this DC)")
        caps = probe.dc(dc_name)
        lines.append("  from the controller")
        for name in DC_CAPABILITIES:
            ok = caps.has(name)
            complete = complete and ok
            detail = caps.found.get(name, (False, ""))[1]
            advice = "" if ok else f"  -> {ADVICE.get(name, '')}"
            lines.append(f"    {name:<{width}}  {'yes' if ok else 'NO ':<3}  {detail[:70]}{advice}")
    return "\n".join(lines), complete


def requirements_skip_reason(run: Any, tags: Iterable[str]) -> str | None:
    """Why a scenario tagged ``@requires.<capability>`` cannot run against ``run``'s config (None: it can).

    The capability probe is made once per run and kept on ``run`` (the RunContext's ``capabilities()``)."""
    wanted = [tag for tag in tags if tag.startswith("requires.")]
    if not wanted:
        return None
    probe: CapabilityProbe = run.capabilities()
    return skip_reason(wanted, probe.requirement)
