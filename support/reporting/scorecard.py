"""The distributions and gates of a run as people see them: the scorecard and the distribution plots of
``report.html`` (inline SVG, nothing fetched), the gate lines of the console, and one Allure test per scenario
with its distribution attached. Everything is drawn from ``summary.json``
(:mod:`support.reporting.distributions` computes it)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from allure_commons.utils import md5

from support.config.gates import METRICS
from support.reporting.charts import PHASE_LABELS, STYLE
from support.reporting.distributions import duration_metrics
from support.units import format_seconds

#: how the reports name each metric of a distribution
METRIC_LABELS: dict[str, str] = {"rto_s": "RTO", **{f"{k}_s": v for k, v in PHASE_LABELS.items()},
                                 "loss_window_s": "loss window", "state_loss_window_s": "state loss window",
                                 "lost": "lost", "duplicated": "duplicated", "unknown": "unknown"}
COUNT_METRICS = [METRICS[m] for m in ("lost", "duplicated", "unknown")]
MARKS = {"p50": "#1f77b4", "p95": "#ff7f0e", "max": "#d1242f"}
_STATUS_MARK = {"met": "✔ met", "failed": "✘ FAILED", "not judged": "? NOT JUDGED", "no scenario": "– no scenario"}
_STATUS_CLASS = {"met": "passed", "failed": "failed", "not judged": "failed", "no scenario": "skipped"}


def _e(value: Any) -> str:
    return escape(str(value))


def _value(key: str, value: float | None, places: int | None = 2) -> str:
    if value is None:
        return "–"
    return f"{value:g}" if key in COUNT_METRICS else format_seconds(value, places)


def _score_text(score: Mapping[str, Any]) -> str:
    value = score.get("value")
    return "–" if value is None else f"{value:g}"


# -- console ------------------------------------------------------------------------------------------------------

def gates_text(summary: Mapping[str, Any]) -> str:
    """The gates of the run for the console (empty without gates): the score, then one line per gate."""
    objectives = summary.get("objectives") or []
    if not objectives:
        return ""
    score = summary.get("score") or {}
    lines = [f"gates:    resilience score {_score_text(score)} ({score.get('met', 0)} of {score.get('judged', 0)} "
             f"judged gates met)"]
    width = max(len(_STATUS_MARK[o["status"]]) for o in objectives)
    for o in objectives:
        lines.append(f"  {_STATUS_MARK[o['status']].ljust(width)}  [{o['severity']}] {o['name']}: {o['sentence']}")
    return "\n".join(lines)


# -- SVG ----------------------------------------------------------------------------------------------------------

def _nice(top: float) -> tuple[float, float]:
    """(axis maximum, tick step) for values up to ``top``."""
    top = max(top, 1e-9)
    raw = top / 5
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return math.ceil(top / step) * step, step


def strip_svg(rows: Sequence[tuple[str, Mapping[str, Any]]], *, title: str, unit: str, width: int = 760) -> str | None:
    """A standalone SVG strip plot: one row per metric (label, distribution), one dot per drill, the p50, p95 and
    max marked; None when no row has a sample."""
    rows = [(label, d) for label, d in rows if d.get("samples")]
    if not rows:
        return None
    left, right, top, row_h = 190, 30, 46, 34
    plot_w = width - left - right
    height = top + row_h * len(rows) + 40
    peak = max(max(d["samples"]) for _, d in rows)
    x_max, step = _nice(peak * 1.1 if peak > 0 else 1.0)

    def x(v: float) -> float:
        return left + plot_w * min(max(v, 0.0), x_max) / x_max

    def show(v: float) -> str:
        return f"{v:g}" if unit == "tuples" else format_seconds(v)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}"'
             f' height="{height}" role="img" class="distribution"><title>{_e(title)}</title><style>{STYLE}</style>',
             f'<rect width="{width}" height="{height}" fill="#fff"/>',
             f'<text class="chart-title" x="{left}" y="20">{_e(title)}</text>']
    legend = left
    for name, color in (("drill", "#555"), *MARKS.items()):
        shape = (f'<circle cx="{legend + 5}" cy="34" r="4" fill="{color}" fill-opacity="0.6"/>' if name == "drill"
                 else f'<line x1="{legend + 5}" x2="{legend + 5}" y1="27" y2="41" stroke="{color}" stroke-width="3"/>')
        parts.append(f'{shape}<text x="{legend + 14}" y="38">{name}</text>')
        legend += 70
    bottom = top + row_h * len(rows)
    tick = 0.0
    while tick <= x_max + 1e-9:
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top}" y2="{bottom}" stroke="#eee"/>'
                     f'<text x="{x(tick):.1f}" y="{bottom + 16}" text-anchor="middle">{tick:g}</text>')
        tick += step
    parts.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 4}" text-anchor="middle">{_e(unit)}</text>')
    for index, (label, d) in enumerate(rows):
        middle = top + row_h * index + row_h / 2
        parts.append(f'<g class="row" data-metric="{_e(label)}"><text x="{left - 10}" y="{middle + 4:.1f}"'
                     f' text-anchor="end">{_e(label)} (n={d["n"]})</text>'
                     f'<line x1="{left}" x2="{left + plot_w}" y1="{middle:.1f}" y2="{middle:.1f}" stroke="#ddd"/>')
        drills = d.get("drills") or list(range(1, len(d["samples"]) + 1))
        for i, (drill, v) in enumerate(zip(drills, d["samples"], strict=False)):
            jitter = ((i % 5) - 2) * 3
            parts.append(f'<circle class="drill" cx="{x(v):.1f}" cy="{middle + jitter:.1f}" r="5" fill="#555"'
                         f' fill-opacity="0.6"><title>drill {drill}: {_e(show(v))}</title></circle>')
        for stat, color in MARKS.items():
            v = d.get(stat)
            if v is None:
                continue
            ci = d.get(f"{stat}_ci95")
            ci_text = f" (95 % CI {show(ci[0])} – {show(ci[1])})" if ci else ""
            parts.append(f'<line class="mark {stat}" x1="{x(v):.1f}" x2="{x(v):.1f}" y1="{middle - 12:.1f}"'
                         f' y2="{middle + 12:.1f}" stroke="{color}" stroke-width="3"><title>{stat} {_e(show(v))}'
                         f"{_e(ci_text)}</title></line>")
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def distribution_svgs(dist: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The plots of one scenario's distribution: (name, SVG) for the durations and for the counts."""
    metrics = dist.get("metrics") or {}
    out = []
    for name, keys, unit in (("durations", duration_metrics(), "seconds (phases and RTO: after the fault took effect)"),
                             ("counts", COUNT_METRICS, "tuples")):
        svg = strip_svg([(METRIC_LABELS[k], metrics[k]) for k in keys if k in metrics],
                        title=f"{name.capitalize()} over {dist.get('drills', 0)} drill(s)", unit=unit)
        if svg is not None:
            out.append((name, svg))
    return out


