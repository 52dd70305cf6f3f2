"""The judge on a run recorded in the lab (``tests/data/runs/job-cancel``: the @smoke scenario, orders canceled in
dc1, dc2 taking over, every check passed): judged again from disk, under changed settings, and cut short as if the
tester had been killed half way."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from support.data.ledger import _dtype
from support.judge.rejudge import RunNotFound, rejudge
from support.reporting.summary import validate_summary

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "runs" / "job-cancel"


@pytest.fixture
def run(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    shutil.copytree(FIXTURE, folder)
    return folder


def test_a_stored_run_is_judged_as_it_was_live(run: Path) -> None:
    summary = rejudge(run)
    validate_summary(summary)
    assert summary["status"] == "passed"
    scenario = summary["scenarios"][0]
    assert [(v["name"], v["status"]) for v in scenario["verdicts"]] == [
        ("takeover", "passed"), ("recovery_time", "passed"), ("lost", "passed"), ("duplicated", "passed")]
    # the numbers of the live run (its summary.json)
    assert scenario["rto_s"] == 2.087
    assert scenario["phases_s"] == {"down_detected": 1.757, "takeover": 1.784, "first_output": 2.087,
                                    "throughput_recovered": 2.087}
    assert scenario["delivery"]["acknowledged"] == 2930 and scenario["lost"] == 0
    assert scenario["delivery"]["received_by_dc"] == {"dc1": 2050, "dc2": 880}
    window = scenario["verdicts"][2]["evidence"]["window"]
    assert window["end"] - window["fault_effective"] == pytest.approx(2.087 + 4.0, abs=0.001)
    assert scenario["verdicts"][2]["evidence"]["step"] == "And at most 50 acknowledged tuples are lost"
    assert json.loads((run / "summary.json").read_text()) == summary
    assert (run / "report.html").exists()


def test_the_judgement_follows_changed_settings(run: Path) -> None:
    longer = rejudge(run, ["metrics.settle_period=9 seconds"])["scenarios"][0]
    lost = longer["verdicts"][2]
    assert lost["status"] == "not judged" and longer["status"] == "not judged"
    assert "it ends 11.1 s after the fault, the recording" in lost["summary"]
    shorter = rejudge(run, ["metrics.settle_period=1 second"])["scenarios"][0]
    window = shorter["verdicts"][2]["evidence"]["window"]
    assert shorter["status"] == "passed"
    assert window["end"] - window["fault_effective"] == pytest.approx(3.087, abs=0.001)


def _cut_ledger(folder: Path, column: str, before: float) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    times = np.fromfile(folder / f"{column}.bin", dtype=np.dtype(_dtype(meta["columns"][column])))
    rows = int(np.searchsorted(times, before)) if np.all(np.diff(times) >= 0) else int((times < before).sum())
    for name, kind in meta["columns"].items():
        path = folder / f"{name}.bin"
        path.write_bytes(path.read_bytes()[:rows * np.dtype(_dtype(kind)).itemsize])


def test_a_run_killed_half_way_gives_the_verdicts_it_can(run: Path) -> None:
    journal = (run / "journal.jsonl").read_text().splitlines(keepends=True)
    third_claim = [i for i, line in enumerate(journal) if '"event": "claim"' in line][2]
    (run / "journal.jsonl").write_text("".join(journal[:third_claim + 1]) + journal[third_claim + 1][:40])
    killed_at = json.loads(journal[third_claim])["t"] + 0.5
    ledgers = next((run / "ledgers").iterdir())
    _cut_ledger(ledgers / "sent", "t_send", killed_at)
    _cut_ledger(ledgers / "received", "t_recv", killed_at)
    scenario = rejudge(run)["scenarios"][0]
    statuses = [(v["name"], v["status"]) for v in scenario["verdicts"]]
    assert statuses == [("takeover", "passed"), ("recovery_time", "passed"), ("lost", "not judged")]
    assert scenario["status"] == "not judged"
    assert scenario["verdicts"][2]["summary"].startswith("Not judged: the run ended before this check's window")
    assert scenario["rto_s"] == 2.087  # what was recorded is still measured
    # tuples still in flight when the tester died are not counted as lost: only those sent a drain timeout before
    assert scenario["lost"] == 0 and scenario["delivery"]["acknowledged"] < 2930


def test_a_folder_that_is_not_a_run_is_refused_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(RunNotFound, match=r"config\.yaml: not found"):
        rejudge(tmp_path)
