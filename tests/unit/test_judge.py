"""The judge on synthetic histories: windows cover the fault and its recovery, verdicts do not depend on where a
``Then`` stands, step parameters are honoured, and a window that was not recorded is not judged."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from support.data.ledger import IdTable, ReceivedRow, SentRow, Table
from support.judge import History, JudgeSettings, judge_claim
from support.judge.record import judge_scenario
from support.orchestration import JournalEvent

SETTINGS = JudgeSettings(throughput_window=1.0, throughput_fraction=0.9, split_brain_gap=2.0, clock_tolerance=0.5,
                         settle_period=4.0, drain_quiet=2.0, drain_timeout=20.0, scenario_timeout=300.0,
                         objectives={"orders": {"rto": 60.0, "max_lost": 0}})
RATE = 50  # tuples per second


class Run:
    """A scenario history built by hand: events at times, tuples sent and received."""

    def __init__(self) -> None:
        self.events: list[JournalEvent] = []
        self.sent: list[SentRow] = []
        self.received: list[ReceivedRow] = []
        self.event("scenario.started", 0.0, feature="f", tags=[])
        self.event("layout", 0.0, mode="active/passive", active="dc1", standby="dc2")
        self.event("traffic.started", 0.0, rate=RATE)
        self.event("steady", 5.0, start=0.0, seconds=5.0)

    def event(self, name: str, t: float, /, **fields: Any) -> JournalEvent:
        event = JournalEvent(name, t, t, "s", fields, "01-s")
        self.events.append(event)
        return event

    def traffic(self, start: float, end: float, dc: str, delay: float = 0.2, outcome: str = "ok",
                out_dc: str | None = None, lose: bool = False, ack: float = 0.01) -> None:
        """Tuples sent to ``dc`` from ``start`` to ``end``, answered after ``ack``; each comes out of ``out_dc``
        after ``delay``."""
        for t in np.arange(start, end, 1.0 / RATE):
            n = len(self.sent)
            key = f"k{n % 5}"
            self.sent.append(SentRow(f"id{n}", key, n, dc, float(t), float(t) + ack, outcome))
            if outcome == "ok" and not lose:
                out = float(t) + delay
                self.received.append(ReceivedRow(f"id{n}", key, n, out_dc or dc, out, out, 1, 1.0, True))

    def history(self, now: float) -> History:
        sent = [r for r in self.sent if r.t_ack <= now]  # a sent row is recorded once its send is answered
        received = sorted((r for r in self.received if r.t_recv <= now), key=lambda r: r.t_recv)
        events = tuple(e for e in self.events if e.t <= now)
        ids = IdTable()  # shared, as the scenario's two ledgers share ids.txt
        return History("01-s", "s", events, Table.from_rows(sent, SentRow, ids),
                       Table.from_rows(received, ReceivedRow, ids), SETTINGS, None, now)


def failover_run(lost_at_fault: int = 0) -> Run:
    """dc1 cut off at 10 s; dc2 detects at 11.5 s, takes over at 12 s and emits from 12.5 s."""
    run = Run()
    run.traffic(0, 10, "dc1")
    for i in range(lost_at_fault):  # acknowledged by dc1 just before the cut, never emitted
        run.sent.append(SentRow(f"lost{i}", "k0", 0, "dc1", 9.95, 9.96, "ok"))
    run.event("fault.injected", 10.0, kind="isolate", id="f1", dc="dc1", duration=None)
    run.event("fault.effective", 10.0, kind="isolate", id="f1", dc="dc1")
    run.traffic(10, 12.3, "dc1", outcome="fail")
    run.event("toolkit.remote_down", 11.5, dc="dc2", source="trace")
    run.event("toolkit.takeover", 12.0, dc="dc2", source="jobs")
    run.traffic(12.3, 40, "dc2")
    return run


def claim(run: Run, t: float, check: str, **params: Any) -> JournalEvent:
    return run.event("claim", t, cid=f"c{len(run.events)}", check=check, params=params, step=check)


def test_a_data_check_waits_for_the_recovery_then_judges_a_window_covering_it() -> None:
    run = failover_run(lost_at_fault=3)
    made = claim(run, 10.1, "lost", limit=0)
    early = judge_claim(run.history(11.0), made)
    assert not early.final and "takeover" in early.verdict.evidence["window"]["waiting"]
    assert early.deadline == pytest.approx(300.0)
    missing = judge_claim(run.history(17.0), made)  # first output 12.5 s + 4 s settle = 16.5 s
    assert not missing.final and "3 acknowledged tuples" in missing.verdict.summary
    settled = judge_claim(run.history(18.8), made)  # no tuple of the window came out for 2 s (drain_quiet)
    assert settled.final and not settled.verdict.passed
    assert settled.verdict.evidence["window"]["end"] == pytest.approx(16.5, abs=0.05)
    assert "3 of" in settled.verdict.summary and "after the fault" in settled.verdict.summary


def test_a_data_check_gives_the_same_verdict_wherever_it_stands() -> None:
    before = failover_run(lost_at_fault=3)
    first = claim(before, 10.1, "lost", limit=2)
    after = failover_run(lost_at_fault=3)
    late = claim(after, 30.0, "lost", limit=2)
    one, two = judge_claim(before.history(40), first), judge_claim(after.history(40), late)
    assert one.final and two.final
    assert one.verdict.passed == two.verdict.passed is False
    assert one.verdict.evidence["window"] == two.verdict.evidence["window"]


def test_the_window_of_a_fault_with_a_duration_lasts_until_it_is_over() -> None:
    run = failover_run()
    run.events = [e for e in run.events if e.event != "fault.injected"]
    run.event("fault.injected", 10.0, kind="pe-hang", id="f1", dc="dc1", duration=15.0)
    made = claim(run, 12.6, "lost", limit=0)
    waiting = judge_claim(run.history(20.0), made)
    assert not waiting.final and "to end" in waiting.verdict.evidence["window"]["waiting"]
    run.event("fault.healed", 25.2, kind="pe-hang", id="f1")
    done = judge_claim(run.history(31.0), made)
    assert done.final and done.verdict.passed
    assert done.verdict.evidence["window"]["end"] == pytest.approx(29.2)


def test_a_fault_that_never_lowers_throughput_is_judged_after_the_settling_period() -> None:
    run = Run()
    run.traffic(0, 30, "dc1", delay=0.4)
    run.event("fault.injected", 10.0, kind="latency", id="f1", between=["dc1", "dc2"], duration=None)
    run.event("fault.effective", 10.0, kind="latency", id="f1")
    made = claim(run, 10.1, "lost", limit=0)
    verdict = judge_claim(run.history(15.0), made)
    assert verdict.final and verdict.verdict.passed
    back = judge_claim(run.history(15.0), claim(run, 10.2, "throughput", fraction=0.9, within=5.0))
    assert back.final and back.verdict.passed and "0.00 s after" in back.verdict.summary


def test_outputs_read_before_their_send_was_answered_are_not_judged_as_never_sent() -> None:
    """The sent ledger records a tuple when its send is answered; its output can be read first. Judged live at
    any instant, such outputs are neither 'never sent' nor out of order: they belong to a later window."""
    run = Run()
    run.traffic(0, 30, "dc1", delay=0.2, ack=0.5)
    run.event("fault.injected", 10.0, kind="latency", id="f1", between=["dc1", "dc2"], duration=None)
    run.event("fault.effective", 10.0, kind="latency", id="f1")
    integrity, order = claim(run, 10.1, "integrity"), claim(run, 10.1, "order")
    for now in np.arange(14.5, 16.0, 0.13):
        history = run.history(float(now))
        assert not np.isin(history.received["id"], history.sent["id"]).all()  # outputs of unanswered sends
        for made in (integrity, order):
            judged = judge_claim(history, made)
            assert judged.final and judged.verdict.passed, (now, judged.verdict.summary)
        assert judge_claim(history, integrity).verdict.evidence["unexpected"] == 0


def test_throughput_honours_the_fraction_the_step_states() -> None:
    run = Run()
    run.traffic(0, 10, "dc1")
    run.event("fault.injected", 10.0, kind="cpu", id="f1", dc="dc1", duration=None)
    run.event("fault.effective", 10.0, kind="cpu", id="f1", dc="dc1")
    for t in np.arange(10, 30, 1.0 / 30):  # the output rate drops to 30 of 50 per second and stays there
        n = len(run.sent)
        run.sent.append(SentRow(f"id{n}", "k", n, "dc1", float(t), float(t), "ok"))
        run.received.append(ReceivedRow(f"id{n}", "k", n, "dc1", float(t) + 0.2, float(t) + 0.2, 1, 1.0, True))
    half = judge_claim(run.history(30), claim(run, 10.5, "throughput", fraction=0.5, within=5.0))
    most = judge_claim(run.history(30), claim(run, 10.5, "throughput", fraction=0.9, within=5.0))
    assert half.verdict.passed and "50%" in half.verdict.summary
    assert most.final and not most.verdict.passed and "90%" in most.verdict.summary


def test_a_window_that_is_never_recorded_is_not_judged_never_passed() -> None:
    run = Run()
    run.traffic(0, 10, "dc1")
    run.event("fault.injected", 10.0, kind="isolate", id="f1", dc="dc1", duration=None)
    run.event("fault.effective", 10.0, kind="isolate", id="f1", dc="dc1")
    made = claim(run, 10.1, "lost", limit=0)
    judged = judge_claim(run.history(301.0), made)
    assert judged.final and judged.verdict.status == "not judged"
    assert judged.verdict.summary.startswith("Not judged: waiting for")


def test_recovery_checks_wait_for_their_phase_or_their_limit() -> None:
    run = failover_run()
    made = claim(run, 10.1, "takeover", dc="dc2", within=45.0)
    assert not judge_claim(run.history(11.0), made).final
    seen = judge_claim(run.history(13.0), made)
    assert seen.final and seen.verdict.passed and "2.00 s" in seen.verdict.summary
    slow = claim(run, 10.1, "takeover", dc="dc2", within=1.0)
    assert not judge_claim(run.history(11.5), slow).final
    late = judge_claim(run.history(13.0), slow)
    assert late.final and not late.verdict.passed


def test_watches_last_their_duration_unless_they_see_what_they_watch_for() -> None:
    run = failover_run()
    made = claim(run, 10.1, "no_failover", duration=30.0)
    seen = judge_claim(run.history(11.6), made)
    assert seen.final and not seen.verdict.passed
    quiet = Run()
    quiet.traffic(0, 50, "dc1")
    quiet.event("fault.effective", 10.0, kind="pe-kill", id="f1", dc="dc1")
    watch = claim(quiet, 10.1, "no_failover", duration=30.0)
    assert not judge_claim(quiet.history(30.0), watch).final
    assert judge_claim(quiet.history(40.0), watch).verdict.passed


def test_the_record_reproduces_a_verdict_from_its_snapshot() -> None:
    run = failover_run(lost_at_fault=1)
    made = claim(run, 10.1, "lost", limit=0)
    live = judge_claim(run.history(19.0), made)
    snapshot = run.history(19.0).snapshot()
    run.event("verdict", 19.0, cid=made.fields["cid"], name="lost", status=live.verdict.status,
              passed=live.verdict.passed, summary=live.verdict.summary, snapshot=snapshot.to_json())
    run.event("scenario.finished", 41.0, status="failed", error=None, cleanup_errors=[])
    record = judge_scenario(run.history(45.0))
    assert record["verdicts"][0]["summary"] == live.verdict.summary
    assert record["status"] == "failed" and record["error"] == live.verdict.summary
    assert record["rto_s"] == pytest.approx(2.5) and record["lost"] == 1


def test_a_claim_the_run_never_judged_is_judged_from_what_was_recorded() -> None:
    run = failover_run()
    claim(run, 10.1, "lost", limit=0)
    claim(run, 10.2, "lost", limit=0)
    crashed = judge_scenario(run.history(11.0))  # killed 0.9 s after the fault: no recovery recorded
    assert crashed["status"] == "not judged"
    assert all(v["status"] == "not judged" for v in crashed["verdicts"])
    assert "the run ended before" in crashed["verdicts"][0]["summary"]


def test_objectives_combine_every_check_and_wait_for_each() -> None:
    run = failover_run(lost_at_fault=1)
    made = claim(run, 10.1, "objectives", app="orders")  # rto 60 s, max_lost 0
    assert not judge_claim(run.history(13.0), made).final  # the loss window is not recorded yet
    judged = judge_claim(run.history(19.0), made)
    assert judged.final and not judged.verdict.passed and "misses the orders objectives" in judged.verdict.summary
    assert [c["name"] for c in judged.verdict.evidence["checks"]] == ["recovery_time", "lost"]
    unknown = judge_claim(run.history(19.0), claim(run, 10.1, "objectives", app="telemetry"))
    assert unknown.final and "No objectives configured" in unknown.verdict.summary


def test_objectives_judge_rpo_with_the_state_loss_window() -> None:
    run = Run()
    for i in range(1, 80):  # one key; dc1 serves 1..49, dc2 takes over at 5 s having restored update 30
        dc = "dc1" if i < 50 else "dc2"
        run.sent.append(SentRow(f"i{i}", "k", i, dc, i * 0.1, i * 0.1, "ok", "", 1.0))
        count = i if i < 50 else i - 19
        run.received.append(ReceivedRow(f"i{i}", "k", i, dc, i * 0.1 + 0.05, i * 0.1, count, float(count), True, 1.0))
    run.event("fault.effective", 5.0, kind="job-cancel", id="f1", dc="dc1")
    run.event("toolkit.takeover", 5.0, dc="dc2")
    run.event("claim", 5.1, cid="c1", check="state_loss", params={"limit": 2.0}, step="s")
    history = run.history(30.0)
    within = judge_claim(history, history.events[-1])
    assert within.final and within.verdict.passed and "19 state updates" in within.verdict.summary
    run.event("claim", 5.1, cid="c2", check="state_loss", params={"limit": 1.0}, step="s")
    history = run.history(30.0)
    assert not judge_claim(history, history.events[-1]).verdict.passed


def test_both_run_is_seen_from_where_else_the_application_ran_at_the_takeover() -> None:
    fenced, unfenced = failover_run(), failover_run()
    for run, also in ((unfenced, {"dc1": 11.95}), (fenced, {})):
        took = next(e for e in run.events if e.event == "toolkit.takeover")
        took.fields["also_running"] = also
    made = claim(unfenced, 10.1, "both_run")
    pending = judge_claim(unfenced.history(11.0), made)
    assert not pending.final and "did not take over" in pending.verdict.summary
    both = judge_claim(unfenced.history(13.0), made)
    assert both.final and both.verdict.passed
    assert "dc1 still ran the application when dc2 took over (2.00 s after the fault)" in both.verdict.summary
    unfenced.event("toolkit.job_gone", 20.0, dc="dc1", job="orders", job_id="3")
    ended = judge_claim(unfenced.history(30.0), claim(unfenced, 25.0, "both_run"))
    assert ended.verdict.passed and "until its job ended 8.00 s later" in ended.verdict.summary
    one = judge_claim(fenced.history(13.0), claim(fenced, 10.1, "both_run"))
    assert one.final and not one.verdict.passed and "dc1 no longer ran the application" in one.verdict.summary


def test_both_emit_states_a_split_brain_with_its_window_and_fails_without_one() -> None:
    split = failover_run()
    split.traffic(12.3, 20, "dc1")  # the old active keeps emitting beside dc2: no fencing
    made = claim(split, 10.1, "both_emit")
    verdict = judge_claim(split.history(40), made).verdict
    assert verdict.passed and "dc1 and dc2 both emitted output for 5 keys" in verdict.summary
    assert "after the fault (" in verdict.summary and "UTC" in verdict.summary
    clean = failover_run()
    assert not judge_claim(clean.history(40), claim(clean, 10.1, "both_emit")).verdict.passed
    single = judge_claim(split.history(40), claim(split, 10.1, "single_emitter")).verdict
    assert not single.passed and "from 2.50 s to 6.70 s after the fault" in single.summary  # the window
