"""Charts (standalone SVG) and the Allure evidence of one scenario, from synthetic scenario records."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import allure_commons
import pytest

from support.data.ledger import OK, ReceivedRow, SentRow
from support.orchestration import Journal, JournalEvent
from support.reporting.allure import attach_csv_file, attach_scenario, residue_audit, rto_rpo_rows, rto_rpo_table
from support.reporting.charts import baseline_band, line_chart, throughput_svg, timeline_svg
from support.reporting.html import render

SVG = "{http://www.w3.org/2000/svg}"


def traffic() -> tuple[list[SentRow], list[ReceivedRow]]:
    """20 s at 10 tuples/s: dc1 serves the first 10 s, nothing for 3 s, then dc2; 5 sends refused during the gap."""
    sent = [SentRow(f"i{i}", "k", i, "dc1" if i < 100 else "dc2", 100 + i / 10, 100 + i / 10,
                    "refused" if 100 <= i < 105 else OK) for i in range(200)]
    received = [ReceivedRow(f"i{i}", "k", i, "dc1" if i < 100 else "dc2", 100.05 + i / 10, 0, i, 0.0, True)
                for i in range(200) if not 100 <= i < 130]
    return sent, received


def journal_at(*events: tuple[str, float, dict[str, Any]]) -> Journal:
    journal = Journal(None, "s")
    for name, t, fields in events:
        journal.record(name, at=(t, t), **fields)
    return journal


PHASES = {"down_detected": 1.0, "takeover": 1.5, "first_output": 3.0, "throughput_recovered": None}


def record(fault: bool = True) -> dict[str, Any]:
    journal = journal_at(("fault.injected", 109.9, {"kind": "job-cancel", "id": "f1"}),
                         ("fault.effective", 110.0, {"kind": "job-cancel", "id": "f1"}),
                         ("fault.healed", 115.0, {"kind": "job-cancel", "id": "f1", "revert_s": 0.2}))
    sent, received = traffic()
    events = journal.events() if fault else []
    return {
        "feature": "F", "name": "dc2 takes over", "status": "failed", "tags": ["smoke"], "duration_s": 25.0,
        "fault": "job-cancel" if fault else None, "standby": "dc2", "mode": "active/passive", "old_active": "dc1",
        "rto_s": 3.0 if fault else None, "phases_s": PHASES if fault else None,
        "lost": 4, "duplicated": 0, "unknown": 1,
        "delivery": {"sent": 200, "acknowledged": 195, "received": 170, "lost": 4, "loss_window_s": 0.3},
        "recovery": {"old": "dc1", "standby": "dc2", "fault_effective": 110.0, "phases_s": PHASES,
                     "sources": {"down_detected": "operator metrics", "takeover": "job list"},
                     "inferred": ["takeover"], "baseline_tps": 10.0, "throughput_fraction": 0.9} if fault else None,
        "rpo": {"lost": 4, "loss_window_s": 0.3, "lost_state_updates": 7 if fault else None,
                "state_loss_window_s": 1.25 if fault else None},
        "baseline": {"mean": 10.0, "stddev": 1.0},
        "verdicts": [{"name": "lost", "passed": False, "summary": "4 acknowledged tuples were lost",
                      "evidence": {"lost_ids_sample": ["i97"]}},
                     {"name": "takeover", "passed": True, "summary": "dc2 took over", "evidence": {"dc": "dc2"}}],
        "timeline": build(events, sent, received, PHASES if fault else None),
        "cleanup_errors": [],
    }


def build(events: list[JournalEvent], sent: list[SentRow], received: list[ReceivedRow],
          phases: dict[str, float | None] | None) -> dict[str, Any] | None:
    from support.reporting.timeline import build_timeline

    return build_timeline(events, sent, received, phases)


def parse(svg: str | None) -> ET.Element:
    assert svg is not None
    root = ET.fromstring(svg)  # well-formed XML, or this raises
    assert root.tag == f"{SVG}svg"  # the xmlns is there: a standalone image
    assert root.get("width") and root.get("height") and root.get("viewBox")
    return root


def by_class(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{SVG}{tag}") if cls in (e.get("class") or "").split()]


def test_timeline_chart_shades_the_fault_marks_the_phases_and_draws_one_line_per_dc() -> None:
    scenario = record()
    root = parse(timeline_svg(scenario))
    lines = by_class(root, "polyline", "series")
    assert sorted(line.findtext(f"{SVG}title") or "" for line in lines) == ["dc1", "dc2"]
    buckets = len(scenario["timeline"]["accepted"])
    assert all(len((line.get("points") or "").split()) == buckets for line in lines)
    fault = by_class(root, "rect", "fault")
    assert len(fault) == 1 and "job-cancel" in (fault[0].findtext(f"{SVG}title") or "")
    left, width = float(fault[0].get("x") or 0), float(fault[0].get("width") or 0)
    marks = {m.get("data-phase"): float(m.get("x1") or 0) for m in by_class(root, "line", "phase")}
    assert set(marks) == {"down_detected", "takeover", "first_output"}  # throughput never came back: no mark
    # the phases lie inside the fault interval (10 s .. 15 s after traffic began), in order ...
    assert left < marks["down_detected"] < marks["takeover"] < marks["first_output"] < left + width
    # ... at 11, 11.5 and 13 s, which fixes the scale: the shade runs from 10 s to the heal at 15 s
    per_second = (marks["first_output"] - marks["down_detected"]) / 2
    assert marks["takeover"] == pytest.approx(marks["down_detected"] + per_second / 2, abs=0.2)
    assert left == pytest.approx(marks["down_detected"] - per_second, abs=0.2)
    assert left + width == pytest.approx(marks["first_output"] + 2 * per_second, abs=0.2)
    labels = [t.text for t in by_class(root, "text", "phase-label")]
    # the record's takeover was inferred (from the job list, not a toolkit signal)
    assert labels == ["DOWN detected +1.00 s", "takeover (inferred) +1.50 s", "first output +3.00 s"]
    assert "RTO 3.00 s" in "".join(root.itertext())


def test_phases_at_the_same_moment_share_one_label() -> None:
    """Active/active: DOWN detected and takeover at the same instant read as one label, not two on top."""
    scenario = record()
    same = {**PHASES, "takeover": PHASES["down_detected"]}
    scenario["phases_s"] = same
    scenario["recovery"] = {**scenario["recovery"], "inferred": []}
    scenario["timeline"] = build(journal_at(("fault.effective", 110.0, {"kind": "job-cancel", "id": "f1"})).events(),
                                 *traffic(), same)
    root = parse(timeline_svg(scenario))
    phases = {m.get("data-phase") for m in by_class(root, "line", "phase")}
    assert phases == {"down_detected", "takeover", "first_output"}
    labels = [t.text for t in by_class(root, "text", "phase-label")]
    assert labels == ["DOWN detected, takeover +1.00 s", "first output +3.00 s"]
    # a phase the journal did not show (here: after both data centers were down) says it was inferred
    scenario["recovery"] = {**scenario["recovery"], "inferred": ["down_detected"]}
    labels = [t.text for t in by_class(parse(timeline_svg(scenario)), "text", "phase-label")]
    assert labels == ["DOWN detected (inferred), takeover +1.00 s", "first output +3.00 s"]


def test_throughput_chart_draws_input_output_and_the_baseline_band() -> None:
    scenario = record()
    root = parse(throughput_svg(scenario))
    names = [line.findtext(f"{SVG}title") for line in by_class(root, "polyline", "series")]
    assert names == ["accepted", "refused", "output"]
    assert baseline_band(scenario) == (8.0, 12.0)
    band = by_class(root, "rect", "baseline")
    assert len(band) == 1 and float(band[0].get("height") or 0) > 4
    # the level throughput must get back to for the phase "throughput back": 90% of the 10 tuples/s baseline,
    # 9 tuples/s, a quarter of the way up the 8..12 band
    level = by_class(root, "line", "level")
    assert [e.findtext(f"{SVG}title") for e in level] == ["recovered at 90% of the baseline"]
    top, height = float(band[0].get("y") or 0), float(band[0].get("height") or 0)
    assert float(level[0].get("y1") or 0) == pytest.approx(top + height * 3 / 4, abs=0.2)
    assert len(by_class(root, "rect", "fault")) == 1
    # the output line is the sum of both data centers: at zero (the bottom of the plot) only in the 3 s gap
    # between dc1 and dc2, and in the last, empty bucket
    fault = by_class(root, "rect", "fault")[0]
    bottom = float(fault.get("y") or 0) + float(fault.get("height") or 0)
    output = by_class(root, "polyline", "series")[2]
    ys = [float(p.split(",")[1]) for p in (output.get("points") or "").split()]
    assert [i for i, y in enumerate(ys) if y == bottom] == [10, 11, 12, 20]


def test_a_steady_baseline_still_shows_as_a_band() -> None:
    scenario = record() | {"baseline": {"mean": 10.0, "stddev": 0.0}}
    assert baseline_band(scenario) == (10.0, 10.0)
    band = by_class(parse(throughput_svg(scenario)), "rect", "baseline")
    assert float(band[0].get("height") or 0) == 4.0


def test_buckets_shorter_than_a_second_are_drawn_in_tuples_per_second() -> None:
    from support.reporting.timeline import build_timeline

    sent, received = traffic()
    scenario = record(fault=False) | {"timeline": build_timeline([], sent, received, None, width=0.5)}
    root = parse(throughput_svg(scenario))
    band = by_class(root, "rect", "baseline")[0]
    middle = float(band.get("y") or 0) + float(band.get("height") or 0) / 2  # 10 tuples/s, the baseline mean
    output = by_class(root, "polyline", "series")[2]
    ys = [float(p.split(",")[1]) for p in (output.get("points") or "").split()]
    assert ys[5] == pytest.approx(middle, abs=0.2)  # 5 tuples in half a second: 10 tuples/s


def test_line_chart_scales_values_into_the_plot() -> None:
    root = parse(line_chart({"a": [0, 10]}, width=400, height=200, step=1.0))
    points = [tuple(map(float, p.split(","))) for p in (by_class(root, "polyline", "series")[0].get("points") or "")
              .split()]
    axis = by_class(root, "line", "x-axis")[0]
    x0, x1, bottom = float(axis.get("x1") or 0), float(axis.get("x2") or 0), float(axis.get("y1") or 0)
    # 2 buckets of 1 s on a 2 s axis: the values sit in the middle of their bucket, at 1/4 and 3/4 of the axis
    assert points[0][0] == pytest.approx(x0 + (x1 - x0) / 4, abs=0.1)
    assert points[1][0] == pytest.approx(x0 + (x1 - x0) * 3 / 4, abs=0.1)
    assert points[0][1] == bottom and points[1][1] < bottom  # zero on the axis, higher values upward
    assert line_chart({"a": []}) is None and line_chart({}) is None


def test_no_traffic_gives_no_chart_and_no_exception() -> None:
    scenario = record(fault=False) | {"timeline": None, "delivery": None, "lost": None, "duplicated": None,
                                      "unknown": None, "rpo": None, "baseline": None, "verdicts": []}
    assert timeline_svg(scenario) is None and throughput_svg(scenario) is None
    assert timeline_svg({}) is None and throughput_svg({}) is None
    page = render({"run_id": "r", "status": "failed", "totals": {}, "scenarios": [scenario]})
    assert "<svg" not in page
    table = rto_rpo_table(scenario)
    assert "no fault injected" in table and "no traffic" in table


def test_traffic_without_a_fault_is_charted_without_shade_or_marks() -> None:
    scenario = record(fault=False)
    root = parse(timeline_svg(scenario))
    assert not by_class(root, "rect", "fault") and not by_class(root, "line", "phase")
    assert len(by_class(root, "polyline", "series")) == 2
    assert not by_class(parse(throughput_svg(scenario)), "rect", "fault")


def test_rto_rpo_table_lists_phases_rto_and_losses_with_reasons_for_what_is_missing() -> None:
    scenario = record()
    rows = {key: (value, detail) for _, key, value, detail in rto_rpo_rows(scenario)}
    assert rows["down_detected"] == ("1.000 s", "operator metrics")
    assert rows["takeover"] == ("1.500 s", "job list (inferred)")
    assert rows["throughput_recovered"][0] is None
    assert rows["throughput_recovered"][1] == "output never got back to 90% of the baseline (10 tuples/s)"
    assert rows["rto"][0] == "3.000 s" and rows["lost"][0] == "4" and rows["loss_window"][0] == "0.300 s"
    assert rows["state_loss_window"][0] == "1.250 s" and rows["lost_state_updates"][0] == "7"
    assert rows["duplicated"][0] == "0" and rows["unknown"][0] == "1"
    table = rto_rpo_table(scenario)
    for label in ("DOWN detected", "takeover", "first output", "throughput back", "RTO", "loss window",
                  "state loss window", "duplicated", "unknown"):
        assert f"<td>{label}</td>" in table
    throughput_row = re.search(r'<tr data-key="throughput_recovered">.*?</tr>', table)
    assert throughput_row and '<td class="num">–</td>' in throughput_row.group(0)
    lost_row = re.search(r'<tr data-key="lost">.*?</tr>', table)
    assert lost_row and "✘ 4 acknowledged tuples were lost" in lost_row.group(0)


def test_missing_state_loss_says_why() -> None:
    scenario = record() | {"rpo": {"lost": 4, "loss_window_s": 0.3, "lost_state_updates": None,
                                   "state_loss_window_s": None},
                           "recovery": {"fault_effective": None}, "phases_s": None, "rto_s": None}
    rows = {key: (value, detail) for _, key, value, detail in rto_rpo_rows(scenario)}
    assert rows["state_loss_window"] == (None, "state not judged (the fault never took effect)")
    assert rows["rto"] == (None, "the fault never took effect")


def test_residue_audit_separates_residue_failed_cleanups_and_unreverted_faults() -> None:
    journal = journal_at(("fault.injected", 1.0, {"kind": "partition", "id": "f1"}),
                         ("fault.healed", 2.0, {"kind": "partition", "id": "f1", "revert_s": 0.25, "evidence": "ok"}),
                         ("cleanup.done", 3.0, {"what": "heal partition f1", "seconds": 0.01}))
    clean = residue_audit({"cleanup_errors": []}, journal.events())
    assert clean["clean"] and clean["faults"][0]["reverted"] and clean["faults"][0]["revert_s"] == 0.25
    assert clean["cleanup"] == [{"what": "heal partition f1", "ok": True, "seconds": 0.01}]
    journal.record("fault.injected", kind="latency", id="f2")
    assert not residue_audit({"cleanup_errors": []}, journal.events())["clean"]  # f2 was never reverted
    dirty = residue_audit({"cleanup_errors": ["fault residue: dc1 host1: qdisc netem on eth0", "stop traffic: boom"]},
                          journal.events())
    assert not dirty["clean"]
    assert dirty["residue"] == ["dc1 host1: qdisc netem on eth0"] and dirty["cleanup_errors"] == ["stop traffic: boom"]
    assert [f["id"] for f in dirty["faults"] if not f["reverted"]] == ["f2"]


class Recorder:
    """An Allure plugin that records what is attached through the real ``allure.attach`` API."""

    def __init__(self) -> None:
        self.attached: list[tuple[str, str, str]] = []

    @allure_commons.hookimpl
    def attach_data(self, body: Any, name: str, attachment_type: Any, extension: Any) -> None:
        self.attached.append((name, attachment_type.mime_type, body if isinstance(body, str) else body.decode()))

    @allure_commons.hookimpl
    def attach_file(self, source: Any, name: str, attachment_type: Any, extension: Any) -> None:
        self.attached.append((name, attachment_type.mime_type, Path(source).read_text()))


@pytest.fixture()
def recorder() -> Iterator[Recorder]:
    plugin = Recorder()
    allure_commons.plugin_manager.register(plugin)
    try:
        yield plugin
    finally:
        allure_commons.plugin_manager.unregister(plugin)


def test_every_attachment_of_a_scenario_reaches_allure(recorder: Recorder, tmp_path: Path) -> None:
    scenario = record() | {"cleanup_errors": ["fault residue: dc1 h: tc left"]}
    csv = tmp_path / "metrics.csv"
    csv.write_text("series,t,value\nthroughput.dc1,1.000,10\n")
    journal = journal_at(("fault.injected", 109.9, {"kind": "job-cancel", "id": "f1"}))
    attach_scenario(scenario, journal.events(), csv)
    names = [name for name, _, _ in recorder.attached]
    assert names == ["timeline", "throughput", "RTO/RPO table", "verdicts", "verdicts with evidence",
                     "measurements", "metrics CSV", "residue audit", "journal"]
    attached = {name: (mime, body) for name, mime, body in recorder.attached}
    assert attached["timeline"][0] == "image/svg+xml" and attached["timeline"][1] == timeline_svg(scenario)
    assert attached["RTO/RPO table"][0] == "text/html"
    assert json.loads(attached["verdicts with evidence"][1])[0]["evidence"] == {"lost_ids_sample": ["i97"]}
    assert attached["verdicts"][1].splitlines() == ["FAIL lost: 4 acknowledged tuples were lost",
                                                    "PASS takeover: dc2 took over"]
    assert attached["metrics CSV"] == ("text/csv", csv.read_text())
    audit = json.loads(attached["residue audit"][1])
    assert audit["residue"] == ["dc1 h: tc left"] and not audit["clean"]
    assert "fault.injected" in attached["journal"][1]


def test_a_scenario_without_traffic_or_metrics_attaches_no_chart(recorder: Recorder, tmp_path: Path) -> None:
    attach_scenario({"verdicts": [], "timeline": None}, [], tmp_path / "missing.csv")
    names = [name for name, _, _ in recorder.attached]
    assert names == ["RTO/RPO table", "measurements", "residue audit", "journal"]
    assert attach_csv_file("metrics CSV", tmp_path / "missing.csv") is False
    assert len(recorder.attached) == 4
