"""Bringing an application into the layout a scenario needs, through the REST management API only."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from support.config.settings import AppSettings, StandbySettings
from support.dchost import StandbyStub
from support.orchestration import Journal
from support.status import wait_job_healthy
from support.streams.errors import StreamsAuthError, StreamsNotFound
from support.streams.rest import StreamsRestClient
from support.waits import Progress, wait_until

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppSpec:
    """An application as configured: its job name, bundle, submission parameters and passive stub (if any)."""

    name: str
    job_name: str
    bundle: str
    standby: StandbySettings | None
    parameters: dict[str, str]
    main_composite: str | None = None

    @classmethod
    def from_settings(cls, app: AppSettings) -> AppSpec:
        return cls(name=app.name, job_name=app.job_name, bundle=app.bundle, standby=app.standby,
                   parameters=dict(app.submission_parameters), main_composite=app.main_composite)

    def parameters_for(self, dc: str) -> dict[str, str]:
        """The submission parameters for a job in ``dc`` (``{dc}`` replaced by its name)."""
        return {key: value.replace("{dc}", dc) for key, value in self.parameters.items()}


def other_apps(apps: Sequence[AppSpec], app: AppSpec) -> list[AppSpec]:
    """The applications in ``apps`` that are other jobs than ``app`` (variants of one application, with the same
    job name and main composite, are one job), one of each."""
    seen = {(app.job_name, app.main_composite)}
    others = []
    for other in apps:
        if (other.job_name, other.main_composite) not in seen:
            seen.add((other.job_name, other.main_composite))
            others.append(other)
    return others


#: the standalone stub of an application in a data center
Stubs = Callable[[AppSpec, str], StandbyStub]


def _cancel_app(client: StreamsRestClient, app: AppSpec, journal: Journal, dc: str, timeout: float = 60.0) -> None:
    """Cancel every live job of the application (also one a failover script submitted under the instance's
    default name) and wait until each is gone (a real DELETE answers while the job is still ``canceling``, and
    a job submitted meanwhile would find its ports taken)."""
    job_name = app.job_name
    canceled: list[str] = []
    for job in client.app_jobs(job_name, app.main_composite):
        if job.get("status") in ("canceled",):
            continue
        job_id = str(job["id"])
        if job.get("status") != "canceling":
            try:
                client.cancel_job(job_id)
            except StreamsNotFound:
                continue
            journal.record("deployment.canceled", dc=dc, job=str(job.get("name")), job_id=job_id)
        canceled.append(job_id)
    for job_id in canceled:
        wait_until(lambda job_id=job_id: client.job_gone(job_id), bool, timeout=timeout, interval=0.1,  # type: ignore[misc]
                   what=f"job {job_id} ({job_name}) in {dc} to be gone after its cancel")


def _cancel_others(rest: Mapping[str, StreamsRestClient], others: Sequence[AppSpec], journal: Journal) -> None:
    """Cancel the jobs of the other declared applications in every data center: they share each data center's
    toolkit ports (one ``crossdc`` port per data center in the configuration), so only one application of the
    configuration can run its toolkit there at a time."""
    for dc, client in rest.items():
        for other in others:
            _cancel_app(client, other, journal, dc)


def _ensure_running(client: StreamsRestClient, app: AppSpec, dc: str, journal: Journal,
                    extra: Mapping[str, str] | None = None) -> None:
    if client.find_app_job(app.job_name, app.main_composite) is None:
        params = {**app.parameters_for(dc), **(extra or {})}
        job = client.submit_bundle(app.bundle, job_name=app.job_name, submission_parameters=params)
        journal.record("deployment.submitted", dc=dc, job=app.job_name, job_id=str(job.get("id")))


def _standby_of(app: AppSpec) -> StandbySettings:
    if app.standby is None:
        raise ValueError(f"application {app.name} has no standby configured (applications.{app.name}.standby)")
    return app.standby


def ensure_active_passive(
    rest: Mapping[str, StreamsRestClient],
    stubs: Stubs,
    app: AppSpec,
    active: str,
    standby: str,
    journal: Journal,
    timeout: float,
    progress: Progress | None = None,
    fresh: bool = False,
    others: Sequence[AppSpec] = (),
) -> None:
    """Leave ``app`` running in ``active`` (healthy) with its standalone stub holding the toolkit's port in
    ``standby``.

    Whatever a previous scenario left (a taken-over job in the standby, a stub in the active DC) is
    removed first, so every scenario starts from the same layout. ``fresh`` also replaces what is still running
    (a toolkit may be DOWN for good after a partition; state carries history): the stub goes first, so that it
    cannot mistake the active's cancel for a failure and launch the application. The jobs of ``others`` (the
    configuration's other applications, which share the toolkit's ports) go too, after the stub.
    """
    _standby_of(app)
    if fresh:
        stubs(app, standby).stop()
        _cancel_app(rest[active], app, journal, active)
    _cancel_others(rest, others, journal)
    _cancel_app(rest[standby], app, journal, standby)
    stubs(app, active).stop()
    for dc in rest:
        if dc not in (active, standby):
            _cancel_app(rest[dc], app, journal, dc)
    stub = stubs(app, standby)
    if stub.pid() is None:
        stub.start()
    _ensure_running(rest[active], app, active, journal)
    wait_job_healthy(rest[active], active, app.job_name, timeout, progress, app.main_composite)
    journal.record("deployment.ready", app=app.name, active=active, standby=standby)


def ensure_active_active(
    rest: Mapping[str, StreamsRestClient],
    stubs: Stubs | None,
    app: AppSpec,
    dcs: tuple[str, str],
    journal: Journal,
    timeout: float,
    progress: Progress | None = None,
    fresh: bool = False,
    others: Sequence[AppSpec] = (),
) -> None:
    """Leave ``app`` running in both data centers in crossDCOperationMode 1 (active/active), both healthy.

    The operation mode comes from each data center's toolkit settings (the application's config file), as on a
    real pair: the tester does not override it. Standalone stubs are stopped first; ``fresh`` replaces every job
    of the application, running or not; the jobs of ``others`` (which share the toolkit's ports) go too.
    """
    for dc in rest:
        if stubs is not None and app.standby is not None:
            stubs(app, dc).stop()
        if fresh or dc not in dcs:
            _cancel_app(rest[dc], app, journal, dc)
    _cancel_others(rest, others, journal)
    for dc in dcs:
        _ensure_running(rest[dc], app, dc, journal)
    for dc in dcs:
        wait_job_healthy(rest[dc], dc, app.job_name, timeout, progress, app.main_composite)
    journal.record("deployment.ready", app=app.name, active=dcs[0], standby=dcs[1], mode="active/active")


def ensure_returned(
    rest: Mapping[str, StreamsRestClient],
    stubs: Stubs,
    app: AppSpec,
    dc: str,
    role: str,
    journal: Journal,
    timeout: float,
    progress: Progress | None = None,
) -> None:
    """Put ``dc`` back into service after an outage, in ``role``: ``standby`` runs the standalone stub (which
    stores the active's snapshots, ready to take over or to fail back); ``active`` runs the application.

    Whatever the outage left in ``dc`` (an old active, a stub) is removed first. The toolkit settings a dual
    outage needs (retain or return the stored snapshots) are the caller's: they live in the config files.
    """
    if role not in ("active", "standby"):
        raise ValueError(f"unknown role {role!r}")
    _standby_of(app)
    _cancel_app(rest[dc], app, journal, dc)
    stub = stubs(app, dc)
    stub.stop()
    if role == "standby":
        stub.start()
    else:
        _ensure_running(rest[dc], app, dc, journal)
        wait_job_healthy(rest[dc], dc, app.job_name, timeout, progress, app.main_composite)
    journal.record("deployment.returned", app=app.name, dc=dc, role=role)


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
