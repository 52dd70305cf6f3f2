"""Faults through the Streams REST management API and the toolkit's special message port.

* ``job-cancel``: ``DELETE .../jobs/{id}``; effective once the job is no longer listed. Nothing to revert:
  a canceled job stays canceled; the scenario's cleanup restores the configured layout.
* ``instance-stop``: ``POST <instance>/actions {"type": "stop"}`` (the lab's extension; a real instance is
  stopped the same way through whatever the deployment offers); effective once the instance reports
  ``stopped``; heal = ``{"type": "start"}``. Its dead-man timer runs on the DC's first host: a ``curl`` of
  the start action with the instance's credentials, kept in a 0600 file under ``/run/<tag>`` until healed.
* ``orderly-shutdown``: the text line ``OrderlyShutdown`` sent from the DC host to the toolkit's
  SpecialMessagePort; effective once the other DC stops receiving the DC's heartbeats (its watchdog's input
  count stays still for three heartbeat intervals). Nothing to revert: the toolkit stays shut down until
  the application is restarted (the scenario's cleanup).
"""

from __future__ import annotations

import base64
import json
import shlex
import time
from pathlib import Path
from typing import Any

from support.config.settings import RestSettings
from support.faults.base import Fault, FaultContext, FaultError, Verified, now, poll
from support.faults.executor import run_on_hosts
from support.faults.guard import disarm_script
from support.streams.errors import StreamsError
from support.streams.rest import StreamsRestClient
from support.toolkit import WATCHDOG
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
        self.job_id: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"dc": self.dc, "job": self.job_name, **({"job_id": self.job_id} if self.job_id else {})}

    def prepare(self) -> None:
        job = self.client.find_job(self.job_name)
        if job is None:
            raise FaultError(f"no running job named {self.job_name} in {self.dc} to cancel")
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
            job = self.client.find_job(self.job_name)
            return job is None, f"{self.job_name} gone from {self.dc}" if job is None else (
                f"{self.job_name} job {job.get('id')} {job.get('status')}")

        return poll(check, timeout, f"{self.job_name} gone from {self.dc}", interval=0.05)

    def heal(self) -> None:
        """Nothing to revert: a canceled job stays canceled."""

    def heal_scripts(self) -> dict[str, str]:
        return {}

    def verify_healed(self, timeout: float) -> Verified:
        return Verified(now(), 0, "nothing to heal: the scenario's cleanup restores the layout")


class InstanceStop(_ApiFault):
    kind = "instance-stop"
    reversible = True

    def __init__(self, ctx: FaultContext, dc: str, fault_id: str | None = None) -> None:
        super().__init__(ctx, dc, fault_id)
        info = ctx.topology.dc(self.dc)
        self.host = info.hosts[0] if info.hosts and info.ssh is not None else None
        self.instance_url = f"<instance URL of {dc}>"

    def describe(self) -> dict[str, Any]:
        return {"dc": self.dc, **({"deadman_host": self.host} if self.host else {})}

    def hosts(self) -> list[str]:
        return [self.host] if self.host else []

    def supports(self, caps: Any) -> str | None:
        if self.host and not caps(self.host).has("curl"):
            return f"instance-stop needs curl on {self.host} for its dead-man timer: {caps(self.host).reason('curl')}"
        return None

    def prepare(self) -> None:
        instance = self.client.instance(refresh=True)
        self.instance_url = str(instance.get("self") or "")
        if not self.instance_url:
            raise FaultError(f"the {self.dc} instance has no self link")
        if instance.get("status") != "running":
            raise FaultError(f"the {self.dc} instance is {instance.get('status')}, not running")
        super().prepare()

    def _actions_url(self) -> str:
        return self.instance_url.rstrip("/") + "/actions"

    def _files(self) -> tuple[str, str]:
        host = self.host or ""
        return self.state_file(host, "curl"), self.state_file(host, "ca")

    def _rest_settings(self) -> RestSettings | None:
        return self.ctx.topology.dc(self.dc).rest

    def _curl_config(self) -> str:
        """curl config carrying the instance's credentials (secrets masked in a dry run)."""
        rest = self._rest_settings()
        auth = rest.auth if rest is not None else None
        if auth is not None and auth.type == "basic":
            secret = "***" if self.ctx.dry_run else str(auth.password or "")
            return f'user = "{auth.username}:{secret}"\n'
        if auth is not None and auth.type == "bearer":
            secret = "***" if self.ctx.dry_run else str(auth.token or "")
            return f'header = "Authorization: Bearer {secret}"\n'
        return ""

    def revert_scripts(self) -> dict[str, str]:
        if not self.host:
            return {}
        conf, ca = self._files()
        body = json.dumps({"type": "start"})
        return {self.host: (f"[ -s {ca} ] && __ca='--cacert {ca}' || __ca=''\n"
                            f"curl -sS --max-time 10 $__ca -K {conf} -H 'Content-Type: application/json' "
                            f"-X POST -d {shlex.quote(body)} {shlex.quote(self._actions_url())} >/dev/null\n")}

    def inject_scripts(self) -> dict[str, str]:
        if not self.host:
            return {}
        conf, ca = self._files()
        config_text = base64.b64encode(self._curl_config().encode()).decode()
        rest = self._rest_settings()
        ca_path = rest.ca_bundle if rest is not None else None
        ca_text = base64.b64encode(Path(ca_path).read_bytes()).decode() if ca_path and not self.ctx.dry_run else ""
        return {self.host: (f"(umask 077; printf %s {config_text} | base64 -d > {conf}; "
                            f"printf %s {shlex.quote(ca_text)} | base64 -d > {ca})\n")}

    def inject(self) -> None:
        super().inject()  # files and the dead-man timer on the DC host (when it has SSH)
        self.client._request("POST", self._actions_url(), json={"type": "stop"}, expected=(200, 202, 204))

    def _status(self) -> str:
        return str(self.client.instance(refresh=True).get("status"))

    def verify(self, timeout: float) -> Verified:
        def check() -> tuple[bool, str]:
            status = self._status()
            return status == "stopped", f"instance {self.dc} {status}"

        return poll(check, timeout, f"instance {self.dc} stopped", interval=0.05)

    def heal_scripts(self) -> dict[str, str]:
        if not self.host:
            return {}
        directory = self.ctx.settings.directory
        return {self.host: disarm_script(self.ctx.settings.tag, self.key(self.host), directory)
                + f"rm -f {directory}/{self.key(self.host)}.*\ntrue\n"}

    def heal(self) -> None:
        super().heal()  # disarm the dead-man timer, remove the credentials file
        if self.prepared:
            self.client._request("POST", self._actions_url(), json={"type": "start"}, expected=(200, 202, 204))

    def commands(self) -> list[tuple[str, str, str]]:
        return [*((phase, host, script) for phase, host, script in super().commands() if phase != "verify"),
                ("inject", f"REST {self.dc}", 'POST <instance>/actions {"type": "stop"}'),
                ("heal", f"REST {self.dc}", 'POST <instance>/actions {"type": "start"}')]

    def verify_healed(self, timeout: float) -> Verified:
        def check() -> tuple[bool, str]:
            status = self._status()
            return status == "running", f"instance {self.dc} {status}"

        return poll(check, timeout, f"instance {self.dc} running again", interval=0.05)


