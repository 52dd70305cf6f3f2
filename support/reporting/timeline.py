"""Per-second series of one scenario, for charts: output per data center, input accepted/refused, the fault
interval and the recovery phases, all in seconds from the start of traffic."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from support.data.ledger import OK, ReceivedRow, SentRow
from support.orchestration import JournalEvent

HEAL_EVENTS = ("fault.healed", "fault.heal_verified")


def _bucket_counts(times: Iterable[float], t0: float, buckets: int, width: float) -> list[int]:
    counts = [0] * buckets
    for t in times:
        index = int((t - t0) // width)
        if 0 <= index < buckets:
            counts[index] += 1
    return counts


def build_timeline(
    events: list[JournalEvent],
    sent: list[SentRow],
    received: list[ReceivedRow],
    phases: dict[str, float | None] | None = None,
    width: float = 1.0,
) -> dict[str, Any] | None:
    """The chart data of one scenario, or None when no traffic flowed."""
    if not sent and not received:
        return None
    t0 = min([r.t_send for r in sent] + [r.t_recv for r in received])
    t_end = max([r.t_ack for r in sent] + [r.t_recv for r in received])
    buckets = max(1, math.ceil((t_end - t0) / width) + 1)
    dcs = sorted({r.dc for r in received})
    fault = next((e for e in events if e.event == "fault.effective"), None)
    healed = next((e for e in events if e.event in HEAL_EVENTS and (fault is None or e.t >= fault.t)), None)
    marks: dict[str, float] = {}
    if fault is not None:
        for name, value in (phases or {}).items():
            if value is not None:
                marks[name] = round(fault.t - t0 + value, 3)
    return {
        "t0": t0,
        "bucket_s": width,
        "output_per_dc": {dc: _bucket_counts((r.t_recv for r in received if r.dc == dc), t0, buckets, width)
                          for dc in dcs},
        "accepted": _bucket_counts((r.t_send for r in sent if r.outcome == OK), t0, buckets, width),
        "refused": _bucket_counts((r.t_send for r in sent if r.outcome != OK), t0, buckets, width),
        "fault": None if fault is None else {
            "kind": str(fault.fields.get("kind", "")),
            "start": round(fault.t - t0, 3),
            "end": None if healed is None else round(healed.t - t0, 3),
        },
        "marks": marks,
    }
