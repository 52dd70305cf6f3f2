"""Network faults between data centers, applied on the DC hosts over SSH.

* ``partition``: packets between two DCs are dropped where they arrive (iptables INPUT DROP on the
  receiving hosts, both directions; ``one_way``: only what the first DC sends to the second, dropped on
  arrival at the second — TCP then fails both ways, as on a real one-way WAN fault, since the replies of
  the second DC's connections never arrive either).
* ``isolate``: everything in and out of the DC's hosts is dropped except loopback, traffic between the DC's
  own hosts and the controller's SSH connection.
* ``latency``: every packet between the two DCs is held ``delay ± jitter`` (each direction, so a round
  trip grows by twice the delay): tc netem where the host's kernel has it, otherwise an NFQUEUE delayer
  (:mod:`support.faults.delayer`) started on the host. Only traffic to the other DC's hosts is affected.
* ``loss``: each packet between the two DCs is dropped with the given probability (iptables ``statistic``).
* ``bandwidth``: traffic between the two DCs is shaped by tbf at the given rate (each direction).

Effects are proven with probes run on the hosts themselves: a TCP connect to the other DC's crossdc port
(any answer — accept or refuse — means reachable), timed for latency; UDP bursts and the tagged rule or
qdisc counters for loss and bandwidth.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from support.faults.base import (
    DataCenterInfo,
    Fault,
    FaultContext,
    FaultError,
    FaultUnsupported,
    Verified,
    poll,
)
from support.faults.executor import run_on_hosts
from support.faults.guard import check_address, delete_rules, kill_tagged, qdisc_major
from support.units import format_rate, format_seconds

__all__ = ["Bandwidth", "Isolate", "Latency", "Loss", "Partition", "ProbeResult", "run_probes"]

PROBE_FUNCTION = r"""xdc_probe() {
  __s=$(date +%s%N)
  __o=$(timeout "$3" bash -c "exec 3<>/dev/tcp/$1/$2" 2>&1); __rc=$?
  __e=$(date +%s%N)
  if [ $__rc -eq 0 ]; then __st=open
  elif [ $__rc -eq 124 ]; then __st=timeout
  else case "$__o" in *refused*) __st=refused;; *"not permitted"*) __st=blocked;;
    *nreachable*|*"No route"*) __st=unreachable;; *) __st=error;; esac
  fi
  echo "PROBE $1 $2 $__st $(( (__e - __s) / 1000 ))"
}
"""
DISCARD_PORT = 9
DEFAULT_QDISCS = ("noqueue", "pfifo_fast", "fq_codel", "mq", "fq", "pfifo", "")


@dataclass(frozen=True)
class ProbeResult:
    src: str
    dst: str
    port: int
    state: str
    seconds: float

    @property
    def reachable(self) -> bool:
        return self.state in ("open", "refused")

    def __str__(self) -> str:
        return f"{self.src}->{self.dst}:{self.port} {self.state} {self.seconds * 1000:.1f} ms"


def probe_script(targets: list[tuple[str, int]], timeout: float, repeat: int = 1) -> str:
    """Shell probing every (host, port) ``repeat`` times in a row, targets in parallel."""
    lines = [PROBE_FUNCTION]
    for host, port in targets:
        seq = "; ".join(f"xdc_probe {shlex.quote(host)} {int(port)} {timeout:.3f}" for _ in range(repeat))
        lines.append(f"( {seq} ) &")
    lines.append("wait")
    return "\n".join(lines) + "\n"


def run_probes(ctx: FaultContext, pairs: dict[str, list[tuple[str, int]]], timeout: float,
               repeat: int = 1) -> list[ProbeResult]:
    """Probe from each source host to its targets; one result per (src, dst), the fastest of ``repeat``."""
    scripts = {src: probe_script(targets, timeout, repeat) for src, targets in pairs.items() if targets}
    results = run_on_hosts(ctx.executors, scripts, what="probe", timeout=timeout * repeat + 10)
    best: dict[tuple[str, str, int], ProbeResult] = {}
    for src, result in results.items():
        for fields in result.lines("PROBE"):
            if len(fields) != 4:
                continue
            probe = ProbeResult(src, fields[0], int(fields[1]), fields[2], int(fields[3]) / 1e6)
            key = (src, probe.dst, probe.port)
            seen = best.get(key)
            if seen is None or (probe.reachable and (not seen.reachable or probe.seconds < seen.seconds)):
                best[key] = probe
    expected = {(src, dst, port) for src, targets in pairs.items() for dst, port in targets}
    missing = expected - set(best)
    if missing:
        src, dst, port = sorted(missing)[0]
        raise FaultError(f"probe from {src} to {dst}:{port} printed no result")
    return [best[key] for key in sorted(best)]


def _rules(lines: list[str]) -> str:
    """Shell inserting filter rules atomically (iptables-restore, existing rules kept). The rules are a quoted
    here-document: the shell expands nothing in them."""
    body = "\n".join(lines)
    return f"iptables-restore -w -n <<'__XDC_RULES__' || exit 3\n*filter\n{body}\nCOMMIT\n__XDC_RULES__\n"


class _Between(Fault):
    """A fault on the traffic between two data centers."""

    def __init__(self, ctx: FaultContext, between: tuple[str, str], fault_id: str | None = None) -> None:
        super().__init__(ctx, fault_id)
        first, second = ctx.allowlist.check_pair(*between)
        self.first, self.second = ctx.topology.dc(first), ctx.topology.dc(second)
        for dc in (self.first, self.second):
            dc.primary_host  # noqa: B018 - raises when the DC declares no hosts
            for host in dc.hosts:
                check_address(host)  # goes into iptables rules and /dev/udp paths as it is
        self.baseline: dict[tuple[str, str], float] = {}
        self.block_timeout = 0.25

    def describe(self) -> dict[str, Any]:
        return {"between": [self.first.name, self.second.name]}

    def hosts(self) -> list[str]:
        return [*self.first.hosts, *self.second.hosts]

    def peers(self, host: str) -> list[str]:
        """The other side's hosts of ``host``."""
        return list(self.second.hosts if host in self.first.hosts else self.first.hosts)

    def _port(self, host: str) -> int:
        return self.second.crossdc_port if host in self.second.hosts else self.first.crossdc_port

    def pairs(self, forward: bool = True, backward: bool = True,
              ports: Callable[[DataCenterInfo], Iterable[int]] | None = None) -> dict[str, list[tuple[str, int]]]:
        """Source host -> the (peer host, port) targets to probe: the receiving DC's crossdc (heartbeat) port,
        or every port ``ports(receiving DC)`` names."""
        def port_of(dc: DataCenterInfo) -> Iterable[int]:
            return (dc.crossdc_port,) if ports is None else ports(dc)

        pairs: dict[str, list[tuple[str, int]]] = {}
        if forward:
            for src in self.first.hosts:
                pairs[src] = [(dst, port) for dst in self.second.hosts for port in port_of(self.second)]
        if backward:
            for src in self.second.hosts:
                pairs[src] = [(dst, port) for dst in self.first.hosts for port in port_of(self.first)]
        return pairs

    def prepare(self) -> None:
        """Probe both ways before the fault: everything must be reachable (else nothing could be proven),
        and the connect times set how long a probe waits before calling a peer unreachable."""
        probes = run_probes(self.ctx, self.pairs(), timeout=2.0, repeat=3)
        down = [p for p in probes if not p.reachable]
        if down:
            raise FaultError(f"cannot prove {self.kind} between {self.first.name} and {self.second.name}: "
                             f"{down[0]} before the fault")
        self.baseline = {(p.src, p.dst): p.seconds for p in probes}
        slowest = max(self.baseline.values(), default=0.01)
        self.block_timeout = min(max(0.05 + 4 * slowest, 0.1), 2.0)
        super().prepare()

    def verify_scripts(self) -> dict[str, str]:
        return {src: probe_script(targets, self.block_timeout) for src, targets in self.pairs().items()}

    def _reachable_again(self, timeout: float) -> Verified:
        def check() -> tuple[bool, str]:
            probes = run_probes(self.ctx, self.pairs(), timeout=max(self.block_timeout, 0.5))
            return all(p.reachable for p in probes), "; ".join(map(str, probes))

        return poll(check, timeout, f"{self.first.name} and {self.second.name} reaching each other again")


