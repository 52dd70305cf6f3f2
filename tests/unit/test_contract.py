"""The application contract (applications.<app>.data): declarations, generation, ledgers and the judge for a
shape other than orders (the lab's telemetry: readings in, the id and the state out, no checksum)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from support.config import ConfigError, load_config
from support.data.contract import ORDERS, DataContract, parse_contract
from support.data.generate import ContractGenerator, FileSource, OrderGenerator, tuple_crc
from support.data.ledger import OK, IdTable, Ledger, ReceivedRow, SentRow, Table, join_inputs, read_table, rows_of
from support.data.validate import check_delivery, check_order, check_state
from support.hooks import unknown_input_noun
from support.judge.history import History, load_history
from support.judge.settings import JudgeSettings
from support.measure import NOT_JUDGED, check_integrity
from support.orchestration import Journal
from support.streams.exchange import Endpoints, SinkRead
from support.traffic import Traffic, received_columns
from support.waits import wait_until

PROJECT = Path(__file__).resolve().parents[2]
SETTINGS = JudgeSettings(throughput_window=1.0, throughput_fraction=0.9, split_brain_gap=2.0, clock_tolerance=0.5,
                         settle_period=4.0, drain_quiet=2.0, drain_timeout=20.0, scenario_timeout=300.0,
                         objectives={})
TELEMETRY_DATA: dict[str, Any] = yaml.safe_load((PROJECT / "config" / "lab.yaml").read_text())[
    "applications"]["telemetry"]["data"]
TELEMETRY = parse_contract(TELEMETRY_DATA)


# ------------------------------------------------------------------------------------------ declarations


def test_the_lab_declares_orders_as_the_default_contract_and_telemetry_without_a_checksum() -> None:
    lab = yaml.safe_load((PROJECT / "config" / "lab.yaml").read_text())["applications"]
    assert parse_contract(lab["orders"]["data"]) == ORDERS == parse_contract(None)
    assert TELEMETRY.noun == "readings" and not TELEMETRY.has_checksum
    assert TELEMETRY.count_column == "readingsSoFar" and TELEMETRY.state_inputs == ("reading",)
    assert list(TELEMETRY.sent_columns())[-1] == "reading"
    assert "peakReading" in TELEMETRY.received_columns()


def test_a_contract_survives_being_stored_with_the_run(tmp_path: Path) -> None:
    for contract in (ORDERS, TELEMETRY):
        contract.save(tmp_path)
        assert DataContract.load(tmp_path) == contract
    assert DataContract.load(tmp_path / "older-run") == ORDERS  # recorded before contracts: orders


def _config(tmp_path: Path, data: Mapping[str, Any]) -> Path:
    """config/lab.yaml plus an application ``probe`` shaped like telemetry, with ``data`` as its contract."""
    secret = tmp_path / "pw"
    secret.write_text("probe-pw\n")
    path = tmp_path / "mine.yaml"
    probe = {"job_name": "probe", "bundle": "/tmp/probe.sab", "source": {"operator": "In", "port": 0},
             "sink": {"operator": "Out", "port": 0}, "data": dict(data)}
    path.write_text(yaml.safe_dump({
        "extends": str(PROJECT / "config" / "lab.yaml"),
        "datacenters": {dc: {"rest": {"auth": {"password": f"${{file:{secret}}}"}}} for dc in ("dc1", "dc2")},
        "applications": {"probe": probe},
    }))
    return path


@pytest.mark.parametrize(("change", "where", "problem"), [
    ({"state": {"readingsSoFar": "count", "peakReading": "median of reading"}}, "data.state.peakReading",
     "unknown aggregate 'median of reading'"),
    ({"state": {"readingsSoFar": "count", "peakReading": "max of humidity"}}, "data.state.peakReading",
     "'humidity' is not a declared input field"),
    ({"tracking": {"key": "deviceId", "seq": "readingSeq"}}, "data.tracking", "id"),
    ({"output": {"processed_at": "t"}}, "data.output", "id"),
    ({"output": {"id": "trackingId", "checksum": "crc"}}, "data.output.checksum", "no checksum"),
])
def test_a_bad_declaration_is_one_line_naming_file_path_and_problem(tmp_path: Path, change: dict[str, Any],
                                                                     where: str, problem: str) -> None:
    path = _config(tmp_path, {**TELEMETRY_DATA, **change})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert "\n" not in text and str(path) in text and f"applications.probe.{where}" in text and problem in text


def test_config_validate_exits_2_on_a_bad_declaration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from support.cli.config import add_config_parser, config_command

    path = _config(tmp_path, {**TELEMETRY_DATA, "state": {"readingsSoFar": "count of reading"}})
    parser = argparse.ArgumentParser(prog="failover-tester")
    add_config_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["config", "validate", str(path)])
    assert config_command(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "applications.probe.data.state.readingsSoFar" in err


def test_an_unknown_input_noun_fails_with_the_known_ones() -> None:
    steps = ["the application telemetry is deployed active in dc1 and standby in dc2",
             "gizmos flow at 200 tuples per second", "the system has been steady for 5 seconds"]
    problem = unknown_input_noun(steps, ["orders", "readings", "orders"])
    assert problem is not None and "\n" not in problem
    assert "'gizmos'" in problem and "orders, readings" in problem
    assert unknown_input_noun([s.replace("gizmos", "readings") for s in steps], ["orders", "readings"]) is None


# ------------------------------------------------------------------------------------------ generation


def test_the_orders_contract_generates_what_the_order_generator_always_did() -> None:
    batch = ContractGenerator(ORDERS, 7, "run").batch(200)
    assert batch == OrderGenerator(7, "run").batch(200)
    assert all(item["crc"] == tuple_crc(item) for item in batch)
    assert {item["key"] for item in batch} <= {f"C{i:04d}" for i in range(1, 41)}
    assert len({item["product"] for item in batch}) <= 25


def test_telemetry_readings_are_seeded_and_carry_the_declared_fields() -> None:
    first = ContractGenerator(TELEMETRY, 3, "run").batch(500)
    assert first == ContractGenerator(TELEMETRY, 3, "run").batch(500)
    assert first != ContractGenerator(TELEMETRY, 4, "run").batch(500)
    assert set(first[0]) == {"trackingId", "deviceId", "readingSeq", "reading", "region"}
    assert {item["deviceId"] for item in first} <= {f"D{i:04d}" for i in range(1, 26)}
    assert all(-40 <= item["reading"] <= 120 and round(item["reading"], 1) == item["reading"] for item in first)
    regions: dict[str, set[str]] = {}
    seqs: dict[str, list[int]] = {}
    for item in first:
        regions.setdefault(item["deviceId"], set()).add(item["region"])
        seqs.setdefault(item["deviceId"], []).append(item["readingSeq"])
    assert all(len(r) == 1 and r <= {"emea", "amer", "apac"} for r in regions.values())  # per key
    assert all(s == list(range(1, len(s) + 1)) for s in seqs.values())


def test_other_faker_providers_are_called_per_tuple() -> None:
    contract = parse_contract({**TELEMETRY_DATA, "fields": {**TELEMETRY_DATA["fields"],
                                                           "note": {"faker": "sentence", "args": {"nb_words": 3}}}})
    items = ContractGenerator(contract, 1, "r").batch(5)
    assert all(isinstance(i["note"], str) and i["note"].endswith(".") for i in items)
    with pytest.raises(ValueError, match="no provider"):
        ContractGenerator(parse_contract({**TELEMETRY_DATA, "fields": {**TELEMETRY_DATA["fields"],
                                                                      "x": {"faker": "no_such_provider"}}}), 1, "r")


def test_readings_from_a_csv_file(tmp_path: Path) -> None:
    path = tmp_path / "readings.csv"
    path.write_text("deviceId,reading,region\nD1,12.5,emea\nD2,3,amer\nD1,-1,emea\n")
    source = FileSource(path, "run", parse_contract({**TELEMETRY_DATA, "fields": None, "file": str(path)}))
    items = source.batch(4)
    assert [(i["deviceId"], i["readingSeq"], i["reading"]) for i in items] == [
        ("D1", 1, 12.5), ("D2", 1, 3.0), ("D1", 2, -1.0), ("D1", 3, 12.5)]
    assert "crc" not in items[0]
    bad = tmp_path / "bad.csv"
    bad.write_text("device,reading\nD1,1\n")
    with pytest.raises(ValueError, match="no column deviceId"):
        FileSource(bad, "run", TELEMETRY)


# ------------------------------------------------------------------------------------------ ledgers, judge


def _peak_app(items: Sequence[Mapping[str, Any]], state: dict[str, list[float]], skew: float = 0.0
              ) -> list[dict[str, Any]]:
    """What the telemetry application emits: the id, the device and its state (count, highest reading)."""
    out = []
    for item in items:
        st = state.setdefault(item["deviceId"], [0, -math.inf])
        st[0] += 1
        st[1] = max(st[1], item["reading"])
        out.append({"deviceId": item["deviceId"], "trackingId": item["trackingId"], "readingsSoFar": st[0],
                    "peakReading": st[1] + skew})
    return out


def _telemetry_run(restore: str) -> tuple[Table, Table, float]:
    """dc1 active for 300 readings, then dc2 takes over with the state ``restore`` says (snapshot, empty, bad-peak),
    for 300 more."""
    ids = IdTable()
    sent = Ledger(None, SentRow, ids, columns=TELEMETRY.sent_columns())
    received = Ledger(None, ReceivedRow, ids, columns=TELEMETRY.received_columns())
    gen = ContractGenerator(TELEMETRY, 5, "t")
    dc1: dict[str, list[float]] = {}
    t = 1000.0
    for dc, state in (("dc1", dc1), ("dc2", None)):
        if state is None:
            state = {} if restore == "empty" else {k: list(v) for k, v in dc1.items()}
        for _ in range(30):
            batch = gen.batch(10)
            t += 0.1
            n = len(batch)
            sent.extend_columns({"id": [i["trackingId"] for i in batch], "key": [i["deviceId"] for i in batch],
                                 "seq": [i["readingSeq"] for i in batch], "dc": [dc] * n, "t_send": [t] * n,
                                 "t_ack": [t] * n, "outcome": [OK] * n, "error": [""] * n,
                                 "reading": [i["reading"] for i in batch]})
            skew = 5.0 if restore == "bad-peak" and dc == "dc2" else 0.0
            received.extend_columns(received_columns(TELEMETRY, _peak_app(batch, state, skew), dc, t + 0.05))
    return sent.table(), received.table(), 1000.0 + 30 * 0.1 + 0.01


def test_outputs_that_carry_only_the_id_get_key_seq_and_inputs_from_the_sent_ledger() -> None:
    sent, received, _ = _telemetry_run("snapshot")
    assert (received["seq"] == 0).all() and np.isnan(received["reading"]).all()  # not in the output
    joined = join_inputs(sent, received, TELEMETRY.state_inputs)
    assert (joined["seq"] == sent["seq"]).all() and (joined["reading"] == sent["reading"]).all()
    assert joined.text("key", joined["key"]) == sent.text("key", sent["key"])
    assert check_order(joined).reordered == 0
    delivery = check_delivery(sent, joined)
    assert (delivery.lost, delivery.duplicated, len(delivery.corrupted_ids)) == (0, 0, 0)


def test_without_a_checksum_corruption_is_not_judged() -> None:
    sent, received, _ = _telemetry_run("snapshot")
    verdict = check_integrity(check_delivery(sent, received), checksum=False)
    assert verdict.status == NOT_JUDGED and "passes no checksum through" in verdict.summary


@pytest.mark.parametrize(("restore", "consistent", "inconsistent"), [
    ("snapshot", True, False), ("empty", False, False), ("bad-peak", False, True)])
def test_the_restored_state_of_declared_aggregates(restore: str, consistent: bool, inconsistent: bool) -> None:
    sent, received, since = _telemetry_run(restore)
    report = check_state(sent, join_inputs(sent, received, ("reading",)), "dc1", "dc2", since, TELEMETRY.state)
    assert report.keys_judged > 0
    assert (report.consistent == report.keys_judged) is consistent
    assert (report.inconsistent > 0) is inconsistent
    if restore == "empty":
        assert report.empty == report.keys_judged and report.lost_updates > 0
    if inconsistent:
        assert report.samples[0]["reason"] == "its restored maximum differs from the old active's"
        assert "first_output_peakReading" in report.samples[0]


def test_state_without_a_count_or_without_state_is_not_judged() -> None:
    sent, received, since = _telemetry_run("snapshot")
    no_count = parse_contract({**TELEMETRY_DATA, "state": {"peakReading": "max of reading"}})
    report = check_state(sent, received, "dc1", "dc2", since, no_count.state)
    assert "declares no count" in report.not_judged and report.to_json()["not_judged"] == report.not_judged
    assert check_state(sent, received, "dc1", "dc2", since, ()).not_judged == "the application declares no state"


class _Echo:
    """An exchange whose application is telemetry's (one data center, every batch accepted)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.out: list[dict[str, Any]] = []
        self.state: dict[str, list[float]] = {}

    def endpoints(self, job_name: str, application: Any = None) -> Endpoints:
        return Endpoints("1", "in", "out")

    def inject(self, url: str, items: Sequence[Mapping[str, Any]], fmt: Any = "json", timeout: Any = None) -> int:
        json.dumps({"items": list(items)})
        with self.lock:
            self.out.extend(_peak_app(items, self.state))
        return len(items)

    def read(self, url: str, start_time_ms: int | None = None) -> SinkRead:
        with self.lock:
            out, self.out = self.out, []
        return SinkRead(out)


