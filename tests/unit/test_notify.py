"""Notifications (support/notify.py) against a real HTTP receiver on 127.0.0.1: the JSON and Slack payloads, the
occasions that send one, retries with backoff, the console line, and the webhook's URL kept out of every output."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from historyfakes import FEATURE, NAME, drills, write_run

from support.config import ConfigError, load_config
from support.config.settings import NotifySettings, WebhookSettings
from support.history.store import record_run
from support.notify import WebhookError, notify_run, payload, regressions_for, slack_payload, webhook_url
from support.redact import Redactor

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "T0KEN-in-the-path-0123456789"


class Receiver:
    """A webhook receiver on 127.0.0.1: answers each POST with the next status of ``statuses`` (the last
    repeats) and keeps the bodies it got."""

    def __init__(self) -> None:
        self.statuses: list[int] = [200]
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                receiver.paths.append(self.path)
                status = receiver.statuses[min(len(receiver.bodies) - 1, len(receiver.statuses) - 1)]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/{TOKEN}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    got = Receiver()
    yield got
    got.close()


def webhook(**changes: Any) -> NotifySettings:
    values: dict[str, Any] = {"url_env": "HOOK_URL", "url_file": None, "format": "json",
                              "when": ("failed", "regression"), "timeout": 5.0, "attempts": 4, "backoff": 1.0}
    values.update(changes)
    return NotifySettings(WebhookSettings(**values))


FAILED_CHECK = {"name": "takeover", "passed": False, "summary": "dc2 did not take over within 6 s", "evidence": {}}


def a_run(tmp_path: Path, status: str = "failed", soak: bool = True) -> Path:
    run_dir = tmp_path / "20261206-101500-abcd"
    run_dir.mkdir(parents=True)
    scenarios = [
        {"feature": "Failover", "name": "dc2 takes over", "status": "failed", "verdicts": [FAILED_CHECK]},
        {"feature": "Failover", "name": "steady <ok> & fine", "status": "passed", "verdicts": []},
        {"feature": "Failover", "name": "cut short", "status": "interrupted", "error": "interrupted by SIGINT"},
    ] if status == "failed" else [{"feature": "Failover", "name": "dc2 takes over", "status": "passed"}]
    summary = {"run_id": run_dir.name, "status": status, "target": "lab", "started_at": 1.0, "finished_at": 2.0,
               "totals": {"scenarios": len(scenarios), "passed": 1, "failed": int(status == "failed"), "skipped": 0},
               "scenarios": scenarios}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    (run_dir / "run.json").write_text(json.dumps({"run_id": run_dir.name, **({"soak_id": "s-1", "round": 2}
                                                                              if soak else {})}))
    return run_dir


def notify(settings: NotifySettings, run_dir: Path, receiver: Receiver, pauses: list[float] | None = None,
           **kwargs: Any) -> tuple[Any, str]:
    out = io.StringIO()
    done = notify_run(settings, run_dir, out=out, environ={"HOOK_URL": receiver.url},
                      pause=(pauses.append if pauses is not None else lambda s: None), **kwargs)
    return done, out.getvalue()


def test_a_failed_run_posts_its_json_summary(tmp_path: Path, receiver: Receiver) -> None:
    run_dir = a_run(tmp_path)
    done, line = notify(webhook(), run_dir, receiver)
    assert done.delivered and done.attempts == 1 and len(receiver.bodies) == 1
    body = receiver.bodies[0]
    assert body["run_id"] == run_dir.name and body["status"] == "failed" and body["events"] == ["failed"]
    assert body["totals"]["failed"] == 1 and body["soak_id"] == "s-1" and body["round"] == 2
    assert body["failed"] == [
        {"scenario": "Failover :: dc2 takes over", "status": "failed", "reason": "dc2 did not take over within 6 s"},
        {"scenario": "Failover :: cut short", "status": "interrupted", "reason": "interrupted by SIGINT"},
    ]
    assert body["report"] == str((run_dir / "report.html").resolve()) and body["regressions"] == []
    assert line == "notify:   webhook sent (failed; json)\n"


def test_the_slack_format_has_text_and_blocks(tmp_path: Path, receiver: Receiver) -> None:
    settings = webhook(format="slack", report_url="https://ci.example.com/drills/{run_id}/report.html")
    notify(settings, a_run(tmp_path), receiver, regressions=["Failover :: dc2 takes over: RTO p50 1.8 s -> 4.2 s"])
    body = receiver.bodies[0]
    assert set(body) == {"text", "blocks"}
    assert body["text"].startswith("Failover drill 20261206-101500-abcd failed and regressed (soak s-1, round 2)")
    kinds = [block["type"] for block in body["blocks"]]
    assert kinds == ["header", "section", "section", "section", "section", "context"]
    texts = json.dumps(body["blocks"])
    assert "*Failover :: dc2 takes over* (failed): dc2 did not take over within 6 s" in texts
    assert "RTO p50 1.8 s -&gt; 4.2 s" in texts  # mrkdwn-escaped
    assert "<https://ci.example.com/drills/20261206-101500-abcd/report.html|report>" in texts


def test_a_passed_run_sends_nothing_unless_it_regressed(tmp_path: Path, receiver: Receiver) -> None:
    run_dir = a_run(tmp_path, status="passed", soak=False)
    done, line = notify(webhook(), run_dir, receiver)
    assert done is None and line == "" and receiver.bodies == []
    done, _ = notify(webhook(), run_dir, receiver, regressions=["Failover :: dc2 takes over: lost 0 -> 40"])
    assert done.delivered and receiver.bodies[0]["events"] == ["passed", "regression"]
    assert receiver.bodies[0]["regressions"] == ["Failover :: dc2 takes over: lost 0 -> 40"]
    assert "soak_id" not in receiver.bodies[0]
    assert regressions_for(run_dir) is None  # no history next to the run: nothing to compare with


def test_the_regression_lines_come_from_the_run_before_in_the_history(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    db = reports / "history.sqlite"
    before = write_run(reports, "20261206-090000-aaaa", drills([1.8, 1.9, 2.0, 1.7, 1.85]))
    record_run(before, db)
    assert regressions_for(before) is None  # the first run: nothing before it
    after = write_run(reports, "20261206-100000-bbbb", drills([4.8, 4.9, 5.0, 4.7, 4.85], start=1_796_504_000.0))
    record_run(after, db)
    lines = regressions_for(after)
    assert lines is not None and len(lines) == 1, lines
    assert lines[0].startswith(f"{FEATURE} :: {NAME}: RTO worse by") and "(against 20261206-090000-aaaa)" in lines[0]
    same = write_run(reports, "20261206-110000-cccc", drills([4.8, 4.9, 5.0, 4.7, 4.85], start=1_796_508_000.0))
    record_run(same, db)
    assert regressions_for(same) == []  # compared with the run just before it, which was as slow


def test_5xx_is_retried_with_a_doubling_backoff(tmp_path: Path, receiver: Receiver) -> None:
    receiver.statuses = [503, 500, 200]
    pauses: list[float] = []
    done, line = notify(webhook(backoff=0.5), a_run(tmp_path), receiver, pauses)
    assert done.delivered and done.attempts == 3 and len(receiver.bodies) == 3
    assert pauses == [0.5, 1.0]
    assert "webhook sent" in line


def test_giving_up_says_so_in_one_line_without_the_url(tmp_path: Path, receiver: Receiver) -> None:
    receiver.statuses = [500]
    pauses: list[float] = []
    done, line = notify(webhook(attempts=3), a_run(tmp_path), receiver, pauses)
    assert not done.delivered and len(receiver.bodies) == 3 and pauses == [1.0, 2.0]
    assert line == ("notify:   webhook NOT delivered (failed) after 3 attempt(s), last HTTP 500; the run's result "
                    "stands\n")


def test_a_refused_message_is_not_sent_again(tmp_path: Path, receiver: Receiver) -> None:
    receiver.statuses = [400]
    done, _ = notify(webhook(), a_run(tmp_path), receiver)
    assert not done.delivered and done.attempts == 1 and len(receiver.bodies) == 1


def test_an_unreachable_receiver_never_shows_the_url(tmp_path: Path, receiver: Receiver) -> None:
    url = receiver.url
    receiver.close()  # nothing listens on its port any more
    out = io.StringIO()
    done = notify_run(webhook(attempts=2), a_run(tmp_path), out=out, environ={"HOOK_URL": url}, pause=lambda s: None)
    assert done is not None and not done.delivered and done.last == "ConnectionError"
    assert TOKEN not in out.getvalue() and "127.0.0.1" not in out.getvalue()


def test_a_notification_never_raises(tmp_path: Path, receiver: Receiver) -> None:
    def broken(*args: object, **kwargs: object) -> Any:
        raise RuntimeError(f"boom {args[0]}")

    done, line = notify(webhook(), a_run(tmp_path), receiver, post=broken)
    assert not done.delivered and "last RuntimeError" in line and TOKEN not in line


def test_the_url_comes_from_a_file_or_the_environment(tmp_path: Path, receiver: Receiver) -> None:
    secret = tmp_path / "webhook-url"
    secret.write_text(receiver.url + "\n")
    done, _ = notify(webhook(url_env=None, url_file=str(secret)), a_run(tmp_path), receiver)
    assert done.delivered
    out = io.StringIO()
    assert notify_run(webhook(), a_run(tmp_path / "x"), out=out, environ={}) is None
    assert out.getvalue() == "notify:   webhook not sent: $HOOK_URL is not set (the run's result stands)\n"


@pytest.mark.parametrize(("url", "problem"), [
    ("http://hooks.example.com/T/B/X", "http:// would send the webhook's secret URL in clear"),
    ("ftp://hooks.example.com/x", "does not hold an http(s) URL"),
])
def test_a_url_that_would_leak_is_refused(url: str, problem: str) -> None:
    settings = webhook().webhook
    assert settings is not None
    with pytest.raises(WebhookError) as caught:
        webhook_url(settings, {"HOOK_URL": url})
    assert problem in str(caught.value) and url not in str(caught.value)
    assert webhook_url(settings, {"HOOK_URL": "https://hooks.example.com/x"}) == "https://hooks.example.com/x"


def test_known_secrets_are_redacted_from_the_payload(tmp_path: Path, receiver: Receiver) -> None:
    run_dir = a_run(tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["scenarios"][0]["verdicts"][0]["summary"] = "login with Sup3r-Secret-Passw0rd failed"
    (run_dir / "summary.json").write_text(json.dumps(summary))
    notify(webhook(), run_dir, receiver, redactor=Redactor(["Sup3r-Secret-Passw0rd"]))
    assert "Sup3r-Secret-Passw0rd" not in json.dumps(receiver.bodies[0])


def test_payload_and_slack_shapes_are_stable() -> None:
    summary = {"run_id": "r", "status": "passed", "totals": {"scenarios": 0}, "scenarios": []}
    body = payload(summary, {}, None, "/r/report.html")
    assert body["events"] == ["passed"] and body["failed"] == [] and "soak_id" not in body
    assert slack_payload(body)["blocks"][-1] == {"type": "context", "elements": [
        {"type": "mrkdwn", "text": "report: `/r/report.html`"}]}


def lab_config(tmp_path: Path, overrides: list[str]) -> Any:
    """config/lab.yaml with its password file (made by `lab up`) replaced, and ``overrides``."""
    password = tmp_path / "streams-password"
    password.write_text("lab-Pa55word-xyz\n")
    passwords = [f"datacenters.{dc}.rest.auth.password=${{file:{password}}}" for dc in ("dc1", "dc2")]
    return load_config(ROOT / "config" / "lab.yaml", [*passwords, *overrides])


@pytest.mark.parametrize(("overrides", "problem"), [
    (["notify.webhook.format=slack"], "exactly one"),
    (["notify.webhook.url_env=X", "notify.webhook.url_file=/f"], "exactly one"),
    (["notify.webhook.url_env=https://hooks.example.com/x"], "does not match"),
    (["notify.webhook.url_env=X", "notify.webhook.format=xml"], "json, slack"),
    (["notify.webhook.url_env=X", "notify.webhook.when=[sometimes]"], "failed, regression"),
    (["notify.webhook.url_env=X", "notify.webhook.attempts=0"], "attempts"),
])
def test_the_notify_section_is_validated(tmp_path: Path, overrides: list[str], problem: str) -> None:
    with pytest.raises(ConfigError, match=r"notify\.webhook") as caught:
        lab_config(tmp_path, overrides)
    assert problem in str(caught.value)


def test_the_notify_section_has_defaults(tmp_path: Path) -> None:
    assert lab_config(tmp_path, ["notify.webhook.url_env=HOOK_URL"]).settings.notify == webhook(timeout=10.0)
    assert lab_config(tmp_path, []).settings.notify == NotifySettings()
