"""``failover-tester faults inject|list|clean`` and the fault plan of ``run --dry-run``.

Exit codes: 0 done, 1 a fault could not be injected/verified/healed (or hosts unreachable, residue left),
2 configuration problem or refused fault (one line on stderr), 3 refused because another run holds the pair's
lease (one line naming the holder; ``faults clean --force`` cleans anyway). ``inject`` and ``clean`` take the
lease (:mod:`support.lease`); ``list`` shows its holder; ``--dry-run`` touches nothing and takes none.
"""

from __future__ import annotations

import argparse
import base64
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from support.cli.common import load, rest_clients
from support.config import Config
from support.faults.base import FaultError, FaultRefused, Topology
from support.faults.executor import ExecutorPool, run_on_hosts
from support.faults.guard import Allowlist, list_script, sweep_script
from support.faults.session import KINDS, FaultSession, readable
from support.lease import Lease, LeaseError, LeaseHeld, acquire, describe, holder, host_holders, new_lease_id
from support.orchestration import CleanupStack, Journal
from support.redact import redacting
from support.units import format_seconds, parse_duration

__all__ = ["add_faults_parser", "add_parser", "faults_command", "plan_run"]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="config file (default config/lab.yaml or $FAILOVER_TESTER_CONFIG)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    parser.add_argument("--dry-run", action="store_true", help="print the commands for every host; touch nothing")


def add_parser(sub: Any) -> None:
    """Register ``faults`` (the verb registry of :mod:`support.cli` calls this)."""
    add_faults_parser(sub)


def add_faults_parser(sub: Any) -> None:
    faults = sub.add_parser("faults", help="inject, list or clean faults on the configured hosts")
    faults.set_defaults(func=faults_command)
    actions = faults.add_subparsers(dest="faults_action", required=True, metavar="{inject,list,clean}")
    inject = actions.add_parser("inject", help="inject one fault, hold it, heal it (the dead-man heals at the TTL)")
    inject.add_argument("kind", choices=list(KINDS), metavar="KIND", help=f"one of: {', '.join(KINDS)}")
    inject.add_argument("--between", nargs=2, metavar=("DC1", "DC2"), help="the two data centers (network faults)")
    inject.add_argument("--one-way", action="store_true", help="partition: drop only what DC1 sends to DC2")
    inject.add_argument("--dc", help="the data center (isolate, clients-cut, dark, process, resource, API and "
                        "snapshot store faults)")
    inject.add_argument("--delay", help="latency, e.g. 200ms")
    inject.add_argument("--jitter", help="latency jitter, e.g. 20ms")
    inject.add_argument("--percent", type=float, help="packet loss in percent, e.g. 30")
    inject.add_argument("--rate", help="bandwidth limit, e.g. 1mbit")
    inject.add_argument("--operator", help="operator whose PE to kill, hang or crash-loop, e.g. Aggregator")
    inject.add_argument("--app", help="application (job-cancel; narrows pe-kill/pe-hang/pe-crash-loop)")
    inject.add_argument("--job", help="job name (job-cancel)")
    inject.add_argument("--pairs", type=int,
                        help="heartbeat-cut, replication-cut: the toolkit's snapshot sender/receiver pairs "
                             "(numberOfHttpSenderReceiverPairs; default: from the applications' submission parameters)")
    inject.add_argument("--ttl", help="dead-man timer: the fault reverts itself after this long (default faults.ttl)")
    inject.add_argument("--duration", help="hold the fault this long, then heal (default: the TTL)")
    inject.add_argument("--detach", action="store_true",
                        help="return once the fault is verified; the dead-man timer heals it")
    _common(inject)
    _common(actions.add_parser("list", help="list the faults active on every configured host, and the lease"))
    clean = actions.add_parser("clean", help="remove everything tagged faults.tag from every configured host")
    clean.add_argument("--force", action="store_true",
                       help="clean even while another run holds the pair's lease (removes that run's faults)")
    _common(clean)


