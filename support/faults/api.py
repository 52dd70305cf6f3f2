"""Faults through the Streams REST management API and the toolkit's special message port.

* ``job-cancel``: ``DELETE .../jobs/{id}``; effective once the job is no longer listed. Nothing to revert:
  a canceled job stays canceled; the scenario's cleanup restores the configured layout.
* ``instance-stop``: ``streamtool stopinstance -i <instance> --force`` on the DC's first host (the documented
  way; REST has no instance action); effective once the instance reports ``stopped``; heal and dead-man timer:
  ``streamtool startinstance -i <instance>`` there.
* ``orderly-shutdown``: the text line ``OrderlyShutdown`` sent from the DC host to the toolkit's
  SpecialMessagePort; effective once the other DC stops receiving the DC's heartbeats (its watchdog's input
  count stays still for three heartbeat intervals). Nothing to revert: the toolkit stays shut down until
  the application is restarted (the scenario's cleanup).
"""

from __future__ import annotations

import shlex
import time
from typing import Any

from support.dchost import lookup_special_port, parse_config
from support.faults.base import Fault, FaultContext, FaultError, Verified, now, poll
from support.faults.executor import run_on_hosts
from support.streams.errors import StreamsError
from support.streams.rest import StreamsRestClient
from support.units import format_seconds

__all__ = ["CancelJob", "InstanceStop", "OrderlyShutdown"]


class _ApiFault(Fault):
    reversible = False

    def __init__(self, ctx: FaultContext, dc: str, fault_id: str | None = None) -> None:
        super().__init__(ctx, fault_id)
        self.dc = ctx.allowlist.check_dc(dc)

    @property
    def client(self) -> StreamsRestClient:
        client = self.ctx.rest.get(self.dc)
        if client is None:
            raise FaultError(f"no REST client for {self.dc}")
        return client

    def hosts(self) -> list[str]:
        return []

    def inject_scripts(self) -> dict[str, str]:
        return {}


class CancelJob(_ApiFault):
    """Cancel a running job; effective once the job is no longer listed as running."""

    kind = "job-cancel"

    def __init__(self, ctx: FaultContext, dc: str, app: str | None = None, job: str | None = None,
                 fault_id: str | None = None) -> None:
        super().__init__(ctx, dc, fault_id)
        if app is None and job is None:
            raise FaultError("job-cancel needs an application (app=...) or a job name (job=...)")
        self.job_name = ctx.allowlist.check_application(app) if app else str(job)
        ctx.allowlist.check_job(dc, self.job_name)
        self.main_composite = ctx.topology.composites.get(self.job_name)
        self.job_id: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"dc": self.dc, "job": self.job_name, **({"job_id": self.job_id} if self.job_id else {})}

    def prepare(self) -> None:
        job = self.client.find_app_job(self.job_name, self.main_composite)
        if job is None:
            raise FaultError(f"no running job of {self.job_name} in {self.dc} to cancel")
        self.job_id = str(job["id"])
        super().prepare()

    def inject(self) -> None:
        if self.job_id is None:
            self.prepare()
        self.client.cancel_job(self.job_id or "")

    def commands(self) -> list[tuple[str, str, str]]:
        return [("inject", f"REST {self.dc}", f"DELETE <instance>/jobs/<id of the running {self.job_name} job>")]

    def verify(self, timeout: float) -> Verified:
        def check() -> tuple[bool, str]:
            # a real DELETE answers while the job is still `canceling`: effective once the job is gone
            if self.job_id is not None and not self.client.job_gone(self.job_id):
                return False, f"{self.job_name} job {self.job_id} still canceling"
            job = self.client.find_app_job(self.job_name, self.main_composite)
            return job is None, f"{self.job_name} gone from {self.dc}" if job is None else (
                f"{self.job_name} job {job.get('id')} {job.get('status')}")

        return poll(check, timeout, f"{self.job_name} gone from {self.dc}", interval=0.02)

    def heal(self) -> None:
        """Nothing to revert: a canceled job stays canceled."""

    def heal_scripts(self) -> dict[str, str]:
        return {}

    def verify_healed(self, timeout: float) -> Verified:
        return Verified(now(), 0, "nothing to heal: the scenario's cleanup restores the layout")


