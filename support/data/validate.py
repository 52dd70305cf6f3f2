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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from support.data.ledger import FAIL, OK, UNKNOWN, ReceivedRow, SentRow, Table
from support.data.state import StateReport, check_state
from support.data.streams import (
    LOOP_ROWS,
    LOOP_STREAMS,
    SAMPLE,
    _as_tables,
    _dc_key_groups,
    _FreshRows,
    _group_index,
    _Groups,
    _id_counts,
    _looped,
    _repeats,
    _times,
    output_times,
    prepare,
)

__all__ = ["LOOP_ROWS", "LOOP_STREAMS", "DeliveryReport", "OrderReport", "SplitBrainReport", "StateReport",
           "check_delivery", "check_order", "check_split_brain", "check_state", "output_times", "prepare"]


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
    tolerance_s: float = 0.0  # overlaps up to this long were not counted (clock skew)
    #: how far the data centers' output stamps may be off one another after correction (None: not estimated; see
    #: support.clocks.error_bound); the tolerance is at least this
    error_bound_s: float | None = 0.0
    clocks_used: list[str] = field(default_factory=list)  # the data centers whose clocks dated the outputs

    def to_json(self) -> dict[str, Any]:
        return {"keys": self.keys, "overlap_s": round(self.overlap_s, 3), "dcs": self.dcs,
                "tolerance_s": round(self.tolerance_s, 6), "error_bound_s": self.error_bound_s,
                "clocks_used": self.clocks_used,
                "windows": [[round(a, 3), round(b, 3)] for a, b in self.windows[:SAMPLE]], "samples": self.samples}


MAX_PARTNER_SCAN = 10_000  # hit rows whose partner DC is looked up (naming only)


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


def check_split_brain(received: Table | Sequence[ReceivedRow], gap: float = 2.0, tolerance: float = 0.0,
                      error_bound: float | None = 0.0) -> SplitBrainReport:
    """For each key and data center, the emission times form activity intervals (split where the key went
    quiet for more than ``gap`` seconds). Two intervals of one key from different data centers that overlap
    by more than ``tolerance`` seconds (clock skew), or than ``error_bound`` (how far the data centers' stamps may
    be off one another) where that is longer, are split brain."""
    tolerance = max(tolerance, error_bound or 0.0)
    r = received if isinstance(received, Table) else _as_tables([], received)[1]
    if len(r) == 0 or len(r.categories.get("dc", [])) < 2:
        return SplitBrainReport(0, [], 0.0, tolerance_s=tolerance, error_bound_s=error_bound)
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
        tolerance_s=tolerance,
        error_bound_s=error_bound,
    )


# --------------------------------------------------------------------------------------------- state


