"""Ledgers: what the tester sent and what it received, written column by column as the run goes.

A ledger keeps its rows as numpy columns, in memory and on disk. ``Ledger(<dir>/sent.csv, SentRow)`` writes

- ``<dir>/sent/<column>.bin``: one append-only little-endian binary file per column (``meta.json`` names
  the dtypes); text columns are stored as integer codes with their values in ``<column>.cats`` (one value
  per line, appended before any code that refers to it);
- ``<dir>/ids.txt``: the tuple ids, one per line in the order they were first seen (shared by the sent and
  received ledgers of a scenario through one :class:`IdTable`); ledgers store the id's line number;
- ``<dir>/sent.csv``: the same rows as CSV, for people and spreadsheets.

Every write goes straight to the files (unbuffered), so a run that crashes leaves readable ledgers:
:func:`read_table` loads the columns and cuts them to the rows that were completely written.
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import IO, Any, ClassVar, Generic, TypeVar

import numpy as np

OK, FAIL, UNKNOWN = "ok", "fail", "unknown"
OUTCOMES = (OK, FAIL, UNKNOWN)


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
    amount: float = 0.0

    types: ClassVar[tuple[type, ...]] = (str, str, int, str, float, float, str, str, float)
    #: column name -> numpy dtype ("cat[:dtype]" = text stored as codes, "id" = index into the IdTable)
    columns: ClassVar[dict[str, str]] = {
        "id": "id", "key": "cat", "seq": "<i4", "dc": "cat:|i1", "t_send": "<f8", "t_ack": "<f8",
        "outcome": "cat:|i1", "error": "cat", "amount": "<f8",
    }


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
    amount: float = 0.0

    types: ClassVar[tuple[type, ...]] = (str, str, int, str, float, float, int, float, bool, float)
    columns: ClassVar[dict[str, str]] = {
        "id": "id", "key": "cat", "seq": "<i4", "dc": "cat:|i1", "t_recv": "<f8", "processed_at": "<f8",
        "count_for_key": "<i4", "sum_for_key": "<f8", "crc_ok": "|b1", "amount": "<f8",
    }


R = TypeVar("R", SentRow, ReceivedRow)
ID_DTYPE = "<i4"
CODE_DTYPE = "<i4"


class IdTable:
    """Tuple id <-> dense integer, shared by the ledgers of one scenario; appended to ``ids.txt`` as it grows."""

    def __init__(self, path: Path | None = None) -> None:
        self._index: dict[str, int] = {}
        self._names: list[str] = []
        self._lock = threading.Lock()
        self._file: IO[bytes] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - open for the scenario's life

    def codes(self, ids: Sequence[str]) -> np.ndarray:
        """The integer of every id, interning new ones (written to disk before they are returned)."""
        out = np.empty(len(ids), dtype=np.int64)
        new: list[str] = []
        with self._lock:
            index = self._index
            for position, name in enumerate(ids):
                code = index.get(name)
                if code is None:
                    code = index[name] = len(self._names)
                    self._names.append(name)
                    new.append(name)
                out[position] = code
            if new and self._file is not None:
                self._file.write(("\n".join(_one_line(n) for n in new) + "\n").encode("utf-8"))
        return out.astype(ID_DTYPE)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    @staticmethod
    def read(path: Path) -> list[str]:
        if not path.exists():
            return []
        lines = path.read_bytes().decode("utf-8").split("\n")
        return lines[:-1]  # the last element is the (possibly partial) text after the final newline


def _one_line(text: str) -> str:
    return text.replace("\n", " ").replace("\r", " ")


class _Categories:
    """Text values of one column as small integer codes (dictionary encoding)."""

    def __init__(self, path: Path | None) -> None:
        self.index: dict[str, int] = {}
        self.values: list[str] = []
        self._file = open(path, "ab", buffering=0) if path is not None else None  # noqa: SIM115

    def encode(self, values: Iterable[str], dtype: str = CODE_DTYPE) -> np.ndarray:
        codes = []
        new = []
        for value in values:
            code = self.index.get(value)
            if code is None:
                code = self.index[value] = len(self.values)
                self.values.append(value)
                new.append(value)
            codes.append(code)
        if new and self._file is not None:
            self._file.write(("\n".join(_one_line(v) for v in new) + "\n").encode("utf-8"))
        if len(self.values) > np.iinfo(np.dtype(dtype)).max:
            raise ValueError(f"more distinct values than a {dtype} code can hold")
        return np.asarray(codes, dtype=dtype)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass
class Table:
    """A ledger's columns: numeric arrays, text columns as codes plus their values, ids as IdTable codes."""

    columns: dict[str, np.ndarray]
    categories: dict[str, list[str]]
    ids: Sequence[str]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def code(self, column: str, value: str) -> int:
        """The code of ``value`` in a text column, or -1 when it never occurs."""
        values = self.categories.get(column, [])
        return values.index(value) if value in values else -1

    def is_(self, column: str, value: str) -> np.ndarray:
        """Boolean mask: rows whose text column equals ``value``."""
        return self.columns[column] == self.code(column, value)

    def text(self, column: str, codes: np.ndarray | Sequence[int]) -> list[str]:
        values = self.categories[column]
        return [values[int(c)] for c in codes]

    def id_text(self, codes: np.ndarray | Sequence[int]) -> list[str]:
        return [self.ids[int(c)] if 0 <= int(c) < len(self.ids) else f"#{int(c)}" for c in codes]

    @classmethod
    def from_rows(cls, rows: Sequence[SentRow] | Sequence[ReceivedRow], row_type: type[R],
                  ids: IdTable | None = None) -> Table:
        table = ids if ids is not None else IdTable()
        categories = {name: _Categories(None) for name, kind in row_type.columns.items() if kind.startswith("cat")}
        columns = _to_columns(rows, row_type, table, categories)
        return cls(columns, {n: c.values for n, c in categories.items()}, table.names())


