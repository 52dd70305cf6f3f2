"""behave's console output for ``failover-tester run``: its pretty formatter without the noise.

- A step that did not run (skipped, untested) has no step definition to point at: behave's pretty formatter
  prints ``# None`` beside it. :class:`PrettyFormatter` prints nothing there.
- behave 1.3 sums a feature's duration over ``feature.scenarios``, which leaves out the scenarios of its
  ``Rule:`` blocks, so a run of rule scenarios ends with ``Took 0min 0.000s``. :func:`install` makes a
  feature's duration the sum over every scenario it runs (rules and outline rows included).
"""

from __future__ import annotations

from typing import Any

from behave.formatter.pretty import PrettyFormatter as _PrettyFormatter


class PrettyFormatter(_PrettyFormatter):
    """behave's ``pretty``, without ``# None`` beside the steps that did not run."""

    name = "failover-pretty"
    description = "behave's pretty formatter without '# None' beside steps that did not run"

    _no_location = False

    def print_step(self, status: Any, arguments: Any, location: Any, proceed: bool) -> None:
        self._no_location = location is None
        try:
            super().print_step(status, arguments, location, proceed)
        finally:
            self._no_location = False

    def indented_text(self, text: str, proceed: bool) -> str:
        if self._no_location and text == "None":
            super().indented_text(text, proceed)  # keeps behave's column bookkeeping in step
            return ""
        return str(super().indented_text(text, proceed))


def feature_duration(feature: Any) -> float:
    """Seconds the scenarios of ``feature`` ran, those inside ``Rule:`` blocks included."""
    return float(sum(scenario.duration for scenario in feature.walk_scenarios()))


_INSTALLED: list[Any] = []


def install() -> None:
    """Make behave's ``Feature.duration`` count the scenarios of rules (once per process)."""
    if _INSTALLED:
        return
    from behave.model import Feature

    _INSTALLED.append(Feature.duration)
    Feature.duration = property(feature_duration)