def test_telemetry_traffic_is_recorded_and_judged_again_from_disk(tmp_path: Path) -> None:
    folder = tmp_path / "ledgers" / "01-s"
    ids = IdTable(folder / "ids.txt")
    TELEMETRY.save(folder)
    traffic = Traffic({"dc1": _Echo()}, "telemetry", None, ContractGenerator(TELEMETRY, 1, "t"),
                      Ledger(folder / "sent.csv", SentRow, ids, columns=TELEMETRY.sent_columns()),
                      Ledger(folder / "received.csv", ReceivedRow, ids, columns=TELEMETRY.received_columns()),
                      Journal(None), rate=2000, batch_interval=0.05, consumer_interval=0.05, max_duration=30,
                      preferred=["dc1"], contract=TELEMETRY)
    traffic.start()
    wait_until(lambda: len(traffic.received), lambda n: n >= 500, timeout=10, what="500 readings out")
    traffic.drain(timeout=10, quiet=0.5)
    for ledger in (traffic.sent, traffic.received, ids):
        ledger.close()
    assert set(read_table(folder / "received").columns) == set(TELEMETRY.received_columns())
    stored = load_history(tmp_path, "01-s", SETTINGS)
    assert stored.contract == TELEMETRY and len(stored.sent) > 0
    assert (stored.received["seq"] > 0).all() and not np.isnan(stored.received["reading"]).any()
    assert check_delivery(stored.sent, stored.received).lost == 0
    rows = rows_of(stored.received, ReceivedRow)  # the report's timeline reads rows of any contract
    assert rows[0].crc_ok and rows[0].count_for_key == 0 and rows[0].seq > 0
    live = History("01-s", "s", (), traffic.sent.table(), traffic.received.table(), SETTINGS, folder, None, TELEMETRY)
    assert check_order(live.received) == check_order(stored.received)


