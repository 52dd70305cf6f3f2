"""Check before touching: ``run`` checks the selected scenarios before anything is deployed or injected.

:func:`precheck` does what ``behave --dry-run`` does for the same paths and tags (every feature file parses, every
step of a selected scenario matches exactly one step definition, every typed parameter converts: a malformed
duration, count or percentage leaves a step undefined), plus the tester's own checks on the step arguments: every
quoted data center is configured, every quoted application is configured, every input noun is one an application
declares. Each problem is one line ``file:line: problem``; ``run`` prints them and exits 2.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from support.config import Config

__all__ = ["APP_ARGUMENTS", "DC_ARGUMENTS", "precheck"]

#: Step arguments that name a data center (``"{dc}"``, ``"{first}"``...) and an application (``"{app}"``).
DC_ARGUMENTS = frozenset({"dc", "active", "standby", "first", "second", "source", "target", "new", "old"})
APP_ARGUMENTS = frozenset({"app"})
NOUN_ARGUMENTS = frozenset({"noun"})
MAX_PROBLEMS = 20
_LOCATION = re.compile(r"^(?P<file>.+?)((?::\d+)+)$")


def precheck(config: Config, tags: Sequence[str], paths: Sequence[str]) -> list[str]:
    """Problems (``file:line: problem``, at most :data:`MAX_PROBLEMS`) of the scenarios ``paths`` and ``tags`` select;
    empty when they can run."""
    from behave.parser import ParserError, parse_file
    from behave.runner_util import load_step_modules
    from behave.step_registry import registry
    from behave.tag_expression import make_tag_expression

    import support.step_types  # noqa: F401 - registers the parameter types before the steps load
    from support.packaged import steps_dir

    if not any(registry.steps.values()):
        # the project's steps/ (its glue loads the tool's steps, plus any of its own), else the tool's steps
        load_step_modules([str(Path("steps").resolve() if Path("steps").is_dir() else steps_dir())])
    expression = make_tag_expression(list(tags)) if tags else None
    settings = config.settings
    dcs, apps = sorted(settings.datacenters), sorted(settings.applications)
    nouns = sorted({a.data.noun for a in settings.applications.values()})
    problems: list[str] = []
    for file, lines in _feature_files(paths):
        try:
            feature = parse_file(str(file))
        except ParserError as exc:
            problems.append(f"{file}: {' '.join(str(exc).split())}")
            continue
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{file}: cannot read: {exc}")
            continue
        if feature is None:
            continue
        scenarios = [s for s in feature.walk_scenarios(with_outlines=False, with_rules=True) if hasattr(s, "all_steps")]
        for scenario in _selected(scenarios, lines):
            if expression is not None and not expression.check(scenario.effective_tags):
                continue
            for step in scenario.all_steps:
                where = f"{file}:{step.line}"
                text = f"{step.keyword} {step.name}"
                try:
                    match = registry.find_match(step)
                except Exception as exc:  # a parameter type that matched its pattern but did not convert
                    problems.append(f"{where}: bad parameter in '{text}': {exc}")
                    continue
                if match is None:
                    problems.append(f"{where}: undefined step '{text}' (misspelt, or a malformed duration, count "
                                    "or percentage; `failover-tester steps` lists the steps)")
                    continue
                problems.extend(f"{where}: {p} in '{text}'" for p in _argument_problems(match.arguments, dcs, apps,
                                                                                       nouns))
            if len(problems) >= MAX_PROBLEMS:
                return problems[:MAX_PROBLEMS]
    return problems


def _argument_problems(arguments: Iterable[Any], dcs: list[str], apps: list[str], nouns: list[str]) -> list[str]:
    problems = []
    for argument in arguments:
        name, value = argument.name, argument.value
        if name in DC_ARGUMENTS and value not in dcs:
            problems.append(f'unknown data center "{value}" (configured: {", ".join(dcs) or "none"})')
        elif name in APP_ARGUMENTS and value not in apps:
            problems.append(f'unknown application "{value}" (configured: {", ".join(apps) or "none"})')
        elif name in NOUN_ARGUMENTS and value not in nouns:
            problems.append(f"unknown input {value!r} (the applications' inputs are {', '.join(nouns) or 'none'}: "
                            "applications.<app>.data.noun)")
    return problems


def _feature_files(paths: Sequence[str]) -> list[tuple[Path, set[int]]]:
    """(feature file, the lines asked for: empty = all its scenarios) of behave's path arguments: folders,
    ``FILE``, ``FILE:LINE[:LINE]`` and ``@LIST`` files of such locations."""
    found: list[tuple[Path, set[int]]] = []
    for raw in paths or ["features"]:
        if raw.startswith("@"):
            listed = Path(raw[1:]).read_text(encoding="utf-8").split()
            found.extend(_feature_files([line for line in listed if not line.startswith("#")]))
            continue
        match = _LOCATION.match(raw)
        lines = {int(n) for n in match.group(2).strip(":").split(":")} if match else set()
        path = Path(match.group("file") if match else raw)
        if path.is_dir():
            found.extend((file, set()) for file in sorted(path.rglob("*.feature")))
        else:
            found.append((path, lines))
    return found


def _selected(scenarios: list[Any], lines: set[int]) -> list[Any]:
    """The scenarios a ``FILE:LINE`` selects (the one at or last before each line; all when no line is given)."""
    if not lines:
        return scenarios
    chosen = []
    for scenario in scenarios:
        later = [s.line for s in scenarios if s.line > scenario.line]
        end = min(later) if later else float("inf")
        if any(scenario.line <= line < end for line in lines):
            chosen.append(scenario)
    return chosen
