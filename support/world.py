"""The per-run and per-scenario state the steps work with (one object each on behave's context)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.config import Config
from support.data.generate import FileOrderSource, OrderGenerator
from support.data.ledger import Ledger, ReceivedRow, SentRow
from support.data.validate import DeliveryReport, check_delivery
from support.deployment import AppSpec, ensure_active_passive
from support.faults.api import CancelJob
from support.measure import RecoveryTimeline, Verdict, recovery_timeline
from support.orchestration import CleanupStack, Journal
from support.progress import ConsoleProgress
from support.reporting.allure import attach_json, attach_text, label_dc_pair
from support.reporting.timeline import build_timeline
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
        self.fault: CancelJob | None = None
        self.verdicts: list[Verdict] = []
        self._delivery: DeliveryReport | None = None
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
    def deploy_active_passive(self, app_name: str, active: str, standby: str) -> None:
        app = self.application(app_name)
        self.app, self.active, self.standby = app, self.datacenter(active), self.datacenter(standby)
        label_dc_pair(active, standby)
        rest = self.run.rest
        self.cleanup.push(
            f"restore {app.name}: active in {active}, standby in {standby}",
            lambda: ensure_active_passive(rest, app, active, standby, self.journal, timeout=120),
        )
        ensure_active_passive(rest, app, active, standby, self.journal, timeout=min(self.timeout, 120),
                              progress=self.progress)
        self.monitor = ToolkitMonitor(rest, app.job_name, self.journal, interval=0.1, max_duration=self.timeout)
        self.cleanup.push("stop the toolkit monitor", self.monitor.stop)
        self.monitor.start()
        wait_until(lambda: (self.monitor.remote_up(active), self.monitor.remote_up(standby)),  # type: ignore[union-attr]
                   lambda seen: seen == (True, True), timeout=60, interval=0.2,
                   what=f"the toolkit in {active} and {standby} to see each other UP", progress=self.progress)

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
        sent = Ledger(self.ledger_dir / "sent.csv", SentRow)
        received = Ledger(self.ledger_dir / "received.csv", ReceivedRow)
        preferred = [dc for dc in (self.active, self.standby) if dc]
        self.traffic = Traffic(
            self.run.exchange, self.app.job_name, cfg.get(f"applications.{self.app.name}"),
            source, sent, received, self.journal,
            rate=rate,
            batch_interval=cfg.duration("traffic.batch_interval", 0.05),
            consumer_interval=cfg.duration("traffic.consumer_interval", 0.1),
            max_duration=self.timeout,
            policy=str(cfg.get("traffic.policy", "follow-active")),
            preferred=preferred,
        )
        self.cleanup.push("stop traffic", self.traffic.stop)
        self.traffic.start()

    def wait_steady(self, seconds: float) -> None:
        if self.traffic is None:
            raise StepError("no traffic is flowing: add 'Given orders flow at N tuples per second' first")
        self.traffic.wait_steady(seconds, timeout=seconds + 60, progress=self.progress)
        self.journal.record("steady", seconds=seconds)

    # -- When ---------------------------------------------------------------------------------------
    def cancel_job(self, app_name: str, dc: str) -> None:
        app = self.application(app_name)
        fault = CancelJob(self.run.rest[self.datacenter(dc)], dc, app.job_name, self.journal)
        self.cleanup.push(f"heal {fault.kind} in {dc}", fault.heal)
        fault.inject()
        fault.verify()
        self.fault = fault

    # -- Then ---------------------------------------------------------------------------------------
    def takeover_seen(self, dc: str, within: float) -> RecoveryTimeline:
        """Wait (bounded by ``within`` after the fault) until ``dc`` runs the application."""
        self.datacenter(dc)
        fault = self.journal.first("fault.effective")
        if fault is not None and self.monitor is not None:
            remaining = max(0.0, fault.t + within - time.time())
            try:
                wait_until(lambda: self.monitor.takeover_at(dc),  # type: ignore[union-attr]
                           lambda t: t is not None, timeout=remaining + 1.0, interval=0.1,
                           what=f"{dc} to take over", progress=self.progress)
            except AssertionError as exc:
                log.info("%s", exc)
        return self.timeline(dc)

    def output_resumed(self, limit: float) -> RecoveryTimeline:
        """Wait (bounded by ``limit`` after the fault) until the new active emits output."""
        standby = self.standby or ""
        fault = self.journal.first("fault.effective")
        if fault is not None and self.traffic is not None:
            remaining = max(0.0, fault.t + limit - time.time())
            received = self.traffic.received
            try:
                wait_until(lambda: any(r.dc == standby and r.t_recv >= fault.t for r in received.rows()),
                           bool, timeout=remaining + 1.0, interval=0.1, what=f"output from {standby}")
            except AssertionError as exc:
                log.info("%s", exc)
        return self.timeline(standby)

    def timeline(self, standby: str | None = None) -> RecoveryTimeline:
        received = self.traffic.received.rows() if self.traffic else []
        return recovery_timeline(self.journal, received, standby or self.standby or "")

    def delivery(self) -> DeliveryReport:
        """Stop producing, drain the outputs, then account for every tuple (computed once)."""
        if self._delivery is None:
            if self.traffic is None:
                raise StepError("no traffic was sent in this scenario")
            self.traffic.drain(timeout=self.config.duration("traffic.drain_timeout", 20.0))
            self._delivery = check_delivery(self.traffic.sent.rows(), self.traffic.received.rows())
            self.journal.record("delivery", **self._delivery.counts())
        return self._delivery

    def objectives(self, app_name: str) -> dict[str, float | int]:
        self.application(app_name)
        raw = self.config.get(f"objectives.{app_name}", None)
        if not raw:
            raise StepError(f'no objectives configured for "{app_name}" (objectives.{app_name})')
        result: dict[str, float | int] = {}
        for key, value in raw.items():
            result[key] = int(value) if key == "max_lost" else self.config.duration(f"objectives.{app_name}.{key}")
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
        return self.cleanup.run_all()

    def record(self, status: str, error: str | None, cleanup_errors: list[str]) -> dict[str, Any]:
        timeline = self.timeline() if self.fault is not None else None
        delivery = self._delivery
        if delivery is None and self.traffic is not None:
            delivery = check_delivery(self.traffic.sent.rows(), self.traffic.received.rows())
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
        }

    def attach_evidence(self, record: dict[str, Any]) -> None:
        attach_json("measurements", {k: record[k] for k in ("rto_s", "phases_s", "delivery") if k in record})
        if self.verdicts:
            attach_text("verdicts", "\n".join(
                f"{'PASS' if v.passed else 'FAIL'} {v.name}: {v.summary}" for v in self.verdicts))
        attach_text("journal", "\n".join(
            f"{e.t:.3f} {e.event} {e.fields}" for e in self.journal.events()))
