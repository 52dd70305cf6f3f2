"""``report.html``: one self-contained page built from ``summary.json`` (inline CSS and SVG, no scripts,
nothing fetched), readable from ``file://`` and attachable anywhere.

Every number is shown as :mod:`support.reporting.judged` says: with its limit and verdict where the scenario
judged it, "not checked" where it did not, "–" and the reason where it has no value. Instants are times of day
in UTC (the date once, in the header); tables scroll inside their card rather than overflow it.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from support.reporting.charts import PHASE_LABELS, throughput_svg, timeline_svg
from support.reporting.judged import (
    METRICS,
    Shown,
    bound_text,
    clock,
    expectation,
    phase_judgement,
    recovery_reason,
    shown,
)
from support.reporting.scorecard import distributions_html, scorecard_html
from support.units import format_seconds

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f5f6f8;color:#1d2330}
header{background:#1d2330;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:20px} header p{margin:4px 0 0;color:#c8cfdc;font-size:13px}
main{padding:20px 28px;max-width:1200px}
section{background:#fff;border-radius:8px;padding:16px 20px;margin:0 0 18px;box-shadow:0 1px 2px #0001;min-width:0;
overflow-wrap:break-word}
h2{font-size:17px;margin:0 0 10px} h3{font-size:14px;margin:14px 0 6px;color:#444}
table{border-collapse:collapse;font-size:13px;display:block;max-width:100%;overflow-x:auto}
td,th{padding:4px 10px;border-bottom:1px solid #eee;text-align:left;vertical-align:top;overflow-wrap:break-word}
th{white-space:nowrap} .scenarios td:first-child{overflow-wrap:anywhere;min-width:16em}
th{color:#555;font-weight:600} .num{text-align:right;font-variant-numeric:tabular-nums}
.kv{display:grid;grid-template-columns:repeat(auto-fill,minmax(210px,1fr));gap:0 18px;font-size:13px}
.kv div{display:flex;justify-content:space-between;gap:8px;border-bottom:1px solid #eee;padding:3px 0}
.kv span{color:#555} .kv b{font-weight:400;text-align:right;font-variant-numeric:tabular-nums}
.passed{color:#1a7f37;font-weight:600} .failed{color:#c62828;font-weight:600} .skipped{color:#8a8a8a}
.expected{background:#fff4ce;border-radius:3px;padding:0 4px}
.interrupted{color:#b35900;font-weight:600}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;color:#fff}
.badge.passed{background:#2da44e} .badge.failed{background:#d1242f} .badge.skipped{background:#8a8a8a}
.badge.interrupted{background:#b35900}
.verdict{margin:3px 0;font-size:13px} .muted{color:#777;font-size:12px}
.chart{margin:12px 0} .chart svg{max-width:100%;height:auto}
.cards{display:flex;gap:12px;flex-wrap:wrap} .card{background:#f5f6f8;border-radius:6px;padding:8px 14px;min-width:0;
max-width:100%;box-sizing:border-box}
.card b{display:block;font-size:18px}
small{display:block;color:#777;font-size:11px;font-weight:400;white-space:normal}
small.passed{color:#1a7f37} small.failed{color:#c62828}
"""

_NOTHING_LOST = "– (nothing lost)"


def _e(value: Any) -> str:
    return html.escape(str(value))


def _when(epoch: Any) -> str:
    return "–" if not epoch else clock(epoch, date=True)


def _judgement(show: Shown, note: bool = True) -> str:
    """The limit and verdict of a number (small, under it), and its note ("not checked", or why it is missing)."""
    out = ""
    if show.limit is not None:
        mark = "" if show.passed is None else "passed" if show.passed else "failed"
        out += f'<small class="{mark}">{"✔ " if show.passed else "✘ " if mark else ""}{_e(show.limit)}</small>'
    if note and show.note is not None:
        out += f"<small>{_e(show.note)}</small>"
    return out


def _number(record: dict[str, Any], metric: str, tag: str = "span") -> str:
    """A number with its limit and verdict, "not checked", or "–" and why."""
    show = shown(record, metric)
    return f"<{tag}>{_e(show.value)}</{tag}>{_judgement(show)}"


def _delivery_cell(delivery: dict[str, Any], key: str) -> str:
    """One delivery count as shown: instants as times, spans as seconds, "–" and why for what is missing."""
    value = delivery[key]
    lost = bool(delivery.get("lost"))
    if key in ("lost_first_sent", "lost_last_sent"):
        return _e(clock(value)) if value is not None else "– (not measured)" if lost else _NOTHING_LOST
    if key == "loss_window_s":
        return _e(format_seconds(value, 3)) if lost and value is not None else _NOTHING_LOST
    if isinstance(value, dict):
        return _e(", ".join(f"{k} {v}" for k, v in value.items()) or "none")
    return "–" if value is None else _e(value)


def _data_table(delivery: dict[str, Any]) -> str:
    """The delivery counts as a grid of quantity/value pairs: it fits its card however many fields it has."""
    cells = "".join(f'<div><span>{_e(key.removesuffix("_s").replace("_", " "))}</span>'
                    f"<b>{_delivery_cell(delivery, key)}</b></div>" for key in delivery)
    return f'<div class="kv">{cells}</div>'


def _bound(record: dict[str, Any], phase: str) -> str:
    """A phase's clock error bound, small under its value (nothing for a phase on the tester's own clock)."""
    text = bound_text(record, phase)
    return f'<small title="data center clock offset bound (support/clocks.py)">{_e(text)}</small>' if text else ""


