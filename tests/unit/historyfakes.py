"""Run folders shaped like the ones ``failover-tester run`` writes (summary.json, run.json, journal.jsonl), for the
history store and ``compare`` tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FEATURE = "Orders keep flowing when the orders job in the active data center stops"
NAME = "dc2 takes over when the orders job in dc1 is canceled"


def record(rto: float | None, *, name: str = NAME, feature: str = FEATURE, status: str = "passed",
           started_at: float = 1_796_500_000.0, repeat: int | None = None, lost: int = 0, duplicated: int = 0,
           unknown: int = 0, loss_window: float = 0.0, state_loss_window: float | None = 0.4) -> dict[str, Any]:
    """One scenario record as the judge writes it (the fields the store reads, and some it does not)."""
    down = None if rto is None else round(rto - 0.35, 3)
    out: dict[str, Any] = {
        "feature": feature, "name": name, "status": status, "tags": ["job-cancel", "smoke"],
        "started_at": started_at, "duration_s": 21.5, "fault": "job-cancel", "standby": "dc2", "rto_s": rto,
        "phases_s": {"down_detected": down, "takeover": None if down is None else round(down + 0.03, 3),
                     "first_output": rto, "throughput_recovered": rto},
        "lost": lost, "duplicated": duplicated, "unknown": unknown,
        "delivery": {"sent": 3000, "acknowledged": 2900, "lost": lost, "duplicated": duplicated, "unknown": unknown,
                     "loss_window_s": loss_window},
        "verdicts": [{"name": "recovery_time", "passed": status == "passed", "summary": "...",
                      "evidence": {"rto_s": rto}, "status": status}],
        "rpo": {"lost": lost, "loss_window_s": loss_window, "lost_state_updates": None,
                "state_loss_window_s": None},
    }
    if state_loss_window is not None:
        out["verdicts"].append({"name": "consistent_state", "passed": True, "summary": "...", "status": "passed",
                                "evidence": {"state_loss_window_s": state_loss_window, "keys_judged": 25}})
    if repeat is not None:
        out["repeat"] = repeat
    return out


def settings_event(t: float, name: str, dc: str, heartbeat: str) -> dict[str, Any]:
    files = {role: {"file": f"/run/xdc-lab/{dc}/crossdc/{role}.cfg", "heartbeatExchangeInterval": heartbeat,
                    "consecutiveHeartbeatMissesAllowed": "3"} for role in ("application", "standby")}
    return {"event": "toolkit.settings_in_force", "t": t, "scenario": name, "sid": "01-x", "dc": dc, "files": files}


def write_run(reports: Path, run_id: str, records: list[dict[str, Any]], *, heartbeat: str | None = "1.0",
              started_at: float | None = None, status: str | None = None, extra: dict[str, Any] | None = None,
              meta: dict[str, Any] | None = None) -> Path:
    """``reports/<run_id>/`` with summary.json, run.json and a journal holding each drill's settings events
    (``heartbeat``: the heartbeatExchangeInterval read back; None: no such events)."""
    folder = reports / run_id
    folder.mkdir(parents=True)
    start = started_at if started_at is not None else min(r["started_at"] for r in records) - 1
    failed = any(r["status"] in ("failed", "not judged") for r in records)
    summary = {
        "schema_version": 1, "run_id": run_id, "config": "config/lab.yaml", "target": "embedded-lab",
        "started_at": start, "finished_at": start + 100, "status": status or ("failed" if failed else "passed"),
        "totals": {"scenarios": len(records), "passed": sum(r["status"] == "passed" for r in records),
                   "failed": sum(r["status"] == "failed" for r in records), "skipped": 0,
                   "not_judged": sum(r["status"] == "not judged" for r in records)},
        "scenarios": records, **(extra or {}),
    }
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    (folder / "run.json").write_text(json.dumps({"run_id": run_id, "config": "config/lab.yaml",
                                                 "target": "embedded-lab", "started_at": start,
                                                 "tool_version": "0.14.0", **(meta or {})}))
    lines = []
    for r in records:
        lines.append({"event": "scenario.started", "t": r["started_at"], "scenario": r["name"]})
        if heartbeat is not None:
            lines += [settings_event(r["started_at"] + 0.5, r["name"], dc, heartbeat) for dc in ("dc1", "dc2")]
    (folder / "journal.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    return folder


def drills(rtos: list[float], *, start: float = 1_796_500_000.0, **fields: Any) -> list[dict[str, Any]]:
    """One record per RTO, repeats 1..N (no ``repeat`` field for a single one), a minute apart."""
    if len(rtos) == 1:
        return [record(rtos[0], started_at=start, **fields)]
    return [record(rto, started_at=start + 60 * k, repeat=k + 1, **fields) for k, rto in enumerate(rtos)]
