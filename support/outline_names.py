"""Scenario Outline rows named by their example values, not behave's ``<name> -- @1.1 <examples name>``.

behave names the scenario of an Examples row after the outline's name with the row's values put in for its
``<placeholders>``, then appends ``-- @<row id> <examples name>``. That suffix names nothing a reader knows, and it
reaches the console, ``summary.json``, ``report.html``, Allure and the ledger folders. :func:`install` replaces it:

- the outline's name with the row's values put in (``heartbeats every 250 ms and 2 misses allowed``);
- where the name has no placeholder, the row's values follow it: ``orders flow (rate 200, dc dc1)``;
- where two rows of one outline would still share a name, the values of the columns the name does not show are
  added; where they still collide, the row's id (``row 1.2``). Names stay unique within an outline.

:func:`install` is called on import of :mod:`support.hooks` (behave loads the hooks before it parses the features)
and by ``run --dry-run``, so every output names a row the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

_PLACEHOLDER = re.compile(r"<([^<>]+)>")


def render(template: str, values: Mapping[str, str]) -> str:
    """``template`` with each known ``<column>`` replaced by its value (unknown placeholders stay)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def _pairs(values: Mapping[str, str], columns: Sequence[str]) -> str:
    return ", ".join(f"{column} {values[column]}" for column in columns)


def row_names(template: str, rows: Sequence[tuple[Mapping[str, str], str, str]]) -> list[str]:
    """The names of an outline's rows: ``rows`` holds (values by column, examples name, row id) per row."""
    used = set(_PLACEHOLDER.findall(template))
    names = []
    for values, examples, _row_id in rows:
        name = render(template, values)
        hidden = [c for c in values if c not in used]
        if not used & set(values) and hidden:  # the name shows none of the row: its values follow it
            name = f"{name} ({_pairs(values, hidden)})"
        if examples:
            name = f"{name} — {render(examples, values)}"
        names.append(name)
    shared = {name for name in names if names.count(name) > 1}
    for index, name in enumerate(list(names)):
        values = rows[index][0]
        hidden = [c for c in values if c not in used]
        if name in shared and used & set(values) and hidden:
            names[index] = f"{name} ({_pairs(values, hidden)})"
    shared = {name for name in names if names.count(name) > 1}
    return [f"{name} (row {rows[index][2]})" if name in shared else name for index, name in enumerate(names)]


def rename_outline_scenarios(outline: Any, scenarios: Sequence[Any]) -> None:
    """Give the scenarios behave built for ``outline`` (each with its ``_row``) their :func:`row_names`."""
    rows = []
    for scenario in scenarios:
        row = getattr(scenario, "_row", None)
        if row is None:
            return  # not built from rows: leave behave's names
        examples = next((e for e in outline.examples if e.table is not None and any(r is row for r in e.table.rows)),
                        None)
        rows.append((dict(zip(row.headings, row.cells, strict=False)), getattr(examples, "name", "") or "",
                     str(getattr(row, "id", ""))))
    for scenario, name in zip(scenarios, row_names(outline.name, rows), strict=True):
        scenario.name = name


_INSTALLED: list[Callable[..., Any]] = []


def install() -> None:
    """Make behave name outline rows with :func:`row_names` (once per process)."""
    if _INSTALLED:
        return
    from behave.model import ScenarioOutlineBuilder

    original = ScenarioOutlineBuilder.build_scenarios

    def build_scenarios(self: Any, scenario_outline: Any) -> list[Any]:
        scenarios = original(self, scenario_outline)
        rename_outline_scenarios(scenario_outline, scenarios)
        return scenarios

    ScenarioOutlineBuilder.build_scenarios = build_scenarios
    _INSTALLED.append(original)
