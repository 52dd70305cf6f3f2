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
import mmap
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any, ClassVar, Generic, TypeVar

import numpy as np

from support.atomic import fsync_file

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
        "count_for_key": "<i8", "sum_for_key": "<f8", "crc_ok": "|b1", "amount": "<f8",
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
        """Fsync the id file (the end of a scenario must be on disk) and close it."""
        if self._file is not None:
            handle, self._file = self._file, None
            try:
                fsync_file(handle)
            finally:
                handle.close()

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
            handle, self._file = self._file, None
            try:
                fsync_file(handle)
            finally:
                handle.close()


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
        ids = self.ids
        if isinstance(ids, Lines):  # one pass over the file for all of them
            wanted = np.asarray(codes, dtype=np.int64).reshape(-1)
            inside = (wanted >= 0) & (wanted < len(ids))
            texts = ids.take(wanted[inside])
            if inside.all():
                return texts
            found = iter(texts)
            return [next(found) if ok else f"#{int(c)}" for c, ok in zip(wanted.tolist(), inside.tolist(), strict=True)]
        return [ids[int(c)] if 0 <= int(c) < len(ids) else f"#{int(c)}" for c in codes]

    @classmethod
    def from_rows(cls, rows: Sequence[SentRow] | Sequence[ReceivedRow], row_type: type[R],
                  ids: IdTable | None = None) -> Table:
        table = ids if ids is not None else IdTable()
        categories = {name: _Categories(None) for name, kind in row_type.columns.items() if kind.startswith("cat")}
        columns = _to_columns(rows, row_type, table, categories)
        return cls(columns, {n: c.values for n, c in categories.items()}, table.names())


def _to_columns(rows: Sequence[Any], row_type: type[SentRow] | type[ReceivedRow], ids: IdTable,
                categories: dict[str, _Categories]) -> dict[str, np.ndarray]:
    values = {f.name: [getattr(row, f.name) for row in rows] for f in fields(row_type)}
    return _encode(values, row_type.columns, ids, categories)


def _encode(values: Mapping[str, Sequence[Any]], kinds: Mapping[str, str], ids: IdTable,
            categories: dict[str, _Categories]) -> dict[str, np.ndarray]:
    """Column values as arrays: ids as IdTable codes, text as category codes, numbers as they are."""
    columns: dict[str, np.ndarray] = {}
    for name, kind in kinds.items():
        column = values[name]
        if kind == "id":
            columns[name] = ids.codes([v if isinstance(v, str) else str(v) for v in column])
        elif kind.startswith("cat"):
            columns[name] = categories[name].encode((v if isinstance(v, str) else str(v) for v in column),
                                                    _dtype(kind))
        else:
            columns[name] = np.asarray(column, dtype=kind)
    return columns


#: a column a row type lacks (a ledger of an application contract), read back into that row type
_MISSING: dict[str, Any] = {"crc_ok": True}


