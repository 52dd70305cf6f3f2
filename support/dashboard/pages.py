"""The dashboard's pages, rendered from the history store: the same pages are served and written as files.

Every link is relative (``runs/<run>.html`` from the index, ``../index.html`` back), so the pages work from
``file://``, from the server's root and from any sub-path a proxy puts them under. Everything that comes from the
store or a journal is escaped: into HTML with :func:`html.escape`, into the page's JSON data with ``<``, ``>``
and ``&`` as ``\\u`` escapes (the script only ever puts it into the page as text).

Pages: ``index.html`` (runs over time, the runs, the scenarios), ``runs/<run>.html`` (a run's drills, its
objectives, links to its reports), ``scenarios/<slug>.html`` (RTO with its phases and the losses over time, the
distribution of repeated drills per run), ``compare.html?a=<run>&b=<run>`` (two runs side by side, chosen in the
page). A run's ``report.html`` and ``allure-report/`` are linked as ``reports/<run>/...``: the server serves
them from the run's folder; :func:`write_static` copies them.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from support.dashboard.assets import asset_files, uplot_dir
from support.dashboard.store import History, stats
from support.history.schema import PHASE_COLUMNS

__all__ = ["METRICS", "Site", "fmt", "run_file", "scenario_slug", "write_static"]

#: the numbers of a drill the pages show, with their headings and units
METRICS: tuple[tuple[str, str], ...] = (
    ("rto_s", "RTO s"),
    *((c, c.removesuffix("_s").replace("_", " ") + " s") for c in PHASE_COLUMNS),
    ("lost", "lost"),
    ("duplicated", "duplicated"),
    ("unknown", "unknown"),
    ("loss_window_s", "loss window s"),
    ("state_loss_window_s", "state loss window s"),
)
_COUNTS = frozenset({"lost", "duplicated", "unknown"})
#: the numbers two runs are compared by (the run pages show them all)
COMPARED = ("rto_s", *PHASE_COLUMNS, "lost", "duplicated", "loss_window_s")
#: the files of a run's folder that the dashboard links (and serves, and copies): nothing else of the folder
REPORT_FILES = ("report.html", "allure-report")
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def fmt(value: Any, count: bool = False) -> str:
    """A number as the pages show it: counts as integers, seconds with two decimals, nothing as an em dash."""
    if value is None or not isinstance(value, int | float):
        return "—"
    return str(round(value)) if count else f"{value:.2f}"


def _when(epoch: Any) -> str:
    if not isinstance(epoch, int | float):
        return "—"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch)) + " UTC"


def scenario_slug(key: str) -> str:
    """A file name for scenario ``key`` (user text): readable, and unique by a hash of the whole key."""
    readable = re.sub(r"[^a-z0-9]+", "-", key.split(" :: ", 1)[-1].lower()).strip("-")[:60].strip("-") or "scenario"
    return f"{readable}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


def run_file(run_id: str) -> str:
    """A file name for ``run_id``: the id itself when it is a plain name (they are: 20261206-134036-8bf6)."""
    return run_id if _SAFE_NAME.fullmatch(run_id) and run_id not in (".", "..") else scenario_slug(run_id)


def _json_for_script(data: Any) -> str:
    return (json.dumps(data, separators=(",", ":"), allow_nan=False, default=str)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _status(value: Any) -> str:
    text = str(value or "unknown")
    return f'<span class="status s-{_e(re.sub(r"[^a-z]+", "-", text.lower()))}">{_e(text)}</span>'


class Site:
    """The pages of one history store. ``reports_dir`` is where runs are written (for runs whose ``report_dir``
    is not recorded or moved); ``served``: the pages poll the server for the live run."""

    def __init__(self, history: History, reports_dir: Path | None = None, served: bool = True,
                 poll_ms: int = 2000) -> None:
        self.history = history
        self.reports_dir = reports_dir
        self.served = served
        self.poll_ms = poll_ms

    # --- what there is ------------------------------------------------------------------------------------------
    def page_paths(self) -> list[str]:
        """Every page (not the assets, not the reports), as paths relative to the dashboard's root."""
        runs, drills = self.history.runs(), self.history.drills()
        scenarios = sorted({str(d["scenario"]) for d in drills})
        return (["index.html", "compare.html"] + [f"runs/{run_file(str(r['run_id']))}.html" for r in runs]
                + [f"scenarios/{scenario_slug(s)}.html" for s in scenarios])

    def render(self, path: str) -> str | None:
        """The page at ``path`` (relative to the root), or None when there is none."""
        if path in ("", "index.html"):
            return self._index()
        if path == "compare.html":
            return self._compare()
        match = re.fullmatch(r"(runs|scenarios)/([^/]+)\.html", path)
        if match is None:
            return None
        if match[1] == "runs":
            runs = {run_file(str(r["run_id"])): r for r in self.history.runs()}
            run = runs.get(match[2])
            return self._run(run) if run is not None else None
        keys = {scenario_slug(str(d["scenario"])): str(d["scenario"]) for d in self.history.drills()}
        key = keys.get(match[2])
        return self._scenario(key) if key is not None else None

    def run_folder(self, run: dict[str, Any]) -> Path | None:
        """The folder of ``run`` that holds its reports: its recorded ``report_dir``, else under reports_dir."""
        candidates = [run.get("report_dir")]
        if self.reports_dir is not None:
            candidates.append(str(self.reports_dir / str(run["run_id"])))
        for candidate in candidates:
            if candidate and Path(candidate).is_dir():
                return Path(candidate)
        return None

    def report_file(self, path: str) -> Path | None:
        """The file of a run's report that ``reports/<run>/<rest>`` names, or None: only :data:`REPORT_FILES`
        of a known run's folder, never above it."""
        parts = path.split("/")
        if len(parts) < 3 or parts[0] != "reports" or parts[2] not in REPORT_FILES or ".." in parts:
            return None
        run = next((r for r in self.history.runs() if run_file(str(r["run_id"])) == parts[1]), None)
        folder = self.run_folder(run) if run is not None else None
        if folder is None:
            return None
        target = (folder / "/".join(parts[2:])).resolve()
        if target.is_dir():
            target = target / "index.html"
        allowed = [(folder / name).resolve() for name in REPORT_FILES]
        if not any(target == a or target.is_relative_to(a) for a in allowed) or not target.is_file():
            return None
        return target

    def _reports(self, run: dict[str, Any], root: str) -> str:
        folder = self.run_folder(run)
        links = []
        base = f"{root}reports/{_e(run_file(str(run['run_id'])))}"
        if folder is not None and (folder / "report.html").is_file():
            links.append(f'<a class="report" href="{base}/report.html">report</a>')
        if folder is not None and (folder / "allure-report" / "index.html").is_file():
            links.append(f'<a class="allure" href="{base}/allure-report/index.html">allure</a>')
        return " · ".join(links) or '<span class="muted">no report</span>'

    # --- the frame ----------------------------------------------------------------------------------------------
    def _page(self, title: str, root: str, body: str, data: dict[str, Any]) -> str:
        have_charts = uplot_dir() is not None
        head_css = f'<link rel="stylesheet" href="{root}assets/uPlot.min.css">' if have_charts else ""
        chart_js = f'<script src="{root}assets/uPlot.iife.min.js"></script>' if have_charts else ""
        where = "" if self.history.exists() else (
            f'<p class="notice">No history yet: {_e(self.history.path)} does not exist. Runs are recorded there '
            "when they finish (or by <code>failover-tester history rebuild</code>).</p>")
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)} · failover dashboard</title><link rel="icon" href="data:,">{head_css}
<link rel="stylesheet" href="{root}assets/dashboard.css"></head>
<body data-root="{root}" data-live="{'1' if self.served else '0'}" data-poll="{int(self.poll_ms)}">
<header><nav><a href="{root}index.html">Runs</a><a href="{root}compare.html">Compare</a></nav>
<h1>{_e(title)}</h1></header>
<section id="live" class="live" hidden aria-live="polite"></section>
<main>{where}{body}</main>
<footer>failover-tester dashboard · {_e(self.history.path.name)} · rendered {_e(_when(time.time()))}</footer>
<script type="application/json" id="dashboard-data">{_json_for_script(data)}</script>
{chart_js}<script src="{root}assets/dashboard.js"></script>
</body></html>
"""

    # --- index --------------------------------------------------------------------------------------------------
    def _index(self) -> str:
        runs, drills = self.history.runs(), self.history.drills()
        rows = []
        for run in reversed(runs):
            totals = run["totals"] if isinstance(run["totals"], dict) else {}
            rid = str(run["run_id"])
            rows.append(
                f'<tr data-run="{_e(rid)}"><td><a class="run" href="runs/{_e(run_file(rid))}.html">{_e(rid)}</a></td>'
                f"<td>{_e(_when(run['started_at']))}</td><td>{_status(run['status'])}</td>"
                f"<td>{_e(run['config_name'] or run['config'])}</td><td>{_e(run['target'])}</td>"
                f'<td class="num">{_e(totals.get("scenarios", "—"))}</td>'
                f'<td class="num passed">{_e(totals.get("passed", "—"))}</td>'
                f'<td class="num failed">{_e(totals.get("failed", "—"))}</td>'
                f'<td class="num">{_e(run["repeat"] or 1)}</td><td class="num score">{fmt(run["score"])}</td>'
                f"<td>{self._reports(run, '')}</td></tr>")
        by_scenario: dict[str, list[dict[str, Any]]] = {}
        for drill in drills:
            by_scenario.setdefault(str(drill["scenario"]), []).append(drill)
        srows = []
        for key in sorted(by_scenario):
            items = by_scenario[key]
            rto = stats([d["rto_s"] for d in items])
            srows.append(
                f'<tr data-scenario="{_e(key)}"><td><a class="scenario" href="scenarios/{scenario_slug(key)}.html">'
                f'{_e(key)}</a></td><td>{_e(items[-1]["fault"])}</td><td class="num">{len(items)}</td>'
                f'<td>{_status(items[-1]["status"])}</td><td class="num rto-last">{fmt(items[-1]["rto_s"])}</td>'
                f'<td class="num rto-p50">{fmt(rto["p50"])}</td><td class="num rto-max">{fmt(rto["max"])}</td>'
                f'<td class="num lost-max">{fmt(stats([d["lost"] for d in items])["max"], count=True)}</td></tr>')
        def count(run: dict[str, Any], name: str) -> Any:
            return run["totals"].get(name) if isinstance(run["totals"], dict) else None

        chart = {"id": "runs", "title": "Scenarios per run, run by run", "unit": "", "x": list(range(len(runs))),
                 "labels": [_short(r["started_at"]) for r in runs], "series": [
                     *({"label": name.replace("_", " "), "values": [count(r, name) for r in runs]}
                       for name in ("passed", "failed", "not_judged")),
                     {"label": "score", "values": [r["score"] for r in runs], "scale": "score"}]}
        body = f"""<section><h2>Runs over time</h2><div class="chart" id="chart-runs"></div></section>
