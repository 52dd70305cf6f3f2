"""Faults injected through the Streams REST management API."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

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
    _returned: tuple[float, float] | None = field(default=None, init=False)

    def supports(self) -> bool:
        return self.client.find_job(self.job_name) is not None

    def inject(self) -> None:
        job = self.client.find_job(self.job_name)
        if job is None:
            raise AssertionError(f"no running job named {self.job_name} in {self.dc} to cancel")
        self.job_id = str(job["id"])
        self.journal.record("fault.injected", kind=self.kind, dc=self.dc, job=self.job_name, job_id=self.job_id)
        self.client.cancel_job(self.job_id)
        self._returned = (time.time(), time.monotonic())

    def verify(self, timeout: float = 30.0) -> None:
        """Wait until the job is no longer listed. If it was already gone at the first look, the fault took
        effect when the cancel request returned; otherwise when the job was first seen gone."""
        probes = 0

        def probe() -> dict[str, Any] | None:
            nonlocal probes
            probes += 1
            return self.client.find_job(self.job_name)

        wait_until(probe, lambda job: job is None, timeout=timeout, interval=0.05,
                   what=f"{self.job_name} gone from {self.dc}")
        at = self._returned if probes == 1 else None
        self.journal.record("fault.effective", at=at, kind=self.kind, dc=self.dc, job=self.job_name,
                            job_id=self.job_id)

    def heal(self) -> None:
        """Nothing to revert: a canceled job stays canceled."""

    def verify_healed(self) -> None:
        """Nothing to check: see :meth:`heal`."""
