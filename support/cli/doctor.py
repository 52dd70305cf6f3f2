"""``failover-tester doctor``: what each configured host and data center can do, with advice.

Exit codes: 0 every host and REST API reachable, 1 something unreachable, 2 configuration problem.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from support.cli.common import load, rest_clients
from support.config import Config
from support.faults.base import Fault
from support.faults.core import Topology
from support.faults.executor import ExecutorPool
from support.faults.guard import Allowlist
from support.faults.probe import ADVICE, CapabilityProbe, doctor_table
from support.faults.session import KINDS
from support.metrics.prometheus import PrometheusClient
from support.redact import redacting
from support.stopconditions import PromQLCheck

__all__ = ["add_doctor_parser", "add_parser", "check_promql_conditions", "doctor_command", "fault_kinds_report"]


def add_parser(sub: Any) -> None:
    """Register ``doctor`` (the verb registry of :mod:`support.cli` calls this)."""
    add_doctor_parser(sub)


def add_doctor_parser(sub: Any) -> None:
    doctor = sub.add_parser("doctor", help="what each configured host can do (fault capabilities), with advice")
    doctor.add_argument("--config", help="config file (default config/lab.yaml or $FAILOVER_TESTER_CONFIG)")
    doctor.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    doctor.set_defaults(func=doctor_command)


def check_promql_conditions(config: Config, client: Callable[[], Any], out: TextIO) -> bool:
    """Ask Prometheus each PromQL stop condition once: one line each; False when one does not run (a parse
    error, Prometheus unreachable). A condition breached already, before any fault, is said too: it would abort
    the first fault of every scenario."""
    conditions = [c for c in config.settings.run.stop_conditions if c.promql is not None]
    if not conditions:
        return True
    prometheus = client()
    ok = True
    for condition in conditions:
        assert condition.promql is not None
        try:
            value = PromQLCheck(condition.label, condition.promql, prometheus).evaluate()
        except Exception as exc:
            ok = False
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            print(config.redact(f"doctor: stop condition {condition.label!r}: the query fails: {first}"), file=out)
            continue
        state = f"BREACHED already ({value}): it would abort at the first fault" if value else "not breached now"
        print(config.redact(f"doctor: stop condition {condition.label!r}: the query runs, {state}"), file=out)
    return ok


def fault_kinds_report(probe: CapabilityProbe, kinds: Mapping[str, type[Fault]] = KINDS) -> list[str]:
    """Which fault kinds every declared host can take, and for each one that some host cannot, the first
    capability it lacks there with the advice (from the kinds' ``requires``; REST-only kinds need no host)."""
    hosts = list(probe.topology.all_hosts())
    ready: list[str] = []
    lacking: list[str] = []
    for kind, cls in kinds.items():
        missing = [(host, probe.host(host).missing(cls.requires)) for host in hosts] if cls.requires else []
        first = next(((host, why) for host, why in missing if why), None)
        if first is None:
            ready.append(kind)
            continue
        host, why = first
        name = next(n for n in cls.requires if not probe.host(host).has(n))
        lacking.append(f"doctor: fault {kind}: not on {host}: {why} -> {ADVICE.get(name, '')}")
    return [f"doctor: fault kinds every host can take: {', '.join(ready) or 'none'}", *lacking]


def doctor_command(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    config = load(args, err)
    if config is None:
        return 2
    out, err = redacting(out, config.redact), redacting(err, config.redact)
    settings = config.settings.faults
    topology = Topology.from_settings(config.settings, str(config.source))
    pool = ExecutorPool(topology, Allowlist(topology), retries=min(settings.ssh_retries, 1),
                        connect_timeout=settings.ssh_timeout, redact=config.redact)
    rest = rest_clients(config)
    try:
        probe = CapabilityProbe(config, topology, pool, rest, settings)
        table, _ = doctor_table(probe)
        print(f"doctor: {config.settings.name or config.source} ({config.source})", file=out)
        print(table, file=out)
        for line in fault_kinds_report(probe):
            print(line, file=out)
        unreachable = [h for h in topology.all_hosts() if not probe.host(h).has("ssh")]
        no_rest = [dc for dc in topology.datacenters if not probe.dc(dc).has("rest")]
        prometheus = config.settings.metrics.prometheus
        promql_ok = check_promql_conditions(
            config, lambda: PrometheusClient.from_settings(prometheus) if prometheus else None, out)
        if unreachable or no_rest:
            print(f"doctor: unreachable: {', '.join([*unreachable, *(f'{dc} REST' for dc in no_rest)])}", file=out)
            return 1
        return 0 if promql_ok else 1
    finally:
        pool.close()
        for client in rest.values():
            client.close()
