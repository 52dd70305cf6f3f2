"""``report.html``: one self-contained page built from ``summary.json`` (inline CSS and SVG, no scripts,
nothing fetched), readable from ``file://`` and attachable anywhere."""

from __future__ import annotations

import datetime as _dt
import html
from pathlib import Path
from typing import Any

from support.reporting.charts import PHASE_LABELS, throughput_svg, timeline_svg
from support.reporting.scorecard import distributions_html, scorecard_html
from support.units import format_seconds

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
header{background:#1d2330;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:20px} header p{margin:4px 0 0;color:#c8cfdc;font-size:13px}
main{padding:20px 28px;max-width:1200px}
section{background:#fff;border-radius:8px;padding:16px 20px;margin:0 0 18px;box-shadow:0 1px 2px #0001}
h2{font-size:17px;margin:0 0 10px} h3{font-size:14px;margin:14px 0 6px;color:#444}
table{border-collapse:collapse;font-size:13px} td,th{padding:4px 10px;border-bottom:1px solid #eee;text-align:left}
th{color:#555;font-weight:600} .num{text-align:right;font-variant-numeric:tabular-nums}
.passed{color:#1a7f37;font-weight:600} .failed{color:#c62828;font-weight:600} .skipped{color:#8a8a8a}
.interrupted{color:#b35900;font-weight:600}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;color:#fff}
.badge.passed{background:#2da44e} .badge.failed{background:#d1242f} .badge.skipped{background:#8a8a8a}
.badge.interrupted{background:#b35900}
.verdict{margin:3px 0;font-size:13px} .muted{color:#777;font-size:12px}
.chart{margin:12px 0} .chart svg{max-width:100%;height:auto}
.cards{display:flex;gap:12px;flex-wrap:wrap} .card{background:#f5f6f8;border-radius:6px;padding:8px 14px}
.card b{display:block;font-size:18px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _when(epoch: Any) -> str:
    if not epoch:
        return "–"
    return _dt.datetime.fromtimestamp(float(epoch), _dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _scenario(index: int, s: dict[str, Any]) -> str:
    status = s.get("status", "failed")
    out = [f'<section id="s{index}"><h2><span class="badge {_e(status)}">{_e(status)}</span> {_e(s["name"])}</h2>',
           f'<p class="muted">{_e(s.get("feature", ""))} · {" ".join("@" + _e(t) for t in s.get("tags", []))}'
           f' · {format_seconds(s.get("duration_s"))}</p>']
    if s.get("error"):
        out.append(f'<p class="failed">{_e(s["error"])}</p>')
    delivery = s.get("delivery") or {}
    out.append('<div class="cards">')
    for label, value in (("RTO", format_seconds(s.get("rto_s"))), ("lost", s.get("lost")),
                         ("duplicated", s.get("duplicated")), ("unknown", s.get("unknown")),
                         ("loss window", format_seconds(delivery.get("loss_window_s")))):
        out.append(f'<div class="card"><b>{_e("–" if value is None else value)}</b>{_e(label)}</div>')
    out.append("</div>")
    phases = s.get("phases_s") or {}
    if phases:
        out.append("<h3>Recovery phases (seconds after the fault took effect)</h3><table><tr>")
        out.append("".join(f"<th>{_e(PHASE_LABELS.get(k, k))}</th>" for k in phases) + "</tr><tr>")
        out.append("".join(f'<td class="num">{format_seconds(v)}</td>' for v in phases.values()) + "</tr></table>")
    if delivery:
        out.append("<h3>Data (record by record)</h3><table><tr>")
        keys = [k for k, v in delivery.items() if not isinstance(v, dict)]
        out.append("".join(f"<th>{_e(k.replace('_', ' '))}</th>" for k in keys) + "</tr><tr>")
        out.append("".join(f'<td class="num">{_e(delivery[k])}</td>' for k in keys) + "</tr></table>")
    for chart in (timeline_svg(s), throughput_svg(s)):
        if chart is not None:
            out.append(f'<div class="chart">{chart}</div>')
    verdicts = s.get("verdicts") or []
    if verdicts:
        out.append("<h3>Verdicts</h3>")
        for v in verdicts:
            mark = "passed" if v["passed"] else "failed"
            out.append(f'<div class="verdict"><span class="{mark}">{"✔" if v["passed"] else "✘"} {_e(v["name"])}</span>'
                       f" — {_e(v['summary'])}</div>")
    out.append("</section>")
    return "".join(out)


def render(summary: dict[str, Any]) -> str:
    scenarios = summary.get("scenarios", [])
    totals = summary.get("totals", {})
    rows = "".join(
        f'<tr><td><a href="#s{i}">{_e(s["name"])}</a></td><td class="{_e(s["status"])}">{_e(s["status"])}</td>'
        f'<td class="num">{format_seconds(s.get("rto_s"))}</td><td class="num">{_e(s.get("lost", "–"))}</td>'
        f'<td class="num">{_e(s.get("duplicated", "–"))}</td><td class="num">{_e(s.get("unknown", "–"))}</td></tr>'
        for i, s in enumerate(scenarios)
    )
    status = _e(summary.get("status"))
    body = [
        f'<header><h1>Failover test report — <span class="{status}">{status}</span>'
        f'</h1><p>run {_e(summary.get("run_id"))} · target {_e(summary.get("target") or "–")} · config '
        f'{_e(summary.get("config") or "–")} · started {_when(summary.get("started_at"))}</p></header><main>',
        scorecard_html(summary),
        f'<section><h2>Overview</h2><div class="cards">'
        f'<div class="card"><b>{_e(totals.get("scenarios", 0))}</b>scenarios</div>'
        f'<div class="card"><b class="passed">{_e(totals.get("passed", 0))}</b>passed</div>'
        f'<div class="card"><b class="failed">{_e(totals.get("failed", 0))}</b>failed</div>'
        f'<div class="card"><b>{_e(totals.get("skipped", 0))}</b>skipped</div>'
        + (f'<div class="card"><b class="interrupted">{_e(totals["interrupted"])}</b>interrupted</div>'
           if totals.get("interrupted") else "") + '</div>'
        f'<h3>Scenarios</h3><table><tr><th>scenario</th><th>status</th><th>RTO</th><th>lost</th><th>duplicated</th>'
        f"<th>unknown</th></tr>{rows}</table></section>",
        distributions_html(summary),
        *(_scenario(i, s) for i, s in enumerate(scenarios)),
        "</main>",
    ]
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Failover test report '
            f'{_e(summary.get("run_id"))}</title><style>{CSS}</style></head><body>{"".join(body)}</body></html>\n')


def write_report(summary: dict[str, Any], run_dir: Path) -> Path:
    path = run_dir / "report.html"
    path.write_text(render(summary), encoding="utf-8")
    return path
