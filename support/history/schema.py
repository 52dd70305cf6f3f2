"""The history store's layout: one SQLite file, by default ``<run.reports_dir>/history.sqlite``.

One row per run in ``runs`` and one per drill (a scenario's run; with ``run --repeat N``, N drills per scenario) in
``drills``. A scenario is named across runs by :func:`support.reporting.summary.scenario_key`. Columns only ever
get added (readers select them by name); ``PRAGMA user_version`` is :data:`SCHEMA_VERSION`.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DB_FILE", "DDL", "PHASE_COLUMNS", "SCHEMA_VERSION", "default_db_path"]

SCHEMA_VERSION = 1
#: the store's file name under ``run.reports_dir``
DB_FILE = "history.sqlite"
#: the RTO's phases (support.measure.PHASES), each a REAL column of ``drills`` in seconds after the fault
PHASE_COLUMNS = ("down_detected_s", "takeover_s", "first_output_s", "throughput_recovered_s")

DDL = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,      -- reports/<run_id>/
    started_at REAL,              -- epoch seconds (tester clock)
    finished_at REAL,
    status TEXT,                  -- summary.json status: passed | failed | interrupted
    config TEXT,                  -- the config file's path as given
    config_name TEXT,             -- its file name without suffix (lab, pair, ...)
    target TEXT,                  -- settings.name (the pair)
    tool_version TEXT,
    toolkit_settings TEXT,        -- JSON: the Cross-DC settings in force (first layout of the run), {} if unknown
    repeat INTEGER DEFAULT 1,     -- run --repeat N
    shard TEXT,                   -- "I/N" for a shard, "merged" for a merge of shards, NULL otherwise
    soak_id TEXT,                 -- the soak this run is a round of (run --every), NULL otherwise
    report_dir TEXT,              -- absolute path of reports/<run_id>/
    totals TEXT,                  -- JSON: summary.json totals
    objectives TEXT,              -- JSON: summary.json objectives (gates on distributions), [] if none
    score REAL                    -- summary.json score.value (0..100), NULL if no objective
);
CREATE TABLE IF NOT EXISTS drills (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    scenario TEXT NOT NULL,       -- scenario_key(record): "<feature> :: <scenario name>"
    repeat INTEGER NOT NULL DEFAULT 1,   -- 1..N
    feature TEXT,
    name TEXT,
    status TEXT,                  -- passed | failed | not judged | skipped | interrupted
    started_at REAL,
    duration_s REAL,
    fault TEXT,
    rto_s REAL,
    down_detected_s REAL,
    takeover_s REAL,
    first_output_s REAL,
    throughput_recovered_s REAL,
    lost INTEGER,
    duplicated INTEGER,
    unknown INTEGER,
    loss_window_s REAL,           -- delivery.loss_window_s
    state_loss_window_s REAL,     -- the consistent_state verdict's evidence state_loss_window_s
    toolkit_settings TEXT,        -- JSON, as in runs
    PRIMARY KEY (run_id, scenario, repeat)
);
CREATE INDEX IF NOT EXISTS drills_by_scenario ON drills (scenario, started_at);
"""


def default_db_path(reports_dir: str | Path) -> Path:
    """Where the history of runs written under ``reports_dir`` lives."""
    return Path(reports_dir) / DB_FILE
