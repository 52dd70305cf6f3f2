"""The lab toolkit's settings, read as the real composite reads them (reference §5.2; issue 11 point 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab import crossdc, paths

MAIN = "orders::Orders"


def test_config_file_parser_is_read_value_from_config_file() -> None:
    text = "\n".join(
        [
            "# comment",
            "   # indented comment",
            "  heartbeatExchangeInterval =  2.0  ",
            "heartbeatExchangeInterval=9.0",  # the first line of a key wins
            "crossDCInitDelay=",  # one piece only: ignored
            "dataSnapshotJdbcUrl=jdbc:x=y",  # three pieces: ignored
            "localDataCenterName==dcA",  # empty pieces are dropped (SPL tokenize, keepEmptyTokens false)
            "\tconsecutiveHeartbeatMissesAllowed=5",  # only spaces are trimmed: the key keeps its tab
        ]
    )
    found = crossdc.parse_config_text(text)
    assert found == {
        "heartbeatExchangeInterval": "2.0",
        "localDataCenterName": "dcA",
        "\tconsecutiveHeartbeatMissesAllowed": "5",
    }


def _app_config(tmp: Path, props: dict[str, str]) -> None:
    tmp.mkdir(parents=True, exist_ok=True)
    doc = {"name": "CrossDCFailover", "description": "", "properties": props}
    (tmp / "CrossDCFailover.json").write_text(json.dumps(doc))


def test_precedence_file_then_app_config_then_composite_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paths, "appconfig_dir", lambda dc: tmp_path / dc / "appconfigs")
    _app_config(
        tmp_path / "dc1" / "appconfigs",
        {
            f"{MAIN}_heartbeatExchangeInterval": "3.0",
            f"{MAIN}_consecutiveHeartbeatMissesAllowed": "6",
            "orders::Other_crossDCInitDelay": "7.0",  # another application's key
            "crossDCHttpPort": "1",  # no prefix: not a key of this application
        },
    )
    cfg_file = tmp_path / "orders.cfg"
    cfg_file.write_text("heartbeatExchangeInterval=1.0\n")
    cfg = crossdc.Config.load("dc1", str(cfg_file), crossdc.read_app_config("dc1"), MAIN)
    assert cfg.hb_interval == 1.0 and cfg.sources["heartbeatExchangeInterval"] == "file"
    assert cfg.misses_allowed == 6 and cfg.sources["consecutiveHeartbeatMissesAllowed"] == "appconfig"
    assert cfg.init_delay == 40.0 and cfg.sources["crossDCInitDelay"] == "default"
    assert cfg.http_port == 25091 and cfg.remotes == ["localhost"] and cfg.storage_dir is None
    assert cfg.snapshot_interval == 888888888.0
    # a standalone application reads only its config file
    alone = crossdc.Config.load("dc1", str(cfg_file), {}, "orders::OrdersStandby")
    assert alone.misses_allowed == 4


def test_no_config_at_all_means_heartbeats_practically_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paths, "appconfig_dir", lambda dc: tmp_path / "none")
    cfg = crossdc.Config.load("dc2", str(tmp_path / "missing.cfg"), crossdc.read_app_config("dc2"), MAIN)
    assert cfg.hb_interval == 444444444.0 and cfg.local == "dc1" and cfg.mode == 1
    assert set(cfg.sources.values()) == {"default"}


def test_only_pairs_and_config_file_are_submission_parameters() -> None:
    assert set(crossdc.SUBMISSION_PARAMETERS) == {"numberOfHttpSenderReceiverPairs", "configFileName"}
    assert not set(crossdc.SUBMISSION_PARAMETERS) & set(crossdc.CONFIG_KEYS)


def test_lab_writes_whole_second_timings() -> None:
    for dc in paths.DCS:
        for mode in (0, 1):
            s = crossdc.lab_file_settings(dc, mode)
            assert s["crossDCOperationMode"] == str(mode) and s["localDataCenterName"] == dc
            for key in ("heartbeatExchangeInterval", "dataSnapshotExchangeInterval", "crossDCInitDelay"):
                assert float(s[key]).is_integer() and float(s[key]) >= 1, key
            assert crossdc.parse_config_text(crossdc.config_file_text(s, "t")) == s


@pytest.mark.parametrize(
    ("h", "d", "due"),
    [
        (30.0, 180.0, [6, 12, 18]),  # 30/180: every 6th count (with the drift, every 5 ticks after the first)
        (1.0, 2.0, [2, 4, 6, 8]),
        (1.9, 2.5, [2, 4, 6, 8]),  # truncated to 1 and 2
        (0.5, 2.0, list(range(1, 9))),  # H truncates to 0: every count
    ],
)
def test_snapshot_cadence_truncates_like_cpp(h: float, d: float, due: list[int]) -> None:
    top = max(due)
    assert [c for c in range(1, top + 1) if crossdc.snapshot_due(c, h, d)] == due


def test_sub_second_snapshot_interval_is_a_modulo_by_zero() -> None:
    with pytest.raises(ZeroDivisionError):
        crossdc.snapshot_due(1, 1.0, 0.6)