class Ledger(Generic[R]):
    """A thread-safe append-only ledger: numpy columns in memory and on disk, plus a CSV copy.

    ``path`` names the CSV file (``<dir>/sent.csv``); the columns go to ``<dir>/sent/``; ``None`` keeps the
    ledger in memory only. Pass the scenario's :class:`IdTable` so that sent and received share ids.
    ``columns`` (name -> kind, as :attr:`SentRow.columns`) replaces the row type's columns: the ledger of an
    application contract (:meth:`~support.data.contract.DataContract.sent_columns`), filled by
    :meth:`extend_columns`.
    """

    def __init__(self, path: Path | None, row_type: type[R], ids: IdTable | None = None,
                 write_csv: bool = True, columns: dict[str, str] | None = None) -> None:
        self._row_type: type[R] = row_type
        self._kinds: dict[str, str] = dict(columns if columns is not None else row_type.columns)
        self._lock = threading.Lock()
        self._path = path
        self._names = list(self._kinds)
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
            meta = {"row_type": row_type.__name__, "columns": dict(self._kinds), "ids": "../ids.txt"}
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
            for name, kind in self._kinds.items() if kind.startswith("cat")
        }

    @property
    def ids(self) -> IdTable:
        return self._ids

    def extend(self, rows: Iterable[R]) -> None:
        batch = list(rows)
        if not batch:
            return
        self.extend_columns({name: [getattr(row, name, _MISSING.get(name, 0)) for row in batch]
                             for name in self._names})

    def extend_columns(self, values: Mapping[str, Sequence[Any]]) -> None:
        """Append rows given column by column (every column of the ledger, the same length)."""
        size = len(values[self._names[0]]) if self._names else 0
        if not size:
            return
        with self._lock:
            columns = _encode(values, self._kinds, self._ids, self._categories)
            for name in self._names:
                array = columns[name]
                self._chunks[name].append(array)
                handle = self._files.get(name)
                if handle is not None:
                    handle.write(array.tobytes())
            self._rows += size
            self._cache = None
            if self._csv is not None:
                csv.writer(self._csv).writerows(zip(*(values[name] for name in self._names), strict=True))
                self._csv.flush()

    def table(self) -> Table:
        """The rows so far as columns (a consistent snapshot)."""
        with self._lock:
            if self._cache is None:
                self._cache = {
                    name: (np.concatenate(chunks) if chunks else np.empty(0, dtype=_dtype(self._kinds[name])))
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

    @property
    def path(self) -> Path | None:
        """The ledger's CSV file (None: in memory only); side files of the scenario go next to it."""
        return self._path

    def close(self) -> None:
        """Fsync every file of the ledger (its columns, its CSV, its categories) and close them: a ledger closed
        at the end of a scenario is on disk, whatever happens to the machine next."""
        problems: list[OSError] = []
        with self._lock:
            handles: list[Any] = [*self._files.values(), *([self._csv] if self._csv is not None else [])]
            for handle in handles:
                try:
                    fsync_file(handle)
                except OSError as exc:  # the other files are still synced and closed
                    problems.append(exc)
                finally:
                    handle.close()
            self._files.clear()
            self._csv = None
            for categories in self._categories.values():
                try:
                    categories.close()
                except OSError as exc:
                    problems.append(exc)
        if problems:
            raise problems[0]

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
        if name not in table.columns:  # a ledger of an application contract without this column
            decoded.append([_MISSING.get(name, 0)] * len(table))
            continue
        column = table.columns[name]
        if kind == "id":
            decoded.append(table.id_text(column))
        elif kind.startswith("cat"):
            values = table.categories[name]
            decoded.append([values[c] for c in column.tolist()])
        else:
            decoded.append(column.tolist())
    return [row_type(*values) for values in zip(*decoded, strict=True)]


def read_table(folder: Path, columns: Iterable[str] | None = None, lazy: bool = False) -> Table:
    """Load one ledger's columns from ``folder`` (``<dir>/sent``), or only ``columns``; rows cut short by a crash
    are dropped.

    ``lazy`` maps the column files read-only instead of reading them: a column costs memory only for the pages a
    checker touches (the arrays are then read-only; ledgers only grow, and a mapped file must not shrink)."""
    meta = json.loads((folder / "meta.json").read_text())
    kinds: dict[str, str] = meta["columns"]
    if columns is not None:
        wanted = set(columns) | {"id"}
        kinds = {name: kind for name, kind in kinds.items() if name in wanted}
    raw: dict[str, np.ndarray] = {}
    for name, kind in kinds.items():
        dtype = np.dtype(_dtype(kind))
        path = folder / f"{name}.bin"
        count = path.stat().st_size // dtype.itemsize
        raw[name] = _mapped(path, dtype, count) if lazy else np.fromfile(path, dtype=dtype, count=count)
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


def _mapped(path: Path, dtype: np.dtype, count: int) -> np.ndarray:
    """The first ``count`` items of a binary column file, mapped read-only."""
    if count == 0:
        return np.empty(0, dtype=dtype)
    with path.open("rb") as handle:
        view = mmap.mmap(handle.fileno(), count * dtype.itemsize, access=mmap.ACCESS_READ)
    return np.frombuffer(view, dtype=dtype, count=count)


_LINE_COUNTS: dict[tuple[str, int, int], tuple[int, int]] = {}  # (path, size, mtime) -> (lines, fixed width or 0)


def _count_lines(path: Path, size: int) -> tuple[int, int]:
    """Complete lines in the first ``size`` bytes of ``path``, and their width when every line has the same
    one (then line i is at byte i * width, without an offset table)."""
    count = 0
    with path.open("rb") as handle:
        head = handle.read(min(size, CHUNK))
        width = head.find(b"\n") + 1
        step = (CHUNK // width) * width if width else CHUNK
        handle.seek(0)
        left = size
        while left > 0 and (chunk := handle.read(min(step, left))):
            left -= len(chunk)
            lines = chunk.count(b"\n")
            count += lines
            if width and (lines != len(chunk) // width or (len(chunk) % width and left > 0)
                          or not (np.frombuffer(chunk, dtype=np.uint8)[width - 1::width][:lines] == 10).all()):
                width = 0
    return count, width


class Lines(Sequence[str]):
    """The lines of a text file, decoded on demand (the ids of a large ledger without a string per id in
    memory): counted once in chunks (remembered while the file is unchanged); the line offsets are built on
    the first lookup unless every line has the same width."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._count = 0
        self._width = 0
        self._ends: np.ndarray | None = None
        if path.exists():
            stat = path.stat()
            known = (str(path), stat.st_size, stat.st_mtime_ns)
            if known not in _LINE_COUNTS:
                if len(_LINE_COUNTS) > 64:
                    _LINE_COUNTS.clear()
                _LINE_COUNTS[known] = _count_lines(path, stat.st_size)
            self._count, self._width = _LINE_COUNTS[known]

    def __len__(self) -> int:
        return self._count

    def _spans(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Byte ranges [start, end) of lines ``indices`` (without the newline)."""
        if self._width:
            starts = indices * self._width
            return starts, starts + (self._width - 1)
        ends = self._offsets()
        stops = ends[indices].astype(np.int64)
        starts = np.where(indices > 0, ends[np.maximum(indices - 1, 0)].astype(np.int64) + 1, 0)
        return starts, stops

    def take(self, indices: np.ndarray | Sequence[int]) -> list[str]:
        """The lines at ``indices`` (all within range), read in one pass over the file."""
        wanted = np.asarray(indices, dtype=np.int64).reshape(-1)
        if not len(wanted):
            return []
        if wanted.min() < 0 or wanted.max() >= self._count:
            raise IndexError("line index out of range")
        starts, stops = self._spans(wanted)
        out = [""] * len(wanted)
        order = np.argsort(starts, kind="stable")
        dense = len(wanted) * 4096 > int(stops.max() - starts.min())  # else a read per line
        space = bytearray(max(BLOCK if dense else 0, int((stops - starts).max())))
        view = memoryview(space)
        base, filled = 0, 0
        with self._path.open("rb", buffering=0) as handle:
            for i, start, stop in zip(order.tolist(), starts[order].tolist(), stops[order].tolist(), strict=True):
                if stop > base + filled or start < base:
                    if stop - start > len(space):
                        space = bytearray(stop - start)
                        view = memoryview(space)
                    handle.seek(start)
                    base, filled = start, handle.readinto(space) or 0
                out[i] = str(view[start - base:stop - base], "utf-8")
        return out

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
        if not -self._count <= index < self._count:
            raise IndexError("line index out of range")
        index %= self._count
        if self._width:
            return self.take([index])[0]
        ends = self._offsets()
        end = int(ends[index])
        start = int(ends[index - 1]) + 1 if index > 0 else 0
        with self._path.open("rb") as handle:
            handle.seek(start)
            return handle.read(end - start).decode("utf-8")


CHUNK = 1 << 24
BLOCK = 1 << 20  # reads of a batch of lines


def _convert(kind: type, value: str) -> object:
    if kind is bool:
        return value == "True"
    return kind(value)


def join_inputs(sent: Table, received: Table, inputs: Sequence[str] = ()) -> Table:
    """``received`` with the key, the seq and the input columns ``inputs`` of every row whose id was sent taken
    from the sent ledger (an application need only pass the id through); rows of ids never sent keep what their
    output carried. The received key values keep their codes; keys only the sent ledger knows are appended."""
    if not len(received) or not len(sent):
        return received
    s_id, r_id = sent["id"], received["id"]
    size = int(max(s_id.max(initial=-1), r_id.max(initial=-1))) + 1
    row_of = np.full(size, -1, dtype=np.int64)
    row_of[s_id] = np.arange(len(s_id))
    rows = row_of[r_id]
    known = rows >= 0
    if not known.any():
        return received
    at = np.where(known, rows, 0)
    keys = list(received.categories.get("key", []))
    index = {value: code for code, value in enumerate(keys)}
    sent_keys = sent.categories.get("key", [])
    for value in sent_keys:
        if value not in index:
            index[value] = len(keys)
            keys.append(value)
    to_merged = np.array([index[v] for v in sent_keys] + [-1], dtype=np.int64)
    columns = dict(received.columns)
    key_dtype = np.int32 if len(keys) < 2**31 else np.int64
    columns["key"] = np.where(known, to_merged[sent["key"][at]], received["key"]).astype(key_dtype)
    columns["seq"] = np.where(known, sent["seq"][at], received["seq"]).astype(received["seq"].dtype)
    for name in inputs:
        if name in sent.columns:
            own = received.columns.get(name)
            fallback = own if own is not None else np.zeros(len(received))
            columns[name] = np.where(known, sent[name][at], fallback).astype(np.float64)
    categories = {**received.categories, "key": keys}
    return Table(columns, categories, received.ids)