def _take_lease(config: Config, purpose: str, err: TextIO) -> tuple[Lease | None, int]:
    """The pair's lease for ``purpose``, or (None, exit code) with one line on ``err``."""
    try:
        return acquire(config.settings, purpose, new_lease_id()), 0
    except LeaseHeld as exc:
        print(f"{purpose}: refused: {exc}", file=err)
        return None, 3
    except LeaseError as exc:
        print(f"{purpose}: cannot take the pair's lease: {exc}", file=err)
        return None, 1


def _params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if args.between:
        params["between"] = tuple(args.between)
    if args.one_way:
        params["one_way"] = True
    if args.dc:
        params["dc"] = args.dc
    if args.delay:
        params["delay"] = parse_duration(args.delay)
    if args.jitter:
        params["jitter"] = parse_duration(args.jitter)
    if args.percent is not None:
        params["probability"] = args.percent / 100.0
    if args.rate:
        params["rate"] = args.rate
    if args.operator:
        params["operator"] = args.operator
    if args.app:
        params["app"] = args.app
    if args.job:
        params["job"] = args.job
    if args.pairs is not None:
        params["pairs"] = args.pairs
    return params


def faults_command(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    config = load(args, err)
    if config is None:
        return 2
    out, err = redacting(out, config.redact), redacting(err, config.redact)
    if args.faults_action == "inject":
        return _inject(args, config, out, err)
    return _sweep(args, config, out, err, clean=args.faults_action == "clean")


def _inject(args: argparse.Namespace, config: Config, out: TextIO, err: TextIO) -> int:
    try:
        params = _params(args)
        ttl = parse_duration(args.ttl) if args.ttl else None
        hold = parse_duration(args.duration) if args.duration else None
    except ValueError as exc:
        print(f"{config.source}: faults inject: {exc}", file=err)
        return 2
    limit = ttl if ttl is not None else config.settings.faults.ttl
    if hold is not None and hold > limit:
        print(f"{config.source}: faults inject: --duration {format_seconds(hold, None)} is longer than the TTL "
              f"{format_seconds(limit, None)} (the dead-man timer would heal first)", file=err)
        return 2
    journal = Journal(None, "faults inject")
    cleanup = CleanupStack(journal)
    rest = {} if args.dry_run else rest_clients(config)
    session = FaultSession(config, journal, cleanup, rest, dry_run=args.dry_run, out=out)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    lease: Lease | None = None
    try:
        if not args.dry_run:
            session.make(args.kind, **params)  # refuse bad names and parameters before taking the lease
            lease, code = _take_lease(config, "faults inject", err)
            if lease is None:
                return code
        fault = session.inject(args.kind, ttl=ttl, **params)
        if args.dry_run:
            return 0
        effective = journal.first("fault.effective")
        apply_s = effective.fields.get("apply_s") if effective else None
        ttl_text = format_seconds(fault.ttl, None)
        print(f"{fault.kind} {fault.id}: effective after {apply_s} s (dead-man TTL {ttl_text} on "
              f"{', '.join(fault.hosts()) or 'no host'}): {effective.fields.get('evidence') if effective else ''}",
              file=out, flush=True)
        if args.detach:
            print(f"{fault.kind} {fault.id}: detached; the dead-man timer heals it at the TTL "
                  "(or run: failover-tester faults clean)", file=out, flush=True)
            return 0
        held = hold if hold is not None else fault.ttl
        print(f"{fault.kind} {fault.id}: holding for {format_seconds(held, None)} (Ctrl-C heals now)", file=out,
              flush=True)
        stop.wait(held)  # holding the fault for the asked time is the command's job, not a wait for a condition
        session.heal(fault)
        healed = journal.first("fault.healed")
        print(f"{fault.kind} {fault.id}: healed after {healed.fields.get('revert_s') if healed else '?'} s: "
              f"{healed.fields.get('evidence') if healed else ''}", file=out, flush=True)
        return 0
    except FaultRefused as exc:
        print(f"{config.source}: faults inject {args.kind}: {exc}", file=err)
        return 2
    except FaultError as exc:
        print(f"faults inject {args.kind}: {exc}", file=err)
        problems = cleanup.run_all()
        for problem in problems:
            print(f"faults inject {args.kind}: cleanup: {problem}", file=err)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        session.close()
        for client in rest.values():
            client.close()
        if lease is not None:
            lease.release()


def _host_dirs(topology: Topology, host: str) -> list[str]:
    dc = topology.dc(topology.dc_of_host(host))
    return [dc.snapshot_dir] if dc.snapshot_dir else []


def _sweep(args: argparse.Namespace, config: Config, out: TextIO, err: TextIO, clean: bool) -> int:
    settings = config.settings.faults
    topology = Topology.from_settings(config.settings, str(config.source))
    hosts = list(topology.all_hosts())
    if not hosts:
        print(f"{config.source}: datacenters: no hosts declared (datacenters.<dc>.hosts)", file=err)
        return 2
    where = settings.directory
    scripts = {h: sweep_script(settings.tag, h, _host_dirs(topology, h), where) if clean
               else list_script(settings.tag, h, where) for h in hosts}
    if args.dry_run:
        for host, script in scripts.items():
            print(f"[dry run] {'clean' if clean else 'list'} on {host}:", file=out)
            print("\n".join(f"    {line}" for line in readable(script).rstrip().splitlines()), file=out)
        return 0
    lease: Lease | None = None
    if clean:
        lease, code = _take_lease(config, "faults clean", err)
        if lease is None and not (code == 3 and args.force):
            if code == 3:
                print("faults clean: --force cleans anyway (and removes the holder's faults under it)", file=err)
            return code
    pool = ExecutorPool(topology, Allowlist(topology), retries=settings.ssh_retries,
                        connect_timeout=settings.ssh_timeout, redact=config.redact)
    code = 0
    try:
        if not clean:
            _print_lease(config, pool, out)
        for host in hosts:
            try:
                result = run_on_hosts(pool, {host: scripts[host]}, what="clean" if clean else "list",
                                      check=False)[host]
            except FaultError as exc:
                print(f"{host}: unreachable: {exc}", file=err)
                code = 1
                continue
            if clean:
                cleaned = [line.removeprefix("CLEANED ") for line in result.stdout.splitlines()
                           if line.startswith("CLEANED ")]
                print(f"{host}: {'; '.join(cleaned) if cleaned else 'nothing to clean'}", file=out)
                session = FaultSession(config, Journal(None), CleanupStack(), {}, pool=pool)
                left = [line for line in session.audit() if f" {host}: " in f" {line}"]
                for line in left:
                    print(f"{host}: still there: {line}", file=err)
                code = code or (1 if left or not result.ok else 0)
            else:
                faults = [_meta(fields[0]) for fields in result.lines("FAULT") if fields]
                if not faults:
                    print(f"{host}: no faults active", file=out)
                for meta in faults:
                    expires = float(meta.get("created", 0)) + float(meta.get("ttl", 0))
                    left_s = max(0.0, expires - time.time())
                    fault_id = meta.get("key", "?").split("@", 1)[0]
                    print(f"{host}: {meta.get('summary', meta.get('kind'))} id {fault_id}, "
                          f"dead-man in {format_seconds(left_s, 0)}", file=out)
    finally:
        pool.close()
        if lease is not None:
            lease.release()
    return code


def _print_lease(config: Config, pool: ExecutorPool, out: TextIO) -> None:
    """``faults list``: who holds the pair's lease here and on each host (one line each), or that it is free."""
    try:
        local = holder(config.settings)
        remote = host_holders(config.settings, pool)
    except (LeaseError, FaultError) as exc:
        print(f"lease: cannot read: {exc}", file=out)
        return
    if local:
        print(f"lease: {describe(local, 'this machine')}", file=out)
    for host, record in remote.items():
        if isinstance(record, str):
            print(f"lease: {host}: cannot read: {record}", file=out)
        elif record is not None:
            expired = " [expired]" if float(record.get("expires") or 0) < time.time() else ""
            print(f"lease: {describe(record, host)}{expired}", file=out)
    if not local and not any(isinstance(r, dict) for r in remote.values()):
        print("lease: free", file=out)


def _meta(encoded: str) -> dict[str, str]:
    text = base64.b64decode(encoded).decode(errors="replace")
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


# ---------------------------------------------------------------------------------------- run --dry-run


class _PlanWorld:
    """Stands in for the World when planning: fault steps reach a dry-run FaultSession; nothing else runs."""

    def __init__(self, session: FaultSession) -> None:
        self.faults = session
        self.fault: Any = None

    def datacenter(self, name: str) -> str:
        return name

    def inject_fault(self, kind: str, **params: Any) -> Any:
        self.fault = self.faults.inject(kind, **params)
        return self.fault

    def cancel_job(self, app_name: str, dc: str) -> None:
        self.inject_fault("job-cancel", dc=dc, app=app_name)

    def heal_fault(self) -> None:
        self.faults.heal_last()


class _PlanContext:
    def __init__(self, world: _PlanWorld) -> None:
        self.world = world


def plan_run(config: Config, tags: Sequence[str], paths: Sequence[str], out: TextIO, err: TextIO) -> int:
    """``run --dry-run``: walk the selected scenarios and print, for each fault step, every command it would
    run on every host. Only fault steps are evaluated (against a dry-run session); nothing is touched."""
    from behave.parser import parse_file
    from behave.runner_util import load_step_modules
    from behave.step_registry import registry
    from behave.tag_expression import make_tag_expression

    from support.outline_names import install as install_outline_names
    from support.packaged import steps_dir

    install_outline_names()  # the rows named as in a real run

    if not registry.steps.get("when"):
        # the project's steps/ (its glue loads the tool's steps, plus any of its own), else the tool's steps
        load_step_modules([str(Path("steps").resolve() if Path("steps").is_dir() else steps_dir())])
    expression = make_tag_expression(list(tags)) if tags else None
    from support.cli.config import stop_condition_lines
    from support.cli.precheck import _feature_files, _selected

    for line in stop_condition_lines(config):
        print(line, file=out)
    planned = 0
    for file, lines in _feature_files(paths):  # folders, FILE and FILE:LINE (run --shard gives those)
        feature = parse_file(str(file))
        if feature is None:
            continue
        for scenario in _selected(feature.walk_scenarios(), lines):
            if expression is not None and not expression.check(scenario.effective_tags):
                continue
            print(f"\n{file}: {scenario.name}", file=out)
            session = FaultSession(config, Journal(None), CleanupStack(), {}, dry_run=True, out=out)
            context = _PlanContext(_PlanWorld(session))
            for step in scenario.all_steps:
                match = registry.find_match(step)
                if match is None:
                    print(f"  {step.keyword} {step.name}  (undefined step)", file=err)
                    return 2
                if not str(match.location.filename).endswith("fault_steps.py"):
                    print(f"  {step.keyword} {step.name}  (not a fault: not run)", file=out)
                    continue
                print(f"  {step.keyword} {step.name}", file=out)
                args = [a.value for a in match.arguments if a.name is None]
                kwargs = {a.name: a.value for a in match.arguments if a.name is not None}
                try:
                    match.func(context, *args, **kwargs)
                except FaultError as exc:
                    print(f"{file}: {scenario.name}: {step.name}: {exc}", file=err)
                    return 2
                planned += 1
    print(f"\n[dry run] {planned} fault step(s) planned; nothing was run", file=out)
    return 0

