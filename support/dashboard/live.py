"""The run in progress, as the dashboard shows it: which scenario, which phase of it, which fault.

A live run names itself in ``<run.reports_dir>/running.json`` (:mod:`support.cli.run`) and journals as it goes
into ``<run.reports_dir>/<run_id>/journal.jsonl`` (:class:`support.orchestration.Journal`). :class:`LiveView`
reads the journal incrementally (only what was appended since the last look; a partly written last line waits
for the next look) and folds its events into a small status. A ``running.json`` whose process is gone, or whose
pid now belongs to another program, is stale: shown as not live (:func:`support.cli.abort.find_running`).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.cli.abort import NoRun, find_running
from support.cli.run import RUNNING_FILE

__all__ = ["PHASES", "LiveView"]

#: A scenario's phases in the order they come, each entered by the journal event named beside it.
PHASES: tuple[tuple[str, str], ...] = (
    ("scenario.started", "deploying"),
    ("traffic.started", "warming up"),
    ("steady", "steady state"),
    ("fault.injected", "fault injected"),
    ("fault.effective", "fault in effect"),
    ("toolkit.remote_down", "down detected"),
    ("toolkit.takeover", "takeover"),
    ("scenario.steps_done", "draining"),
    ("fault.heal_started", "healing"),
    ("fault.healed", "cleaning up"),
    ("scenario.finished", "finished"),
)
_PHASE_OF = dict(PHASES)
_ORDER = {"": -1, **{phase: i for i, (_, phase) in enumerate(PHASES)}}
_MILESTONES = frozenset({"toolkit.remote_down", "toolkit.takeover"})
_RECENT = 12  # the latest events shown
_QUIET = frozenset({"toolkit.trace", "toolkit.snapshot_stored"})  # too chatty to list among the latest events


@dataclass
class _Fold:
    """What the journal told so far (one run)."""

    offset: int = 0
    scenario: dict[str, Any] | None = None
    phase: str = ""
    fault: dict[str, Any] | None = None
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    finished: dict[str, int] = field(default_factory=dict)
    last_finished: dict[str, Any] | None = None
    recent: list[dict[str, Any]] = field(default_factory=list)
    events: int = 0
    aborted: bool = False

    def add(self, e: dict[str, Any]) -> None:
        name = str(e.get("event", ""))
        self.events += 1
        if name == "scenario.started":
            self.scenario = {"name": e.get("scenario"), "feature": e.get("feature"), "started_at": e.get("t"),
                             "tags": e.get("tags") or []}
            self.fault, self.verdicts = None, []
        if name in _MILESTONES:
            # the toolkit's own news only moves the phase on: before any fault it is the deployment settling, and
            # after the takeover (or the scenario's end) it is the other side noticing, not a step back
            if self.fault and _ORDER[self.phase] < _ORDER[_PHASE_OF[name]]:
                self.phase = _PHASE_OF[name]
        elif name in _PHASE_OF:
            self.phase = _PHASE_OF[name]
        if name == "fault.injected":
            self.fault = {"kind": e.get("kind"), "id": e.get("id"), "dc": e.get("dc"), "state": "injected",
                          "injected_at": e.get("t")}
        elif name.startswith("fault.") and self.fault is not None and e.get("id") == self.fault.get("id"):
            self.fault["state"] = {"fault.effective": "in effect", "fault.heal_started": "healing",
                                   "fault.healed": "healed"}.get(name, self.fault["state"])
        elif name == "verdict":
            self.verdicts.append({"name": e.get("name"), "status": e.get("status"), "summary": e.get("summary")})
        elif name == "scenario.finished":
            status = str(e.get("status") or "unknown")
            self.finished[status] = self.finished.get(status, 0) + 1
            self.last_finished = {"name": e.get("scenario"), "status": status}
        elif name == "run.aborted":
            self.aborted = True
        if name not in _QUIET:
            self.recent.append({"t": e.get("t"), "event": name, "scenario": e.get("scenario") or ""})
            del self.recent[:-_RECENT]

    def status(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "phase": self.phase, "fault": self.fault, "verdicts": self.verdicts,
                "finished": self.finished, "last_finished": self.last_finished, "recent": self.recent[::-1],
                "events": self.events, "aborted": self.aborted}


class LiveView:
    """The live run of one reports folder; :meth:`status` is cheap to call every second."""

    def __init__(self, reports_dir: Path) -> None:
        self.reports_dir = reports_dir
        self._lock = threading.Lock()
        self._run: str | None = None
        self._fold = _Fold()

    def status(self) -> dict[str, Any]:
        """``{"live": bool, "state": "idle" | "stale" | "running", "message", ...}``; when running also
        ``run_id, pid, started_at, config`` and the journal's fold (scenario, phase, fault, verdicts, ...)."""
        path = self.reports_dir / RUNNING_FILE
        if not path.exists():
            return {"live": False, "state": "idle", "message": "no run in progress"}
        try:
            running = find_running(self.reports_dir)
        except NoRun as exc:
            named = _read_json(path)
            return {"live": False, "state": "stale", "message": str(exc),
                    "run_id": named.get("run_id") if isinstance(named, dict) else None}
        run_id = str(running.get("run_id", ""))
        with self._lock:
            if run_id != self._run:
                self._run, self._fold = run_id, _Fold()
            self._read(self.reports_dir / run_id / "journal.jsonl")
            fold = self._fold.status()
        return {"live": True, "state": "running", "message": f"run {run_id} in progress", "run_id": run_id,
                "pid": running.get("pid"), "started_at": running.get("started_at"), "config": running.get("config"),
                **fold}

    def _read(self, journal: Path) -> None:
        """Fold the complete lines appended to ``journal`` since the last read."""
        try:
            with journal.open("rb") as source:
                source.seek(self._fold.offset)
                chunk = source.read()
        except FileNotFoundError:
            return
        end = chunk.rfind(b"\n")
        if end < 0:
            return
        self._fold.offset += end + 1
        for line in chunk[:end].splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line a crash cut short: the journal goes on after it
            if isinstance(event, dict):
                self._fold.add(event)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
