"""The per-run and per-scenario state the steps work with (one object each on behave's context)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shlex
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from support.clocks import Clocks, Estimate, estimate_all
from support.clocks import describe as describe_clocks
from support.config import Config
from support.config.settings import ToolkitSettings
from support.data.contract import ORDERS, DataContract
from support.data.generate import ContractGenerator, FileSource
from support.data.ledger import IdTable, Ledger, ReceivedRow, SentRow, Table
from support.data.validate import output_times
from support.dchost import SnapshotStore, StandbyStub, ToolkitFiles, standby_stubs
from support.deployment import (
    AppSpec,
    ensure_active_active,
    ensure_active_passive,
    ensure_returned,
    guarded_restore,
    other_apps,
)
from support.faults.base import Fault
from support.faults.core import FaultError, Topology
from support.faults.executor import ExecutorPool
from support.faults.guard import Allowlist
from support.faults.probe import CapabilityProbe
from support.faults.session import FaultSession
from support.judge import History, Judgement, JudgeSettings, Snapshot, judge_claim, judge_scenario, load_history
from support.judge.facts import scenario_deadline
from support.measure import NOT_JUDGED, Verdict, throughput_baseline
from support.metrics.prometheus import PrometheusClient
from support.metrics.series import Baseline
from support.metrics.session import MetricsSession
from support.orchestration import CleanupStack, Journal
from support.progress import ConsoleProgress
from support.reporting.allure import RESIDUE_PREFIX, attach_text, label_dc_pair
from support.reporting.judged import expectation
from support.stopconditions import StopWatch, checks_from_settings
from support.streams.errors import StreamsError
from support.streams.exchange import DataExchangeClient
from support.streams.rest import StreamsRestClient
from support.toolkit import StandbyWatch, ToolkitMonitor, ToolkitNames
from support.traffic import Traffic
from support.waits import Interrupted, WaitTimeout, add_stop_check, closing, interrupted, shielded, wait_until

log = logging.getLogger(__name__)

#: the application configuration the toolkit reads its settings from (reference §5.2)
APP_CONFIG = "CrossDCFailover"


class StepError(AssertionError):
    """A step cannot do what it says (unknown data center, application, ...): a clear one-line reason."""


class NotJudged(Exception):
    """A check whose evidence was not recorded within its bounds: inconclusive, never passed (behave reports it
    as an error, Allure as broken, JUnit as an error)."""


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:4]


#: ``failover-tester run`` hands its ``--set``/``-D`` overrides to behave in this environment variable (a JSON list
#: of ``KEY=VALUE``), never on behave's command line, where ``ps`` would show a secret given there
OVERRIDES_ENV = "FAILOVER_TESTER_OVERRIDES"


def run_overrides() -> list[str]:
    """The overrides ``failover-tester run`` handed over (none when behave is run directly)."""
    raw = os.environ.get(OVERRIDES_ENV)
    if not raw:
        return []
    values = json.loads(raw)
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{OVERRIDES_ENV}: not a JSON list of KEY=VALUE strings")
    return values


def _slug(text: str) -> str:
    """A folder name for a scenario: at most 60 characters, its start and its end (where outline rows differ)."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if len(slug) > 60:
        slug = f"{slug[:34].rstrip('-')}--{slug[-24:].lstrip('-')}"
    return slug or "scenario"


