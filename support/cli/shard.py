"""``run --shard I/N``: the selected scenarios split across N runners; this runner runs shard I.

The selection is the one ``run`` would make (the feature paths and ``--tags``, parsed as :mod:`support.cli.precheck`
parses them; every row of a Scenario Outline is a scenario of its own). It is sorted by (feature file, line) and dealt
round robin: the k-th scenario (from 0) goes to shard ``k % N + 1``. So every scenario is in exactly one shard, shard
sizes differ by at most one, and any runner given the same checkout, paths and tags computes the same split without
talking to the others. Adding a scenario moves the ones after it to other shards; that is harmless because the shards
of one run come from one checkout (the merge checks: each shard records a fingerprint of the whole selection). A
stable hash of each scenario would keep scenarios on their shard across commits but balances badly at the counts a
drill programme has (4 scenarios on 2 shards can hash 4/0); the runners of a split are alike, so balance wins.

Behave is given the shard's scenarios as ``FILE:LINE`` arguments. A shard that gets no scenario (more shards than
scenarios) passes with a "nothing to run" line and leaves a run folder that says so, so that a CI matrix with a fixed N
stays green and the merge finds every shard. A selection that is empty altogether is a usage problem (a misspelt tag):
every shard exits 2.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SelectedScenario", "ShardError", "ShardPlan", "assign", "nothing_to_run", "parse_shard", "plan_shard",
           "select_scenarios"]

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class ShardError(ValueError):
    """A bad ``--shard`` value or a selection that cannot be split (one line)."""


@dataclass(frozen=True, order=True)
class SelectedScenario:
    """One scenario of the selection (an outline row is one): where behave finds it, and its names."""

    file: str
    line: int
    feature: str = field(compare=False)
    name: str = field(compare=False)

    @property
    def location(self) -> str:
        """``FILE:LINE``, as behave takes it."""
        return f"{self.file}:{self.line}"


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` as (I, N), 1 ≤ I ≤ N; :class:`ShardError` otherwise."""
    match = _SHARD.match(text or "")
    if match is None:
        raise ShardError(f"--shard {text!r}: expected I/N, e.g. 1/2 (runner I of N)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise ShardError(f"--shard {text}: I must be between 1 and N, and N at least 1")
    return index, count


def select_scenarios(tags: Sequence[str], paths: Sequence[str]) -> list[SelectedScenario]:
    """The scenarios ``paths`` and ``tags`` select (outline rows expanded), sorted by (file, line)."""
    from behave.parser import ParserError, parse_file
    from behave.tag_expression import make_tag_expression

    from support.cli.precheck import _feature_files, _selected

    expression = make_tag_expression(list(tags)) if tags else None
    found: set[SelectedScenario] = set()
    for file, lines in _feature_files(paths):
        try:
            feature = parse_file(str(file))
        except (ParserError, OSError, UnicodeDecodeError) as exc:
            raise ShardError(f"{file}: {' '.join(str(exc).split())}") from exc
        if feature is None:
            continue
        scenarios = feature.walk_scenarios(with_outlines=False, with_rules=False)
        for scenario in _selected(scenarios, lines):
            if expression is None or expression.check(scenario.effective_tags):
                found.add(SelectedScenario(Path(os.path.normpath(file)).as_posix(), int(scenario.line),
                                           str(feature.name), str(scenario.name)))
    return sorted(found)


def assign(scenarios: Sequence[SelectedScenario], index: int, count: int) -> list[SelectedScenario]:
    """Shard ``index`` of ``count`` (1-based): the k-th of the sorted scenarios when ``k % count == index - 1``."""
    ordered = sorted(scenarios)
    return [s for k, s in enumerate(ordered) if k % count == index - 1]


def fingerprint(scenarios: Sequence[SelectedScenario]) -> str:
    """A digest of the whole selection (locations and names): equal on every shard of one split."""
    text = "\n".join(f"{s.location}\t{s.feature}\t{s.name}" for s in sorted(scenarios))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class ShardPlan:
    """What shard ``index`` of ``count`` runs, out of ``selected``."""

    index: int
    count: int
    tags: tuple[str, ...]
    paths: tuple[str, ...]
    selected: tuple[SelectedScenario, ...]

    @property
    def mine(self) -> list[SelectedScenario]:
        return assign(self.selected, self.index, self.count)

    @property
    def label(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def locations(self) -> list[str]:
        """The shard's scenarios as behave's ``FILE:LINE`` arguments."""
        return [s.location for s in self.mine]

    @property
    def behave_options(self) -> list[str]:
        """Options behave needs to run only the shard: scenarios deselected by line are not reported as skipped
        (they belong to another shard; the merge would count them twice)."""
        return ["--no-skipped"]

    def meta(self) -> dict[str, Any]:
        """What ``run.json`` records: ``shard`` ("I/N") and the split, for ``report merge`` to check."""
        return {"shard": self.label, "shard_selection": {
            "total": len(self.selected), "fingerprint": fingerprint(self.selected), "tags": list(self.tags),
            "paths": list(self.paths), "scenarios": self.locations}}

    def headline(self) -> str:
        mine = len(self.mine)
        return f"shard {self.label}: {mine} of the {len(self.selected)} selected scenario(s)"


def plan_shard(text: str, tags: Sequence[str], paths: Sequence[str]) -> ShardPlan:
    """The plan of ``--shard text``; :class:`ShardError` for a bad value or an empty selection."""
    index, count = parse_shard(text)
    selected = select_scenarios(tags, paths)
    if not selected:
        what = " ".join(f"--tags {t}" for t in tags) or "no tags"
        raise ShardError(f"--shard {index}/{count}: {what} in {' '.join(paths)} select(s) no scenario: nothing to "
                         "split (a misspelt tag or path?)")
    return ShardPlan(index, count, tuple(tags), tuple(paths), tuple(selected))


def nothing_to_run(plan: ShardPlan, run_id: str, reports: Path, meta: dict[str, Any], write: bool = True) -> int:
    """A shard without scenarios: one line and exit code 0; with ``write`` (not for ``--dry-run``) also a run folder
    whose ``run.json`` says so (for ``report merge``), and ``latest`` pointing at it."""
    from support.reporting.summary import write_run_meta

    if not write:
        print(f"{plan.headline()}: nothing to run (dry run: no run folder)")
        return 0
    run_dir = reports / run_id
    run_dir.mkdir(parents=True)
    now = time.time()
    write_run_meta(run_dir, {"run_id": run_id, **meta, "started_at": now, "finished_at": now, "behave_exit_code": 0,
                             "nothing_to_run": True, **plan.meta()})
    latest = reports / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(run_id)
    print(f"{plan.headline()}: nothing to run (the {len(plan.selected)} scenario(s) went to the other shards); "
          f"run folder {run_dir}", file=sys.stdout)
    return 0
