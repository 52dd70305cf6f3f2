import json
from pathlib import Path

import jsonschema
import pytest

from support.reporting.allure import strip_tracking
from support.reporting.logs import install_run_log
from support.reporting.summary import append_scenario, summary_table, write_run_meta, write_summary


def scenario(status: str = "passed", **extra: object) -> dict:
    record = {
        "feature": "F", "name": "dc2 takes over", "status": status, "tags": ["smoke"], "duration_s": 12.5,
        "rto_s": 3.2, "phases_s": {"down_detected": 1.9, "takeover": 2.4, "first_output": 3.2},
        "lost": 12, "duplicated": 0, "unknown": 1, "verdicts": [
            {"name": "lost", "passed": True, "summary": "12 of 900 lost", "evidence": {"lost": 12}}],
    }
    record.update(extra)
    return record


def test_summary_is_built_from_scenarios_written_as_they_end(tmp_path: Path) -> None:
    write_run_meta(tmp_path, {"run_id": "r1", "config": "config/lab.yaml", "started_at": 1.0})
    append_scenario(tmp_path, scenario())
    append_scenario(tmp_path, scenario("failed", error="dc2 never took over"))
    with (tmp_path / "scenarios.jsonl").open("a") as out:
        out.write('{"feature": "cut sh')  # a run that crashed mid-write
    summary = write_summary(tmp_path)
    assert summary["status"] == "failed"
    assert summary["totals"] == {"scenarios": 2, "passed": 1, "failed": 1, "skipped": 0, "not_judged": 0,
                                 "interrupted": 0}
    assert json.loads((tmp_path / "summary.json").read_text()) == summary


def test_schema_rejects_incomplete_records(tmp_path: Path) -> None:
    broken = scenario()
    del broken["rto_s"]
    append_scenario(tmp_path, broken)
    with pytest.raises(jsonschema.ValidationError):
        write_summary(tmp_path)


def test_table_and_empty_run(tmp_path: Path) -> None:
    assert write_summary(tmp_path)["status"] == "failed"  # nothing ran: not a pass
    table = summary_table([scenario(), scenario(rto_s=None)])
    assert "3.20 s" in table and "RTO" in table and "-" in table


def test_tracking_script_is_stripped() -> None:
    html = ('<head><script async src="https://www.googletagmanager.com/gtag/js?id=G-1"></script>'
            "<script>window.dataLayer=[];function gtag(){dataLayer.push(arguments)}gtag('js',new Date());</script>"
            "<script>app()</script></head>")
    out = strip_tracking(html)
    assert "googletagmanager" not in out and "gtag" not in out and "<script>app()</script>" in out


def test_run_log_is_json_and_redacted(tmp_path: Path) -> None:
    import logging

    handler = install_run_log(tmp_path / "run.log", lambda text: text.replace("s3cret", "***"))
    try:
        logging.getLogger("t").warning("login with %s", "s3cret")
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    entry = json.loads((tmp_path / "run.log").read_text().splitlines()[-1])
    assert entry["message"] == "login with ***" and entry["level"] == "WARNING"


def test_measurements_of_a_failover_validate_and_stay_strict(tmp_path: Path) -> None:
    from support.data.ledger import OK, ReceivedRow, SentRow
    from support.data.validate import check_order, check_split_brain, check_state
    from support.measure import recovery_timeline, throughput_baseline
    from support.orchestration import Journal

    sent = [SentRow(f"i{i}", "k", i, "dc1" if i < 50 else "dc2", i * 0.1, i * 0.1, OK, "", 1.0) for i in range(1, 80)]
    received = [ReceivedRow(f"i{i}", "k", i, "dc1" if i < 50 else "dc2", i * 0.1 + 0.05, i * 0.1, i, float(i), True,
                            1.0) for i in range(1, 80)]
    journal = Journal(None)
    object.__setattr__(journal.record("fault.effective", kind="job-cancel"), "t", 5.0)
    timeline = recovery_timeline(journal, received, "dc2", old="dc1", baseline=throughput_baseline(received, 1, 4))
    state = check_state(sent, received, "dc1", "dc2", 5.0).to_json()
    record = scenario(
        mode="active/passive", old_active="dc1", recovery=timeline.to_json(),
        rpo={"lost": 0, "loss_window_s": 0.0, "lost_state_updates": state["lost_updates"],
             "state_loss_window_s": state["state_loss_window_s"]},
        state=state, order=check_order(received).to_json(), split_brain=check_split_brain(received).to_json(),
        baseline=timeline.baseline.to_json() if timeline.baseline else None,
        metrics={"series": 2, "baselines": {}, "errors": {"prometheus": "connection refused"}},
        phases_s=timeline.phases(),
    )
    append_scenario(tmp_path, record)
    summary = write_summary(tmp_path)
    assert summary["scenarios"][0]["recovery"]["phases_s"]["first_output"] == 0.0
    broken = dict(record, recovery={**timeline.to_json(), "guess": 1})
    (tmp_path / "scenarios.jsonl").unlink()
    append_scenario(tmp_path, broken)
    with pytest.raises(jsonschema.ValidationError):
        write_summary(tmp_path)
