"""Every checker passes on the clean stand-in and fails on a stand-in started with the matching defect switch, for
`orders` and for `telemetry` (other field names, no checksum, a count and a maximum as its state).

The scenarios are in features/measurement_checks.feature (@state: a failover with every post-failover check;
@steady: no fault, the delivery checks; @hang: a PE hang longer than detection, then the split-brain check; the
same for telemetry as @telemetry-state, @telemetry-steady and @telemetry-hang, and @telemetry-integrity alone).
Behave stops a scenario at its first failing step, so each defect is expected to fail exactly one named verdict,
and the verdicts before it must have passed.

The steps that state an expected finding are held to the same runs: judged again from disk with their claim made
where the inverted check's was (the same window, no lab time), each finds what its defect breaks and fails on the
clean lab, naming what it measured; on the early-input lab the restored-state finding also runs live
(tests/integration/features/expected_findings.feature) and judges again from disk to the same verdict.

The lab is switched from one defect to the next with `lab up --defect NAME` on the up lab, which restarts only the
instance services and the passive stub (the parts that read the switches) and deploys afresh, and it is switched
back to clean once, when the module ends.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labwire import run_lab

from support.judge.rejudge import rejudge
from support.measure import NO_CHECKSUM

ROOT = Path(__file__).resolve().parents[2]
CHECKS = "tests/integration/features/measurement_checks.feature"
EXPECTED = "tests/integration/features/expected_findings.feature"
TAKEOVER = "tests/integration/features/short_takeover.feature"

pytestmark = pytest.mark.lab


def run(feature: str, reports: Path, *tags: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    cmd = [sys.executable, "-m", "support.cli", "run", "--set", f"run.reports_dir={reports}", feature]
    for tag in tags:
        cmd += ["--tags", tag]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    summary = json.loads((reports / "latest" / "summary.json").read_text())
    return done, summary


def verdicts(scenario: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in scenario["verdicts"]}


class DefectSwitch:
    """The defect switch the lab was last started with (None: clean)."""

    def __init__(self) -> None:
        self.on: str | None = None

    def use(self, defect: str) -> None:
        if self.on == defect:
            return
        self.on = defect  # from here on the lab is not clean, whatever happens
        up = run_lab("up", "--defect", defect)
        assert up.returncode == 0, up.stderr
        assert "instances restarted" in up.stdout, up.stdout  # switched in place, not rebuilt


@pytest.fixture(scope="module")
def switch(lab: Any) -> Iterator[DefectSwitch]:
    state = DefectSwitch()
    try:
        yield state
    finally:
        if state.on is not None:
            restored = run_lab("up")
            if restored.returncode != 0:  # a switch that failed half way: rebuild the lab from scratch
                run_lab("down")
                restored = run_lab("up")
                lab.refresh()  # the session's shared client: new password and CA after down/up
            assert restored.returncode == 0, restored.stderr


@pytest.fixture()
def defective_lab(switch: DefectSwitch, request: pytest.FixtureRequest) -> str:
    switch.use(request.param)
    return str(request.param)


def by_tag(summary: dict[str, Any], *tags: str) -> list[dict[str, Any]]:
    """The scenarios of the summary, one per tag (each tag names exactly one scenario)."""
    found = []
    for tag in tags:
        matching = [s for s in summary["scenarios"] if tag in s["tags"]]
        assert len(matching) == 1, f"{tag}: {[s['name'] for s in matching]}"
        found.append(matching[0])
    return found


def journal_events(run_dir: Path, scenario: dict[str, Any], event: str) -> list[dict[str, Any]]:
    lines = (run_dir / "journal.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == event and e["scenario"] == scenario["name"]]


# the expected-finding claims and the check each inverts: (scenario tag, inverted check, claim, its parameters)
FINDINGS = {
    "expected_state_loss": ("state", "state_loss", {"limit": 5.0}),
    "expected_inconsistent_state": ("state", "consistent_state", {"new": "dc2", "old": "dc1"}),
    "expected_lost": ("steady", "lost", {"limit": 0}),
}
# defect -> the expected finding that must find what it breaks
FOUND_BY = {"lose-snapshot": "expected_state_loss", "early-input": "expected_inconsistent_state",
            "drop-sink": "expected_lost"}


def restate(run_dir: Path, summary: dict[str, Any], claims: list[str]) -> dict[str, dict[str, Any]]:
    """The verdicts of expected-finding ``claims``, each claimed where its inverted check was in the recorded run
    (same scenario, same instant: the same window), judged again from disk."""
    journal = run_dir / "journal.jsonl"
    lines = journal.read_text().splitlines()
    events = [json.loads(line) for line in lines]
    for i, name in enumerate(claims):
        tag, inverted, params = FINDINGS[name]
        scenario = by_tag(summary, tag)[0]["name"]
        made = next(e for e in events if e["event"] == "claim" and e["check"] == inverted and e["scenario"] == scenario)
        lines.append(json.dumps({**made, "cid": f"expected{i}", "check": name, "params": params,
                                 "step": f"Then ({name})"}))
    journal.write_text("\n".join(lines) + "\n")
    judged = rejudge(run_dir)
    return {v["name"]: v for s in judged["scenarios"] for v in s["verdicts"] if v["name"] in claims}


def test_every_checker_passes_on_the_clean_lab(lab: Any, tmp_path: Path) -> None:
    done, summary = run(CHECKS, tmp_path, "@clean or @telemetry-integrity")
    assert len(summary["scenarios"]) == 7, [s["name"] for s in summary["scenarios"]]
    state, steady, hang, t_state, t_steady, t_hang, t_integrity = by_tag(
        summary, "state", "steady", "hang", "telemetry-state", "telemetry-steady", "telemetry-hang",
        "telemetry-integrity")
    # every scenario passed but telemetry's integrity check, which cannot see corruption without a checksum
    totals = {"scenarios": 7, "passed": 6, "failed": 0, "skipped": 0, "not_judged": 1, "interrupted": 0}
    assert done.returncode == 1 and summary["totals"] == totals, done.stdout[-4000:] + done.stderr[-3000:]
    integrity = verdicts(t_integrity)["integrity"]
    assert integrity["status"] == "not judged" and NO_CHECKSUM in integrity["summary"], integrity
    assert integrity["evidence"]["corrupted"] is None and integrity["evidence"]["phantom"] == 0
    after_failover = {"takeover", "throughput_recovered", "duplicated", "order", "consistent_state",
                      "state_loss_window", "single_emitter"}
    assert set(verdicts(state)) >= after_failover | {"objectives"}
    assert set(verdicts(t_state)) >= after_failover
    delivery = {"no_failover", "lost", "duplicated", "order", "unknown"}
    assert delivery | {"integrity"} <= set(verdicts(steady)) and delivery <= set(verdicts(t_steady))
    for scenario in (steady, t_steady):
        assert scenario["delivery"]["unknown"] == 0 and scenario["delivery"]["phantom"] == 0
    for scenario in (hang, t_hang):
        assert {"takeover", "single_emitter"} <= set(verdicts(scenario))
        # the split-brain check judged the output after dc1's PE had resumed, not just up to the takeover
        healed = journal_events(tmp_path / "latest", scenario, "fault.healed")
        judged = [e for e in journal_events(tmp_path / "latest", scenario, "verdict") if e["name"] == "single_emitter"]
        assert healed and judged and judged[0]["t"] > healed[0]["t"], (healed, judged)
        assert scenario["split_brain"]["keys"] == 0
    for scenario in (state, t_state):
        assert scenario["state"]["keys_judged"] > 0 and scenario["state"]["inconsistent"] == 0
        assert scenario["rpo"]["state_loss_window_s"] <= 5
        assert scenario["recovery"]["phases_s"]["throughput_recovered"] is not None
        assert scenario["order"]["reordered"] == 0
    # where nothing is lost, every expected finding fails, naming what it measured
    restated = restate(tmp_path / "latest", summary, list(FINDINGS))
    assert {v["status"] for v in restated.values()} == {"failed"}, restated
    for verdict in restated.values():
        assert verdict["summary"].startswith("Expected finding not found: "), verdict["summary"]
        assert not verdict["evidence"]["expected_finding"]["found"]


# defect -> {scenario tag: the verdict that must fail}; no-takeover last, so that the takeover-limit test after
# the parametrized one finds the lab already switched
DEFECTS: dict[str, dict[str, str]] = {
    "slow-detection": {"state": "takeover", "telemetry-state": "takeover"},
    "duplicate-replay": {"state": "duplicated", "telemetry-state": "duplicated"},
    "lose-snapshot": {"state": "state_loss_window", "telemetry-state": "state_loss_window"},
    "early-input": {"state": "consistent_state", "telemetry-state": "consistent_state"},
    "reorder": {"steady": "order", "telemetry-steady": "order"},
    "drop-sink": {"steady": "lost", "telemetry-steady": "lost"},
    # telemetry passes no checksum: its altered alerts are not seen, and the check says why (not judged)
    "corrupt-output": {"steady": "integrity", "telemetry-integrity": "integrity"},
    "refuse-but-deliver": {"steady": "integrity", "telemetry-integrity": "integrity"},
    "lost-ack": {"steady": "unknown", "telemetry-steady": "unknown"},
    "split-brain": {"hang": "single_emitter", "telemetry-hang": "single_emitter"},
    # a tuple that is not one is counted unparsed, not lost: "no acknowledged tuple is lost" passes first
    "malformed-output": {"steady": "integrity", "telemetry-integrity": "integrity"},
    "no-takeover": {"state": "takeover", "telemetry-state": "takeover"},
}
# integrity covers several kinds of bad output: the evidence count each of these defects must show
INTEGRITY_EVIDENCE = {"corrupt-output": "corrupted", "refuse-but-deliver": "phantom", "malformed-output": "unparsed"}


@pytest.mark.parametrize("defective_lab", list(DEFECTS), indirect=True)
def test_the_matching_checker_fails_on_a_defective_lab(defective_lab: str, tmp_path: Path) -> None:
    expected_by_tag = DEFECTS[defective_lab]
    done, summary = run(CHECKS, tmp_path, " or ".join(f"@{tag}" for tag in expected_by_tag))
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    scenarios = by_tag(summary, *expected_by_tag)
    assert len(summary["scenarios"]) == len(scenarios)
    for (tag, expected), scenario in zip(expected_by_tag.items(), scenarios, strict=True):
        found = verdicts(scenario)
        assert expected in found, f"{expected} was never checked: {list(found)}; error {scenario['error']}"
        failed = [name for name, v in found.items() if v["status"] != "passed"]
        assert failed == [expected], f"{scenario['name']}: other checkers failed too: {failed}"
        assert scenario["error"] == found[expected]["summary"]
        verdict = found[expected]
        if defective_lab == "corrupt-output" and tag.startswith("telemetry"):
            assert verdict["status"] == "not judged" and NO_CHECKSUM in verdict["summary"], verdict
            assert verdict["evidence"]["corrupted"] is None
            continue
        assert verdict["status"] == "failed", verdict["summary"]
        evidence = verdict["evidence"]
        if defective_lab in INTEGRITY_EVIDENCE:
            shown = INTEGRITY_EVIDENCE[defective_lab]
            others = {"corrupted", "phantom", "unexpected", "unparsed"} - {shown}
            assert evidence[shown] > 0 and all(evidence[o] in (0, None) for o in others), evidence
        if defective_lab == "lost-ack":
            assert evidence["unknown"] > 0 and evidence["unknown_delivered"] == evidence["unknown"], evidence
    if defective_lab in FOUND_BY:  # the step that states this finding finds it, on the same evidence
        name = FOUND_BY[defective_lab]
        found = restate(tmp_path / "latest", summary, [name])[name]
        assert found["status"] == "passed" and found["summary"].startswith("Expected finding, found: "), found
    if defective_lab == "early-input":  # and live, judged again from disk alike
        done, live = run(EXPECTED, tmp_path / "expected")
        assert done.returncode == 0 and live["status"] == "passed", done.stdout[-3000:] + done.stderr[-3000:]
        verdict = verdicts(live["scenarios"][0])["expected_inconsistent_state"]
        assert verdict["evidence"]["inconsistent"] > 0 and verdict["evidence"]["inconsistent_samples"], verdict
        again = rejudge(tmp_path / "expected" / "latest")
        assert again["scenarios"][0]["verdicts"] == live["scenarios"][0]["verdicts"]


@pytest.mark.parametrize("defective_lab", ["no-takeover"], indirect=True)
def test_takeover_checker_names_the_limit(defective_lab: str, tmp_path: Path) -> None:
    done, summary = run(TAKEOVER, tmp_path)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    scenario = summary["scenarios"][0]
    assert summary["status"] == "failed" and scenario["status"] == "failed"
    takeover = verdicts(scenario)["takeover"]
    assert not takeover["passed"] and takeover["summary"] == "dc2 never took over (limit 6 s)."
    assert scenario["error"] == takeover["summary"]
    assert scenario["rto_s"] is None and scenario["phases_s"]["down_detected"] is not None