class Partition(_Between):
    kind = "partition"
    requires = ("iptables",)

    def __init__(self, ctx: FaultContext, between: tuple[str, str], one_way: bool = False,
                 fault_id: str | None = None) -> None:
        super().__init__(ctx, between, fault_id)
        self.one_way = one_way

    def describe(self) -> dict[str, Any]:
        return {"between": [self.first.name, self.second.name], "one_way": self.one_way}

    def _receivers(self) -> dict[str, list[str]]:
        """Receiving host -> sources whose packets it drops."""
        receivers = {host: list(self.first.hosts) for host in self.second.hosts}
        if not self.one_way:
            receivers.update({host: list(self.second.hosts) for host in self.first.hosts})
        return receivers

    def inject_scripts(self) -> dict[str, str]:
        return {host: _rules([f'-I INPUT 1 -s {src} -m comment --comment "{self.label}" -j DROP' for src in sources])
                for host, sources in self._receivers().items()}

    def revert_scripts(self) -> dict[str, str]:
        return {host: delete_rules(self.label) for host in self._receivers()}

    def verify(self, timeout: float) -> Verified:
        pairs = self.pairs(backward=not self.one_way)

        def check() -> tuple[bool, str]:
            probes = run_probes(self.ctx, pairs, timeout=self.block_timeout)
            return not any(p.reachable for p in probes), "; ".join(map(str, probes))

        return poll(check, timeout, f"{self.first.name} and {self.second.name} partitioned")

    def verify_healed(self, timeout: float) -> Verified:
        return self._reachable_again(timeout)


