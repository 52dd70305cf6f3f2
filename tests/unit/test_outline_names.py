"""Scenario Outline rows are named by their example values (support/outline_names.py), never ``-- @1.1``."""

from __future__ import annotations

from behave.parser import parse_feature

from support.outline_names import install, row_names
from support.world import _slug

FEATURE = """Feature: detection
  Scenario Outline: dc2 detects the loss of dc1 with heartbeats every <interval>
    Given a step with <interval> and <misses>

    Examples:
      | interval | misses |
      | 250 ms   | 2      |
      | 500 ms   | 3      |
      | 250 ms   | 4      |

  Scenario Outline: orders flow
    Given a step with <rate>

    Examples: slow
      | rate |
      | 10   |
      | 10   |
"""


def _names() -> list[str]:
    install()
    feature = parse_feature(FEATURE, filename="x.feature")
    return [s.name for s in feature.walk_scenarios()]


def test_rows_are_named_by_their_values_and_stay_unique() -> None:
    names = _names()
    assert names == [
        "dc2 detects the loss of dc1 with heartbeats every 250 ms (misses 2)",
        "dc2 detects the loss of dc1 with heartbeats every 500 ms",
        "dc2 detects the loss of dc1 with heartbeats every 250 ms (misses 4)",
        "orders flow (rate 10) — slow (row 1.1)",
        "orders flow (rate 10) — slow (row 1.2)",
    ]
    assert not any(" -- @" in n for n in names)
    assert len(set(names)) == len(names)
    assert len({_slug(n) for n in names}) == len(names)  # the ledger folders follow the names


def test_row_names_of_a_name_without_placeholders_show_the_values() -> None:
    assert row_names("restart", [({"pe": "a", "n": "1"}, "", "1.1"), ({"pe": "b", "n": "1"}, "", "1.2")]) == [
        "restart (pe a, n 1)", "restart (pe b, n 1)"]
