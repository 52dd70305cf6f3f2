"""Faults on the Cross-DC toolkit's own channel between two data centers, applied on the DC hosts over SSH.

The toolkit talks to the other data center over two kinds of plain HTTP connection (reference §5.3): its
heartbeats go to ``crossDCHttpPort`` (``datacenters.<dc>.crossdc.http_port``, the dedicated
``CrossDataCenterReceiverForHB``), its snapshot messages (types 2, 3 and 4) to ``crossDCHttpPort + 1 + c``,
c = 0 .. numberOfHttpSenderReceiverPairs - 1 (the ``CrossDataCenterReceiver[c]`` of its parallel region). These
faults drop one kind and leave the other, and everything else (client traffic, REST, data exchange), alone:

* ``heartbeat-cut`` (between=(a, b)): TCP to each DC's heartbeat port from the other DC's hosts is dropped where
  it arrives (iptables INPUT DROP on every host of both DCs), both ways. Both sides miss heartbeats and declare
  the other DOWN after M+1 ticks, while snapshots and clients still get through.
* ``replication-cut`` (between=(source, target)): TCP from the source DC's hosts to the target's snapshot ports is
  dropped on arrival at the target. Heartbeats keep flowing both ways, so nothing fails over, and the target's
  copy of the source's state goes stale: the source's sender blocks on each connect for ``httpConnectionTimeout``
  (25 s by default) and logs the exception; the target keeps the last snapshot it received.

Effect proof (probes from the hosts themselves, :func:`support.faults.network.run_probes`): connects to the cut
port(s) go unanswered while the port(s) of the other kind on the same hosts still answer (accept or refuse), which
proves that only the one kind is cut. Heal proof: the cut ports answer again and no rule of the fault is left.
"""

from __future__ import annotations

import shlex
from typing import Any

from support.faults.base import DataCenterInfo, FaultContext, FaultError, Verified, poll
from support.faults.executor import run_on_hosts
from support.faults.guard import delete_rules
from support.faults.network import ProbeResult, _Between, _rules, probe_script, run_probes

__all__ = ["HeartbeatCut", "ReplicationCut", "heartbeat_ports", "snapshot_ports"]

#: numberOfHttpSenderReceiverPairs is a parallel width; anything beyond this is a typo, not a deployment
MAX_PAIRS = 64


def heartbeat_ports(dc: DataCenterInfo) -> list[int]:
    """The port the toolkit's heartbeat receiver of ``dc`` listens on (``crossDCHttpPort``)."""
    return [dc.crossdc_port]


def snapshot_ports(dc: DataCenterInfo, pairs: int) -> list[int]:
    """The ports the toolkit's snapshot receivers of ``dc`` listen on: ``crossDCHttpPort + 1 + c`` per channel."""
    return [dc.crossdc_port + 1 + channel for channel in range(pairs)]


