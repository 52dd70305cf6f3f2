"""Charts of one scenario as complete, standalone SVG documents (no scripts, nothing fetched).

The same SVG is inlined in ``report.html`` and attached to the Allure report as an image, so it carries its own
size, style and ``xmlns``. Each chart is drawn from the scenario record (``record["timeline"]``, built by
:mod:`support.reporting.timeline`, plus ``rto_s`` and ``baseline``); a record without traffic gives no chart.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from support.units import format_seconds

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"]
THROUGHPUT_COLORS = {"accepted": "#1f77b4", "refused": "#d1242f", "output": "#2ca02c"}
PHASE_LABELS = {
    "down_detected": "DOWN detected",
    "takeover": "takeover",
    "first_output": "first output",
    "throughput_recovered": "throughput back",
}
STYLE = ("text{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:13px;fill:#444}"
         ".chart-title{font-size:15px;font-weight:600;fill:#1d2330}"
         ".halo{paint-order:stroke;stroke:#fff;stroke-width:3px;stroke-linejoin:round}")
_STEPS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)


def _e(value: Any) -> str:
    return escape(str(value))


def _nice_step(span: float, ticks: int) -> float:
    """A 1/2/5 x 10^k step that divides ``span`` into at most ``ticks`` intervals."""
    raw = max(span, 1e-9) / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def _time_step(span: float, ticks: int = 12) -> float:
    return next((s for s in _STEPS if span / s <= ticks), math.ceil(span / ticks))


def line_chart(
    series: Mapping[str, Sequence[float]],
    *,
    title: str = "",
    width: int = 1000,
    height: int = 300,
    step: float = 1.0,
    colors: Mapping[str, str] | None = None,
    shade: tuple[float, float | None] | None = None,
    shade_label: str = "fault",
    marks: Mapping[str, float] | None = None,
    mark_labels: Mapping[str, str] | None = None,
    span: tuple[float, float, str] | None = None,
    band: tuple[float, float] | None = None,
    band_label: str = "baseline",
    levels: Mapping[str, float] | None = None,
    y_label: str = "tuples/s",
) -> str | None:
    """A standalone SVG line chart, or None without data.

    x is in seconds (value ``i`` of a series at the middle of bucket ``i`` of ``step`` seconds), one polyline per
    series, an optional shaded interval (``end`` None: to the end of the chart), vertical dashed marks labelled
    ``mark_labels[name]`` (default: the phase's name),
    a labelled horizontal interval under the plot (``span``: start, end, label), a horizontal band (at least 4 px
    thick, so that a steady baseline stays visible) and dashed horizontal ``levels`` labelled with their name.
    """
    n = max((len(v) for v in series.values()), default=0)
    if n == 0:
        return None
    left, right, top, bottom = 60, 150, 50, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    instants = [*(marks or {}).values(), *(v for v in (shade or ()) if v is not None), *(span[:2] if span else ())]
    x_max = max([n * step, 1.0, *instants])
    y_top = max([max(v) if v else 0 for v in series.values()] + [band[1] if band else 0, 1,
                 *(levels or {}).values()]) * 1.1
    y_step = _nice_step(y_top, 5)
    y_max = math.ceil(y_top / y_step) * y_step

    def x(t: float) -> float:
        return left + plot_w * min(max(t, 0.0), x_max) / x_max

    def y(v: float) -> float:
        return top + plot_h * (1 - v / y_max)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}"'
             f' height="{height}" role="img"><title>{_e(title or y_label)}</title><style>{STYLE}</style>',
             f'<rect width="{width}" height="{height}" fill="#fff"/>']
    if title:
        parts.append(f'<text class="chart-title" x="{left}" y="20">{_e(title)}</text>')
    if band is not None:
        thick = max(y(band[0]) - y(band[1]), 4.0)
        middle = (y(band[0]) + y(band[1])) / 2
        parts.append(f'<rect class="baseline" x="{left}" y="{middle - thick / 2:.1f}" width="{plot_w}"'
                     f' height="{thick:.1f}" fill="#2da44e" opacity="0.25">'
                     f"<title>{_e(band_label)}: {band[0]:.0f}–{band[1]:.0f}</title></rect>")
    if shade is not None:
        start, end = shade
        stop = x_max if end is None else end
        parts.append(f'<rect class="fault" x="{x(start):.1f}" y="{top}" width="{max(x(stop) - x(start), 2):.1f}"'
                     f' height="{plot_h}" fill="#d1242f" opacity="0.13"><title>{_e(shade_label)}</title></rect>')
        parts.append(f'<text x="{x(start):.1f}" y="{top - 4}" fill="#a11">{_e(shade_label)}</text>')
    value = 0.0
    while value <= y_max + 1e-9:
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#eee"/>'
                     f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:g}</text>')
        value += y_step
    t_step = _time_step(x_max)
    t = 0.0
    while t <= x_max + 1e-9:
        parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}"'
                     f' stroke="#999"/><text x="{x(t):.1f}" y="{top + plot_h + 18}" text-anchor="middle">{t:g}s</text>')
        t += t_step
    parts.append(f'<line class="x-axis" x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" y2="{top + plot_h}"'
                 ' stroke="#999"/>')
    parts.append(f'<text x="{left + plot_w / 2:.0f}" y="{height - 6}" text-anchor="middle">seconds since traffic'
                 f' started</text><text x="12" y="{top + plot_h / 2:.0f}" text-anchor="middle"'
                 f' transform="rotate(-90 12 {top + plot_h / 2:.0f})">{_e(y_label)}</text>')
    for index, (name, values) in enumerate(series.items()):
        color = (colors or {}).get(name, COLORS[index % len(COLORS)])
        points = " ".join(f"{x((i + 0.5) * step):.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline class="series" fill="none" stroke="{color}" stroke-width="2"'
                     f' stroke-linejoin="round" points="{points}"><title>{_e(name)}</title></polyline>')
        legend_x, legend_y = left + plot_w + 14, top + 4 + 18 * index
        parts.append(f'<rect x="{legend_x}" y="{legend_y}" width="11" height="11" fill="{color}"/>'
                     f'<text x="{legend_x + 16}" y="{legend_y + 10}">{_e(name)}</text>')
    if band is not None:
        legend_y = top + 4 + 18 * len(series)
        parts.append(f'<rect x="{left + plot_w + 14}" y="{legend_y}" width="11" height="11" fill="#2da44e"'
                     f' opacity="0.35"/><text x="{left + plot_w + 30}" y="{legend_y + 10}">{_e(band_label)}</text>')
    for name, level in (levels or {}).items():
        parts.append(f'<line class="level" x1="{left}" x2="{left + plot_w}" y1="{y(level):.1f}" y2="{y(level):.1f}"'
                     f' stroke="#2da44e" stroke-dasharray="6 4"><title>{_e(name)}</title></line>'
                     f'<text class="halo" x="{left + 4}" y="{y(level) + 15:.1f}" fill="#1a7f37">{_e(name)}</text>')
    groups: list[list[tuple[str, float]]] = []  # marks closer than 4 px share one label
    for name, when in sorted((marks or {}).items(), key=lambda kv: kv[1]):
        label = (mark_labels or {}).get(name) or PHASE_LABELS.get(name, name)
        at = x(when)
        parts.append(f'<line class="phase" data-phase="{_e(name)}" x1="{at:.1f}" x2="{at:.1f}" y1="{top}"'
                     f' y2="{top + plot_h}" stroke="#555" stroke-dasharray="4 3">'
                     f'<title>{_e(label)} at {format_seconds(when, None)}'
                     f"</title></line>")
        if groups and at - groups[-1][0][1] < 4:
            groups[-1].append((label, at))
        else:
            groups.append([(label, at)])
    for offset, group in enumerate(groups):
        at, text = group[0][1], _joined([label for label, _ in group])
        # right of the line while the text fits in the plot (about 7 px a character at 13 px), else left of it
        anchor, dx = ("end", -3) if at + 3 + 7 * len(text) > left + plot_w else ("start", 3)
        parts.append(f'<text class="phase-label halo" x="{at + dx:.1f}" y="{top + 15 + 16 * offset}"'
                     f' text-anchor="{anchor}">{_e(text)}</text>')
    if span is not None:
        start, end, label = span
        level = top + plot_h - 10
        parts.append(f'<g class="span"><line x1="{x(start):.1f}" x2="{x(end):.1f}" y1="{level}" y2="{level}"'
                     f' stroke="#1d2330" stroke-width="1.5"/><line x1="{x(start):.1f}" x2="{x(start):.1f}"'
                     f' y1="{level - 4}" y2="{level + 4}" stroke="#1d2330"/><line x1="{x(end):.1f}" x2="{x(end):.1f}"'
                     f' y1="{level - 4}" y2="{level + 4}" stroke="#1d2330"/><text class="halo" x="{x(end) + 4:.1f}"'
                     f' y="{level + 4}" fill="#1d2330">{_e(label)}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def _joined(labels: Sequence[str]) -> str:
    """One label for marks at the same place: "DOWN detected, takeover +1.50 s" when they share the suffix."""
    suffixes = {label.rpartition(" +")[2] for label in labels}
    if len(labels) > 1 and len(suffixes) == 1 and all(" +" in label for label in labels):
        return ", ".join(label.rpartition(" +")[0] for label in labels) + " +" + suffixes.pop()
    return " · ".join(labels)


def _timeline(record: Mapping[str, Any]) -> dict[str, Any] | None:
    timeline = record.get("timeline")
    return timeline if isinstance(timeline, dict) and timeline.get("bucket_s") else None


def _per_second(counts: Sequence[float], width: float) -> list[float]:
    return [c / width for c in counts]


def _shade(timeline: Mapping[str, Any]) -> tuple[tuple[float, float | None] | None, str]:
    fault = timeline.get("fault")
    if not fault:
        return None, ""
    label = f"fault: {fault['kind']}" if fault.get("kind") else "fault"
    if fault.get("end") is None:
        label += " (not healed)"
    return (float(fault["start"]), fault.get("end")), label


def timeline_svg(record: Mapping[str, Any]) -> str | None:
    """Output per data center over time, the fault interval shaded, the recovery phases marked and the RTO
    drawn from the fault to the first output; None when nothing came out."""
    timeline = _timeline(record)
    if timeline is None or not timeline.get("output_per_dc"):
        return None
    width = float(timeline["bucket_s"])
    shade, label = _shade(timeline)
    marks: dict[str, float] = dict(timeline.get("marks") or {})
    phases = record.get("phases_s") or {}
    inferred = set((record.get("recovery") or {}).get("inferred") or [])
    labels = {name: f"{PHASE_LABELS.get(name, name)}{' (inferred)' if name in inferred else ''}"
                    f" +{format_seconds(phases[name])}" for name in marks if phases.get(name) is not None}
    span = None
    rto = record.get("rto_s")
    if shade is not None and rto is not None:
        span = (shade[0], shade[0] + float(rto), f"RTO {format_seconds(rto)}")
    return line_chart({dc: _per_second(v, width) for dc, v in timeline["output_per_dc"].items()},
                      title="Output per data center — fault shaded, recovery phases marked", step=width,
                      shade=shade, shade_label=label, marks=marks, mark_labels=labels, span=span)


def _baseline(record: Mapping[str, Any]) -> dict[str, Any] | None:
    baseline = record.get("baseline") or (_timeline(record) or {}).get("baseline")
    return baseline if isinstance(baseline, dict) and baseline.get("mean") else None


def baseline_band(record: Mapping[str, Any]) -> tuple[float, float] | None:
    """The steady-state throughput band: baseline mean ± 2 standard deviations (None without a baseline)."""
    baseline = _baseline(record)
    if baseline is None:
        return None
    mean, spread = float(baseline["mean"]), float(baseline.get("stddev") or 0.0)
    return max(0.0, mean - 2 * spread), mean + 2 * spread


def throughput_svg(record: Mapping[str, Any]) -> str | None:
    """Input accepted and refused, and the total output, against the baseline band; None without traffic."""
    timeline = _timeline(record)
    if timeline is None:
        return None
    width = float(timeline["bucket_s"])
    per_dc = list(timeline.get("output_per_dc", {}).values())
    total = [float(sum(v)) for v in zip(*per_dc, strict=True)] if per_dc else []
    series = {"accepted": _per_second(timeline.get("accepted", []), width),
              "refused": _per_second(timeline.get("refused", []), width),
              "output": _per_second(total, width)}
    shade, label = _shade(timeline)
    baseline = _baseline(record)
    levels: dict[str, float] = {}
    fraction = (record.get("recovery") or {}).get("throughput_fraction")
    if baseline is not None and fraction:
        levels[f"recovered at {float(fraction):.0%} of the baseline"] = float(fraction) * float(baseline["mean"])
    return line_chart(series, title="Throughput against the baseline band (mean ± 2σ) — fault shaded", step=width,
                      colors=THROUGHPUT_COLORS, shade=shade, shade_label=label, band=baseline_band(record),
                      band_label="baseline ± 2σ", levels=levels)
