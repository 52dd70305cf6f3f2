"""The leaf of the fault library: its errors, the declared topology faults may touch, and polling.

Nothing here imports another ``support.faults`` module; the executors, the guard, the capability probe and
the fault base class (:mod:`support.faults.base`) all build on it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from support.config.settings import DataCenterSettings, FaultsSettings, RestSettings, Settings, SshSettings
from support.units import format_seconds
from support.waits import TRANSIENT, WaitTimeout, wait_until

__all__ = [
    "DataCenterInfo",
    "FaultError",
    "FaultRefused",
    "FaultSettings",
    "FaultUnsupported",
    "SshSettings",
    "Topology",
    "Verified",
    "new_fault_id",
    "now",
    "poll",
]


class FaultError(AssertionError):
    """A fault could not be injected, verified or healed; the message is one line naming what and where."""


class FaultRefused(FaultError):
    """The fault would touch something outside the declared blast radius (or is malformed)."""


class FaultUnsupported(FaultError):
    """A target host lacks a capability the fault needs (the message names it and how to get it)."""


def new_fault_id() -> str:
    """8 hex characters: part of every tag (``<tag>:<id>``) and file name a fault creates."""
    return secrets.token_hex(4)


@dataclass(frozen=True)
class DataCenterInfo:
    """What the fault library knows of one data center from config."""

    name: str
    hosts: tuple[str, ...]
    ssh: SshSettings | None
    crossdc_port: int
    special_message_port: int | None  # None: look it up in the instance's name service (streamtool getnsentry)
    snapshot_dir: str | None
    rest: RestSettings | None = None
    streamtool: str = "streamtool"
    config_files: Mapping[str, str] = field(default_factory=dict)
    exchange_url: str | None = None  # the data exchange the tester's traffic goes to (clients-cut, dark)

    @property
    def primary_host(self) -> str:
        if not self.hosts:
            raise FaultRefused(f"data center {self.name} declares no hosts (datacenters.{self.name}.hosts)")
        return self.hosts[0]

    @classmethod
    def from_settings(cls, dc: DataCenterSettings) -> DataCenterInfo:
        return cls(name=dc.name, hosts=dc.hosts, ssh=dc.ssh, crossdc_port=dc.crossdc.http_port,
                   special_message_port=dc.crossdc.special_message_port, snapshot_dir=dc.crossdc.snapshot_dir,
                   rest=dc.rest, streamtool=dc.crossdc.streamtool, config_files=dc.crossdc.config_files,
                   exchange_url=dc.exchange.url)


#: ``faults.*`` from config (:class:`support.config.settings.FaultsSettings`).
FaultSettings = FaultsSettings


@dataclass(frozen=True)
class Topology:
    """Data centers, their hosts and applications' job names: the declared world faults may touch."""

    datacenters: Mapping[str, DataCenterInfo]
    jobs: Mapping[str, str]  # job name -> application name
    applications: Mapping[str, str]  # application name -> (active) job name
    source: str = "config"
    aliases: Mapping[str, str] = field(default_factory=dict)  # job name -> alias of its CrossDCFailover composite
    composites: Mapping[str, str | None] = field(default_factory=dict)  # job name -> main composite
    #: snapshot sender/receiver pairs of the toolkit (the largest ``numberOfHttpSenderReceiverPairs`` submission
    #: parameter of any application, else its default 1): snapshot receivers listen on crossdc port + 1 + c
    snapshot_pairs: int = 1

    @classmethod
    def from_settings(cls, settings: Settings, source: str = "config") -> Topology:
        """The declared world of ``settings`` (``source`` names the config file in refusals)."""
        dcs = {name: DataCenterInfo.from_settings(dc) for name, dc in settings.datacenters.items()}
        jobs: dict[str, str] = {}
        apps: dict[str, str] = {}
        for app_name, app in settings.applications.items():
            jobs[app.job_name] = app_name
            apps[app_name] = app.job_name
        aliases = {app.job_name: app.crossdc.alias for app in settings.applications.values()}
        composites = {app.job_name: app.main_composite for app in settings.applications.values()}
        pairs = [app.submission_parameters.get("numberOfHttpSenderReceiverPairs", "1")
                 for app in settings.applications.values()]
        snapshot_pairs = max((int(p) for p in pairs if p.strip().isdigit() and int(p) > 0), default=1)
        return cls(dcs, jobs, apps, source, aliases, composites, snapshot_pairs)

    def dc(self, name: str) -> DataCenterInfo:
        if name not in self.datacenters:
            known = ", ".join(self.datacenters) or "none"
            raise FaultRefused(f'refused: data center "{name}" is not declared in {self.source} (declared: {known})')
        return self.datacenters[name]

    def all_hosts(self) -> dict[str, str]:
        """host -> data center, for every declared host."""
        return {host: dc.name for dc in self.datacenters.values() for host in dc.hosts}

    def dc_of_host(self, host: str) -> str:
        hosts = self.all_hosts()
        if host not in hosts:
            known = ", ".join(hosts) or "none"
            raise FaultRefused(f"refused: host {host} is not declared in {self.source} (declared: {known})")
        return hosts[host]


@dataclass(frozen=True)
class Verified:
    """The outcome of a verification: when it was proven (wall, monotonic), how many probes it took, evidence,
    and (``since``) when the effect began, where the verification can tell that better than ``at``."""

    at: tuple[float, float]
    probes: int
    evidence: str
    since: tuple[float, float] | None = None


def now() -> tuple[float, float]:
    return time.time(), time.monotonic()


def poll(check: Callable[[], tuple[bool, str]], timeout: float, what: str, interval: float = 0.02) -> Verified:
    """Call ``check`` (-> ok, evidence) until ok; the instant is taken right after the successful check, and
    ``since`` estimates when the state changed: halfway between the last failing probe and the successful one,
    each taken at its midpoint (when the answer was most likely made).

    Raises FaultError naming ``what`` and the last evidence when ``timeout`` seconds pass."""
    probes = 0
    middles: list[tuple[float, float]] = []  # the last two probes' midpoints (wall, monotonic)

    def probe() -> tuple[bool, str]:
        nonlocal probes
        probes += 1
        before = now()
        try:
            return check()
        finally:
            after = now()
            middles[:] = [*middles[-1:], ((before[0] + after[0]) / 2, (before[1] + after[1]) / 2)]

    try:
        # a fault check may fail to get an answer (no probe result yet, a host busy): its FaultErrors are
        # observations, like network and Streams errors
        _, evidence = wait_until(probe, lambda seen: seen[0], timeout=timeout, interval=interval, what=what,
                                 transient=(*TRANSIENT, FaultError))
    except WaitTimeout as exc:
        last = exc.last[1] if isinstance(exc.last, tuple) else exc.last
        raise FaultError(f"{what}: not reached within {format_seconds(timeout, None)}; last: {last}") from None
    since = None
    if len(middles) == 2:
        (w0, m0), (w1, m1) = middles
        since = ((w0 + w1) / 2, (m0 + m1) / 2)
    return Verified(now(), probes, evidence, since=since)