# -- report.html ----------------------------------------------------------------------------------------------------

def scorecard_html(summary: Mapping[str, Any]) -> str:
    """The section report.html opens with: the resilience score, then each gate against its worst value."""
    objectives = summary.get("objectives") or []
    score = summary.get("score") or {}
    out = ['<section id="scorecard"><h2>Scorecard</h2><div class="cards">',
           f'<div class="card"><b class="score">{_e(_score_text(score))}</b>resilience score</div>',
           f'<div class="card"><b>{_e(summary.get("repeat", 1))}</b>drill(s) per scenario</div></div>']
    if not objectives:
        out.append('<p class="muted">No gates in the config: the score is "–". State objectives on the '
                   "distributions under <code>gates:</code> (docs/repeats.md).</p></section>")
        return "".join(out)
    out.append(f'<p class="muted">Score: {_e(score.get("definition", ""))}.</p>')
    out.append("<table><tr><th>gate</th><th>severity</th><th>limit</th><th>worst</th><th>margin</th>"
               "<th>result</th><th></th></tr>")
    for o in objectives:
        key = METRICS[o["metric"]]
        status = str(o["status"])
        out.append(f'<tr class="objective" data-status="{_e(status)}"><td>{_e(o["name"])}</td>'
                   f'<td>{_e(o["severity"])}</td><td class="num">{_e(_value(key, o["limit"], None))}</td>'
                   f'<td class="num">{_e(_value(key, o.get("worst")))}</td>'
                   f'<td class="num">{_e(_value(key, o.get("margin")))}</td>'
                   f'<td class="{_STATUS_CLASS[status]}">{_e(_STATUS_MARK[status])}</td>'
                   f'<td>{_e(o["sentence"])}</td></tr>')
    out.append("</table></section>")
    return "".join(out)


def _ci(d: Mapping[str, Any], key: str, stat: str) -> str:
    ci = d.get(f"{stat}_ci95")
    value = _value(key, d.get(stat))
    if not ci or ci[0] == ci[1]:
        return value
    return f'{value} <span class="muted">[{_value(key, ci[0])} – {_value(key, ci[1])}]</span>'


