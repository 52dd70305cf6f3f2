"""The snapshot store faults (support/faults/store.py), their scripts run for real on this machine against a
temporary snapshot directory holding payloads as the lab's toolkit stores them: no lab."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from faultfakes import lab_shaped_config

from lab import appspec, crossdc
from support.faults.base import FaultContext, FaultError, Topology
from support.faults.executor import ExecutorPool, LocalExecutor
from support.faults.guard import Allowlist, audit_script
from support.faults.session import make_fault
from support.faults.store import DAMAGED_BYTES
from support.waits import wait_until

HOST = "198.18.2.10"  # dc2's host in config/lab.yaml


def _context(tmp_path: Path) -> tuple[FaultContext, Path, Path]:
    store, state = tmp_path / "snapshots", tmp_path / "state"
    store.mkdir()
    config = lab_shaped_config(tmp_path, f"datacenters.dc2.crossdc.snapshot_dir={store}",
                               f"faults.state_dir={state}")
    topology = Topology.from_settings(config.settings, str(config.source))
    allowlist = Allowlist(topology)
    pool = ExecutorPool(topology, allowlist, factory=lambda host: LocalExecutor(host))
    return FaultContext(topology, config.settings.faults, pool, allowlist, {}), store, state


def _payload(state: dict[str, list[object]], origin: str = "Aggregator") -> bytes:
    blob = appspec.encode_state(state, 1700000000.0)
    return crossdc.encode(crossdc.Message(crossdc.TYPE_SNAPSHOT, 7, "dc1", blob, origin))


def _fill(store: Path) -> dict[str, bytes]:
    files = {"dc1-Aggregator.snapshot": _payload({"c1": [5, 50.0], "c2": [3, 12.5]}),
             "dc1-Peak.snapshot": _payload({"d1": [4, None]}, "Peak")}
    for name, data in files.items():
        (store / name).write_bytes(data)
    return files


def _backups(state: Path) -> list[str]:
    return sorted(p.name for p in state.glob("*.bak.*")) if state.exists() else []


def test_lost_moves_the_files_aside_and_the_heal_puts_back_only_what_no_newer_copy_replaced(tmp_path: Path) -> None:
    ctx, store, state = _context(tmp_path)
    files = _fill(store)
    fault = make_fault(ctx, "snapshots-lost", dc="dc2")
    fault.prepare()
    fault.inject()
    assert sorted(p.name for p in store.iterdir()) == []
    assert len(_backups(state)) == 2
    assert "2 stored snapshot(s) lost" in fault.verify(2).evidence
    newer = _payload({"c1": [9, 90.0]})
    (store / "dc1-Aggregator.snapshot").write_bytes(newer)  # replication goes on
    fault.heal()
    healed = fault.verify_healed(2)
    assert "put back: dc1-Peak.snapshot" in healed.evidence
    assert "newer copies: dc1-Aggregator.snapshot" in healed.evidence
    assert (store / "dc1-Aggregator.snapshot").read_bytes() == newer
    assert (store / "dc1-Peak.snapshot").read_bytes() == files["dc1-Peak.snapshot"]
    assert sorted(p.name for p in store.iterdir()) == ["dc1-Aggregator.snapshot", "dc1-Peak.snapshot"]
    assert list(state.glob("*")) == []
    fault.heal()  # idempotent
    assert sorted(p.name for p in store.iterdir()) == ["dc1-Aggregator.snapshot", "dc1-Peak.snapshot"]


def test_corruption_damages_the_state_in_place_so_it_reads_back_without_error_as_other_numbers(
        tmp_path: Path) -> None:
    ctx, store, state = _context(tmp_path)
    files = _fill(store)
    fault = make_fault(ctx, "snapshots-corrupted", dc="dc2")
    fault.prepare()
    fault.inject()
    assert "2 stored snapshot(s) damaged in place" in fault.verify(2).evidence
    for name, original in files.items():
        damaged = (store / name).read_bytes()
        assert len(damaged) == len(original) and damaged != original
        assert sum(a != b for a, b in zip(damaged, original, strict=True)) == DAMAGED_BYTES
        before, after = crossdc.decode(original), crossdc.decode(damaged)  # the toolkit's envelope is intact
        assert (after.type, after.cnt, after.origin, after.snapshot_origin) == (
            before.type, before.cnt, before.origin, before.snapshot_origin)
        state_before = appspec.decode_state(before.blob)["state"]
        state_after = appspec.decode_state(after.blob)["state"]  # no error: other numbers
        assert state_after.keys() == state_before.keys() and state_after != state_before
    last_key = list(appspec.decode_state(crossdc.decode(files["dc1-Aggregator.snapshot"]).blob)["state"])[-1]
    assert appspec.decode_state(crossdc.decode((store / "dc1-Aggregator.snapshot").read_bytes()).blob)[
        "state"][last_key][0] > 10**15
    newer = _payload({"c1": [9, 90.0]})
    (store / "dc1-Aggregator.snapshot").write_bytes(newer)  # a newer copy replaced one damaged file
    fault.heal()
    healed = fault.verify_healed(2)
    assert "put back: dc1-Peak.snapshot" in healed.evidence
    assert (store / "dc1-Aggregator.snapshot").read_bytes() == newer
    assert (store / "dc1-Peak.snapshot").read_bytes() == files["dc1-Peak.snapshot"]
    assert list(state.glob("*")) == [] and sorted(p.name for p in store.iterdir()) == [
        "dc1-Aggregator.snapshot", "dc1-Peak.snapshot"]


@pytest.mark.parametrize("kind", ["snapshots-lost", "snapshots-corrupted"])
def test_the_dead_man_timer_reverts_and_leaves_no_residue(tmp_path: Path, kind: str) -> None:
    ctx, store, state = _context(tmp_path)
    files = _fill(store)
    fault = make_fault(ctx, kind, dc="dc2")
    fault.ttl = 0.3
    fault.prepare()
    fault.inject()  # nobody heals: the timer does
    executor = ctx.executors.get(HOST)
    wait_until(lambda: not list(state.glob("*")), lambda done: done, timeout=10, interval=0.05,
               what="the dead-man revert")
    assert {p.name: p.read_bytes() for p in store.iterdir()} == files
    audit = executor.run(audit_script(ctx.settings.tag, HOST, [str(store)], directory=str(state)))
    assert "RESIDUE" not in audit.stdout


def test_an_empty_store_is_refused_and_dry_run_shows_the_scripts(tmp_path: Path) -> None:
    ctx, store, _ = _context(tmp_path)
    for kind in ("snapshots-lost", "snapshots-corrupted"):
        with pytest.raises(FaultError, match="nothing to"):
            make_fault(ctx, kind, dc="dc2").prepare()
        fault = make_fault(ctx, kind, dc="dc2")
        phases = [phase for phase, host, _ in fault.commands() if host == HOST]
        assert phases == ["inject", "verify", "heal"]
        assert fault.one_shot and fault.requires == ("bash", "snapshot-dir")
    os.rmdir(store)


def test_the_probe_reports_a_writable_snapshot_directory(tmp_path: Path) -> None:
    from support.faults.probe import ADVICE, HOST_CAPABILITIES, host_probe_script, parse_probe_output

    assert "snapshot-dir" in HOST_CAPABILITIES and "snapshot_dir" in ADVICE["snapshot-dir"]
    executor = LocalExecutor("localhost")
    present = parse_probe_output("h", executor.run(host_probe_script("python3", snapshot_dir=str(tmp_path))).stdout)
    missing = parse_probe_output("h", executor.run(host_probe_script("python3", snapshot_dir=str(tmp_path / "no")))
                                 .stdout)
    unset = parse_probe_output("h", executor.run(host_probe_script("python3")).stdout)
    assert present.has("snapshot-dir") and not missing.has("snapshot-dir") and not unset.has("snapshot-dir")


def test_the_received_ledger_holds_any_int64_count(tmp_path: Path) -> None:
    """A restored damaged state emits counts beyond int32 (the XOR above gives 0x40404040404040xx): the ledger must
    keep those outputs, not lose their batch (it did, with an int32 column, and the state check then passed)."""
    from support.data.contract import ORDERS
    from support.data.ledger import Ledger, ReceivedRow, read_table

    huge = 0x404040404040401B
    assert ORDERS.received_columns()["count_for_key"] == "<i8"
    for columns in (None, ORDERS.received_columns()):
        ledger = Ledger(tmp_path / f"{columns is None}" / "received.csv", ReceivedRow, columns=columns)
        ledger.extend([ReceivedRow("a", "k", 1, "dc2", 1.0, 1.0, huge, 0.5, True)])
        ledger.close()
        assert int(read_table(tmp_path / f"{columns is None}" / "received")["count_for_key"][0]) == huge