@dataclass
class RunContext:
    """What lives for the whole run: the config, the run folder and one long-lived client per data center."""

    config: Config
    run_id: str
    run_dir: Path
    rest: dict[str, StreamsRestClient] = field(default_factory=dict)
    exchange: dict[str, DataExchangeClient] = field(default_factory=dict)
    scenarios: int = 0  # scenarios begun in the run folder (across the rounds of --repeat: ledger folders stay unique)
    drill: tuple[int, int] | None = None  # (k, N): this behave process runs round k of ``run --repeat N``
    judge_settings: JudgeSettings = field(init=False)
    _pool: ExecutorPool | None = field(default=None, init=False)
    _probe: CapabilityProbe | None = field(default=None, init=False)
    journal: Journal | None = field(default=None, init=False)  # the running scenario's (for link refusals)
    _clocks: Clocks = field(default_factory=Clocks, init=False)  # the data centers' clock offsets
    _clock_probe: threading.Thread | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.judge_settings = JudgeSettings.of(self.config.settings)

    @classmethod
    def open(cls, config: Config, run_id: str, run_dir: Path) -> RunContext:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "ledgers").mkdir(exist_ok=True)
        ctx = cls(config, run_id, run_dir)
        ctx.scenarios = sum(1 for folder in (run_dir / "ledgers").iterdir() if folder.is_dir())  # earlier rounds
        (run_dir / "config.yaml").write_text(config.to_yaml(redacted=True), encoding="utf-8")  # for a re-judgement
        for dc in config.settings.datacenters:
            ctx.rest[dc] = StreamsRestClient.from_settings(config.settings, dc)
            ctx.exchange[dc] = DataExchangeClient.from_settings(config.settings, dc)
            for client in (ctx.rest[dc], ctx.exchange[dc]):
                client.session.on_link_refused.append(ctx.link_refused)
        return ctx

    def start_clocks(self) -> None:
        """Estimate the clock offsets of the start of the run in the background (:meth:`measure_clocks`); the
        first scenario that needs them (:attr:`clocks`) waits for the estimate."""

        def measure() -> None:
            try:
                self.measure_clocks("start")
            except Exception:  # never in the way of the run: its stamps then go uncorrected, without bounds
                log.exception("could not estimate the data centers' clock offsets at the start of the run")

        self._clock_probe = threading.Thread(target=measure, name="clock-probe", daemon=True)
        self._clock_probe.start()

    @property
    def clocks(self) -> Clocks:
        """The data centers' clock offsets (waits for the start estimate while it is being made)."""
        probe = self._clock_probe
        if probe is not None and probe is not threading.current_thread():
            probe.join()
        return self._clocks

    def measure_clocks(self, when: str, **options: Any) -> dict[str, Estimate | None]:
        """Estimate every data center's clock offset (``when``: "start" or "end" of the run) from the ``Date``
        headers of its REST API and data exchange, and write it to ``run.json`` at once (a run that crashes
        later keeps its start estimate). The start estimate corrects the data centers' stamps for the whole
        run; the end one gives the drift. A data center that does not answer is left out (its stamps are not
        corrected and phases that use them state no bound)."""
        from support.reporting.summary import read_run_meta, write_run_meta

        # the end estimate is aimed by the start one (the same clocks, a drift apart): half a second, not two
        earlier = self.clocks.start if when == "end" else None
        found = estimate_all(self.rest, self.exchange, earlier, **options)
        got = {dc: e for dc, e in found.items() if e is not None}
        previous = Clocks.from_json(read_run_meta(self.run_dir).get("clocks"))
        if when == "start":
            # drills of `run --repeat N` share run.json: the run's start is the first drill's
            self._clocks = Clocks(start=got)
            merged = Clocks(start={**got, **previous.start}, end=previous.end)
        else:
            self._clocks = Clocks(start=self.clocks.start, end=got)
            merged = Clocks(start=previous.start or self._clocks.start, end=got)
        write_run_meta(self.run_dir, {"clocks": merged.to_json()})
        for line in describe_clocks(found).splitlines():
            log.info("clock offset at the %s of the run: %s", when, line)
        return found

    def link_refused(self, url: str, expected: str) -> None:
        """A client refused a link that leaves its data center's origin: journaled in the running scenario."""
        if self.journal is not None:
            self.journal.record("link.refused", url=url, expected=expected)

    def faults_pool(self) -> ExecutorPool:
        """The run's one SSH executor pool (a connection per declared host, opened on first use), shared by the
        capability probe and every scenario's fault session; closed with the run."""
        if self._pool is None:
            settings = self.config.settings
            topology = Topology.from_settings(settings, str(self.config.source))
            self._pool = ExecutorPool(topology, Allowlist(topology), retries=settings.faults.ssh_retries,
                                      connect_timeout=settings.faults.ssh_timeout, redact=self.config.redact)
        return self._pool

    def capabilities(self) -> CapabilityProbe:
        """What the declared hosts can do, probed once per run over the shared pool."""
        if self._probe is None:
            pool = self.faults_pool()
            self._probe = CapabilityProbe(self.config, pool.topology, pool, self.rest, self.config.settings.faults)
        return self._probe

    def close(self) -> None:
        for rest in self.rest.values():
            rest.close()
        for exchange in self.exchange.values():
            exchange.close()
        if self._pool is not None:
            self._pool.close()