class Isolate(Fault):
    kind = "isolate"
    requires = ("iptables",)

    def __init__(self, ctx: FaultContext, dc: str, fault_id: str | None = None) -> None:
        super().__init__(ctx, fault_id)
        self.dc = ctx.topology.dc(ctx.allowlist.check_dc(dc))
        self.dc.primary_host  # noqa: B018 - raises when the DC declares no hosts
        self.others = [other for other in ctx.topology.datacenters.values() if other.name != dc and other.hosts]
        for host in self.dc.hosts:
            check_address(host)  # goes into iptables rules as it is
        if not self.others:
            raise FaultError(f"cannot prove that {dc} is cut off: no other data center with hosts is declared")
        self.block_timeout = 0.25

    def describe(self) -> dict[str, Any]:
        return {"dc": self.dc.name}

    def hosts(self) -> list[str]:
        return [*self.dc.hosts, *(h for other in self.others for h in other.hosts)]

    def _pairs(self) -> dict[str, list[tuple[str, int]]]:
        pairs: dict[str, list[tuple[str, int]]] = {
            src: [(dst, other.crossdc_port) for other in self.others for dst in other.hosts] for src in self.dc.hosts}
        for other in self.others:
            for src in other.hosts:
                pairs[src] = [(dst, self.dc.crossdc_port) for dst in self.dc.hosts]
        return pairs

    def prepare(self) -> None:
        probes = run_probes(self.ctx, self._pairs(), timeout=2.0, repeat=3)
        down = [p for p in probes if not p.reachable]
        if down:
            raise FaultError(f"cannot prove that {self.dc.name} is cut off: {down[0]} before the fault")
        self.block_timeout = min(max(0.05 + 4 * max(p.seconds for p in probes), 0.1), 2.0)
        super().prepare()

    def inject_scripts(self) -> dict[str, str]:
        label = self.label
        own = [h for h in self.dc.hosts]
        # inserted at position 1 in reverse: the final order is loopback, own DC, controller SSH, drop
        lines = [f'-I INPUT 1 -m comment --comment "{label}" -j DROP',
                 f'-I INPUT 1 -p tcp -s @CONTROLLER@ --dport @SSHPORT@ -m comment --comment "{label}" -j ACCEPT',
                 *(f'-I INPUT 1 -s {h} -m comment --comment "{label}" -j ACCEPT' for h in own),
                 f'-I INPUT 1 -i lo -m comment --comment "{label}" -j ACCEPT',
                 f'-I OUTPUT 1 -m comment --comment "{label}" -j DROP',
                 f'-I OUTPUT 1 -p tcp -d @CONTROLLER@ --sport @SSHPORT@ -m comment --comment "{label}" -j ACCEPT',
                 *(f'-I OUTPUT 1 -d {h} -m comment --comment "{label}" -j ACCEPT' for h in own),
                 f'-I OUTPUT 1 -o lo -m comment --comment "{label}" -j ACCEPT']
        # the rules are a quoted here-document; the controller's address and SSH port (from SSH_CONNECTION,
        # checked to be an address and a number) replace their placeholders
        body = "\n".join(lines)
        script = (
            "__c=${SSH_CONNECTION%% *}; __sp=${SSH_CONNECTION##* }\n"
            "if [ -z \"$__c\" ] || [ -z \"$__sp\" ]; then echo 'not an SSH session: cannot tell the controller "
            "address to keep' >&2; exit 3; fi\n"
            "case \"$__c\" in *[!0-9A-Fa-f.:]*) echo \"SSH_CONNECTION holds no address: $__c\" >&2; exit 3;; esac\n"
            "case \"$__sp\" in *[!0-9]*) echo \"SSH_CONNECTION holds no port: $__sp\" >&2; exit 3;; esac\n"
            f"sed \"s/@CONTROLLER@/$__c/g; s/@SSHPORT@/$__sp/g\" <<'__XDC_RULES__' | iptables-restore -w -n || exit 3\n"
            f"*filter\n{body}\nCOMMIT\n__XDC_RULES__\n"
        )
        return {host: script for host in self.dc.hosts}

    def revert_scripts(self) -> dict[str, str]:
        return {host: delete_rules(self.label) for host in self.dc.hosts}

    def verify_scripts(self) -> dict[str, str]:
        return {src: probe_script(targets, self.block_timeout) for src, targets in self._pairs().items()}

    def verify(self, timeout: float) -> Verified:
        def check() -> tuple[bool, str]:
            probes = run_probes(self.ctx, self._pairs(), timeout=self.block_timeout)
            return not any(p.reachable for p in probes), "; ".join(map(str, probes))

        return poll(check, timeout, f"{self.dc.name} cut off")

    def verify_healed(self, timeout: float) -> Verified:
        def check() -> tuple[bool, str]:
            probes = run_probes(self.ctx, self._pairs(), timeout=max(self.block_timeout, 0.5))
            return all(p.reachable for p in probes), "; ".join(map(str, probes))

        return poll(check, timeout, f"{self.dc.name} reachable again")


