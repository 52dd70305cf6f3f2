"""The state check: after a takeover, the state the new active restored (seen through its first outputs per key)
must equal the old active's state after some earlier update of that key, or be empty; the old active's updates after
that one are lost state updates, and their time span is the state loss window.

The state is what the application declares (:attr:`~support.data.contract.DataContract.state`): its ``count``
aggregate places the restored state among the old active's updates; every other aggregate (``sum``, ``min``,
``max``, ``last`` of an input field) is verified where the first output pins the restored state exactly. Without
a ``count`` the check is not judged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from support.data.contract import ORDERS, Aggregate
from support.data.ledger import OK, UNKNOWN, ReceivedRow, SentRow, Table
from support.data.streams import (
    SAMPLE,
    SUM_TOLERANCE,
    _as_tables,
    _code_map,
    _dc_key_groups,
    _FreshRows,
    _Groups,
    _id_counts,
    _looped,
    _repeats,
    _times,
)


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
    not_judged: str = ""  # why the declared state cannot be judged (no state, no count)
    #: keys that restarted empty although the old active updated them before ``replicated_before`` (None: not asked)
    not_restored: int | None = None
    not_restored_samples: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"not_judged": self.not_judged} if self.not_judged else {}
        if self.not_restored is not None:
            extra.update(not_restored=self.not_restored, not_restored_samples=self.not_restored_samples)
        return {**extra,
            "old": self.old, "new": self.new, "since": self.since, "keys_judged": self.keys_judged,
            "consistent": self.consistent, "empty": self.empty, "unverified": self.unverified,
            "inconsistent": self.inconsistent, "shared_keys": self.shared_keys, "keys_not_seen": self.keys_not_seen,
            "lost_updates": self.lost_updates, "state_loss_window_s": round(self.loss_window, 3),
            "state_loss_first": self.loss_first, "state_loss_last": self.loss_last,
            "max_key_window_s": round(self.max_key_window, 3),
            "inconsistent_samples": self.samples, "lost_samples": self.lost_samples,
        }


_NOUN = {"sum": "sum", "min": "minimum", "max": "maximum", "last": "last value"}


#: restored counts are placed by subtracting at most the tuples processed: a count beyond this (only a damaged one)
#: is taken as this, which no old active reached either, so that the subtraction cannot wrap around
COUNT_BOUND = 1 << 62


def _bounded(counts: np.ndarray) -> np.ndarray:
    return np.clip(counts.astype(np.int64), -COUNT_BOUND, COUNT_BOUND)


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


def _unseen_by_key(s: Table, r: Table, old: str) -> np.ndarray:
    """Per received key code: the tuples sent to ``old`` (acknowledged or unknown) that never came out. ``old`` may
    have processed them and replicated the result before their outputs were lost (its job canceled before the
    sink was read), so its state may have gone that far beyond the highest count its outputs show."""
    nkeys = len(r.categories.get("key", []))
    to_old = s.is_("dc", old) & (s.is_("outcome", OK) | s.is_("outcome", UNKNOWN))
    if not to_old.any():
        return np.zeros(nkeys, dtype=np.int64)
    s_id = s["id"][to_old]
    seen = _id_counts(r["id"]) if len(r) else np.zeros(0, dtype=np.uint8)
    unseen = np.ones(len(s_id), dtype=bool)
    inside = s_id < len(seen)
    unseen[inside] = seen[s_id[inside]] == 0
    keys = _code_map(s, r, "key")[s["key"][to_old][unseen]]
    return np.bincount(keys[keys >= 0], minlength=nkeys).astype(np.int64)


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
                  old_code: int, old_mask: np.ndarray | None, upto: _SentUpto, fresh_rows: _FreshRows,
                  count_column: str) -> _KeyHistory:
    """:class:`_KeyHistory`, one key at a time; a mask of None selects every row without repeats."""
    keys = np.flatnonzero(judged)
    n = len(keys)
    lo, hi, first, first_upto = (np.zeros(n, dtype=np.int64) for _ in range(4))
    old_max, best, best_row = (np.zeros(n, dtype=np.int64) for _ in range(3))
    found = np.zeros(n, dtype=bool)
    histories = []
    seq, count = r["seq"], r[count_column]
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
        counts = _bounded(count[rows])
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
                      old_code: int, old_mask: np.ndarray, upto: _SentUpto, count_column: str) -> _KeyHistory:
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
    count = _bounded(r[count_column][new_rows])
    up = upto.count(nk, seq)
    high_p = np.maximum(position, up)
    np.minimum(position, up, out=position)  # position becomes the lower bound of p
    lo = np.maximum.reduceat(count - high_p, starts) if len(starts) else np.empty(0, dtype=np.int64)
    del high_p
    hi = np.minimum.reduceat(count - position, starts) if len(starts) else np.empty(0, dtype=np.int64)
    del position
    group_key = nk[starts]

    # the old active's history of those keys, sorted by (key, count) (ties in row order); a count enters the sort
    # key by its rank among the counts, so that any int64 count (a damaged one too) keeps the key within int64
    old_rows, ok_ = _block(groups, old_code, old_mask, judged)
    ranks = _CountRanks(r[count_column][old_rows], groups.keys)
    span = ranks.span
    old_comp = ok_.astype(np.int64) * span + ranks.rank
    by_comp = np.argsort(old_comp, kind="stable")  # nearly sorted already
    old_comp, old_rows = old_comp[by_comp], old_rows[by_comp]
    key_base = group_key.astype(np.int64) * span
    last = np.maximum(np.searchsorted(old_comp, key_base + span, side="left") - 1, 0)  # every judged key has rows
    old_max = ranks.value(old_comp[last] - key_base) if len(old_comp) else np.zeros(len(starts), dtype=np.int64)
    upper = ranks.rank_not_above(hi)
    at = np.searchsorted(old_comp, key_base + upper, side="right") - 1
    found = (upper >= 0) & (at >= 0) & (old_comp[np.maximum(at, 0)] >= key_base)
    best = np.where(found, ranks.value(old_comp[np.maximum(at, 0)] - key_base), -1) if len(old_comp) else \
        np.full(len(starts), -1, dtype=np.int64)
    best_row = old_rows[np.maximum(at, 0)] if len(old_rows) else np.zeros(len(starts), dtype=np.int64)
    return _KeyHistory(group_key, lo, hi, new_rows[starts], up[starts], old_max, best, found, best_row,
                       old_mask=old_mask)


class _CountRanks:
    """The old active's counts as ranks in ``[0, span - 1)``, so that (key, count) sorts as one int64 key * span +
    rank: the count less the lowest where the counts are a plausible range (the usual case, no sort needed), else
    the index among the distinct counts (a damaged count near the int64 limits would wrap the sum around)."""

    def __init__(self, counts: np.ndarray, keys: int) -> None:
        counts = _bounded(counts)  # as the new active's: every difference below stays within int64
        low, high = int(counts.min(initial=0)), int(counts.max(initial=0))
        self.values: np.ndarray | None = None
        if (high - low + 2) * (keys + 1) < COUNT_BOUND:
            self.low, self.span = low, high - low + 2
            self.rank = counts - low
        else:
            self.values, rank = np.unique(counts, return_inverse=True)
            self.low, self.span = 0, len(self.values) + 1
            self.rank = rank.reshape(-1).astype(np.int64)

    def value(self, rank: np.ndarray) -> np.ndarray:
        if self.values is None:
            return rank + self.low
        return self.values[np.clip(rank, 0, max(len(self.values) - 1, 0))] if len(self.values) else rank

    def rank_not_above(self, counts: np.ndarray) -> np.ndarray:
        """The rank of the highest count not above each of ``counts`` (-1: none is)."""
        if self.values is None:
            return np.clip(counts - self.low, -1, self.span - 2)
        return np.searchsorted(self.values, counts, side="right") - 1


def _block(groups: _Groups, code: int, mask: np.ndarray, judged: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of data center ``code`` that ``mask`` selects, of judged keys, by key (in row order within a
    key), and their keys."""
    bounds = groups.bounds[code * groups.keys:(code + 1) * groups.keys + 1]
    rows = groups.order[bounds[0]:bounds[-1]]
    keys = np.repeat(np.arange(groups.keys, dtype=np.int32), np.diff(bounds))
    chosen = mask[rows] & judged[keys]
    return rows[chosen], keys[chosen]


