"""The snapshot store faults against the lab: the stored snapshots of dc1's state in dc2's snapshot directory
lost and corrupted, each checked from the lab's side (the directory, the tagged backups, the payloads decoded
as the toolkit and the application decode them), healed, and reverted by the dead-man timer after the CLI that
injected them is SIGKILLed. The default deployment is left as it was (the store faults change no job)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from faultwire import fault_session, start_and_kill
from labprobes import inject
from labwire import ADDR, ROOT, Lab, wait_until

from lab import appspec, crossdc
from support.faults.session import FaultSession
from support.faults.store import DAMAGED_BYTES, FLIP

pytestmark = pytest.mark.lab

STORE = Path("/run/xdc-lab/dc2/snapshots")
STATE = Path("/run/xdc-lab/faults")


def stored() -> dict[str, int]:
    """name -> inode of the snapshots dc2 holds now."""
    found = {}
    for path in STORE.glob("*.snapshot"):
        try:
            found[path.name] = path.stat().st_ino
        except FileNotFoundError:
            continue
    return found


def backups(fault_id: str = "") -> list[Path]:
    return sorted(STATE.glob(f"{fault_id}*@{ADDR['dc2']}.bak.*"))


@pytest.fixture()
def session(default_deployment: Lab) -> Iterator[FaultSession]:
    wait_until(lambda: "dc1-Aggregator.snapshot" in stored(), 10, "dc2 holding a snapshot of dc1's state")
    with fault_session(ROOT / "config" / "lab.yaml", "lab store faults") as faults:
        yield faults


def test_lost_snapshots_are_moved_aside_replication_goes_on_and_the_heal_leaves_no_backup(
        session: FaultSession) -> None:
    fault = session.inject("snapshots-lost", dc="dc2")
    moved = {f[0]: int(f[1]) for f in fault.injected.lines("MOVED")}  # type: ignore[attr-defined]
    assert "dc1-Aggregator.snapshot" in moved
    now = stored()
    assert not [name for name, inode in moved.items() if now.get(name) == inode], "a lost file is still there"
    assert [p.name.split(".bak.")[1] for p in backups(fault.id)] == sorted(moved)
    # replication goes on: dc1's next snapshot is stored as usual (D = 2 s, H = 1 s: every 3 s)
    wait_until(lambda: "dc1-Aggregator.snapshot" in stored(), 6, "a new snapshot from dc1")
    session.heal(fault)
    assert backups(fault.id) == []
    assert "dc1-Aggregator.snapshot" in stored()


def stored_keys() -> set[str]:
    try:
        data = (STORE / "dc1-Aggregator.snapshot").read_bytes()
    except FileNotFoundError:
        return set()
    return set(appspec.decode_state(crossdc.decode(data).blob)["state"])


def test_corrupted_snapshots_keep_name_and_size_and_decode_to_other_numbers(session: FaultSession,
                                                                            default_deployment: Lab) -> None:
    # a state with keys (the damage lands on the numbers of the last one; in an empty state it would hit the sizes)
    job = default_deployment.job("dc1", "orders")
    assert job is not None
    inject(default_deployment, "dc1", job, [{"id": f"store-{n}", "key": "ks-store", "seq": n, "amount": 10.0}
                                           for n in range(1, 4)])
    wait_until(lambda: "ks-store" in stored_keys(), 10, "dc2 holding a snapshot with the key")
    fault = session.inject("snapshots-corrupted", dc="dc2")
    damaged = {f[0]: f[1] for f in fault.injected.lines("DAMAGED")}  # type: ignore[attr-defined]
    assert "dc1-Aggregator.snapshot" in damaged
    (backup,) = [p for p in backups(fault.id) if p.name.endswith(".bak.dc1-Aggregator.snapshot")]
    original = backup.read_bytes()
    # the damage, rebuilt from the kept original: the last 16 bytes of the state blob, one bit each
    msg = crossdc.decode(original)
    end = len(original) - len(crossdc._rstring(msg.snapshot_origin))
    expected = bytearray(original)
    for i in range(end - DAMAGED_BYTES, end):
        expected[i] ^= FLIP
    assert hashlib.sha256(bytes(expected)).hexdigest() == damaged["dc1-Aggregator.snapshot"]
    hurt = crossdc.decode(bytes(expected))  # the toolkit's deserializeTuple: the envelope is intact
    assert (hurt.type, hurt.origin, hurt.snapshot_origin, len(hurt.blob)) == (
        msg.type, msg.origin, msg.snapshot_origin, len(msg.blob))
    good, bad = appspec.decode_state(msg.blob)["state"], appspec.decode_state(hurt.blob)["state"]
    assert good.keys() == bad.keys() and good != bad  # the application reads other numbers, without an error
    session.heal(fault)
    assert backups(fault.id) == [] and not list(STATE.glob(f"{fault.id}*"))
    assert "dc1-Aggregator.snapshot" in stored()


@pytest.mark.parametrize("kind", ["snapshots-lost", "snapshots-corrupted"])
def test_sigkilled_store_fault_is_reverted_by_the_dead_man(default_deployment: Lab, kind: str) -> None:
    wait_until(lambda: "dc1-Aggregator.snapshot" in stored(), 10, "dc2 holding a snapshot of dc1's state")
    killed = start_and_kill(["faults", "inject", kind, "--dc", "dc2", "--ttl", "3s"])
    assert backups(), "the fault's backups should outlive the killed CLI"
    wait_until(lambda: not backups() and not list(STATE.glob(f"*@{ADDR['dc2']}.*")), 5.5,
               "the dead-man timer reverted the fault")
    assert time.monotonic() - killed < 5.5
    assert "dc1-Aggregator.snapshot" in stored()
    assert not list(STORE.glob(".xdc-fault-*"))
