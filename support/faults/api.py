"""Faults injected through the Streams REST management API."""

from __future__ import annotations

from dataclasses import dataclass, field

from support.orchestration import Journal
from support.streams.rest import StreamsRestClient
from support.waits import wait_until


@dataclass
class CancelJob:
    """Cancel a running job (``DELETE .../jobs/{id}``); effective once the job is no longer running.

    Healing a cancel is not undoing it: the application is expected to recover elsewhere. The scenario's
    cleanup restores the configured layout afterwards.
    """

    client: StreamsRestClient
    dc: str
    job_name: str
    journal: Journal
    kind: str = "job-cancel"
    job_id: str | None = field(default=None, init=False)

    def supports(self) -> bool:
        return self.client.find_job(self.job_name) is not None

    def inject(self) -> None:
        job = self.client.find_job(self.job_name)
        if job is None:
            raise AssertionError(f"no running job named {self.job_name} in {self.dc} to cancel")
        self.job_id = str(job["id"])
        self.journal.record("fault.injected", kind=self.kind, dc=self.dc, job=self.job_name, job_id=self.job_id)
        self.client.cancel_job(self.job_id)

    def verify(self, timeout: float = 30.0) -> None:
        wait_until(
            lambda: self.client.find_job(self.job_name),
            lambda job: job is None,
            timeout=timeout, interval=0.05, what=f"{self.job_name} gone from {self.dc}",
        )
        self.journal.record("fault.effective", kind=self.kind, dc=self.dc, job=self.job_name, job_id=self.job_id)

    def heal(self) -> None:
        """Nothing to revert: a canceled job stays canceled."""

    def verify_healed(self) -> None:
        """Nothing to check: see :meth:`heal`."""
