"""``report merge``: the shards' run folders (made here from the stored lab run ``tests/data/runs/job-cancel``: two
shards whose ledger folders have the same name) become one run with every scenario once and the shards' verdicts,
which ``judge`` on the merged folder reproduces; folders that are not the shards of one split are refused."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest

from support.cli import main
from support.config.gates import parse_gates
from support.history.store import list_runs, rebuild, record_run, run_drills
from support.judge.rejudge import rejudge
from support.reporting.merge import MergeRefused, merge_runs, read_shards, refusals
from support.reporting.summary import read_scenarios, scenario_key, validate_summary, write_run_meta

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "runs" / "job-cancel"
SPLIT = {"total": 2, "fingerprint": "0123456789abcdef", "tags": ["@smoke"], "paths": ["features"]}


def _rename(folder: Path, old: str, new: str) -> None:
    """The scenario of a copied run under another name (shard 2 runs another scenario than shard 1)."""
    journal = folder / "journal.jsonl"
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    for event in events:
        if event.get("scenario") == old:
            event["scenario"] = new
    journal.write_text("".join(json.dumps(e) + "\n" for e in events))


def make_shard(root: Path, index: int, count: int = 2, **meta: Any) -> Path:
    folder = root / f"shard-{index}"
    shutil.copytree(FIXTURE, folder)
    (folder / "run.json").unlink()
    name = "dc2 takes over when the orders job in dc1 is canceled"
    if index > 1:
        _rename(folder, name, f"{name} (runner {index})")
        name = f"{name} (runner {index})"
    write_run_meta(folder, {"run_id": f"run-{index}", "config": f"/runner{index}/config/lab.yaml",
                            "target": f"pair-{index}", "started_at": 1000.0 + index, "finished_at": 2000.0 + index,
                            "behave_exit_code": 0, "shard": f"{index}/{count}", "shard_selection": dict(SPLIT),
                            **meta})
    rejudge(folder)  # scenarios.jsonl and summary.json as the shard's own run wrote them
    results = folder / "allure-results"
    results.mkdir()
    (results / f"{index}aaa-result.json").write_text(json.dumps({"name": name, "status": "passed", "start": index}))
    (results / f"{index}aaa-attachment.txt").write_text("evidence")
    (results / "environment.properties").write_text(f"target=pair-{index}\n")
    junit = folder / "junit"
    junit.mkdir()
    (junit / "TESTS-orders.xml").write_text(
        f'<testsuite name="orders" tests="1" errors="0" failures="0" skipped="0" time="1.5" '
        f'timestamp="2026-12-06T10:0{index}:00"><testcase name="{name}" status="passed" time="1.5"/></testsuite>')
    return folder


def verdicts(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {scenario_key(r): (r["status"], [(v["name"], v["status"], v["passed"]) for v in r["verdicts"]])
            for r in records}


def test_two_shards_merge_into_one_run_with_their_verdicts(tmp_path: Path) -> None:
    shards = [make_shard(tmp_path, 1), make_shard(tmp_path, 2)]
    out = tmp_path / "merged"
    summary = merge_runs(list(reversed(shards)), out, "merged-run")  # the order of the folders does not matter
    validate_summary(summary)
    expected = {**verdicts(read_scenarios(shards[0])), **verdicts(read_scenarios(shards[1]))}
    assert len(expected) == 2 and summary["totals"]["scenarios"] == 2 and summary["status"] == "passed"
    assert verdicts(summary["scenarios"]) == expected
    assert [s["name"] for s in summary["scenarios"]][1].endswith("(runner 2)")  # shard order
    meta = json.loads((out / "run.json").read_text())
    assert meta["shard"] == "merged" and meta["shards"] == ["run-1", "run-2"] and meta["target"] == "pair-1, pair-2"
    assert meta["started_at"] == 1001.0 and meta["finished_at"] == 2002.0
    # the two shards' ledger folders had the same name: prefixed, and the journal follows
    sid = "01-dc2-takes-over-when-the-orders-job-in-dc1-is-canceled"
    assert sorted(p.name for p in (out / "ledgers").iterdir()) == [f"s1-{sid}", f"s2-{sid}"]
    sids = {json.loads(line).get("sid") for line in (out / "journal.jsonl").read_text().splitlines()}
    assert sids == {f"s1-{sid}", f"s2-{sid}"}
    # Allure: every shard's file copied as it was, one environment
    results = out / "allure-results"
    assert (results / "1aaa-result.json").read_text() == (shards[0] / "allure-results" / "1aaa-result.json").read_text()
    assert (results / "2aaa-attachment.txt").exists()
    assert "merged_from=1/2=run-1 2/2=run-2" in (results / "environment.properties").read_text()
    # JUnit: the feature both shards ran is one suite
    suite = ElementTree.parse(out / "junit" / "TESTS-orders.xml").getroot()
    assert suite.get("tests") == "2" and len(suite.findall("testcase")) == 2 and float(suite.get("time", "0")) == 3.0
    assert suite.get("timestamp") == "2026-12-06T10:01:00"
    assert (out / "report.html").exists() and (out / "shards" / "s2" / "summary.json").exists()
    # judged again from disk, the merged run gives the same verdicts
    assert verdicts(rejudge(out)["scenarios"]) == expected


def test_a_shard_with_nothing_to_run_is_part_of_the_merge(tmp_path: Path) -> None:
    shards = [make_shard(tmp_path, 1, 3), make_shard(tmp_path, 2, 3)]
    empty = tmp_path / "shard-3"
    empty.mkdir()
    write_run_meta(empty, {"run_id": "run-3", "config": "config/lab.yaml", "shard": "3/3", "nothing_to_run": True,
                           "shard_selection": dict(SPLIT), "behave_exit_code": 0})
    summary = merge_runs([*shards, empty], tmp_path / "merged", "m")
    assert summary["totals"]["scenarios"] == 2 and summary["status"] == "passed"
    assert json.loads((tmp_path / "merged" / "run.json").read_text())["shards"] == ["run-1", "run-2", "run-3"]


@pytest.mark.parametrize(("change", "message"), [
    ("missing", "shard(s) 2/3 missing (have 1/3, 3/3)"),
    ("twice", "shard 1/2 given twice"),
    ("other-n", "shards of different splits"),
    ("tags", "differ in their --tags"),
    ("selection", "differ in their selected scenarios"),
    ("config", "differently named configs"),
    ("settings", "judged under different settings"),
    ("not-a-shard", "not a shard (run without --shard)"),
])
def test_folders_that_are_not_one_split_are_refused(tmp_path: Path, change: str, message: str) -> None:
    if change == "missing":
        folders = [make_shard(tmp_path, 1, 3), make_shard(tmp_path, 3, 3)]
    elif change == "twice":
        folders = [make_shard(tmp_path, 1)]
        folders.append(shutil.copytree(folders[0], tmp_path / "again"))
    elif change == "other-n":
        folders = [make_shard(tmp_path, 1), make_shard(tmp_path, 2, 3)]
    else:
        folders = [make_shard(tmp_path, 1), make_shard(tmp_path, 2)]
        second = folders[1]
        if change == "tags":
            write_run_meta(second, {"shard_selection": {**SPLIT, "tags": ["@nightly"]}})
        elif change == "selection":
            write_run_meta(second, {"shard_selection": {**SPLIT, "fingerprint": "feedfacefeedface"}})
        elif change == "config":
            write_run_meta(second, {"config": "config/prod.yaml"})
        elif change == "settings":
            config = second / "config.yaml"
            config.write_text(config.read_text().replace("settle_period: 4 seconds", "settle_period: 9 seconds"))
        elif change == "not-a-shard":
            meta = json.loads((second / "run.json").read_text())
            del meta["shard"]
            (second / "run.json").write_text(json.dumps(meta))
    with pytest.raises(MergeRefused, match=re.escape(message)):
        merge_runs(folders, tmp_path / "merged", "m")
    assert not (tmp_path / "merged").exists()
    if change not in ("twice",):  # --force merges what there is (two copies of one shard would collide)
        summary = merge_runs(folders, tmp_path / "forced", "m", force=True)
        assert summary["totals"]["scenarios"] == 2


def test_the_cli_refuses_in_one_line_with_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shard = make_shard(tmp_path, 1, 2)
    code = main(["report", "merge", str(shard), "--out", str(tmp_path / "merged")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "shard(s) 2/2 missing" in err


def test_the_cli_merges_and_prints_the_result(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLURE_BIN", str(tmp_path / "no-allure"))  # not rendered here: the lab test renders it
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    shards = [make_shard(tmp_path, 1), make_shard(tmp_path, 2)]
    code = main(["report", "merge", *map(str, shards)])
    out = capsys.readouterr().out
    assert code == 0 and "result:   passed (2 passed, 0 failed, 0 not judged)" in out
    merged = [p for p in tmp_path.iterdir() if (p / "run.json").exists() and p.name not in ("shard-1", "shard-2")]
    assert len(merged) == 1 and json.loads((merged[0] / "run.json").read_text())["shard"] == "merged"


def test_the_merged_run_is_recorded_once_in_the_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ALLURE_BIN", str(tmp_path / "no-allure"))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    shards = [make_shard(tmp_path, 1), make_shard(tmp_path, 2)]
    db = tmp_path / "history.sqlite"
    for shard in shards:  # each shard's run recorded itself where it ran (here: the same reports folder)
        record_run(shard, db)
    assert main(["report", "merge", *map(str, shards), "--out", str(tmp_path / "merged")]) == 0
    assert f"history:  {db}" in capsys.readouterr().out
    runs = list_runs(db)
    assert [(r["shard"], r["report_dir"]) for r in runs] == [("merged", str((tmp_path / "merged").resolve()))]
    assert len(run_drills(db, runs[0]["run_id"])) == 2  # every scenario of both shards, once
    assert rebuild(tmp_path, db).recorded == [runs[0]["run_id"]]  # rebuilt from the folders: still one entry


def test_the_merged_run_judges_the_shards_gates_on_all_their_drills(tmp_path: Path) -> None:
    gate = parse_gates([{"max_lost": 0, "name": "nothing lost"}])[0].to_json()
    shards = [make_shard(tmp_path, 1), make_shard(tmp_path, 2)]
    for shard in shards:
        write_run_meta(shard, {"gates": [gate], "repeat": 1})
    summary = merge_runs(shards, tmp_path / "merged", "merged-1")
    assert [(o["name"], o["status"]) for o in summary["objectives"]] == [("nothing lost", "met")]
    assert json.loads((tmp_path / "merged" / "run.json").read_text())["gates"] == [gate]
    write_run_meta(shards[1], {"gates": []})  # one shard without the gate: the merged verdict would be half-judged
    assert any("different gates" in p for p in refusals(read_shards(shards)))
