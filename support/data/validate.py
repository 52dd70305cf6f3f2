"""Checkers over the ledgers, with numpy: over whole columns, or, for work per (data center, key) stream when the
streams are few and long (see :data:`LOOP_STREAMS`), over each stream's slice of one shared order of the rows.

- delivery: lost (acknowledged, never received), duplicated, unknown, phantom (refused yet delivered),
  corrupted (crc), unexpected (never sent);
- order: tuples of one key that came out of one data center's output stream after a later tuple of that key;
- split brain: two data centers emitting the same key in overlapping time;
- state: after a takeover, the state the new active restored (seen through its first outputs per key) must
  equal the old active's state after some earlier update of that key, or be empty; the old active's updates
  after that one are lost state updates, and their time span is the state loss window.

Inputs are :class:`~support.data.ledger.Table` columns (or lists of rows, converted). Columns are treated as
immutable: what several checkers derive from the same received columns (which rows repeat an earlier id, the
order of the rows by data center and key, the output times) is computed once and remembered while those
column arrays live.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from support.data.ledger import FAIL, OK, UNKNOWN, IdTable, ReceivedRow, SentRow, Table

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


@dataclass(frozen=True)
class DeliveryReport:
    """Record-level accounting of one scenario's traffic."""

    sent: int
    acknowledged: int
    failed: int
    unknown: int
    received: int
    delivered_once: int
    duplicated_ids: list[str] = field(default_factory=list)
    lost_ids: list[str] = field(default_factory=list)
    phantom_ids: list[str] = field(default_factory=list)
    corrupted_ids: list[str] = field(default_factory=list)
    unexpected_ids: list[str] = field(default_factory=list)
    unknown_delivered: int = 0
    loss_window: float = 0.0
    lost_first_sent: float | None = None
    lost_last_sent: float | None = None
    received_by_dc: dict[str, int] = field(default_factory=dict)
    lost_by_dc: dict[str, int] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return len(self.lost_ids)

    @property
    def duplicated(self) -> int:
        return len(self.duplicated_ids)

    def counts(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "acknowledged": self.acknowledged,
            "failed": self.failed,
            "unknown": self.unknown,
            "received": self.received,
            "delivered_once": self.delivered_once,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "phantom": len(self.phantom_ids),
            "corrupted": len(self.corrupted_ids),
            "unexpected": len(self.unexpected_ids),
            "unknown_delivered": self.unknown_delivered,
            "loss_window_s": round(self.loss_window, 3),
            "lost_first_sent": self.lost_first_sent,
            "lost_last_sent": self.lost_last_sent,
            "received_by_dc": dict(self.received_by_dc),
            "lost_by_dc": dict(self.lost_by_dc),
        }


def check_delivery(sent: Table | Sequence[SentRow], received: Table | Sequence[ReceivedRow]) -> DeliveryReport:
    """Compare what was sent with what came out.

    lost: acknowledged (ok) but never received; phantom: refused (fail) yet received; unknown outcomes
    may go either way; duplicated: received more than once; corrupted: crc mismatch on output;
    unexpected: received but never sent.
    """
    s, r = _as_tables(sent, received)
    s_id, r_id = s["id"], r["id"]
    size = int(max(s_id.max(initial=-1), r_id.max(initial=-1))) + 1
    seen = _id_counts(r_id) if len(r_id) else np.zeros(0, dtype=np.uint8)
    if len(seen) < size:
        seen = np.concatenate([seen, np.zeros(size - len(seen), dtype=np.uint8)])
    has_sent = np.zeros(size, dtype=bool)
    has_sent[s_id] = True
    ok, fail, unknown = s.is_("outcome", OK), s.is_("outcome", FAIL), s.is_("outcome", UNKNOWN)
    seen_sent = seen[s_id]
    lost_rows = np.flatnonzero(ok & (seen_sent == 0))
    lost_times = s["t_send"][lost_rows]
    ids = s.ids if len(s.ids) >= len(r.ids) else r.ids
    table = Table({}, {}, ids)
    dc_counts = np.bincount(r["dc"], minlength=len(r.categories.get("dc", [])))
    lost_dc = np.bincount(s["dc"][lost_rows], minlength=len(s.categories.get("dc", [])))
    corrupted = np.unique(r_id[~r["crc_ok"]])
    return DeliveryReport(
        sent=len(s),
        acknowledged=int(ok.sum()),
        failed=int(fail.sum()),
        unknown=int(unknown.sum()),
        received=len(r),
        delivered_once=int(np.count_nonzero(seen == 1)),
        duplicated_ids=table.id_text(np.flatnonzero(seen > 1)),
        lost_ids=table.id_text(s_id[lost_rows]),
        phantom_ids=table.id_text(np.unique(s_id[fail & (seen_sent > 0)])),
        corrupted_ids=table.id_text(corrupted),
        unexpected_ids=table.id_text(np.flatnonzero((seen > 0) & ~has_sent)),
        unknown_delivered=int((unknown & (seen_sent > 0)).sum()),
        loss_window=float(lost_times.max() - lost_times.min()) if len(lost_times) else 0.0,
        lost_first_sent=float(lost_times.min()) if len(lost_times) else None,
        lost_last_sent=float(lost_times.max()) if len(lost_times) else None,
        received_by_dc={dc: int(n) for dc, n in zip(r.categories.get("dc", []), dc_counts, strict=False) if n},
        lost_by_dc={dc or "none": int(n) for dc, n in zip(s.categories.get("dc", []), lost_dc, strict=False) if n},
    )