def _egress_devices(peers: list[str]) -> str:
    """Shell setting ``__devs`` (the devices routing to the peers) and ``__ips`` (their IPv4 addresses)."""
    quoted = " ".join(shlex.quote(p) for p in peers)
    return (
        "__devs=''; __ips=''\n"
        f"for __h in {quoted}; do\n"
        "  __ip=$(getent ahostsv4 \"$__h\" | awk 'NR==1{print $1}'); __ips=\"$__ips ${__ip:-$__h}\"\n"
        "  __d=$(ip -o route get \"${__ip:-$__h}\" | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p')\n"
        "  [ -z \"$__d\" ] && { echo \"no route to $__h\" >&2; exit 3; }\n"
        "  case \" $__devs \" in *\" $__d \"*) ;; *) __devs=\"$__devs $__d\";; esac\n"
        "done\n"
    )


class _Shaped(_Between):
    """A fault that shapes egress traffic to the peers with an htb root qdisc and a leaf per device."""

    def leaf(self) -> str:
        raise NotImplementedError

    def _qdisc_script(self, host: str) -> str:
        major = qdisc_major(self.ctx.settings.tag)
        leaf_handle = f"{int(major, 16) + 1:x}"
        devs_file = self.state_file(host, "devs")
        defaults = "|".join(f'"qdisc {kind} "*' for kind in DEFAULT_QDISCS if kind) + '|""'
        return _egress_devices(self.peers(host)) + (
            "for __d in $__devs; do\n"
            "  __root=$(tc qdisc show dev \"$__d\" root | head -n1)\n"
            "  case \"$__root\" in\n"
            f"    \"qdisc htb {major}: \"*) echo \"$__d already carries a fault qdisc (one per interface)\" >&2;"
            " exit 3;;\n"
            f"    {defaults}) ;;\n"
            "    *) echo \"$__d has a custom root qdisc ($__root): not replacing it\" >&2; exit 3;;\n"
            "  esac\n"
            f"  tc qdisc add dev \"$__d\" root handle {major}: htb default 1 || exit 4\n"
            f"  echo \"$__d\" >> {shlex.quote(devs_file)}\n"
            f"  tc class add dev \"$__d\" parent {major}: classid {major}:1 htb rate 100gbit quantum 60000 || exit 4\n"
            f"  tc class add dev \"$__d\" parent {major}: classid {major}:2 htb rate 100gbit quantum 60000 || exit 4\n"
            f"  tc qdisc add dev \"$__d\" parent {major}:2 handle {leaf_handle}: {self.leaf()} || exit 4\n"
            "  for __ip in $__ips; do\n"
            f"    tc filter add dev \"$__d\" parent {major}: protocol ip prio 1 u32 match ip dst \"$__ip/32\""
            f" flowid {major}:2 || exit 4\n"
            "  done\n"
            "done\n"
        )

    def _qdisc_revert(self, host: str) -> str:
        major = qdisc_major(self.ctx.settings.tag)
        devs_file = self.state_file(host, "devs")
        return (
            f"for __d in $(cat {shlex.quote(devs_file)} 2>/dev/null); do\n"
            f"  tc qdisc show dev \"$__d\" root | grep -q '^qdisc htb {major}: ' && tc qdisc del dev \"$__d\" root\n"
            "done\ntrue\n"
        )

    def _qdisc_gone(self) -> str:
        major = qdisc_major(self.ctx.settings.tag)
        return f"tc qdisc show | grep -E '^qdisc [a-z_]+ {major}: ' | sed 's/^/QDISC /'\ntrue\n"