<section><h2>Runs <small>({len(runs)})</small></h2>
<div class="scroll"><table class="runs"><thead><tr><th>run</th><th>started</th><th>status</th><th>config</th>
<th>target</th><th>scenarios</th><th>passed</th><th>failed</th><th>repeat</th><th>score</th><th>reports</th></tr></thead>
<tbody>{''.join(rows)}</tbody></table></div></section>
<section><h2>Scenarios <small>({len(by_scenario)})</small></h2>
<div class="scroll"><table class="scenarios"><thead><tr><th>scenario</th><th>fault</th><th>drills</th>
<th>last status</th><th>last RTO s</th><th>median RTO s</th><th>max RTO s</th><th>max lost</th></tr></thead>
<tbody>{''.join(srows)}</tbody></table></div></section>"""
        return self._page("Failover drills", "", body, {"page": "index", "charts": [chart]})

    # --- one run ------------------------------------------------------------------------------------------------
    def _run(self, run: dict[str, Any]) -> str:
        rid = str(run["run_id"])
        drills = [d for d in self.history.drills() if d["run_id"] == run["run_id"]]
        runs = self.history.runs()
        index = next(i for i, r in enumerate(runs) if r["run_id"] == run["run_id"])
        rows = []
        for d in drills:
            cells = "".join(f'<td class="num m-{m}">{fmt(d[m], m in _COUNTS)}</td>' for m, _ in METRICS)
            rows.append(f'<tr data-scenario="{_e(d["scenario"])}" data-repeat="{_e(d["repeat"])}">'
                        f'<td><a class="scenario" href="../scenarios/{scenario_slug(str(d["scenario"]))}.html">'
                        f'{_e(d["scenario"])}</a></td><td class="num">{_e(d["repeat"])}</td>'
                        f'<td>{_status(d["status"])}</td><td>{_e(d["fault"])}</td>{cells}</tr>')
        heads = "".join(f"<th>{_e(h)}</th>" for _, h in METRICS)
        objectives = run["objectives"] if isinstance(run["objectives"], list) else []
        orows = "".join(
            f"<tr><td>{_e(o.get('name'))}</td><td>{_e(o.get('metric'))}</td><td>{_e(o.get('stat'))}</td>"
            f"<td class='num'>{_e(o.get('limit'))}</td><td class='num'>{_e(o.get('worst'))}</td>"
            f"<td>{_status(_met(o.get('met')))}</td>"
            f"<td>{_e(o.get('sentence'))}</td></tr>" for o in objectives if isinstance(o, dict))
        objectives_html = (f"""<section><h2>Objectives</h2><table class="objectives"><thead><tr><th>name</th>
