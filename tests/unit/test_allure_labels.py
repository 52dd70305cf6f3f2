"""Dynamic Allure labels reach the running test (allure-behave itself drops them)."""

from __future__ import annotations

from typing import Any

import allure
import allure_commons
from allure_commons.model2 import Label
from allure_commons.model2 import TestResult as Result

from support.reporting.allure import label_dc_pair, label_scenario
from support.reporting.allure_formatter import LabelHook


class Reporter:
    def __init__(self) -> None:
        self.test = Result(uuid="t1", name="scenario")
        self.test.labels.append(Label(name="severity", value="normal"))
        self.test.labels.append(Label(name="tag", value="smoke"))

    def get_test(self, uuid: Any) -> Result:
        return self.test


def test_epic_severity_and_dc_pair_are_set_once_on_the_running_test() -> None:
    reporter = Reporter()
    hook = LabelHook(reporter)
    allure_commons.plugin_manager.register(hook)
    try:
        label_scenario(["smoke", "job-cancel"])
        label_dc_pair("dc1", "dc2")
        allure.dynamic.tag("extra")
    finally:
        allure_commons.plugin_manager.unregister(hook)
    labels = [(label.name, label.value) for label in reporter.test.labels]
    assert ("epic", "Cross-DC failover") in labels
    assert [v for n, v in labels if n == "severity"] == ["critical"]
    assert ("dc_pair", "dc1 → dc2") in labels
    assert ("tag", "smoke") in labels and ("tag", "extra") in labels