def clocks_html(summary: dict[str, Any]) -> str:
    """The data centers' clock offsets from the tester's, at the start and end of the run, with their bounds."""
    clocks = summary.get("clocks") or {}
    if not clocks:
        return ""
    rows = []
    for dc, entry in sorted(clocks.items()):
        cells = []
        for when in ("start", "end"):
            e = entry.get(when)
            cells.append("–" if not e else f"{e['offset_s']:+.4f} s ± {1000 * e['bound_s']:.1f} ms "
                                            f"<small>{_e(e.get('source', ''))}</small>")
        drift = entry.get("drift_s")
        rows.append(f"<tr><td>{_e(dc)}</td><td class=\"num\">{cells[0]}</td><td class=\"num\">{cells[1]}</td>"
                    f"<td class=\"num\">{'–' if drift is None else f'{1000 * drift:.1f} ms'}</td></tr>")
    return ("<section><h2>Clocks</h2><p class=\"muted\">Each data center's clock minus the tester's, estimated "
            "NTP-style from the Date headers of its REST API and data exchange; its stamps are put on the tester's "
            "timeline by the start offset, and phases that use them state the bound.</p><table><tr><th>data "
            "center</th><th>start</th><th>end</th><th>drift</th></tr>" + "".join(rows) + "</table></section>")


def _scenario(index: int, s: dict[str, Any]) -> str:
    status = s.get("status", "failed")
    out = [f'<section id="s{index}"><h2><span class="badge {_e(status)}">{_e(status)}</span> {_e(s["name"])}</h2>',
           f'<p class="muted">{_e(s.get("feature", ""))} · {" ".join("@" + _e(t) for t in s.get("tags", []))}'
           f' · started {_e(clock(s.get("started_at")))} · {format_seconds(s.get("duration_s"))}</p>']
    if s.get("error"):
        out.append(f'<p class="failed">{_e(s["error"])}</p>')
    delivery = s.get("delivery") or {}
    out.append('<div class="cards">')
    for metric, (label, _verdicts, _unit) in METRICS.items():
        out.append(f'<div class="card">{_number(s, metric, "b")}{_e(label)}</div>')
    out.append("</div>")
    phases = s.get("phases_s") or {}
    if phases:
        out.append("<h3>Recovery phases (seconds after the fault took effect)</h3><table><tr>")
        out.append("".join(f"<th>{_e(PHASE_LABELS.get(k, k))}</th>" for k in phases) + "</tr><tr>")
        out.append("".join(f'<td class="num">{format_seconds(v)}{_bound(s, k)}{_judgement(phase_judgement(s, k))}</td>'
                           if v is not None else f'<td class="num">–<small>{_e(recovery_reason(s, k))}</small>'
                           f"{_judgement(phase_judgement(s, k), note=False)}</td>"
                           for k, v in phases.items()) + "</tr></table>")
    if delivery:
        out.append("<h3>Data (record by record)</h3>" + _data_table(delivery))
    for chart in (timeline_svg(s), throughput_svg(s)):
        if chart is not None:
            out.append(f'<div class="chart">{chart}</div>')
    verdicts = s.get("verdicts") or []
    if verdicts:
        out.append("<h3>Verdicts</h3>")
        for v in verdicts:
            mark = "passed" if v["passed"] else "failed"
            expected = expectation(v)
            note = "" if expected is None else f' <span class="expected">expected finding: {_e(expected)}</span>'
            out.append(f'<div class="verdict"><span class="{mark}">{"✔" if v["passed"] else "✘"} {_e(v["name"])}</span>'
                       f"{note} — {_e(v['summary'])}</div>")
    out.append("</section>")
    return "".join(out)


def render(summary: dict[str, Any]) -> str:
    scenarios = summary.get("scenarios", [])
    totals = summary.get("totals", {})
    rows = "".join(
        f'<tr><td><a href="#s{i}">{_e(s["name"])}</a></td><td class="{_e(s["status"])}">{_e(s["status"])}</td>'
        + "".join(f'<td class="num">{_number(s, metric)}</td>' for metric in ("rto", "lost", "duplicated", "unknown"))
        + "</tr>"
        for i, s in enumerate(scenarios)
    )
    status = _e(summary.get("status"))
    finished = f" · finished {_e(clock(summary['finished_at']))}" if summary.get("finished_at") else ""
    body = [
        f'<header><h1>Failover test report — <span class="{status}">{status}</span>'
        f'</h1><p>run {_e(summary.get("run_id"))} · target {_e(summary.get("target") or "–")} · config '
        f'{_e(summary.get("config") or "–")} · started {_when(summary.get("started_at"))}{finished}</p></header><main>',
        scorecard_html(summary),
        f'<section><h2>Overview</h2><div class="cards">'
        f'<div class="card"><b>{_e(totals.get("scenarios", 0))}</b>scenarios</div>'
        f'<div class="card"><b class="passed">{_e(totals.get("passed", 0))}</b>passed</div>'
        f'<div class="card"><b class="failed">{_e(totals.get("failed", 0))}</b>failed</div>'
        f'<div class="card"><b>{_e(totals.get("skipped", 0))}</b>skipped</div>'
        + (f'<div class="card"><b class="interrupted">{_e(totals["interrupted"])}</b>interrupted</div>'
           if totals.get("interrupted") else "") + '</div>'
        f'<h3>Scenarios</h3><table class="scenarios"><tr><th>scenario</th><th>status</th><th>RTO</th><th>lost</th>'
        f"<th>duplicated</th><th>unknown</th></tr>{rows}</table></section>",
        distributions_html(summary),
        clocks_html(summary),
        *(_scenario(i, s) for i, s in enumerate(scenarios)),
        "</main>",
    ]
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Failover test report '
            f'{_e(summary.get("run_id"))}</title><style>{CSS}</style></head><body>{"".join(body)}</body></html>\n')


def write_report(summary: dict[str, Any], run_dir: Path) -> Path:
    path = run_dir / "report.html"
    path.write_text(render(summary), encoding="utf-8")
    return path
