"""The run summary: ``summary.json`` (validated by ``config/summary.schema.json``) and the console table.

Each scenario's record is appended to ``scenarios.jsonl`` as soon as the scenario ends, so a run that
crashes half way still yields a summary of what finished. ``summary.json`` also carries, per scenario,
the distributions of its measurements over the run's drills, the gates of the config judged on them and the
resilience score (:mod:`support.reporting.distributions`). ``summary.json`` and ``run.json`` are written
atomically (:func:`support.atomic.write_atomic`): a reader never sees half of one.
"""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import jsonschema

from support.atomic import write_atomic
from support.clocks import Clocks
from support.config.gates import Gate
from support.packaged import config_file
from support.reporting.distributions import FAILING, distributions, judge_gates, score

SCHEMA_PATH = config_file("summary.schema.json")
SCENARIOS_FILE = "scenarios.jsonl"
RUN_FILE = "run.json"


def scenario_key(record: dict[str, Any]) -> str:
    """A scenario's name across runs and repeats: ``"<feature> :: <scenario name>"``."""
    return f"{record.get('feature', '')} :: {record.get('name', '')}"


def append_scenario(run_dir: Path, record: dict[str, Any]) -> None:
    with (run_dir / SCENARIOS_FILE).open("a", encoding="utf-8") as out:
        out.write(json.dumps(record, default=str) + "\n")


def read_run_meta(run_dir: Path) -> dict[str, Any]:
    """``run.json`` (empty when there is none yet)."""
    path = run_dir / RUN_FILE
    return json.loads(path.read_text()) if path.exists() else {}


#: run.json is read, merged and written whole: one writer at a time (the clock probe writes from its own thread)
_RUN_META_LOCK = threading.Lock()


def write_run_meta(run_dir: Path, meta: dict[str, Any]) -> None:
    with _RUN_META_LOCK:
        _write_run_meta(run_dir, meta)


def _write_run_meta(run_dir: Path, meta: dict[str, Any]) -> None:
    merged = read_run_meta(run_dir)
    merged.update(meta)
    path = run_dir / RUN_FILE
    write_atomic(path, json.dumps(merged, indent=2, default=str))


