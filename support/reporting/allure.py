"""Allure: attachments during the run, and the Allure 3 single-file HTML render afterwards."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from support.reporting.charts import PHASE_LABELS, throughput_svg, timeline_svg
from support.reporting.judged import bound_text, clock, day, expectation, readable_times, recovery_reason
from support.units import format_seconds

if TYPE_CHECKING:
    from support.orchestration import JournalEvent

log = logging.getLogger(__name__)

_TRACKING = [
    re.compile(r"<script[^>]*googletagmanager[^>]*>\s*</script>", re.I | re.S),
    re.compile(r"<script[^>]*>(?:(?!</script>).)*?(?:googletagmanager|gtag\(|dataLayer)(?:(?!</script>).)*</script>",
               re.I | re.S),
    re.compile(r"<noscript>(?:(?!</noscript>).)*googletagmanager(?:(?!</noscript>).)*</noscript>", re.I | re.S),
]


def attach_text(name: str, body: str, kind: str = "text") -> None:
    """Attach to the current Allure test when the Allure formatter is active (no-op otherwise)."""
    try:
        import allure
    except ImportError:  # pragma: no cover - allure-behave is a dependency
        return
    types = {
        "text": allure.attachment_type.TEXT,
        "json": allure.attachment_type.JSON,
        "csv": allure.attachment_type.CSV,
        "html": allure.attachment_type.HTML,
        "svg": allure.attachment_type.SVG,
    }
    try:
        allure.attach(body, name=name, attachment_type=types[kind])
    except Exception as exc:  # attaching must never fail a scenario
        log.debug("allure attach %s failed: %s", name, exc)


def attach_json(name: str, value: Any) -> None:
    attach_text(name, json.dumps(value, indent=2, default=str), "json")


def attach_svg(name: str, svg: str) -> None:
    """Attach a standalone SVG document (shown by Allure as an image)."""
    attach_text(name, svg, "svg")


def attach_csv_file(name: str, path: Path) -> bool:
    """Attach the CSV file at ``path`` if there is one; returns whether it existed."""
    if not path.is_file():
        return False
    try:
        import allure

        allure.attach.file(str(path), name=name, attachment_type=allure.attachment_type.CSV)
    except Exception as exc:  # attaching must never fail a scenario
        log.debug("allure attach %s failed: %s", name, exc)
    return True


def label_scenario(tags: list[str], epic: str = "Cross-DC failover") -> None:
    """Labels of the current Allure test: epic, severity (``@smoke`` and ``@critical`` are critical)."""
    try:
        import allure

        allure.dynamic.label("epic", epic)
        critical = {"smoke", "critical"} & set(tags)
        allure.dynamic.severity(allure.severity_level.CRITICAL if critical else allure.severity_level.NORMAL)
    except Exception as exc:  # labelling must never fail a scenario
        log.debug("allure labels failed: %s", exc)


def label_dc_pair(active: str, standby: str) -> None:
    """The data center pair a scenario exercises, as an Allure label (``dc1 → dc2``)."""
    try:
        import allure

        allure.dynamic.label("dc_pair", f"{active} → {standby}")
    except Exception as exc:
        log.debug("allure label failed: %s", exc)


def label_drill(k: int, n: int) -> None:
    """Which drill of ``run --repeat N`` the current Allure test is: the parameter "drill" = "k/N", which the
    formatter (:mod:`support.reporting.allure_formatter`) also folds into the test's history id, so Allure shows
    every drill rather than the last one with the others as its retries."""
    try:
        import allure

        allure.dynamic.parameter("drill", f"{k}/{n}")
    except Exception as exc:
        log.debug("allure parameter failed: %s", exc)


def write_environment(results: Path, values: dict[str, str]) -> None:
    """``environment.properties`` of the results folder (shown by Allure as the run's environment)."""
    lines = [f"{key.replace(' ', '_')}={str(value).replace(chr(10), ' ')}" for key, value in values.items()]
    (results / "environment.properties").write_text("\n".join(lines) + "\n", encoding="utf-8")


#: The Allure 3 CLI release the reports are made with (``package.json`` of the repository and of a project made by
#: ``failover-tester init``; a unit test keeps them equal).
ALLURE_VERSION = "3.18.0"
#: What ``run`` says when it finds no Allure CLI (the run and its other reports are complete without it).
ALLURE_MISSING = "Allure 3 CLI not found: `npm install` in the project (package.json) or set ALLURE_BIN"


def find_allure(root: Path) -> str | None:
    """The Allure 3 CLI: ``$ALLURE_BIN``, the project's ``node_modules/.bin/allure``, or ``allure`` on PATH."""
    candidates = [os.environ.get("ALLURE_BIN"), str(root / "node_modules" / ".bin" / "allure"), shutil.which("allure")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    return None


def strip_tracking(html: str) -> str:
    for pattern in _TRACKING:
        html = pattern.sub("", html)
    return html


def render_single_file(results: Path, out_dir: Path, root: Path, name: str = "Failover tests",
                       history: Path | None = None) -> Path | None:
    """Render ``results`` with Allure 3 into ``out_dir/index.html`` (one self-contained file, no tracking).

    ``history`` (a JSON Lines file kept across runs, ``<run.reports_dir>/allure-history.jsonl``) lets the report
    show trends and flaky tests: Allure embeds every run it holds into the report, then appends this one to it. A CI
    job keeps trends by keeping that one file between jobs (docs/history.md).
    """
    allure = find_allure(root)
    if allure is None:
        log.warning("%s (in %s); Allure report not rendered", ALLURE_MISSING, root)
        return None
    cmd = [allure, "awesome", str(results), "--single-file", "--name", name, "-o", str(out_dir)]
    if history is not None:
        cmd += ["--history-path", str(history)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    index = out_dir / "index.html"
    if done.returncode != 0 or not index.exists():
        log.warning("allure render failed (%s): %s", done.returncode, (done.stderr or done.stdout)[-500:])
        return None
    index.write_text(strip_tracking(index.read_text(encoding="utf-8")), encoding="utf-8")
    return index


def render_again(results: Path, out_dir: Path, root: Path, name: str, history: Path) -> Path | None:
    """:func:`render_single_file` of a run rendered before (``failover-tester judge``): with the trends of the runs
    in ``history`` rendered before the one called ``name`` (all of them if it never was), and ``history`` left as it
    is (Allure appends the report it renders to the history file it is given: here, a temporary copy)."""
    earlier: list[str] = []
    if history.is_file():
        for line in history.read_text(encoding="utf-8").splitlines(keepends=True):
            try:
                entry_name = json.loads(line).get("name")
            except (json.JSONDecodeError, AttributeError):
                continue
            if entry_name == name:
                break
            earlier.append(line)
    with tempfile.TemporaryDirectory(prefix="allure-history-") as scratch:
        copy = Path(scratch) / history.name
        copy.write_text("".join(earlier), encoding="utf-8")
        return render_single_file(results, out_dir, root, name=name, history=copy)


# -- the evidence of one scenario ---------------------------------------------------------------------------------

RESIDUE_PREFIX = "fault residue: "
_VERDICT_OF = {"takeover": "takeover", "throughput_recovered": "throughput_recovered",
               "rto": "recovery_time", "lost": "lost", "loss_window": "loss_window",
               "state_loss_window": "state_loss_window", "duplicated": "duplicated"}
#: the rows an expected finding judges where the scenario did not judge them with the usual check
_EXPECTED_OF = {"lost": "expected_lost", "state_loss_window": "expected_state_loss"}
_TABLE_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2330;margin:12px;font-size:13px}
table{border-collapse:collapse} td,th{padding:4px 10px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
th{color:#555;font-weight:600} td:first-child{white-space:nowrap}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.group td{background:#f5f6f8;font-weight:600} .why{color:#777} .pass{color:#1a7f37} .fail{color:#c62828}
p{margin:0 0 8px;color:#555}
"""


def _seconds(value: Any) -> str | None:
    return None if value is None else format_seconds(value, 3)


def _count(value: Any) -> str | None:
    return None if value is None else str(value)


def _data_reason(record: Mapping[str, Any], state: bool = False) -> str:
    """Why a data (or, ``state``, a state) loss number has no value."""
    if not record.get("delivery"):
        return "no traffic"
    if state:
        if not record.get("fault"):
            return "no fault injected (state is judged across a failover)"
        return "state not judged (the fault never took effect)"
    return "not measured"


def rto_rpo_rows(record: Mapping[str, Any]) -> list[tuple[str, str, str | None, str]]:
    """(group, key, value, detail) rows of the RTO/RPO table; ``value`` None where missing, ``detail`` then says
    why, else where the value comes from."""
    recovery = record.get("recovery") or {}
    sources = recovery.get("sources") or {}
    inferred = set(recovery.get("inferred") or [])
    phases = record.get("phases_s") or recovery.get("phases_s") or {}
    rows: list[tuple[str, str, str | None, str]] = []
    for phase in PHASE_LABELS:
        value = _seconds(phases.get(phase))
        if value is None:
            detail = recovery_reason(record, phase)
        else:
            detail = str(sources.get(phase, "")) + (" (inferred)" if phase in inferred else "")
            bound = bound_text(record, phase)
            detail += f"; clock error {bound}" if bound else ""
        rows.append(("recovery", phase, value, detail))
    delivery = record.get("delivery") or {}
    rpo = record.get("rpo") or {}
    no_data, no_state = _data_reason(record), _data_reason(record, state=True)
    for group, key, value, source, reason in (
        ("recovery", "rto", _seconds(record.get("rto_s")), "fault effective → first output of the new active",
         recovery_reason(record, "first_output")),
        ("data", "lost", _count(record.get("lost")), f"of {delivery.get('acknowledged')} acknowledged tuples",
         no_data),
        ("data", "loss_window", _seconds(rpo.get("loss_window_s", delivery.get("loss_window_s"))),
         "span over which the lost tuples were sent", no_data),
        ("data", "lost_state_updates", _count(rpo.get("lost_state_updates")),
         "updates missing from the new active's state", no_state),
        ("data", "state_loss_window", _seconds(rpo.get("state_loss_window_s")), "span of the lost state updates",
         no_state),
        ("data", "duplicated", _count(record.get("duplicated")), f"of {delivery.get('received')} received", no_data),
        ("data", "unknown", _count(record.get("unknown")), "sends with an unknown outcome (never counted as lost)",
         no_data),
    ):
        rows.append((group, key, value, source if value is not None else reason))
    return rows


_ROW_LABELS = {**PHASE_LABELS, "rto": "RTO", "lost": "lost", "loss_window": "loss window",
               "lost_state_updates": "lost state updates", "state_loss_window": "state loss window",
               "duplicated": "duplicated", "unknown": "unknown"}


def rto_rpo_table(record: Mapping[str, Any]) -> str:
    """A standalone HTML page: recovery phases and RTO, then data and state loss (RPO), "–" with the reason for
    what is missing, and the verdict on each number where the scenario checked it."""
    verdicts = {v.get("name"): v for v in record.get("verdicts") or []}
    recovery = record.get("recovery") or {}
    old = recovery.get("old") or record.get("old_active") or "?"
    standby = recovery.get("standby") or record.get("standby") or "?"
    what = (f"fault {escape(str(record['fault']))}: {escape(str(old))} → {escape(str(standby))}"
            if record.get("fault") else "no fault injected")
    out = [f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>RTO/RPO</title>'
           f"<style>{_TABLE_CSS}</style></head><body><p>{what} · {escape(str(record.get('mode') or ''))}</p>"
           "<table><tr><th>quantity</th><th>value</th><th>source / why missing</th><th>verdict</th></tr>"]
    groups = {"recovery": "Recovery time (seconds after the fault took effect)", "data": "Data and state loss (RPO)"}
    group = None
    for row_group, key, value, detail in rto_rpo_rows(record):
        if row_group != group:
            group = row_group
            out.append(f'<tr class="group"><td colspan="4">{groups[row_group]}</td></tr>')
        verdict = verdicts.get(_VERDICT_OF.get(key)) or verdicts.get(_EXPECTED_OF.get(key))
        judged = "" if verdict is None else (
            f'<span class="{"pass" if verdict.get("passed") else "fail"}">{"✔" if verdict.get("passed") else "✘"} '
            f'{escape(str(verdict.get("summary", "")))}</span>')
        cell = escape(value) if value is not None else "–"
        out.append(f'<tr data-key="{key}"><td>{escape(_ROW_LABELS[key])}</td><td class="num">{cell}</td>'
                   f'<td class="{"why" if value is None else ""}">{escape(detail)}</td><td>{judged}</td></tr>')
    out.append("</table></body></html>\n")
    return "".join(out)


def step_details(verdict: Mapping[str, Any]) -> dict[str, Any]:
    """The Allure ``statusDetails`` of the step whose claim gave ``verdict``: the verdict's sentence when it did not
    pass, and for an expected finding always (its sentence names what was measured against what was expected)."""
    if not verdict.get("passed") or expectation(verdict) is not None:
        return {"message": verdict.get("summary")}
    return {}


def verdicts_text(verdicts: Sequence[Mapping[str, Any]]) -> str:
    """One line per verdict: PASS/FAIL, name, the sentence a product owner reads."""
    def word(v: Mapping[str, Any]) -> str:
        return "PASS" if v["passed"] else "NOT JUDGED" if v.get("status") == "not judged" else "FAIL"

    def expected(v: Mapping[str, Any]) -> str:
        text = expectation(v)
        return "" if text is None else f" [expected finding: {text}]"

    return "\n".join(f"{word(v)} {v['name']}{expected(v)}: {v['summary']}" for v in verdicts)


def journal_text(events: Sequence[JournalEvent]) -> str:
    """The journal, one event a line, each at its time of day (UTC; the date once, on the first line)."""
    if not events:
        return ""
    lines = [f"journal of {day(events[0].t)} (times UTC)"]
    lines.extend(f"{clock(e.t).removesuffix(' UTC')} {e.event} {readable_times(e.fields)}" for e in events)
    return "\n".join(lines)


def residue_audit(record: Mapping[str, Any], events: Sequence[JournalEvent]) -> dict[str, Any]:
    """What the scenario left behind: the residue the fault audit found on the hosts it touched, the cleanups that
    failed or ran, and every fault with whether and how fast it was reverted (from the journal)."""
    errors = [str(e) for e in record.get("cleanup_errors") or []]
    residue = [e.removeprefix(RESIDUE_PREFIX) for e in errors if e.startswith(RESIDUE_PREFIX)]
    faults: dict[str, dict[str, Any]] = {}
    cleanup: list[dict[str, Any]] = []
    for e in events:
        fault_id = str(e.fields.get("id", ""))
        if e.event in ("fault.injected", "fault.dry_run"):
            faults[fault_id] = {"id": fault_id, "kind": e.fields.get("kind"), "injected_at": e.t,
                                "dry_run": e.event == "fault.dry_run", "reverted": False}
        elif e.event == "fault.failed" and fault_id in faults:
            faults[fault_id]["failed"] = e.fields.get("error")
        elif e.event == "fault.healed" and fault_id in faults:
            faults[fault_id].update(reverted=True, reverted_at=e.t, revert_s=e.fields.get("revert_s"),
                                    evidence=e.fields.get("evidence"))
        elif e.event in ("cleanup.done", "cleanup.failed"):
            cleanup.append({"what": e.fields.get("what"), "ok": e.event == "cleanup.done",
                            **({"seconds": e.fields["seconds"]} if "seconds" in e.fields else {}),
                            **({"error": e.fields["error"]} if "error" in e.fields else {})})
    left = [f for f in faults.values() if not f["dry_run"] and not f["reverted"]]
    clean = not errors and not left
    if clean:
        summary = f"clean: {len(faults)} fault(s) reverted, {len(cleanup)} cleanup(s) ran, no residue found"
    else:
        summary = (f"NOT clean: {len(residue)} residue line(s), {len(errors) - len(residue)} failed cleanup(s), "
                   f"{len(left)} fault(s) not reverted")
    return {"clean": clean, "summary": summary, "residue": residue,
            "cleanup_errors": [e for e in errors if not e.startswith(RESIDUE_PREFIX)],
            "faults": list(faults.values()), "cleanup": cleanup}


ATTACHMENT_TYPES = {"text": ("text/plain", "txt"), "json": ("application/json", "json"), "csv": ("text/csv", "csv"),
                    "html": ("text/html", "html"), "svg": ("image/svg+xml", "svg")}
ALLURE_STATUS = {"passed": "passed", "failed": "failed", "not judged": "broken", "skipped": "skipped"}


def scenario_attachments(record: Mapping[str, Any], events: Sequence[JournalEvent], metrics_csv: Path | None = None
                         ) -> list[tuple[str, str, str]]:
    """Every attachment of one scenario as (name, body, kind), most telling first: the timeline and throughput
    charts, the RTO/RPO table, the verdicts (readable, then with their evidence), the measurements, the metrics
    CSV, the residue audit and the scenario's journal. Built from the judge's record and the journal only."""
    out: list[tuple[str, str, str]] = []
    for name, svg in (("timeline", timeline_svg(record)), ("throughput", throughput_svg(record))):
        if svg is not None:
            out.append((name, svg, "svg"))
    out.append(("RTO/RPO table", rto_rpo_table(record), "html"))
    verdicts = list(record.get("verdicts") or [])
    if verdicts:
        out.append(("verdicts", verdicts_text(verdicts), "text"))
        out.append(("verdicts with evidence", json.dumps(readable_times(verdicts), indent=2, default=str), "json"))
    measurements = {k: record[k] for k in ("rto_s", "phases_s", "delivery", "recovery", "rpo", "state", "order",
                                           "split_brain", "baseline") if k in record}
    out.append(("measurements", json.dumps(readable_times(measurements), indent=2, default=str), "json"))
    if metrics_csv is not None and metrics_csv.is_file():
        out.append(("metrics CSV", metrics_csv.read_text(encoding="utf-8"), "csv"))
    out.append(("residue audit", json.dumps(readable_times(residue_audit(record, events)), indent=2, default=str),
                "json"))
    out.append(("journal", journal_text(events), "text"))
    return out


def attach_scenario(record: Mapping[str, Any], events: Sequence[JournalEvent], metrics_csv: Path | None = None) -> None:
    """Attach :func:`scenario_attachments` to the running Allure test."""
    for name, body, kind in scenario_attachments(record, events, metrics_csv):
        attach_text(name, body, kind)


def rewrite_results(results: Path, scenarios: Sequence[tuple[Mapping[str, Any], list[tuple[str, str, str]]]]) -> int:
    """Rewrite the Allure results of judged scenarios (record, attachments): each test's status and message, the
    status of the steps whose claims were judged, and the attachments. Tests are matched by name, in order.
    Returns how many tests were rewritten."""
    files = sorted(results.glob("*-result.json"), key=lambda p: json.loads(p.read_text()).get("start", 0))
    pending = list(scenarios)
    rewritten = 0
    for path in files:
        test = json.loads(path.read_text())
        match = next((i for i, (record, _) in enumerate(pending) if record.get("name") == test.get("name")), None)
        if match is None:
            continue
        record, attachments = pending.pop(match)
        status = ALLURE_STATUS.get(str(record.get("status")), "broken")
        test["status"] = status
        test["statusDetails"] = {"message": record["error"]} if record.get("error") and status != "passed" else {}
        by_step = {str((v.get("evidence") or {}).get("step")): v for v in record.get("verdicts") or []}
        for step in test.get("steps") or []:
            verdict = by_step.get(str(step.get("name")))
            if verdict is not None:
                step["status"] = ALLURE_STATUS.get(str(verdict.get("status")), "broken")
                step["statusDetails"] = step_details(verdict)
        sources = {a.get("name"): a for a in test.get("attachments") or []}
        for name, body, kind in attachments:
            mime, ext = ATTACHMENT_TYPES[kind]
            entry = sources.get(name)
            if entry is None:
                entry = {"name": name, "source": f"{path.stem.removesuffix('-result')}-{len(sources)}-attachment.{ext}",
                         "type": mime}
                test.setdefault("attachments", []).append(entry)
                sources[name] = entry
            (results / entry["source"]).write_text(body, encoding="utf-8")
        path.write_text(json.dumps(test), encoding="utf-8")
        rewritten += 1
    return rewritten
