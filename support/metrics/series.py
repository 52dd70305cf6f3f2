"""One time-series store for a scenario, a background sampler feeding it, baselines and comparisons.

A series is a name (``throughput.dc1``, ``rest.dc1.Aggregator.nTuplesProcessed``, ...) with (time, value)
points. A :class:`Baseline` summarises a series over the steady state (mean, p50, p95, stddev); comparisons
say when a series came back to a fraction of its baseline. The store exports CSV and JSON into the run folder.
"""

from __future__ import annotations

import csv
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

log = logging.getLogger(__name__)

Point = tuple[str, float]  # (series name, value)


@dataclass(frozen=True)
class Baseline:
    """Summary of a series over a window of steady state."""

    name: str
    start: float
    end: float
    samples: int
    mean: float
    p50: float
    p95: float
    stddev: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, name: str, values: Sequence[float] | np.ndarray, start: float, end: float) -> Baseline | None:
        data = np.asarray(values, dtype=float)
        if data.size == 0:
            return None
        return cls(name, start, end, int(data.size), float(data.mean()), float(np.percentile(data, 50)),
                   float(np.percentile(data, 95)), float(data.std()), float(data.min()), float(data.max()))

    def band(self, fraction: float) -> float:
        """The lowest value still inside the band: ``fraction`` of the mean."""
        return self.mean * fraction

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


class SeriesStore:
    """Thread-safe append-only store of named time series."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, tuple[list[float], list[float]]] = {}
        self._labels: dict[str, dict[str, str]] = {}

    def add(self, name: str, t: float, value: float, labels: Mapping[str, str] | None = None) -> None:
        with self._lock:
            times, values = self._data.setdefault(name, ([], []))
            times.append(t)
            values.append(float(value))
            if labels:
                self._labels[name] = dict(labels)

    def extend(self, t: float, points: Iterable[Point]) -> None:
        for name, value in points:
            self.add(name, t, value)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._data)

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            times, values = self._data.get(name, ([], []))
            return np.asarray(times, dtype=float), np.asarray(values, dtype=float)

    def window(self, name: str, start: float, end: float) -> np.ndarray:
        times, values = self.series(name)
        return values[(times >= start) & (times <= end)]

    def baseline(self, name: str, start: float, end: float) -> Baseline | None:
        return Baseline.of(name, self.window(name, start, end), start, end)

    def recovered_at(self, name: str, baseline: Baseline, fraction: float, after: float) -> float | None:
        """The first sample time at or after ``after`` whose value is back to ``fraction`` of the baseline."""
        times, values = self.series(name)
        hit = np.flatnonzero((times >= after) & (values >= baseline.band(fraction)))
        return float(times[hit[0]]) if len(hit) else None

    def to_csv(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["series", "t", "value"])
            for name in self.names():
                times, values = self.series(name)
                writer.writerows((name, f"{t:.3f}", f"{v:g}") for t, v in zip(times, values, strict=True))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.names():
            times, values = self.series(name)
            out[name] = {"t": [round(float(t), 3) for t in times], "value": values.tolist(),
                         **({"labels": self._labels[name]} if name in self._labels else {})}
        return out

    def write(self, folder: Path, stem: str = "metrics") -> list[Path]:
        """Export as ``<stem>.csv`` and ``<stem>.json`` into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        csv_path, json_path = folder / f"{stem}.csv", folder / f"{stem}.json"
        self.to_csv(csv_path)
        json_path.write_text(json.dumps(self.to_json()))
        return [csv_path, json_path]


class Source(Protocol):
    """A metrics source: ``sample()`` returns (series name, value) points; ``min_interval`` bounds how often."""

    name: str
    min_interval: float

    def sample(self) -> list[Point]: ...


class Sampler(threading.Thread):
    """Samples every source every ``interval`` seconds (each no faster than its ``min_interval``) into the store.

    A failing source is logged and skipped for that round; it never stops the others.
    """

    def __init__(self, store: SeriesStore, sources: Sequence[Source], interval: float, max_duration: float,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(name="metrics-sampler", daemon=True)
        self.store = store
        self._sources = list(sources)
        self._interval = interval
        self._max_duration = max_duration
        self._clock = clock
        self._last: dict[str, float] = {}
        self.errors: dict[str, str] = {}
        self.rounds = 0
        self.stop_event = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        while not self.stop_event.is_set() and time.monotonic() - started < self._max_duration:
            tick = time.monotonic()
            self.sample_once()
            self.stop_event.wait(max(0.0, self._interval - (time.monotonic() - tick)))

    def sample_once(self) -> None:
        for source in self._sources:
            now = time.monotonic()
            if now - self._last.get(source.name, -1e9) < source.min_interval:
                continue
            self._last[source.name] = now
            try:
                points = source.sample()
            except Exception as exc:  # a source that fails must not stop the sampler
                if self.errors.get(source.name) != str(exc):
                    log.warning("metrics source %s failed: %s", source.name, exc)
                self.errors[source.name] = str(exc)
                continue
            self.store.extend(self._clock(), points)
        self.rounds += 1

    @property
    def sources(self) -> list[Source]:
        return list(self._sources)

    def stop(self) -> None:
        self.stop_event.set()
        if self.is_alive():
            self.join(timeout=30)