def read_scenarios(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / SCENARIOS_FILE
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
    return records


def build_summary(run_dir: Path, exit_code: int | None = None) -> dict[str, Any]:
    meta_path = run_dir / RUN_FILE
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    scenarios = read_scenarios(run_dir)
    counts = {status: sum(1 for s in scenarios if s["status"] == status) for status in ("passed", "failed", "skipped")}
    counts["not_judged"] = sum(1 for s in scenarios if s["status"] == "not judged")
    counts["interrupted"] = sum(1 for s in scenarios if s["status"] == "interrupted")
    failed = counts["failed"] > 0 or counts["not_judged"] > 0 or (exit_code not in (None, 0))
    status = "failed" if failed or not scenarios else "passed"
    dists = distributions(scenarios, scenario_key)
    objectives = judge_gates([Gate.from_json(g) for g in meta.get("gates") or []], dists)
    if status == "passed" and any(o["status"] in FAILING for o in objectives):
        status = "failed"  # a gate on the distributions failed (or measured nothing)
    if counts["interrupted"] or meta.get("interrupted_by"):
        status = "interrupted"  # the run was stopped: whatever passed before, it is not a passed run
    clocks = Clocks.from_json(meta.get("clocks"))
    if clocks.end:
        scenarios = [with_drift(s, clocks) for s in scenarios]
    summary = {
        "schema_version": 1,
        "run_id": meta.get("run_id", run_dir.name),
        "config": meta.get("config", ""),
        "target": meta.get("target", ""),
        "started_at": meta.get("started_at"),
        "finished_at": meta.get("finished_at") or time.time(),
        "status": status,
        "totals": {"scenarios": len(scenarios), **counts},
        "scenarios": scenarios,
        "repeat": int(meta.get("repeat") or max((int(s.get("repeat") or 1) for s in scenarios), default=1)),
        "distributions": dists,
        "objectives": objectives,
        "score": score(objectives),
    }
    if meta.get("clocks"):
        summary["clocks"] = clocks.to_json()
    return summary


def with_drift(record: dict[str, Any], clocks: Clocks) -> dict[str, Any]:
    """A scenario record whose phases' and split-brain windows' ``error_bound_s`` also count how far the clocks
    they used drifted over the run (:meth:`~support.clocks.Clocks.drift_allowance`; known only once the run's end
    estimate is in)."""
    def drift(dcs: Any) -> float:
        return sum(clocks.drift_allowance(dc) for dc in dcs)

    recovery = record.get("recovery")
    if isinstance(recovery, dict) and recovery.get("clocks_used"):
        bounds = dict(recovery.get("error_bound_s") or {})
        for phase, dcs in recovery["clocks_used"].items():
            if isinstance(bounds.get(phase), int | float):
                bounds[phase] = round(bounds[phase] + drift(dcs), 6)
        record = {**record, "recovery": {**recovery, "error_bound_s": bounds}}
    split = record.get("split_brain")
    if isinstance(split, dict) and split.get("clocks_used") and isinstance(split.get("error_bound_s"), int | float):
        record = {**record, "split_brain": {**split,
                                            "error_bound_s": round(split["error_bound_s"] + drift(split["clocks_used"]),
                                                                   6)}}
    return record


def validate_summary(summary: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.validate(summary, schema)


def write_summary(run_dir: Path, exit_code: int | None = None) -> dict[str, Any]:
    summary = build_summary(run_dir, exit_code)
    validate_summary(summary)
    write_atomic(run_dir / "summary.json", json.dumps(summary, indent=2, default=str))
    return summary


#: the widest each column gets (scenario, status, RTO, lost, duplicated, unknown); longer text wraps onto the
#: lines below, whole (never cut)
COLUMN_WIDTHS = (56, 11, 24, 16, 16, 16)


def result_line(summary: dict[str, Any]) -> str:
    """The console's last line of a run: its status and counts."""
    totals = summary["totals"]
    interrupted = f", {totals['interrupted']} interrupted" if totals.get("interrupted") else ""
    return (f"result:   {summary['status']} ({totals['passed']} passed, {totals['failed']} failed, "
            f"{totals['not_judged']} not judged{interrupted})")


def summary_table(scenarios: Iterable[dict[str, Any]], widths: Sequence[int] = COLUMN_WIDTHS) -> str:
    """A plain-text table: scenario, status, RTO, lost, duplicated, unknown.

    Each number is shown as in ``report.html`` (:mod:`support.reporting.judged`): with its limit where the
    scenario judged it (``3.81 s ≤ 60 s``), "not checked" where it did not, "–" and the reason where it has no
    value. Text wider than its column (``widths``) wraps onto the lines below, whole.
    """
    from support.reporting.judged import shown

    scenarios = list(scenarios)
    header = ("Scenario", "Status", "RTO", "Lost", "Duplicated", "Unknown")
    rows = [[textwrap.wrap(cell, width, break_on_hyphens=False) or [""] for cell, width in zip(
        (str(s["name"]), str(s["status"]), *(shown(s, m).text() for m in ("rto", "lost", "duplicated", "unknown"))),
        widths, strict=True)] for s in scenarios]
    sizes = [max([len(header[i]), *(len(part) for row in rows for part in row[i])]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, sizes, strict=True)).rstrip()

    lines = [line(header), "  ".join("-" * w for w in sizes)]
    for row in rows:
        for k in range(max(len(cell) for cell in row)):
            lines.append(line([cell[k] if k < len(cell) else "" for cell in row]))
    return "\n".join(lines + expected_lines(scenarios))


def expected_lines(scenarios: Iterable[dict[str, Any]]) -> list[str]:
    """Below the table, a line per expected finding a scenario stated: found or not, with what was measured."""
    from support.reporting.judged import expectation

    found = [(str(s["name"]), v, expectation(v)) for s in scenarios for v in s.get("verdicts") or []]
    return ["", "Expected findings:", *(f"  {'found' if v.get('passed') else 'NOT FOUND'}: {name}: {text}"
                                       for name, v, text in found if text is not None)] \
        if any(text is not None for _, _, text in found) else []