<th>metric</th><th>stat</th><th>limit</th><th>worst</th><th>met</th><th></th></tr></thead><tbody>{orows}</tbody>
</table></section>""" if orows else "")
        facts = [("status", _status(run["status"])), ("started", _e(_when(run["started_at"]))),
                 ("finished", _e(_when(run["finished_at"]))), ("config", _e(run["config"])),
                 ("target", _e(run["target"])), ("repeat", _e(run["repeat"] or 1)), ("score", fmt(run["score"])),
                 ("tool version", _e(run["tool_version"])), ("reports", self._reports(run, "../"))]
        facts += [(name, _e(run[name])) for name in ("shard", "soak_id") if run[name]]
        compare = ""
        if index > 0:
            prev = str(runs[index - 1]["run_id"])
            compare = (f'<p><a class="compare" href="../compare.html?a={_e(_q(prev))}&amp;b={_e(_q(rid))}">'
                       f"compare with the run before ({_e(prev)})</a></p>")
        dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
        body = f"""<section><dl class="facts">{dl}</dl>{compare}</section>{objectives_html}
<section><h2>Drills <small>({len(drills)})</small></h2><div class="scroll"><table class="drills"><thead><tr>
<th>scenario</th><th>repeat</th><th>status</th><th>fault</th>{heads}</tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>"""
        return self._page(f"Run {rid}", "../", body, {"page": "run", "run_id": rid, "charts": []})

    # --- one scenario -------------------------------------------------------------------------------------------
    def _scenario(self, key: str) -> str:
        drills = [d for d in self.history.drills() if d["scenario"] == key]
        runs = {r["run_id"]: r for r in self.history.runs()}
        points = sorted(drills, key=lambda d: _x(d, runs))
        xs = list(range(len(points)))
        labels = [f"{_short(runs.get(d['run_id'], {}).get('started_at'))} #{d['repeat'] or 1}" for d in points]
        rto = {"id": "rto", "title": "RTO and its phases (s after the fault), drill by drill", "unit": "s", "x": xs,
               "labels": labels,
               "series": [{"label": h, "values": [d[m] for d in points]} for m, h in METRICS[:5]]}
        losses = {"id": "losses", "title": "Losses, drill by drill", "unit": "", "x": xs, "labels": labels,
                  "series": [{"label": m, "values": [d[m] for d in points]} for m in ("lost", "duplicated", "unknown")]}
        per_run: dict[Any, list[dict[str, Any]]] = {}
        for d in drills:
            per_run.setdefault(d["run_id"], []).append(d)
        ordered = sorted(per_run, key=lambda r: (runs.get(r, {}).get("started_at") or 0.0, str(r)))
        width = max((len(v) for v in per_run.values()), default=0)
        spread = {"id": "repeats", "title": "RTO of each drill, per run (repeats side by side)", "unit": "s",
                  "points": True, "x": list(range(len(ordered))),
                  "labels": [_short(runs.get(r, {}).get("started_at")) for r in ordered],
                  "series": [{"label": f"drill {k + 1}",
                              "values": [(sorted(per_run[r], key=lambda d: d["repeat"] or 1)[k]["rto_s"]
                                          if k < len(per_run[r]) else None) for r in ordered]}
                             for k in range(width)]}
        drows = []
        for r in reversed(ordered):
            items = per_run[r]
            s_rto, s_lost = stats([d["rto_s"] for d in items]), stats([d["lost"] for d in items])
            passed = sum(1 for d in items if d["status"] == "passed")
            drows.append(
                f'<tr data-run="{_e(r)}"><td><a class="run" href="../runs/{_e(run_file(str(r)))}.html">{_e(r)}</a>'
                f'</td><td class="num n">{len(items)}</td><td class="num passed">{passed}</td>'
                + "".join(f'<td class="num rto-{k}">{fmt(s_rto[k])}</td>' for k in ("min", "p50", "p95", "max"))
                + f'<td class="num lost-p50">{fmt(s_lost["p50"])}</td>'
                  f'<td class="num lost-max">{fmt(s_lost["max"], True)}</td></tr>')
        rows = []
        for d in reversed(points):
            cells = "".join(f'<td class="num m-{m}">{fmt(d[m], m in _COUNTS)}</td>' for m, _ in METRICS)
            rows.append(f'<tr data-run="{_e(d["run_id"])}" data-repeat="{_e(d["repeat"])}"><td>'
                        f'<a class="run" href="../runs/{_e(run_file(str(d["run_id"])))}.html">{_e(d["run_id"])}</a>'
                        f'</td><td class="num">{_e(d["repeat"])}</td><td>{_status(d["status"])}</td>'
                        f"<td>{_e(_when(d['started_at']))}</td>{cells}</tr>")
        heads = "".join(f"<th>{_e(h)}</th>" for _, h in METRICS)
        fault = drills[-1]["fault"] if drills else None
        body = f"""<p class="lede">Fault: <b>{_e(fault)}</b> · {len(drills)} drills in {len(per_run)} runs</p>
