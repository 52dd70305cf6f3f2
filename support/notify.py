"""Notifications after a run: a webhook carries a JSON summary when the run failed or regressed.

Configured in ``notify.webhook`` (``config/schema.json``): the URL is a secret, read when the message is sent from an
environment variable (``url_env``) or a file (``url_file``, e.g. a mounted Kubernetes secret): it is never in the
configuration, a report or a console line. ``format: json`` sends :func:`payload`; ``format: slack`` sends
:func:`slack_payload` (``text`` + Block Kit ``blocks``, for a Slack incoming webhook or anything that speaks it).

Sending (:func:`deliver`): a POST with a timeout; a connection error, 429 or 5xx is retried with a doubling backoff,
``attempts`` in all; then one console line says what happened. A notification never changes the run's verdict or
exit code: :func:`notify_run` never raises.

Regressions come from the history's comparison (``failover-tester compare``). :func:`regressions_for` is the hook
that gives them for a finished run: it returns None until the history is wired to it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import requests

from support.config.settings import NotifySettings, WebhookSettings
from support.packaged import version
from support.redact import Redactor
from support.reporting.summary import RUN_FILE, scenario_key

__all__ = [
    "Delivery",
    "WebhookError",
    "deliver",
    "events_of",
    "notify_run",
    "payload",
    "regressions_for",
    "slack_payload",
    "webhook_url",
]

#: the longest reason carried per failed scenario, and the most scenarios listed in a Slack message
REASON_CHARS = 500
SLACK_SCENARIOS = 10
#: the most a backoff pause lasts (seconds)
MAX_BACKOFF = 30.0

Post = Callable[..., requests.Response]
Pause = Callable[[float], None]


def regressions_for(run_dir: Path) -> list[str] | None:
    """The regression lines of the run in ``run_dir`` against the run before it in its history
    (:func:`support.history.compare.against_previous`): one line per scenario that got worse, with why; None when
    there is no history or no earlier run to compare with. Never raises (the notification must still go)."""
    from support.history.compare import against_previous
    from support.history.schema import default_db_path

    db = default_db_path(run_dir.parent)
    if not db.is_file():
        return None
    try:
        comparison = against_previous(db, run_dir.name)
    except Exception:  # a damaged history costs the regression lines, never the notification
        return None
    if comparison is None:
        return None
    return [f"{s.scenario}: {'; '.join(s.reasons)} (against {comparison.run_a})" for s in comparison.regressions]


def events_of(summary: dict[str, Any], regressions: list[str] | None) -> list[str]:
    """What the run is an occasion for: ``failed``, ``interrupted`` or ``passed`` (its status), and
    ``regression`` when regression lines were given."""
    events = [str(summary.get("status") or "failed")]
    if regressions:
        events.append("regression")
    return events


def _reason(record: dict[str, Any]) -> str:
    """Why a scenario did not pass: its error, else the sentences of its failed (or not judged) checks."""
    if record.get("error"):
        text = str(record["error"])
    else:
        verdicts = [v for v in record.get("verdicts") or [] if not v.get("passed")]
        text = "; ".join(str(v.get("summary")) for v in verdicts) or str(record.get("status"))
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"


def _report_link(settings: WebhookSettings, run_dir: Path, run_id: str) -> str:
    if settings.report_url:
        return settings.report_url.replace("{run_id}", run_id)
    return str((run_dir / "report.html").resolve())


def payload(summary: dict[str, Any], run: dict[str, Any], regressions: list[str] | None, report: str) -> dict[str, Any]:
    """The JSON summary a webhook receives (``format: json``)."""
    failed = [{"scenario": scenario_key(s), "status": s.get("status"), "reason": _reason(s)}
              for s in summary.get("scenarios") or [] if s.get("status") not in ("passed", "skipped")]
    body: dict[str, Any] = {
        "tool": "streams-failover-tester",
        "tool_version": version(),
        "events": events_of(summary, regressions),
        "run_id": summary.get("run_id"),
        "status": summary.get("status"),
        "target": summary.get("target"),
        "started_at": summary.get("started_at"),
        "finished_at": summary.get("finished_at"),
        "totals": summary.get("totals"),
        "failed": failed,
        "regressions": list(regressions or []),
        "report": report,
    }
    for key in ("soak_id", "round", "shard"):
        if run.get(key) is not None:
            body[key] = run[key]
    return body


def _mrkdwn(text: str) -> str:
    """Text safe inside Slack mrkdwn (``&``, ``<``, ``>`` escaped as Slack asks)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(body: dict[str, Any]) -> dict[str, Any]:
    """The same summary as a Slack message: ``text`` (the notification line) and ``blocks``."""
    totals = body.get("totals") or {}
    what = " and regressed" if "regression" in body["events"] and body["status"] != "passed" else (
        ": regression" if "regression" in body["events"] else "")
    soak = f" (soak {body['soak_id']}, round {body.get('round')})" if body.get("soak_id") else ""
    text = (f"Failover drill {body['run_id']} {body['status']}{what}{soak} on {body.get('target') or 'the pair'}: "
            f"{totals.get('passed', 0)} passed, {totals.get('failed', 0)} failed of {totals.get('scenarios', 0)}")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"Failover drill {body['status']}"[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _mrkdwn(text)[:3000]}},
    ]
    for item in body["failed"][:SLACK_SCENARIOS]:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _mrkdwn(
            f"*{item['scenario']}* ({item['status']}): {item['reason']}")[:3000]}})
    if len(body["failed"]) > SLACK_SCENARIOS:
        more = f"and {len(body['failed']) - SLACK_SCENARIOS} more"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": more}]})
    if body["regressions"]:
        lines = "\n".join(f"• {line}" for line in body["regressions"])
        listed = _mrkdwn("*Regressions*\n" + lines)[:3000]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": listed}})
    report = body["report"]
    link = f"<{report}|report>" if report.startswith(("https://", "http://")) else f"report: `{_mrkdwn(report)}`"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": link[:3000]}]})
    return {"text": text, "blocks": blocks}


