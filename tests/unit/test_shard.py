"""``run --shard I/N``: the split is deterministic, balanced and covers every selected scenario exactly once (outline
rows included); bad values exit 2 in one line; a shard with nothing to run passes and says so; ``--dry-run`` plans the
shard's scenarios only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from faultfakes import lab_shaped_config

from support.cli import main
from support.cli.shard import ShardError, assign, parse_shard, plan_shard, select_scenarios

STEPS = ('    Given the "orders" application runs active in "dc1" with "dc2" on standby\n'
         "    And orders flow at 20 tuples per second\n")


def _feature(folder: Path, name: str, scenarios: int, outline_rows: int = 0, tag: str = "") -> Path:
    text = f"{tag}\nFeature: {name}\n\n"
    for k in range(scenarios):
        text += f"  @s{k}\n  Scenario: {name} scenario {k}\n{STEPS}\n"
    if outline_rows:
        text += f"  Scenario Outline: {name} at <rate>\n{STEPS}\n    Examples:\n      | rate |\n"
        text += "".join(f"      | {10 * (r + 1)} |\n" for r in range(outline_rows))
    path = folder / f"{name}.feature"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def features(tmp_path: Path) -> Path:
    folder = tmp_path / "features"
    (folder / "more").mkdir(parents=True)
    _feature(folder, "alpha", 3, outline_rows=3, tag="@programme")
    _feature(folder, "beta", 2, tag="@programme")
    _feature(folder / "more", "gamma", 4, outline_rows=2)
    return folder


@pytest.mark.parametrize("text", ["0/2", "3/2", "1/0", "a/b", "2", "", "1/2/3", "-1/2"])
def test_a_bad_shard_value_is_refused(text: str) -> None:
    with pytest.raises(ShardError, match="--shard"):
        parse_shard(text)


def test_good_shard_values_parse() -> None:
    assert parse_shard("1/1") == (1, 1) and parse_shard("3/4") == (3, 4) and parse_shard(" 2 / 5 ") == (2, 5)


def test_outline_rows_count_as_scenarios(features: Path) -> None:
    selected = select_scenarios([], [str(features)])
    assert len(selected) == 3 + 3 + 2 + 4 + 2
    rows = [s for s in selected if " at " in s.name]
    assert len(rows) == 5 and len({s.line for s in rows}) == 5  # each row its own FILE:LINE
    assert [s.location for s in selected] == sorted(s.location for s in selected) or selected == sorted(selected)


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 13, 20])
def test_every_scenario_is_in_exactly_one_shard_and_shards_are_balanced(features: Path, count: int) -> None:
    selected = select_scenarios([], [str(features)])
    shards = [assign(selected, index, count) for index in range(1, count + 1)]
    everything = [s for shard in shards for s in shard]
    assert sorted(everything) == sorted(selected) and len(set(everything)) == len(selected)
    sizes = [len(shard) for shard in shards]
    assert max(sizes) - min(sizes) <= 1


def test_the_split_is_the_same_whichever_order_the_paths_come_in(features: Path) -> None:
    files = sorted(str(p) for p in features.rglob("*.feature"))
    forward = plan_shard("2/3", [], files)
    backward = plan_shard("2/3", [], list(reversed(files)))
    again = plan_shard("2/3", [], [str(features)])
    assert forward.locations == backward.locations == again.locations
    assert forward.meta()["shard_selection"]["fingerprint"] == backward.meta()["shard_selection"]["fingerprint"]


def test_tags_select_before_the_split(features: Path) -> None:
    plan = plan_shard("1/2", ["@programme"], [str(features)])
    assert len(plan.selected) == 8 and all("gamma" not in s.file for s in plan.selected)
    assert len(plan.mine) == 4
    with pytest.raises(ShardError, match=r"select.* no scenario"):
        plan_shard("1/2", ["@nowhere"], [str(features)])


def test_a_scenario_added_at_the_end_moves_no_other(features: Path) -> None:
    before = {index: plan_shard(f"{index}/3", [], [str(features)]).locations for index in (1, 2, 3)}
    _feature(features / "more", "zeta", 1)  # sorts last
    after = {index: plan_shard(f"{index}/3", [], [str(features)]).locations for index in (1, 2, 3)}
    assert all(set(before[i]) <= set(after[i]) for i in before)
    assert sum(len(v) for v in after.values()) == sum(len(v) for v in before.values()) + 1


def test_the_cli_refuses_a_bad_shard_in_one_line(tmp_path: Path, features: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    config = lab_shaped_config(tmp_path)
    code = main(["run", "--dry-run", "--shard", "3/2", "--config", str(config.source), str(features)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--shard 3/2" in err


def test_dry_run_plans_the_shards_scenarios_only(tmp_path: Path, features: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    config = lab_shaped_config(tmp_path)
    code = main(["run", "--dry-run", "--shard", "2/4", "--config", str(config.source), str(features)])
    out = capsys.readouterr().out
    mine = plan_shard("2/4", [], [str(features)]).mine
    assert code == 0 and "shard 2/4: 4 of the 14 selected scenario(s)" in out
    planned = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith(str(features))]
    assert sorted(planned) == sorted(s.name for s in mine)


def test_a_shard_with_nothing_to_run_passes_and_leaves_a_run_folder(tmp_path: Path, features: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    config = lab_shaped_config(tmp_path)
    reports = tmp_path / "reports"
    (tmp_path / "environment.py").write_text("")  # a project folder, as `run` wants one (behave is not started)
    code = main(["run", "--shard", "3/3", "--tags", "@s1", "--tags", "@programme", "--config", str(config.source),
                 "--set", f"run.reports_dir={reports}", str(features)])  # 2 scenarios: shard 3 gets none
    out = capsys.readouterr().out
    assert code == 0 and "shard 3/3: 0 of the 2 selected scenario(s): nothing to run" in out
    meta = json.loads((reports / "latest" / "run.json").read_text())
    assert meta["shard"] == "3/3" and meta["nothing_to_run"] is True
    assert meta["shard_selection"]["total"] == 2 and meta["shard_selection"]["scenarios"] == []


def test_a_dry_run_of_an_empty_shard_writes_nothing(tmp_path: Path, features: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    config = lab_shaped_config(tmp_path)
    reports = tmp_path / "reports"
    code = main(["run", "--dry-run", "--shard", "3/3", "--tags", "@s1", "--tags", "@programme", "--config",
                 str(config.source), "--set", f"run.reports_dir={reports}", str(features)])
    assert code == 0 and "nothing to run" in capsys.readouterr().out and not reports.exists()
