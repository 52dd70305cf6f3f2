"""The faults of one scenario (``world.faults``): inject, time, heal, audit.

``inject(kind, **params)`` is the whole safe sequence::

    refuse anything outside the declared blast radius          (FaultRefused, one line)
    check the target hosts can do it                           (FaultUnsupported, names the capability)
    prepare (read-only: PE pid, baseline probes, cgroups)
    push the heal on the scenario's cleanup stack              <- before the fault exists
    send: arm the dead-man timer on each target + apply        journal fault.injected (the instant it was sent)
    verify                                                     journal fault.effective (apply_s)
    [duration: a timer heals it when the duration is over]

``fault.effective`` carries the instant the effect was proven, or the instant the command returned when the
first verification already passed (the effect cannot have started later than that). Healing journals
``fault.heal_started`` and ``fault.healed`` (revert_s: heal sent -> return to normal proven).

Kinds and their parameters (``between`` is a pair of DC names):

===================  =========================================================
partition            between, one_way=False
isolate              dc
latency              between, delay (s), jitter=0 (s)
loss                 between, probability (0-1]
bandwidth            between, rate (bit/s or "1mbit")
pe-kill, pe-hang     dc, operator, app=None
cpu, memory, disk    dc
job-cancel           dc, app | job
instance-stop        dc
orderly-shutdown     dc
heartbeat-cut        between, pairs=None (snapshot pairs; None: from config)
replication-cut      between (source, target), pairs=None
pe-crash-loop        dc, operator, app=None
clients-cut          dc
dark                 dc
snapshots-lost       dc (its snapshot directory: files moved aside, put back on heal)
snapshots-corrupted  dc (its snapshot directory: state bytes damaged in place)
===================  =========================================================
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from support.config import Config
from support.faults.api import CancelJob, InstanceStop, OrderlyShutdown
from support.faults.base import (
    Fault,
    FaultContext,
    FaultError,
    FaultRefused,
    FaultUnsupported,
    Topology,
    now,
)
from support.faults.channel import HeartbeatCut, ReplicationCut
from support.faults.clients import ClientsCut
from support.faults.crashloop import PECrashLoop
from support.faults.dark import Dark
from support.faults.executor import ExecutorPool, run_on_hosts
from support.faults.guard import Allowlist, audit_script
from support.faults.network import Bandwidth, Isolate, Latency, Loss, Partition
from support.faults.probe import CapabilityProbe
from support.faults.process import PEHang, PEKill
from support.faults.resource import CpuExhaustion, DiskExhaustion, MemoryExhaustion
from support.faults.store import SnapshotsCorrupted, SnapshotsLost
from support.orchestration import CleanupStack, Journal
from support.units import format_seconds, parse_rate

__all__ = ["KINDS", "FaultSession", "make_fault"]

log = logging.getLogger(__name__)

#: seconds the dead-man timer of a fault with a duration outlives the duration (the session heals first)
DEADMAN_GRACE = 2.0

KINDS: dict[str, type[Fault]] = {cls.kind: cls for cls in (
    Partition, Isolate, Latency, Loss, Bandwidth, PEKill, PEHang, CpuExhaustion, MemoryExhaustion, DiskExhaustion,
    CancelJob, InstanceStop, OrderlyShutdown, HeartbeatCut, ReplicationCut, PECrashLoop, ClientsCut, Dark,
    SnapshotsLost, SnapshotsCorrupted)}


def make_fault(ctx: FaultContext, kind: str, **params: Any) -> Fault:
    """Build a fault of ``kind`` (validates names against the blast radius; touches nothing)."""
    cls = KINDS.get(kind)
    if cls is None:
        raise FaultRefused(f"refused: unknown fault kind {kind!r} (kinds: {', '.join(KINDS)})")
    if "between" in params:
        between = params["between"]
        if not isinstance(between, list | tuple) or len(between) != 2:
            raise FaultRefused(f"refused: {kind} needs two data centers (between=(a, b)), got {between!r}")
        params["between"] = (str(between[0]), str(between[1]))
    if cls is Bandwidth and "rate" in params:
        params["rate"] = parse_rate(params["rate"])
    try:
        return cls(ctx, **params)
    except TypeError as exc:
        raise FaultRefused(f"refused: bad parameters for {kind}: {exc}") from None


_BASE64_BLOB = re.compile(r"[A-Za-z0-9+/=]{120,}")


def readable(script: str) -> str:
    """A script for people: long base64 blobs (files shipped to the host) shortened."""
    return _BASE64_BLOB.sub(lambda m: f"<{len(m.group(0))} chars of base64>", script)


class FaultSession:
    """Every fault of one scenario (or one CLI call), with its cleanup, timing and audit."""

    def __init__(
        self,
        config: Config,
        journal: Journal,
        cleanup: CleanupStack,
        rest_clients: Mapping[str, Any],
        dry_run: bool = False,
        *,
        pool: ExecutorPool | None = None,
        probe: CapabilityProbe | None = None,
        out: TextIO | None = None,
    ) -> None:
        self.config = config
        self.journal = journal
        self.cleanup = cleanup
        self.dry_run = dry_run
        self.out = out
        self.settings = config.settings.faults
        self.topology = Topology.from_settings(config.settings, str(config.source))
        self.allowlist = Allowlist(self.topology)
        self._own_pool = pool is None
        self.pool = pool or ExecutorPool(self.topology, self.allowlist, retries=self.settings.ssh_retries,
                                         connect_timeout=self.settings.ssh_timeout, dry_run=dry_run,
                                         redact=config.redact)
        self.probe = probe if probe is not None or dry_run else CapabilityProbe(
            config, self.topology, self.pool, rest_clients, self.settings)
        self.ctx = FaultContext(self.topology, self.settings, self.pool, self.allowlist, rest_clients,
                                capabilities=self.probe, dry_run=dry_run)
        self.faults: list[Fault] = []
        self.planned: list[tuple[Fault, list[tuple[str, str, str]]]] = []
        self._healed: set[str] = set()
        self._locks: dict[str, threading.Lock] = {}
        self._timers: list[threading.Thread] = []
        self._stop = threading.Event()
        self._timer_errors: list[str] = []
        self._guard = threading.Lock()  # refusal vs. a fault joining the session (see abort)
        self._refused: str | None = None
        #: called (no arguments, must not raise) when a fault joins the session and when one is healed
        self.listeners: list[Callable[[], None]] = []

    # -- inject -----------------------------------------------------------------------------------
    def make(self, kind: str, **params: Any) -> Fault:
        return make_fault(self.ctx, kind, **params)

    def inject(self, kind: str, *, duration: float | None = None, ttl: float | None = None,
               verify_timeout: float | None = None, **params: Any) -> Fault:
        """Inject a fault of ``kind`` and return it once its effect is proven (see the module docstring)."""
        fault = self.make(kind, **params)
        limit = ttl if ttl is not None else self.settings.ttl
        if duration is not None:
            if duration <= 0:
                raise FaultRefused(f"refused: a fault duration must be positive, got {format_seconds(duration, None)}")
            if duration > limit:
                raise FaultRefused(f"refused: duration {format_seconds(duration, None)} is longer than the fault TTL "
                                   f"{format_seconds(limit, None)} (faults.ttl)")
            fault.duration = duration
            limit = min(limit, duration + DEADMAN_GRACE)
        fault.ttl = limit
        if self.dry_run:
            return self._plan(fault)
        if fault.hosts() and self.probe is not None:
            reason = fault.supports(self.probe)
            if reason:
                raise FaultUnsupported(f"{kind} cannot run here: {reason}")
        timeout = verify_timeout if verify_timeout is not None else self.settings.verify_timeout
        fault.prepare()
        lock = threading.Lock()
        with self._guard:  # an abort either sees this fault (and heals it once its injection ends) or refuses it
            if self._refused is not None:  # e.g. "aborted: <stop condition>"
                raise FaultRefused(self._refused)
            self._locks[fault.id] = lock
            lock.acquire()  # held until the injection ends: a heal from another thread waits for it
            self.cleanup.push(f"heal {fault.kind} {fault.id}", lambda: self.heal(fault))  # before the fault exists
            self.faults.append(fault)
        try:
            self._changed()
            try:
                fault.stage()
            except Exception as exc:
                self.journal.record("fault.failed", kind=fault.kind, id=fault.id, error=str(exc)[:500])
                raise
            sent = now()
            self.journal.record("fault.injected", at=sent, kind=fault.kind, id=fault.id, ttl=round(fault.ttl, 3),
                                duration=duration, **fault.describe())
            try:
                fault.inject()
                returned = now()
                verified = fault.verify(timeout)
            except Exception as exc:
                self.journal.record("fault.failed", kind=fault.kind, id=fault.id, error=str(exc)[:500])
                raise
        finally:
            lock.release()
        effective = returned if verified.probes <= 1 else (verified.since or verified.at)
        apply_s = round(verified.at[1] - sent[1], 4)
        self.journal.record("fault.effective", at=effective, kind=fault.kind, id=fault.id, apply_s=apply_s,
                            verified_at=verified.at[0], evidence=verified.evidence[:500], **fault.describe())
        log.info("fault %s %s effective after %.3f s: %s", fault.kind, fault.id, apply_s, verified.evidence[:200])
        if duration is not None:
            self._schedule_heal(fault, sent[1] + duration)
        return fault

    def _plan(self, fault: Fault) -> Fault:
        commands = [(phase, host, self.config.redact(script)) for phase, host, script in fault.commands()]
        self.planned.append((fault, commands))
        self.journal.record("fault.dry_run", kind=fault.kind, id=fault.id, ttl=fault.ttl,
                            commands=[{"phase": p, "host": h, "script": readable(s)} for p, h, s in commands],
                            **fault.describe())
        if self.out is not None:
            print(format_plan(fault, commands), file=self.out, flush=True)
        return fault

    # -- heal ---------------------------------------------------------------------------------------
    def _schedule_heal(self, fault: Fault, at_mono: float) -> None:
        def run() -> None:
            if self._stop.wait(max(0.0, at_mono - time.monotonic())):
                return
            try:
                self.heal(fault)
            except Exception as exc:  # reported by heal_all / the scenario's cleanup
                self._timer_errors.append(f"heal {fault.kind} {fault.id} at the end of its duration: {exc}")
                log.exception("timed heal of %s failed", fault.id)

        thread = threading.Thread(target=run, name=f"heal-{fault.id}", daemon=True)
        self._timers.append(thread)
        thread.start()

    def heal(self, fault: Fault, verify_timeout: float | None = None) -> None:
        """Heal ``fault`` and prove the return to normal (idempotent)."""
        if self.dry_run:
            return
        lock = self._locks.setdefault(fault.id, threading.Lock())
        with lock:
            if fault.id in self._healed:
                return
            timeout = verify_timeout if verify_timeout is not None else self.settings.verify_timeout
            sent = now()
            self.journal.record("fault.heal_started", at=sent, kind=fault.kind, id=fault.id)
            fault.heal()
            verified = fault.verify_healed(timeout)
            self._healed.add(fault.id)
            self.journal.record("fault.healed", at=verified.at, kind=fault.kind, id=fault.id,
                                revert_s=round(verified.at[1] - sent[1], 4), evidence=verified.evidence[:500])
        self._changed()

    def _changed(self) -> None:
        for listener in list(self.listeners):
            listener()

    def in_place(self) -> list[Fault]:
        """The faults injected (or being injected) and not healed yet."""
        return [fault for fault in self.faults if fault.id not in self._healed]

    def abort(self, reason: str) -> list[str]:
        """Refuse every further fault (``FaultRefused`` naming ``reason``), then heal every fault in place, from
        any thread: a fault still being injected is healed once its injection ends; each fault is healed once
        (the cleanup stack's and the steps' heals then find it healed). One line per failure."""
        with self._guard:
            self._refused = reason
            faults = list(self.faults)
        errors: list[str] = []
        for fault in reversed(faults):
            try:
                self.heal(fault)
            except Exception as exc:  # the cleanup stack heals it again at the end of the scenario
                errors.append(f"heal {fault.kind} {fault.id}: {exc}")
        return errors

    def heal_last(self) -> Fault:
        """Heal the most recent fault still in effect (``When the fault is healed``)."""
        for fault in reversed(self.faults):
            if fault.id not in self._healed:
                self.heal(fault)
                return fault
        if self.dry_run and self.planned:
            return self.planned[-1][0]
        raise FaultError(self._refused or "no fault in effect to heal")

    def heal_touching(self, dc: str) -> list[Fault]:
        """Heal every fault still in effect that involves data center ``dc`` (its own, or a link of it)."""
        healed: list[Fault] = []
        for fault in reversed(self.faults):
            described = fault.describe()
            involved = described.get("dc") == dc or dc in (described.get("between") or [])
            # a fault whose effect is an event that already happened (data lost or damaged) is not undone by
            # the data center's return: its revert runs when the scenario ends
            if involved and fault.id not in self._healed and not fault.one_shot:
                self.heal(fault)
                healed.append(fault)
        return healed

    def heal_all(self) -> list[str]:
        """Heal every fault still in effect; one line per failure."""
        errors = list(self._timer_errors)
        self._timer_errors.clear()
        for fault in reversed(self.faults):
            try:
                self.heal(fault)
            except Exception as exc:
                errors.append(f"heal {fault.kind} {fault.id}: {exc}")
        return errors

    def healed(self, fault: Fault) -> bool:
        return fault.id in self._healed

    # -- audit ----------------------------------------------------------------------------------------
    def audit(self) -> list[str]:
        """What the tool left on the hosts this session touched (empty = clean)."""
        if self.dry_run:
            return []
        hosts = self.pool.opened()
        if not hosts:
            return []
        watch: dict[str, list[int]] = {}
        for fault in self.faults:
            if isinstance(fault, PEHang) and fault.pe is not None:
                watch.setdefault(fault.pe.host, []).append(fault.pe.pid)
            if isinstance(fault, Dark):
                for host, pids in fault.frozen_pids().items():
                    watch.setdefault(host, []).extend(pids)
        scripts = {}
        for host in hosts:
            dc = self.topology.dc(self.topology.dc_of_host(host))
            dirs = [dc.snapshot_dir] if dc.snapshot_dir else []
            scripts[host] = audit_script(self.settings.tag, host, dirs, watch.get(host, []), self.settings.directory)
        residue: list[str] = []
        try:
            results = run_on_hosts(self.pool, scripts, what="residue audit", check=False)
        except FaultError as exc:
            return [f"residue audit could not run: {exc}"]
        for host, result in results.items():
            for line in result.stdout.splitlines():
                if line.startswith("RESIDUE "):
                    residue.append(f"{self.topology.dc_of_host(host)} {host}: {line.removeprefix('RESIDUE ')}")
            if not result.ok:
                residue.append(f"{host}: residue audit failed: {result.why()}")
        return residue

    def close(self) -> None:
        self._stop.set()
        for thread in self._timers:
            thread.join(timeout=5)
        if self._own_pool:
            self.pool.close()


def format_plan(fault: Fault, commands: list[tuple[str, str, str]]) -> str:
    timer = (f"dead-man TTL {format_seconds(fault.ttl, None)}" if fault.reversible and fault.hosts()
             else "no dead-man (nothing to revert)")
    lines = [f"[dry run] {fault.summary()} id {fault.id}, {timer}"
             + (f", healed after {format_seconds(fault.duration, None)}" if fault.duration else "")]
    lines.extend(f"  size: {line}" for line in fault.sizing())
    for phase, host, script in commands:
        lines.append(f"  {phase} on {host}:")
        lines.extend(f"    {line}" for line in readable(script).rstrip().splitlines())
    return "\n".join(lines)

