"""The fault contract, and what every fault is built from.

A fault is one object with a small life::

    prepare()          resolve what it needs (PE pid, egress device, baseline probe); nothing changes yet
    revert_scripts()   per host, the shell that undoes it: the dead-man timer on the target runs it at the TTL
    inject()           send the commands (returns once they were sent and returned)
    verify()           prove the effect, polling with a deadline -> Verified
    heal()             undo it (idempotent: safe to call twice, or after the dead-man already did)
    verify_healed()    prove the return to normal -> Verified
    supports(caps)     None when every target host can run it, else the reason
    commands()         (host, script) pairs it would run, for --dry-run

:class:`support.faults.session.FaultSession` drives this life, journals it and times it (apply latency:
first command sent -> effect verified; revert latency: heal sent -> return to normal verified).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from support.faults.core import (
    DataCenterInfo,
    FaultError,
    FaultRefused,
    FaultSettings,
    FaultUnsupported,
    SshSettings,
    Topology,
    Verified,
    new_fault_id,
    now,
    poll,
)
from support.faults.executor import ExecutorPool, run_on_hosts
from support.faults.guard import Allowlist, arm_script, heal_script
from support.faults.probe import Capabilities

if TYPE_CHECKING:
    from support.streams.rest import StreamsRestClient

TAG_RE = re.compile(r"[a-z][a-z0-9-]{2,20}\Z")

# The errors, topology and polling live in the leaf module support.faults.core; they are re-exported here
# so a fault module needs one import.
__all__ = [
    "DataCenterInfo",
    "Fault",
    "FaultContext",
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


@dataclass
class FaultContext:
    """What a fault reaches the world through."""

    topology: Topology
    settings: FaultSettings
    executors: ExecutorPool
    allowlist: Allowlist
    rest: Mapping[str, StreamsRestClient]
    capabilities: Callable[[str], Capabilities] | None = None
    dry_run: bool = False


class Fault(ABC):
    """One fault instance (see the module docstring for its life)."""

    kind: ClassVar[str]
    #: capabilities every target host needs (names as in support.faults.probe.CAPABILITIES)
    requires: ClassVar[tuple[str, ...]] = ()
    #: True when the fault leaves something on a target that must be reverted (so it gets a dead-man timer)
    reversible: ClassVar[bool] = True
    #: True when the effect is an event that happened (e.g. stored data lost), which a data center coming back
    #: does not undo (``FaultSession.heal_touching`` leaves it; its revert still runs at the end)
    one_shot: ClassVar[bool] = False

    def __init__(self, ctx: FaultContext, fault_id: str | None = None) -> None:
        self.ctx = ctx
        self.id = fault_id or new_fault_id()
        if not TAG_RE.match(ctx.settings.tag):  # the schema's faults.tag rule, again: iptables lines carry it as it is
            raise FaultRefused(f"refused: faults.tag {ctx.settings.tag!r} is not 3 to 21 lowercase letters, digits "
                               "and '-' starting with a letter")
        self.label = f"{ctx.settings.tag}:{self.id}"  # iptables comment (rules are per network namespace)
        self.ttl = ctx.settings.ttl
        self.duration: float | None = None
        self.prepared = False

    def key(self, host: str) -> str:
        """The fault's name on one host: its files and dead-man timer (hosts may share a file system)."""
        return f"{self.id}@{host}"

    def host_label(self, host: str) -> str:
        """``XDC_FAULT`` value of the processes the fault starts on ``host``."""
        return f"{self.label}@{host}"

    def state_file(self, host: str, suffix: str) -> str:
        return f"{self.ctx.settings.directory}/{self.key(host)}.{suffix}"

    # -- description ------------------------------------------------------------------------------
    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-able parameters and targets (for the journal and `faults list`)."""

    def sizing(self) -> list[str]:
        """How much of a resource the fault takes and what bounds it, for a dry run's plan (none by default)."""
        return []

    def summary(self) -> str:
        details = ", ".join(f"{k}={v}" for k, v in self.describe().items())
        return f"{self.kind} ({details})"

    @abstractmethod
    def hosts(self) -> list[str]:
        """Every host the fault runs commands on (empty for pure REST faults)."""

    def supports(self, caps: Callable[[str], Capabilities]) -> str | None:
        """None when every target host has what the fault needs, else the first missing capability and why."""
        for host in self.hosts():
            missing = caps(host).missing(self.requires)
            if missing:
                return f"{self.kind} needs {missing} on {host}"
        return None

    # -- life ---------------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Resolve what the fault needs from the world (read only). Called once before inject."""
        self.prepared = True

    def revert_scripts(self) -> dict[str, str]:
        """host -> shell undoing this fault there (run by the dead-man timer and by heal; idempotent)."""
        return {}

    def stage_scripts(self) -> dict[str, str]:
        """host -> shell that readies the fault without any effect yet (e.g. start the delayer), run after the
        heal is registered and before the apply time starts."""
        return {}

    def stage(self) -> None:
        run_on_hosts(self.ctx.executors, self.stage_scripts(), what=f"stage {self.kind}")

    @abstractmethod
    def inject_scripts(self) -> dict[str, str]:
        """host -> shell that applies the fault there (the dead-man timer is armed in the same command)."""

    def meta(self) -> dict[str, str]:
        """Extra ``key=value`` facts stored in the fault's meta file on each host (shown by `faults list`)."""
        return {"summary": self.summary()}

    def armed_scripts(self) -> dict[str, str]:
        """inject_scripts() with the dead-man timer installed first on every host that has a revert."""
        scripts = dict(self.inject_scripts())
        if not self.reversible:
            return scripts
        tag = self.ctx.settings.tag
        for host, revert in self.revert_scripts().items():
            armed = arm_script(tag, self.key(host), self.kind, self.ttl, revert, self.meta(),
                               self.ctx.settings.directory)
            scripts[host] = armed + scripts.get(host, "")
        return scripts

    def inject(self) -> None:
        """Arm the dead-man timers and apply the fault on every host (one command per host, in parallel)."""
        run_on_hosts(self.ctx.executors, self.armed_scripts(), what=f"inject {self.kind}")

    @abstractmethod
    def verify(self, timeout: float) -> Verified:
        """Prove the effect (poll until it holds or ``timeout`` passes; raise FaultError naming the last look)."""

    def heal_scripts(self) -> dict[str, str]:
        return {host: heal_script(self.ctx.settings.tag, self.key(host), revert, self.ctx.settings.directory)
                for host, revert in self.revert_scripts().items()}

    def heal(self) -> None:
        """Undo the fault on every host (idempotent): stop the dead-man timer, revert, remove the fault's files."""
        run_on_hosts(self.ctx.executors, self.heal_scripts(), what=f"heal {self.kind}")

    @abstractmethod
    def verify_healed(self, timeout: float) -> Verified:
        """Prove the return to normal."""

    def verify_scripts(self) -> dict[str, str]:
        """host -> read-only shell the verification runs (shown by --dry-run)."""
        return {}

    def commands(self) -> list[tuple[str, str, str]]:
        """(phase, host, script) for everything the fault would run, for --dry-run."""
        planned: list[tuple[str, str, str]] = []
        for host, script in self.stage_scripts().items():
            planned.append(("stage", host, script))
        for host, script in self.armed_scripts().items():
            planned.append(("inject", host, script))
        for host, script in self.verify_scripts().items():
            planned.append(("verify", host, script))
        for host, script in self.heal_scripts().items():
            planned.append(("heal", host, script))
        return planned
