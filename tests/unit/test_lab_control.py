"""`lab up` / `lab reset` on a lab that is up but whose REST API does not answer (issue 10 §4): with fakes for
the lab's state, processes, namespaces and REST probe, so no root and no lab are needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lab import control, netns, prometheus

STATE: dict[str, Any] = {
    "up": True,
    "defects": [],
    "processes": {"dc1-instance": {"pid": 101}, "dc2-instance": {"pid": 102}},
}


class Torn(Exception):
    """Raised by the fake network setup: `up` got past the teardown into a rebuild."""


@pytest.fixture()
def lab(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A faked lab: every recorded process alive and REST answering unless a test changes ``lab``."""
    fake: dict[str, Any] = {"alive": {101, 102}, "answering": {"dc1", "dc2"}, "down": 0, "switched": []}

    def down(quiet: bool = False) -> int:
        fake["down"] += 1
        return 0

    def setup() -> None:
        raise Torn("rebuilding")

    def switch(state: dict[str, Any], defects: list[str], script: str, bastion_mode: bool) -> int:
        fake["switched"].append(defects)  # the real one restarts the instances of whatever lab runs here
        return 0

    monkeypatch.setattr(control, "check_root", lambda: None)
    monkeypatch.setattr(control, "load_state", lambda: STATE)
    monkeypatch.setattr(control, "recorded_pids", lambda state: set(fake["alive"]))
    monkeypatch.setattr(control, "rest_ready", lambda dc: dc in fake["answering"])
    monkeypatch.setattr(control, "anything_exists", lambda: True)
    monkeypatch.setattr(control, "down", down)
    monkeypatch.setattr(control, "switch_defects", switch)
    monkeypatch.setattr(netns, "ns_exists", lambda name: True)
    monkeypatch.setattr(netns, "setup", setup)
    return fake


def test_up_on_a_lab_up_and_answering_is_a_no_op(lab: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert control.up([]) == 0
    assert "already up and healthy" in capsys.readouterr().out
    assert lab["down"] == 0


def test_up_while_a_dc_is_cut_off_keeps_the_lab(lab: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """The cause of the 401: this used to tear the lab down as 'half-up' and make a new password."""
    lab["answering"] = {"dc2"}
    assert control.up([]) == 1
    err = capsys.readouterr().err
    assert "REST API of dc1 does not answer" in err and "not rebuilding" in err
    assert lab["down"] == 0


def test_reset_while_a_dc_is_cut_off_says_why(lab: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    lab["answering"] = {"dc2"}
    assert control.reset() == 1
    err = capsys.readouterr().err
    assert "REST API of dc1 does not answer" in err and "not up" not in err


def test_up_tears_down_a_lab_with_a_dead_process(lab: dict[str, Any]) -> None:
    lab["alive"] = {102}
    with pytest.raises(Torn):
        control.up([])
    assert lab["down"] == 1


def test_up_with_other_defects_switches_them_in_place(lab: dict[str, Any]) -> None:
    """Other defect switches restart only what reads them (control.switch_defects): no teardown, no rebuild."""
    assert control.up(["split-brain"]) == 0
    assert lab["switched"] == [["split-brain"]] and lab["down"] == 0


def test_up_with_other_defects_while_a_dc_is_cut_off_keeps_the_lab(
        lab: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    lab["answering"] = {"dc1"}
    assert control.up(["split-brain"]) == 1
    assert "REST API of dc2 does not answer" in capsys.readouterr().err
    assert lab["down"] == 0 and lab["switched"] == []


def test_up_with_another_scrape_interval_rebuilds(lab: dict[str, Any]) -> None:
    """A lab recorded without an interval ran the default; asking for 1 s rebuilds it (Prometheus' config)."""
    with pytest.raises(Torn):
        control.up([], scrape_interval=1.0)
    assert lab["down"] == 1


@pytest.mark.parametrize(
    ("text", "seconds", "shown"),
    [("10s", 10.0, "10s"), ("1s", 1.0, "1s"), ("500ms", 0.5, "500ms"), ("1m30s", 90.0, "1m30s"), ("15", 15.0, "15s")],
)
def test_scrape_interval_parses_and_prints_as_a_prometheus_duration(text: str, seconds: float, shown: str) -> None:
    assert prometheus.parse_interval(text) == seconds
    assert prometheus.duration(seconds) == shown


@pytest.mark.parametrize("text", ["", "10 s", "ten", "0s", "10m"])
def test_scrape_interval_refuses_what_prometheus_would_not_take_or_the_lab_cannot_use(text: str) -> None:
    with pytest.raises(ValueError, match="scrape interval"):
        prometheus.parse_interval(text)


def test_prometheus_config_scrapes_at_the_interval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prometheus, "base_dir", lambda: tmp_path)
    assert prometheus.configured_interval() is None
    text = prometheus.write_config(30.0).read_text()
    assert "  scrape_interval: 30s\n  scrape_timeout: 10s\n" in text
    assert prometheus.configured_interval() == 30.0
    prometheus.write_config(1.0)
    assert prometheus.configured_interval() == 1.0
    assert "scrape_timeout: 1s" in prometheus.config_file().read_text()


def test_bastion_configs_keep_the_dc_hosts_behind_the_bastion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    from lab import bastion, paths, sshd

    monkeypatch.setattr(paths, "LAB_DIR", tmp_path)
    (tmp_path / "ssh" / "bastion").mkdir(parents=True)
    (tmp_path / "ssh" / "dc1").mkdir(parents=True)
    jump = bastion.write_config().read_text()
    assert "AllowUsers xdcfault\n" in jump and "ForceCommand /bin/false\n" in jump
    assert "PermitOpen 198.18.1.10:22 198.18.2.10:22\n" in jump
    assert "AllowTcpForwarding local\n" in jump
    dc = sshd.write_config("dc1").read_text()
    assert "AllowUsers root xdcfault\n" in dc
    assert f"AuthorizedKeysFile {tmp_path}/ssh-authorized/authorized_keys.%u\n" in dc
    assert f"AuthorizedKeysFile {tmp_path}/ssh-authorized/authorized_keys.%u\n" in jump
    rule = " ".join(bastion._rule("dc1"))
    assert rule == ("INPUT -p tcp -d 198.18.1.10 --dport 22 ! -s 198.18.3.10 -m comment --comment xdc-lab-bastion "
                    "-j REJECT --reject-with tcp-reset")
    assert bastion.SUDOERS_TEXT.endswith("xdcfault ALL=(root) NOPASSWD: /usr/bin/timeout\n")
    assert bastion.NETNS in netns.NAMESPACES


def test_a_prometheus_left_listening_is_found_before_the_lab_starts_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its samples would pass the readiness check while the lab's own Prometheus exited at once."""
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        monkeypatch.setattr(prometheus, "LISTEN", f"127.0.0.1:{held.getsockname()[1]}")
        assert not prometheus.listen_address_free()
    assert prometheus.listen_address_free()  # closed: free again
