"""The lab's console views: `lab status` (from `control.collect_status`) and `lab logs`.

Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import sys
from typing import Any

from lab import paths, prometheus
from lab.control import collect_status


def status(as_json: bool) -> int:
    doc = collect_status()
    if as_json:
        print(json.dumps(doc, indent=2))
        return 0 if doc["healthy"] else 1
    print(
        f"lab: {'up' if doc['up'] else 'not up'}; {'healthy' if doc['healthy'] else 'NOT healthy'}"
        + (f"; defects: {','.join(doc['defects'])}" if doc["defects"] else "")
        + (
            f"; Prometheus scrapes every {prometheus.duration(doc['scrape_interval_s'])}"
            if doc["scrape_interval_s"]
            else ""
        )
    )
    sb = doc["standby"]
    print(
        f"  deployment {doc['deployment']} of {doc['app']}; fencing {'on' if doc['fencing'] else 'off'}; "
        f"failover script {doc['failover_script']}"
        + (
            f"; passive stub in {sb['dc']}: pid {sb['pid']} {'alive' if sb['alive'] else 'ended'} "
            f"(runs {sb['script_path']} on DOWN)"
            if sb
            else ""
        )
    )
    bm = doc["bastion"]
    print(
        f"  ssh: bastion mode {'ON: DC hosts port 22 only from the bastion ' + bm['address'] if bm['mode'] else 'off'}"
        + (f" (rules {bm['rules']})" if "rules" in bm else "")
        + f"; fault user {bm['fault_user']} (sudo -n)"
    )
    for ns, ok in doc["network"].items():
        print(f"  netns {ns:<11} {'present' if ok else 'absent'}")
    print(f"  route {doc['route']}")
    cg = doc["cgroups"]
    print(
        f"  cgroups v1 available: {cg['available']}; lab groups: {len(cg['dirs'])}"
        + (f" ({cg['note']})" if "note" in cg else "")
    )
    _print_cgroup_limits(cg)
    for name, comp in doc["components"].items():
        if comp.get("kind"):
            _print_part(name, comp)
            continue
        life = "alive" if comp["alive"] else "DEAD"
        print(f"  {name:<14} pid {comp['pid']:<8} {life}  rest: {comp.get('rest', '-')}")
        for j in comp.get("jobs", []):
            print(f"      job {j['id']:<4} {j['name']:<16} {j['status']:<10} {j['health']}")
    return 0 if doc["healthy"] else 1


def _print_cgroup_limits(cg: dict[str, Any]) -> None:
    for dc, current in cg.get("current", {}).items():
        members = cg.get("members", {}).get(dc, {})
        limits = ", ".join(f"{k}={v}" for k, v in current.items()) or "none"
        print(f"    {dc}: {limits}; processes per group {members}")


def _print_part(name: str, comp: dict[str, Any]) -> None:
    life = "alive" if comp["alive"] else "DEAD"
    print(f"  {name:<14} pid {comp['pid']:<8} {life}  {comp['kind']}: {comp['health']}  {comp.get('endpoint', '')}")


def logs(component: str | None) -> int:
    d = paths.logs_dir()
    comps = sorted(p.stem for p in d.glob("*.log")) if d.exists() else []
    pe_comps = []
    for dc in paths.DCS:
        pd = paths.pes_dir(dc)
        if pd.exists():
            pe_comps += [f"{dc}-pe{p.name}" for p in sorted(pd.iterdir(), key=lambda p: int(p.name))]
    if component is None:
        print("components: " + " ".join([*comps, *pe_comps, "truth"]))
        return 0
    if component == "truth":
        files = [paths.truth_file()]
    elif component in comps:
        files = [d / f"{component}.log"]
    elif component in pe_comps:
        dc, pe = component.split("-pe")
        files = [paths.pes_dir(dc) / pe / "console.log", paths.pes_dir(dc) / pe / "trace.log"]
    else:
        print(
            f"lab: no component {component!r}; known: {' '.join([*comps, *pe_comps, 'truth'])}",
            file=sys.stderr,
        )
        return 2
    for f in files:
        if len(files) > 1:
            print(f"==> {f} <==")
        with contextlib.suppress(FileNotFoundError):
            sys.stdout.write(f.read_text(errors="replace"))
    return 0