# --------------------------------------------------------------------------------------------- order


@dataclass(frozen=True)
class OrderReport:
    """Tuples that came out of a data center after a later tuple of the same key (duplicates excluded)."""

    checked: int
    reordered: int
    keys: int
    samples: list[dict[str, Any]] = field(default_factory=list)
    by_dc: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"checked": self.checked, "reordered": self.reordered, "keys": self.keys, "by_dc": self.by_dc,
                "samples": self.samples}


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


def check_order(received: Table | Sequence[ReceivedRow]) -> OrderReport:
    """Per key and per data center output stream (the order tuples were retrieved from that DC's sink),
    ``seq`` must never go back. Repeats of an id already received are duplicates, not reordering."""
    r = received if isinstance(received, Table) else _as_tables([], received)[1]
    n = len(r)
    if n == 0:
        return OrderReport(0, 0, 0)
    groups = _dc_key_groups(r)
    order, bounds = groups.order, groups.bounds
    seq = r["seq"]
    low = int(seq.min())
    span = int(seq.max()) - low + 1
    # seq in (dc, key, row) order, each group lifted above the previous one: a running max sees only its group
    ngroups = len(bounds) - 1
    wide = np.int32 if ngroups * span < 2**31 else np.int64
    value = seq[order].astype(wide, copy=False)
    value -= low
    lift = _group_index(bounds, wide)
    lift *= span
    value += lift
    del lift
    running = np.maximum.accumulate(value)
    late = np.flatnonzero(value[1:] < running[:-1]) + 1
    del value
    rows, prior_value = order[late], running[late - 1].astype(np.int64)
    del running
    fresh = ~_repeats(r["id"])[rows]  # a repeat of an id already received is a duplicate, not reordering
    rows, prior_value = rows[fresh], prior_value[fresh]
    dcs = r.categories.get("dc", [])
    by_dc = np.bincount(r["dc"][rows], minlength=len(dcs))
    samples = []
    priors = (prior_value % span + low)[:SAMPLE].tolist()
    for row, prior in zip(rows[:SAMPLE].tolist(), priors, strict=False):
        samples.append({"id": r.ids[int(r["id"][row])], "key": r.categories["key"][int(r["key"][row])],
                        "dc": dcs[int(r["dc"][row])], "seq": int(seq[row]), "after_seq": int(prior)})
    return OrderReport(
        checked=n,
        reordered=len(rows),
        keys=len(np.unique(r["key"][rows])) if len(rows) else 0,
        samples=samples,
        by_dc={dc: int(c) for dc, c in zip(dcs, by_dc, strict=False) if c},
    )


# ---------------------------------------------------------------------------------------- split brain