class InstanceStop(_ApiFault):
    """``streamtool stopinstance`` on the data center's first host (the documented way: the REST API has no
    instance action); effective once REST reports the instance ``stopped``; heal and dead-man timer =
    ``streamtool startinstance`` there (no credentials travel: streamtool uses the host user's own)."""

    kind = "instance-stop"
    reversible = True
    requires = ("bash", "streamtool")

    def __init__(self, ctx: FaultContext, dc: str, fault_id: str | None = None) -> None:
        super().__init__(ctx, dc, fault_id)
        info = ctx.topology.dc(self.dc)
        self.host = info.primary_host
        self.streamtool = info.streamtool
        self.instance_id = (info.rest.instance if info.rest is not None else None) or f"<instance id of {dc}>"

    def describe(self) -> dict[str, Any]:
        return {"dc": self.dc, "host": self.host, "instance": self.instance_id}

    def hosts(self) -> list[str]:
        return [self.host]

    def prepare(self) -> None:
        instance = self.client.instance(refresh=True)
        self.instance_id = str(instance.get("id") or self.instance_id)
        if instance.get("status") != "running":
            raise FaultError(f"the {self.dc} instance is {instance.get('status')}, not running")
        super().prepare()

    def _streamtool(self, verb: str, *more: str) -> str:
        return " ".join([shlex.quote(self.streamtool), verb, "-i", shlex.quote(self.instance_id), *more])

    def inject_scripts(self) -> dict[str, str]:
        return {self.host: self._streamtool("stopinstance", "--force") + "\n"}

    def revert_scripts(self) -> dict[str, str]:
        return {self.host: self._streamtool("startinstance") + " >/dev/null\n"}

    def _status(self) -> str:
        return str(self.client.instance(refresh=True).get("status"))

    def verify(self, timeout: float) -> Verified:
        def check() -> tuple[bool, str]:
            status = self._status()
            return status == "stopped", f"instance {self.dc} {status}"

        return poll(check, timeout, f"instance {self.dc} stopped", interval=0.02)

    def verify_healed(self, timeout: float) -> Verified:
        def check() -> tuple[bool, str]:
            status = self._status()
            return status == "running", f"instance {self.dc} {status}"

        return poll(check, timeout, f"instance {self.dc} running again", interval=0.05)


