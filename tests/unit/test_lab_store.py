"""The lab instance's bundles and application configurations, and the streamtool stand-in's parsing (issue 11
points 9-11): no lab, no root."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from lab import bundles, paths, streamtool
from lab.apps import APPS
from lab.instance.model import ApiError
from lab.instance.store import AppConfigStore, BundleStore


def _bundles(tmp_path: Path) -> BundleStore:
    store = BundleStore("dc1")
    store.dir = tmp_path / "applicationbundles"
    return store


def test_a_lab_bundle_names_its_application_in_its_manifest() -> None:
    data = bundles.bundle_bytes(APPS["orders"])
    assert bundles.read_manifest(data)["Main-Composite"] == "orders::Orders"
    assert bundles.application_of(data) is APPS["orders"]
    assert bundles.bundle_id(data) == bundles.bundle_id(bundles.bundle_bytes(APPS["orders"]))  # reproducible
    with pytest.raises(bundles.BundleError):
        bundles.application_of(b"PK not really a zip")


def test_uploaded_bundles_are_found_by_id_and_bare_names_are_refused(tmp_path: Path) -> None:
    store = _bundles(tmp_path)
    b = store.add(bundles.bundle_bytes(APPS["orders"]))
    assert b.app.name == "orders" and b.path.read_bytes() == bundles.bundle_bytes(APPS["orders"])
    assert store.resolve(b.id) == b
    for bare in ("orders", "orders_standby", "orders.sab"):
        with pytest.raises(ApiError) as err:
            store.resolve(bare)
        assert err.value.status == 404
    for url in ("http://host/orders.sab", "https://host/orders.zip"):
        with pytest.raises(ApiError) as err:
            store.resolve(url)
        assert err.value.status == 400
    with pytest.raises(ApiError) as err:
        store.add(b"")
    assert err.value.status == 400


def test_application_configurations_are_stored_in_the_agreed_format(tmp_path: Path) -> None:
    store = AppConfigStore("dc1")
    store.dir = tmp_path
    doc = store.create({"name": "CrossDCFailover", "properties": {"orders::Orders_heartbeatExchangeInterval": 2}})
    assert doc["properties"] == {"orders::Orders_heartbeatExchangeInterval": "2"} and doc["description"] == ""
    assert json.loads((tmp_path / "CrossDCFailover.json").read_text()) == {
        "name": "CrossDCFailover",
        "description": "",
        "properties": {"orders::Orders_heartbeatExchangeInterval": "2"},
    }
    with pytest.raises(ApiError) as err:
        store.create({"name": "CrossDCFailover"})
    assert err.value.status == 409
    doc = store.update("CrossDCFailover", {"properties": {"orders::Orders_heartbeatExchangeInterval": None,
                                                          "k": "v"}, "description": "d"})
    assert doc["properties"] == {"k": "v"} and doc["description"] == "d"
    assert [c["name"] for c in store.all()] == ["CrossDCFailover"]
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file, renamed
    store.delete("CrossDCFailover")
    assert store.all() == []
    for bad in ("../x", "", "a/b", ".hidden"):
        with pytest.raises(ApiError) as err:
            store.create({"name": bad})
        assert err.value.status == 400
    with pytest.raises(ApiError) as err:
        store.delete("CrossDCFailover")
    assert err.value.status == 404


def test_streamtool_reads_the_name_service_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(paths, "nameservice_dir", lambda dc: tmp_path)
    (tmp_path / "7.SpecialMessagePort").write_text("198.18.2.10:25099\n")
    (tmp_path / "12.SpecialMessagePort").write_text("198.18.2.10:25199\n")
    (tmp_path / "7.Other").write_text("198.18.2.10:1\n")
    tool = object.__new__(streamtool.Tool)
    tool.dc, tool.iid = "dc2", "streams-dc2"
    assert tool.getnsentry(argparse.Namespace(name="SpecialMessagePort", jobs="12")) == 0
    assert capsys.readouterr().out == "SpecialMessagePort 198.18.2.10:25199\n"
    tool.getnsentry(argparse.Namespace(name="SpecialMessagePort", jobs=None))
    assert capsys.readouterr().out.splitlines() == ["SpecialMessagePort 198.18.2.10:25099",
                                                    "SpecialMessagePort 198.18.2.10:25199"]
    with pytest.raises(streamtool.ToolError):
        tool.getnsentry(argparse.Namespace(name="SpecialMessagePort", jobs="8"))


def test_streamtool_options_follow_the_real_command_line() -> None:
    a = streamtool.parser().parse_args(
        ["submitjob", "/run/xdc-lab/bundles/orders.sab", "-P", "configFileName=/x/orders.cfg", "--jobname", "o"]
    )
    assert a.sabfile.endswith("orders.sab") and a.P == ["configFileName=/x/orders.cfg"] and a.jobname == "o"
    a = streamtool.parser().parse_args(["getnsentry", "SpecialMessagePort", "--jobs", "3"])
    assert (a.name, a.jobs) == ("SpecialMessagePort", "3")
    assert streamtool._props(["a=1", "b="]) == {"a": "1", "b": ""}
    with pytest.raises(streamtool.ToolError):
        streamtool._props(["a=1=2"])