@dataclass(frozen=True)
class SplitBrainReport:
    """Keys emitted by two data centers in overlapping time."""

    keys: int
    windows: list[tuple[float, float]]
    overlap_s: float
    samples: list[dict[str, Any]] = field(default_factory=list)
    dcs: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"keys": self.keys, "overlap_s": round(self.overlap_s, 3), "dcs": self.dcs,
                "windows": [[round(a, 3), round(b, 3)] for a, b in self.windows[:SAMPLE]], "samples": self.samples}


MAX_PARTNER_SCAN = 10_000  # hit rows whose partner DC is looked up (naming only)


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


def _stream_intervals(groups: _Groups, repeat: np.ndarray, times: np.ndarray, t0: float, gap: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Activity intervals of each (dc, key) stream, one stream at a time: (group, start, end), times - ``t0``."""
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    bounds = groups.bounds
    fresh_rows = _FreshRows(groups, repeat)
    for g in np.flatnonzero(np.diff(bounds)).tolist():
        rows = fresh_rows.of(g)
        if not len(rows):
            continue
        t = times[rows]
        t -= t0
        t.sort(kind="stable")  # nearly sorted: a cheap (tim)sort
        cut = np.flatnonzero(np.diff(t) > gap)
        found.append((np.full(len(cut) + 1, g, dtype=np.int64), t[np.r_[0, cut + 1]], t[np.r_[cut, len(t) - 1]]))
    if not found:
        return np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0)
    return (np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found]),
            np.concatenate([f[2] for f in found]))


def _stream_intervals_vectorized(groups: _Groups, repeat: np.ndarray, times: np.ndarray, t0: float, gap: float
                                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_stream_intervals` over all streams at once (for many streams)."""
    kept = ~repeat[groups.order]
    order = groups.order[kept]  # fresh rows by (dc, key), in row order within each
    counted = np.zeros(len(kept) + 1, dtype=np.int64)
    np.cumsum(kept, out=counted[1:])
    bounds = counted[groups.bounds]  # the groups' bounds among the fresh rows
    del kept, counted
    t = times[order]
    del order
    t -= t0
    new_group = np.zeros(len(t), dtype=bool)
    new_group[bounds[:-1][np.diff(bounds) > 0]] = True
    within = ~new_group[1:]
    if ((t[1:] < t[:-1]) & within).any():  # sort each group by time
        horizon = float(t.max()) + 1.0
        composite = _group_index(bounds, np.float64)
        composite *= horizon
        composite += t
        by_time = np.argsort(composite, kind="stable")  # nearly sorted: a cheap (tim)sort
        del composite
        t_sorted = t[by_time]
        if ((t_sorted[1:] < t_sorted[:-1]) & within).any():  # rounding merged some times: sort exactly
            by_time = np.lexsort((t, _group_index(bounds)))
            t_sorted = t[by_time]
        t = t_sorted
        del by_time, t_sorted
    starts = np.flatnonzero(np.r_[True, within & (np.diff(t) > gap)] | new_group)
    ends = np.r_[starts[1:], len(t)] - 1
    return np.searchsorted(bounds, starts, side="right") - 1, t[starts], t[ends]


def check_split_brain(received: Table | Sequence[ReceivedRow], gap: float = 2.0, tolerance: float = 0.0
                      ) -> SplitBrainReport:
    """For each key and data center, the emission times form activity intervals (split where the key went
    quiet for more than ``gap`` seconds). Two intervals of one key from different data centers that overlap
    by more than ``tolerance`` seconds (clock skew) are split brain."""
    r = received if isinstance(received, Table) else _as_tables([], received)[1]
    if len(r) == 0 or len(r.categories.get("dc", [])) < 2:
        return SplitBrainReport(0, [], 0.0)
    groups = _dc_key_groups(r)
    repeat = _repeats(r["id"])  # a re-emitted duplicate is judged by the duplicate check
    times = _times(r)
    t0 = float(np.min(times, where=~repeat, initial=np.inf))
    nkeys = groups.keys
    if _looped(groups, len(r)):
        i_group, i_start, i_end = _stream_intervals(groups, repeat, times, t0, gap)
    else:
        i_group, i_start, i_end = _stream_intervals_vectorized(groups, repeat, times, t0, gap)
    i_key, i_dc = i_group % nkeys, i_group // nkeys
    horizon = float(i_end.max(initial=0.0)) + 1.0
    by_start = np.lexsort((i_start, i_key))
    k, s, e, d = i_key[by_start], i_start[by_start], i_end[by_start], i_dc[by_start]
    shifted = k * horizon * 4 + e  # running max of end within a key: keys are separated by a large offset
    running = np.maximum.accumulate(shifted)
    prior = np.empty(len(k))
    prior[0] = -np.inf
    prior[1:] = running[:-1]
    prior_end = prior - k * horizon * 4
    hit = (prior_end > s + tolerance) & (np.r_[False, k[1:] == k[:-1]])
    rows = np.flatnonzero(hit)
    windows = sorted((float(s[i] + t0), float(min(e[i], prior_end[i]) + t0)) for i in rows)
    merged: list[tuple[float, float]] = []
    for a, b in windows:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    keys_hit = np.unique(k[rows])
    names, dcs = r.categories["key"], r.categories["dc"]
    # both sides of each overlap: the interval that starts inside an earlier one, and that earlier one's DC
    involved = {int(x) for x in d[rows]}
    for i in rows[:MAX_PARTNER_SCAN]:
        j = i - 1
        while j >= 0 and k[j] == k[i]:
            if e[j] > s[i] + tolerance and d[j] != d[i]:
                involved.add(int(d[j]))
                break
            j -= 1
    samples = [{"key": names[int(k[i])], "dc": dcs[int(d[i])], "from": round(float(s[i] + t0), 3),
                "until": round(float(min(e[i], prior_end[i]) + t0), 3)} for i in rows[:SAMPLE]]
    return SplitBrainReport(
        keys=len(keys_hit),
        windows=merged,
        overlap_s=sum(b - a for a, b in merged),
        samples=samples,
        dcs=sorted(dcs[x] for x in involved) if len(rows) else [],
    )


# --------------------------------------------------------------------------------------------- state


@dataclass(frozen=True)
class StateReport:
    """The new active's restored state per key, judged against the old active's history of that key."""

    old: str
    new: str
    since: float
    keys_judged: int
    consistent: int
    empty: int
    unverified: int
    inconsistent: int
    shared_keys: int
    keys_not_seen: int
    lost_updates: int
    loss_window: float
    loss_first: float | None
    loss_last: float | None
    max_key_window: float
    samples: list[dict[str, Any]] = field(default_factory=list)
    lost_samples: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "old": self.old, "new": self.new, "since": self.since, "keys_judged": self.keys_judged,
            "consistent": self.consistent, "empty": self.empty, "unverified": self.unverified,
            "inconsistent": self.inconsistent, "shared_keys": self.shared_keys, "keys_not_seen": self.keys_not_seen,
            "lost_updates": self.lost_updates, "state_loss_window_s": round(self.loss_window, 3),
            "state_loss_first": self.loss_first, "state_loss_last": self.loss_last,
            "max_key_window_s": round(self.max_key_window, 3),
            "inconsistent_samples": self.samples, "lost_samples": self.lost_samples,
        }


