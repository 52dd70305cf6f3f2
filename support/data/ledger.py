"""Ledgers: what the tester sent and what it received, written row by row as the run goes.

CSV files under ``<run>/ledgers/``; each write is flushed so that a crashed run still has its history.
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Iterable
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import ClassVar, Generic, TypeVar

OK, FAIL, UNKNOWN = "ok", "fail", "unknown"


@dataclass(frozen=True)
class SentRow:
    """One input tuple's fate: ``outcome`` is ok (acknowledged), fail (refused) or unknown (timed out)."""

    id: str
    key: str
    seq: int
    dc: str
    t_send: float
    t_ack: float
    outcome: str
    error: str = ""

    types: ClassVar[tuple[type, ...]] = (str, str, int, str, float, float, str, str)


@dataclass(frozen=True)
class ReceivedRow:
    """One output tuple as retrieved from a data center's sink."""

    id: str
    key: str
    seq: int
    dc: str
    t_recv: float
    processed_at: float
    count_for_key: int
    sum_for_key: float
    crc_ok: bool

    types: ClassVar[tuple[type, ...]] = (str, str, int, str, float, float, int, float, bool)


R = TypeVar("R", SentRow, ReceivedRow)


class Ledger(Generic[R]):
    """A thread-safe append-only CSV ledger kept in memory too."""

    def __init__(self, path: Path | None, row_type: type[R]) -> None:
        self._row_type: type[R] = row_type
        self._rows: list[R] = []
        self._lock = threading.Lock()
        self._path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("w", newline="", encoding="utf-8") as out:
                csv.writer(out).writerow([f.name for f in fields(row_type)])

    def extend(self, rows: Iterable[R]) -> None:
        batch = list(rows)
        if not batch:
            return
        with self._lock:
            self._rows.extend(batch)
            if self._path is not None:
                with self._path.open("a", newline="", encoding="utf-8") as out:
                    csv.writer(out).writerows(astuple(row) for row in batch)

    def rows(self) -> list[R]:
        with self._lock:
            return list(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    @classmethod
    def read(cls, path: Path, row_type: type[R]) -> list[R]:
        """Load a ledger file written by this class (for reports after a crash)."""
        result: list[R] = []
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader, None)
            for raw in reader:
                values = [_convert(kind, value) for kind, value in zip(row_type.types, raw, strict=False)]
                result.append(row_type(*values))  # type: ignore[arg-type]
        return result


def _convert(kind: type, value: str) -> object:
    if kind is bool:
        return value == "True"
    return kind(value)
