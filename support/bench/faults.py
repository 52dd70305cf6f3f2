"""Fault apply/revert latency benchmark: ``python -m support.bench.faults [--lab | --config F] [--out FILE]``.

``--lab`` holds the lab lock, brings the embedded lab up, measures it with config/lab.yaml and takes it down
(what ``make bench`` runs); ``--config F`` measures any configured pair as it is.

For each fault kind, inject -> verify -> heal -> verify healed, ``--repeat`` times, through the same
FaultSession the scenarios use (SSH to the DC hosts, REST). Apply latency = first command sent -> effect
proven; revert latency = heal sent -> return to normal proven (the journal's ``apply_s`` / ``revert_s``).
Writes median, p95, min and max per kind to ``reports/bench/faults.json``; the goal for network and
process faults is <= 200 ms each.

Latency faults are measured with a 50 ms delay: proving latency takes one delayed round trip
(2 x 50 ms) by definition. Faults that change the deployment (job cancel, instance stop, orderly
shutdown, a dark data center: its PEs relaunch and the standby may take over) restore it (active in the
first DC, standby in the second) after each round, outside the timing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from support.bench._lab import ROOT, lab_session
from support.config import ConfigError, load_config
from support.dchost import SnapshotStore, standby_stubs, start_instance
from support.deployment import AppSpec, Stubs, ensure_active_passive
from support.faults.base import FaultError
from support.faults.executor import ExecutorPool
from support.faults.session import FaultSession
from support.orchestration import CleanupStack, Journal
from support.streams.rest import StreamsRestClient
from support.waits import WaitTimeout, wait_until

GOAL_S = 0.2
#: label -> (fault kind, parameters ("{a}"/"{b}": the first two DCs), group)
PLAN: list[tuple[str, str, dict[str, Any], str]] = [
    ("partition", "partition", {"between": ("{a}", "{b}")}, "network"),
    ("partition-one-way", "partition", {"between": ("{a}", "{b}"), "one_way": True}, "network"),
    ("isolate", "isolate", {"dc": "{a}"}, "network"),
    ("latency-50ms", "latency", {"between": ("{a}", "{b}"), "delay": 0.05}, "network"),
    ("loss-30%", "loss", {"between": ("{a}", "{b}"), "probability": 0.3}, "network"),
    ("bandwidth-1mbit", "bandwidth", {"between": ("{a}", "{b}"), "rate": "1mbit"}, "network"),
    ("pe-kill", "pe-kill", {"dc": "{a}", "operator": "{operator}"}, "process"),
    ("pe-hang", "pe-hang", {"dc": "{a}", "operator": "{operator}"}, "process"),
    ("cpu", "cpu", {"dc": "{a}"}, "resource"),
    ("memory", "memory", {"dc": "{a}"}, "resource"),
    ("disk", "disk", {"dc": "{a}"}, "resource"),
    ("job-cancel", "job-cancel", {"dc": "{a}", "app": "{app}"}, "api"),
    ("instance-stop", "instance-stop", {"dc": "{a}"}, "api"),
    ("orderly-shutdown", "orderly-shutdown", {"dc": "{a}"}, "api"),
    ("heartbeat-cut", "heartbeat-cut", {"between": ("{a}", "{b}")}, "network"),
    ("replication-cut", "replication-cut", {"between": ("{a}", "{b}")}, "network"),
    ("pe-crash-loop", "pe-crash-loop", {"dc": "{a}", "operator": "{operator}"}, "process"),
    ("clients-cut", "clients-cut", {"dc": "{a}"}, "network"),
    ("dark", "dark", {"dc": "{a}"}, "datacenter"),
    ("snapshots-lost", "snapshots-lost", {"dc": "{b}"}, "store"),
    ("snapshots-corrupted", "snapshots-corrupted", {"dc": "{b}"}, "store"),
]
#: kinds after which the deployment is restored (a crash loop or a dark data center make the standby take over)
RESTORE = {"job-cancel", "instance-stop", "orderly-shutdown", "pe-crash-loop", "dark"}


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**names)
    if isinstance(value, tuple):
        return tuple(_fill(v, names) for v in value)
    return value


def summarize(values: Sequence[float]) -> dict[str, float | int]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered) + 0.5) - 1))]
    return {"n": len(ordered), "median": round(statistics.median(ordered), 4), "p95": round(p95, 4),
            "min": round(ordered[0], 4), "max": round(ordered[-1], 4)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m support.bench.faults", description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="config file (default config/lab.yaml or $FAILOVER_TESTER_CONFIG)")
    parser.add_argument("--lab", action="store_true",
                        help="bring the embedded lab up (holding the lab lock) with config/lab.yaml, down after")
    parser.add_argument("--out", default="reports/bench/faults.json")
    parser.add_argument("--repeat", type=int, default=10, help="rounds per network/process kind (default 10)")
    parser.add_argument("--slow-repeat", type=int, default=3, help="rounds per resource/API kind (default 3)")
    parser.add_argument("--app", default=None, help="application (default: the first configured)")
    parser.add_argument("--operator", default="Aggregator", help="operator whose PE is killed or hung")
    parser.add_argument("--only", action="append", default=[], help="bench only these kinds (repeatable)")
    args = parser.parse_args(argv)
    if args.lab:
        if args.config:
            parser.error("--lab measures the embedded lab with config/lab.yaml: leave out --config")
        with lab_session():
            return _measure(args, str(ROOT / "config" / "lab.yaml"))
    return _measure(args, args.config)


def _measure(args: argparse.Namespace, config_file: str | None) -> int:
    try:
        config = load_config(config_file)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    dcs = list(config.settings.datacenters)
    apps = list(config.settings.applications)
    if len(dcs) < 2 or not apps:
        print(f"{config.source}: datacenters: the benchmark needs two data centers and an application", file=sys.stderr)
        return 2
    app_name = args.app or apps[0]
    app = AppSpec.from_settings(config.settings.applications[app_name])
    names = {"a": dcs[0], "b": dcs[1], "operator": args.operator, "app": app_name}
    rest = {dc: StreamsRestClient.from_settings(config.settings, dc) for dc in dcs}
    journal = Journal(None, "bench")
    session = FaultSession(config, journal, CleanupStack(journal), rest)
    stubs = standby_stubs(session.pool, config.settings.faults.directory, journal)
    results: dict[str, Any] = {}
    failures = 0
    try:
        ensure_active_passive(rest, stubs, app, dcs[0], dcs[1], journal, timeout=120)
        for label, kind, params, group in PLAN:
            if args.only and label not in args.only and kind not in args.only:
                continue
            rounds = args.repeat if group in ("network", "process") else args.slow_repeat
            applied: list[float] = []
            reverted: list[float] = []
            errors: list[str] = []
            for _ in range(rounds):
                try:
                    if group == "store":
                        _await_snapshot(session.pool, _fill(params["dc"], names))
                    fault = session.inject(kind, **{k: _fill(v, names) for k, v in params.items()})
                    session.heal(fault)
                except FaultError as exc:
                    errors.append(str(exc)[:300])
                    session.heal_all()
                else:
                    applied.append(float(journal.events("fault.effective", id=fault.id)[-1].fields["apply_s"]))
                    reverted.append(float(journal.events("fault.healed", id=fault.id)[-1].fields["revert_s"]))
                if kind in RESTORE:
                    _restore(rest, stubs, session.pool, app, dcs, journal)
            entry: dict[str, Any] = {"kind": kind, "group": group, "apply_s": summarize(applied),
                                     "revert_s": summarize(reverted), "errors": errors}
            if group in ("network", "process") and applied:
                entry["goal_s"] = GOAL_S
                entry["goal_met"] = bool(entry["apply_s"]["p95"] <= GOAL_S and entry["revert_s"]["p95"] <= GOAL_S)
            failures += len(errors)
            results[label] = entry
            print(f"{label:<18} apply median {entry['apply_s'].get('median', '-')} s p95 "
                  f"{entry['apply_s'].get('p95', '-')} s | revert median {entry['revert_s'].get('median', '-')} s "
                  f"p95 {entry['revert_s'].get('p95', '-')} s" + (f" | {len(errors)} error(s)" if errors else ""),
                  flush=True)
    finally:
        session.heal_all()
        residue = session.audit()
        session.close()
        for client in rest.values():
            client.close()
    document = {
        "generated_at": time.time(),
        "config": str(config.source),
        "target": config.settings.name or "",
        "executor": "ssh" if any(config.settings.datacenters[dc].ssh for dc in dcs) else "local",
        "goal_s": GOAL_S,
        "kinds": results,
        "residue": residue,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"written {out}")
    return 1 if failures or residue else 0


#: the longest a store fault waits for the standby to hold a replicated snapshot (a fresh deployment replicates
#: its first one after a checkpoint period)
SNAPSHOT_WAIT_S = 60.0


def _await_snapshot(pool: ExecutorPool, dc: str) -> None:
    """Wait until ``dc``'s snapshot store holds a snapshot: the store faults need one to lose or corrupt, and the
    deployment restored after the API faults and a dark data center starts without any (it deletes the stored ones)."""
    info = pool.topology.dc(dc)
    if not info.snapshot_dir:
        raise FaultError(f"datacenters.{dc}.crossdc.snapshot_dir is not set: no store to damage")
    store = SnapshotStore(info.snapshot_dir, pool.get(info.primary_host))
    try:
        wait_until(store.newest, lambda newest: newest is not None, timeout=SNAPSHOT_WAIT_S, interval=0.2,
                   what=f"a replicated snapshot in {dc}'s store ({info.snapshot_dir})")
    except WaitTimeout as exc:
        raise FaultError(str(exc)) from None


def _restore(rest: dict[str, StreamsRestClient], stubs: Stubs, pool: ExecutorPool, app: AppSpec,
             dcs: list[str], journal: Journal) -> None:
    """A fresh active/passive deployment (the API faults leave the first DC's job canceled, stopped or
    shut down)."""
    client = rest[dcs[0]]
    instance = client.instance(refresh=True)
    if instance.get("status") != "running":
        start_instance(pool, dcs[0], str(instance.get("id")))
    ensure_active_passive(rest, stubs, app, dcs[0], dcs[1], journal, timeout=120, fresh=True)


if __name__ == "__main__":
    sys.exit(main())
