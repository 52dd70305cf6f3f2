"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright (no lab).

The pages are loaded served (a server on a free port of 127.0.0.1) and written with ``--static`` (opened from
``file://`` under a deep sub-path); the tests click through to a run, a scenario, a report and a comparison and
check the numbers shown against the history store. The live view is checked against a fake ``running.json``
(its pid a process that looks like ``failover-tester run``) and a journal appended as the test goes.

With ``DASHBOARD_SCREENSHOTS=<folder>`` the tests also save the screenshots of docs/dashboard.md there.
Chromium is installed by scripts/system-deps.sh when missing (as root); without root the tests skip.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_data import build_history

from support.dashboard.live import LiveView
from support.dashboard.pages import Site, fmt, write_static
from support.dashboard.server import make_server
from support.dashboard.store import History

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = os.environ.get("DASHBOARD_SCREENSHOTS")
WAIT_MS = 5000  # what an expectation waits for the page at most (it polls; it never sleeps)


def _chromium() -> Path:
    if not CHROMIUM.exists():
        if os.geteuid() != 0:
            pytest.skip(f"{CHROMIUM} is missing and installing it needs root (apt-get install chromium)")
        subprocess.run(["bash", str(ROOT / "scripts" / "system-deps.sh")], check=True)
    assert CHROMIUM.exists(), f"scripts/system-deps.sh did not install {CHROMIUM}"
    return CHROMIUM


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as play:
        chromium = play.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    tab.on("response", lambda res: errors.append(f"{res.status} {res.url}") if res.status >= 400 else None)
    tab.on("request", lambda req: errors.append(f"external request {req.url}")
           if not req.url.startswith(("http://127.0.0.1", "file://", "data:")) else None)
    yield tab
    context.close()
    assert errors == [], errors  # no script error, no request leaving the machine (the pages work offline)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[History, Path]:
    reports = tmp_path_factory.mktemp("reports")
    build_history(reports / "history.sqlite", reports)
    return History(reports / "history.sqlite"), reports


@pytest.fixture(scope="module")
def served(history: tuple[History, Path]) -> Iterator[str]:
    store, reports = history
    server = make_server(Site(store, reports, served=True, poll_ms=250), LiveView(reports), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _shot(tab: Any, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(Path(SHOTS) / name), full_page=False)


def _median(values: list[Any]) -> float | None:
    nums = [v for v in values if isinstance(v, int | float)]
    return statistics.median(nums) if nums else None


def _click_through(tab: Any, start: str, store: History, shots: bool) -> None:
    """From the index: the runs, one run's drills, its report, a scenario's charts and distributions, the
    comparison of two runs and the choice of another pair; every number against the store."""
    from playwright.sync_api import expect

    runs, drills = store.runs(), store.drills()
    tab.goto(start)
    expect(tab.locator("table.runs tbody tr")).to_have_count(len(runs))
    expect(tab.locator("#chart-runs canvas")).to_have_count(1)
    assert tab.evaluate("window.pwned") is None  # the hostile scenario name stayed text
    if shots:
        _shot(tab, "dashboard-index.png")
    latest = runs[-1]
    tab.locator(f'table.runs tr[data-run="{latest["run_id"]}"] a.run').click()
    expect(tab.locator("h1")).to_have_text(f"Run {latest['run_id']}")
    mine = [d for d in drills if d["run_id"] == latest["run_id"]]
    rows = tab.locator("table.drills tbody tr")
    expect(rows).to_have_count(len(mine))
    for i, drill in enumerate(mine):
        row = rows.nth(i)
        assert row.get_attribute("data-scenario") == drill["scenario"]
        assert row.locator("td.m-rto_s").inner_text() == fmt(drill["rto_s"])
        assert row.locator("td.m-takeover_s").inner_text() == fmt(drill["takeover_s"])
        assert row.locator("td.m-lost").inner_text() == fmt(drill["lost"], True)
    tab.locator("a.report").first.click()
    expect(tab.locator("h1")).to_have_text(f"Report of run {latest['run_id']}")
    tab.go_back()

    # a scenario with repeated drills: its charts and the distribution of each run's drills
    key = mine[1]["scenario"]
    tab.locator(f'table.drills tr[data-scenario="{key}"][data-repeat="1"] a.scenario').click()
    expect(tab.locator("h1")).to_have_text(key)
    for chart in ("rto", "losses", "repeats"):
        expect(tab.locator(f"#chart-{chart} canvas")).to_have_count(1)
    legend = tab.locator("#chart-rto .u-legend .u-series")
    expect(legend).to_have_count(6)  # x + RTO + 4 phases
    for run in runs:
        items = [d for d in drills if d["run_id"] == run["run_id"] and d["scenario"] == key]
        if not items:
            continue
        row = tab.locator(f'table.distributions tr[data-run="{run["run_id"]}"]')
        assert row.locator("td.n").inner_text() == str(len(items))
        assert row.locator("td.rto-p50").inner_text() == fmt(_median([d["rto_s"] for d in items]))
        assert row.locator("td.rto-max").inner_text() == fmt(max(d["rto_s"] for d in items))
    if shots:
        _shot(tab, "dashboard-scenario.png")

    # the comparison with the run before, then another pair chosen in the page
    tab.locator(f'a.run[href$="{latest["run_id"]}.html"]').first.click()
    tab.locator("a.compare").click()
    before = runs[-2]
    table = tab.locator("#compare-table")
    expect(table).to_have_attribute("data-pair", f"{before['run_id']} {latest['run_id']}")
    _check_pair(table, drills, before["run_id"], latest["run_id"])
    if shots:
        _shot(tab, "dashboard-compare.png")
    first = runs[0]["run_id"]
    tab.select_option("#run-a", first)
    expect(table).to_have_attribute("data-pair", f"{first} {latest['run_id']}")
    _check_pair(table, drills, first, latest["run_id"])


def _check_pair(table: Any, drills: list[dict[str, Any]], a: str, b: str) -> None:
    keys = sorted({d["scenario"] for d in drills if d["run_id"] in (a, b)})
    rows = table.locator("tbody tr")
    assert rows.count() == len(keys)
    for i, key in enumerate(keys):
        row = rows.nth(i)
        assert row.get_attribute("data-scenario") == key
        va = _median([d["rto_s"] for d in drills if d["run_id"] == a and d["scenario"] == key])
        vb = _median([d["rto_s"] for d in drills if d["run_id"] == b and d["scenario"] == key])
        assert row.locator("td.a.m-rto_s").inner_text() == fmt(va)
        assert row.locator("td.b.m-rto_s").inner_text() == fmt(vb)
        delta = "—" if va is None or vb is None else ("+" if vb - va > 0 else "") + fmt(vb - va)
        assert row.locator("td.d.m-rto_s").inner_text() == delta
        lost_b = _median([d["lost"] for d in drills if d["run_id"] == b and d["scenario"] == key])
        assert row.locator("td.b.m-lost").inner_text() == fmt(lost_b, True)


def test_served_pages_click_through_to_a_run_a_scenario_and_a_comparison(
        page: Any, served: str, history: tuple[History, Path]) -> None:
    _click_through(page, served + "index.html", history[0], shots=True)
    page.goto(served + "reports/" + history[0].runs()[0]["run_id"] + "/allure-report/index.html")
    assert page.locator("h1").inner_text() == f"Allure of {history[0].runs()[0]['run_id']}"


def test_static_pages_work_from_file_under_a_sub_path(page: Any, history: tuple[History, Path],
                                                      tmp_path: Path) -> None:
    store, reports = history
    out = tmp_path / "artifacts" / "dashboard"
    write_static(Site(store, reports, served=False), out)
    _click_through(page, out.joinpath("index.html").as_uri(), store, shots=False)
    assert page.locator("#live").is_hidden()  # nothing polls a file


@pytest.fixture()
def fake_run() -> Iterator[subprocess.Popen[bytes]]:
    """A process that passes for ``failover-tester run`` (support.cli.abort's pid check) until its stdin closes."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()", "failover-tester", "run"],
                            stdin=subprocess.PIPE)
    yield proc
    if proc.stdin is not None and not proc.stdin.closed:
        proc.stdin.close()
    proc.wait(timeout=10)


def test_the_live_run_shows_its_scenario_phase_and_fault_until_it_is_gone(
        page: Any, served: str, history: tuple[History, Path], fake_run: subprocess.Popen[bytes]) -> None:
    from playwright.sync_api import expect

    _, reports = history
    run_id = "20261209-100000-live"
    (reports / run_id).mkdir()
    journal = reports / run_id / "journal.jsonl"
    real = [json.loads(line) for line in
            (ROOT / "tests" / "data" / "runs" / "job-cancel" / "journal.jsonl").read_text().splitlines()]
    names = [e["event"] for e in real]
    running = reports / "running.json"
    running.write_text(json.dumps({"pid": fake_run.pid, "run_id": run_id, "started_at": real[0]["t"],
                                   "config": "config/lab.yaml"}))
    try:
        page.goto(served + "index.html")
        live = page.locator("#live")
        expect(live.locator("h2")).to_have_text(f"Live: run {run_id}")

        def append_through(event: str) -> None:
            upto = names.index(event) + 1
            done = len(journal.read_text().splitlines()) if journal.exists() else 0
            with journal.open("a") as out:
                for e in real[done:upto]:
                    out.write(json.dumps(e) + "\n")

        append_through("steady")
        expect(live.locator(".live-scenario")).to_have_text(real[0]["scenario"])
        expect(live.locator(".live-phase")).to_have_text("steady state")
        expect(live.locator(".live-fault")).to_have_text("none yet")
        append_through("fault.effective")
        fault = next(e for e in real if e["event"] == "fault.injected")
        expect(live.locator(".live-phase")).to_have_text("fault in effect")
        expect(live.locator(".live-fault")).to_have_text(f"{fault['kind']} on {fault['dc']} (in effect)")
        _shot(page, "dashboard-live.png")
        append_through("toolkit.takeover")
        expect(live.locator(".live-phase")).to_have_text("takeover")
        append_through("scenario.finished")
        expect(live.locator(".live-phase")).to_have_text("finished")
        expect(live.locator(".live-finished")).to_have_text("1 " + real[names.index("scenario.finished")]["status"])
        assert fake_run.stdin is not None
        fake_run.stdin.close()  # the run's process ends without removing running.json: stale
        fake_run.wait(timeout=10)
        expect(live).to_have_attribute("data-state", "stale")
        expect(live.locator("p.stale")).to_contain_text("is stale")
    finally:
        running.unlink()
    expect(live).to_be_hidden()