<section><h2>RTO over time</h2><div class="chart" id="chart-rto"></div></section>
<section><h2>Losses over time</h2><div class="chart" id="chart-losses"></div></section>
<section><h2>Distributions of repeated drills</h2><div class="chart" id="chart-repeats"></div>
<table class="distributions"><thead><tr><th>run</th><th>drills</th><th>passed</th><th>RTO min</th><th>RTO p50</th>
<th>RTO p95</th><th>RTO max</th><th>lost p50</th><th>lost max</th></tr></thead><tbody>{''.join(drows)}</tbody>
</table></section>
<section><h2>Drills</h2><div class="scroll"><table class="drills"><thead><tr><th>run</th><th>repeat</th><th>status</th>
<th>started</th>{heads}</tr></thead><tbody>{''.join(rows)}</tbody></table></div></section>"""
        return self._page(key, "../", body, {"page": "scenario", "scenario": key, "charts": [rto, losses, spread]})

    # --- two runs side by side ----------------------------------------------------------------------------------
    def _compare(self) -> str:
        runs, drills = self.history.runs(), self.history.drills()
        table: dict[str, dict[str, dict[str, Any]]] = {}
        grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for d in drills:
            grouped.setdefault((str(d["run_id"]), str(d["scenario"])), []).append(d)
        for (rid, key), items in grouped.items():
            entry: dict[str, Any] = {"n": len(items), "passed": sum(1 for d in items if d["status"] == "passed"),
                                     "status": _overall([str(d["status"]) for d in items]),
                                     "slug": scenario_slug(key)}
            for m, _ in METRICS:
                entry[m] = stats([d[m] for d in items])["p50"]
            table.setdefault(rid, {})[key] = entry
        data = {"page": "compare", "charts": [],
                "metrics": [{"key": m, "label": h, "count": m in _COUNTS} for m, h in METRICS
                            if m in COMPARED],
                "runs": [{"run_id": str(r["run_id"]), "file": run_file(str(r["run_id"])), "status": r["status"],
                          "started": _when(r["started_at"])} for r in runs],
                "drills": table}
        body = """<section class="pick"><label>Run A <select id="run-a"></select></label>