class Latency(_Shaped):
    kind = "latency"
    requires = ("latency",)

    def __init__(self, ctx: FaultContext, between: tuple[str, str], delay: float, jitter: float = 0.0,
                 fault_id: str | None = None) -> None:
        super().__init__(ctx, between, fault_id)
        if delay <= 0 or jitter < 0 or jitter > delay:
            raise FaultError("latency needs delay > 0 and 0 <= jitter <= delay "
                             f"(got {format_seconds(delay, None)}, {format_seconds(jitter, None)})")
        self.delay = delay
        self.jitter = jitter
        self.mode: dict[str, str] = {}
        self.queue = 1000 + int(self.id, 16) % 60000

    def describe(self) -> dict[str, Any]:
        return {"between": [self.first.name, self.second.name], "delay_ms": round(self.delay * 1000, 3),
                "jitter_ms": round(self.jitter * 1000, 3),
                **({"mode": sorted(set(self.mode.values()))} if self.mode else {})}

    def supports(self, caps: Any) -> str | None:
        for host in self.hosts():
            found = caps(host)
            if not (found.has("netem") or found.has("delayer")):
                return f"latency needs netem or the NFQUEUE delayer on {host}: {found.reason('delayer')}"
        return None

    def prepare(self) -> None:
        super().prepare()
        caps = self.ctx.capabilities
        for host in self.hosts():
            if caps is not None and caps(host).has("netem"):
                self.mode[host] = "netem"
            elif caps is None or caps(host).has("delayer"):
                self.mode[host] = "delayer"
            else:
                raise FaultUnsupported(f"latency needs netem or the NFQUEUE delayer on {host}: "
                                       f"{caps(host).reason('delayer')}")

    def leaf(self) -> str:
        jitter = f" {self.jitter * 1000:.3f}ms" if self.jitter else ""
        return f"netem delay {self.delay * 1000:.3f}ms{jitter}"

    def _delayer_start(self, host: str) -> str:
        """Shell shipping the delayer to ``host`` and starting it on the fault's queue (no traffic reaches the
        queue until the NFQUEUE rule exists, so this is staging, outside the apply time)."""
        from pathlib import Path

        directory = shlex.quote(self.ctx.settings.directory)
        program = Path(__file__).with_name("delayer.py").read_text(encoding="utf-8")
        import base64

        encoded = base64.b64encode(program.encode()).decode()
        script = shlex.quote(self.state_file(host, "delayer.py"))
        log = shlex.quote(self.state_file(host, "delayer.log"))
        return (
            f"mkdir -p {directory}\nprintf %s {encoded} | base64 -d > {script}\n"
            f"XDC_FAULT={shlex.quote(self.host_label(host))} setsid {shlex.quote(self.ctx.settings.python)} {script} "
            f"--queue {self.queue} "
            f"--delay-ms {self.delay * 1000:.3f} --jitter-ms {self.jitter * 1000:.3f} --ttl {self.ttl:.3f} "
            f"</dev/null >{log} 2>&1 &\n"
            f"for __i in $(seq 250); do grep -q READY {log} 2>/dev/null && break; "
            "[ -d /proc/$! ] || break; sleep 0.02; done\n"
            f"grep -q READY {log} || {{ echo \"delayer did not start: $(tail -n 3 {log} | tr '\\n' ' ')\" >&2; "
            "exit 3; }\n"
        )

    def _delayer_rules(self, host: str) -> str:
        return _rules([f'-I OUTPUT 1 -d {peer} -m comment --comment "{self.label}" -j NFQUEUE '
                       f"--queue-num {self.queue} --queue-bypass" for peer in self.peers(host)])

    def stage_scripts(self) -> dict[str, str]:
        return {host: self._delayer_start(host) for host in self.hosts() if self.mode.get(host, "netem") != "netem"}

    def inject_scripts(self) -> dict[str, str]:
        scripts = {}
        for host in self.hosts():
            mode = self.mode.get(host, "netem")
            scripts[host] = self._qdisc_script(host) if mode == "netem" else self._delayer_rules(host)
        return scripts

    def revert_scripts(self) -> dict[str, str]:
        reverts = {}
        for host in self.hosts():
            if self.mode.get(host, "netem") == "netem":
                reverts[host] = self._qdisc_revert(host)
            else:
                reverts[host] = delete_rules(self.label) + kill_tagged(self.host_label(host))
        return reverts

    def verify_scripts(self) -> dict[str, str]:
        return {src: probe_script(targets, self._probe_timeout()) for src, targets in self.pairs().items()}

    def _probe_timeout(self) -> float:
        return 2 * (self.delay + self.jitter) + 1.0

    def verify(self, timeout: float) -> Verified:
        grown = 0.8 * (self.delay - self.jitter)

        def check() -> tuple[bool, str]:
            probes = run_probes(self.ctx, self.pairs(), timeout=self._probe_timeout())
            ok = all(p.reachable and p.seconds >= self.baseline.get((p.src, p.dst), 0.0) + grown for p in probes)
            return ok, "; ".join(f"{p} (baseline {self.baseline.get((p.src, p.dst), 0) * 1000:.1f} ms)"
                                 for p in probes)

        return poll(check, timeout, f"connect times between {self.first.name} and {self.second.name} grown by "
                    f">= {grown * 1000:.0f} ms")

    def verify_healed(self, timeout: float) -> Verified:
        slack = max(0.02, 0.25 * self.delay)

        def check() -> tuple[bool, str]:
            probes = run_probes(self.ctx, self.pairs(), timeout=self._probe_timeout())
            residue = run_on_hosts(self.ctx.executors, {h: self._qdisc_gone() for h in self.hosts()}, what="tc")
            left = [f"{h}: {line}" for h, r in residue.items() for line in r.stdout.splitlines()]
            ok = not left and all(p.reachable and p.seconds <= self.baseline.get((p.src, p.dst), 0.0) + slack
                                  for p in probes)
            return ok, "; ".join([*map(str, probes), *left])

        return poll(check, timeout, f"connect times between {self.first.name} and {self.second.name} back to normal")


