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


def test_numbers_carry_limits_reasons_and_times_never_raw_none_zero_or_epochs() -> None:
    fault_at = 1796564450.778876
    judged = {
        "feature": "F", "name": "dc2 takes over", "status": "passed", "tags": [], "duration_s": 20.0,
        "started_at": fault_at - 12, "fault": "job-cancel", "standby": "dc2", "rto_s": 3.811,
        "phases_s": {"down_detected": 3.388, "takeover": 3.465, "first_output": 3.811, "throughput_recovered": None},
        "lost": 0, "duplicated": 0, "unknown": 0,
        "delivery": {"sent": 100, "lost": 0, "loss_window_s": 0.0, "lost_first_sent": None, "lost_last_sent": None,
                     "received_by_dc": {"dc1": 60, "dc2": 40}},
        "recovery": {"fault_effective": fault_at, "standby": "dc2", "baseline_tps": 199.0,
                     "throughput_fraction": 0.9},
        "verdicts": [{"name": "recovery_time", "passed": True, "summary": "ok", "evidence": {"limit_s": 60.0}},
                     {"name": "lost", "passed": True, "summary": "ok", "evidence": {"limit": 50}}],
    }
    orderly = dict(judged, name="dc2 takes over when dc1 shuts down", rto_s=None,
                   phases_s={"down_detected": 3.0, "takeover": 3.4, "first_output": None},
                   verdicts=[{"name": "takeover", "passed": True, "summary": "ok", "evidence": {"limit_s": 45.0}}])
    page = render({"run_id": "r", "status": "passed", "started_at": fault_at - 20, "finished_at": fault_at + 30,
                   "totals": {}, "scenarios": [judged, orderly]})
    text = re.sub(r"<style>.*?</style>|<svg.*?</svg>", "", page, flags=re.S)
    assert "None" not in text
    assert not re.search(r">\s*0\.0\s*<", text)  # a loss window of nothing lost is "–" and why
    assert not re.search(r"1796\d{6}", text)  # instants are times of day, not epoch floats
    assert "started 2026-12-06 13:40:30.778 UTC" in text  # the date once, in the header
    assert "finished 13:41:20.778 UTC" in text and "started 13:40:38.778 UTC" in text
    assert "✔ ≤ 60 s" in text and "✔ ≤ 50" in text  # a limit beside every judged number
    assert text.count("not checked") >= 4  # duplicated and unknown of both scenarios
    assert "no output from dc2 after the takeover" in text  # why the RTO of the orderly shutdown is empty
    assert "output never got back to 90% of the baseline" in text  # why a phase is empty
    assert "– (nothing lost)" in text and "dc1 60, dc2 40" in text
    phases = re.search(r"Recovery phases.*?</table>", text, re.S)
    assert phases is not None  # the takeover phase of the orderly shutdown is judged (≤ 45 s), DOWN is not
    assert "✔ ≤ 45 s" in text and "not checked" in phases.group(0)


def test_tables_scroll_or_wrap_inside_their_cards() -> None:
    page = render({"run_id": "r", "status": "passed", "totals": {}, "scenarios": []})
    css = re.search(r"<style>(.*?)</style>", page, re.S)
    assert css is not None
    rules = css.group(1)
    assert re.search(r"table\{[^}]*display:block[^}]*overflow-x:auto", rules)
    assert re.search(r"\.scenarios td:first-child\{[^}]*overflow-wrap:anywhere", rules)
    assert re.search(r"\.card\{[^}]*max-width:100%", rules)