def _group_starts(sorted_keys: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]) if len(sorted_keys) else \
        np.empty(0, dtype=np.int64)


class _SentUpto:
    """How many tuples of a key were sent to ``new`` (acknowledged or unknown) from ``since`` on with a seq up to a
    given one. ``key_map`` maps received key codes to the sent ledger's (-1: never sent)."""

    def __init__(self, s: Table, new: str, since: float, key_map: np.ndarray) -> None:
        to_new = s.is_("dc", new) & (s.is_("outcome", OK) | s.is_("outcome", UNKNOWN))
        to_new &= s["t_send"] >= since
        self.key_map = key_map
        sent_key, sent_seq = s["key"][to_new], s["seq"][to_new]
        del to_new
        self.lowest = int(sent_seq.min(initial=0))
        self.span = int(sent_seq.max(initial=0)) - self.lowest + 2
        cells = max(1, len(s.categories.get("key", []))) * self.span
        comp = np.multiply(sent_key, self.span, dtype=np.int64)
        del sent_key
        comp += sent_seq
        comp -= self.lowest
        del sent_seq
        self.dense = cells <= 4 * len(comp) + (1 << 20)
        if self.dense:  # below[x]: sent (key, seq) cells < x, from a count per cell
            comp += 1
            self.below = np.bincount(comp, minlength=cells + 1)
            np.cumsum(self.below, out=self.below)
        else:
            comp.sort()
            self.below = comp

    def count(self, keys: np.ndarray, seqs: np.ndarray) -> np.ndarray:
        """For received key codes ``keys`` and seqs ``seqs``."""
        sent_keys = self.key_map[keys]
        known = sent_keys >= 0
        base = np.where(known, sent_keys, 0).astype(np.int64) * self.span
        # a seq beyond what was sent counts every tuple of the key; below the lowest, none
        top = base + np.clip(seqs.astype(np.int64) - self.lowest, -1, self.span - 2)
        if self.dense:
            upto = self.below[top + 1] - self.below[base]
        else:
            upto = (np.searchsorted(self.below, top, side="right")
                    - np.searchsorted(self.below, base, side="left"))
        upto[~known] = 0
        return upto


