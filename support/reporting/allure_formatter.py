"""allure-behave's formatter, also reporting scenarios grouped under ``Rule:``.

allure-behave 2.x wraps only ``feature.scenarios``; behave keeps the scenarios of a Rule inside the rule,
so without this they would be missing from the Allure results.
"""

from __future__ import annotations

from typing import Any

from allure_behave.formatter import AllureFormatter as _AllureFormatter


class AllureFormatter(_AllureFormatter):
    def feature(self, feature: Any) -> None:
        super().feature(feature)
        for rule in feature.iter_rules():
            self._wrap_scenario(rule.scenarios)
