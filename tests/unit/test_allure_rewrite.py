"""A re-judgement rewrites the Allure results: test and step status from the judge's record, attachments anew."""

from __future__ import annotations

import json
from pathlib import Path

from support.reporting.allure import rewrite_results


def test_results_follow_the_records(tmp_path: Path) -> None:
    test = {"name": "dc2 takes over", "status": "passed", "start": 1,
            "steps": [{"name": "Then no acknowledged tuple is lost", "status": "passed"},
                      {"name": "And \"dc2\" takes over within 45 seconds", "status": "passed"}],
            "attachments": [{"name": "verdicts", "source": "a-attachment.txt", "type": "text/plain"}]}
    (tmp_path / "u1-result.json").write_text(json.dumps(test))
    (tmp_path / "other-result.json").write_text(json.dumps({"name": "another scenario", "status": "passed"}))
    record = {"name": "dc2 takes over", "status": "not judged", "error": "Not judged: waiting for a takeover.",
              "verdicts": [{"name": "lost", "passed": False, "status": "not judged", "summary": "Not judged: x.",
                            "evidence": {"step": "Then no acknowledged tuple is lost"}}]}
    count = rewrite_results(tmp_path, [(record, [("verdicts", "NOT JUDGED lost", "text"), ("journal", "j", "text")])])
    assert count == 1
    again = json.loads((tmp_path / "u1-result.json").read_text())
    assert again["status"] == "broken" and again["statusDetails"]["message"].startswith("Not judged")
    assert [s["status"] for s in again["steps"]] == ["broken", "passed"]
    assert (tmp_path / "a-attachment.txt").read_text() == "NOT JUDGED lost"
    journal = next(a for a in again["attachments"] if a["name"] == "journal")
    assert (tmp_path / journal["source"]).read_text() == "j"
    assert json.loads((tmp_path / "other-result.json").read_text())["status"] == "passed"
