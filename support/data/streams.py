"""What the checkers share over the received ledger: tables from rows, the rows ordered by (data center, key)
stream, which rows repeat an earlier id, the output times; each computed once and remembered while the column
arrays it was computed from live (columns are treated as immutable)."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from support.data.ledger import IdTable, ReceivedRow, SentRow, Table

SAMPLE = 20  # evidence samples kept per verdict
#: per-stream work loops over each (data center, key) stream's slice of the grouped order, instead of building arrays
#: the size of the whole ledger (whose fresh pages cost more than the arithmetic), when there are at most this many
#: streams with on average at least LOOP_ROWS rows (below, a loop's overhead per stream costs more)
LOOP_STREAMS = 20_000
LOOP_ROWS = 1500
SUM_TOLERANCE = 0.015  # the aggregator rounds sums to 2 decimals after each update


def _as_tables(sent: Table | Sequence[SentRow], received: Table | Sequence[ReceivedRow]) -> tuple[Table, Table]:
    if isinstance(sent, Table) and isinstance(received, Table):
        return sent, received
    ids = IdTable()
    s = sent if isinstance(sent, Table) else Table.from_rows(list(sent), SentRow, ids)
    r = received if isinstance(received, Table) else Table.from_rows(list(received), ReceivedRow, ids)
    if not isinstance(sent, Table) or not isinstance(received, Table):
        names = ids.names()
        s.ids = r.ids = names
    return s, r


def _code_map(source: Table, target: Table, column: str) -> np.ndarray:
    """Codes of ``source[column]`` -> codes of the same text in ``target`` (-1 when absent)."""
    index = {value: code for code, value in enumerate(target.categories.get(column, []))}
    return np.array([index.get(v, -1) for v in source.categories.get(column, [])] + [-1], dtype=np.int64)


T = TypeVar("T")
_MEMO: dict[tuple[str, tuple[int, ...]], tuple[tuple[weakref.ref[np.ndarray], ...], Any]] = {}
_MEMO_LOCK = threading.Lock()


def _memo(name: str, arrays: tuple[np.ndarray, ...], compute: Callable[[], T]) -> T:
    """``compute()``, remembered while ``arrays`` (the columns it derives from) live."""
    key = (name, tuple(id(a) for a in arrays))
    with _MEMO_LOCK:
        hit = _MEMO.get(key)
    if hit is not None and all(ref() is a for ref, a in zip(hit[0], arrays, strict=True)):
        return hit[1]
    value = compute()
    try:
        refs = tuple(weakref.ref(a) for a in arrays)
    except TypeError:  # not weak-referenceable: not remembered
        return value
    with _MEMO_LOCK:
        _MEMO[key] = (refs, value)
    for a in arrays:
        weakref.finalize(a, _forget, key, refs)
    return value


def _forget(key: tuple[str, tuple[int, ...]], refs: tuple[weakref.ref[np.ndarray], ...]) -> None:
    with _MEMO_LOCK:
        if key in _MEMO and _MEMO[key][0] is refs:
            del _MEMO[key]


def _times(received: Table) -> np.ndarray:
    """:func:`output_times`, without a copy when every row has ``processed_at`` (then ``t_recv`` is not read)."""
    processed = received["processed_at"]

    def compute() -> np.ndarray | None:  # never the column itself: a remembered value must not keep it alive
        return None if (processed > 0).all() else np.where(processed > 0, processed, received["t_recv"])

    times = _memo("times", (processed, received["t_recv"]), compute)
    return processed if times is None else times


def prepare(received: Table) -> None:
    """Compute what several checkers derive from the received columns (ids seen more than once, the order of the
    rows by data center and key, output times) ahead of them; optional, each checker does it when needed."""
    if len(received):
        _repeats(received["id"])
        _dc_key_groups(received)
        _times(received)


def output_times(received: Table) -> np.ndarray:
    """When each output tuple was emitted: ``processed_at`` (stamped by the data center), else the time the
    tester retrieved it."""
    return _times(received).copy()


def _id_counts(ids: np.ndarray) -> np.ndarray:
    """How often each id code occurs, capped at 2 (0, 1, or 2 for several), indexed by code."""
    def compute() -> np.ndarray:
        counts = np.bincount(ids)
        return np.minimum(counts, 2, out=counts).astype(np.uint8)

    return _memo("id_counts", (ids,), compute)


# ------------------------------------------------------------------------------------------ delivery


def _repeats(ids: np.ndarray) -> np.ndarray:
    """Mask of rows whose id already occurred in an earlier row."""
    def compute() -> np.ndarray:
        repeat = np.zeros(len(ids), dtype=bool)
        if not len(ids):
            return repeat
        candidates = np.flatnonzero(_id_counts(ids)[ids] > 1)
        if len(candidates):
            _, first = np.unique(ids[candidates], return_index=True)
            repeat[candidates] = True
            repeat[candidates[first]] = False
        return repeat

    return _memo("repeats", (ids,), compute)


@dataclass(frozen=True)
class _Groups:
    """Received rows ordered by (data center, key), in row order within each: group g = dc * keys + key holds
    rows ``order[bounds[g]:bounds[g + 1]]``."""

    order: np.ndarray
    bounds: np.ndarray
    keys: int
    code: np.ndarray  # each row's group


def _dc_key_groups(r: Table) -> _Groups:
    dc, key = r["dc"], r["key"]
    nkeys = max(1, len(r.categories.get("key", [])))
    ndc = max(1, len(r.categories.get("dc", [])))

    def compute() -> _Groups:
        if ndc * nkeys <= 65536:
            groups = dc.astype(np.uint16)
            groups *= nkeys
            np.add(groups, key, out=groups, casting="unsafe")  # fits: 16-bit codes are radix sorted
        else:
            groups = dc.astype(np.int64) * nkeys + key
        order = np.argsort(groups, kind="stable")
        bounds = np.zeros(ndc * nkeys + 1, dtype=np.int64)
        np.cumsum(np.bincount(groups, minlength=ndc * nkeys), out=bounds[1:])
        return _Groups(order, bounds, nkeys, groups)

    return _memo(f"groups{nkeys}x{ndc}", (dc, key), compute)


def _looped(groups: _Groups, rows: int) -> bool:
    """Whether per-stream work loops over the streams (see :data:`LOOP_STREAMS`)."""
    streams = int(np.count_nonzero(np.diff(groups.bounds)))
    return streams <= LOOP_STREAMS and rows >= LOOP_ROWS * streams


def _group_index(bounds: np.ndarray, counts_dtype: type = np.int64) -> np.ndarray:
    """The group of each position of a grouped order."""
    return np.repeat(np.arange(len(bounds) - 1, dtype=counts_dtype), np.diff(bounds))


class _FreshRows:
    """The rows of a (dc, key) stream without repeats of an earlier id: repeats are rare, so they are looked up
    in their stream (rows ascend within one) rather than masked out by a gather over the whole stream."""

    def __init__(self, groups: _Groups, repeat: np.ndarray) -> None:
        repeated = np.flatnonzero(repeat)
        self.groups = groups
        self.repeated = repeated[np.argsort(groups.code[repeated], kind="stable")]
        self.bounds = np.searchsorted(groups.code[self.repeated], np.arange(len(groups.bounds)))

    def of(self, g: int) -> np.ndarray:
        rows = self.groups.order[self.groups.bounds[g]:self.groups.bounds[g + 1]]
        if self.bounds[g + 1] > self.bounds[g]:
            rows = np.delete(rows, np.searchsorted(rows, self.repeated[self.bounds[g]:self.bounds[g + 1]]))
        return rows