def _to_columns(rows: Sequence[Any], row_type: type[SentRow] | type[ReceivedRow], ids: IdTable,
                categories: dict[str, _Categories]) -> dict[str, np.ndarray]:
    columns: dict[str, np.ndarray] = {}
    for name in (f.name for f in fields(row_type)):
        kind = row_type.columns[name]
        values = [getattr(row, name) for row in rows]
        if kind == "id":
            columns[name] = ids.codes([str(v) for v in values])
        elif kind.startswith("cat"):
            columns[name] = categories[name].encode((str(v) for v in values), _dtype(kind))
        else:
            columns[name] = np.asarray(values, dtype=kind)
    return columns


class Ledger(Generic[R]):
    """A thread-safe append-only ledger: numpy columns in memory and on disk, plus a CSV copy.

    ``path`` names the CSV file (``<dir>/sent.csv``); the columns go to ``<dir>/sent/``; ``None`` keeps the
    ledger in memory only. Pass the scenario's :class:`IdTable` so that sent and received share ids.
    """

    def __init__(self, path: Path | None, row_type: type[R], ids: IdTable | None = None,
                 write_csv: bool = True) -> None:
        self._row_type: type[R] = row_type
        self._lock = threading.Lock()
        self._path = path
        self._names = [f.name for f in fields(row_type)]
        self._chunks: dict[str, list[np.ndarray]] = {name: [] for name in self._names}
        self._rows = 0
        self._cache: dict[str, np.ndarray] | None = None
        self._files: dict[str, IO[bytes]] = {}
        self._csv: IO[str] | None = None
        folder = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            folder = path.with_suffix("")
            folder.mkdir(parents=True, exist_ok=True)
            self._ids = ids if ids is not None else IdTable(path.parent / "ids.txt")
            meta = {"row_type": row_type.__name__, "columns": dict(row_type.columns), "ids": "../ids.txt"}
            (folder / "meta.json").write_text(json.dumps(meta, indent=1))
            for name in self._names:
                self._files[name] = open(folder / f"{name}.bin", "wb", buffering=0)  # noqa: SIM115
            if write_csv:
                self._csv = path.open("w", newline="", encoding="utf-8")
                csv.writer(self._csv).writerow(self._names)
                self._csv.flush()
        else:
            self._ids = ids if ids is not None else IdTable()
        self._categories = {
            name: _Categories(folder / f"{name}.cats" if folder else None)
            for name, kind in row_type.columns.items() if kind.startswith("cat")
        }

    @property
    def ids(self) -> IdTable:
        return self._ids

    def extend(self, rows: Iterable[R]) -> None:
        batch = list(rows)
        if not batch:
            return
        with self._lock:
            columns = _to_columns(batch, self._row_type, self._ids, self._categories)
            for name in self._names:
                array = columns[name]
                self._chunks[name].append(array)
                handle = self._files.get(name)
                if handle is not None:
                    handle.write(array.tobytes())
            self._rows += len(batch)
            self._cache = None
            if self._csv is not None:
                csv.writer(self._csv).writerows(astuple(row) for row in batch)
                self._csv.flush()

    def table(self) -> Table:
        """The rows so far as columns (a consistent snapshot)."""
        with self._lock:
            if self._cache is None:
                self._cache = {
                    name: (np.concatenate(chunks) if chunks else
                           np.empty(0, dtype=_dtype(self._row_type.columns[name])))
                    for name, chunks in self._chunks.items()
                }
                for name, array in self._cache.items():
                    self._chunks[name] = [array] if len(array) else []
            columns = dict(self._cache)
            categories = {n: list(c.values) for n, c in self._categories.items()}
        return Table(columns, categories, self._ids.names())

    def rows(self) -> list[R]:
        """The rows so far as row objects (for small ledgers and reports)."""
        table = self.table()
        return rows_of(table, self._row_type)

    def __len__(self) -> int:
        return self._rows

    def close(self) -> None:
        with self._lock:
            for handle in self._files.values():
                handle.close()
            self._files.clear()
            if self._csv is not None:
                self._csv.close()
                self._csv = None
            for categories in self._categories.values():
                categories.close()

    @classmethod
    def read(cls, path: Path, row_type: type[R]) -> list[R]:
        """Load a ledger written by this class (for reports after a crash): the columns when present, else
        the CSV file."""
        folder = path.with_suffix("")
        if (folder / "meta.json").exists():
            return rows_of(read_table(folder), row_type)
        result: list[R] = []
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader, None)
            for raw in reader:
                values = [_convert(kind, value) for kind, value in zip(row_type.types, raw, strict=False)]
                result.append(row_type(*values))  # type: ignore[arg-type]
        return result


