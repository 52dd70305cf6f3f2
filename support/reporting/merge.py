"""``failover-tester report merge``: the run folders of the shards of one split (``run --shard I/N``) joined into one
run folder, as if one runner had run every scenario.

What the merged folder holds, and where it comes from:

- ``scenarios.jsonl``: every shard's records, unchanged, shard 1's first; ``summary.json`` is built from it by
  :func:`~support.reporting.summary.build_summary` (so whatever that computes from the records applies to a merged run
  too), ``report.html`` by :func:`~support.reporting.html.write_report`;
- ``journal.jsonl`` and ``ledgers/``: every shard's, each scenario's folder renamed ``s<I>-<folder>`` (two shards both
  have a ``01-...``) and its journal events' ``sid`` with it, so ``failover-tester judge`` on the merged folder judges
  every scenario from disk as its shard did; ``config.yaml`` is the first shard's, and the merge refuses shards judged
  under different settings, which would judge differently there;
- ``allure-results/``: every shard's result, container and attachment file copied as it is (nothing that carries a
  verdict is rewritten), a new ``environment.properties``; rendered once into ``allure-report/``;
- ``junit/``: one file per feature; a feature split across shards gets one test suite with the test cases of all;
- ``run.json``: ``shard: "merged"``, ``shards`` (the shards' run ids, in shard order), the split, and what the shards
  had (target, status); ``shards/<I>/`` keeps each shard's ``run.json``, ``summary.json``, ``config.yaml`` and
  ``run.log``.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.reporting.summary import RUN_FILE, SCENARIOS_FILE, read_scenarios, write_run_meta, write_summary

__all__ = ["MergeRefused", "Shard", "merge_runs", "read_shards", "refusals"]

JOURNAL_FILE = "journal.jsonl"
LEDGERS = "ledgers"
CONFIG_FILE = "config.yaml"
KEPT_PER_SHARD = (RUN_FILE, "summary.json", CONFIG_FILE, "run.log")


class MergeRefused(Exception):
    """The folders cannot be merged (one line: why, and what to do)."""


@dataclass(frozen=True)
class Shard:
    """One run folder given to the merge, and what its ``run.json`` says."""

    folder: Path
    meta: dict[str, Any]

    @property
    def label(self) -> str | None:
        value = self.meta.get("shard")
        return value if isinstance(value, str) and "/" in value else None

    @property
    def index(self) -> int | None:
        return int(self.label.split("/")[0]) if self.label else None

    @property
    def count(self) -> int | None:
        return int(self.label.split("/")[1]) if self.label else None

    @property
    def split(self) -> dict[str, Any]:
        value = self.meta.get("shard_selection")
        return value if isinstance(value, dict) else {}

    @property
    def run_id(self) -> str:
        return str(self.meta.get("run_id") or self.folder.name)

    @property
    def empty(self) -> bool:
        """A shard that got no scenario (``nothing_to_run``)."""
        return bool(self.meta.get("nothing_to_run"))


def read_shards(folders: Sequence[Path]) -> list[Shard]:
    """The run folders, each with its ``run.json``; :class:`MergeRefused` for one that is not a run folder."""
    shards = []
    for folder in folders:
        path = folder / RUN_FILE
        if not folder.is_dir():
            raise MergeRefused(f"{folder}: not a folder (give the shards' run folders, e.g. reports/<run-id>)")
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise MergeRefused(f"{path}: cannot read ({exc}): not a run folder written by failover-tester run") \
                from exc
        shards.append(Shard(folder, meta))
    return shards


def _config_name(shard: Shard) -> str:
    return Path(str(shard.meta.get("config", ""))).name


def _judge_settings(shard: Shard) -> Any:
    from support.judge.rejudge import run_settings

    return run_settings(shard.folder)[1]


def refusals(shards: Sequence[Shard]) -> list[str]:
    """Why ``shards`` are not the shards of one split, each a line; empty when they are (what ``--force`` skips)."""
    problems: list[str] = []
    for shard in shards:
        if shard.label is None:
            what = "a merged run" if shard.meta.get("shard") == "merged" else "not a shard (run without --shard)"
            problems.append(f"{shard.folder}: {what}")
    labelled = [s for s in shards if s.label is not None]
    if not labelled:
        return problems
    counts = sorted({s.count for s in labelled if s.count is not None})
    if len(counts) > 1:
        problems.append("shards of different splits: " + ", ".join(f"{s.folder} is {s.label}" for s in labelled))
        return problems
    count = counts[0]
    seen: dict[int, Shard] = {}
    for shard in labelled:
        assert shard.index is not None
        if shard.index in seen:
            problems.append(f"shard {shard.label} given twice: {seen[shard.index].folder} and {shard.folder}")
        seen[shard.index] = shard
    missing = [i for i in range(1, count + 1) if i not in seen]
    if missing:
        problems.append(f"shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing (have "
                        f"{', '.join(s.label or '' for s in sorted(labelled, key=lambda s: s.index or 0))}): give the "
                        "run folder of every shard, or --force to merge what there is")
    for key, what in (("tags", "--tags"), ("paths", "feature paths"), ("fingerprint", "selected scenarios")):
        values = {json.dumps(s.split.get(key)) for s in labelled}
        if len(values) > 1:
            problems.append(f"the shards differ in their {what} ({' vs '.join(sorted(values))}): not one split "
                            "(run every shard from the same checkout with the same paths and tags)")
    names = {_config_name(s) for s in labelled}
    if len(names) > 1:
        problems.append(f"the shards ran with differently named configs ({', '.join(sorted(names))})")
    judged = [s for s in labelled if (s.folder / CONFIG_FILE).exists()]
    try:
        settings = [_judge_settings(s) for s in judged]
    except Exception as exc:  # a config.yaml that no longer loads: judging the merged run would fail too
        problems.append(f"cannot read a shard's {CONFIG_FILE}: {exc}")
        return problems
    gates = {json.dumps(s.meta.get("gates") or [], sort_keys=True) for s in labelled}
    if len(gates) > 1:
        problems.append("the shards ran with different gates: the merged run's distributions would be judged "
                        "against one shard's")
    if any(other != settings[0] for other in settings[1:]):
        problems.append("the shards were judged under different settings (metrics, objectives): `failover-tester "
                        f"judge` on the merged run would judge all of them under {judged[0].folder / CONFIG_FILE}")
    return problems


def _prefixes(shards: Sequence[Shard]) -> list[str]:
    """The prefix of each shard's ledger folders: ``s<I>`` when the shards' indexes are distinct, else by position."""
    indexes = [s.index for s in shards]
    if None not in indexes and len(set(indexes)) == len(indexes):
        return [f"s{i}" for i in indexes]
    return [f"r{k}" for k in range(1, len(shards) + 1)]


def _merge_journals(shards: Sequence[Shard], prefixes: Sequence[str], out: Path) -> None:
    with (out / JOURNAL_FILE).open("w", encoding="utf-8") as merged:
        for shard, prefix in zip(shards, prefixes, strict=True):
            path = shard.folder / JOURNAL_FILE
            if not path.exists():
                continue
            for line in path.read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a crash: the judge skips it too
                if event.get("sid"):
                    event["sid"] = f"{prefix}-{event['sid']}"
                merged.write(json.dumps(event) + "\n")


def _merge_ledgers(shards: Sequence[Shard], prefixes: Sequence[str], out: Path) -> None:
    (out / LEDGERS).mkdir()
    for shard, prefix in zip(shards, prefixes, strict=True):
        ledgers = shard.folder / LEDGERS
        if ledgers.is_dir():
            for folder in sorted(ledgers.iterdir()):
                shutil.copytree(folder, out / LEDGERS / f"{prefix}-{folder.name}", symlinks=True)


def _merge_allure(shards: Sequence[Shard], out: Path, environment: dict[str, str]) -> Path:
    from support.reporting.allure import write_environment

    results = out / "allure-results"
    results.mkdir()
    for shard in shards:
        folder = shard.folder / "allure-results"
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.name == "environment.properties" or not path.is_file():
                continue
            target = results / path.name
            if target.exists():
                raise MergeRefused(f"{path}: another shard has an Allure file of the same name (the same shard given "
                                   "twice?)")
            shutil.copy2(path, target)
    write_environment(results, environment)
    return results


_SUITE_NUMBERS = ("tests", "errors", "failures", "skipped")


def merge_junit(files: Sequence[Path], out: Path) -> None:
    """One JUnit file ``out`` of the same feature's files of several shards: one test suite with every test case,
    the counts and times summed, the earliest timestamp."""
    roots = [ElementTree.parse(path).getroot() for path in files]
    merged = roots[0]
    for other in roots[1:]:
        for name in _SUITE_NUMBERS:
            merged.set(name, str(int(merged.get(name, "0")) + int(other.get(name, "0"))))
        merged.set("time", f"{float(merged.get('time', '0')) + float(other.get('time', '0')):.6f}")
        stamps = [s for s in (merged.get("timestamp"), other.get("timestamp")) if s]
        if stamps:
            merged.set("timestamp", min(stamps))
        merged.extend(list(other))
    ElementTree.ElementTree(merged).write(out, encoding="utf-8", xml_declaration=True)


def _merge_junit_folders(shards: Sequence[Shard], out: Path) -> None:
    junit = out / "junit"
    junit.mkdir()
    by_name: dict[str, list[Path]] = {}
    for shard in shards:
        folder = shard.folder / "junit"
        if folder.is_dir():
            for path in sorted(folder.glob("*.xml")):
                by_name.setdefault(path.name, []).append(path)
    for name, files in by_name.items():
        if len(files) == 1:
            shutil.copy2(files[0], junit / name)
        else:
            merge_junit(files, junit / name)


def _exit_code(shards: Sequence[Shard]) -> int:
    """The merged run's behave exit code: the first shard's that is not 0, else 0."""
    codes = [s.meta.get("behave_exit_code") for s in shards]
    return next((int(c) for c in codes if isinstance(c, int) and c != 0), 0)


def merge_runs(folders: Sequence[Path], out: Path, run_id: str, force: bool = False) -> dict[str, Any]:
    """Merge the shards' run folders ``folders`` into the new run folder ``out`` (which must not exist or be
    empty); returns the merged summary. :class:`MergeRefused` (nothing written) when they are not the shards of one
    split, unless ``force``."""
    shards = read_shards(folders)
    if not force and (problems := refusals(shards)):
        raise MergeRefused("; ".join(problems))
    shards = sorted(shards, key=lambda s: (s.index is None, s.index or 0))  # shard order, unlabelled last (--force)
    if out.exists() and any(out.iterdir()):
        raise MergeRefused(f"{out}: exists and is not empty (give a new --out folder)")
    out.mkdir(parents=True, exist_ok=True)
    prefixes = _prefixes(shards)
    ran = [s for s in shards if not s.empty]

    with (out / SCENARIOS_FILE).open("w", encoding="utf-8") as records:
        for shard in ran:
            for record in read_scenarios(shard.folder):
                records.write(json.dumps(record, default=str) + "\n")
    _merge_journals(ran, [p for s, p in zip(shards, prefixes, strict=True) if not s.empty], out)
    _merge_ledgers(ran, [p for s, p in zip(shards, prefixes, strict=True) if not s.empty], out)
    configs = [s.folder / CONFIG_FILE for s in ran if (s.folder / CONFIG_FILE).exists()]
    if configs:
        shutil.copy2(configs[0], out / CONFIG_FILE)  # what `judge` reads (the shards' settings are equal)
    for shard, prefix in zip(shards, prefixes, strict=True):
        kept = out / "shards" / prefix
        kept.mkdir(parents=True)
        for name in KEPT_PER_SHARD:
            if (shard.folder / name).is_file():
                shutil.copy2(shard.folder / name, kept / name)

    targets = list(dict.fromkeys(str(s.meta.get("target") or "") for s in shards if s.meta.get("target")))
    started = [float(s.meta["started_at"]) for s in shards if s.meta.get("started_at")]
    finished = [float(s.meta["finished_at"]) for s in shards if s.meta.get("finished_at")]
    interrupted = next((s.meta["interrupted_by"] for s in shards if s.meta.get("interrupted_by")), None)
    first = shards[0]
    split = {k: v for k, v in first.split.items() if k != "scenarios"}
    meta: dict[str, Any] = {
        "run_id": run_id, "config": first.meta.get("config", ""), "target": ", ".join(targets),
        "started_at": min(started) if started else None, "finished_at": max(finished) if finished else None,
        "behave_exit_code": _exit_code(shards), "shard": "merged", "shards": [s.run_id for s in shards],
        "shard_selection": split, "gates": first.meta.get("gates") or [], "repeat": first.meta.get("repeat", 1),
        "tool_version": first.meta.get("tool_version"),
        "merged_from": [{"shard": s.label, "run_id": s.run_id, "folder": str(s.folder), "target": s.meta.get("target"),
                         "ledger_prefix": p, "nothing_to_run": s.empty} for s, p in zip(shards, prefixes, strict=True)],
        **({"merge_forced": True} if force else {}),
        **({"interrupted_by": interrupted} if interrupted else {}),
    }
    write_run_meta(out, meta)
    summary = write_summary(out, meta["behave_exit_code"] or None)
    from support.reporting.html import write_report

    write_report(summary, out)
    _merge_junit_folders(ran, out)
    environment = {"run_id": run_id, "merged_from": " ".join(f"{s.label or '?'}={s.run_id}" for s in shards),
                   "target": ", ".join(targets), "config": str(first.meta.get("config", ""))}
    _merge_allure(ran, out, environment)
    return summary
