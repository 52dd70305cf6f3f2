"""The recorded history of one scenario, as the judge reads it: its journal events, its sent and received
ledgers and the settings it is judged under; live (what a running scenario recorded so far) or from disk.

A :class:`Snapshot` says how much of the history a judgement saw: the instant and the number of events, sent
rows and received rows. The journal and the ledgers are append-only, so the prefix a snapshot names is exactly
what the live judgement saw, and judging that prefix again gives the same verdict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from support.data.contract import ORDERS, DataContract
from support.data.ledger import ReceivedRow, SentRow, Table, join_inputs, read_table
from support.judge.settings import JudgeSettings
from support.orchestration import Journal, JournalEvent

JOURNAL_FILE = "journal.jsonl"
LEDGERS = "ledgers"


@dataclass(frozen=True)
class Snapshot:
    """How much of a history a judgement saw: wall time ``t`` and the lengths of the journal and ledgers."""

    t: float
    events: int
    sent: int
    received: int

    def to_json(self) -> dict[str, Any]:
        return {"t": self.t, "events": self.events, "sent": self.sent, "received": self.received}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Snapshot:
        return cls(float(value["t"]), int(value["events"]), int(value["sent"]), int(value["received"]))


def _empty(row_type: type[SentRow] | type[ReceivedRow]) -> Table:
    return Table.from_rows([], SentRow) if row_type is SentRow else Table.from_rows([], ReceivedRow)


def prefix(table: Table, rows: int) -> Table:
    """The first ``rows`` rows of ``table``."""
    return Table({name: column[:rows] for name, column in table.columns.items()}, table.categories, table.ids)


def select(table: Table, mask: np.ndarray) -> Table:
    """The rows of ``table`` where ``mask`` holds."""
    return Table({name: column[mask] for name, column in table.columns.items()}, table.categories, table.ids)


def sent_until(sent: Table, received: Table, end: float) -> tuple[Table, Table]:
    """The tuples sent up to ``end``, and the received rows except those of tuples sent only after it. A tuple's
    sent row is recorded when its send is answered, so its output can be read first: a row received after ``end``
    whose id the sent ledger does not hold yet is left out too (it belongs to a later send, or, if it was never
    sent, it is judged once the ledgers are complete)."""
    inside = sent["t_send"] <= end
    later = np.setdiff1d(sent["id"][~inside], sent["id"][inside])
    keep = ~np.isin(received["id"], later)
    keep &= (received["t_recv"] <= end) | np.isin(received["id"], sent["id"])
    return select(sent, inside), select(received, keep)


@dataclass(frozen=True)
class History:
    """One scenario's record: events in the order they were recorded, and its two ledgers; the application
    contract says what the ledgers hold. The received rows get their key, seq and state inputs from the sent
    ledger by id (:func:`~support.data.ledger.join_inputs`)."""

    sid: str
    name: str
    events: tuple[JournalEvent, ...]
    sent: Table
    received: Table
    settings: JudgeSettings
    folder: Path | None = None
    now: float | None = None  # the instant the history was read at (live); None: the last recorded instant
    contract: DataContract = ORDERS

    def __post_init__(self) -> None:
        object.__setattr__(self, "received", join_inputs(self.sent, self.received, self.contract.state_inputs))

    @property
    def journal(self) -> Journal:
        return Journal.of(list(self.events))

    @property
    def as_of(self) -> float:
        """The instant up to which this history is known to be complete."""
        if self.now is not None:
            return self.now
        times = [e.t for e in self.events]
        if len(self.received):
            times.append(float(self.received["t_recv"].max()))
        if len(self.sent):
            times.append(float(self.sent["t_ack"].max()))
        return max(times) if times else 0.0

    def snapshot(self) -> Snapshot:
        return Snapshot(self.as_of, len(self.events), len(self.sent), len(self.received))

    def at(self, snapshot: Snapshot) -> History:
        """The history as a judgement that took ``snapshot`` saw it."""
        return History(self.sid, self.name, self.events[:snapshot.events], prefix(self.sent, snapshot.sent),
                       prefix(self.received, snapshot.received), self.settings, self.folder, snapshot.t,
                       self.contract)

    def with_settings(self, settings: JudgeSettings) -> History:
        return History(self.sid, self.name, self.events, self.sent, self.received, settings, self.folder, self.now,
                       self.contract)

    def first(self, name: str, **match: Any) -> JournalEvent | None:
        return next((e for e in self.events if e.event == name and _matches(e, match)), None)

    def last(self, name: str, **match: Any) -> JournalEvent | None:
        return next((e for e in reversed(self.events) if e.event == name and _matches(e, match)), None)

    def all(self, name: str, **match: Any) -> list[JournalEvent]:
        return [e for e in self.events if e.event == name and _matches(e, match)]


def _matches(event: JournalEvent, match: dict[str, Any]) -> bool:
    return all(event.fields.get(k) == v for k, v in match.items())


# ------------------------------------------------------------------------------------------- on disk


def read_journal(run_dir: Path) -> list[JournalEvent]:
    """Every event of a run's journal (a line cut short by a crash is skipped)."""
    path = run_dir / JOURNAL_FILE
    if not path.exists():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(JournalEvent.from_json(json.loads(line)))
        except (json.JSONDecodeError, TypeError, ValueError):
            continue
    return events


def _ledger(folder: Path, name: str, row_type: type[SentRow] | type[ReceivedRow]) -> Table:
    columns = folder / name
    if (columns / "meta.json").exists():
        table = read_table(columns)
        rows = min((len(c) for c in table.columns.values()), default=0)  # a crash may cut the last row short
        return prefix(table, rows)
    return _empty(row_type)


def scenario_ids(run_dir: Path) -> list[str]:
    """The scenarios a run recorded, in order (their folders under ``ledgers/``)."""
    seen: list[str] = []
    for event in read_journal(run_dir):
        if event.event == "scenario.started" and event.sid and event.sid not in seen:
            seen.append(event.sid)
    return seen


def load_history(run_dir: Path, sid: str, settings: JudgeSettings,
                 events: list[JournalEvent] | None = None) -> History:
    """One scenario of a stored run, as it is on disk."""
    mine = tuple(e for e in (events if events is not None else read_journal(run_dir)) if e.sid == sid)
    name = mine[0].scenario if mine else sid
    folder = run_dir / LEDGERS / sid
    return History(sid, name, mine, _ledger(folder, "sent", SentRow), _ledger(folder, "received", ReceivedRow),
                   settings, folder, contract=DataContract.load(folder))
