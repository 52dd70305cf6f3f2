"""``gates:``: objectives on the distribution of a measurement over a run's drills (``failover-tester run --repeat
N``; with one drill per scenario they judge that drill's value). One entry states one objective::

    gates:
      - rto_p95: 5 seconds          # <metric>_<stat>: the p95 of the RTO over each scenario's drills ≤ 5 s
        severity: critical          # critical | major (default) | minor: its weight in the resilience score
        tags: [smoke]               # only the scenarios with one of these tags (default: every scenario)
      - max_lost: 0                 # max_<metric> is <metric>_max
        scenario: takeover          # only the scenarios whose "<feature> :: <name>" contains this text

Metrics: ``rto``, the recovery phases (:data:`support.measure.PHASES`), ``loss_window``, ``state_loss_window``
(durations, parsed by :func:`support.units.parse_duration`), ``lost``, ``duplicated``, ``unknown`` (counts).
Stats: ``p50``, ``p95``, ``max``. (``objectives:`` is the per-application section the ``Then`` steps judge one
drill by; ``gates:`` judges the whole run.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from support.measure import PHASES
from support.units import format_seconds, parse_duration

#: the metrics a gate can name → the key of their distribution in ``summary.json`` (durations end in ``_s``)
METRICS: dict[str, str] = {"rto": "rto_s", **{phase: f"{phase}_s" for phase in PHASES},
                           "loss_window": "loss_window_s", "state_loss_window": "state_loss_window_s",
                           "lost": "lost", "duplicated": "duplicated", "unknown": "unknown"}
COUNTS = frozenset({"lost", "duplicated", "unknown"})
#: how people read each metric (the reports' labels)
LABELS: dict[str, str] = {"rto": "RTO", "down_detected": "DOWN detected", "takeover": "takeover",
                          "first_output": "first output", "throughput_recovered": "throughput back",
                          "loss_window": "loss window", "state_loss_window": "state loss window", "lost": "lost",
                          "duplicated": "duplicated", "unknown": "unknown"}
STATS = ("p50", "p95", "max")
#: a gate's weight in the resilience score, by severity
SEVERITY_WEIGHTS: dict[str, int] = {"critical": 3, "major": 2, "minor": 1}
DEFAULT_SEVERITY = "major"
#: the keys of an entry besides its one objective
OPTIONS = frozenset({"name", "severity", "tags", "scenario"})
_KEY = re.compile(r"^(?:max_(?P<metric>[a-z_]+)|(?P<metric2>[a-z_]+)_(?P<stat>p50|p95|max))$")


class GateError(ValueError):
    """A gate that cannot be used: ``path`` (``gates[0].rto_p95``) and the problem, for a one-line config error."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass(frozen=True, slots=True)
class Gate:
    """One objective on a distribution: ``stat`` of ``metric`` over each selected scenario's drills ≤ ``limit``."""

    name: str
    metric: str
    stat: str
    limit: float
    severity: str = DEFAULT_SEVERITY
    tags: tuple[str, ...] = ()
    scenario: str | None = None

    @property
    def key(self) -> str:
        """The key of the metric's distribution in ``summary.json`` (``rto_s``, ``lost``...)."""
        return METRICS[self.metric]

    @property
    def label(self) -> str:
        """What the gate measures, as people read it: ``RTO p95``."""
        return f"{LABELS.get(self.metric, self.metric)} {self.stat}"

    @property
    def is_count(self) -> bool:
        return self.metric in COUNTS

    def show(self, value: float | None, places: int | None = 2) -> str:
        """A value of this gate's metric as people read it (``3.20 s``, ``0``; ``places`` None: ``5 s``)."""
        if value is None:
            return "–"
        return f"{value:g}" if self.is_count else format_seconds(value, places)

    def selects(self, key: str, tags: Sequence[str]) -> bool:
        """Whether the gate judges the scenario ``key`` (``"<feature> :: <name>"``) with ``tags``."""
        if self.tags and not {t.lstrip("@") for t in tags} & set(self.tags):
            return False
        return self.scenario is None or self.scenario.lower() in key.lower()

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "metric": self.metric, "stat": self.stat, "limit": self.limit,
                "severity": self.severity, "tags": list(self.tags), "scenario": self.scenario}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Gate:
        return cls(str(raw["name"]), str(raw["metric"]), str(raw["stat"]), float(raw["limit"]),
                   str(raw.get("severity") or DEFAULT_SEVERITY), tuple(str(t) for t in raw.get("tags") or ()),
                   None if raw.get("scenario") is None else str(raw["scenario"]))


def _objective(key: str) -> tuple[str, str] | None:
    match = _KEY.match(key)
    if match is None:
        return None
    metric = match.group("metric") or match.group("metric2")
    stat = match.group("stat") or "max"
    return (metric, stat) if metric in METRICS else None


def parse_gate(raw: Any, path: str) -> Gate:
    """One entry of ``gates:`` (``path`` names it in errors)."""
    if not isinstance(raw, Mapping):
        raise GateError(path, f"must be a mapping such as {{rto_p95: 5 seconds}}; got {raw!r}")
    objectives = [key for key in raw if key not in OPTIONS]
    if len(objectives) != 1:
        found = ", ".join(map(str, objectives)) or "none"
        raise GateError(path, f"must state exactly one objective such as rto_p95: 5 seconds or max_lost: 0 "
                              f"(found: {found})")
    key = str(objectives[0])
    parsed = _objective(key)
    if parsed is None:
        raise GateError(f"{path}.{key}", f"unknown objective {key!r}: write <metric>_<stat> or max_<metric> with "
                                         f"metric one of {', '.join(METRICS)} and stat one of {', '.join(STATS)}")
    metric, stat = parsed
    value = raw[key]
    if metric in COUNTS:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise GateError(f"{path}.{key}", f"must be a whole number of tuples ≥ 0; got {value!r}")
        limit = float(value)
    else:
        try:
            limit = parse_duration(value)
        except ValueError as exc:
            raise GateError(f"{path}.{key}", str(exc)) from None
    severity = raw.get("severity", DEFAULT_SEVERITY)
    if severity not in SEVERITY_WEIGHTS:
        raise GateError(f"{path}.severity", f"must be one of {', '.join(SEVERITY_WEIGHTS)}; got {severity!r}")
    tags = raw.get("tags", [])
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, list) or not all(isinstance(t, str) and t.lstrip("@") for t in tags):
        raise GateError(f"{path}.tags", f"must be a list of tags such as [smoke]; got {tags!r}")
    scenario = raw.get("scenario")
    if scenario is not None and (not isinstance(scenario, str) or not scenario.strip()):
        raise GateError(f"{path}.scenario", f"must be a non-empty text; got {scenario!r}")
    name = raw.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise GateError(f"{path}.name", f"must be a non-empty text; got {name!r}")
    gate = Gate("", metric, stat, limit, str(severity), tuple(t.lstrip("@") for t in tags), scenario)
    default = f"{LABELS.get(metric, metric)} {stat} ≤ {gate.show(limit, None)}"
    return Gate(name or default, metric, stat, limit, gate.severity, gate.tags, scenario)


def parse_gates(raw: Any, path: str = "gates") -> tuple[Gate, ...]:
    """The ``gates:`` section (a list of entries; absent or empty: no gates)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise GateError(path, f"must be a list of objectives such as [{{rto_p95: 5 seconds}}]; got {raw!r}")
    return tuple(parse_gate(entry, f"{path}[{index}]") for index, entry in enumerate(raw))