class WebhookError(Exception):
    """The webhook's URL cannot be used; the one line never holds the URL."""


def webhook_url(settings: WebhookSettings, environ: dict[str, str] | None = None) -> str:
    """The webhook's URL from its environment variable or file. http:// is refused except to this machine (the
    URL is a secret, often a token in its path)."""
    env = os.environ if environ is None else environ
    if settings.url_env:
        url = env.get(settings.url_env, "").strip()
        if not url:
            raise WebhookError(f"${settings.url_env} is not set")
    else:
        try:
            url = Path(str(settings.url_file)).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise WebhookError(f"{settings.url_file}: cannot read it ({exc.strerror})") from None
        if not url:
            raise WebhookError(f"{settings.url_file} is empty")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError(f"{_source(settings)} does not hold an http(s) URL")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise WebhookError(f"{_source(settings)}: http:// would send the webhook's secret URL in clear; use https://")
    return url


def _source(settings: WebhookSettings) -> str:
    return f"${settings.url_env}" if settings.url_env else str(settings.url_file)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Delivery:
    """How sending went: ``delivered``, the attempts made, and the last outcome (``HTTP 200``, an error's name)."""

    delivered: bool
    attempts: int
    last: str


def _pace(seconds: float) -> None:
    """The backoff between two attempts (bounded by :data:`MAX_BACKOFF`)."""
    threading.Event().wait(seconds)


def deliver(url: str, body: dict[str, Any], *, timeout: float, attempts: int, backoff: float,
            post: Post = requests.post, pause: Pause = _pace) -> Delivery:
    """POST ``body`` as JSON; retry a connection error, 429 or 5xx, pausing ``backoff`` s, then twice as long...
    The outcome never holds the URL (errors are named by their type, responses by their status)."""
    last = "not sent"
    for attempt in range(1, attempts + 1):
        if attempt > 1:
            pause(min(MAX_BACKOFF, backoff * 2 ** (attempt - 2)))
        try:
            response = post(url, data=json.dumps(body).encode("utf-8"), timeout=timeout,
                            headers={"Content-Type": "application/json"}, allow_redirects=False)
        except requests.RequestException as exc:
            last = type(exc).__name__
            continue
        last = f"HTTP {response.status_code}"
        if 200 <= response.status_code < 300:
            return Delivery(True, attempt, last)
        if response.status_code != 429 and response.status_code < 500:
            return Delivery(False, attempt, last)  # the receiver refused it: sending it again cannot help
    return Delivery(False, attempts, last)


def notify_run(settings: NotifySettings, run_dir: Path, regressions: list[str] | None = None,
               redactor: Redactor | None = None, out: TextIO | None = None, post: Post = requests.post,
               pause: Pause = _pace, environ: dict[str, str] | None = None) -> Delivery | None:
    """Send the run's notification when the run is one of the configured occasions (``notify.webhook.when``);
    print one line on the outcome. Never raises: a notification cannot change a run's verdict."""
    stream = sys.stdout if out is None else out
    webhook = settings.webhook
    if webhook is None:
        return None
    try:
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        run_file = run_dir / RUN_FILE
        run = json.loads(run_file.read_text(encoding="utf-8")) if run_file.exists() else {}
        events = events_of(summary, regressions)
        if not set(events) & set(webhook.when):
            return None
        body = payload(summary, run, regressions, _report_link(webhook, run_dir, str(summary.get("run_id"))))
        if redactor is not None:
            body = redactor.redact_tree(body)
        if webhook.format == "slack":
            body = slack_payload(body)
        url = webhook_url(webhook, environ)
    except WebhookError as exc:
        print(f"notify:   webhook not sent: {exc} (the run's result stands)", file=stream, flush=True)
        return None
    except (OSError, ValueError) as exc:
        print(f"notify:   webhook not sent: the run's summary cannot be read ({type(exc).__name__})", file=stream)
        return None
    try:
        done = deliver(url, body, timeout=webhook.timeout, attempts=webhook.attempts, backoff=webhook.backoff,
                       post=post, pause=pause)
    except Exception as exc:  # a notification never ends a run: say what broke, without the URL
        done = Delivery(False, 0, type(exc).__name__)
    what = ", ".join(events)
    if done.delivered:
        print(f"notify:   webhook sent ({what}; {webhook.format})", file=stream, flush=True)
    else:
        print(f"notify:   webhook NOT delivered ({what}) after {done.attempts} attempt(s), last {done.last}; "
              "the run's result stands", file=stream, flush=True)
    return done