class Loss(_Between):
    kind = "loss"
    requires = ("iptables",)

    def __init__(self, ctx: FaultContext, between: tuple[str, str], probability: float,
                 fault_id: str | None = None) -> None:
        super().__init__(ctx, between, fault_id)
        if not 0 < probability <= 1:
            raise FaultError(f"packet loss must be in (0%, 100%], got {probability * 100:g}%")
        self.probability = probability

    def describe(self) -> dict[str, Any]:
        return {"between": [self.first.name, self.second.name], "percent": round(self.probability * 100, 3)}

    def inject_scripts(self) -> dict[str, str]:
        return {host: _rules([f"-I INPUT 1 -s {src} -m statistic --mode random --probability {self.probability:.6f} "
                              f'-m comment --comment "{self.label}" -j DROP' for src in self.peers(host)])
                for host in self.hosts()}

    def revert_scripts(self) -> dict[str, str]:
        return {host: delete_rules(self.label) for host in self.hosts()}

    def _burst(self) -> int:
        return int(min(2000, max(50, 20 / self.probability)))

    def verify_scripts(self) -> dict[str, str]:
        return {host: _udp_burst(self.peers(host), self._burst(), 64) + self._counter_script()
                for host in self.hosts()}

    def _counter_script(self) -> str:
        return (f"iptables -w -L INPUT -v -x -n | grep -F {shlex.quote('/* ' + self.label + ' */')} "
                "| awk '{print \"DROPPED \" $1}'\n")

    def verify(self, timeout: float) -> Verified:
        def check() -> tuple[bool, str]:
            run_on_hosts(self.ctx.executors, {h: _udp_burst(self.peers(h), self._burst(), 64) for h in self.hosts()},
                         what="udp burst")
            counters = run_on_hosts(self.ctx.executors, {h: self._counter_script() for h in self.hosts()},
                                    what="rule counters")
            dropped = {h: sum(int(f[0]) for f in r.lines("DROPPED")) for h, r in counters.items()}
            ok = all(count > 0 for count in dropped.values())
            return ok, ", ".join(f"{h} dropped {n} packet(s) from the other side" for h, n in dropped.items())

        return poll(check, timeout, f"{self.probability * 100:g}% loss between {self.first.name} and "
                    f"{self.second.name}")

    def verify_healed(self, timeout: float) -> Verified:
        def check() -> tuple[bool, str]:
            rules = run_on_hosts(self.ctx.executors, {h: self._counter_script() for h in self.hosts()},
                                 what="rule counters")
            left = [h for h, r in rules.items() if r.lines("DROPPED")]
            if left:
                return False, f"loss rules still on {', '.join(left)}"
            probes = run_probes(self.ctx, self.pairs(), timeout=max(self.block_timeout, 0.5))
            return all(p.reachable for p in probes), "; ".join(map(str, probes))

        return poll(check, timeout, f"no loss between {self.first.name} and {self.second.name}")