def _keys_with(groups: _Groups, code: int, mask: np.ndarray) -> np.ndarray:
    """Keys of which data center ``code`` has rows that ``mask`` selects."""
    bounds = groups.bounds[code * groups.keys:(code + 1) * groups.keys + 1]
    found = np.zeros(groups.keys, dtype=bool)
    present = np.flatnonzero(np.diff(bounds))
    if len(present):
        chosen = mask[groups.order[bounds[0]:bounds[-1]]]
        found[present] = np.logical_or.reduceat(chosen, bounds[present] - bounds[0])
    return found


@dataclass
class _KeyHistory:
    """Per judged key (in key order): the range [lo, hi] of the restored count, the new active's first output (in
    seq order) and how many tuples had been sent to it up to that one, the old active's highest count, the
    highest count it reached not above hi (``found``) and the last row where it did."""

    keys: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    first: np.ndarray
    first_upto: np.ndarray
    old_max: np.ndarray
    best: np.ndarray
    found: np.ndarray
    best_row: np.ndarray
    histories: list[tuple[np.ndarray, np.ndarray]] | None = None  # per key: its old rows and their counts
    old_mask: np.ndarray | None = None  # else: the old active's rows that count


def _state_by_key(r: Table, groups: _Groups, judged: np.ndarray, new_code: int, new_after: np.ndarray | None,
                  old_code: int, old_mask: np.ndarray | None, upto: _SentUpto, fresh_rows: _FreshRows
                  ) -> _KeyHistory:
    """:class:`_KeyHistory`, one key at a time; a mask of None selects every row without repeats."""
    keys = np.flatnonzero(judged)
    n = len(keys)
    lo, hi, first, first_upto = (np.zeros(n, dtype=np.int64) for _ in range(4))
    old_max, best, best_row = (np.zeros(n, dtype=np.int64) for _ in range(3))
    found = np.zeros(n, dtype=bool)
    histories = []
    seq, count = r["seq"], r["count_for_key"]
    bounds, order, nkeys = groups.bounds, groups.order, groups.keys
    for i, key in enumerate(keys.tolist()):
        if new_after is None:
            rows = fresh_rows.of(new_code * nkeys + key)
        else:
            rows = order[bounds[new_code * nkeys + key]:bounds[new_code * nkeys + key + 1]]
            rows = rows[new_after[rows]]
        seqs = seq[rows]
        by_seq = np.argsort(seqs, kind="stable")
        rows, seqs = rows[by_seq], seqs[by_seq]
        counts = count[rows].astype(np.int64)
        up = upto.count(np.full(len(rows), key), seqs)
        position = np.arange(1, len(rows) + 1)
        lo[i] = (counts - np.maximum(position, up)).max()
        hi[i] = (counts - np.minimum(position, up)).min()
        first[i], first_upto[i] = rows[0], up[0]
        if old_mask is None:
            history = fresh_rows.of(old_code * nkeys + key)
        else:
            history = order[bounds[old_code * nkeys + key]:bounds[old_code * nkeys + key + 1]]
            history = history[old_mask[history]]
        reached = count[history]
        histories.append((history, reached))
        old_max[i] = reached.max()
        below = np.flatnonzero(reached <= hi[i])
        if len(below):
            found[i] = True
            best[i] = reached[below].max()
            best_row[i] = history[np.flatnonzero(reached == best[i])[-1]]
    return _KeyHistory(keys, lo, hi, first, first_upto, old_max, best, found, best_row, histories)


