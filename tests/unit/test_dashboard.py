"""The dashboard without a browser: the store reader, the pages, the static copy, the live view, the server."""

from __future__ import annotations

import json
import re
import sqlite3
import statistics
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from dashboard_data import HOSTILE_NAME, build_history

from support.cli import main
from support.dashboard.live import LiveView
from support.dashboard.pages import Site, fmt, run_file, scenario_slug, write_static
from support.dashboard.server import make_server
from support.dashboard.store import History, percentile, stats


@pytest.fixture()
def store(tmp_path: Path) -> tuple[History, Path, list[dict]]:
    reports = tmp_path / "reports"
    reports.mkdir()
    runs = build_history(reports / "history.sqlite", reports)
    return History(reports / "history.sqlite"), reports, runs


# --- the store ----------------------------------------------------------------------------------------------------
def test_the_reader_returns_every_run_and_drill_in_time_order(store: tuple[History, Path, list[dict]]) -> None:
    history, _, runs = store
    read = history.runs()
    assert [r["run_id"] for r in read] == sorted((r["run_id"] for r in runs), key=lambda i: i)  # ids sort by time
    assert isinstance(read[-1]["totals"], dict) and read[-1]["totals"]["scenarios"] == 15
    assert read[-1]["objectives"][0]["metric"] == "rto_s"
    assert len(history.drills()) == sum(len(r["scenarios"]) for r in runs)
    starts = [r["started_at"] for r in read]
    assert starts == sorted(starts)


def test_the_reader_takes_columns_by_name_and_ignores_new_ones(store: tuple[History, Path, list[dict]]) -> None:
    history, _, _ = store
    con = sqlite3.connect(history.path)
    con.execute("ALTER TABLE drills ADD COLUMN p99_future REAL")
    con.commit()
    con.close()
    drill = history.drills()[0]
    assert "p99_future" not in drill and drill["rto_s"] == 2.087


def test_a_missing_store_is_an_empty_history_and_is_not_created(tmp_path: Path) -> None:
    history = History(tmp_path / "history.sqlite")
    assert history.runs() == [] and history.drills() == []
    page = Site(history, tmp_path).render("index.html")
    assert page is not None and "No history yet" in page
    assert not (tmp_path / "history.sqlite").exists()


def test_percentiles_interpolate_between_ranks() -> None:
    values = [3.0, 1.0, 2.0, 10.0]
    assert percentile(values, 50) == statistics.median(values)
    assert percentile(values, 95) == pytest.approx(8.95)
    assert stats([None, 2.0, "x", 4]) == {"n": 2, "min": 2.0, "p50": 3.0, "p95": pytest.approx(3.9), "max": 4.0}
    assert percentile([], 50) is None


# --- the pages ----------------------------------------------------------------------------------------------------
class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.links.append(value)


def test_user_text_from_the_store_is_escaped_in_markup_and_in_the_page_data(
        store: tuple[History, Path, list[dict]]) -> None:
    history, reports, _ = store
    site = Site(history, reports)
    key = next(d["scenario"] for d in history.drills() if HOSTILE_NAME in d["scenario"])
    for path in ("index.html", f"scenarios/{scenario_slug(key)}.html", "compare.html",
                 "runs/20261208-090000-bbb2.html"):
        page = site.render(path)
        assert page is not None
        assert "<script>window.pwned" not in page and '<img src=x onerror' not in page, path
        assert page.count("</script>") == page.count("<script"), path  # the JSON data never closes its element
    index = site.render("index.html")
    assert index is not None and "&lt;script&gt;window.pwned=2&lt;/script&gt;" in index


def test_the_run_page_shows_each_drill_s_numbers(store: tuple[History, Path, list[dict]]) -> None:
    history, reports, _ = store
    page = Site(history, reports).render("runs/20261206-134036-8bf6.html")
    assert page is not None
    rows = re.findall(r'<tr data-scenario="([^"]*)" data-repeat="1">(.*?)</tr>', page, re.S)
    drills = [d for d in history.drills() if d["run_id"] == "20261206-134036-8bf6"]
    assert len(rows) == len(drills) == 4
    for (_, row), drill in zip(rows, drills, strict=True):
        assert f'm-rto_s">{fmt(drill["rto_s"])}<' in row
        assert f'm-lost">{fmt(drill["lost"], True)}<' in row