def _lost_by_key(r: Table, groups: _Groups, old_code: int, k: _KeyHistory, restored_of_key: np.ndarray,
                 count_column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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


def _lost_vectorized(r: Table, groups: _Groups, old_code: int, k: _KeyHistory, restored_of_key: np.ndarray,
                     count_column: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_lost_by_key` for all keys at once."""
    judged = np.zeros(groups.keys, dtype=bool)
    judged[k.keys] = True
    assert k.old_mask is not None
    old_rows, ok_ = _block(groups, old_code, k.old_mask, judged)
    lost = r[count_column][old_rows] > restored_of_key[ok_]
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
                old: str, new: str, since: float, state: Sequence[Aggregate] = ORDERS.state,
                replicated_before: float | None = None) -> StateReport:
    """Judge the state ``new`` restored when it took over from ``old`` (outputs of ``new`` from ``since``).

    For key K, let o_1..o_m be the new active's outputs of K in order and p_i the number of K tuples it
    processed up to o_i: i <= p_i <= U_i, U_i = K tuples sent to ``new`` (acknowledged or unknown) up to
    o_i's seq. The restored count b satisfies b = count_i - p_i for every i; an empty range means the state
    changed outside processing (e.g. a snapshot merged late or twice). b must be 0 (never replicated) or a
    count the old active reached for K (unverified when it lies above the highest count its outputs show, by no
    more than the K tuples sent to it whose outputs never came out); when the first output pins it exactly, the
    other aggregates of ``state`` must equal the old active's at that count updated with the first output's tuple
    (a sum adds its input, min and max compare, last replaces). Updates of the old active beyond b are lost state
    updates. ``state`` is the declared state (output column -> aggregate); count_i is its ``count`` aggregate.

    With ``replicated_before`` (an instant by which a snapshot replicated to ``new`` held every key the old active
    had updated), the report also counts the keys that restarted empty although the old active had updated them
    before it: replicated state that was not restored at all (``not_restored``, with samples).
    """
    empty_report = StateReport(old, new, since, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, None, None, 0.0)
    count_column = next((a.output for a in state if a.kind == "count"), None)
    if not state:
        return StateReport(old, new, since, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, None, None, 0.0,
                           not_judged="the application declares no state")
    if count_column is None:
        return StateReport(old, new, since, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, None, None, 0.0,
                           not_judged="the application declares no count in its state, so the restored state "
                                      "cannot be placed among the old active's updates")
    others = [a for a in state if a.kind != "count"]
    s, r = _as_tables(sent, received)
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
                          old_code, None if all_old_before else old_mask, upto, fresh_rows, count_column)
    else:
        k = _state_vectorized(r, groups, judged, new_code, new_after, old_code, old_mask, upto, count_column)
    del new_after, old_mask, upto
    lo, hi, old_max, best, found = k.lo, k.hi, k.old_max, k.best, k.found
    group_key, first = k.keys, k.first
    count_first = r[count_column][first]

    matched = found & (best >= np.maximum(lo, 1)) & (lo <= hi)
    match_count = np.where(matched, best, -1)
    empty = ~matched & (lo <= 0) & (hi >= 0)
    reach = old_max + _unseen_by_key(s, r, old)[group_key]  # the old active's outputs may not show its last states
    # a count below 0 is no state at all (a damaged count, e.g. its sign bit flipped): inconsistent, never unverified
    unverified = ~matched & ~empty & (lo <= hi) & (hi >= 0) & (np.maximum(lo, 1) <= reach)
    inconsistent = ~(matched | empty | unverified)
    restored = np.where(matched, match_count, np.where(empty, 0, np.where(unverified, np.minimum(hi, old_max), hi)))

    # the other aggregates where the first output pins the restored state exactly: the old active's state at that
    # count, updated with the first output's tuple, must be what the first output shows
    pinned = matched & (k.first_upto == 1) & (count_first - 1 == match_count)
    best_row = np.maximum(k.best_row, 0)
    bad_by: list[tuple[Aggregate, np.ndarray, np.ndarray]] = []  # aggregate, its mismatches, the values to show
    for aggregate in others:
        shown = r[aggregate.output][first].astype(np.float64)
        old_value = r[aggregate.output][best_row].astype(np.float64) if len(first) else np.zeros(0)
        x = r[aggregate.over][first].astype(np.float64) if aggregate.over in r.columns else np.full(len(first), np.nan)
        known = ~np.isnan(x)
        if aggregate.kind == "sum":  # as restored: the first output's sum less its input (0: the input not known)
            restored_value = shown - x
            bad = known & (x != 0) & (np.abs(restored_value - old_value) > SUM_TOLERANCE)
        else:
            expected = (np.maximum(old_value, x) if aggregate.kind == "max" else
                        np.minimum(old_value, x) if aggregate.kind == "min" else x)
            restored_value = shown  # shown as the first output's value
            bad = known & (np.abs(shown - expected) > SUM_TOLERANCE)
        bad &= pinned
        bad_by.append((aggregate, bad, restored_value))
        inconsistent |= bad
        matched &= ~bad

    # lost state updates: the old active's updates of each key beyond the restored count
    restored_of_key = np.full(nkeys, np.iinfo(np.int64).max, dtype=np.int64)
    restored_of_key[group_key] = np.where(inconsistent, np.iinfo(np.int64).max, restored)
    lost_keys, lost_n, lost_from, lost_until = (
        _lost_by_key if k.histories is not None else _lost_vectorized)(r, groups, old_code, k, restored_of_key,
                                                                       count_column)
    k.histories = None
    # summed as Python ints: a damaged count near the int64 limits must not wrap the total around
    lost_updates = sum(int(v) for v in np.clip(old_max - restored, 0, None)[~inconsistent])
    max_key_window = 0.0
    lost_samples: list[dict[str, Any]] = []
    if len(lost_keys):
        spans = lost_until - lost_from
        max_key_window = float(spans.max())
        names = r.categories["key"]
        for i in np.argsort(-spans, kind="stable")[:SAMPLE].tolist():
            lost_samples.append({"key": names[int(lost_keys[i])], "updates": int(lost_n[i]),
                                 "from": round(float(lost_from[i]), 3), "until": round(float(lost_until[i]), 3)})
    not_restored: int | None = None
    not_restored_samples: list[dict[str, Any]] = []
    if replicated_before is not None:
        empty_of_key = np.zeros(nkeys, dtype=bool)
        empty_of_key[group_key] = empty & ~inconsistent
        dropped = empty_of_key[lost_keys] & (lost_from < replicated_before) if len(lost_keys) else np.zeros(0, bool)
        not_restored = int(dropped.sum())
        names = r.categories["key"]
        for i in np.flatnonzero(dropped)[:SAMPLE].tolist():
            not_restored_samples.append({"key": names[int(lost_keys[i])], "updates": int(lost_n[i]),
                                         "first_update": round(float(lost_from[i]), 3)})
    loss_first = float(lost_from.min()) if len(lost_keys) else None
    loss_last = float(lost_until.max()) if len(lost_keys) else None
    samples = []
    names = r.categories["key"]
    for g in np.flatnonzero(inconsistent)[:SAMPLE].tolist():
        late_restore = lo[g] > hi[g] and int(count_first[g]) == 1
        differs = next((a for a, bad, _ in bad_by if bad[g]), None)
        beyond = abs(int(count_first[g])) >= COUNT_BOUND  # bounded above: its range says nothing of the order
        reason = ("no such state ever existed in the old active: its count is beyond any a state reaches (damaged)"
                  if beyond
                  else "its state changed outside processing: it resumed from an empty state, then jumped (the state "
                  "was restored after output had resumed)" if late_restore
                  else "its state changed outside processing (a restore merged late or twice)" if lo[g] > hi[g]
                  else f"its restored {_NOUN[differs.kind]} differs from the old active's" if differs is not None
                  else "no such state ever existed in the old active")
        sample = {"key": names[int(group_key[g])], "restored_count_range": [int(lo[g]), int(hi[g])],
                  "old_max_count": int(old_max[g]), "first_output_count": int(count_first[g]),
                  "first_output_id": r.ids[int(r["id"][first[g]])],
                  "first_output_at": round(float(times[first[g]]), 3)}
        for aggregate, _, restored_value in bad_by:
            label = ("restored_sum" if aggregate.output == "sum_for_key" else f"restored_{aggregate.output}"
                     if aggregate.kind == "sum" else f"first_output_{aggregate.output}")
            sample[label] = round(float(restored_value[g]), 2)
        samples.append({**sample, "reason": reason})
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
        not_restored=not_restored,
        not_restored_samples=not_restored_samples,
    )
