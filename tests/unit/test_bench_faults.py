"""support/bench/faults.py without a lab: every fault kind is benched, and the store kinds wait for a snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest
from faultfakes import fake_context, lab_shaped_config

from support.bench import faults as bench
from support.faults.base import FaultError
from support.faults.executor import Result
from support.faults.session import KINDS

DC2 = "198.18.2.10"


def test_every_fault_kind_has_a_bench_entry() -> None:
    """``reports/bench/faults.json`` holds the apply and revert latency of every kind a scenario can inject."""
    assert {kind for _, kind, _, _ in bench.PLAN} == set(KINDS)
    assert set(KINDS) >= bench.RESTORE


def test_a_store_fault_waits_until_the_standby_holds_a_snapshot(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """After a fresh deployment (the restore after `dark`) the store is empty until the first replication: the
    full `make bench` measured nothing for the store kinds ("nothing to lose") while `--only` them passed."""
    looks: list[str] = []

    def answer(script: str) -> Result:
        looks.append(script)
        return Result(DC2, 0, "1796600000.5\n" if len(looks) >= 3 else "", "", 0.0)

    ctx = fake_context(lab_shaped_config(tmp_path), answer=answer)
    monkeypatch.setattr(bench, "wait_until", _quick(bench.wait_until))
    bench._await_snapshot(ctx.executors, "dc2")
    assert len(looks) == 3 and all("-name '*.snapshot'" in script for script in looks)
    assert "/run/xdc-lab/dc2/snapshots" in looks[0]

    empty = fake_context(lab_shaped_config(tmp_path), answer=lambda script: Result(DC2, 0, "", "", 0.0))
    monkeypatch.setattr(bench, "SNAPSHOT_WAIT_S", 0.05)
    with pytest.raises(FaultError, match="a replicated snapshot in dc2's store"):
        bench._await_snapshot(empty.executors, "dc2")


def _quick(wait_until):  # type: ignore[no-untyped-def]
    """The bench's wait with a short poll interval (the fake store answers at once)."""
    def quick(*args, **kwargs):  # type: ignore[no-untyped-def]
        return wait_until(*args, **{**kwargs, "interval": 0.001})
    return quick