class OrderlyShutdown(_ApiFault):
    kind = "orderly-shutdown"
    requires = ("bash",)
    QUIET_INTERVALS = 3

    def __init__(self, ctx: FaultContext, dc: str, fault_id: str | None = None) -> None:
        super().__init__(ctx, dc, fault_id)
        info = ctx.topology.dc(self.dc)
        self.host = info.primary_host
        self.port = info.special_message_port
        self.others = [name for name in ctx.topology.datacenters if name != self.dc]
        self.heartbeat = 1.0

    def describe(self) -> dict[str, Any]:
        return {"dc": self.dc, "host": self.host, "port": self.port}

    def hosts(self) -> list[str]:
        return [self.host]

    def prepare(self) -> None:
        """Heartbeats from the DC must be arriving elsewhere now, or their stop could not prove anything."""
        self.heartbeat = self._heartbeat_interval()
        first = self._heartbeats_seen()
        poll(lambda: (self._heartbeats_seen() > first, f"heartbeats from {self.dc} seen elsewhere: {first}"),
             5 * self.heartbeat + 2.0, f"heartbeats from {self.dc} arriving in {', '.join(self.others)}",
             interval=0.1)
        super().prepare()

    def _heartbeat_interval(self) -> float:
        for job_name in self.ctx.topology.jobs:
            job = self.client.find_job(job_name)
            if job is None:
                continue
            for param in job.get("submitParameters") or []:
                if param.get("name") == "heartbeatExchangeInterval":
                    try:
                        return float(param.get("value"))
                    except (TypeError, ValueError):
                        break
        return 1.0

    def inject_scripts(self) -> dict[str, str]:
        return {self.host: f"printf 'OrderlyShutdown\\n' > /dev/tcp/{self.host}/{self.port} || exit 3\n"}

    def inject(self) -> None:
        run_on_hosts(self.ctx.executors, self.inject_scripts(), what=f"inject {self.kind}")

    def _heartbeats_seen(self) -> int:
        """Heartbeats the other DCs' watchdogs received so far (summed)."""
        total = 0
        found = False
        for other in self.others:
            client = self.ctx.rest.get(other)
            if client is None:
                continue
            for job_name in self.ctx.topology.jobs:
                job = client.find_job(job_name)
                if job is None:
                    continue
                try:
                    total += int(client.port_metrics(job, WATCHDOG, "input", 0).get("nTuplesProcessed", 0))
                    found = True
                except StreamsError:
                    continue
        if not found:
            raise FaultError(f"no toolkit watchdog in {', '.join(self.others)} to tell whether {self.dc} stopped "
                             "sending heartbeats")
        return total

    def verify(self, timeout: float) -> Verified:
        quiet = self.QUIET_INTERVALS * self.heartbeat
        last = [self._heartbeats_seen(), time.monotonic(), time.time()]

        def check() -> tuple[bool, str]:
            count = self._heartbeats_seen()
            if count != last[0]:
                last[:] = [count, time.monotonic(), time.time()]
            still = time.monotonic() - last[1]
            return still >= quiet, (f"heartbeats from {self.dc} seen elsewhere: {count}, "
                                    f"unchanged for {format_seconds(still, 1)}")

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
