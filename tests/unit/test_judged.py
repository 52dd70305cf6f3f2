"""How the reports show a number (support/reporting/judged.py) and the console table (summary_table)."""

from __future__ import annotations

from typing import Any

from support.reporting.judged import clock, readable_times, recovery_reason, shown
from support.reporting.summary import summary_table

FAULT_AT = 1796564450.778876


def record(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "feature": "F", "name": "dc2 takes over", "status": "passed", "fault": "job-cancel", "standby": "dc2",
        "rto_s": 3.811, "phases_s": {"down_detected": 3.388, "takeover": 3.465, "first_output": 3.811},
        "lost": 0, "duplicated": 0, "unknown": 0,
        "delivery": {"sent": 100, "acknowledged": 90, "lost": 0, "loss_window_s": 0.0, "lost_first_sent": None},
        "recovery": {"fault_effective": FAULT_AT, "standby": "dc2", "old": "dc1"},
        "verdicts": [
            {"name": "recovery_time", "passed": True, "summary": "...", "evidence": {"limit_s": 60.0}},
            {"name": "lost", "passed": True, "summary": "...", "evidence": {"limit": 50}},
        ],
    }
    base.update(extra)
    return base


def orderly_shutdown() -> dict[str, Any]:
    """Takeover measured, no first output from the new side: no RTO."""
    return record(rto_s=None, phases_s={"down_detected": 3.0, "takeover": 3.4, "first_output": None},
                  verdicts=[{"name": "takeover", "passed": True, "summary": "...", "evidence": {"limit_s": 45.0}}])


def test_a_judged_number_has_its_limit_and_an_unjudged_one_says_not_checked() -> None:
    r = record()
    assert shown(r, "rto").text() == "3.81 s ≤ 60 s"
    assert shown(r, "rto").passed is True
    assert shown(r, "lost").text() == "0 ≤ 50"
    assert shown(r, "duplicated").text() == "0 (not checked)"
    assert shown(r, "unknown").passed is None
    objectives = {"name": "objectives", "passed": False, "summary": "...", "evidence": {"checks": [
        {"name": "duplicated", "passed": False, "summary": "...", "evidence": {"limit": 0}}]}}
    assert shown(record(verdicts=[objectives]), "duplicated").text() == "0 ≤ 0"  # judged as an objective
    assert shown(record(verdicts=[objectives]), "duplicated").passed is False


def test_a_missing_number_is_a_dash_with_the_reason_never_none_or_zero() -> None:
    assert shown(orderly_shutdown(), "rto").text() == "– (no output from dc2 after the takeover)"
    assert shown(record(), "loss_window").text() == "– (nothing lost)"  # 0.0 in the record
    assert shown(record(delivery={}, lost=None, verdicts=[]), "lost").text() == "– (no traffic)"
    assert shown(record(delivery={}, lost=None), "lost").text() == "– ≤ 50 (no traffic)"
    assert shown(record(fault=None, rto_s=None, verdicts=[]), "rto").text() == "– (no fault injected)"
    no_failover = record(rto_s=None, phases_s={}, verdicts=[{"name": "no_failover", "passed": True, "summary": ""}])
    assert shown(no_failover, "rto").text() == "– (no failover expected)"
    assert recovery_reason(record(recovery={"fault_effective": None}), "takeover") == "the fault never took effect"


def test_console_table_keeps_full_names_and_says_why_the_rto_is_empty() -> None:
    name = ("dc2 takes over with the device peaks when the telemetry job in dc1 is canceled while the operator "
            "watches the dashboard and nothing else moves")
    table = summary_table([record(name=name), orderly_shutdown()])
    words = " ".join(line[:56] for line in table.splitlines()[2:])
    assert " ".join(name.split()) in " ".join(words.split())  # every word of the name, none cut
    assert "3.81 s ≤ 60 s" in table
    lines = table.splitlines()
    start, end = lines[0].index("RTO"), lines[0].index("Lost")
    rto_column = " ".join(line[start:end].strip() for line in lines[2:])
    assert "– (no output from dc2 after the takeover)" in " ".join(rto_column.split())
    assert "None" not in table and "0.0 " not in table


def test_instants_are_times_of_day_not_epoch_floats() -> None:
    assert clock(FAULT_AT) == "13:40:50.778 UTC"
    assert clock(FAULT_AT, date=True) == "2026-12-06 13:40:50.778 UTC"
    assert clock(None) == "–"
    evidence = {"fault_effective": FAULT_AT, "rto_s": 3.811, "instants": {"takeover": FAULT_AT + 3.465},
                "lost_samples": [{"key": "D1", "from": FAULT_AT, "updates": 6}], "baseline_tps": 199.0}
    assert readable_times(evidence) == {
        "fault_effective": "13:40:50.778 UTC", "rto_s": 3.811, "instants": {"takeover": "13:40:54.243 UTC"},
        "lost_samples": [{"key": "D1", "from": "13:40:50.778 UTC", "updates": 6}], "baseline_tps": 199.0}