def _dtype(kind: str) -> str:
    if kind == "id":
        return ID_DTYPE
    if kind.startswith("cat"):
        return kind[4:] or CODE_DTYPE
    return kind


def rows_of(table: Table, row_type: type[R]) -> list[R]:
    names = [f.name for f in fields(row_type)]
    decoded: list[list[Any]] = []
    for name in names:
        kind = row_type.columns[name]
        column = table.columns[name]
        if kind == "id":
            decoded.append(table.id_text(column))
        elif kind.startswith("cat"):
            values = table.categories[name]
            decoded.append([values[c] for c in column.tolist()])
        else:
            decoded.append(column.tolist())
    return [row_type(*values) for values in zip(*decoded, strict=True)]


def read_table(folder: Path, columns: Iterable[str] | None = None) -> Table:
    """Load one ledger's columns from ``folder`` (``<dir>/sent``), or only ``columns``; rows cut short by a crash
    are dropped."""
    meta = json.loads((folder / "meta.json").read_text())
    kinds: dict[str, str] = meta["columns"]
    if columns is not None:
        wanted = set(columns) | {"id"}
        kinds = {name: kind for name, kind in kinds.items() if name in wanted}
    raw: dict[str, np.ndarray] = {}
    for name, kind in kinds.items():
        dtype = np.dtype(_dtype(kind))
        path = folder / f"{name}.bin"
        raw[name] = np.fromfile(path, dtype=dtype, count=path.stat().st_size // dtype.itemsize)
    categories = {name: IdTable.read(folder / f"{name}.cats") for name, kind in kinds.items()
                  if kind.startswith("cat")}
    ids = Lines((folder / meta.get("ids", "../ids.txt")).resolve())
    rows = min((len(a) for a in raw.values()), default=0)
    for name, kind in kinds.items():  # a code whose value line was cut off marks a row written half way
        if kind.startswith("cat") and rows:
            bad = np.flatnonzero(raw[name][:rows] >= len(categories[name]))
            rows = int(bad[0]) if len(bad) else rows
        if kind == "id" and rows:
            bad = np.flatnonzero(raw[name][:rows] >= len(ids))
            rows = int(bad[0]) if len(bad) else rows
    return Table({name: array[:rows] for name, array in raw.items()}, categories, ids)


class Lines(Sequence[str]):
    """The lines of a text file, decoded on demand (the ids of a large ledger without a string per id in
    memory): counted once in chunks; the line offsets are built on the first lookup."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._count = 0
        self._ends: np.ndarray | None = None
        if path.exists():
            with path.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    self._count += chunk.count(b"\n")

    def __len__(self) -> int:
        return self._count

    def _offsets(self) -> np.ndarray:
        if self._ends is None:
            parts = []
            base = 0
            with self._path.open("rb") as handle:
                while chunk := handle.read(CHUNK):
                    parts.append(np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10).astype(np.int64) + base)
                    base += len(chunk)
            ends = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
            self._ends = ends.astype(np.uint32) if base < 2**32 else ends
        return self._ends

    def __getitem__(self, index: int) -> str:  # type: ignore[override]
        if isinstance(index, slice):
            raise TypeError("Lines does not slice")
        ends = self._offsets()
        end = int(ends[index])
        start = int(ends[index - 1]) + 1 if index > 0 else 0
        with self._path.open("rb") as handle:
            handle.seek(start)
            return handle.read(end - start).decode("utf-8")


CHUNK = 1 << 24


def _convert(kind: type, value: str) -> object:
    if kind is bool:
        return value == "True"
    return kind(value)