class _Channel(_Between):
    """A cut of one kind of the toolkit's traffic between two data centers (INPUT DROP by source and port)."""

    requires = ("iptables",)

    def __init__(self, ctx: FaultContext, between: tuple[str, str], pairs: int | None = None,
                 fault_id: str | None = None) -> None:
        super().__init__(ctx, between, fault_id)
        count = ctx.topology.snapshot_pairs if pairs is None else pairs
        if not isinstance(count, int) or not 1 <= count <= MAX_PAIRS:
            raise FaultError(f"{self.kind}: snapshot sender/receiver pairs must be 1 to {MAX_PAIRS}, got {count!r}")
        self.snapshot_pairs = count

    # -- what is cut, and what must keep answering ---------------------------------------------------------
    def _snapshot(self, dc: DataCenterInfo) -> list[int]:
        return snapshot_ports(dc, self.snapshot_pairs)

    def _receivers(self) -> dict[str, tuple[list[str], list[int]]]:
        """Receiving host -> (the sources whose connects it drops, the ports they are dropped on)."""
        raise NotImplementedError

    def _cut(self) -> dict[str, list[tuple[str, int]]]:
        """Probes that must go unanswered while the fault holds."""
        raise NotImplementedError

    def _kept(self) -> dict[str, list[tuple[str, int]]]:
        """Probes that must keep answering while the fault holds (the other kind of traffic)."""
        raise NotImplementedError

    def hosts(self) -> list[str]:
        return list(self._receivers())

    def _all_ports(self) -> dict[str, list[tuple[str, int]]]:
        merged: dict[str, list[tuple[str, int]]] = {}
        for pairs in (self._cut(), self._kept()):
            for src, targets in pairs.items():
                merged.setdefault(src, []).extend(t for t in targets if t not in merged.get(src, []))
        return merged

    # -- life ------------------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Probe every port the proof uses before the fault: all must answer (else nothing could be proven)."""
        probes = run_probes(self.ctx, self._all_ports(), timeout=2.0, repeat=3)
        down = [p for p in probes if not p.reachable]
        if down:
            raise FaultError(f"cannot prove {self.kind} between {self.first.name} and {self.second.name}: "
                             f"{down[0]} before the fault")
        self.baseline = {}
        for p in probes:
            self.baseline[(p.src, p.dst)] = max(p.seconds, self.baseline.get((p.src, p.dst), 0.0))
        slowest = max(self.baseline.values(), default=0.01)
        self.block_timeout = min(max(0.05 + 4 * slowest, 0.1), 2.0)
        self.prepared = True

    def inject_scripts(self) -> dict[str, str]:
        return {host: _rules([f"-I INPUT 1 -p tcp -s {src} --dport {port} "
                              f'-m comment --comment "{self.label}" -j DROP' for src in sources for port in ports])
                for host, (sources, ports) in self._receivers().items()}

    def revert_scripts(self) -> dict[str, str]:
        return {host: delete_rules(self.label) for host in self._receivers()}

    def _rules_left_script(self) -> str:
        pattern = shlex.quote(f'--comment "{self.label}"')
        return f"echo \"RULES $(iptables-save -t filter 2>/dev/null | grep -cF -- {pattern})\"\n"

    def verify_scripts(self) -> dict[str, str]:
        return {src: probe_script(targets, self.block_timeout) for src, targets in self._all_ports().items()}

    def _look(self, timeout: float) -> tuple[list[ProbeResult], list[ProbeResult]]:
        cut = {(src, dst, port) for src, targets in self._cut().items() for dst, port in targets}
        probes = run_probes(self.ctx, self._all_ports(), timeout=timeout)
        return ([p for p in probes if (p.src, p.dst, p.port) in cut],
                [p for p in probes if (p.src, p.dst, p.port) not in cut])

    def verify(self, timeout: float) -> Verified:
        def check() -> tuple[bool, str]:
            cut, kept = self._look(self.block_timeout)
            ok = not any(p.reachable for p in cut) and all(p.reachable for p in kept)
            return ok, f"cut: {'; '.join(map(str, cut))}; still answering: {'; '.join(map(str, kept))}"

        return poll(check, timeout, self._effect())

    def verify_healed(self, timeout: float) -> Verified:
        def check() -> tuple[bool, str]:
            left = run_on_hosts(self.ctx.executors, {h: self._rules_left_script() for h in self.hosts()},
                                what="rules left")
            counts = {h: sum(int(f[0]) for f in r.lines("RULES") if f and f[0].isdigit()) for h, r in left.items()}
            residue = [f"{h}: {n} rule(s) of {self.label} left" for h, n in counts.items() if n]
            if residue:
                return False, "; ".join(residue)
            cut, kept = self._look(max(self.block_timeout, 0.5))
            return all(p.reachable for p in (*cut, *kept)), "; ".join(map(str, (*cut, *kept)))

        return poll(check, timeout, self._healed())

    def _effect(self) -> str:
        raise NotImplementedError

    def _healed(self) -> str:
        raise NotImplementedError


class HeartbeatCut(_Channel):
    """Only the toolkit's heartbeats between the two data centers are dropped, both ways."""

    kind = "heartbeat-cut"

    def describe(self) -> dict[str, Any]:
        return {"between": [self.first.name, self.second.name],
                "heartbeat_ports": {dc.name: heartbeat_ports(dc)[0] for dc in (self.first, self.second)}}

    def _receivers(self) -> dict[str, tuple[list[str], list[int]]]:
        receivers = {host: (list(self.first.hosts), heartbeat_ports(self.second)) for host in self.second.hosts}
        receivers.update({host: (list(self.second.hosts), heartbeat_ports(self.first)) for host in self.first.hosts})
        return receivers

    def _cut(self) -> dict[str, list[tuple[str, int]]]:
        return self.pairs(ports=heartbeat_ports)

    def _kept(self) -> dict[str, list[tuple[str, int]]]:
        return self.pairs(ports=self._snapshot)

    def _effect(self) -> str:
        return (f"heartbeats between {self.first.name} and {self.second.name} cut both ways, snapshot ports "
                "still answering")

    def _healed(self) -> str:
        return f"heartbeats between {self.first.name} and {self.second.name} getting through again"


class ReplicationCut(_Channel):
    """Only the snapshot messages the first data center sends to the second are dropped (on arrival there)."""

    kind = "replication-cut"

    def describe(self) -> dict[str, Any]:
        return {"between": [self.first.name, self.second.name], "one_way": True,
                "snapshot_ports": self._snapshot(self.second)}

    def _receivers(self) -> dict[str, tuple[list[str], list[int]]]:
        return {host: (list(self.first.hosts), self._snapshot(self.second)) for host in self.second.hosts}

    def hosts(self) -> list[str]:
        # the probes run on the source's hosts; the rules live on the target's
        return [*self.first.hosts, *self.second.hosts]

    def _cut(self) -> dict[str, list[tuple[str, int]]]:
        return self.pairs(backward=False, ports=self._snapshot)

    def _kept(self) -> dict[str, list[tuple[str, int]]]:
        return self.pairs(backward=False, ports=heartbeat_ports)

    def _effect(self) -> str:
        return (f"snapshot replication from {self.first.name} to {self.second.name} cut, heartbeats still "
                "answering")

    def _healed(self) -> str:
        return f"snapshots from {self.first.name} reaching {self.second.name} again"