def _state_vectorized(r: Table, groups: _Groups, judged: np.ndarray, new_code: int, new_after: np.ndarray,
                      old_code: int, old_mask: np.ndarray, upto: _SentUpto) -> _KeyHistory:
    """:class:`_KeyHistory` for all keys at once (for many keys)."""
    new_rows, nk = _block(groups, new_code, new_after, judged)
    seq = r["seq"][new_rows]
    if len(seq):
        by_seq = nk.astype(np.int64)
        by_seq *= int(seq.max()) - int(seq.min()) + 1
        by_seq += seq
        by_seq -= int(seq.min())
        by_seq = np.argsort(by_seq, kind="stable")  # nearly sorted already: a cheap (tim)sort
        new_rows, nk, seq = new_rows[by_seq], nk[by_seq], seq[by_seq]
        del by_seq
    starts = _group_starts(nk)
    position = np.arange(1, len(nk) + 1) - np.repeat(starts, np.diff(np.r_[starts, len(nk)]))
    count = r["count_for_key"][new_rows]
    up = upto.count(nk, seq)
    high_p = np.maximum(position, up)
    np.minimum(position, up, out=position)  # position becomes the lower bound of p
    lo = np.maximum.reduceat(count - high_p, starts) if len(starts) else np.empty(0, dtype=np.int64)
    del high_p
    hi = np.minimum.reduceat(count - position, starts) if len(starts) else np.empty(0, dtype=np.int64)
    del position
    group_key = nk[starts]

    # the old active's history of those keys, sorted by (key, count) (ties in row order)
    old_rows, ok_ = _block(groups, old_code, old_mask, judged)
    count_span = int(max(r["count_for_key"].max(initial=0), 0)) + 2
    old_comp = ok_.astype(np.int64) * count_span + r["count_for_key"][old_rows]
    by_comp = np.argsort(old_comp, kind="stable")  # nearly sorted already
    old_comp, old_rows = old_comp[by_comp], old_rows[by_comp]
    key_base = group_key.astype(np.int64) * count_span
    old_max = old_comp[np.searchsorted(old_comp, key_base + count_span, side="left") - 1] - key_base
    upper = np.minimum(hi, count_span - 1)
    at = np.searchsorted(old_comp, key_base + upper, side="right") - 1
    found = (at >= 0) & (old_comp[np.maximum(at, 0)] >= key_base)
    best = np.where(found, old_comp[np.maximum(at, 0)] - key_base, -1)
    best_row = old_rows[np.maximum(at, 0)] if len(old_rows) else np.zeros(len(starts), dtype=np.int64)
    return _KeyHistory(group_key, lo, hi, new_rows[starts], up[starts], old_max, best, found, best_row,
                       old_mask=old_mask)


