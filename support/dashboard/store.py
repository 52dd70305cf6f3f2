"""Reading the history store (:mod:`support.history.schema`) for the dashboard: read-only, columns by name.

The store's writer (``support.history``) may add columns at any time; this reader selects ``*`` and picks the
columns it knows by name, so an older or newer store reads the same way (a column it lacks reads as None).
A missing store file is an empty history, not an error: the dashboard says so.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.history.schema import PHASE_COLUMNS

__all__ = ["JSON_COLUMNS", "History", "percentile", "stats"]

#: columns that hold JSON text; read as parsed values (None when empty or not JSON)
JSON_COLUMNS = ("totals", "objectives", "toolkit_settings")

_RUN_COLUMNS = ("run_id", "started_at", "finished_at", "status", "config", "config_name", "target", "tool_version",
                "toolkit_settings", "repeat", "shard", "soak_id", "report_dir", "totals", "objectives", "score")
_DRILL_COLUMNS = ("run_id", "scenario", "repeat", "feature", "name", "status", "started_at", "duration_s", "fault",
                  "rto_s", *PHASE_COLUMNS, "lost", "duplicated", "unknown", "loss_window_s", "state_loss_window_s")


@dataclass(frozen=True)
class History:
    """The runs and drills of one store file, read afresh by every call (the store grows while we serve)."""

    path: Path

    def exists(self) -> bool:
        return self.path.is_file()

    def runs(self) -> list[dict[str, Any]]:
        """Every run, oldest first (by ``started_at``, then ``run_id``)."""
        rows = self._select("runs", _RUN_COLUMNS)
        return sorted(rows, key=lambda r: (_num(r["started_at"]), str(r["run_id"])))

    def drills(self) -> list[dict[str, Any]]:
        """Every drill, in order of its run's start, then the drill's own start and repeat."""
        starts = {r["run_id"]: _num(r["started_at"]) for r in self.runs()}
        rows = self._select("drills", _DRILL_COLUMNS)
        return sorted(rows, key=lambda d: (starts.get(d["run_id"], 0.0), str(d["run_id"]), _num(d["started_at"]),
                                           str(d["scenario"]), int(d["repeat"] or 1)))

    def _select(self, table: str, columns: tuple[str, ...]) -> list[dict[str, Any]]:
        if not self.exists():
            return []
        # read-only: the dashboard never writes, and must not create the file or lock the writer out
        con = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
        try:
            con.row_factory = sqlite3.Row
            try:
                found = con.execute(f"SELECT * FROM {table}").fetchall()  # table: one of two fixed names
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return []
                raise
        finally:
            con.close()
        rows = []
        for row in found:
            have = set(row.keys())
            item = {name: (row[name] if name in have else None) for name in columns}
            for name in JSON_COLUMNS:
                if name in item:
                    item[name] = _json(item[name])
            rows.append(item)
        return rows


def _json(text: Any) -> Any:
    if not isinstance(text, str) or not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else 0.0


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) of ``values`` by linear interpolation between closest ranks; None if
    empty."""
    data = sorted(values)
    if not data:
        return None
    rank = (len(data) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return data[low] + (data[high] - data[low]) * (rank - low)


def stats(values: list[Any]) -> dict[str, Any]:
    """n, min, p50, p95 and max of the numbers among ``values`` (None ones are not measured: left out)."""
    nums = [float(v) for v in values if isinstance(v, int | float)]
    return {"n": len(nums), "min": min(nums) if nums else None, "p50": percentile(nums, 50),
            "p95": percentile(nums, 95), "max": max(nums) if nums else None}
