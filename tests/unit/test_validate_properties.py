"""The numpy checkers against slow, obviously correct pure-Python references, on random histories.

Histories: up to three data centers and a few keys; a simulated aggregator per data center (so that restored
states are sometimes right, sometimes empty, doubled or noisy); refused and unknown outcomes; losses,
duplicates, reordering, corrupted checksums, ids never sent, output without ``processed_at``; empty tables and
single rows. Times are multiples of 1/8 s so that the references' arithmetic is exact.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.data import streams as validate
from support.data.contract import ORDERS, Aggregate, parse_aggregate
from support.data.ledger import FAIL, OK, UNKNOWN, IdTable, Ledger, ReceivedRow, SentRow, Table, read_table
from support.data.streams import SAMPLE, SUM_TOLERANCE
from support.data.validate import (
    MAX_PARTNER_SCAN,
    check_delivery,
    check_order,
    check_split_brain,
    check_state,
)

PROFILE = settings(max_examples=300, derandomize=True, database=None, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow])


@dataclass(frozen=True)
class Row(ReceivedRow):
    """An output that also carries the highest and the last amount of its key (declared aggregates beyond orders')."""

    peak: float = 0.0
    latest: float = 0.0

    types: ClassVar[tuple[type, ...]] = (*ReceivedRow.types, float, float)
    columns: ClassVar[dict[str, str]] = {**ReceivedRow.columns, "peak": "<f8", "latest": "<f8"}


#: the orders state plus max and last of amount
WIDE_STATE = (*ORDERS.state, parse_aggregate("peak", "max of amount", "peak"),
              parse_aggregate("latest", "last of amount", "latest"))


@dataclass
class History:
    sent: list[SentRow]
    received: list[ReceivedRow]
    since: float
    old: str
    new: str


@st.composite
def histories(draw: st.DrawFn) -> History:
    seed = draw(st.integers(0, 2**32 - 1))
    size = draw(st.sampled_from([0, 1, 2, 5, 12, 30, 60, 60, 90]))
    ndc = draw(st.integers(1, 3))
    nkeys = draw(st.integers(1, 4))
    restore = draw(st.sampled_from(["snapshot", "empty", "twice", "noise", "none", "peak"]))
    burst = draw(st.booleans())  # the old active's last outputs are lost: the restored count is ambiguous
    loss, dup, swap, bad_crc, phantom, stray = (draw(st.sampled_from([0.0, 0.05, 0.3])) for _ in range(6))
    rng = random.Random(seed)
    dcs = [f"dc{i + 1}" for i in range(ndc)]
    keys = [f"K{i}" for i in range(nkeys)]
    takeover = rng.randrange(0, size + 1) / 8
    old, new = (dcs[0], dcs[-1]) if rng.random() < 0.8 else (rng.choice([*dcs, "dcX"]), rng.choice([*dcs, "dcX"]))
    state: dict[str, dict[str, list[float]]] = {dc: {} for dc in dcs}
    snapshot: dict[str, list[float]] = {}
    seqs: Counter[str] = Counter()
    sent: list[SentRow] = []
    out: list[ReceivedRow] = []
    restored = False
    for n in range(size):
        t = n / 8 + rng.choice([0.0, 0.125])
        key = rng.choice(keys)
        seqs[key] += 1 if rng.random() > 0.1 else 0  # sometimes a repeated seq
        if t < takeover - 1 and rng.random() < 0.3:
            snapshot = {k: list(v) for k, v in state.get(old, {}).items()}
        dc = (old if t < takeover else new) if rng.random() >= stray else rng.choice([*dcs, ""])
        outcome = rng.choice([OK, OK, OK, OK, FAIL, UNKNOWN]) if dc else FAIL
        amount = rng.choice([0.0, 1.25, 2.5, 10.0])
        sent.append(SentRow(f"i{n}", key, seqs[key], dc, t, t + 0.125, outcome, "", amount))
        refused_yet_processed = outcome == FAIL and rng.random() < phantom
        if dc not in state or (outcome == FAIL and not refused_yet_processed) or (
                outcome == UNKNOWN and rng.random() < 0.5):
            continue
        if dc == new and t >= takeover and not restored:
            restored = True
            if restore == "snapshot":
                state[dc] = {k: list(v) for k, v in snapshot.items()}
            elif restore == "peak":  # the count and sum restored, the highest amount not
                state[dc] = {k: [c, s, p + 1.25, x] for k, (c, s, p, x) in snapshot.items()}
            elif restore == "twice":
                state[dc] = {k: [2 * c, 2 * s, p, x] for k, (c, s, p, x) in snapshot.items()}
            elif restore == "empty":
                state[dc] = {}
        st_ = state[dc].setdefault(key, [0, 0.0, -1e9, 0.0])
        st_[0] += 1
        st_[1] += amount
        st_[2] = max(st_[2], amount)
        st_[3] = amount
        count = int(st_[0]) + (rng.choice([-1, 1]) if restore == "noise" and rng.random() < 0.2 else 0)
        processed = 0.0 if rng.random() < 0.1 else t + 0.125
        out.append(Row(f"i{n}", key, seqs[key], dc, t + 0.25, processed, max(count, 0), st_[1], True,
                       amount, st_[2], st_[3]))
    received: list[ReceivedRow] = []
    for row in out:
        if rng.random() < loss or (burst and row.dc == old and takeover - 1 <= row.t_recv < takeover + 0.5):
            continue
        received.append(row)
        if rng.random() < dup:
            dc = row.dc if rng.random() < 0.5 else rng.choice(dcs)
            received.append(replace(row, dc=dc, t_recv=row.t_recv + 0.5))
        if rng.random() < phantom:
            received.append(Row(f"x{len(received)}", rng.choice(keys), rng.randrange(0, 5), rng.choice(dcs),
                                row.t_recv, rng.choice([0.0, row.t_recv]), rng.randrange(0, 4), 1.25,
                                True, 1.25, 1.25, 1.25))
    for i in range(len(received) - 1):
        if rng.random() < swap:
            received[i], received[i + 1] = received[i + 1], received[i]
    received = [r if rng.random() >= bad_crc else replace(r, crc_ok=False) for r in received]
    since = takeover if rng.random() < 0.8 else rng.randrange(0, 80) / 8
    return History(sent, received, since, old, new)


# ---------------------------------------------------------------------------------------------- references


def _first_seen(values: list[str]) -> dict[str, int]:
    """Codes in order of first appearance (how the ledgers number ids and categories)."""
    codes: dict[str, int] = {}
    for v in values:
        codes.setdefault(v, len(codes))
    return codes


def ref_delivery(sent: list[SentRow], received: list[ReceivedRow]) -> dict[str, Any]:
    code = _first_seen([r.id for r in sent] + [r.id for r in received])
    seen = Counter(r.id for r in received)
    sent_ids = {s.id for s in sent}

    def by_code(ids: set[str]) -> list[str]:
        return sorted(ids, key=code.__getitem__)

    lost = [s for s in sent if s.outcome == OK and not seen[s.id]]
    lost_t = [s.t_send for s in lost]
    received_by_dc = Counter(r.dc for r in received)
    lost_by_dc = Counter(s.dc for s in lost)
    return {
        "sent": len(sent), "acknowledged": sum(s.outcome == OK for s in sent),
        "failed": sum(s.outcome == FAIL for s in sent), "unknown": sum(s.outcome == UNKNOWN for s in sent),
        "received": len(received), "delivered_once": sum(c == 1 for c in seen.values()),
        "duplicated_ids": by_code({i for i, c in seen.items() if c > 1}),
        "lost_ids": [s.id for s in lost],
        "phantom_ids": by_code({s.id for s in sent if s.outcome == FAIL and seen[s.id]}),
        "corrupted_ids": by_code({r.id for r in received if not r.crc_ok}),
        "unexpected_ids": by_code({i for i in seen if i not in sent_ids}),
        "unknown_delivered": sum(1 for s in sent if s.outcome == UNKNOWN and seen[s.id]),
        "loss_window": max(lost_t) - min(lost_t) if lost_t else 0.0,
        "lost_first_sent": min(lost_t) if lost_t else None, "lost_last_sent": max(lost_t) if lost_t else None,
        "received_by_dc": [(dc, received_by_dc[dc]) for dc in _first_seen([r.dc for r in received])],
        "lost_by_dc": [(dc or "none", lost_by_dc[dc]) for dc in _first_seen([s.dc for s in sent]) if lost_by_dc[dc]],
    }


def ref_order(received: list[ReceivedRow]) -> dict[str, Any]:
    dc_code, key_code = _first_seen([r.dc for r in received]), _first_seen([r.key for r in received])
    ids: set[str] = set()
    high: dict[tuple[str, str], int] = {}
    late: list[tuple[int, int, int, int]] = []  # (dc code, key code, row, seq seen before)
    for row, r in enumerate(received):
        group = (r.dc, r.key)
        if group in high and r.seq < high[group] and r.id not in ids:
            late.append((dc_code[r.dc], key_code[r.key], row, high[group]))
        high[group] = max(high.get(group, r.seq), r.seq)
        ids.add(r.id)
    late.sort()
    by_dc = Counter(received[row].dc for _, _, row, _ in late)
    return {
        "checked": len(received), "reordered": len(late), "keys": len({received[row].key for _, _, row, _ in late}),
        "by_dc": [(dc, by_dc[dc]) for dc in dc_code if by_dc[dc]],
        "samples": [{"id": received[row].id, "key": received[row].key, "dc": received[row].dc,
                     "seq": received[row].seq, "after_seq": prior} for _, _, row, prior in late[:SAMPLE]],
    }


def _output_time(r: ReceivedRow) -> float:
    return r.processed_at if r.processed_at > 0 else r.t_recv


def _fresh(received: list[ReceivedRow]) -> list[bool]:
    ids: set[str] = set()
    fresh = []
    for r in received:
        fresh.append(r.id not in ids)
        ids.add(r.id)
    return fresh


def ref_split_brain(received: list[ReceivedRow], gap: float, tolerance: float) -> dict[str, Any]:
    dc_code, key_code = _first_seen([r.dc for r in received]), _first_seen([r.key for r in received])
    if not received or len(dc_code) < 2:
        return {"keys": 0, "windows": [], "overlap_s": 0.0, "samples": [], "dcs": []}
    rows = [(r, _output_time(r)) for r, fresh in zip(received, _fresh(received), strict=True) if fresh]
    t0 = min(t for _, t in rows)
    streams: dict[tuple[int, int], list[float]] = {}
    for r, t in rows:
        streams.setdefault((key_code[r.key], dc_code[r.dc]), []).append(t - t0)
    intervals = []  # (key, start, dc, end)
    for (key, dc), times in streams.items():
        times.sort()
        start = times[0]
        for a, b in itertools.pairwise(times):
            if b - a > gap:
                intervals.append((key, start, dc, a))
                start = b
        intervals.append((key, start, dc, times[-1]))
    intervals.sort(key=lambda i: i[:3])
    hits = []  # (index, until)
    for i, (key, start, _dc, end) in enumerate(intervals):
        before = [e for k, _, _, e in intervals[:i] if k == key]
        if before and max(before) > start + tolerance:
            hits.append((i, min(end, max(before))))
    merged: list[tuple[float, float]] = []
    for a, b in sorted((intervals[i][1] + t0, until + t0) for i, until in hits):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    dc_names, key_names = list(dc_code), list(key_code)
    involved = {intervals[i][2] for i, _ in hits}
    for i, _ in hits[:MAX_PARTNER_SCAN]:
        key, start, dc, _ = intervals[i]
        partner = next((d for k, _, d, e in reversed(intervals[:i]) if k == key and e > start + tolerance and d != dc),
                       None)
        if partner is not None:
            involved.add(partner)
    return {
        "keys": len({intervals[i][0] for i, _ in hits}), "windows": merged, "overlap_s": sum(b - a for a, b in merged),
        "samples": [{"key": key_names[intervals[i][0]], "dc": dc_names[intervals[i][2]],
                     "from": round(intervals[i][1] + t0, 3), "until": round(until + t0, 3)}
                    for i, until in hits[:SAMPLE]],
        "dcs": sorted(dc_names[d] for d in involved),
    }


NOUNS = {"sum": "sum", "min": "minimum", "max": "maximum", "last": "last value"}


def ref_state(sent: list[SentRow], received: list[ReceivedRow], old: str, new: str, since: float,
              state: tuple[Aggregate, ...] = ORDERS.state) -> dict[str, Any]:
    empty = {"keys_judged": 0, "consistent": 0, "empty": 0, "unverified": 0, "inconsistent": 0, "shared_keys": 0,
             "keys_not_seen": 0, "lost_updates": 0, "loss_window": 0.0, "loss_first": None, "loss_last": None,
             "max_key_window": 0.0, "samples": [], "lost_samples": []}
    dcs = {r.dc for r in received}
    if old not in dcs or new not in dcs:
        return empty
    key_code = _first_seen([r.key for r in received])
    rows = [(i, r, _output_time(r), fresh) for i, (r, fresh) in enumerate(zip(received, _fresh(received), strict=True))]
    new_after = [x for x in rows if x[1].dc == new and x[2] >= since and x[3]]
    if not new_after:
        return empty
    first_new = min(t for _, _, t, _ in new_after)
    old_rows = [x for x in rows if x[1].dc == old and x[2] < first_new and x[3]]
    shared: set[str] = set()
    old_times = [t for _, r, t, _ in rows if r.dc == old]
    if old != new and old_times:
        shared = {r.key for _, r, t, _ in rows if r.dc == new and min(old_times) <= t < since}
    has_old, has_new = {r.key for _, r, _, _ in old_rows}, {r.key for _, r, _, _ in new_after}
    judged = sorted((has_old & has_new) - shared, key=key_code.__getitem__)
    to_new = [s for s in sent if s.dc == new and s.outcome in (OK, UNKNOWN) and s.t_send >= since]
    came_out = {r.id for r in received}
    unseen = Counter(s.key for s in sent if s.dc == old and s.outcome in (OK, UNKNOWN) and s.id not in came_out)
    verdicts = []
    for key in judged:
        outs = sorted((x for x in new_after if x[1].key == key), key=lambda x: (x[1].seq, x[0]))
        lo, hi = -(10**18), 10**18
        for position, (_, r, _, _) in enumerate(outs, 1):
            upto = sum(1 for s in to_new if s.key == key and s.seq <= r.seq)
            lo = max(lo, r.count_for_key - max(position, upto))
            hi = min(hi, r.count_for_key - min(position, upto))
        history = [x for x in old_rows if x[1].key == key]
        old_max = max(r.count_for_key for _, r, _, _ in history)
        below = [r.count_for_key for _, r, _, _ in history if r.count_for_key <= hi]
        best = max(below) if below else None
        matched = lo <= hi and best is not None and best >= max(lo, 1)
        is_empty = not matched and lo <= 0 <= hi
        # a restored count below 0 is no state at all: inconsistent, never unverified
        unverified = not matched and not is_empty and lo <= hi and hi >= 0 and max(lo, 1) <= old_max + unseen[key]
        restored = best if matched else 0 if is_empty else min(hi, old_max) if unverified else hi
        first_row, first = outs[0][0], outs[0][1]
        first_upto = sum(1 for s in to_new if s.key == key and s.seq <= first.seq)
        pinned = matched and first_upto == 1 and first.count_for_key - 1 == best
        at_best = [r for _, r, _, _ in history if r.count_for_key == best][-1] if best is not None else None
        bad, shown_restored = None, {}
        for a in state[1:]:  # the state declared after its count
            value, x = getattr(first, a.output), getattr(first, str(a.over))
            old_value = getattr(at_best, a.output) if at_best is not None else 0.0
            if a.kind == "sum":
                restored_value = value - x
                wrong = x != 0 and abs(restored_value - old_value) > SUM_TOLERANCE
            else:
                restored_value = value
                expected = max(old_value, x) if a.kind == "max" else min(old_value, x) if a.kind == "min" else x
                wrong = abs(value - expected) > SUM_TOLERANCE
            label = ("restored_sum" if a.output == "sum_for_key" else f"restored_{a.output}" if a.kind == "sum"
                     else f"first_output_{a.output}")
            shown_restored[label] = round(restored_value, 2)
            if pinned and wrong and bad is None:
                bad = a
        verdicts.append({"key": key, "lo": lo, "hi": hi, "old_max": old_max, "restored": restored,
                         "matched": matched and bad is None, "empty": is_empty, "unverified": unverified,
                         "inconsistent": bad is not None or not (matched or is_empty or unverified), "bad": bad,
                         "first": first, "first_at": outs[0][2], "first_row": first_row,
                         "restored_values": shown_restored})
    lost = []  # (key, time)
    for v in verdicts:
        if not v["inconsistent"]:
            lost += [(v["key"], t) for _, r, t, _ in old_rows if r.key == v["key"] and r.count_for_key > v["restored"]]
    lost_t = [t for _, t in lost]
    spans = []
    for key in judged:
        times = sorted(t for k, t in lost if k == key)
        if times:
            spans.append((key, len(times), times[0], times[-1]))
    samples = []
    for v in [v for v in verdicts if v["inconsistent"]][:SAMPLE]:
        reason = ("its state changed outside processing: it resumed from an empty state, then jumped (the state "
                  "was restored after output had resumed)" if v["lo"] > v["hi"] and v["first"].count_for_key == 1
                  else "its state changed outside processing (a restore merged late or twice)" if v["lo"] > v["hi"]
                  else f"its restored {NOUNS[v['bad'].kind]} differs from the old active's" if v["bad"]
                  else "no such state ever existed in the old active")
        samples.append({"key": v["key"], "restored_count_range": [v["lo"], v["hi"]], "old_max_count": v["old_max"],
                        "first_output_count": v["first"].count_for_key, "first_output_id": v["first"].id,
                        "first_output_at": round(v["first_at"], 3),
                        **v["restored_values"], "reason": reason})
    keys_seen_old = len(has_old - shared)
    return {
        "keys_judged": len(judged), "consistent": sum(v["matched"] for v in verdicts),
        "empty": sum(v["empty"] for v in verdicts), "unverified": sum(v["unverified"] for v in verdicts),
        "inconsistent": sum(v["inconsistent"] for v in verdicts), "shared_keys": len(shared & has_old),
        "keys_not_seen": keys_seen_old - len(judged),
        "lost_updates": sum(max(v["old_max"] - v["restored"], 0) for v in verdicts if not v["inconsistent"]),
        "loss_window": max(lost_t) - min(lost_t) if lost_t else 0.0,
        "loss_first": min(lost_t) if lost_t else None, "loss_last": max(lost_t) if lost_t else None,
        "max_key_window": max((b - a for _, _, a, b in spans), default=0.0),
        "samples": samples,
        "lost_samples": [{"key": k, "updates": n, "from": round(a, 3), "until": round(b, 3)}
                         for k, n, a, b in sorted(spans, key=lambda s: -(s[3] - s[2]))[:SAMPLE]],
    }


# ------------------------------------------------------------------------------------------------- properties


@contextmanager
def streams_looped(loop: bool) -> Iterator[None]:
    """Per-stream work in a loop over (dc, key) streams (the default for a few thousand long ones), or
    vectorized."""
    saved = validate.LOOP_STREAMS, validate.LOOP_ROWS
    validate.LOOP_STREAMS, validate.LOOP_ROWS = (saved[0], 0) if loop else (-1, saved[1])
    try:
        yield
    finally:
        validate.LOOP_STREAMS, validate.LOOP_ROWS = saved



@PROFILE
@given(histories())
def test_delivery_matches_the_reference(h: History) -> None:
    report = check_delivery(h.sent, h.received)
    got = {name: getattr(report, name) for name in ref_delivery([], []) if name not in ("received_by_dc", "lost_by_dc")}
    got["received_by_dc"] = list(report.received_by_dc.items())
    got["lost_by_dc"] = list(report.lost_by_dc.items())
    assert got == ref_delivery(h.sent, h.received)


@PROFILE
@given(histories())
def test_order_matches_the_reference(h: History) -> None:
    report = check_order(h.received)
    got = report.to_json()
    got["by_dc"] = list(report.by_dc.items())
    assert got == ref_order(h.received)


@pytest.mark.parametrize("loop", [True, False])
@PROFILE
@given(histories(), st.sampled_from([0.0, 0.25, 2.0]), st.sampled_from([0.0, 0.125]))
def test_split_brain_matches_the_reference(loop: bool, h: History, gap: float, tolerance: float) -> None:
    with streams_looped(loop):
        report = check_split_brain(h.received, gap, tolerance)
    got = {"keys": report.keys, "windows": report.windows, "overlap_s": report.overlap_s, "samples": report.samples,
           "dcs": report.dcs}
    assert got == ref_split_brain(h.received, gap, tolerance)


@pytest.mark.parametrize("loop", [True, False])
@PROFILE
@given(histories())
def test_state_matches_the_reference(loop: bool, h: History) -> None:
    with streams_looped(loop):
        report = check_state(h.sent, h.received, h.old, h.new, h.since)
    got = {name: getattr(report, name) for name in ref_state([], [], "a", "b", 0.0)}
    assert got == ref_state(h.sent, h.received, h.old, h.new, h.since)
    assert (report.old, report.new, report.since) == (h.old, h.new, h.since)


@pytest.mark.parametrize("loop", [True, False])
@PROFILE
@given(histories())
def test_declared_state_matches_the_reference(loop: bool, h: History) -> None:
    """The state check over declared aggregates beyond orders' (max and last of amount)."""
    ids = IdTable()
    sent, received = Table.from_rows(h.sent, SentRow, ids), Table.from_rows(h.received, Row, ids)
    sent.ids = received.ids = ids.names()
    with streams_looped(loop):
        report = check_state(sent, received, h.old, h.new, h.since, WIDE_STATE)
    got = {name: getattr(report, name) for name in ref_state([], [], "a", "b", 0.0)}
    assert got == ref_state(h.sent, h.received, h.old, h.new, h.since, WIDE_STATE)


@settings(PROFILE, max_examples=25)
@given(histories())
def test_ledgers_read_back_lazily_give_the_same_verdicts(tmp_path_factory: pytest.TempPathFactory, h: History) -> None:
    folder: Path = tmp_path_factory.mktemp("ledgers")
    ids = IdTable(folder / "ids.txt")
    sent, received = Ledger(folder / "sent.csv", SentRow, ids), Ledger(folder / "received.csv", ReceivedRow, ids)
    sent.extend(h.sent)
    received.extend(h.received)
    for ledger in (sent, received, ids):
        ledger.close()
    s, r = read_table(folder / "sent", lazy=True), read_table(folder / "received", lazy=True)
    assert check_delivery(s, r) == check_delivery(h.sent, h.received)
    assert check_order(r) == check_order(h.received)
    assert check_split_brain(r) == check_split_brain(h.received)
    assert check_state(s, r, h.old, h.new, h.since) == check_state(h.sent, h.received, h.old, h.new, h.since)
