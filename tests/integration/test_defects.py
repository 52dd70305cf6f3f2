"""Every checker passes on the clean stand-in and fails on a stand-in started with the matching defect switch.

The scenarios are in features/measurement_checks.feature (@state: a failover with every post-failover check;
@steady: no fault, the delivery checks; @hang: a PE hang longer than detection, then the split-brain check).
Behave stops a scenario at its first failing step, so each defect is expected to fail exactly one named verdict,
and the verdicts before it must have passed.
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

ROOT = Path(__file__).resolve().parents[2]
CHECKS = "tests/integration/features/measurement_checks.feature"
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


@pytest.fixture()
def defective_lab(lab: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    defect = request.param
    assert run_lab("down").returncode == 0
    up = run_lab("up", "--defect", defect)
    assert up.returncode == 0, up.stderr
    try:
        yield defect
    finally:
        run_lab("down")
        restored = run_lab("up")
        lab.refresh()  # the session's shared client: new password and CA after down/up
        assert restored.returncode == 0, restored.stderr


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


def test_every_checker_passes_on_the_clean_lab(lab: Any, tmp_path: Path) -> None:
    done, summary = run(CHECKS, tmp_path, "@clean")
    assert len(summary["scenarios"]) == 3, [s["name"] for s in summary["scenarios"]]
    state, steady, hang = by_tag(summary, "state", "steady", "hang")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    names = set(verdicts(state))
    assert names >= {"takeover", "throughput_recovered", "duplicated", "order", "consistent_state",
                     "state_loss_window", "single_emitter", "objectives"}
    assert {"no_failover", "lost", "duplicated", "order", "integrity", "unknown"} <= set(verdicts(steady))
    assert steady["delivery"]["unknown"] == 0 and steady["delivery"]["phantom"] == 0
    assert {"takeover", "single_emitter"} <= set(verdicts(hang))
    # the split-brain check judged the output after dc1's aggregator had resumed, not just up to the takeover
    healed = journal_events(tmp_path / "latest", hang, "fault.healed")
    judged = [e for e in journal_events(tmp_path / "latest", hang, "verdict") if e["name"] == "single_emitter"]
    assert healed and judged and judged[0]["t"] > healed[0]["t"], (healed, judged)
    assert state["state"]["keys_judged"] > 0 and state["state"]["inconsistent"] == 0
    assert state["rpo"]["state_loss_window_s"] <= 5
    assert state["recovery"]["phases_s"]["throughput_recovered"] is not None
    assert state["split_brain"]["keys"] == 0 and state["order"]["reordered"] == 0


# defect -> (scenario tag, the verdict that must fail)
DEFECTS = {
    "no-takeover": ("@state", "takeover"),
    "slow-detection": ("@state", "takeover"),
    "duplicate-replay": ("@state", "duplicated"),
    "lose-snapshot": ("@state", "state_loss_window"),
    "early-input": ("@state", "consistent_state"),
    "reorder": ("@steady", "order"),
    "drop-sink": ("@steady", "lost"),
    "corrupt-output": ("@steady", "integrity"),
    "refuse-but-deliver": ("@steady", "integrity"),
    "lost-ack": ("@steady", "unknown"),
    "split-brain": ("@hang", "single_emitter"),
    "malformed-output": ("@steady", "integrity"),  # counted unparsed, not lost: "no tuple is lost" passes first
}
# integrity covers several kinds of bad output: the evidence count each of these defects must show
INTEGRITY_EVIDENCE = {"corrupt-output": "corrupted", "refuse-but-deliver": "phantom", "malformed-output": "unparsed"}


@pytest.mark.parametrize("defective_lab", list(DEFECTS), indirect=True)
def test_the_matching_checker_fails_on_a_defective_lab(defective_lab: str, tmp_path: Path) -> None:
    tag, expected = DEFECTS[defective_lab]
    done, summary = run(CHECKS, tmp_path, tag)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    scenario = summary["scenarios"][0]
    found = verdicts(scenario)
    assert expected in found, f"{expected} was never checked: {list(found)}; error {scenario['error']}"
    assert not found[expected]["passed"], found[expected]["summary"]
    failed = [name for name, v in found.items() if not v["passed"]]
    assert failed == [expected], f"other checkers failed too: {failed}"
    assert scenario["error"] == found[expected]["summary"]
    evidence = found[expected]["evidence"]
    if defective_lab in INTEGRITY_EVIDENCE:
        shown = INTEGRITY_EVIDENCE[defective_lab]
        others = {"corrupted", "phantom", "unexpected", "unparsed"} - {shown}
        assert evidence[shown] > 0 and all(evidence[o] == 0 for o in others), evidence
    if defective_lab == "lost-ack":
        assert evidence["unknown"] > 0 and evidence["unknown_delivered"] == evidence["unknown"], evidence


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