def distributions_html(summary: Mapping[str, Any]) -> str:
    """One section of distributions (a table and the plots per scenario), or "" when no scenario had more than
    one drill."""
    dists = summary.get("distributions") or []
    if not any(int(d.get("drills", 0)) > 1 for d in dists):
        return ""
    out = ['<section id="distributions"><h2>Distributions over the drills</h2><p class="muted">One point per '
           "drill; p50, p95 and max marked; in brackets their bootstrap 95 % confidence interval.</p>"]
    for d in dists:
        out.append(f'<div class="distribution" data-scenario="{_e(d["scenario"])}"><h3>{_e(d["name"])} · '
                   f'{_e(d["drills"])} drill(s), {_e(d["measured"])} measured</h3>')
        out.append("<table><tr><th>metric</th><th>n</th><th>p50</th><th>p95</th><th>max</th><th>samples</th></tr>")
        for key, m in d["metrics"].items():
            if not m["n"]:
                continue
            samples = ", ".join(_value(key, v) for v in m["samples"])
            out.append(f'<tr><td>{_e(METRIC_LABELS.get(key, key))}</td><td class="num">{m["n"]}</td>'
                       f'<td class="num">{_ci(m, key, "p50")}</td><td class="num">{_ci(m, key, "p95")}</td>'
                       f'<td class="num">{_ci(m, key, "max")}</td><td>{_e(samples)}</td></tr>')
        out.append("</table>")
        for _, svg in distribution_svgs(d):
            out.append(f'<div class="chart">{svg}</div>')
        out.append("</div>")
    out.append("</section>")
    return "".join(out)


# -- Allure ---------------------------------------------------------------------------------------------------------

def _scenario_gates(dist: Mapping[str, Any], objectives: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The gates that select this scenario, each with this scenario's value and whether it is within the limit."""
    from support.config.gates import Gate

    out = []
    for o in objectives:
        gate = Gate.from_json(o)
        if not gate.selects(str(dist["scenario"]), dist.get("tags") or []):
            continue
        value = dist["metrics"][gate.key][gate.stat]
        out.append({"name": gate.name, "severity": gate.severity, "limit": gate.limit, "value": value,
                    "met": None if value is None else value <= gate.limit})
    return out


def distribution_results(summary: Mapping[str, Any]) -> list[tuple[dict[str, Any], list[tuple[str, str, str]]]]:
    """One Allure test per scenario (result, attachments as (name, body, extension)): passed when every gate
    that selects it holds for it, failed when one does not, broken when one measured nothing. None without
    repeats and gates."""
    dists = summary.get("distributions") or []
    objectives = summary.get("objectives") or []
    if int(summary.get("repeat") or 1) <= 1 and not objectives:
        return []
    out = []
    stop = int(float(summary.get("finished_at") or time.time()) * 1000)
    for d in dists:
        gates = _scenario_gates(d, objectives)
        failed = [g for g in gates if g["met"] is False]
        unmeasured = [g for g in gates if g["met"] is None]
        status = "failed" if failed else "broken" if unmeasured else "passed"
        message = "; ".join([*(f"{g['name']}: {g['value']:g} over {g['limit']:g}" for g in failed),
                             *(f"{g['name']}: not measured" for g in unmeasured)])
        csv = ["metric,drill,value"] + [f"{key},{drill},{value}" for key, m in d["metrics"].items()
                                        for drill, value in zip(m["drills"], m["samples"], strict=False)]
        attachments = [(f"distribution plot ({name})", svg, "svg") for name, svg in distribution_svgs(d)]
        attachments += [("distribution", json.dumps({**d, "gates": gates}, indent=2), "json"),
                        ("samples", "\n".join(csv) + "\n", "csv")]
        uuid = md5(str(summary.get("run_id")), "distribution", str(d["scenario"]))
        result = {"uuid": uuid, "historyId": md5("distribution", str(d["scenario"])),
                  "testCaseId": md5("distribution", str(d["scenario"])),
                  "fullName": f"distribution: {d['scenario']}", "name": f"Distribution: {d['name']}",
                  "status": status, "statusDetails": {"message": message} if message else {}, "stage": "finished",
                  "start": stop, "stop": stop,
                  "description": f"{d['drills']} drill(s) of {d['scenario']}: samples, p50/p95/max with their "
                                 "bootstrap 95 % confidence intervals, and the gates that select it.",
                  "labels": [{"name": "feature", "value": str(d.get("feature", ""))},
                             {"name": "suite", "value": "Distributions"},
                             {"name": "epic", "value": "Cross-DC failover"},
                             *({"name": "tag", "value": str(t)} for t in d.get("tags") or [])],
                  "parameters": [{"name": "drills", "value": str(d["drills"])}], "steps": []}
        out.append((result, attachments))
    return out


_MIME = {"svg": "image/svg+xml", "json": "application/json", "csv": "text/csv"}


def write_distribution_results(summary: Mapping[str, Any], results: Path) -> int:
    """Write :func:`distribution_results` into the Allure results folder (same names on a re-judgement: they
    replace the earlier ones); how many tests."""
    if not results.is_dir():
        return 0
    tests = distribution_results(summary)
    for result, attachments in tests:
        result["attachments"] = []
        for index, (name, body, ext) in enumerate(attachments):
            source = f"{result['uuid']}-{index}-attachment.{ext}"
            (results / source).write_text(body, encoding="utf-8")
            result["attachments"].append({"name": name, "source": source, "type": _MIME[ext]})
        (results / f"{result['uuid']}-result.json").write_text(json.dumps(result), encoding="utf-8")
    return len(tests)


__all__ = ["distribution_results", "distributions_html", "gates_text", "scorecard_html", "strip_svg",
           "write_distribution_results"]
