"""The lab's two applications without the lab (no root): `orders` and `telemetry` as `lab.apps` defines them —
topology, the state per key and the output of their logic, their bundles, the OpenAPI tuple schemas, CSV
injection, the stub's standby composite and the deployments and failover scripts per application."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lab import bundles, control, paths, stub
from lab.apps import APPS, LOGIC, ORDERS, TELEMETRY
from lab.instance.data import parse_tuples


def _run(logic: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    state: dict[str, list[Any]] = {}
    outs = []
    for item in items:
        st = state.setdefault(str(item[logic.key_field]), logic.initial())
        logic.update(st, item)
        outs.append(logic.output(item, st, "dc1", 1.0))
    return outs


def test_telemetry_topology_names_and_parameters() -> None:
    app = APPS["telemetry"]
    assert app.main_composite == "telemetry::Telemetry" and app.pe_count == 3
    ops = {o.name: o for o in app.operators}
    assert (ops["Readings"].kind, ops["Readings"].pe_index) == ("spl.endpoint::EndpointSource", 0)
    assert (ops["Peak"].kind, ops["Peak"].pe_index) == ("telemetry::Peak", 1)
    assert (ops["Alerts"].kind, ops["Alerts"].pe_index) == ("spl.endpoint::EndpointSink", 2)
    assert "TelemetryXDC.RemoteDCDataMerger" in ops and "SpecialMessagePort" in ops
    assert not [n for n in ops if "Orders" in n or n == "Aggregator"]
    assert [(e.operator, e.kind) for e in app.endpoints] == [("Readings", "source"), ("Alerts", "sink")]
    assert app.stream_out("Peak", 0) == "Peaks" and app.stream_in("Peak", 0) == "DeviceReadings"
    assert {"Alerts.bufferSize", "Alerts.consumingReads", "configFileName", "fencing"} <= set(app.parameters)
    assert set(APPS) == set(LOGIC) == set(control.APPLICATIONS)


def test_telemetry_counts_readings_and_keeps_the_peak_and_outputs_nothing_else() -> None:
    items = [{"deviceId": d, "reading": r, "region": "emea", "trackingId": f"t{i}", "readingSeq": i, "sentAt": 0.0}
             for i, (d, r) in enumerate([("a", -5.0), ("a", -7.5), ("b", 3.0), ("a", 2.25), ("a", "bad")])]
    outs = _run(TELEMETRY, items)
    assert [(o["deviceId"], o["readingsSoFar"], o["peakReading"]) for o in outs] == [
        ("a", 1, -5.0), ("a", 2, -5.0), ("b", 1, 3.0), ("a", 3, 2.25), ("a", 4, 2.25)]
    assert all(set(o) == {"deviceId", "trackingId", "readingsSoFar", "peakReading"} for o in outs)
    assert outs[1]["trackingId"] == "t1"
    assert TELEMETRY.count_of(outs[3]) == 3
    assert TELEMETRY.corrupted(outs[3])["peakReading"] == 3.25
    assert TELEMETRY.restamped(outs[3], "dc2", 9.0) == outs[3]  # no DC, no time to restamp
    assert TELEMETRY.restored([3, 2.25]) == [3, 2.25] and TELEMETRY.restored([0, None]) == [0, None]


def test_orders_logic_is_the_aggregator_it_was() -> None:
    amounts = [1.5, 2.25, 0.1]
    items = [{"id": f"i{n}", "key": "k", "seq": n, "amount": a, "product": "tea"} for n, a in enumerate(amounts)]
    outs = _run(ORDERS, items)
    assert [(o["count_for_key"], o["sum_for_key"]) for o in outs] == [(1, 1.5), (2, 3.75), (3, 3.85)]
    assert outs[0]["dc"] == "dc1" and outs[0]["processed_at"] == 1.0 and outs[0]["product"] == "tea"
    assert ORDERS.corrupted(outs[0])["product"] == "tea~"
    assert ORDERS.restamped(outs[0], "dc2", 5.0) | {"dc": "dc1", "processed_at": 1.0} == outs[0]
    assert ORDERS.restamped(outs[0], "dc2", 5.0)["dc"] == "dc2"


def test_bundles_and_openapi_schemas_per_application() -> None:
    data = bundles.bundle_bytes(APPS["telemetry"])
    assert bundles.read_manifest(data)["Main-Composite"] == "telemetry::Telemetry"
    assert bundles.application_of(data) is APPS["telemetry"]
    assert bundles.bundle_id(data) != bundles.bundle_id(bundles.bundle_bytes(APPS["orders"]))
    t_in, t_out = APPS["telemetry"].in_tuple, APPS["telemetry"].out_tuple
    assert t_in["properties"]["readingSeq"]["type"] == "integer" and t_in["properties"]["reading"]["type"] == "number"
    assert set(t_out["properties"]) == {"deviceId", "trackingId", "readingsSoFar", "peakReading"}
    assert t_out["additionalProperties"] is False
    assert set(APPS["orders"].in_tuple["properties"]) == {"id", "key", "seq", "amount", "sent_at", "crc"}


def test_csv_columns_are_converted_by_the_applications_input_schema() -> None:
    rows = parse_tuples(b"deviceId,reading,region,trackingId,readingSeq\nd1,-3.5,apac,t,4\n", "text/csv",
                        APPS["telemetry"].in_tuple)
    assert rows == [{"deviceId": "d1", "reading": -3.5, "region": "apac", "trackingId": "t", "readingSeq": 4}]
    rows = parse_tuples(b"id,key,seq,amount,crc\na,k,1,2.5,7\n", "text/csv", APPS["orders"].in_tuple)
    assert rows == [{"id": "a", "key": "k", "seq": 1, "amount": 2.5, "crc": 7}]


@pytest.mark.parametrize(("config", "composite"), [
    ("/run/xdc-lab/dc2/crossdc/telemetry-standby.cfg", "telemetry::TelemetryStandby"),
    ("/run/xdc-lab/dc2/crossdc/orders-standby.cfg", "orders::OrdersStandby"),
    ("/somewhere/probe_x.cfg", "orders::OrdersStandby"),
])
def test_the_stub_stands_for_the_application_its_config_file_names(config: str, composite: str) -> None:
    assert stub.main_composite(config) == composite


def test_deployments_and_failover_scripts_per_application(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert control.layout("active-active", "telemetry") == (
        ("dc2", "telemetry", {"configFileName": str(paths.crossdc_dir("dc2") / "telemetry.cfg")}),
        ("dc1", "telemetry", {"configFileName": str(paths.crossdc_dir("dc1") / "telemetry.cfg")}),
    )
    assert control.layout("active-passive") == (
        ("dc1", "orders", {"configFileName": str(paths.crossdc_dir("dc1") / "orders.cfg")}),
    )
    assert control.CONFIG_FILES == {"orders.cfg": 1, "orders-standby.cfg": 0, "telemetry.cfg": 1,
                                    "telemetry-standby.cfg": 0}
    cmd = control.standby_command("dc2", "restoring", "telemetry")
    assert cmd[2].endswith("/dc2/crossdc/telemetry-standby.cfg")
    assert cmd[4].endswith("/dc2/crossdc/telemetry-failover-restoring.sh")
    monkeypatch.setattr(paths, "crossdc_dir", lambda dc: tmp_path / dc)
    stub.install_scripts("dc2", ("orders", "telemetry"))
    names = sorted(p.name for p in (tmp_path / "dc2").iterdir())
    assert names == ["failover-reference.sh", "failover-restoring.sh", "telemetry-failover-reference.sh",
                     "telemetry-failover-restoring.sh"]
    restoring = (tmp_path / "dc2" / "telemetry-failover-restoring.sh").read_text()
    assert "bundles/telemetry.sab" in restoring and "telemetry-failover.cfg" in restoring
    assert "orders" not in restoring
    assert "bundles/orders.sab" in (tmp_path / "dc2" / "failover-reference.sh").read_text()


def test_a_reset_stops_the_stubs_and_the_failover_scripts_they_launched_with_their_children() -> None:
    from lab.control import is_stub_or_failover_script, with_descendants

    assert is_stub_or_failover_script([b"/usr/bin/python3", b"-m", b"lab.stub", b"-P", b"configFileName=x.cfg"])
    assert is_stub_or_failover_script([b"sh", b"-c", b"/run/xdc-lab/dc2/crossdc/telemetry-failover-restoring.sh"])
    assert is_stub_or_failover_script([b"/bin/sh", b"/run/xdc-lab/dc2/crossdc/failover-reference.sh"])
    # the tester's dead-man timer and a team's own scripts are not the lab's failover scripts
    assert not is_stub_or_failover_script([b"bash", b"-c", b"sleep 300; streamtool startinstance"])
    assert not is_stub_or_failover_script([b"sh", b"/run/xdc-lab/dc2/crossdc/orders.cfg"])
    # the script outlived its stub (reparented): its streamtool child goes with it, parents first
    children = {1: [50, 60], 50: [51], 51: [52], 60: [61]}
    assert with_descendants([50], children) == [50, 51, 52]
    assert with_descendants([60, 50], children) == [60, 61, 50, 51, 52]