def _block(groups: _Groups, code: int, mask: np.ndarray, judged: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of data center ``code`` that ``mask`` selects, of judged keys, by key (in row order within a
    key), and their keys."""
    bounds = groups.bounds[code * groups.keys:(code + 1) * groups.keys + 1]
    rows = groups.order[bounds[0]:bounds[-1]]
    keys = np.repeat(np.arange(groups.keys, dtype=np.int32), np.diff(bounds))
    chosen = mask[rows] & judged[keys]
    return rows[chosen], keys[chosen]


def _lost_by_key(r: Table, groups: _Groups, old_code: int, k: _KeyHistory, restored_of_key: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per key with lost updates (in key order): their number, first and last time; one key at a time."""
    times = _times(r)
    assert k.histories is not None
    out: list[tuple[int, int, float, float]] = []
    for i, key in enumerate(k.keys.tolist()):
        history, reached = k.histories[i]
        lost = history[reached > restored_of_key[key]]
        if len(lost):
            t = times[lost]
            out.append((key, len(lost), float(t.min()), float(t.max())))
    return (np.array([o[0] for o in out], dtype=np.int64), np.array([o[1] for o in out], dtype=np.int64),
            np.array([o[2] for o in out], dtype=np.float64), np.array([o[3] for o in out], dtype=np.float64))


def _lost_vectorized(r: Table, groups: _Groups, old_code: int, k: _KeyHistory, restored_of_key: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_lost_by_key` for all keys at once."""
    judged = np.zeros(groups.keys, dtype=bool)
    judged[k.keys] = True
    assert k.old_mask is not None
    old_rows, ok_ = _block(groups, old_code, k.old_mask, judged)
    lost = r["count_for_key"][old_rows] > restored_of_key[ok_]
    lost_rows, lk = old_rows[lost], ok_[lost]
    if not len(lost_rows):
        empty = np.zeros(0)
        return empty.astype(np.int64), empty.astype(np.int64), empty, empty
    lost_times = _times(r)[lost_rows]
    order = np.lexsort((lost_times, lk))
    lk, lt = lk[order], lost_times[order]
    ls = _group_starts(lk)
    le = np.r_[ls[1:], len(lk)] - 1
    return lk[ls].astype(np.int64), le - ls + 1, lt[ls], lt[le]


def check_state(sent: Table | Sequence[SentRow], received: Table | Sequence[ReceivedRow],
                old: str, new: str, since: float) -> StateReport:
    """Judge the state ``new`` restored when it took over from ``old`` (outputs of ``new`` from ``since``).

    For key K, let o_1..o_m be the new active's outputs of K in order and p_i the number of K tuples it
    processed up to o_i: i <= p_i <= U_i, U_i = K tuples sent to ``new`` (acknowledged or unknown) up to
    o_i's seq. The restored count b satisfies b = count_i - p_i for every i; an empty range means the state
    changed outside processing (e.g. a snapshot merged late or twice). b must be 0 (never replicated) or a
    count the old active reached for K; when the first output pins it exactly, the restored sum must equal
    the old active's sum at that count. Updates of the old active beyond b are lost state updates.
    """
    s, r = _as_tables(sent, received)
    empty_report = StateReport(old, new, since, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, None, None, 0.0)
    old_code, new_code = r.code("dc", old), r.code("dc", new)
    if old_code < 0 or new_code < 0 or len(r) == 0:
        return empty_report
    times = _times(r)
    dc, key = r["dc"], r["key"]
    repeat = _repeats(r["id"])  # a second emission of an id is a duplicate, not an update of the state
    fresh = ~repeat
    in_new = dc == new_code
    new_after = in_new & fresh
    new_after &= times >= since
    if not new_after.any():
        return empty_report
    first_new = float(np.min(times, where=new_after, initial=np.inf))
    all_new_after = float(np.min(times, where=in_new, initial=np.inf)) >= since
    in_old = dc == old_code
    old_mask = in_old & fresh
    old_mask &= times < first_new
    all_old_before = float(np.max(times, where=in_old, initial=-np.inf)) < first_new
    del fresh
    nkeys = len(r.categories["key"])
    # keys the new active served itself while the old one was emitting too (active/active): not restored from
    # the old one, so not judged. Output of the new one before the old one started (it is failing back, or
    # it is the same data center coming back) is history, not sharing.
    shared = np.zeros(nkeys, dtype=bool)
    if old_code != new_code and in_old.any():
        old_start = float(np.min(times, where=in_old, initial=np.inf))
        shared[key[in_new & (times >= old_start) & (times < since)]] = True
    del in_new, in_old
    groups = _dc_key_groups(r)
    has_old = _keys_with(groups, old_code, old_mask)
    has_new = _keys_with(groups, new_code, new_after)
    judged = has_old & has_new & ~shared
    upto = _SentUpto(s, new, since, _code_map(r, s, "key"))
    if _looped(groups, len(r)):
        # usually every output of the new active comes after ``since`` and every one of the old active before the
        # new one's first: then the masks are the rows without repeats, with no gather over the streams
        fresh_rows = _FreshRows(groups, repeat)
        k = _state_by_key(r, groups, judged, new_code, None if all_new_after else new_after,
                          old_code, None if all_old_before else old_mask, upto, fresh_rows)
    else:
        k = _state_vectorized(r, groups, judged, new_code, new_after, old_code, old_mask, upto)
    del new_after, old_mask, upto
    lo, hi, old_max, best, found = k.lo, k.hi, k.old_max, k.best, k.found
    group_key, first = k.keys, k.first
    count_first = r["count_for_key"][first]

    matched = found & (best >= np.maximum(lo, 1)) & (lo <= hi)
    match_count = np.where(matched, best, -1)
    empty = ~matched & (lo <= 0) & (hi >= 0)
    unverified = ~matched & ~empty & (lo <= hi) & (np.maximum(lo, 1) <= old_max)
    inconsistent = ~(matched | empty | unverified)
    restored = np.where(matched, match_count, np.where(empty, 0, np.where(unverified, np.minimum(hi, old_max), hi)))

    # sum check where the first output pins the restored state exactly
    pinned = matched & (k.first_upto == 1) & (count_first - 1 == match_count)
    restored_sum = r["sum_for_key"][first] - r["amount"][first]
    old_sum = r["sum_for_key"][np.maximum(k.best_row, 0)] if len(first) else np.zeros(0)
    has_amount = r["amount"][first] != 0
    sum_bad = pinned & has_amount & (np.abs(restored_sum - old_sum) > SUM_TOLERANCE)
    inconsistent |= sum_bad
    matched &= ~sum_bad

    # lost state updates: the old active's updates of each key beyond the restored count
    restored_of_key = np.full(nkeys, np.iinfo(np.int64).max, dtype=np.int64)
    restored_of_key[group_key] = np.where(inconsistent, np.iinfo(np.int64).max, restored)
    lost_keys, lost_n, lost_from, lost_until = (
        _lost_by_key if k.histories is not None else _lost_vectorized)(r, groups, old_code, k, restored_of_key)
    k.histories = None
    lost_updates = int(np.clip(old_max - restored, 0, None)[~inconsistent].sum())
    max_key_window = 0.0
    lost_samples: list[dict[str, Any]] = []
    if len(lost_keys):
        spans = lost_until - lost_from
        max_key_window = float(spans.max())
        names = r.categories["key"]
        for i in np.argsort(-spans, kind="stable")[:SAMPLE].tolist():
            lost_samples.append({"key": names[int(lost_keys[i])], "updates": int(lost_n[i]),
                                 "from": round(float(lost_from[i]), 3), "until": round(float(lost_until[i]), 3)})
    loss_first = float(lost_from.min()) if len(lost_keys) else None
    loss_last = float(lost_until.max()) if len(lost_keys) else None
    samples = []
    names = r.categories["key"]
    for g in np.flatnonzero(inconsistent)[:SAMPLE].tolist():
        late_restore = lo[g] > hi[g] and int(count_first[g]) == 1
        reason = ("its state changed outside processing: it resumed from an empty state, then jumped (the state "
                  "was restored after output had resumed)" if late_restore
                  else "its state changed outside processing (a restore merged late or twice)" if lo[g] > hi[g]
                  else "its restored sum differs from the old active's" if sum_bad[g]
                  else "no such state ever existed in the old active")
        samples.append({"key": names[int(group_key[g])], "restored_count_range": [int(lo[g]), int(hi[g])],
                        "old_max_count": int(old_max[g]), "first_output_id": r.ids[int(r["id"][first[g]])],
                        "first_output_at": round(float(times[first[g]]), 3),
                        "restored_sum": round(float(restored_sum[g]), 2), "reason": reason})
    keys_seen_old = int((has_old & ~shared).sum())
    return StateReport(
        old=old, new=new, since=since,
        keys_judged=len(group_key),
        consistent=int(matched.sum()), empty=int(empty.sum()), unverified=int(unverified.sum()),
        inconsistent=int(inconsistent.sum()),
        shared_keys=int((shared & has_old).sum()),
        keys_not_seen=keys_seen_old - len(group_key),
        lost_updates=lost_updates,
        loss_window=loss_last - loss_first if loss_first is not None and loss_last is not None else 0.0,
        loss_first=loss_first,
        loss_last=loss_last,
        max_key_window=max_key_window,
        samples=samples,
        lost_samples=lost_samples,
    )
