"""Bringing an application into the layout a scenario needs, through the REST management API only."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from support.config.settings import AppSettings
from support.orchestration import Journal
from support.status import wait_job_healthy
from support.streams.errors import StreamsAuthError, StreamsNotFound
from support.streams.rest import StreamsRestClient
from support.waits import Progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppSpec:
    """An application as configured: its job name, bundle and the passive stub (if any)."""

    name: str
    job_name: str
    bundle: str
    standby_job: str | None
    standby_bundle: str | None
    parameters: dict[str, str]

    @classmethod
    def from_settings(cls, app: AppSettings) -> AppSpec:
        standby = app.standby
        return cls(
            name=app.name,
            job_name=app.job_name,
            bundle=app.bundle,
            standby_job=standby.job_name if standby is not None else None,
            standby_bundle=standby.bundle if standby is not None else None,
            parameters=dict(app.submission_parameters),
        )


def _cancel_named(client: StreamsRestClient, job_name: str, journal: Journal, dc: str) -> None:
    for job in client.jobs():
        if job.get("name") == job_name and job.get("status") not in ("canceled", "canceling"):
            try:
                client.cancel_job(str(job["id"]))
            except StreamsNotFound:
                continue
            journal.record("deployment.canceled", dc=dc, job=job_name, job_id=str(job["id"]))


def _ensure_running(client: StreamsRestClient, job_name: str, bundle: str, params: dict[str, str],
                    journal: Journal, dc: str) -> None:
    if client.find_job(job_name) is None:
        job = client.submit_job(bundle, job_name=job_name, submission_parameters=params)
        journal.record("deployment.submitted", dc=dc, job=job_name, job_id=str(job.get("id")))


def ensure_active_passive(
    rest: Mapping[str, StreamsRestClient],
    app: AppSpec,
    active: str,
    standby: str,
    journal: Journal,
    timeout: float,
    progress: Progress | None = None,
    fresh: bool = False,
) -> None:
    """Leave ``app`` running in ``active`` with its passive stub in ``standby``, both healthy.

    Whatever a previous scenario left (a taken-over job in the standby, a stub in the active DC) is
    canceled first, so every scenario starts from the same layout. ``fresh`` also replaces jobs that are
    still running (their toolkit may be DOWN for good after a partition, their state carries history):
    the stub goes first, so that it cannot mistake the active's cancel for a failure and take over.
    """
    if app.standby_job is None or app.standby_bundle is None:
        raise ValueError(f"application {app.name} has no standby configured (applications.{app.name}.standby)")
    if fresh:
        _cancel_named(rest[standby], app.standby_job, journal, standby)
        _cancel_named(rest[active], app.job_name, journal, active)
    _cancel_named(rest[standby], app.job_name, journal, standby)
    _cancel_named(rest[active], app.standby_job, journal, active)
    for dc in rest:
        if dc not in (active, standby):
            _cancel_named(rest[dc], app.job_name, journal, dc)
    _ensure_running(rest[standby], app.standby_job, app.standby_bundle, app.parameters, journal, standby)
    _ensure_running(rest[active], app.job_name, app.bundle, app.parameters, journal, active)
    for dc, name in ((active, app.job_name), (standby, app.standby_job)):
        wait_job_healthy(rest[dc], dc, name, timeout, progress)
    journal.record("deployment.ready", app=app.name, active=active, standby=standby)


def ensure_active_active(
    rest: Mapping[str, StreamsRestClient],
    app: AppSpec,
    dcs: tuple[str, str],
    journal: Journal,
    timeout: float,
    progress: Progress | None = None,
    fresh: bool = False,
) -> None:
    """Leave ``app`` running in both data centers with ``crossDCOperationMode=1`` (active/active), both healthy.

    Passive stubs are canceled first, and so is a job of the application that runs in passive mode;
    ``fresh`` replaces every job of the application, running or not.
    """
    params = {**app.parameters, "crossDCOperationMode": "1"}
    if fresh:
        for dc in rest:
            if app.standby_job:
                _cancel_named(rest[dc], app.standby_job, journal, dc)
            _cancel_named(rest[dc], app.job_name, journal, dc)
    stubs = [dc for dc in rest if app.standby_job and rest[dc].find_job(app.standby_job) is not None]
    for dc in rest:
        if stubs and dc in dcs:  # coming from active/passive: start both sides afresh, without that history
            _cancel_named(rest[dc], app.job_name, journal, dc)
        if app.standby_job:
            _cancel_named(rest[dc], app.standby_job, journal, dc)
        if dc not in dcs:
            _cancel_named(rest[dc], app.job_name, journal, dc)
            continue
        job = rest[dc].find_job(app.job_name)
        mode = {p.get("name"): p.get("value") for p in (job or {}).get("submitParameters", [])}.get(
            "crossDCOperationMode", "1")
        if job is not None and str(mode) != "1":
            _cancel_named(rest[dc], app.job_name, journal, dc)
    for dc in dcs:
        _ensure_running(rest[dc], app.job_name, app.bundle, params, journal, dc)
    for dc in dcs:
        wait_job_healthy(rest[dc], dc, app.job_name, timeout, progress)
    journal.record("deployment.ready", app=app.name, active=dcs[0], standby=dcs[1], mode="active/active")


def ensure_returned(
    rest: Mapping[str, StreamsRestClient],
    app: AppSpec,
    dc: str,
    role: str,
    journal: Journal,
    timeout: float,
    progress: Progress | None = None,
    *,
    dual_outage: bool = False,
) -> None:
    """Put ``dc`` back into service after an outage, in ``role``: ``standby`` runs the passive stub (which
    stores the active's snapshots, ready to take over or to fail back); ``active`` runs the application.

    Whatever the outage left in ``dc`` (an old active that stood down, a stub that already launched) is
    canceled first. After a ``dual_outage`` (no data center ran the application), a stub is started with
    ``sendDataSnapshotsToOriginDCAtStartup=true``, so the snapshots it kept go back to the data center they
    came from (the toolkit's dual-outage recovery), and the application with
    ``retainOlderDataSnapshotsAtStartup=true``, so it waits for them. Otherwise the stub starts afresh
    (older snapshot files are deleted) and replicates from the running active.
    """
    if role not in ("active", "standby"):
        raise ValueError(f"unknown role {role!r}")
    if app.standby_job is None or app.standby_bundle is None:
        raise ValueError(f"application {app.name} has no standby configured (applications.{app.name}.standby)")
    _cancel_named(rest[dc], app.job_name, journal, dc)
    _cancel_named(rest[dc], app.standby_job, journal, dc)
    params = dict(app.parameters)
    if role == "standby":
        name, bundle = app.standby_job, app.standby_bundle
        if dual_outage:
            params["sendDataSnapshotsToOriginDCAtStartup"] = "true"
    else:
        name, bundle = app.job_name, app.bundle
        if dual_outage:
            params["retainOlderDataSnapshotsAtStartup"] = "true"
    _ensure_running(rest[dc], name, bundle, params, journal, dc)
    wait_job_healthy(rest[dc], dc, name, timeout, progress)
    journal.record("deployment.returned", app=app.name, dc=dc, role=role, dual_outage=dual_outage)


class RestoreError(RuntimeError):
    """A restore of the layout stopped on an error that retrying cannot cure; the text says what was tried."""


def guarded_restore(what: str, action: Callable[[], None], rest: Mapping[str, StreamsRestClient],
                    journal: Journal) -> Callable[[], None]:
    """``action`` (a cleanup that restores a layout) with a rejected credential reported loudly, never retried.

    The run reads its credentials once, when it starts: after a 401/403 the same request can only fail again, and
    so can every later scenario (in the embedded lab, a 401 in the middle of a run meant the lab had been rebuilt
    under it with a new password). The ``RestoreError`` names the data center, the request, what the restore had
    done before it, and whether the same credentials were accepted earlier in the scenario; the journal gets a
    ``restore.failed`` event with the same facts.
    """

    def run() -> None:
        started = time.time()
        try:
            action()
        except StreamsAuthError as exc:
            host = urlsplit(exc.url or "").netloc
            dc = next((name for name, client in rest.items() if urlsplit(client.root_url).netloc == host), "?")
            done = [f"{e.event.removeprefix('deployment.')} {e.fields.get('job')} in {e.fields.get('dc')}"
                    for e in journal.events() if e.t >= started and e.event.startswith("deployment.")]
            accepted = any(e.t < started for e in journal.events("deployment.ready"))
            journal.record("restore.failed", what=what, dc=dc, request=f"{exc.method} {exc.url}", status=exc.status,
                           retried=False, done=done, accepted_earlier=accepted)
            history = (
                "They were accepted earlier in this scenario, so the target's credentials changed during the run "
                "(the embedded lab: rebuilt by `lab up` or `lab down` while the run used it)"
                if accepted else ("They were not accepted earlier in this scenario: if an earlier scenario of the run "
                                  f"got in with them, the target's credentials changed; else check datacenters.{dc}"
                                  ".rest.auth")
            )
            raise RestoreError(
                f"{dc} rejected the run's credentials ({exc}); not retried: they were read when the run started, "
                f"so the same request can only fail again. {history}. The layout is NOT restored (done before the "
                f"error: {', '.join(done) or 'nothing'}); later scenarios against {dc} will fail the same way."
            ) from exc

    return run
