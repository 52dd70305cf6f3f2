"""Checkers over the ledgers: what was lost, duplicated, unknown, phantom or corrupted."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from support.data.ledger import FAIL, OK, UNKNOWN, ReceivedRow, SentRow


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
            "received_by_dc": dict(self.received_by_dc),
        }


def check_delivery(sent: list[SentRow], received: list[ReceivedRow]) -> DeliveryReport:
    """Compare what was sent with what came out.

    lost: acknowledged (ok) but never received; phantom: refused (fail) yet received; unknown outcomes
    may go either way; duplicated: received more than once; corrupted: crc mismatch on output.
    """
    outcome = {row.id: row for row in sent}
    seen = Counter(row.id for row in received)
    by_dc = Counter(row.dc for row in received)
    acknowledged = [row for row in sent if row.outcome == OK]
    lost = [row for row in acknowledged if row.id not in seen]
    lost_times = [row.t_send for row in lost]
    return DeliveryReport(
        sent=len(sent),
        acknowledged=len(acknowledged),
        failed=sum(1 for row in sent if row.outcome == FAIL),
        unknown=sum(1 for row in sent if row.outcome == UNKNOWN),
        received=len(received),
        delivered_once=sum(1 for count in seen.values() if count == 1),
        duplicated_ids=sorted(i for i, count in seen.items() if count > 1),
        lost_ids=[row.id for row in lost],
        phantom_ids=sorted(i for i in seen if i in outcome and outcome[i].outcome == FAIL),
        corrupted_ids=sorted({row.id for row in received if not row.crc_ok}),
        unexpected_ids=sorted(i for i in seen if i not in outcome),
        unknown_delivered=sum(1 for i in seen if i in outcome and outcome[i].outcome == UNKNOWN),
        loss_window=(max(lost_times) - min(lost_times)) if lost_times else 0.0,
        lost_first_sent=min(lost_times) if lost_times else None,
        lost_last_sent=max(lost_times) if lost_times else None,
        received_by_dc=dict(by_dc),
    )
