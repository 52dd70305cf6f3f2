"""`lab up` / `lab reset` on a lab that is up but whose REST API does not answer (issue 10 §4): with fakes for
the lab's state, processes, namespaces and REST probe, so no root and no lab are needed."""

from __future__ import annotations

from typing import Any

import pytest

from lab import control, netns

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
    fake: dict[str, Any] = {"alive": {101, 102}, "answering": {"dc1", "dc2"}, "down": 0}

    def down(quiet: bool = False) -> int:
        fake["down"] += 1
        return 0

    def setup() -> None:
        raise Torn("rebuilding")

    monkeypatch.setattr(control, "check_root", lambda: None)
    monkeypatch.setattr(control, "load_state", lambda: STATE)
    monkeypatch.setattr(control, "recorded_pids", lambda state: set(fake["alive"]))
    monkeypatch.setattr(control, "rest_ready", lambda dc: dc in fake["answering"])
    monkeypatch.setattr(control, "anything_exists", lambda: True)
    monkeypatch.setattr(control, "down", down)
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


def test_up_with_other_defects_rebuilds(lab: dict[str, Any]) -> None:
    with pytest.raises(Torn):
        control.up(["split-brain"])
    assert lab["down"] == 1
