"""The Allure attachments show instants as times of day and say why a number is missing (support/reporting)."""

from __future__ import annotations

import json
import re

from support.orchestration import Journal
from support.reporting.allure import journal_text, rto_rpo_rows, scenario_attachments

FAULT_AT = 1796564450.778876


def test_journal_and_evidence_attachments_show_times_not_epoch_floats() -> None:
    journal = Journal(None, "s")
    for name, t in (("fault.injected", FAULT_AT - 0.1), ("fault.effective", FAULT_AT)):
        event = journal.record(name, kind="job-cancel", id="f1", when=t)
        object.__setattr__(event, "t", t)
    text = journal_text(journal.events())
    assert text.splitlines()[0] == "journal of 2026-12-06 (times UTC)"
    assert text.splitlines()[2].startswith("13:40:50.778 fault.effective")
    assert "'when': '13:40:50.778 UTC'" in text
    record = {"name": "x", "fault": "job-cancel", "rto_s": 3.8, "phases_s": {"takeover": 3.4},
              "recovery": {"fault_effective": FAULT_AT, "instants": {"takeover": FAULT_AT + 3.4}},
              "verdicts": [{"name": "takeover", "passed": True, "summary": "ok",
                            "evidence": {"fault_effective": FAULT_AT, "limit_s": 45.0}}]}
    for name, body, _kind in scenario_attachments(record, journal.events()):
        if name in ("journal", "verdicts with evidence", "measurements", "residue audit"):
            assert not re.search(r"1796\d{6}", body), name
    verdicts = json.loads(dict((n, b) for n, b, _ in scenario_attachments(record, []))["verdicts with evidence"])
    assert verdicts[0]["evidence"] == {"fault_effective": "13:40:50.778 UTC", "limit_s": 45.0}


def test_rto_row_says_no_output_followed_the_takeover() -> None:
    record = {"fault": "orderly-shutdown", "standby": "dc2", "rto_s": None,
              "phases_s": {"down_detected": 3.0, "takeover": 3.4, "first_output": None},
              "recovery": {"fault_effective": FAULT_AT, "standby": "dc2"}, "delivery": {"lost": 0}}
    rows = {key: (value, detail) for _group, key, value, detail in rto_rpo_rows(record)}
    assert rows["rto"] == (None, "no output from dc2 after the takeover")
    assert rows["first_output"] == (None, "no output from dc2 after the takeover")
