"""What the judge needs to know besides the history: the thresholds of the measurement model and the
objectives of each application. Built from the validated configuration; a re-judgement may change them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from support.units import parse_duration

COUNT_OBJECTIVES = ("max_lost", "max_duplicated")
FRACTION_OBJECTIVES = ("throughput_fraction",)


@dataclass(frozen=True)
class JudgeSettings:
    """Thresholds of the measurement model (seconds, fractions) and the objectives per application."""

    throughput_window: float
    throughput_fraction: float
    split_brain_gap: float
    clock_tolerance: float
    settle_period: float
    drain_quiet: float
    drain_timeout: float
    scenario_timeout: float
    objectives: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Any) -> JudgeSettings:
        """From a validated :class:`~support.config.Config` (its schema defaults filled in)."""
        return cls.from_dict(config.data if hasattr(config, "data") else config)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JudgeSettings:
        metrics, traffic, run = (data.get(k) or {} for k in ("metrics", "traffic", "run"))
        objectives: dict[str, dict[str, float]] = {}
        for app, raw in (data.get("objectives") or {}).items():
            objectives[app] = {key: parse_objective(key, value) for key, value in (raw or {}).items()}
        return cls(
            throughput_window=parse_duration(metrics["throughput_window"]),
            throughput_fraction=float(metrics["throughput_fraction"]),
            split_brain_gap=parse_duration(metrics["split_brain_gap"]),
            clock_tolerance=parse_duration(metrics["clock_tolerance"]),
            settle_period=parse_duration(metrics["settle_period"]),
            drain_quiet=parse_duration(traffic["drain_quiet"]),
            drain_timeout=parse_duration(traffic["drain_timeout"]),
            scenario_timeout=parse_duration(run["scenario_timeout"]),
            objectives=objectives,
        )


def parse_objective(key: str, value: Any) -> float:
    """An objective's limit: a count, a fraction, or a duration in seconds."""
    if key in COUNT_OBJECTIVES:
        return int(value)
    if key in FRACTION_OBJECTIVES:
        return float(value)
    return parse_duration(value)
