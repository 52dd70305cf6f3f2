"""``clients-cut``: the tester's own traffic cannot reach a data center's data exchange endpoints.

How: on every host of the DC an iptables rule drops what arrives from the controller (the tester, the real
client here) on the data exchange port (``datacenters.<dc>.exchange.url``)::

    -I INPUT 1 -p tcp -s <controller as the DC sees it> --dport <exchange port> -m comment --comment <tag>:<id> -j DROP

Nothing else changes: the data centers still see each other (their crossdc ports and addresses are not
touched), and the REST management API still answers the tester, so the toolkit sees the DC as UP and
nothing fails over. The controller's address is the one in each host's ``SSH_CONNECTION`` when the tester
reaches the host directly; through a bastion that is the bastion's address, so ``faults.client_address``
must name it then (it is used on every host whenever it is set).

* Effect proven from the controller: a TCP connect to the exchange's host and port gets no answer while one
  to the REST port answers.
* Healed (and the dead-man timer): the tagged rules deleted; proven by the exchange answering a connect again.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from support.faults.base import Fault, FaultContext, FaultError, FaultRefused, Verified, poll
from support.faults.guard import check_address, delete_rules

__all__ = ["ClientsCut", "Connect", "connect", "endpoint_of"]

DEFAULT_PORTS = {"https": 443, "http": 80}


@dataclass(frozen=True)
class Connect:
    """A TCP connect from the controller: ``open`` or ``refused`` mean the far end answered."""

    target: str
    host: str
    port: int
    state: str
    seconds: float

    @property
    def answered(self) -> bool:
        return self.state in ("open", "refused")

    def __str__(self) -> str:
        return f"{self.target} {self.host}:{self.port} {self.state} {self.seconds * 1000:.1f} ms"


def endpoint_of(url: str, what: str) -> tuple[str, int]:
    """(host, port) of ``url``, the port from the scheme when the URL names none."""
    parts = urlsplit(url)
    host = parts.hostname
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        port = None
    if not host or port is None:
        raise FaultRefused(f"refused: {what} {url!r} names no host and port")
    return check_address(host), int(port)


def connect(target: str, host: str, port: int, timeout: float) -> Connect:
    """One TCP connect from this process (the controller), classified."""
    started = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            state = "open"
    except ConnectionRefusedError:
        state = "refused"
    except TimeoutError:
        state = "timeout"
    except OSError as exc:
        state = "unreachable" if exc.errno in (101, 113) else f"error:{exc.errno}"
    return Connect(target, host, port, state, time.monotonic() - started)


class ClientsCut(Fault):
    kind = "clients-cut"
    requires = ("iptables",)

    def __init__(self, ctx: FaultContext, dc: str, fault_id: str | None = None) -> None:
        super().__init__(ctx, fault_id)
        self.dc = ctx.topology.dc(ctx.allowlist.check_dc(dc))
        self.dc.primary_host  # noqa: B018 - raises when the DC declares no hosts
        for host in self.dc.hosts:
            check_address(host)
        if not self.dc.exchange_url:
            raise FaultRefused(f"refused: {dc} declares no data exchange (datacenters.{dc}.exchange.url)")
        self.exchange = endpoint_of(self.dc.exchange_url, f"datacenters.{dc}.exchange.url")
        if self.dc.rest is None:
            raise FaultRefused(f"refused: {dc} declares no REST API (datacenters.{dc}.rest.url)")
        self.rest = endpoint_of(self.dc.rest.url, f"datacenters.{dc}.rest.url")
        if self.rest[1] == self.exchange[1] and self.rest[0] == self.exchange[0]:
            raise FaultRefused(f"refused: {dc}'s REST API and data exchange share {self.rest[0]}:{self.rest[1]}: "
                               "the clients cannot be cut off from one without the other")
        configured = ctx.settings.client_address
        self.address = check_address(configured) if configured else None
        if self.address is None and self.dc.ssh is not None and self.dc.ssh.bastion is not None:
            raise FaultRefused(f"refused: {dc} is reached through the bastion {self.dc.ssh.bastion.host}, so the "
                               "hosts cannot tell the tester's address: set faults.client_address")
        self.block_timeout = 0.5

    def describe(self) -> dict[str, Any]:
        return {"dc": self.dc.name, "exchange": f"{self.exchange[0]}:{self.exchange[1]}",
                "client": self.address or "SSH_CONNECTION"}

    def hosts(self) -> list[str]:
        return list(self.dc.hosts)

    def _probe(self, timeout: float) -> tuple[Connect, Connect]:
        return (connect("exchange", *self.exchange, timeout=timeout),
                connect("REST", *self.rest, timeout=timeout))

    def prepare(self) -> None:
        """Both the exchange and REST must answer before the fault (else nothing could be proven); the connect
        times set how long a probe waits before calling the exchange unanswered."""
        probes = [self._probe(2.0) for _ in range(3)]
        down = [p for pair in probes for p in pair if not p.answered]
        if down:
            raise FaultError(f"cannot prove that the clients cannot reach {self.dc.name}: {down[0]} before the fault")
        slowest = max(p.seconds for pair in probes for p in pair)
        self.block_timeout = min(max(0.05 + 4 * slowest, 0.1), 2.0)
        super().prepare()

    def _rule(self, source: str) -> str:
        return (f'-I INPUT 1 -p tcp -s {source} --dport {self.exchange[1]} -m comment --comment "{self.label}" '
                "-j DROP")

    def inject_scripts(self) -> dict[str, str]:
        if self.address is not None:
            rules = self._rule(self.address)
            script = f"iptables-restore -w -n <<'__XDC_RULES__' || exit 3\n*filter\n{rules}\nCOMMIT\n__XDC_RULES__\n"
        else:  # the controller's address as this host sees it (checked to be an address) replaces the placeholder
            script = (
                "__c=${SSH_CONNECTION%% *}\n"
                "if [ -z \"$__c\" ]; then echo 'not an SSH session: cannot tell the tester address "
                "(set faults.client_address)' >&2; exit 3; fi\n"
                "case \"$__c\" in *[!0-9A-Fa-f.:]*) echo \"SSH_CONNECTION holds no address: $__c\" >&2; exit 3;; esac\n"
                "sed \"s/@CONTROLLER@/$__c/g\" <<'__XDC_RULES__' | iptables-restore -w -n || exit 3\n"
                f"*filter\n{self._rule('@CONTROLLER@')}\nCOMMIT\n__XDC_RULES__\n"
            )
        return {host: script for host in self.hosts()}

    def revert_scripts(self) -> dict[str, str]:
        return {host: delete_rules(self.label) for host in self.hosts()}

    def verify_scripts(self) -> dict[str, str]:
        exchange, rest = (f"{h}:{p}" for h, p in (self.exchange, self.rest))
        return {"controller": f"TCP connect to {exchange} (data exchange): no answer within "
                              f"{self.block_timeout:.2f} s; TCP connect to {rest} (REST): answered"}

    def verify(self, timeout: float) -> Verified:
        def check() -> tuple[bool, str]:
            exchange, rest = self._probe(self.block_timeout)
            return exchange.state == "timeout" and rest.answered, f"{exchange}; {rest}"

        return poll(check, timeout, f"the clients cut off from {self.dc.name}'s data exchange, REST still answering")

    def verify_healed(self, timeout: float) -> Verified:
        def check() -> tuple[bool, str]:
            exchange, rest = self._probe(max(self.block_timeout, 0.5))
            return exchange.answered, f"{exchange}; {rest}"

        return poll(check, timeout, f"the clients reaching {self.dc.name}'s data exchange again")