def test_the_static_pages_link_only_to_files_they_carry(store: tuple[History, Path, list[dict]],
                                                        tmp_path: Path) -> None:
    history, reports, runs = store
    out = tmp_path / "site" / "deep" / "sub"
    write_static(Site(history, reports, served=False), out)
    pages = sorted(out.rglob("*.html"))
    assert len([p for p in pages if p.parent.name == "runs"]) == len(runs)
    checked = 0
    for page in pages:
        if "reports" in page.relative_to(out).parts:
            continue
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        for link in parser.links:
            if link == "data:,":  # the empty icon (no favicon request)
                continue
            assert not re.match(r"[a-z]+:|/", link), f"{page}: {link} is not relative"
            target = (page.parent / link.split("?")[0]).resolve()
            assert target.is_file(), f"{page}: {link} leads nowhere"
            checked += 1
    assert checked > 200
    assert (out / "reports" / runs[0]["run_id"] / "allure-report" / "index.html").is_file()
    assert not (out / "reports" / runs[0]["run_id"] / "config.yaml").exists()
    assert 'data-live="0"' in (out / "index.html").read_text(encoding="utf-8")


def test_a_run_s_report_files_and_nothing_else_of_its_folder_are_served(store: tuple[History, Path, list[dict]],
                                                                         tmp_path: Path) -> None:
    history, reports, runs = store
    site = Site(history, reports)
    rid = runs[-1]["run_id"]
    assert site.report_file(f"reports/{rid}/report.html") == (reports / rid / "report.html").resolve()
    assert site.report_file(f"reports/{rid}/allure-report/") == (reports / rid / "allure-report" / "index.html"
                                                                ).resolve()
    outside = tmp_path / "secret.txt"
    outside.write_text("no")
    (reports / rid / "allure-report" / "escape.txt").symlink_to(outside)
    for path in (f"reports/{rid}/config.yaml", f"reports/{rid}/../{rid}/config.yaml", "reports/../history.sqlite",
                 f"reports/{rid}/allure-report/../config.yaml", f"reports/{rid}/allure-report/escape.txt",
                 "reports/unknown-run/report.html"):
        assert site.report_file(path) is None, path


def test_file_names_are_safe_for_any_run_id_and_scenario() -> None:
    assert run_file("20261206-134036-8bf6") == "20261206-134036-8bf6"
    assert "/" not in run_file("../../etc") and run_file("..") != ".."
    slug = scenario_slug('F :: a "name" / with <markup>')
    assert re.fullmatch(r"[a-z0-9-]+", slug) and slug != scenario_slug('F :: a "name" / with <markup>!')