def _udp_burst(peers: list[str], count: int, size: int) -> str:
    """Shell sending ``count`` UDP datagrams of ``size`` bytes to each peer's discard port (no listener needed)."""
    lines = [f"__pl=$(head -c {int(size)} /dev/zero | tr '\\0' x)"]
    for peer in peers:
        target = f"/dev/udp/{shlex.quote(peer)}/{DISCARD_PORT}"
        lines.append(f"for __i in $(seq {int(count)}); do printf %s \"$__pl\" > {target}; done 2>/dev/null")
    return "\n".join(lines) + "\n"


class Bandwidth(_Shaped):
    kind = "bandwidth"
    requires = ("tbf",)

    def __init__(self, ctx: FaultContext, between: tuple[str, str], rate: int, fault_id: str | None = None) -> None:
        super().__init__(ctx, between, fault_id)
        if rate < 8000:
            raise FaultError(f"bandwidth limit must be at least 8 kbit, got {rate} bit/s")
        self.rate = rate
        self.burst = max(rate // 8 // 50, 3028)

    def describe(self) -> dict[str, Any]:
        return {"between": [self.first.name, self.second.name], "rate_kbit": round(self.rate / 1000, 3)}

    def leaf(self) -> str:
        return f"tbf rate {self.rate}bit burst {self.burst} latency 100ms"

    def inject_scripts(self) -> dict[str, str]:
        return {host: self._qdisc_script(host) for host in self.hosts()}

    def revert_scripts(self) -> dict[str, str]:
        return {host: self._qdisc_revert(host) for host in self.hosts()}

    def _stats_script(self) -> str:
        major = qdisc_major(self.ctx.settings.tag)
        leaf_handle = f"{int(major, 16) + 1:x}"
        return (
            f"tc -s qdisc show | awk '/^qdisc tbf {leaf_handle}: /{{on=1; next}} "
            "on && /overlimits/ {gsub(/[(),]/, \"\"); for (i=1;i<=NF;i++) { if ($i==\"dropped\") d=$(i+1); "
            "if ($i==\"overlimits\") o=$(i+1) }; print \"TBF \" d \" \" o; on=0}'\n"
        )

    def _volume(self) -> int:
        return (2 * self.burst + 20 * 1400) // 1400 + 1

    def verify_scripts(self) -> dict[str, str]:
        return {host: _udp_burst(self.peers(host), self._volume(), 1400) + self._stats_script()
                for host in self.hosts()}

    def verify(self, timeout: float) -> Verified:
        def check() -> tuple[bool, str]:
            results = run_on_hosts(self.ctx.executors, {h: _udp_burst(self.peers(h), self._volume(), 1400)
                                                        + self._stats_script() for h in self.hosts()},
                                   what="udp burst")
            shaped = {h: sum(int(f[0]) + int(f[1]) for f in r.lines("TBF") if len(f) == 2) for h, r in results.items()}
            tbfs = {h: len(r.lines("TBF")) for h, r in results.items()}
            ok = all(tbfs[h] > 0 and shaped[h] > 0 for h in results)
            return ok, ", ".join(f"{h}: {tbfs[h]} tbf qdisc(s), {shaped[h]} packet(s) held or dropped over the rate"
                                 for h in results)

        return poll(check, timeout, f"{format_rate(self.rate)} limit between {self.first.name} and "
                    f"{self.second.name}")

    def verify_healed(self, timeout: float) -> Verified:
        def check() -> tuple[bool, str]:
            residue = run_on_hosts(self.ctx.executors, {h: self._qdisc_gone() for h in self.hosts()}, what="tc")
            left = [f"{h}: {line}" for h, r in residue.items() for line in r.stdout.splitlines()]
            if left:
                return False, "; ".join(left)
            probes = run_probes(self.ctx, self.pairs(), timeout=max(self.block_timeout, 0.5))
            return all(p.reachable for p in probes), "; ".join(map(str, probes))

        return poll(check, timeout, f"no bandwidth limit between {self.first.name} and {self.second.name}")