<label>Run B <select id="run-b"></select></label>
<p class="muted">Each number is the median over the run's drills of the scenario (one drill without --repeat).</p>
</section><section><div class="scroll"><table class="compare" id="compare-table"><thead></thead><tbody></tbody>
</table></div>
<p id="compare-empty" class="muted" hidden>Pick two runs.</p></section>"""
        return self._page("Compare two runs", "", body, data)


def _met(met: Any) -> str:
    return "met" if met is True else "not met" if met is False else "not judged"


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


def _x(drill: dict[str, Any], runs: dict[Any, dict[str, Any]]) -> float:
    start = drill["started_at"]
    if isinstance(start, int | float):
        return float(start)
    run_start = runs.get(drill["run_id"], {}).get("started_at")
    return float(run_start or 0.0) + float(drill["repeat"] or 1) * 1e-3


def _short(epoch: Any) -> str:
    """A run's start on a chart's axis (UTC, like the tables): ``12-06 13:40``."""
    return time.strftime("%m-%d %H:%M", time.gmtime(epoch)) if isinstance(epoch, int | float) else "?"


def _overall(statuses: Iterable[str]) -> str:
    found = set(statuses)
    for status in ("failed", "interrupted", "not judged", "skipped"):
        if status in found:
            return status
    return "passed" if found == {"passed"} else (sorted(found)[0] if found else "unknown")


def write_static(site: Site, out: Path) -> list[Path]:
    """Write every page, the assets and a copy of each run's reports under ``out``; the files written."""
    written: list[Path] = []
    for path in site.page_paths():
        text = site.render(path)
        if text is None:
            continue
        target = out / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    for name, source in asset_files().items():
        (out / "assets").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, out / "assets" / name)
        written.append(out / "assets" / name)
    for run in site.history.runs():
        folder = site.run_folder(run)
        if folder is None:
            continue
        dest = out / "reports" / run_file(str(run["run_id"]))
        for name in REPORT_FILES:
            source = folder / name
            if source.is_file():
                dest.mkdir(parents=True, exist_ok=True)
                written.append(_link_or_copy(source, dest / name))
            elif source.is_dir():
                for file in sorted(p for p in source.rglob("*") if p.is_file()):
                    target = dest / name / file.relative_to(source)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    written.append(_link_or_copy(file, target))
    return written


def _link_or_copy(source: Path, target: Path) -> Path:
    """A hard link when ``target`` is on the same file system (reports are large and never rewritten), else a
    copy."""
    if target.exists():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    return target