def test_a_scenario_with_an_unknown_noun_fails_before_anything_is_deployed(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    config = _config(tmp_path, TELEMETRY_DATA)
    feature = "tests/data/features/unknown_noun.feature"
    done = subprocess.run([sys.executable, "-m", "support.cli", "run", "--config", str(config),
                           "--set", f"run.reports_dir={reports}", feature],
                          cwd=PROJECT, capture_output=True, text=True, timeout=120, check=False)
    # run's pre-check (issue 13) refuses it before behave starts: exit 2, file:line, no run folder
    assert done.returncode == 2, done.stderr
    error = done.stderr.strip()
    assert error.startswith(f"{feature}:") and "unknown input 'gizmos'" in error and "orders, readings" in error
    assert "\n" not in error and not reports.exists()
    # behave run directly (no pre-check): the before_scenario hook still fails it before anything is deployed
    run_dir = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "behave", "-D", f"config={config}", "-D", f"run_dir={run_dir}",
                    "-D", f"run.reports_dir={reports}", feature],
                   cwd=PROJECT, capture_output=True, text=True, timeout=120, check=False)
    summary = json.loads((run_dir / "summary.json").read_text())
    error = summary["scenarios"][0]["error"]
    assert error.startswith("unknown input 'gizmos'") and "orders, readings" in error and "\n" not in error
    events = {json.loads(line)["event"] for line in (run_dir / "journal.jsonl").read_text().splitlines()}
    # nothing deployed (the clock offsets of the run are noted)
    assert events - {"clock.offsets"} == {"scenario.started", "scenario.steps_done", "scenario.finished"}