# --- the live run -------------------------------------------------------------------------------------------------
@pytest.fixture()
def fake_run() -> Iterator[subprocess.Popen[bytes]]:
    """A process that looks like ``failover-tester run`` to the pid check (support.cli.abort), until stdin closes."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()", "failover-tester", "run"],
                            stdin=subprocess.PIPE)
    yield proc
    if proc.stdin is not None:
        proc.stdin.close()
    proc.wait(timeout=10)


def _event(event: str, **fields: object) -> str:
    return json.dumps({"event": event, "t": 1796564437.0, "mono": 1.0, "scenario": "a scenario", **fields}) + "\n"


def test_the_live_view_follows_the_journal_and_tells_a_stale_run(tmp_path: Path,
                                                                 fake_run: subprocess.Popen[bytes]) -> None:
    view = LiveView(tmp_path)
    assert view.status()["state"] == "idle"
    (tmp_path / "running.json").write_text(json.dumps({"pid": fake_run.pid, "run_id": "R1", "started_at": 1.0,
                                                       "config": "config/lab.yaml"}))
    (tmp_path / "R1").mkdir()
    journal = tmp_path / "R1" / "journal.jsonl"
    journal.write_text(_event("scenario.started", feature="F") + _event("toolkit.takeover", dc="dc2"))
    status = view.status()
    assert status["live"] and status["run_id"] == "R1" and status["scenario"]["feature"] == "F"
    assert status["phase"] == "deploying"  # a takeover before any fault is the deployment settling
    with journal.open("a") as out:
        out.write(_event("fault.injected", kind="partition", id="f1", dc="dc1") + _event("fault.effective", id="f1"))
        out.write(_event("toolkit.takeover", dc="dc2")[:20])  # a line still being written
    status = view.status()
    assert status["phase"] == "fault in effect" and status["fault"]["kind"] == "partition"
    assert status["fault"]["state"] == "in effect" and status["events"] == 4
    with journal.open("a") as out:
        out.write(_event("toolkit.takeover", dc="dc2")[20:])
        out.write(_event("verdict", name="takeover", status="passed", summary="dc2 took over"))
        out.write(_event("scenario.finished", status="passed"))
    status = view.status()
    assert status["phase"] == "finished" and status["finished"] == {"passed": 1} and status["events"] == 7
    assert status["verdicts"] == [{"name": "takeover", "status": "passed", "summary": "dc2 took over"}]
    assert status["recent"][0]["event"] == "scenario.finished"
    assert fake_run.stdin is not None
    fake_run.stdin.close()
    fake_run.wait(timeout=10)
    stale = view.status()
    assert stale["state"] == "stale" and not stale["live"] and stale["run_id"] == "R1"


# --- the server ---------------------------------------------------------------------------------------------------
def test_the_server_serves_pages_assets_reports_and_live_and_writes_nothing(
        store: tuple[History, Path, list[dict]]) -> None:
    history, reports, runs = store
    server = make_server(Site(history, reports), LiveView(reports), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        with urllib.request.urlopen(base) as answer:
            assert "Content-Security-Policy" in answer.headers and b"Failover drills" in answer.read()
        with urllib.request.urlopen(base + "api/live.json") as answer:
            assert json.load(answer)["state"] == "idle"
        with urllib.request.urlopen(base + "assets/dashboard.js") as answer:
            assert answer.headers["Content-Type"].startswith("text/javascript")
        with urllib.request.urlopen(base + f"reports/{runs[0]['run_id']}/report.html") as answer:
            assert runs[0]["run_id"].encode() in answer.read()
        for path in (f"reports/{runs[0]['run_id']}/config.yaml", "runs/nope.html", "history.sqlite"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(base + path)
            assert err.value.code == 404, path
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(urllib.request.Request(base + "index.html", data=b"x", method="POST"))
        assert err.value.code == 501
    finally:
        server.shutdown()
        server.server_close()


def test_the_verb_writes_the_static_site_and_refuses_a_missing_store(store: tuple[History, Path, list[dict]],
                                                                     tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    _, reports, _ = store
    assert main(["dashboard", "--reports-dir", str(reports), "--static", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "index.html").is_file() and (tmp_path / "out" / "compare.html").is_file()
    assert main(["dashboard", "--db", str(tmp_path / "none.sqlite"), "--reports-dir", str(reports)]) == 2
    assert "no such history store" in capsys.readouterr().err


def test_the_phases_of_a_real_journal_come_in_order_and_never_step_back(tmp_path: Path,
                                                                        fake_run: subprocess.Popen[bytes]) -> None:
    real = (Path(__file__).parents[1] / "data" / "runs" / "job-cancel" / "journal.jsonl").read_text().splitlines()
    late = json.loads(real[0]) | {"event": "toolkit.remote_down", "dc": "dc1"}  # the old side noticing, later
    lines = [*real[:-1], json.dumps(late), real[-1]]
    (tmp_path / "running.json").write_text(json.dumps({"pid": fake_run.pid, "run_id": "R"}))
    (tmp_path / "R").mkdir()
    view, seen = LiveView(tmp_path), [""]
    with (tmp_path / "R" / "journal.jsonl").open("a") as journal:
        for line in lines:
            journal.write(line + "\n")
            journal.flush()
            phase = view.status()["phase"]
            if phase != seen[-1]:
                seen.append(phase)
    assert seen[1:] == ["deploying", "warming up", "steady state", "fault injected", "fault in effect",
                        "down detected", "takeover", "draining", "healing", "cleaning up", "finished"]
