"""What the judge needs to know besides the history: the thresholds of the measurement model and the
objectives of each application, from the typed settings; a re-judgement may change them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from support.config.settings import Settings


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
    def of(cls, settings: Settings) -> JudgeSettings:
        metrics, traffic = settings.metrics, settings.traffic
        return cls(
            throughput_window=metrics.throughput_window,
            throughput_fraction=metrics.throughput_fraction,
            split_brain_gap=metrics.split_brain_gap,
            clock_tolerance=metrics.clock_tolerance,
            settle_period=metrics.settle_period,
            drain_quiet=traffic.drain_quiet,
            drain_timeout=traffic.drain_timeout,
            scenario_timeout=settings.run.scenario_timeout,
            objectives={app: dict(objectives.as_dict()) for app, objectives in settings.objectives.items()},
        )