class OrderlyShutdown(_ApiFault):
    """``OrderlyShutdown`` as a text line to the application's SpecialMessagePort (its address from the name
    service, or the configured port), sent from the DC's first host. Effective once the DC's own toolkit stops
    handing heartbeats to its sender (``<alias>.CrossDataCenterSender1`` input count still for three heartbeat
    intervals): the remote side may be a standalone stub that REST does not see. The interval is the one in
    force: the application's config file where configured, else measured from that counter."""

    kind = "orderly-shutdown"
    requires = ("bash",)
    QUIET_INTERVALS = 3
    SENDER = "CrossDataCenterSender1"

    def __init__(self, ctx: FaultContext, dc: str, fault_id: str | None = None) -> None:
        super().__init__(ctx, dc, fault_id)
        self.info = ctx.topology.dc(self.dc)
        self.host = self.info.primary_host
        self.port: int | None = self.info.special_message_port
        self.target = self.host
        self.heartbeat = 1.0
        self.heartbeat_source = "not read yet"
        self.job: dict[str, Any] | None = None

    def describe(self) -> dict[str, Any]:
        return {"dc": self.dc, "host": self.host, "port": self.port if self.port is not None else "name service",
                "heartbeat": self.heartbeat_source}

    def hosts(self) -> list[str]:
        return [self.host]

    def prepare(self) -> None:
        """Find the application's job, its SpecialMessagePort and the heartbeat interval in force; the DC's
        heartbeats must be flowing now, or their stop could not prove anything."""
        for job_name in self.ctx.topology.jobs:
            self.job = self.client.find_app_job(job_name, self.ctx.topology.composites.get(job_name))
            if self.job is not None:
                break
        if self.job is None:
            raise FaultError(f"no application job runs in {self.dc} to shut down in an orderly way")
        self.target, self.port = lookup_special_port(self.info, self.ctx.executors.get(self.host), str(self.job["id"]))
        first = self._sent()
        self.heartbeat, self.heartbeat_source = self._heartbeat_interval(first)
        super().prepare()

    def _heartbeat_interval(self, first: tuple[int, float]) -> tuple[float, str]:
        path = self.info.config_files.get("application")
        if path:
            text = self.ctx.executors.get(self.host).run(f"cat -- {shlex.quote(path)}", timeout=10)
            value = parse_config(text.stdout).get("heartbeatExchangeInterval") if text.ok else None
            try:
                if value is not None and float(value) > 0:
                    return float(value), f"{value} s from {path}"
            except ValueError:
                pass
        # not configured here: measure it, two sends apart
        seen = [first]

        def check() -> tuple[bool, str]:
            count, at = self._sent()
            if count != seen[-1][0]:
                seen.append((count, at))
            return len(seen) >= 3, f"heartbeats handed to {self.dc}'s sender: {count}"

        poll(check, 60.0, f"two heartbeats from {self.dc}'s toolkit (to measure their interval)", interval=0.05)
        interval = (seen[-1][1] - seen[1][1]) / max(1, seen[-1][0] - seen[1][0])
        return interval, f"{format_seconds(interval, 2)} measured from {self.SENDER}"

    def _sent(self) -> tuple[int, float]:
        """Messages the DC's toolkit handed to its heartbeat sender so far, and when that was read."""
        assert self.job is not None
        alias = self.ctx.topology.aliases.get(str(self.job.get("name")), "CrossDCFailover")
        try:
            metrics = self.client.port_metrics(self.job, f"{alias}.{self.SENDER}", "input", 0)
        except StreamsError as exc:
            raise FaultError(f"cannot read {alias}.{self.SENDER} in {self.dc} to tell whether its toolkit stopped "
                             f"sending heartbeats: {exc}") from exc
        return int(metrics.get("nTuplesProcessed", 0)), time.monotonic()

    def inject_scripts(self) -> dict[str, str]:
        port = self.port if self.port is not None else "<SpecialMessagePort from the name service>"
        return {self.host: f"printf 'OrderlyShutdown\\n' > /dev/tcp/{shlex.quote(str(self.target))}/{port} || exit 3\n"}

    def inject(self) -> None:
        run_on_hosts(self.ctx.executors, self.inject_scripts(), what=f"inject {self.kind}")

    def verify(self, timeout: float) -> Verified:
        quiet = self.QUIET_INTERVALS * self.heartbeat
        count, at = self._sent()
        last = [count, at, time.time()]

        def check() -> tuple[bool, str]:
            count, at = self._sent()
            if count != last[0]:
                last[:] = [count, at, time.time()]
            still = time.monotonic() - last[1]
            return still >= quiet, (f"heartbeats handed to {self.dc}'s sender: {count}, unchanged for "
                                    f"{format_seconds(still, 1)}")

        verified = poll(check, timeout,
                        f"{self.dc}'s toolkit shut down (no heartbeats for {format_seconds(quiet, None)})",
                        interval=0.1)
        return Verified(verified.at, verified.probes, verified.evidence, since=(float(last[2]), float(last[1])))

    def heal(self) -> None:
        """Nothing to revert: the scenario's cleanup restarts the application."""

    def heal_scripts(self) -> dict[str, str]:
        return {}

    def verify_healed(self, timeout: float) -> Verified:
        return Verified(now(), 0, "nothing to heal: the scenario's cleanup restores the layout")
