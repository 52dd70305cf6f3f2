import re
from pathlib import Path

from support.data.ledger import OK, ReceivedRow, SentRow
from support.orchestration import Journal
from support.reporting.charts import throughput_svg, timeline_svg
from support.reporting.html import render, write_report
from support.reporting.timeline import build_timeline


def ledgers() -> tuple[list[SentRow], list[ReceivedRow]]:
    sent = [SentRow(f"i{i}", "k", i, "dc1" if i < 50 else "dc2", 100 + i / 10, 100 + i / 10, OK) for i in range(80)]
    received = [ReceivedRow(f"i{i}", "k", i, "dc1" if i < 50 else "dc2", 100.2 + i / 10, 0, i, 0.0, True)
                for i in range(80) if not 45 <= i < 50]
    return sent, received


def test_timeline_buckets_output_per_dc_and_places_fault_and_phases(tmp_path: Path) -> None:
    journal = Journal(None)
    fault = journal.record("fault.effective", kind="job-cancel")
    object.__setattr__(fault, "t", 105.0)
    sent, received = ledgers()
    timeline = build_timeline(journal.events(), sent, received, {"takeover": 1.5, "first_output": 2.0})
    assert timeline is not None
    assert timeline["t0"] == 100.0 and timeline["bucket_s"] == 1.0
    assert sum(timeline["output_per_dc"]["dc1"]) == 45 and sum(timeline["output_per_dc"]["dc2"]) == 30
    assert sum(timeline["accepted"]) == 80 and sum(timeline["refused"]) == 0
    assert timeline["fault"] == {"kind": "job-cancel", "start": 5.0, "end": None}
    assert timeline["marks"] == {"takeover": 6.5, "first_output": 7.0}
    assert build_timeline([], [], []) is None


def test_report_is_one_self_contained_file(tmp_path: Path) -> None:
    journal = Journal(None)
    journal.record("fault.effective", kind="job-cancel")
    sent, received = ledgers()
    scenario = {
        "feature": "F", "name": "dc2 takes <over>", "status": "failed", "tags": ["smoke"], "duration_s": 9.0,
        "rto_s": 2.0, "phases_s": {"down_detected": 1.0, "takeover": 1.5, "first_output": 2.0},
        "lost": 5, "duplicated": 0, "unknown": 0, "error": "5 of 80 acknowledged tuples never came out",
        "delivery": {"sent": 80, "lost": 5, "loss_window_s": 0.4, "received_by_dc": {"dc1": 45}},
        "verdicts": [{"name": "lost", "passed": False, "summary": "5 lost", "evidence": {}}],
        "timeline": build_timeline(journal.events(), sent, received),
    }
    summary = {"run_id": "r1", "status": "failed", "totals": {"scenarios": 1, "passed": 0, "failed": 1, "skipped": 0},
               "scenarios": [scenario]}
    page = render(summary)
    assert "dc2 takes &lt;over&gt;" in page  # escaped
    assert page.count("<svg") == 2 and "<polyline" in page and "fault" in page
    # the charts are charts.py's standalone SVG, inlined as they are
    for chart in (timeline_svg(scenario), throughput_svg(scenario)):
        assert chart is not None and chart in page
    assert not re.search(r"<script|<link|src=\"http|href=\"http", page)  # nothing fetched, nothing run
    assert "5 of 80 acknowledged" in page and "✘ lost" in page
    path = write_report(summary, tmp_path)
    assert path.read_text(encoding="utf-8") == page
