"""The per-run and per-scenario state the steps work with (one object each on behave's context)."""

from __future__ import annotations

import contextlib
import logging
import re
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from support.config import Config
from support.data.generate import FileOrderSource, OrderGenerator
from support.data.ledger import IdTable, Ledger, ReceivedRow, SentRow, Table
from support.data.validate import (
    DeliveryReport,
    OrderReport,
    SplitBrainReport,
    StateReport,
    check_delivery,
    check_order,
    check_split_brain,
    check_state,
    output_times,
)
from support.deployment import (
    AppSpec,
    ensure_active_active,
    ensure_active_passive,
    ensure_returned,
    guarded_restore,
)
from support.faults.base import Fault
from support.faults.session import FaultSession
from support.measure import RecoveryTimeline, Verdict, failover_events, recovery_timeline, throughput_baseline
from support.metrics.series import Baseline
from support.metrics.session import MetricsSession
from support.orchestration import CleanupStack, Journal
from support.progress import ConsoleProgress
from support.reporting.allure import RESIDUE_PREFIX, attach_scenario, label_dc_pair
from support.reporting.timeline import build_timeline
from support.streams.errors import StreamsError
from support.streams.exchange import DataExchangeClient
from support.streams.rest import StreamsRestClient
from support.toolkit import ToolkitMonitor
from support.traffic import Traffic
from support.waits import wait_until

log = logging.getLogger(__name__)


class StepError(AssertionError):
    """A step cannot do what it says (unknown data center, application, ...): a clear one-line reason."""


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:4]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "scenario"


@dataclass
class RunContext:
    """What lives for the whole run: the config, the run folder and one long-lived client per data center."""

    config: Config
    run_id: str
    run_dir: Path
    rest: dict[str, StreamsRestClient] = field(default_factory=dict)
    exchange: dict[str, DataExchangeClient] = field(default_factory=dict)
    scenarios: int = 0

    @classmethod
    def open(cls, config: Config, run_id: str, run_dir: Path) -> RunContext:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "ledgers").mkdir(exist_ok=True)
        ctx = cls(config, run_id, run_dir)
        for dc in config.datacenters():
            ctx.rest[dc] = StreamsRestClient.from_config(config, dc)
            ctx.exchange[dc] = DataExchangeClient.from_config(config, dc)
        return ctx

    def close(self) -> None:
        for rest in self.rest.values():
            rest.close()
        for exchange in self.exchange.values():
            exchange.close()


