"""allure-behave's formatter, also reporting scenarios grouped under ``Rule:`` and dynamic labels.

allure-behave 2.x wraps only ``feature.scenarios``; behave keeps the scenarios of a Rule inside the rule,
so without this they would be missing from the Allure results. Its listener also has no ``add_label`` hook
(allure-python issue #776), so ``allure.dynamic.label``/``severity`` calls (epic, severity, DC pair) were
dropped; :class:`LabelHook` adds them to the running test, and ``allure.dynamic.parameter`` values too (folded
into the test's history id: the drills of ``run --repeat N`` are distinct tests).
"""

from __future__ import annotations

from typing import Any

import allure_commons
from allure_behave.formatter import AllureFormatter as _AllureFormatter
from allure_commons.model2 import Label, Parameter
from allure_commons.types import LabelType
from allure_commons.utils import md5

# labels a test has only one of: a dynamic value replaces the one the listener set from the tags
SINGLE_VALUED = {LabelType.SEVERITY, LabelType.EPIC, "dc_pair"}


class LabelHook:
    """The ``add_label`` hook allure-behave lacks: labels go to the test the listener is running."""

    def __init__(self, reporter: Any) -> None:
        self.reporter = reporter

    @allure_commons.hookimpl
    def add_label(self, label_type: Any, labels: Any) -> None:
        test = self.reporter.get_test(None)
        if test is None:
            return
        name = getattr(label_type, "value", label_type)
        if name in {getattr(x, "value", x) for x in SINGLE_VALUED}:
            test.labels = [label for label in test.labels if label.name != name]
        for value in labels:
            test.labels.append(Label(name=name, value=str(getattr(value, "value", value))))

    @allure_commons.hookimpl
    def add_parameter(self, name: str, value: Any, excluded: Any, mode: Any) -> None:
        """``allure.dynamic.parameter``: shown on the running test and, unless excluded, part of its history id
        (the drill "k/N" of ``run --repeat N`` makes each drill its own test, not a retry of the previous one)."""
        test = self.reporter.get_test(None)
        if test is None:
            return
        test.parameters = [p for p in test.parameters or [] if p.name != name]
        test.parameters.append(Parameter(name=name, value=str(value), excluded=excluded,
                                         mode=getattr(mode, "value", mode)))
        if not excluded:
            test.historyId = md5(str(test.historyId), f"{name}={value}")


class AllureFormatter(_AllureFormatter):
    def __init__(self, stream_opener: Any, config: Any) -> None:
        super().__init__(stream_opener, config)
        self.label_hook = LabelHook(self.listener.logger)
        allure_commons.plugin_manager.register(self.label_hook)

    def feature(self, feature: Any) -> None:
        super().feature(feature)
        for rule in feature.iter_rules():
            self._wrap_scenario(rule.scenarios)

    def close(self) -> None:
        super().close()
        allure_commons.plugin_manager.unregister(self.label_hook)
