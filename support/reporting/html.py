"""``report.html``: one self-contained page built from ``summary.json`` (inline CSS and SVG, no scripts,
nothing fetched), readable from ``file://`` and attachable anywhere."""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"]
PHASE_LABELS = {
    "down_detected": "DOWN detected",
    "takeover": "takeover",
    "first_output": "first output",
    "throughput_recovered": "throughput back",
}

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
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;color:#fff}
.badge.passed{background:#2da44e} .badge.failed{background:#d1242f} .badge.skipped{background:#8a8a8a}
.verdict{margin:3px 0;font-size:13px} .muted{color:#777;font-size:12px} svg text{font-size:11px;fill:#444}
.cards{display:flex;gap:12px;flex-wrap:wrap} .card{background:#f5f6f8;border-radius:6px;padding:8px 14px}
.card b{display:block;font-size:18px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _secs(value: Any) -> str:
    return "–" if value is None else f"{float(value):.2f} s"


def _when(epoch: Any) -> str:
    if not epoch:
        return "–"
    return _dt.datetime.fromtimestamp(float(epoch), _dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def line_chart(
    series: dict[str, Sequence[float]],
    *,
    width: int = 1000,
    height: int = 240,
    step: float = 1.0,
    shade: tuple[float, float | None] | None = None,
    marks: dict[str, float] | None = None,
    band: tuple[float, float] | None = None,
    y_label: str = "tuples/s",
) -> str:
    """An inline SVG line chart: x in seconds, one line per series, an optional shaded interval (the fault),
    vertical marks (phases) and a horizontal band (the baseline)."""
    left, right, top, bottom = 48, 12, 26, 30
    n = max((len(v) for v in series.values()), default=0)
    if n == 0:
        return '<p class="muted">no data</p>'
    x_max = max(n * step, 1.0)
    y_max = max([max(v) if v else 0 for v in series.values()] + [band[1] if band else 0, 1])
    y_max *= 1.1
    plot_w, plot_h = width - left - right, height - top - bottom

    def x(t: float) -> float:
        return left + plot_w * t / x_max

    def y(v: float) -> float:
        return top + plot_h * (1 - v / y_max)

    parts = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" xmlns="http://www.w3.org/2000/svg">']
    if band is not None:
        parts.append(f'<rect x="{left}" y="{y(band[1]):.1f}" width="{plot_w}" height="{y(band[0]) - y(band[1]):.1f}"'
                     ' fill="#2da44e" opacity="0.12"><title>baseline band</title></rect>')
    if shade is not None:
        start, end = shade
        stop = x_max if end is None else end
        parts.append(f'<rect x="{x(start):.1f}" y="{top}" width="{max(x(stop) - x(start), 2):.1f}" height="{plot_h}"'
                     ' fill="#d1242f" opacity="0.12"><title>fault</title></rect>')
        parts.append(f'<text x="{x(start) + 3:.1f}" y="{top + 11}">fault</text>')
    for tick in range(6):
        value = y_max * tick / 5
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:.0f}</text>')
    for tick in range(11):
        t = x_max * tick / 10
        parts.append(f'<text x="{x(t):.1f}" y="{height - 10}" text-anchor="middle">{t:.0f}s</text>')
    parts.append(f"<text x=\"4\" y=\"12\">{_e(y_label)}</text>")
    for index, (name, values) in enumerate(series.items()):
        color = COLORS[index % len(COLORS)]
        points = " ".join(f"{x((i + 0.5) * step):.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}">'
                     f"<title>{_e(name)}</title></polyline>")
        legend_y = top + 4 + 15 * index
        parts.append(f'<rect x="{width - right - 110}" y="{legend_y}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{width - right - 95}" y="{top + 13 + 15 * index}">{_e(name)}</text>')
    for offset, (name, t) in enumerate(sorted((marks or {}).items(), key=lambda kv: kv[1])):
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top}" y2="{top + plot_h}" stroke="#555"'
                     ' stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{x(t) + 3:.1f}" y="{top + 24 + 12 * offset}">{_e(PHASE_LABELS.get(name, name))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _scenario(index: int, s: dict[str, Any]) -> str:
    status = s.get("status", "failed")
    out = [f'<section id="s{index}"><h2><span class="badge {_e(status)}">{_e(status)}</span> {_e(s["name"])}</h2>',
           f'<p class="muted">{_e(s.get("feature", ""))} · {" ".join("@" + _e(t) for t in s.get("tags", []))}'
           f' · {_secs(s.get("duration_s"))}</p>']
    if s.get("error"):
        out.append(f'<p class="failed">{_e(s["error"])}</p>')
    delivery = s.get("delivery") or {}
    out.append('<div class="cards">')
    for label, value in (("RTO", _secs(s.get("rto_s"))), ("lost", s.get("lost")), ("duplicated", s.get("duplicated")),
                         ("unknown", s.get("unknown")), ("loss window", _secs(delivery.get("loss_window_s")))):
        out.append(f'<div class="card"><b>{_e("–" if value is None else value)}</b>{_e(label)}</div>')
    out.append("</div>")
    phases = s.get("phases_s") or {}
    if phases:
        out.append("<h3>Recovery phases (seconds after the fault took effect)</h3><table><tr>")
        out.append("".join(f"<th>{_e(PHASE_LABELS.get(k, k))}</th>" for k in phases) + "</tr><tr>")
        out.append("".join(f'<td class="num">{_secs(v)}</td>' for v in phases.values()) + "</tr></table>")
    if delivery:
        out.append("<h3>Data (record by record)</h3><table><tr>")
        keys = [k for k, v in delivery.items() if not isinstance(v, dict)]
        out.append("".join(f"<th>{_e(k.replace('_', ' '))}</th>" for k in keys) + "</tr><tr>")
        out.append("".join(f'<td class="num">{_e(delivery[k])}</td>' for k in keys) + "</tr></table>")
    timeline = s.get("timeline")
    if timeline:
        fault = timeline.get("fault")
        shade = (fault["start"], fault.get("end")) if fault else None
        out.append("<h3>Output per data center (tuples/s), fault shaded, phases marked</h3>")
        out.append(line_chart(timeline["output_per_dc"], step=timeline.get("bucket_s", 1.0), shade=shade,
                              marks=timeline.get("marks")))
        band = None
        baseline = s.get("baseline") or timeline.get("baseline")
        if baseline and baseline.get("mean"):
            spread = float(baseline.get("stddev") or 0.0)
            band = (max(0.0, float(baseline["mean"]) - 2 * spread), float(baseline["mean"]) + 2 * spread)
        total = [sum(v) for v in zip(*timeline["output_per_dc"].values(), strict=True)] \
            if timeline["output_per_dc"] else []
        out.append("<h3>Throughput: input accepted, refused, and total output against the baseline</h3>")
        out.append(line_chart({"accepted": timeline["accepted"], "refused": timeline["refused"], "output": total},
                              step=timeline.get("bucket_s", 1.0), shade=shade, band=band))
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
        f'<td class="num">{_secs(s.get("rto_s"))}</td><td class="num">{_e(s.get("lost", "–"))}</td>'
        f'<td class="num">{_e(s.get("duplicated", "–"))}</td><td class="num">{_e(s.get("unknown", "–"))}</td></tr>'
        for i, s in enumerate(scenarios)
    )
    status = _e(summary.get("status"))
    body = [
        f'<header><h1>Failover test report — <span class="{status}">{status}</span>'
        f'</h1><p>run {_e(summary.get("run_id"))} · target {_e(summary.get("target") or "–")} · config '
        f'{_e(summary.get("config") or "–")} · started {_when(summary.get("started_at"))}</p></header><main>',
        f'<section><h2>Overview</h2><div class="cards">'
        f'<div class="card"><b>{_e(totals.get("scenarios", 0))}</b>scenarios</div>'
        f'<div class="card"><b class="passed">{_e(totals.get("passed", 0))}</b>passed</div>'
        f'<div class="card"><b class="failed">{_e(totals.get("failed", 0))}</b>failed</div>'
        f'<div class="card"><b>{_e(totals.get("skipped", 0))}</b>skipped</div></div>'
        f'<h3>Scenarios</h3><table><tr><th>scenario</th><th>status</th><th>RTO</th><th>lost</th><th>duplicated</th>'
        f"<th>unknown</th></tr>{rows}</table></section>",
        *(_scenario(i, s) for i, s in enumerate(scenarios)),
        "</main>",
    ]
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Failover test report '
            f'{_e(summary.get("run_id"))}</title><style>{CSS}</style></head><body>{"".join(body)}</body></html>\n')


def write_report(summary: dict[str, Any], run_dir: Path) -> Path:
    path = run_dir / "report.html"
    path.write_text(render(summary), encoding="utf-8")
    return path