class World:
    """One scenario: its journal, cleanup stack, traffic, toolkit monitor, fault and verdicts."""

    def __init__(self, run: RunContext, feature: str, scenario: str, tags: list[str]) -> None:
        run.scenarios += 1
        self.run = run
        self.config = run.config
        self.feature = feature
        self.name = scenario
        self.tags = tags
        self.started = time.time()
        self.journal = Journal(run.run_dir / "journal.jsonl", scenario)
        self.cleanup = CleanupStack(self.journal)
        self.ledger_dir = run.run_dir / "ledgers" / f"{run.scenarios:02d}-{_slug(scenario)}"
        self.app: AppSpec | None = None
        self.active: str | None = None
        self.standby: str | None = None
        self.traffic: Traffic | None = None
        self.monitor: ToolkitMonitor | None = None
        self.fault: Fault | None = None
        self.faults = FaultSession(self.config, self.journal, self.cleanup, run.rest,
                                   dry_run=bool(self.config.get("faults.dry_run", False)))
        self.verdicts: list[Verdict] = []
        self._delivery: DeliveryReport | None = None
        self._order: OrderReport | None = None
        self._split: SplitBrainReport | None = None
        self._state: StateReport | None = None
        self.mode = "active/passive"
        self.roles: tuple[str, str] | None = None  # (active, standby) as the Given step laid them out
        self.toolkit_settings: dict[str, str] = {}  # submission parameters a scenario sets for the toolkit
        self.ids: IdTable | None = None
        self.metrics: MetricsSession | None = None
        self.baseline: Baseline | None = None
        self.timeout = self.config.duration("run.scenario_timeout")
        self.progress = ConsoleProgress()
        self.journal.record("scenario.started", feature=feature, tags=tags)

    # -- names from the feature text -------------------------------------------------------------
    def datacenter(self, name: str) -> str:
        if name not in self.run.rest:
            known = ", ".join(sorted(self.run.rest))
            raise StepError(f'unknown data center "{name}" (configured: {known})')
        return name

    def application(self, name: str) -> AppSpec:
        apps = self.config.get("applications", {})
        if name not in apps:
            raise StepError(f'unknown application "{name}" (configured: {", ".join(sorted(apps))})')
        return AppSpec.from_config(name, apps[name])

    # -- Given --------------------------------------------------------------------------------------
    def set_toolkit(self, **parameters: str) -> None:
        """Submission parameters of the Cross-DC toolkit for this scenario's deployment (before it)."""
        if self.app is not None:
            raise StepError("the toolkit's settings must come before the step that deploys the application")
        self.toolkit_settings.update(parameters)
        self.journal.record("toolkit.settings", parameters=dict(parameters))

    def _configured(self, app_name: str) -> AppSpec:
        app = self.application(app_name)
        if not self.toolkit_settings:
            return app
        return replace(app, parameters={**app.parameters, **self.toolkit_settings})

    def deploy_active_passive(self, app_name: str, active: str, standby: str) -> None:
        app = self._configured(app_name)
        self.app, self.active, self.standby = app, self.datacenter(active), self.datacenter(standby)
        self.roles = (active, standby)
        label_dc_pair(active, standby)
        rest = self.run.rest
        what = f"restore {app.name}: active in {active}, standby in {standby}"
        self.cleanup.push(what, guarded_restore(
            what, lambda: ensure_active_passive(rest, app, active, standby, self.journal, timeout=120), rest,
            self.journal))
        ensure_active_passive(rest, app, active, standby, self.journal, timeout=min(self.timeout, 120),
                              progress=self.progress, fresh=True)
        self._watch(app, active, standby)

    def deploy_active_active(self, app_name: str, first: str, second: str) -> None:
        """Run the application in both data centers in crossDCOperationMode 1 (each processing its own keys and
        replicating its state to the other)."""
        app = self._configured(app_name)
        self.app, self.active, self.standby = app, self.datacenter(first), self.datacenter(second)
        self.roles = (first, second)
        self.mode = "active/active"
        label_dc_pair(first, second)
        rest = self.run.rest
        what = f"restore {app.name}: active/active in {first} and {second}"
        self.cleanup.push(what, guarded_restore(
            what, lambda: ensure_active_active(rest, app, (first, second), self.journal, timeout=120), rest,
            self.journal))
        ensure_active_active(rest, app, (first, second), self.journal, timeout=min(self.timeout, 120),
                             progress=self.progress, fresh=True)
        self._watch(app, first, second)

    def _watch(self, app: AppSpec, first: str, second: str) -> None:
        """Start the toolkit monitor and the metrics sampler; wait until both sides see each other UP."""
        rest = self.run.rest
        self.monitor = ToolkitMonitor(
            rest, app.job_name, self.journal, interval=0.1, max_duration=self.timeout,
            clock_tolerance=self.config.duration("metrics.clock_tolerance", 0.5),
            outputs=lambda: self.traffic.first_outputs() if self.traffic else {},
        )
        self.cleanup.push("stop the toolkit monitor", self.monitor.stop)
        self.monitor.start()
        operators = [str(self.config.get(f"applications.{app.name}.{end}.operator", "")) for end in ("source", "sink")]
        self.metrics = MetricsSession.from_config(self.config, rest, app.job_name, [o for o in operators if o],
                                                  self.timeout)
        self.cleanup.push("stop the metrics sampler", self.metrics.stop)
        self.metrics.start()
        wait_until(lambda: (self.monitor.remote_up(first), self.monitor.remote_up(second)),  # type: ignore[union-attr]
                   lambda seen: seen == (True, True), timeout=60, interval=0.2,
                   what=f"the toolkit in {first} and {second} to see each other UP", progress=self.progress)

    def start_traffic(self, rate: float) -> None:
        if self.app is None:
            raise StepError("no application deployed yet: start with the application layout step")
        cfg = self.config
        source: Any
        input_file = cfg.get("traffic.input_file", None)
        if input_file:
            source = FileOrderSource(Path(str(input_file)), self.run.run_id)
        else:
            source = OrderGenerator(int(cfg.get("traffic.seed", 1)), f"{self.run.run_id}-{self.run.scenarios:02d}")
        self.ids = IdTable(self.ledger_dir / "ids.txt")
        sent = Ledger(self.ledger_dir / "sent.csv", SentRow, self.ids)
        received = Ledger(self.ledger_dir / "received.csv", ReceivedRow, self.ids)
        preferred = [dc for dc in (self.active, self.standby) if dc]
        self.traffic = Traffic(
            self.run.exchange, self.app.job_name, cfg.get(f"applications.{self.app.name}"),
            source, sent, received, self.journal,
            rate=rate,
            batch_interval=cfg.duration("traffic.batch_interval", 0.05),
            consumer_interval=cfg.duration("traffic.consumer_interval", 0.1),
            max_duration=self.timeout,
            policy="spread" if self.mode == "active/active" else str(cfg.get("traffic.policy", "follow-active")),
            preferred=preferred,
        )
        self.cleanup.push("stop traffic", self.traffic.stop)
        self.traffic.start()

    def wait_steady(self, seconds: float) -> None:
        if self.traffic is None:
            raise StepError("no traffic is flowing: add 'Given orders flow at N tuples per second' first")
        self.traffic.wait_steady(seconds, timeout=seconds + 60, progress=self.progress)
        end = time.time()
        start = end - seconds
        self.baseline = throughput_baseline(self.traffic.received.table(), start, end,
                                            self.config.duration("metrics.throughput_window", 1.0))
        others = self.metrics.capture_baselines(start, end) if self.metrics else {}
        self.journal.record("steady", seconds=seconds, start=start,
                            baseline_tps=None if self.baseline is None else round(self.baseline.mean, 3),
                            baselines=len(others))

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
        running = [d for d in rest if d != dc and _runs(rest[d], app.job_name)]
        dual = not running
        role = "active" if dual and self.roles is not None and dc == self.roles[0] else "standby"
        self.journal.record("datacenter.back", dc=dc, role=role, healed=[f.id for f in healed],
                            active=running[0] if running else None)
        since = time.time()
        ensure_returned(rest, app, dc, role, self.journal, timeout=min(self.timeout, 120), progress=self.progress,
                        dual_outage=dual)
        if role == "active":  # after a dual outage the data center that resumes is the old and the new active
            self.active = self.standby = dc
            return
        if not running:
            return
        active = running[0]
        self.active, self.standby = active, dc
        label_dc_pair(active, dc)
        monitor = self.monitor
        assert monitor is not None
        wait_until(lambda: (monitor.remote_up(active), monitor.remote_up(dc), monitor.last_replication(dc)),
                   lambda seen: seen[0] is True and seen[1] is True and (seen[2] or 0) >= since, timeout=60,
                   interval=0.2, what=f"{dc} to see {active} UP and hold a copy of its state", progress=self.progress)

    def fail_back(self, name: str) -> None:
        """A planned failback: once ``dc`` (the standby) holds a fresh copy of the active's state, the active's
        job is canceled, so the toolkit in ``dc`` takes over with that state."""
        dc = self.datacenter(name)
        app = self._deployed()
        if self.standby != dc or self.active is None:
            raise StepError(f'{dc} is not the standby ("{dc}" comes back first)')
        monitor = self.monitor
        assert monitor is not None
        since = time.time()
        wait_until(lambda: monitor.last_replication(dc), lambda t: (t or 0) >= since, timeout=60, interval=0.1,
                   what=f"a fresh copy of {self.active}'s state in {dc}", progress=self.progress)
        self.inject_fault("job-cancel", dc=self.active, app=app.name)

    def _deployed(self) -> AppSpec:
        if self.app is None:
            raise StepError("no application deployed yet: start with the application layout step")
        return self.app

    # -- Then ---------------------------------------------------------------------------------------
    def takeover_seen(self, dc: str, within: float) -> RecoveryTimeline:
        """Wait (bounded by ``within`` after the fault) until ``dc`` runs the application."""
        self.datacenter(dc)
        fault = self.journal.last("fault.effective")
        if fault is not None and self.monitor is not None:
            remaining = max(0.0, fault.t + within - time.time())
            try:
                since = fault.t - 1.0  # a takeover by this fault, not by an earlier one
                wait_until(lambda: self.monitor.takeover_at(dc),  # type: ignore[union-attr]
                           lambda t: t is not None and t >= since, timeout=remaining + 1.0, interval=0.1,
                           what=f"{dc} to take over", progress=self.progress)
            except AssertionError as exc:
                log.info("%s", exc)
        return self.timeline(dc)

    def detection_seen(self, lost: str, within: float) -> RecoveryTimeline:
        """Wait (bounded by ``within`` after the fault) until the standby's toolkit reports ``lost`` DOWN."""
        old, new = self.failover_pair()
        if self.datacenter(lost) != old:
            raise StepError(f'"{lost}" is not the data center this scenario takes down ({old} is)')
        return self._wait_timeline(within, "down_detected", f"{new} to report {lost} DOWN")

    def output_resumed(self, limit: float) -> RecoveryTimeline:
        """Wait (bounded by ``limit`` after the fault) until the new active emits output."""
        return self._wait_timeline(limit, "first_output", "output from the new active")

    def throughput_back(self, within: float) -> RecoveryTimeline:
        """Wait (bounded by ``within`` after the fault) until throughput is back in the baseline band."""
        return self._wait_timeline(within, "throughput_recovered", "throughput back to the baseline")

    def _wait_timeline(self, limit: float, phase: str, what: str) -> RecoveryTimeline:
        fault = self.journal.last("fault.effective")
        if fault is not None and self.traffic is not None:
            remaining = max(0.0, fault.t + limit - time.time())
            try:
                wait_until(lambda: getattr(self.timeline(), phase), lambda t: t is not None,
                           timeout=remaining + 1.5, interval=0.2, what=what, progress=self.progress)
            except AssertionError as exc:
                log.info("%s", exc)
        return self.timeline()

    def failover_pair(self) -> tuple[str, str]:
        """(old active, new active) of this scenario's failover."""
        fault = self.journal.last("fault.effective")
        faulted = str(fault.fields.get("dc", "")) if fault else ""
        if self.mode == "active/active" and faulted in (self.active, self.standby):
            other = self.standby if faulted == self.active else self.active
            return faulted, other or ""
        return self.active or "", self.standby or ""

    def timeline(self, standby: str | None = None) -> RecoveryTimeline:
        old, new = self.failover_pair()
        received: Table | list[ReceivedRow] = self.traffic.received.table() if self.traffic else []
        return recovery_timeline(
            self.journal, received, standby or new, old=old, baseline=self.baseline,
            fraction=float(self.config.get("metrics.throughput_fraction", 0.9)),
            window=self.config.duration("metrics.throughput_window", 1.0),
        )

    def watch_past_the_heal(self) -> None:
        """Before judging who emitted when: if the latest fault is over (healed) or ends by itself (it has a
        duration, e.g. a hang), wait until it has been healed and then until output emitted twice the
        split-brain gap after the heal has come in, so that an old active which resumes emitting beside the new
        one is seen. Each wait is bounded; at its deadline the output seen so far is judged."""
        fault, traffic = self.fault, self.traffic
        if fault is None or traffic is None:
            return
        effective = self.journal.first("fault.effective", id=fault.id)
        if effective is None:
            return
        healed = self.journal.first("fault.healed", id=fault.id)
        if healed is None and not fault.duration:
            return  # still in effect: judged as it stands
        settle = 2 * self.config.duration("metrics.split_brain_gap", 2.0)
        if healed is None:
            heal_by = effective.t + float(fault.duration or 0) + self.config.duration("faults.verify_timeout", 15.0)
            try:
                healed = wait_until(lambda: self.journal.first("fault.healed", id=fault.id), lambda e: e is not None,
                                    timeout=max(0.0, heal_by - time.time()), interval=0.2,
                                    what=f"the {fault.kind} fault to be over", progress=self.progress)
            except AssertionError as exc:
                log.info("%s", exc)
                return
        if healed is None:
            return
        watch_until = healed.t + settle

        def newest_output() -> float:
            table = traffic.received.table()
            return float(output_times(table).max()) if len(table) else 0.0

        with contextlib.suppress(AssertionError):  # at the deadline, what came in is judged
            wait_until(newest_output, lambda t: t >= watch_until, timeout=max(0.0, watch_until - time.time()) + settle,
                       interval=0.2, what=f"output {settle:g} s after the {fault.kind} fault was over",
                       progress=self.progress)

    def no_failover(self, duration: float) -> Verdict:
        """Watch for ``duration`` seconds from the fault (or from now when there is none): no DOWN, no takeover."""
        from support.measure import check_no_failover

        faults = self.journal.events("fault.effective")  # the watch starts at the latest fault
        start = faults[-1].t if faults else time.time()
        until = start + duration
        with contextlib.suppress(AssertionError):  # nothing happening is the expected outcome
            wait_until(lambda: failover_events(self.journal, start, until), bool,
                       timeout=max(0.0, until - time.time()), interval=0.2, what="a failover",
                       progress=self.progress)
        return check_no_failover(self.journal, start, min(until, time.time()))

    def no_takeover(self, dc: str, duration: float) -> Verdict:
        """Watch ``dc`` for ``duration`` seconds from the fault (or from now): it must not take over."""
        from support.measure import check_no_takeover

        self.datacenter(dc)
        faults = self.journal.events("fault.effective")  # the watch starts at the latest fault
        start = faults[-1].t if faults else time.time()
        until = start + duration
        with contextlib.suppress(AssertionError):  # nothing happening is the expected outcome
            wait_until(lambda: failover_events(self.journal, start, until, kinds=("toolkit.takeover",), dc=dc),
                       bool, timeout=max(0.0, until - time.time()), interval=0.2, what=f"{dc} taking over",
                       progress=self.progress)
        return check_no_takeover(self.journal, dc, start, min(until, time.time()))

    def order(self) -> OrderReport:
        if self._order is None:
            self.delivery()
            assert self.traffic is not None
            self._order = check_order(self.traffic.received.table())
        return self._order

    def split_brain(self) -> SplitBrainReport:
        if self._split is None:
            self.delivery()
            assert self.traffic is not None
            self._split = check_split_brain(self.traffic.received.table(),
                                            gap=self.config.duration("metrics.split_brain_gap", 2.0),
                                            tolerance=self.config.duration("metrics.clock_tolerance", 0.0))
        return self._split

    def state(self, new: str | None = None, old: str | None = None) -> StateReport:
        """The new active's restored state judged against the old active's history (computed once)."""
        if self._state is None:
            self.delivery()
            assert self.traffic is not None
            fault = self.journal.last("fault.effective")
            if fault is None:
                raise StepError("no fault was injected, so no data center resumed from another's state")
            pair_old, pair_new = self.failover_pair()
            self._state = check_state(self.traffic.sent.table(), self.traffic.received.table(),
                                      old or pair_old, new or pair_new, fault.t)
            self.journal.record("state", **{k: v for k, v in self._state.to_json().items() if "samples" not in k})
        return self._state

    def delivery(self) -> DeliveryReport:
        """Stop producing, drain the outputs, then account for every tuple (computed once)."""
        if self._delivery is None:
            if self.traffic is None:
                raise StepError("no traffic was sent in this scenario")
            self.traffic.drain(timeout=self.config.duration("traffic.drain_timeout", 20.0))
            self._delivery = check_delivery(self.traffic.sent.table(), self.traffic.received.table())
            self.journal.record("delivery", **self._delivery.counts())
        return self._delivery

    def objectives(self, app_name: str) -> dict[str, float | int]:
        self.application(app_name)
        raw = self.config.get(f"objectives.{app_name}", None)
        if not raw:
            raise StepError(f'no objectives configured for "{app_name}" (objectives.{app_name})')
        result: dict[str, float | int] = {}
        for key, value in raw.items():
            if key in ("max_lost", "max_duplicated"):
                result[key] = int(value)
            elif key == "throughput_fraction":
                result[key] = float(value)
            else:
                result[key] = self.config.duration(f"objectives.{app_name}.{key}")
        return result

    def check(self, verdict: Verdict) -> None:
        self.verdicts.append(verdict)
        self.journal.record("verdict", name=verdict.name, passed=verdict.passed, summary=verdict.summary)
        if not verdict.passed:
            raise AssertionError(verdict.summary)

    # -- end ----------------------------------------------------------------------------------------
    def close(self) -> list[str]:
        """Stop background work and run every cleanup; returns cleanup failures."""
        if self.traffic is not None:
            self.traffic.stop()
        if self.monitor is not None:
            self.monitor.stop()
        if self.metrics is not None:
            self.metrics.stop()
            if self.traffic is not None:
                self._add_throughput_series(self.metrics)
            self.metrics.export(self.ledger_dir)
        if self.traffic is not None:
            self.traffic.sent.close()
            self.traffic.received.close()
        if self.ids is not None:
            self.ids.close()
        errors = self.cleanup.run_all()
        errors += [RESIDUE_PREFIX + line for line in self.faults.audit()]
        self.faults.close()
        return errors

    def _add_throughput_series(self, metrics: MetricsSession) -> None:
        """Output tuples per second per data center (by the DC's emission time), the most honest throughput."""
        assert self.traffic is not None
        table = self.traffic.received.table()
        if not len(table):
            return
        times = output_times(table)
        width = self.config.duration("metrics.throughput_window", 1.0)
        t0 = float(times.min())
        for code, dc in enumerate(table.categories.get("dc", [])):
            mine = times[table["dc"] == code]
            if not len(mine):
                continue
            counts = np.bincount(((mine - t0) // width).astype(np.int64))
            for index, count in enumerate(counts.tolist()):
                metrics.store.add(f"throughput.{dc}", t0 + index * width, count / width)

    def measurements(self) -> dict[str, Any]:
        """Recovery phases, RPO, state, order and split brain for the summary (whatever could be measured)."""
        timeline = self.timeline() if self.fault is not None else None
        out: dict[str, Any] = {"mode": self.mode, "old_active": None, "recovery": None, "rpo": None, "state": None,
                               "order": None, "split_brain": None,
                               "baseline": None if self.baseline is None else self.baseline.to_json(),
                               "metrics": None}
        if timeline is not None:
            out["recovery"] = timeline.to_json()
            out["old_active"] = timeline.old or None
        if self.traffic is not None and len(self.traffic.received):
            out["order"] = (self._order or check_order(self.traffic.received.table())).to_json()
            out["split_brain"] = self.split_brain().to_json() if self._split else check_split_brain(
                self.traffic.received.table(), gap=self.config.duration("metrics.split_brain_gap", 2.0)).to_json()
            fault = self.journal.last("fault.effective")
            if self.fault is not None and fault is not None:
                state = self._state or check_state(self.traffic.sent.table(), self.traffic.received.table(),
                                                   *self.failover_pair(), fault.t)
                out["state"] = state.to_json()
        if self.metrics is not None:
            out["metrics"] = {"series": len(self.metrics.store.names()),
                              "baselines": {k: v.to_json() for k, v in sorted(self.metrics.baselines.items())},
                              "errors": dict(self.metrics.sampler.errors)}
        return out

    def record(self, status: str, error: str | None, cleanup_errors: list[str]) -> dict[str, Any]:
        timeline = self.timeline() if self.fault is not None else None
        delivery = self._delivery
        if delivery is None and self.traffic is not None:
            delivery = check_delivery(self.traffic.sent.table(), self.traffic.received.table())
        measured = self.measurements()
        state = measured["state"]
        measured["rpo"] = None if delivery is None else {
            "lost": delivery.lost,
            "loss_window_s": round(delivery.loss_window, 3),
            "lost_state_updates": None if state is None else state["lost_updates"],
            "state_loss_window_s": None if state is None else state["state_loss_window_s"],
        }
        return {
            "feature": self.feature,
            "name": self.name,
            "status": status,
            "tags": self.tags,
            "started_at": self.started,
            "duration_s": round(time.time() - self.started, 3),
            "fault": self.fault.kind if self.fault else None,
            "standby": self.standby,
            "rto_s": None if timeline is None or timeline.rto is None else round(timeline.rto, 3),
            "phases_s": timeline.phases() if timeline else None,
            "lost": delivery.lost if delivery else None,
            "duplicated": delivery.duplicated if delivery else None,
            "unknown": delivery.unknown if delivery else None,
            "delivery": delivery.counts() if delivery else None,
            "verdicts": [v.to_json() for v in self.verdicts],
            "timeline": build_timeline(
                self.journal.events(),
                self.traffic.sent.rows() if self.traffic else [],
                self.traffic.received.rows() if self.traffic else [],
                timeline.phases() if timeline else None,
            ),
            "error": error,
            "cleanup_errors": cleanup_errors,
            **measured,
        }

    def attach_evidence(self, record: dict[str, Any]) -> None:
        """Attach the scenario's charts, RTO/RPO table, verdicts, metrics CSV, residue audit and journal to Allure."""
        attach_scenario(record, self.journal.events(), self.ledger_dir / "metrics.csv")


def _runs(client: StreamsRestClient, job_name: str) -> bool:
    """``job_name`` runs in the instance behind ``client`` (False when the instance does not answer)."""
    try:
        job = client.find_job(job_name)
    except StreamsError:
        return False
    return job is not None and job.get("status") == "running"
