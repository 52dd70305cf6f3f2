"""Checkers over the ledgers, vectorized with numpy: every verdict is computed from the columns at once.

- delivery: lost (acknowledged, never received), duplicated, unknown, phantom (refused yet delivered),
  corrupted (crc), unexpected (never sent);
- order: tuples of one key that came out of one data center's output stream after a later tuple of that key;
- split brain: two data centers emitting the same key in overlapping time;
- state: after a takeover, the state the new active restored (seen through its first outputs per key) must
  equal the old active's state after some earlier update of that key, or be empty; the old active's updates
  after that one are lost state updates, and their time span is the state loss window.

Inputs are :class:`~support.data.ledger.Table` columns (or lists of rows, converted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from support.data.ledger import FAIL, OK, UNKNOWN, IdTable, ReceivedRow, SentRow, Table

SAMPLE = 20  # evidence samples kept per verdict
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


def _recode(source: Table, target: Table, column: str) -> np.ndarray:
    """Map codes of ``source[column]`` to the codes of the same text in ``target`` (-1 when absent)."""
    index = {value: code for code, value in enumerate(target.categories.get(column, []))}
    mapping = np.array([index.get(v, -1) for v in source.categories.get(column, [])] + [-1], dtype=np.int64)
    return mapping[source[column]]


def _recode_codes(source: Table, target: Table, column: str, codes: np.ndarray) -> np.ndarray:
    """Like :func:`_recode` for a subset of codes."""
    index = {value: code for code, value in enumerate(target.categories.get(column, []))}
    mapping = np.array([index.get(v, -1) for v in source.categories.get(column, [])] + [-1], dtype=np.int64)
    return mapping[codes]


def output_times(received: Table) -> np.ndarray:
    """When each output tuple was emitted: ``processed_at`` (stamped by the data center), else the time the
    tester retrieved it."""
    processed = received["processed_at"]
    return np.where(processed > 0, processed, received["t_recv"])


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
    seen = np.bincount(r_id, minlength=size).astype(np.int32)
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
        delivered_once=int((seen == 1).sum()),
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


def _group_order(groups: np.ndarray) -> np.ndarray:
    """Stable order of rows by group code (radix sort when the codes fit in 16 bits)."""
    if len(groups) and groups.min() >= 0 and groups.max() < 65536:
        return np.argsort(groups.astype(np.uint16), kind="stable")
    return np.argsort(groups, kind="stable")


def _repeats(ids: np.ndarray) -> np.ndarray:
    """Mask of rows whose id already occurred in an earlier row."""
    size = int(ids.max(initial=-1)) + 1
    several = np.bincount(ids, minlength=size) > 1
    candidates = np.flatnonzero(several[ids])
    del several
    repeat = np.zeros(len(ids), dtype=bool)
    if len(candidates):
        _, first = np.unique(ids[candidates], return_index=True)
        repeat[candidates] = True
        repeat[candidates[first]] = False
    return repeat


def check_order(received: Table | Sequence[ReceivedRow]) -> OrderReport:
    """Per key and per data center output stream (the order tuples were retrieved from that DC's sink),
    ``seq`` must never go back. Repeats of an id already received are duplicates, not reordering."""
    r = received if isinstance(received, Table) else _as_tables([], received)[1]
    n = len(r)
    if n == 0:
        return OrderReport(0, 0, 0)
    nkeys = max(1, len(r.categories.get("key", [])))
    repeat = _repeats(r["id"])
    groups = r["dc"].astype(np.int64)
    groups *= nkeys
    groups += r["key"]
    order = _group_order(groups).astype(np.int32)
    seq = r["seq"]
    low = int(seq.min())
    span = int(seq.max()) - low + 1
    value = groups[order]
    del groups
    value *= span
    value += seq[order]
    value -= low
    running = np.maximum.accumulate(value)
    late = np.zeros(n, dtype=bool)
    late[1:] = value[1:] < running[:-1]
    late &= ~repeat[order]
    del repeat
    prior_value = running[:-1][late[1:]]
    del running, value
    rows = order[late]
    dcs = r.categories.get("dc", [])
    by_dc = np.bincount(r["dc"][rows], minlength=len(dcs))
    samples = []
    priors = (prior_value % span + low)[:SAMPLE].tolist()
    for row, prior in zip(rows[:SAMPLE].tolist(), priors, strict=False):
        samples.append({"id": r.ids[int(r["id"][row])], "key": r.categories["key"][int(r["key"][row])],
                        "dc": dcs[int(r["dc"][row])], "seq": int(seq[row]), "after_seq": int(prior)})
    return OrderReport(
        checked=n,
        reordered=int(late.sum()),
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


def check_split_brain(received: Table | Sequence[ReceivedRow], gap: float = 2.0, tolerance: float = 0.0
                      ) -> SplitBrainReport:
    """For each key and data center, the emission times form activity intervals (split where the key went
    quiet for more than ``gap`` seconds). Two intervals of one key from different data centers that overlap
    by more than ``tolerance`` seconds (clock skew) are split brain."""
    r = received if isinstance(received, Table) else _as_tables([], received)[1]
    if len(r) == 0 or len(r.categories.get("dc", [])) < 2:
        return SplitBrainReport(0, [], 0.0)
    fresh = ~_repeats(r["id"])  # a re-emitted duplicate is judged by the duplicate check
    times = output_times(r)[fresh]
    t0 = float(times.min())
    times -= t0
    ndc = len(r.categories["dc"])
    groups = r["key"][fresh].astype(np.int64)
    groups *= ndc
    groups += r["dc"][fresh]
    del fresh
    order = _group_order(groups).astype(np.int32)
    horizon = float(times.max()) + 1.0
    # within a (key, dc) stream rows are nearly in time order, so a stable (tim)sort of this is cheap
    composite = groups[order].astype(np.float64)
    composite *= horizon
    composite += times[order]
    order = order[np.argsort(composite, kind="stable")]
    del composite
    g = groups[order]
    del groups
    t = times[order]
    del order, times
    starts = np.flatnonzero(np.r_[True, (np.diff(g) != 0) | (np.diff(t) > gap)])
    ends = np.r_[starts[1:], len(t)] - 1
    i_key, i_dc = g[starts] // ndc, g[starts] % ndc
    i_start, i_end = t[starts], t[ends]
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
    times = output_times(r)
    dc, key = r["dc"], r["key"]
    fresh = ~_repeats(r["id"])  # a second emission of an id is a duplicate, not an update of the state
    new_after = (dc == new_code) & (times >= since) & fresh
    if not new_after.any():
        return empty_report
    first_new = float(times[new_after].min())
    old_rows = np.flatnonzero((dc == old_code) & (times < first_new) & fresh).astype(np.int32)
    nkeys = len(r.categories["key"])
    # keys the new active served itself while the old one was emitting too (active/active): not restored from
    # the old one, so not judged. Output of the new one before the old one started (it is failing back, or
    # it is the same data center coming back) is history, not sharing.
    shared = np.zeros(nkeys, dtype=bool)
    old_emitted = times[dc == old_code]
    if old_code != new_code and len(old_emitted):
        shared[key[(dc == new_code) & (times >= old_emitted.min()) & (times < since)]] = True
    has_old = np.zeros(nkeys, dtype=bool)
    has_old[key[old_rows]] = True
    has_new = np.zeros(nkeys, dtype=bool)
    has_new[key[new_after]] = True
    judged = has_old & has_new & ~shared

    # the new active's outputs of judged keys, grouped by key in processing (seq) order
    new_rows = np.flatnonzero(new_after & judged[key]).astype(np.int32)
    del new_after, fresh
    by_seq = key[new_rows].astype(np.int64)
    by_seq *= int(r["seq"].max(initial=0)) + 1
    by_seq += r["seq"][new_rows]
    new_rows = new_rows[np.argsort(by_seq, kind="stable")]
    del by_seq
    nk = key[new_rows]
    starts = _group_starts(nk)
    position = np.arange(1, len(nk) + 1) - np.repeat(starts, np.diff(np.r_[starts, len(nk)]))
    count = r["count_for_key"][new_rows]
    seq = r["seq"][new_rows]

    # U_i: tuples of that key sent to the new active from ``since`` on (what it got before, when it is failing
    # back or coming back itself, was processed by its earlier run), up to this output's seq
    s_key = _recode_codes(r, s, "key", r["key"][new_rows])
    to_new = np.flatnonzero(s.is_("dc", new) & (s.is_("outcome", OK) | s.is_("outcome", UNKNOWN))
                            & (s["t_send"] >= since)).astype(np.int32)
    seq_span = int(max(s["seq"].max(initial=0), seq.max(initial=0))) + 2
    sent_comp = s["key"][to_new].astype(np.int64)
    sent_comp *= seq_span
    sent_comp += s["seq"][to_new]
    del to_new
    sent_comp.sort()
    out_comp = s_key * seq_span + seq
    upto = np.searchsorted(sent_comp, out_comp, side="right") - np.searchsorted(sent_comp, s_key * seq_span,
                                                                                side="left")
    del out_comp, s_key, sent_comp
    high_p = np.maximum(position, upto)
    np.minimum(position, upto, out=position)  # position becomes the lower bound of p
    lo = np.maximum.reduceat(count - high_p, starts) if len(starts) else np.empty(0, dtype=np.int64)
    del high_p
    hi = np.minimum.reduceat(count - position, starts) if len(starts) else np.empty(0, dtype=np.int64)
    del position
    group_key = nk[starts]

    # the old active's history of those keys, sorted by (key, count)
    old_rows = old_rows[judged[key[old_rows]]]
    count_span = int(max(r["count_for_key"].max(initial=0), 0)) + 2
    old_comp = key[old_rows].astype(np.int64) * count_span + r["count_for_key"][old_rows]
    by_comp = np.argsort(old_comp, kind="stable")
    old_comp, old_rows = old_comp[by_comp], old_rows[by_comp]
    key_base = group_key.astype(np.int64) * count_span
    old_max = old_comp[np.searchsorted(old_comp, key_base + count_span, side="left") - 1] - key_base
    upper = np.minimum(hi, count_span - 1)
    at = np.searchsorted(old_comp, key_base + upper, side="right") - 1
    matched = (at >= 0) & (old_comp[np.maximum(at, 0)] >= key_base + np.maximum(lo, 1)) & (lo <= hi)
    matched &= old_comp[np.maximum(at, 0)] >= key_base
    match_count = np.where(matched, old_comp[np.maximum(at, 0)] - key_base, -1)
    empty = ~matched & (lo <= 0) & (hi >= 0)
    unverified = ~matched & ~empty & (lo <= hi) & (np.maximum(lo, 1) <= old_max)
    inconsistent = ~(matched | empty | unverified)
    restored = np.where(matched, match_count, np.where(empty, 0, np.where(unverified, np.minimum(hi, old_max), hi)))

    # sum check where the first output pins the restored state exactly
    first = new_rows[starts]
    pinned = matched & (upto[starts] == 1) & (count[starts] - 1 == match_count)
    restored_sum = r["sum_for_key"][first] - r["amount"][first]
    old_sum = r["sum_for_key"][old_rows[np.maximum(at, 0)]] if len(old_rows) else np.zeros(len(starts))
    has_amount = r["amount"][first] != 0
    sum_bad = pinned & has_amount & (np.abs(restored_sum - old_sum) > SUM_TOLERANCE)
    inconsistent |= sum_bad
    matched &= ~sum_bad

    # lost state updates: the old active's updates of each key beyond the restored count
    restored_of_key = np.full(nkeys, np.iinfo(np.int64).max, dtype=np.int64)
    restored_of_key[group_key] = np.where(inconsistent, np.iinfo(np.int64).max, restored)
    lost_mask = r["count_for_key"][old_rows] > restored_of_key[key[old_rows]]
    lost_rows = old_rows[lost_mask]
    lost_times = times[lost_rows]
    lost_updates = int(np.clip(old_max - restored, 0, None)[~inconsistent].sum())
    max_key_window = 0.0
    lost_samples: list[dict[str, Any]] = []
    if len(lost_rows):
        lk = key[lost_rows]
        order = np.lexsort((lost_times, lk))
        lk, lt = lk[order], lost_times[order]
        ls = _group_starts(lk)
        le = np.r_[ls[1:], len(lk)] - 1
        spans = lt[le] - lt[ls]
        max_key_window = float(spans.max())
        names = r.categories["key"]
        for i in np.argsort(-spans, kind="stable")[:SAMPLE].tolist():
            lost_samples.append({"key": names[int(lk[ls[i]])], "updates": int(le[i] - ls[i] + 1),
                                 "from": round(float(lt[ls[i]]), 3), "until": round(float(lt[le[i]]), 3)})
    samples = []
    names = r.categories["key"]
    for g in np.flatnonzero(inconsistent)[:SAMPLE].tolist():
        late_restore = lo[g] > hi[g] and int(count[starts[g]]) == 1
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
        keys_judged=len(starts),
        consistent=int(matched.sum()), empty=int(empty.sum()), unverified=int(unverified.sum()),
        inconsistent=int(inconsistent.sum()),
        shared_keys=int((shared & has_old).sum()),
        keys_not_seen=keys_seen_old - len(starts),
        lost_updates=lost_updates,
        loss_window=float(lost_times.max() - lost_times.min()) if len(lost_times) else 0.0,
        loss_first=float(lost_times.min()) if len(lost_times) else None,
        loss_last=float(lost_times.max()) if len(lost_times) else None,
        max_key_window=max_key_window,
        samples=samples,
        lost_samples=lost_samples,
    )
