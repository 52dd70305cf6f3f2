"""The history store: every run recorded in one SQLite file (layout: :mod:`support.history.schema`).

:func:`record_run` reads a finished run's folder (``summary.json``, ``run.json`` and the journal's
``toolkit.settings_in_force`` events) and writes its ``runs`` row and one ``drills`` row per scenario record,
replacing whatever the store held for that run id (recording a run twice, or again after ``failover-tester
judge``, leaves one up-to-date copy). :func:`rebuild` records every run folder under a reports folder again.

Several processes may write at once (two runs finishing together, a rebuild during a run): the file is in WAL
mode, every connection waits up to :data:`BUSY_TIMEOUT_S` for a lock, and each run is written in one
``BEGIN IMMEDIATE`` transaction, so a reader sees a run wholly or not at all and writers queue instead of failing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from support.history.schema import DDL, PHASE_COLUMNS, SCHEMA_VERSION, default_db_path
from support.reporting.summary import RUN_FILE, scenario_key

__all__ = ["BUSY_TIMEOUT_S", "DRILL_COLUMNS", "RUN_COLUMNS", "HistoryError", "RebuildResult", "connect",
           "drill_rows", "find_run", "list_runs", "note_run", "read_run", "rebuild", "record_run", "run_drills",
           "scenario_series", "write_runs"]

#: how long a connection waits for another writer before giving up
BUSY_TIMEOUT_S = 30.0
SUMMARY_FILE = "summary.json"
JOURNAL_FILE = "journal.jsonl"
SETTINGS_EVENT = "toolkit.settings_in_force"

RUN_COLUMNS = ("run_id", "started_at", "finished_at", "status", "config", "config_name", "target", "tool_version",
               "toolkit_settings", "repeat", "shard", "soak_id", "report_dir", "totals", "objectives", "score")
DRILL_COLUMNS = ("run_id", "scenario", "repeat", "feature", "name", "status", "started_at", "duration_s", "fault",
                 "rto_s", *PHASE_COLUMNS, "lost", "duplicated", "unknown", "loss_window_s", "state_loss_window_s",
                 "toolkit_settings")


class HistoryError(Exception):
    """A run folder that cannot be recorded (one line: which file and why)."""


@dataclass
class RecordedRun:
    """One run as the store holds it: its ``runs`` row and its ``drills`` rows (column name → value)."""

    run: dict[str, Any]
    drills: list[dict[str, Any]] = field(default_factory=list)
    #: a merged run (``report merge``): the run ids of its shards, whose own entries it replaces
    replaces: tuple[str, ...] = ()


@dataclass
class RebuildResult:
    """What :func:`rebuild` did: the run ids recorded, and (folder, reason) of each folder it skipped."""

    recorded: list[str] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


@contextlib.contextmanager
def connect(db: Path | str) -> Iterator[sqlite3.Connection]:
    """An open connection to the store at ``db`` (made, with its tables, if missing), closed on exit. Rows come
    back as :class:`sqlite3.Row`; transactions are explicit (``BEGIN IMMEDIATE`` ... ``COMMIT``)."""
    path = Path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
            _set_up(conn, path.parent)
        yield conn
    finally:
        conn.close()


def _set_up(conn: sqlite3.Connection, folder: Path) -> None:
    """WAL mode and the tables, once per file. Processes set up one at a time (an exclusive ``flock`` on the
    store's folder): switching to WAL can fail at once with "database is locked" when another connection is doing
    the same, the busy timeout notwithstanding."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if conn.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
            return  # another process did it while this one waited
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(DDL):  # not executescript: it would commit first
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        os.close(fd)  # and with it the flock


def _statements(script: str) -> list[str]:
    """The SQL statements of ``script``, one each."""
    out, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    return out


# -- reading a run folder -------------------------------------------------------------------------------------------

def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HistoryError(f"{path}: not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HistoryError(f"{path}: unreadable ({str(exc).splitlines()[0][:120]})") from None


def _settings_events(run_dir: Path) -> list[dict[str, Any]]:
    """The journal's ``toolkit.settings_in_force`` events, in order ([] without a journal)."""
    events: list[dict[str, Any]] = []
    try:
        with (run_dir / JOURNAL_FILE).open(encoding="utf-8", errors="replace") as journal:
            for line in journal:
                if SETTINGS_EVENT not in line:
                    continue
                with contextlib.suppress(json.JSONDecodeError):
                    event = json.loads(line)
                    if isinstance(event, dict) and event.get("event") == SETTINGS_EVENT:
                        events.append(event)
    except OSError:
        pass
    return events


def _settings_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The settings the first layout among ``events`` read back: data center → files → key → value."""
    out: dict[str, Any] = {}
    for event in events:
        dc = str(event.get("dc", ""))
        if dc in out:
            break  # the next layout begins
        out[dc] = event.get("files") or {}
    return out


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _state_loss_window(record: Mapping[str, Any]) -> float | None:
    for verdict in record.get("verdicts") or []:
        if isinstance(verdict, Mapping) and verdict.get("name") == "consistent_state":
            value = _number((verdict.get("evidence") or {}).get("state_loss_window_s"))
            if value is not None:
                return value
    return _number((record.get("rpo") or {}).get("state_loss_window_s"))


def drill_rows(run_id: str, records: list[dict[str, Any]], events: list[dict[str, Any]] | None = None
               ) -> list[dict[str, Any]]:
    """The ``drills`` rows of a run's scenario records. A drill's toolkit settings are the settings events of its
    scenario journaled between its start and the next start of the same scenario. Two records with the same
    scenario key and repeat (a feature that names two scenarios alike) are kept both: the later gets the next free
    repeat number."""
    events = events or []
    rows: list[dict[str, Any]] = []
    taken: set[tuple[str, int]] = set()
    starts: dict[str, list[float]] = {}
    for record in records:
        if _number(record.get("started_at")) is not None:
            starts.setdefault(str(record.get("name", "")), []).append(float(record["started_at"]))
    for values in starts.values():
        values.sort()
    for record in records:
        key = scenario_key(record)
        repeat = _count(record.get("repeat")) or 1
        while (key, repeat) in taken:
            repeat += 1
        taken.add((key, repeat))
        name = str(record.get("name", ""))
        started = _number(record.get("started_at"))
        mine: list[dict[str, Any]] = []
        if started is not None:
            later = [t for t in starts.get(name, []) if t > started]
            until = later[0] if later else float("inf")
            mine = [e for e in events if e.get("scenario") == name
                    and started <= (_number(e.get("t")) or 0.0) < until]
        phases = record.get("phases_s") or {}
        delivery = record.get("delivery") or {}
        rows.append({
            "run_id": run_id, "scenario": key, "repeat": repeat, "feature": record.get("feature"), "name": name,
            "status": record.get("status"), "started_at": started, "duration_s": _number(record.get("duration_s")),
            "fault": record.get("fault"), "rto_s": _number(record.get("rto_s")),
            **{column: _number(phases.get(column.removesuffix("_s"))) for column in PHASE_COLUMNS},
            "lost": _count(record.get("lost")), "duplicated": _count(record.get("duplicated")),
            "unknown": _count(record.get("unknown")),
            "loss_window_s": _number(delivery.get("loss_window_s", (record.get("rpo") or {}).get("loss_window_s"))),
            "state_loss_window_s": _state_loss_window(record),
            "toolkit_settings": json.dumps(_settings_of(mine), sort_keys=True),
        })
    return rows


def read_run(run_dir: Path) -> RecordedRun:
    """What the store records of the run in ``run_dir`` (HistoryError when its summary.json is missing or
    unreadable; run.json and the journal are optional)."""
    summary = _read_json(run_dir / SUMMARY_FILE)
    if not isinstance(summary, dict) or not isinstance(summary.get("scenarios", []), list):
        raise HistoryError(f"{run_dir / SUMMARY_FILE}: not a run summary")
    meta_path = run_dir / RUN_FILE
    meta = _read_json(meta_path) if meta_path.exists() else {}
    if not isinstance(meta, dict):
        meta = {}
    run_id = str(summary.get("run_id") or meta.get("run_id") or run_dir.name)
    events = _settings_events(run_dir)
    config = str(summary.get("config") or meta.get("config") or "")
    score = summary.get("score")
    repeat = _count(summary.get("repeat")) or _count(meta.get("repeat")) or 1
    run = {
        "run_id": run_id,
        "started_at": _number(summary.get("started_at", meta.get("started_at"))),
        "finished_at": _number(summary.get("finished_at", meta.get("finished_at"))),
        "status": summary.get("status"),
        "config": config,
        "config_name": Path(config).stem if config else None,
        "target": summary.get("target") or meta.get("target"),
        "tool_version": meta.get("tool_version"),
        "toolkit_settings": json.dumps(_settings_of(events), sort_keys=True),
        "repeat": repeat,
        "shard": meta.get("shard"),
        "soak_id": meta.get("soak_id"),
        "report_dir": str(run_dir.resolve()),
        "totals": json.dumps(summary.get("totals") or {}, sort_keys=True),
        "objectives": json.dumps(summary.get("objectives") or [], default=str),
        "score": _number(score.get("value")) if isinstance(score, Mapping) else _number(score),
    }
    shards = meta.get("shards") if meta.get("shard") == "merged" else None
    return RecordedRun(run, drill_rows(run_id, [r for r in summary.get("scenarios") or [] if isinstance(r, dict)],
                                       events),
                       tuple(str(s) for s in shards) if isinstance(shards, list) else ())


# -- writing ----------------------------------------------------------------------------------------------------------

def _write(conn: sqlite3.Connection, recorded: RecordedRun) -> None:
    run = recorded.run
    names = ", ".join(RUN_COLUMNS)
    marks = ", ".join("?" for _ in RUN_COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in RUN_COLUMNS if c != "run_id")
    conn.execute(f"INSERT INTO runs ({names}) VALUES ({marks}) ON CONFLICT(run_id) DO UPDATE SET {updates}",
                 [run[c] for c in RUN_COLUMNS])
    conn.execute("DELETE FROM drills WHERE run_id = ?", (run["run_id"],))
    for shard in recorded.replaces:  # one entry for a split run: the merged one
        conn.execute("DELETE FROM drills WHERE run_id = ?", (shard,))
        conn.execute("DELETE FROM runs WHERE run_id = ?", (shard,))
    marks = ", ".join("?" for _ in DRILL_COLUMNS)
    conn.executemany(f"INSERT INTO drills ({', '.join(DRILL_COLUMNS)}) VALUES ({marks})",
                     [[d[c] for c in DRILL_COLUMNS] for d in recorded.drills])


def write_runs(db: Path | str, runs: list[RecordedRun], replace_all: bool = False) -> None:
    """Write ``runs`` in one transaction (``replace_all``: the store holds exactly these runs afterwards)."""
    with connect(db) as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            if replace_all:
                conn.execute("DELETE FROM drills")
                conn.execute("DELETE FROM runs")
            for recorded in runs:
                _write(conn, recorded)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def record_run(run_dir: Path | str, db: Path | str) -> str:
    """Record (or record again) the finished run in ``run_dir`` into the store ``db``; returns its run id."""
    recorded = read_run(Path(run_dir))
    write_runs(db, [recorded])
    return str(recorded.run["run_id"])


def note_run(run_dir: Path, db: Path, out: TextIO) -> bool:
    """:func:`record_run` for the console: one line on ``out`` saying where the run was recorded, or why it was
    not. Never raises (the history is a by-product: it must not change a run's verdict)."""
    try:
        record_run(run_dir, db)
    except Exception as exc:  # whatever went wrong, the run's verdict stands
        print(f"history:  not recorded ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})", file=out)
        return False
    print(f"history:  {db}", file=out)
    return True


def rebuild(reports_dir: Path, db: Path | str | None = None) -> RebuildResult:
    """Build the store again from every ``<reports_dir>/*/summary.json`` (symlinks such as ``latest`` are not
    followed; folders without a summary.json, such as ``bench``, are not runs). Unreadable summaries are skipped
    and named. The store ends up holding exactly the runs found, written in one transaction."""
    target = Path(db) if db is not None else default_db_path(reports_dir)
    result = RebuildResult()
    found: list[RecordedRun] = []
    seen: set[str] = set()
    for folder in sorted(p for p in reports_dir.iterdir() if p.is_dir() and not p.is_symlink()):
        if not (folder / SUMMARY_FILE).exists():
            continue
        try:
            recorded = read_run(folder)
        except HistoryError as exc:
            result.skipped.append((folder, str(exc)))
            continue
        run_id = str(recorded.run["run_id"])
        if run_id in seen:
            result.skipped.append((folder, f"{folder / SUMMARY_FILE}: run id {run_id} already recorded from another "
                                           "folder"))
            continue
        seen.add(run_id)
        found.append(recorded)
    merged = {shard for recorded in found for shard in recorded.replaces}
    found = [recorded for recorded in found if str(recorded.run["run_id"]) not in merged]  # the merged entry only
    result.recorded.extend(str(recorded.run["run_id"]) for recorded in found)
    write_runs(target, found, replace_all=True)
    return result


# -- queries ---------------------------------------------------------------------------------------------------------

def _dicts(rows: list[sqlite3.Row]) -> list[dict[str, Any]]:
    return [dict(row) for row in rows]


def list_runs(db: Path | str, limit: int | None = None) -> list[dict[str, Any]]:
    """Every run, newest first, each with ``scenarios`` (distinct scenario keys) and ``drills`` counts."""
    sql = ("SELECT runs.*, (SELECT COUNT(DISTINCT scenario) FROM drills WHERE drills.run_id = runs.run_id) AS "
           "scenarios, (SELECT COUNT(*) FROM drills WHERE drills.run_id = runs.run_id) AS drills FROM runs "
           "ORDER BY started_at IS NULL, started_at DESC, run_id DESC")
    with connect(db) as conn:
        if limit is not None:
            return _dicts(conn.execute(sql + " LIMIT ?", (limit,)).fetchall())
        return _dicts(conn.execute(sql).fetchall())


def find_run(db: Path | str, run_id: str) -> dict[str, Any] | None:
    """The ``runs`` row of ``run_id``, or None."""
    with connect(db) as conn:
        row = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return dict(row) if row is not None else None


def run_drills(db: Path | str, run_id: str) -> list[dict[str, Any]]:
    """The drills of one run, in the order they ran."""
    with connect(db) as conn:
        return _dicts(conn.execute("SELECT * FROM drills WHERE run_id = ? ORDER BY started_at, scenario, repeat",
                                   (run_id,)).fetchall())


def scenario_series(db: Path | str, scenario: str) -> list[dict[str, Any]]:
    """Every drill of one scenario (its :func:`~support.reporting.summary.scenario_key`) across runs, oldest
    first, each with its run's ``run_status``, ``config_name``, ``target`` and ``tool_version``."""
    with connect(db) as conn:
        return _dicts(conn.execute(
            "SELECT drills.*, runs.status AS run_status, runs.config_name, runs.target, runs.tool_version "
            "FROM drills JOIN runs USING (run_id) WHERE scenario = ? ORDER BY drills.started_at, run_id, repeat",
            (scenario,)).fetchall())
