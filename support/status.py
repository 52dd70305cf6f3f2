"""Waits on what the REST management API reports: jobs running and healthy, PEs running.

Each wait polls with a deadline and, when it gives up, names the last state it saw.
"""

from __future__ import annotations

from typing import Any

from support.streams.rest import StreamsRestClient
from support.waits import Progress, wait_until


def job_state(client: StreamsRestClient, job_name: str, main_composite: str | None = None) -> str:
    """``status/health`` of the newest live job named ``job_name`` (or, with ``main_composite``, of that
    application: see :meth:`StreamsRestClient.app_jobs`), or ``absent``."""
    job = client.find_app_job(job_name, main_composite)
    if job is None:
        return "absent"
    return f"{job.get('status')}/{job.get('health')}"


def wait_job_healthy(client: StreamsRestClient, dc: str, job_name: str, timeout: float,
                     progress: Progress | None = None, main_composite: str | None = None) -> None:
    wait_until(lambda: job_state(client, job_name, main_composite), lambda state: state == "running/healthy",
               timeout=timeout, interval=0.2, what=f"{job_name} running and healthy in {dc}", progress=progress)


def wait_job_absent(client: StreamsRestClient, dc: str, job_name: str, timeout: float) -> None:
    wait_until(lambda: job_state(client, job_name), lambda state: state == "absent",
               timeout=timeout, interval=0.1, what=f"no {job_name} job in {dc}")


def pe_states(client: StreamsRestClient, job_name: str) -> dict[str, str]:
    """PE id -> ``status/health`` for the named job (empty when the job is absent)."""
    job = client.find_job(job_name)
    if job is None:
        return {}
    return {str(pe.get("id")): f"{pe.get('status')}/{pe.get('health')}" for pe in client.pes(job)}


def wait_pes_running(client: StreamsRestClient, dc: str, job_name: str, timeout: float) -> dict[str, str]:
    """Wait until the job has PEs and every one is running; return their states."""

    def all_running(states: dict[str, str]) -> bool:
        return bool(states) and all(state.startswith("running/") for state in states.values())

    return wait_until(lambda: pe_states(client, job_name), all_running, timeout=timeout, interval=0.2,
                      what=f"every PE of {job_name} running in {dc}")


def find_pe(client: StreamsRestClient, job_name: str, operator: str) -> dict[str, Any] | None:
    """The PE of the named job that runs ``operator`` (by the operator's ``pe`` link)."""
    job = client.find_job(job_name)
    if job is None:
        return None
    op = client.operator(job, operator)
    link = op.get("pe")
    if not isinstance(link, str):
        return None
    pe = client.get(link)
    return pe if isinstance(pe, dict) else None
