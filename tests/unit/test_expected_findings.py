"""The steps that state an expected finding (``the state check finds lost updates of more than ...``, ``the
restored-state check finds that ... did not resume from a consistent copy ...``, ``the loss check finds more than
... acknowledged tuples lost``): each passes only when the named check finds the stated failure on the same
evidence, fails with what was measured when the check finds nothing, is not judged (never passed) when the check
cannot judge, gives the same verdict wherever it stands, and is judged again from disk alike. The reports show it
as an expected finding with the measurement.

The failing side runs on a run recorded in the clean lab (``tests/data/runs/job-cancel``: dc2 takes over with a
consistent copy of dc1's state and nothing lost), so the phrasings are shown failing where nothing is lost."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from support.data.ledger import IdTable, ReceivedRow, SentRow, Table
from support.judge import History, JudgeSettings, judge_claim
from support.judge.record import judge_scenario
from support.judge.rejudge import rejudge
from support.measure import FAILED, NOT_JUDGED, PASSED
from support.orchestration import JournalEvent
from support.reporting.allure import rewrite_results, rto_rpo_table, step_details, verdicts_text
from support.reporting.html import render
from support.reporting.judged import expectation, shown
from support.reporting.summary import summary_table, validate_summary

SETTINGS = JudgeSettings(throughput_window=1.0, throughput_fraction=0.9, split_brain_gap=2.0, clock_tolerance=0.5,
                         settle_period=4.0, drain_quiet=2.0, drain_timeout=20.0, scenario_timeout=300.0)
RATE = 50
KEYS = 5
FAULT, TAKEOVER, FIRST_OUT = 10.0, 12.0, 12.3
FIXTURE = Path(__file__).resolve().parents[1] / "data" / "runs" / "job-cancel"


class Failover:
    """dc1 serves five customers from 0 s, its job is canceled at 10 s, dc2 takes over at 12 s and serves them from
    12.3 s to 40 s, resuming each customer's count from ``restored(key, dc1's last count)``; ``lost`` acknowledged
    tuples sent to dc1 just before the fault never come out."""

    def __init__(self, restored: Any = lambda key, last: last, lost: int = 0) -> None:
        self.events: list[JournalEvent] = []
        self.sent: list[SentRow] = []
        self.received: list[ReceivedRow] = []
        self.event("scenario.started", 0.0, feature="f", tags=[])
        self.event("layout", 0.0, mode="active/passive", active="dc1", standby="dc2")
        self.event("traffic.started", 0.0, rate=RATE)
        self.event("steady", 5.0, start=0.0, seconds=5.0)
        counts: Counter[str] = Counter()
        self._serve(0.0, FAULT, "dc1", counts)
        for i in range(lost):
            self.sent.append(SentRow(f"lost{i}", "k0", 10_000 + i, "dc1", 9.95, 9.96, "ok", "", 1.0))
        self.event("fault.injected", FAULT, kind="job-cancel", id="f1", dc="dc1", duration=None)
        self.event("fault.effective", FAULT, kind="job-cancel", id="f1", dc="dc1")
        self.event("toolkit.remote_down", 11.5, dc="dc2", source="trace")
        self.event("toolkit.takeover", TAKEOVER, dc="dc2", source="jobs")
        for key in list(counts):
            counts[key] = restored(key, counts[key])
        self._serve(FIRST_OUT, 40.0, "dc2", counts)

    def _serve(self, start: float, end: float, dc: str, counts: Counter[str]) -> None:
        n = round((end - start) * RATE)
        for i in range(n):
            t = start + i / RATE
            seq = len(self.sent)
            key = f"k{seq % KEYS}"
            counts[key] += 1
            self.sent.append(SentRow(f"id{seq}", key, seq, dc, t, t + 0.01, "ok", "", 1.0))
            self.received.append(ReceivedRow(f"id{seq}", key, seq, dc, t + 0.2, t + 0.1, counts[key],
                                             float(counts[key]), True, 1.0))

    def event(self, name: str, t: float, /, **fields: Any) -> JournalEvent:
        event = JournalEvent(name, t, t, "s", fields, "01-s")
        self.events.append(event)
        return event

    def claim(self, t: float, check: str, **params: Any) -> JournalEvent:
        return self.event("claim", t, cid=f"c{len(self.events)}", check=check, params=params, step=check)

    def history(self, now: float) -> History:
        sent = [r for r in self.sent if r.t_ack <= now]
        received = sorted((r for r in self.received if r.t_recv <= now), key=lambda r: r.t_recv)
        ids = IdTable()
        return History("01-s", "s", tuple(e for e in self.events if e.t <= now), Table.from_rows(sent, SentRow, ids),
                       Table.from_rows(received, ReceivedRow, ids), SETTINGS, None, now)


def judged(run: Failover, check: str, at: float = 10.1, now: float = 40.0, **params: Any) -> Any:
    made = run.claim(at, check, **params)
    judgement = judge_claim(run.history(now), made)
    assert judgement.final, judgement
    return judgement.verdict


def restarts_empty(key: str, last: int) -> int:
    return 0  # the reference failover script: the new job starts without the stored state


def restores_a_state_never_had(key: str, last: int) -> int:
    return last + 500 if key == "k1" else last  # k1's restored count is one dc1 never reached


# ------------------------------------------------------------------------------------------- state loss


def test_the_state_check_finds_lost_updates_when_the_new_active_starts_empty() -> None:
    verdict = judged(Failover(restarts_empty), "expected_state_loss", limit=5.0)
    assert verdict.status == PASSED
    finding = verdict.evidence["expected_finding"]
    assert finding["found"] and finding["stated"] == "> 5 s" and finding["measured"].startswith("state loss window 9.")
    assert verdict.summary.startswith("Expected finding, found: dc2 lost 500 state updates made by dc1, spanning 9.")
    assert ": expected, found)" in verdict.summary
    assert verdict.evidence["underlying"]["status"] == FAILED  # "at most 5 seconds of state updates are lost" fails


def test_the_state_check_finding_fails_naming_the_window_when_the_loss_is_within_the_limit() -> None:
    verdict = judged(Failover(restarts_empty), "expected_state_loss", limit=30.0)
    assert verdict.status == FAILED
    assert verdict.summary.startswith("Expected finding not found: dc2 lost 500 state updates made by dc1, spanning 9.")
    assert "not > 30 s); the state loss check did not catch" in verdict.summary
    assert not verdict.evidence["expected_finding"]["found"]


def test_the_state_check_finding_fails_when_the_state_was_restored() -> None:
    verdict = judged(Failover(), "expected_state_loss", limit=5.0)
    assert verdict.status == FAILED and "state loss window 0.00 s, not > 5 s" in verdict.summary
    assert verdict.evidence["underlying"]["status"] == PASSED


def test_keys_whose_replicated_state_was_not_restored_count_as_lost_beyond_any_limit() -> None:
    run = Failover(restarts_empty)
    for t in (2.0, 4.0, 6.0, 8.0):  # the monitor saw dc2 store snapshots of dc1's state
        run.event("toolkit.snapshot_stored", t, dc="dc2", snapshots=int(t), source="operator metrics")
    verdict = judged(run, "expected_state_loss", limit=3600.0)
    assert verdict.status == PASSED, verdict.summary
    assert verdict.evidence["not_restored"] == KEYS  # every key had updates before the snapshot seen at 6 s
    assert "5 keys restarted empty although their state had been replicated" in verdict.summary
    assert "5 keys' replicated state not restored at all" in verdict.evidence["expected_finding"]["measured"]


def test_the_state_check_finding_is_not_judged_without_a_declared_state() -> None:
    run = Failover(restarts_empty)
    history = run.history(40.0)
    made = run.claim(10.1, "expected_state_loss", limit=5.0)
    from dataclasses import replace

    from support.data.contract import ORDERS
    stateless = replace(history, events=(*history.events, made), contract=replace(ORDERS, state=()))
    verdict = judge_claim(stateless, made).verdict
    assert verdict.status == NOT_JUDGED and "declares no state" in verdict.summary
    assert expectation(verdict.to_json()) == "expected state loss > 5 s: not judged"


def test_the_state_check_finding_fails_without_a_fault() -> None:
    run = Failover()
    run.events = [e for e in run.events if not e.event.startswith(("fault.", "toolkit."))]
    verdict = judged(run, "expected_state_loss", limit=5.0)
    assert verdict.status == FAILED and "No fault was injected" in verdict.summary


def test_the_state_check_finding_is_not_judged_when_the_new_active_emits_nothing() -> None:
    run = Failover(restarts_empty)
    run.received = [r for r in run.received if r.dc == "dc1"]
    run.events = [e for e in run.events if e.event != "toolkit.takeover"]
    made = run.claim(10.1, "expected_state_loss", limit=5.0)
    judgement = judge_claim(run.history(400.0), made)  # no takeover ever: the window is never recorded
    assert judgement.final and judgement.verdict.status == NOT_JUDGED


# ------------------------------------------------------------------------------------- consistent copy


def test_the_restored_state_check_finds_a_state_the_old_active_never_had() -> None:
    verdict = judged(Failover(restores_a_state_never_had), "expected_inconsistent_state", new="dc2", old="dc1")
    assert verdict.status == PASSED
    assert verdict.summary.startswith("Expected finding, found: dc2 resumed 1 of 5 keys from a state dc1 never had "
                                      "(e.g. k1: restored count")
    sample = verdict.evidence["inconsistent_samples"][0]
    assert sample["key"] == "k1" and sample["old_max_count"] == 100 and sample["restored_count_range"][0] > 100
    assert verdict.evidence["expected_finding"]["measured"] == "1 of 5 keys resumed from a state dc1 never had"


@pytest.mark.parametrize("restored", [lambda key, last: last, restarts_empty], ids=["restored", "started empty"])
def test_the_restored_state_finding_fails_when_the_copy_is_consistent(restored: Any) -> None:
    verdict = judged(Failover(restored), "expected_inconsistent_state", new="dc2", old="dc1")
    assert verdict.status == FAILED
    assert verdict.summary.startswith("Expected finding not found: dc2 resumed all 5 keys from a state dc1 really had")
    assert "0 of 5 keys resumed from a state dc1 never had, not > 0 keys" in verdict.summary


def test_the_restored_state_finding_is_not_judged_when_the_new_active_served_none_of_the_old_keys() -> None:
    run = Failover()
    run.received = [r for r in run.received if r.dc == "dc1" or r.t_recv < 13.0]
    verdict = judged(run, "expected_inconsistent_state", new="dc2", old="dc1", now=60.0)
    assert verdict.status in (NOT_JUDGED, FAILED) and not verdict.passed


# ------------------------------------------------------------------------------------------ lost tuples


def test_the_loss_check_finds_more_acknowledged_tuples_lost_than_stated() -> None:
    verdict = judged(Failover(lost=150), "expected_lost", limit=100.0)
    assert verdict.status == PASSED
    assert verdict.summary.startswith("Expected finding, found: 150 of ")
    assert "(150 of 856 acknowledged tuples lost > 100: expected, found)" in verdict.summary
    assert verdict.evidence["underlying"]["name"] == "lost" and verdict.evidence["lost"] == 150


@pytest.mark.parametrize("lost", [0, 100])
def test_the_loss_finding_fails_with_the_count_when_no_more_are_lost(lost: int) -> None:
    verdict = judged(Failover(lost=lost), "expected_lost", limit=100.0)
    assert verdict.status == FAILED
    assert f"({lost} of {706 + lost} acknowledged tuples lost, not > 100)" in verdict.summary


# ------------------------------------------------------------------------------------------- the window


@pytest.mark.parametrize("check,params", [("expected_state_loss", {"limit": 5.0}),
                                          ("expected_inconsistent_state", {"new": "dc2", "old": "dc1"}),
                                          ("expected_lost", {"limit": 100.0})])
def test_an_expected_finding_waits_for_its_window_and_gives_the_same_verdict_wherever_it_stands(
        check: str, params: dict[str, Any]) -> None:
    restored = restores_a_state_never_had if check == "expected_inconsistent_state" else restarts_empty
    first, last = Failover(restored, lost=150), Failover(restored, lost=150)
    early = first.claim(10.1, check, **params)
    late = last.claim(30.0, check, **params)  # after every other Then step
    waiting = judge_claim(first.history(11.0), early)
    assert not waiting.final and waiting.verdict.status == NOT_JUDGED  # never a pass before the window is in
    one, two = judge_claim(first.history(40.0), early), judge_claim(last.history(40.0), late)
    assert one.final and two.final and one.verdict.status == two.verdict.status == PASSED
    assert one.verdict.summary == two.verdict.summary and one.verdict.evidence == two.verdict.evidence


def test_the_record_shows_expected_findings_beside_the_checks_they_invert() -> None:
    run = Failover(restarts_empty, lost=150)
    run.claim(10.1, "expected_state_loss", limit=5.0)
    run.claim(10.1, "state_not_inherited", new="dc2", old="dc1")
    run.claim(10.1, "expected_lost", limit=100.0)
    run.event("scenario.finished", 40.0, status="passed")
    record = judge_scenario(run.history(40.0))
    assert record["status"] == PASSED, record["error"]
    assert [v["name"] for v in record["verdicts"]] == ["expected_state_loss", "state_not_inherited", "expected_lost"]
    assert record["lost"] == 150 and record["rpo"]["state_loss_window_s"] > 5


# ------------------------------------------------------------------------------ from disk, in the reports


def _append(journal: Path, claims: list[tuple[str, dict[str, Any], str]]) -> None:
    """Claims appended to a recorded scenario's journal as its live Then steps would have made them (no verdict
    event: judged on everything recorded)."""
    lines = journal.read_text().splitlines()
    events = [json.loads(line) for line in lines]
    fault = next(e for e in events if e["event"] == "fault.effective")
    last = next(e for e in reversed(events) if e["event"] == "claim")
    extra = [{**{k: last[k] for k in ("scenario", "sid")}, "event": "claim", "t": fault["t"] + 0.1 + i,
              "mono": last["mono"], "cid": f"x{i}", "check": check, "params": params, "step": step}
             for i, (check, params, step) in enumerate(claims)]
    journal.write_text("\n".join(lines + [json.dumps(e) for e in extra]) + "\n")


CLEAN_LAB_CLAIMS = [
    ("expected_state_loss", {"limit": 5.0}, "Then the state check finds lost updates of more than 5 seconds"),
    ("expected_inconsistent_state", {"new": "dc2", "old": "dc1"}, 'And the restored-state check finds that "dc2" '
     'did not resume from a consistent copy of the state of "dc1"'),
    ("expected_lost", {"limit": 10.0}, "And the loss check finds more than 10 acknowledged tuples lost"),
]


@pytest.fixture
def clean_run(tmp_path: Path) -> Path:
    folder = tmp_path / "run"
    shutil.copytree(FIXTURE, folder)
    _append(folder / "journal.jsonl", CLEAN_LAB_CLAIMS)
    return folder


def test_on_a_clean_lab_run_every_expected_finding_fails_naming_what_was_measured(clean_run: Path) -> None:
    summary = rejudge(clean_run)
    validate_summary(summary)
    scenario = summary["scenarios"][0]
    verdicts = {v["name"]: v for v in scenario["verdicts"]}
    assert scenario["status"] == "failed" and summary["status"] == "failed"
    for name in ("expected_state_loss", "expected_inconsistent_state", "expected_lost"):
        assert verdicts[name]["status"] == FAILED, verdicts[name]["summary"]
        assert verdicts[name]["summary"].startswith("Expected finding not found: ")
    assert "(state loss window 0.00 s, not > 5 s)" in verdicts["expected_state_loss"]["summary"]
    assert "resumed all 40 keys from a state dc1 really had" in verdicts["expected_inconsistent_state"]["summary"]
    assert "(0 of 2890 acknowledged tuples lost, not > 10)" in verdicts["expected_lost"]["summary"]
    assert verdicts["expected_lost"]["evidence"]["step"] == CLEAN_LAB_CLAIMS[2][2]
    # the checks the run made live keep their verdicts
    assert [verdicts[n]["status"] for n in ("takeover", "recovery_time", "lost", "duplicated")] == [PASSED] * 4


def test_judging_a_run_again_from_disk_gives_the_same_expected_findings(clean_run: Path) -> None:
    first = rejudge(clean_run)
    second = rejudge(clean_run)
    assert first["scenarios"][0]["verdicts"] == second["scenarios"][0]["verdicts"]
    assert json.loads((clean_run / "summary.json").read_text()) == second


def _finding_record() -> dict[str, Any]:
    run = Failover(restarts_empty, lost=150)
    run.claim(10.1, "expected_state_loss", limit=5.0)
    run.claim(10.1, "expected_lost", limit=1000.0)
    run.event("scenario.finished", 40.0, status="failed")
    return judge_scenario(run.history(40.0))


def test_the_reports_show_an_expected_finding_with_its_measurement() -> None:
    record = _finding_record()
    found, missed = record["verdicts"]
    assert expectation(found).startswith("state loss window 9.") and expectation(found).endswith(
        " > 5 s: expected, found")
    assert expectation(missed) == "150 of 856 acknowledged tuples lost, expected > 1000: not found"
    html = render({"scenarios": [record], "totals": {}, "status": "failed", "run_id": "r"})
    assert 'class="expected">expected finding: state loss window 9.' in html
    assert "expected finding: 150 of 856 acknowledged tuples lost, expected &gt; 1000: not found" in html
    text = verdicts_text(record["verdicts"])
    assert "PASS expected_state_loss [expected finding: state loss window 9." in text
    assert "FAIL expected_lost [expected finding: 150 of 856" in text
    assert step_details(found)["message"] == found["summary"]
    table = summary_table([record])
    assert "150 > 1000" in table  # the lost column shows what the scenario expected ("> 1000 expected", wrapped)
    assert "Expected findings:" in table and "  found: s: state loss window 9." in table
    assert "  NOT FOUND: s: 150 of 856 acknowledged tuples lost, expected > 1000: not found" in table
    assert shown(record, "lost").passed is False
    table_page = rto_rpo_table(record)
    assert "✘ Expected finding not found: 150 of 856" in table_page  # the lost row, judged by the finding
    assert "✔ Expected finding, found: dc2 lost 500 state updates" in table_page  # the state loss window row


def test_other_verdicts_read_as_before() -> None:
    plain = {"name": "lost", "passed": True, "summary": "No acknowledged tuple was lost.", "evidence": {"limit": 0}}
    assert expectation(plain) is None and step_details(plain) == {}
    assert "Expected findings" not in summary_table([{"name": "s", "status": "passed", "verdicts": [plain]}])


def test_allure_steps_of_expected_findings_carry_the_measurement(tmp_path: Path) -> None:
    record = _finding_record()
    steps = [{"name": "expected_state_loss", "status": "passed"}, {"name": "expected_lost", "status": "failed"}]
    (tmp_path / "t-result.json").write_text(json.dumps({"name": "s", "start": 1, "steps": steps}))
    assert rewrite_results(tmp_path, [(record, [])]) == 1
    test = json.loads((tmp_path / "t-result.json").read_text())
    found, missed = test["steps"]
    assert found["status"] == "passed" and found["statusDetails"]["message"].startswith(
        "Expected finding, found: dc2 lost 500 state updates")
    assert missed["status"] == "failed" and "not found" in missed["statusDetails"]["message"]