class World:
    """One scenario: its journal, cleanup stack, traffic, toolkit monitor, fault and verdicts."""

    def __init__(self, run: RunContext, feature: str, scenario: str, tags: list[str]) -> None:
        run.scenarios += 1
        self.run = run
        self.config = run.config
        self.settings = run.config.settings
        self.feature = feature
        self.name = scenario
        self.tags = tags
        self.started = time.time()
        self.sid = f"{run.scenarios:02d}-{_slug(scenario)}"
        self.journal = Journal(run.run_dir / "journal.jsonl", scenario, self.sid, redact=self.config.redact)
        run.journal = self.journal
        self.cleanup = CleanupStack(self.journal)
        self.ledger_dir = run.run_dir / "ledgers" / self.sid
        self.ledger_dir.mkdir(parents=True, exist_ok=True)
        self.app: AppSpec | None = None
        self.active: str | None = None
        self.standby: str | None = None
        self.traffic: Traffic | None = None
        self.monitor: ToolkitMonitor | None = None
        self.fault: Fault | None = None
        dry_run = self.settings.faults.dry_run
        self.faults = FaultSession(self.config, self.journal, self.cleanup, run.rest, dry_run=dry_run,
                                   pool=None if dry_run else run.faults_pool(),
                                   probe=None if dry_run else run.capabilities())
        self.step = ""  # the step running now (set by the before_step hook)
        self._claims = 0
        self.verdict_error: str | None = None  # the sentence of the verdict that failed a step, if one did
        self.setup_error: str | None = None  # why the scenario failed before its first step, if it did
        self.mode = "active/passive"
        self.roles: tuple[str, str] | None = None  # (active, standby) as the Given step laid them out
        self.toolkit_settings: dict[str, str] = {}  # toolkit settings a scenario writes before its deployment
        self._standby_watches: dict[str, StandbyWatch] = {}
        self.ids: IdTable | None = None
        self.metrics: MetricsSession | None = None
        self.baseline: Baseline | None = None
        self.timeout = self.settings.run.scenario_timeout
        self.progress = ConsoleProgress()
        self.interrupted: str | None = None  # the signal that had interrupted the run when the scenario closed
        drill: dict[str, Any] = {"repeat": run.drill[0], "repeats": run.drill[1]} if run.drill is not None else {}
        self.journal.record("scenario.started", feature=feature, tags=tags, **drill)
        self._clocks_noted = False
        self._clocks_lock = threading.Lock()  # the standby watch may date its first line while a step does
        self.aborted: str | None = None  # "aborted: <condition>" once a stop condition breached
        self.stop_watch: StopWatch | None = None
        self._remove_stop_check: Callable[[], None] | None = None
        if self.settings.run.stop_conditions and not dry_run:
            self._watch_stop_conditions()

    def clocks(self) -> Clocks:
        """The run's clock offsets, journaled (``clock.offsets``) the first time this scenario corrects a data
        center's stamps by them: the judge reads them from there (support/clocks.py)."""
        clocks = self.run.clocks
        with self._clocks_lock:
            if not self._clocks_noted and clocks.start:
                self._clocks_noted = True
                self.journal.record("clock.offsets", offsets={dc: e.to_json() for dc, e in clocks.start.items()})
        return clocks

    # -- stop conditions ----------------------------------------------------------------------------
    def _watch_stop_conditions(self) -> None:
        """Check ``run.stop_conditions`` while a fault is in place (a thread started with the first fault). On a
        breach the faults are healed at once, from that thread, and every wait of the steps' thread (this one)
        ends with ``aborted: <condition>``; nothing is raised in the steps' thread from elsewhere."""
        prometheus = self.settings.metrics.prometheus
        checks = checks_from_settings(self.settings, self.run.rest,
                                      lambda: PrometheusClient.from_settings(prometheus) if prometheus else None)
        faults = self.faults
        self.stop_watch = StopWatch(checks, self.journal, self._abort, lambda: bool(faults.in_place()))
        faults.listeners.append(self.stop_watch.wake)
        steps = threading.current_thread()
        self._remove_stop_check = add_stop_check(
            lambda: self.aborted if threading.current_thread() is steps else None)

    def _abort(self, reason: str) -> None:
        """A stop condition breached (called from the watch's thread): refuse further faults, heal those in
        place (each once: the heal step and the cleanup stack then find them healed)."""
        self.aborted = reason
        for error in self.faults.abort(reason):
            log.error("%s: %s", reason, error)
            self.journal.record("stop_condition.heal_failed", error=error[:500])

    def _stop_watching(self) -> None:
        """Before the heals and restores of closing: stop checking, and let the steps' thread wait again."""
        if self._remove_stop_check is not None:
            self._remove_stop_check()
            self._remove_stop_check = None
        if self.stop_watch is not None:
            self.stop_watch.stop()

    # -- names from the feature text -------------------------------------------------------------
    def datacenter(self, name: str) -> str:
        if name not in self.run.rest:
            known = ", ".join(sorted(self.run.rest))
            raise StepError(f'unknown data center "{name}" (configured: {known})')
        return name

    def application(self, name: str) -> AppSpec:
        apps = self.settings.applications
        if name not in apps:
            raise StepError(f'unknown application "{name}" (configured: {", ".join(sorted(apps))})')
        return AppSpec.from_settings(apps[name])

    def _others(self, app: AppSpec) -> list[AppSpec]:
        """The configuration's other applications (their jobs share the toolkit's ports with ``app``'s)."""
        return other_apps([AppSpec.from_settings(a) for a in self.settings.applications.values()], app)

    # -- Given --------------------------------------------------------------------------------------
    def set_toolkit(self, **settings: str) -> None:
        """Settings of the Cross-DC toolkit for this scenario's deployment (before it), written where a team
        writes them: into the toolkit's config files on each data center's first host (over SSH), or into the
        instances' application configuration ``CrossDCFailover`` (REST), per ``applications.<app>.crossdc
        .settings_via``. Undone by the cleanup. The toolkit reads them once at start: the deployment that follows
        replaces the running jobs and stubs."""
        if self.app is not None:
            raise StepError("the toolkit's settings must come before the step that deploys the application")
        self.toolkit_settings.update(settings)
        for name, app in self.settings.applications.items():
            for dc in self.settings.datacenters:
                self._write_toolkit(name, app.crossdc, dc, settings)
        self.journal.record("toolkit.settings", parameters=dict(settings))

    def _write_toolkit(self, app_name: str, toolkit: ToolkitSettings, dc: str, settings: dict[str, str]) -> None:
        if toolkit.settings_via == "app-config":
            main = self.settings.applications[app_name].main_composite
            if not main:
                raise StepError(f"applications.{app_name}.main_composite is needed to write the toolkit's "
                                "settings into the application configuration CrossDCFailover")
            client = self.run.rest[dc]
            before = client.app_config(APP_CONFIG)
            keys = {f"{main}_{key}": value for key, value in settings.items()}
            client.put_app_config(APP_CONFIG, {**((before or {}).get("properties") or {}), **keys},
                                  "Cross-DC failover toolkit settings")
            undo = (lambda: client.delete_app_config(APP_CONFIG)) if before is None else (
                lambda: client.put_app_config(APP_CONFIG, before.get("properties") or {},
                                              str(before.get("description") or "")))
            self.cleanup.push(f"restore the application configuration {APP_CONFIG} in {dc}", undo)
            self.journal.record("toolkit.settings_written", dc=dc, where=f"application configuration {APP_CONFIG}",
                                keys=sorted(keys))
            return
        files = self._toolkit_files(dc)
        if not files.paths():
            raise StepError(f"datacenters.{dc}.crossdc.config_files names no toolkit config file to write "
                            f"{', '.join(settings)} into")
        for role, path in files.paths().items():
            self.cleanup.push(f"restore the toolkit's {role} config file in {dc}", files.set(role, settings))
            self.journal.record("toolkit.settings_written", dc=dc, where=path, keys=sorted(settings))

    def _toolkit_files(self, dc: str) -> ToolkitFiles:
        info = self.run.faults_pool().topology.dc(dc)
        return ToolkitFiles(info, self.run.faults_pool().get(info.primary_host))

    def _stub(self, app: AppSpec, dc: str) -> StandbyStub:
        """The standalone passive stub of ``app`` in ``dc`` (on its first host)."""
        return standby_stubs(self.run.faults_pool(), self.settings.faults.directory, self.journal)(app, dc)

    def deploy_active_passive(self, app_name: str, active: str, standby: str) -> None:
        app = self.application(app_name)
        self.app, self.active, self.standby = app, self.datacenter(active), self.datacenter(standby)
        self.roles = (active, standby)
        label_dc_pair(active, standby)
        rest = self.run.rest
        what = f"restore {app.name}: active in {active}, standby in {standby}"
        others = self._others(app)
        # interrupted, the restore starts afresh (stub first): a stub that missed heartbeats during the fault
        # could otherwise still launch the application in the standby after the restore (and the run) ended
        self.cleanup.push(what, guarded_restore(
            what, lambda: ensure_active_passive(rest, self._stub, app, active, standby, self.journal, timeout=120,
                                                others=others, fresh=interrupted() is not None),
            rest, self.journal))
        ensure_active_passive(rest, self._stub, app, active, standby, self.journal, timeout=min(self.timeout, 120),
                              progress=self.progress, fresh=True, others=others)
        self._layout()
        self._watch(app, active, standby)
        self._watch_standby(app, standby)

    def deploy_active_active(self, app_name: str, first: str, second: str) -> None:
        """Run the application in both data centers in crossDCOperationMode 1 (each processing its own keys and
        replicating its state to the other)."""
        app = self.application(app_name)
        self.app, self.active, self.standby = app, self.datacenter(first), self.datacenter(second)
        self.roles = (first, second)
        self.mode = "active/active"
        label_dc_pair(first, second)
        rest = self.run.rest
        what = f"restore {app.name}: active/active in {first} and {second}"
        stubs = self._stub if app.standby is not None else None
        others = self._others(app)
        self.cleanup.push(what, guarded_restore(
            what, lambda: ensure_active_active(rest, stubs, app, (first, second), self.journal, timeout=120,
                                               others=others, fresh=interrupted() is not None), rest, self.journal))
        ensure_active_active(rest, stubs, app, (first, second), self.journal, timeout=min(self.timeout, 120),
                             progress=self.progress, fresh=True, others=others)
        self._layout()
        self._watch(app, first, second)

    def _layout(self) -> None:
        """Journal where the application runs now (the judge reads the failover pair from it), and the toolkit's
        settings in force where they can be read back."""
        self.journal.record("layout", mode=self.mode, active=self.active, standby=self.standby)
        self._settings_in_force()

    #: the toolkit's keys that shape detection and replication (journaled as read back, never assumed)
    TIMING_KEYS = ("heartbeatExchangeInterval", "consecutiveHeartbeatMissesAllowed", "dataSnapshotExchangeInterval",
                   "crossDCInitDelay", "crossDCOperationMode", "retainOlderDataSnapshotsAtStartup")

    def _settings_in_force(self) -> None:
        """Read the toolkit's config files back from each data center (the toolkit reads them at start) and journal
        the timing keys they set; a key a file does not set is the application configuration's or the composite's
        default, which the journal says instead of guessing a value."""
        pool = self.run.faults_pool()
        for dc in self.settings.datacenters:
            info = pool.topology.dc(dc)
            if not info.config_files or info.ssh is None:
                continue
            files = ToolkitFiles(info, pool.get(info.primary_host))
            read: dict[str, dict[str, str]] = {}
            for role, path in files.paths().items():
                try:
                    values = files.values(role)
                except FaultError as exc:  # journaled as unreadable, the run goes on
                    read[role] = {"error": str(exc)[:200]}
                    continue
                read[role] = {"file": path, **{k: values.get(k, "(not in the file)") for k in self.TIMING_KEYS}}
            self.journal.record("toolkit.settings_in_force", dc=dc, files=read)

    def _watch(self, app: AppSpec, first: str, second: str) -> None:
        """Start the toolkit monitor and the metrics sampler; wait until the toolkit in every data center that
        runs the application sees its remote UP (a standalone stub is invisible to REST: in active/passive the
        active's view of it is the evidence)."""
        rest = self.run.rest
        self.monitor = ToolkitMonitor(
            rest, app.job_name, self.journal, interval=0.1, max_duration=self.timeout,
            clock_tolerance=self.run.judge_settings.clock_tolerance,
            clocks=self.clocks(),
            outputs=lambda: self.traffic.first_outputs() if self.traffic else {},
            toolkit=self.settings.applications[app.name].crossdc, main_composite=app.main_composite,
        )
        self.cleanup.push("stop the toolkit monitor", self.monitor.stop)
        self.monitor.start()
        spec = self.settings.applications[app.name]
        operators = [spec.source.operator, spec.sink.operator]
        self.metrics = MetricsSession.from_settings(self.settings, rest, app.job_name, [o for o in operators if o],
                                                  self.timeout, main_composite=app.main_composite)
        self.cleanup.push("stop the metrics sampler", self.metrics.stop)
        self.metrics.start()
        sides = (first, second) if self.mode == "active/active" else (first,)
        monitor = self.monitor
        wait_until(lambda: tuple(monitor.remote_up(dc) for dc in sides), lambda seen: all(seen), timeout=60,
                   interval=0.2, progress=self.progress,
                   what=f"the toolkit in {' and '.join(sides)} to see {'each other' if len(sides) == 2 else second} UP")

    @property
    def contract(self) -> DataContract:
        """The deployed application's contract (the orders contract before one is deployed)."""
        return self.settings.applications[self.app.name].data if self.app is not None else ORDERS

    def start_traffic(self, rate: float, noun: str | None = None) -> None:
        if self.app is None:
            raise StepError("no application deployed yet: start with the application layout step")
        contract = self.contract
        if noun is not None and noun != contract.noun:
            raise StepError(f"{self.app.name}'s input is {contract.noun}, not {noun}: "
                            f"write 'Given {contract.noun} flow at N tuples per second'")
        traffic = self.settings.traffic
        source: Any
        input_file = contract.file or traffic.input_file
        if input_file:
            source = FileSource(Path(input_file), self.run.run_id, contract)
        else:
            source = ContractGenerator(contract, traffic.seed, f"{self.run.run_id}-{self.run.scenarios:02d}")
        self.ids = IdTable(self.ledger_dir / "ids.txt")
        contract.save(self.ledger_dir)
        sent = Ledger(self.ledger_dir / "sent.csv", SentRow, self.ids, columns=contract.sent_columns())
        received = Ledger(self.ledger_dir / "received.csv", ReceivedRow, self.ids,
                          columns=contract.received_columns())
        preferred = [dc for dc in (self.active, self.standby) if dc]
        self.traffic = Traffic(
            self.run.exchange, self.app.job_name, self.settings.applications[self.app.name],
            source, sent, received, self.journal,
            rate=rate,
            batch_interval=traffic.batch_interval,
            consumer_interval=traffic.consumer_interval,
            max_duration=self.timeout,
            policy="spread" if self.mode == "active/active" else traffic.policy,
            preferred=preferred,
            sink_overlap=traffic.sink_overlap,
            clock_tolerance=self.run.judge_settings.clock_tolerance,
            contract=contract,
            clocks=self.clocks(),
        )
        self.cleanup.push("stop traffic", self.traffic.stop)
        self.traffic.start()

    def wait_steady(self, seconds: float) -> None:
        if self.traffic is None:
            raise StepError(f"no traffic is flowing: add 'Given {self.contract.noun} flow at N tuples per second' "
                            "first")
        self.traffic.wait_steady(seconds, timeout=seconds + 60, progress=self.progress)
        end = time.time()
        start = end - seconds
        self.baseline = throughput_baseline(self.traffic.received.table(), start, end,
                                            self.run.judge_settings.throughput_window)
        others = self.metrics.capture_baselines(start, end) if self.metrics else {}
        self.journal.record("steady", seconds=seconds, start=start,
                            baseline_tps=None if self.baseline is None else round(self.baseline.mean, 3),
                            baselines=len(others),
                            metric_baselines={k: v.to_json() for k, v in sorted(others.items())})

    # -- When ---------------------------------------------------------------------------------------
    def cancel_job(self, app_name: str, dc: str) -> None:
        self.application(app_name)
        self.inject_fault("job-cancel", dc=self.datacenter(dc), app=app_name)

    def inject_fault(self, kind: str, **params: Any) -> Fault:
        """Inject a fault through the scenario's FaultSession (heal registered first, effect proven)."""
        self.fault = self.faults.inject(kind, **params)
        return self.fault

    def heal_fault(self) -> None:
        """Heal the latest fault still in effect and prove the return to normal."""
        self.faults.heal_last()

    def comes_back(self, name: str) -> None:
        """``dc`` returns to service: the faults on it are healed and it rejoins as the standby of the data
        center that now runs the application, or, when none does (both were down), in the role the scenario
        gave it at the start, with the toolkit's dual-outage recovery (snapshots returned to their origin)."""
        dc = self.datacenter(name)
        app = self._deployed()
        healed = self.faults.heal_touching(dc)
        rest = self.run.rest
        running = [d for d in rest if d != dc and _runs(rest[d], app)]
        dual = not running
        role = "active" if dual and self.roles is not None and dc == self.roles[0] else "standby"
        self.journal.record("datacenter.back", dc=dc, role=role, healed=[f.id for f in healed],
                            active=running[0] if running else None)
        since = time.time()
        if dual:  # the toolkit's dual-outage recovery is configuration: the stub returns the snapshots it kept to
            # their origin, the application there keeps them at startup and waits for them
            key, file_role = (("retainOlderDataSnapshotsAtStartup", "application") if role == "active"
                              else ("sendDataSnapshotsToOriginDCAtStartup", "standby"))
            files = self._toolkit_files(dc)
            if file_role not in files.paths():
                raise StepError(f"datacenters.{dc}.crossdc.config_files.{file_role} is needed to set {key} for the "
                                "dual-outage recovery")
            self.cleanup.push(f"restore the toolkit's {file_role} config file in {dc}",
                              files.set(file_role, {key: "true"}))
            self.journal.record("toolkit.settings_written", dc=dc, where=files.paths()[file_role], keys=[key])
        ensure_returned(rest, self._stub, app, dc, role, self.journal, timeout=min(self.timeout, 120),
                        progress=self.progress)
        if role == "standby":
            self._watch_standby(app, dc)
        if role == "active":  # after a dual outage the data center that resumes is the old and the new active
            self.active = self.standby = dc
            self._layout()
            return
        if not running:
            return
        active = running[0]
        self.active, self.standby = active, dc
        self._layout()
        label_dc_pair(active, dc)
        monitor = self.monitor
        assert monitor is not None
        store = self._snapshots(dc)
        wait_until(lambda: (monitor.remote_up(active), store.newest()),
                   lambda seen: seen[0] is True and (seen[1] or 0) >= since, timeout=60, interval=0.2,
                   what=f"{active} to see {dc} UP and {dc} to hold a copy of its state", progress=self.progress)

    def _watch_standby(self, app: AppSpec, dc: str) -> None:
        """Read the standby stub's output in ``dc`` for its remote status lines (once per data center: every stub of
        the application there appends to the same log)."""
        if dc in self._standby_watches:
            return
        stub = self._stub(app, dc)
        log_file, executor = shlex.quote(stub.log_file), stub.executor

        def read(offset: int) -> str:
            return executor.run(f"tail -c +{offset + 1} {log_file} 2>/dev/null", timeout=10).stdout

        def size() -> int:
            text = executor.run(f"stat -c %s {log_file} 2>/dev/null || echo 0", timeout=10).stdout.strip()
            return int(text) if text.isdigit() else 0

        watch = StandbyWatch(dc, read, size, ToolkitNames.of(self.settings.applications[app.name].crossdc),
                             self.journal, max_duration=self.timeout, clock_offset=lambda: self.clocks().offset(dc))
        self._standby_watches[dc] = watch
        self.cleanup.push(f"stop reading the standby's output in {dc}", watch.stop)
        watch.start_at_end()

    def _snapshots(self, dc: str) -> SnapshotStore:
        """The toolkit's stored snapshots in ``dc`` (files in its snapshot directory, over SSH): the only evidence
        of replication to a standalone stub, which REST does not see."""
        info = self.run.faults_pool().topology.dc(dc)
        if not info.snapshot_dir:
            raise StepError(f"datacenters.{dc}.crossdc.snapshot_dir is needed to see {dc} hold a copy of the state")
        return SnapshotStore(info.snapshot_dir, self.run.faults_pool().get(info.primary_host))

    def fail_back(self, name: str) -> None:
        """A planned failback: once ``dc`` (the standby) holds a fresh copy of the active's state, the active's
        job is canceled, so the toolkit in ``dc`` takes over with that state."""
        dc = self.datacenter(name)
        app = self._deployed()
        if self.standby != dc or self.active is None:
            raise StepError(f'{dc} is not the standby ("{dc}" comes back first)')
        store = self._snapshots(dc)
        since = time.time()
        wait_until(store.newest, lambda t: (t or 0) >= since, timeout=60, interval=0.1,
                   what=f"a fresh copy of {self.active}'s state in {dc}", progress=self.progress)
        self.inject_fault("job-cancel", dc=self.active, app=app.name)

    def _deployed(self) -> AppSpec:
        if self.app is None:
            raise StepError("no application deployed yet: start with the application layout step")
        return self.app

    # -- Then: claims, judged over the history recorded so far ---------------------------------------
    def claim(self, check: str, **params: Any) -> Verdict:
        """Record what a ``Then`` step claims, then judge it over the history recorded so far, waiting (within
        the check's own bounds) until its evidence is recorded. Never acts on the system: the traffic keeps
        flowing and faults stay as they are. Raises AssertionError with the verdict's sentence when it failed,
        :class:`NotJudged` when its window could not be recorded."""
        self._claims += 1
        event = self.journal.record("claim", cid=f"c{self._claims}", check=check, params=params, step=self.step)
        deadline = scenario_deadline(self.history())

        def judge() -> tuple[Judgement, Snapshot]:
            history = self.history()
            return judge_claim(history, event), history.snapshot()

        def settled(seen: tuple[Judgement, Snapshot]) -> bool:
            judgement, snapshot = seen
            return judgement.final or snapshot.t >= (judgement.deadline or snapshot.t)

        try:
            judgement, snapshot = wait_until(judge, settled, timeout=max(0.0, deadline - time.time()) + 1.0,
                                             interval=0.2, what=f"the evidence of '{self.step or check}'",
                                             progress=self.progress)
        except WaitTimeout:  # the scenario's time ran out before the check's own deadline
            judgement, snapshot = judge()
        verdict = judgement.verdict
        if not judgement.final and verdict.status != NOT_JUDGED:
            verdict = Verdict.not_judged(verdict.name, f"the scenario's time ran out first ({verdict.summary})",
                                         verdict.evidence)
        self.journal.record("verdict", cid=f"c{self._claims}", name=verdict.name, status=verdict.status,
                            passed=verdict.passed, summary=verdict.summary, snapshot=snapshot.to_json())
        expected = expectation(verdict.to_json())
        if expected is not None:  # an expected finding is shown with what was measured, found or not
            self.progress.note(f"expected finding: {expected}")
            attach_text("expected finding", f"{expected}\n{verdict.summary}")
        if verdict.status == NOT_JUDGED:
            self.verdict_error = verdict.summary
            raise NotJudged(verdict.summary)
        if not verdict.passed:
            self.verdict_error = verdict.summary
            raise AssertionError(verdict.summary)
        return verdict

    def history(self) -> History:
        """What this scenario recorded so far (the instant first, then the journal and the ledgers)."""
        now = time.time()
        events = tuple(self.journal.events())
        sent = self.traffic.sent.table() if self.traffic else Table.from_rows([], SentRow)
        received = self.traffic.received.table() if self.traffic else Table.from_rows([], ReceivedRow)
        return History(self.sid, self.name, events, sent, received, self.run.judge_settings, self.ledger_dir, now,
                       self.traffic.contract if self.traffic else self.contract)

    # -- end ----------------------------------------------------------------------------------------
    def close(self) -> list[str]:
        """End the scenario; returns what failed while closing (the scenario's ``cleanup_errors``).

        First the producer stops and the outputs drain (bounded; a second, quick Ctrl-C ends it). Then, in a
        ``finally`` and :func:`shielded` from interrupts, every heal and restore of the cleanup stack runs:
        nothing before them (a full disk failing the journal, an error in the drain) can skip them. Then each
        later step (the toolkit monitor, the metrics export, the ledgers, the audit of residue, the fault
        session) runs isolated: one that fails is journaled and reported, and the others still run."""
        errors: list[str] = []
        self.interrupted = interrupted()
        try:
            self._closing_step("stop watching the stop conditions", self._stop_watching, errors)
            with closing():
                self._closing_step("journal the end of the steps", lambda: self.journal.record("scenario.steps_done"),
                                   errors)
                if self.traffic is not None:
                    traffic = self.traffic
                    self._closing_step("drain the outputs", lambda: traffic.drain(
                        timeout=self.run.judge_settings.drain_timeout, quiet=self.run.judge_settings.drain_quiet),
                        errors, shield=False)
        finally:
            with shielded():
                errors[:0] = self.cleanup.run_all()  # heals and restores first, in the report too
        for what, action in (("stop the toolkit monitor", self.monitor.stop if self.monitor else None),
                             ("export the metrics", self._close_metrics),
                             ("close the ledgers", self._close_ledgers),
                             ("audit the hosts for residue", lambda: errors.extend(
                                 RESIDUE_PREFIX + line for line in self.faults.audit())),
                             ("close the fault session", self.faults.close)):
            if action is not None:
                self._closing_step(what, action, errors)
        return errors

    def _closing_step(self, what: str, action: Callable[[], object], errors: list[str], shield: bool = True) -> None:
        """Run one step of closing the scenario; a failure is logged, journaled (when the journal can still be
        written) and added to ``errors``, and the caller goes on. A second, quick Ctrl-C ending a wait here
        (:class:`Interrupted`) is not a failure: it asked for exactly that."""
        try:
            with shielded() if shield else contextlib.nullcontext():
                action()
        except Interrupted as exc:
            log.warning("%s: %s", what, exc)
        except Exception as exc:  # the other steps still run
            log.exception("%s failed", what)
            errors.append(f"{what}: {exc}")
            with contextlib.suppress(Exception):
                self.journal.record("cleanup.failed", what=what, error=str(exc)[:500])

    def _close_metrics(self) -> None:
        metrics = self.metrics
        if metrics is None:
            return
        metrics.stop()
        if self.traffic is not None:
            self._add_throughput_series(metrics)
        metrics.export(self.ledger_dir)
        # `unreachable`: endpoints of a source (e.g. "jmx.dc1": "JMX unreachable: ...") — never a data center state
        self.journal.record("metrics.closed", series=len(metrics.store.names()), errors=dict(metrics.sampler.errors),
                            unreachable=metrics.problems)

    def _close_ledgers(self) -> None:
        if self.traffic is not None:
            self.traffic.stop()
            self.traffic.sent.close()
            self.traffic.received.close()
        if self.ids is not None:
            self.ids.close()

    def _add_throughput_series(self, metrics: MetricsSession) -> None:
        """Output tuples per second per data center (by the DC's emission time), the most honest throughput."""
        assert self.traffic is not None
        table = self.traffic.received.table()
        width = self.run.judge_settings.throughput_window
        if not len(table) or width <= 0:
            return
        times = output_times(table)
        t0 = float(times.min())
        for code, dc in enumerate(table.categories.get("dc", [])):
            mine = times[table["dc"] == code]
            if not len(mine):
                continue
            counts = np.bincount(((mine - t0) // width).astype(np.int64))
            for index, count in enumerate(counts.tolist()):
                metrics.store.add(f"throughput.{dc}", t0 + index * width, count / width)

    def finish(self, status: str, error: str | None, cleanup_errors: list[str]) -> dict[str, Any]:
        """Record how the scenario ended, then judge its history as it is on disk: the scenario's record."""
        self.journal.record("scenario.finished", status=status, error=error, cleanup_errors=cleanup_errors)
        return judge_scenario(load_history(self.run.run_dir, self.sid, self.run.judge_settings))


def _runs(client: StreamsRestClient, app: AppSpec) -> bool:
    """The application runs in the instance behind ``client`` (False when the instance does not answer)."""
    try:
        job = client.find_app_job(app.job_name, app.main_composite)
    except StreamsError:
        return False
    return job is not None and job.get("status") == "running"
