"""The run's record: the journal (every event timestamped, wall and monotonic) and the cleanup stack.

The journal is appended and flushed as events happen, so a crashed run still leaves its history.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JournalEvent:
    """One thing that happened: its name, when (wall clock and monotonic) and its details."""

    event: str
    t: float
    mono: float
    scenario: str
    fields: dict[str, Any] = field(default_factory=dict)
    sid: str = ""  # the scenario's folder under ledgers/ (unique within a run, unlike its name)

    def to_json(self) -> dict[str, Any]:
        head: dict[str, Any] = {"event": self.event, "t": self.t, "mono": self.mono, "scenario": self.scenario}
        if self.sid:
            head["sid"] = self.sid
        return {**head, **self.fields}

    @classmethod
    def from_json(cls, line: dict[str, Any]) -> JournalEvent:
        """The event as :meth:`to_json` wrote it (a journal line)."""
        rest = dict(line)
        head = [rest.pop(name, default) for name, default in
                (("event", ""), ("t", 0.0), ("mono", 0.0), ("scenario", ""), ("sid", ""))]
        return cls(str(head[0]), float(head[1]), float(head[2]), str(head[3]), rest, str(head[4]))


class Journal:
    """Append-only event log of one scenario, mirrored to a JSON Lines file shared by the run."""

    def __init__(self, path: Path | None, scenario: str = "", sid: str = "",
                 redact: Callable[[str], str] | None = None) -> None:
        self._path = path
        self._redact = redact  # applied to every line written (support.redact); the events in memory stay as given
        self._scenario = scenario
        self._sid = sid
        self._lock = threading.Lock()
        self._events: list[JournalEvent] = []

    @classmethod
    def of(cls, events: list[JournalEvent]) -> Journal:
        """A read-only view over recorded events (a stored history), with the same queries."""
        journal = cls(None)
        journal._events = list(events)
        return journal

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)

    def record(self, event: str, at: tuple[float, float] | None = None, **fields: Any) -> JournalEvent:
        """Record ``event``, which happened now or ``at`` (wall, monotonic); ``fields`` must be JSON serialisable."""
        wall, mono = at if at is not None else (time.time(), time.monotonic())
        entry = JournalEvent(event, wall, mono, self._scenario, dict(fields), self._sid)
        line = json.dumps(entry.to_json(), default=str)
        if self._redact is not None:
            line = self._redact(line)
        with self._lock:
            self._events.append(entry)
            if self._path is not None:
                with self._path.open("a", encoding="utf-8") as out:
                    out.write(line + "\n")
        log.info("journal %s %s", event, fields)
        return entry

    def events(self, name: str | None = None, **match: Any) -> list[JournalEvent]:
        """Events in order, optionally only those named ``name`` whose fields equal ``match``."""
        with self._lock:
            found = list(self._events)
        return [e for e in found if (name is None or e.event == name) and _matches(e, match)]

    def first(self, name: str, after: float | None = None, **match: Any) -> JournalEvent | None:
        """The first ``name`` event (at or after wall time ``after``) whose fields equal ``match``."""
        for entry in self.events(name, **match):
            if after is None or entry.t >= after:
                return entry
        return None

    def last(self, name: str, **match: Any) -> JournalEvent | None:
        """The latest ``name`` event whose fields equal ``match``."""
        found = self.events(name, **match)
        return found[-1] if found else None

    def __iter__(self) -> Iterator[JournalEvent]:
        return iter(self.events())


def _matches(entry: JournalEvent, match: dict[str, Any]) -> bool:
    return all(entry.fields.get(k) == v for k, v in match.items())


@dataclass
class _Cleanup:
    description: str
    action: Callable[[], object]


class CleanupStack:
    """Undo actions registered before the thing they undo exists; run last-in first-out, always all of them."""

    def __init__(self, journal: Journal | None = None) -> None:
        self._items: list[_Cleanup] = []
        self._journal = journal
        self._lock = threading.Lock()

    def push(self, description: str, action: Callable[[], object]) -> None:
        with self._lock:
            self._items.append(_Cleanup(description, action))

    def __len__(self) -> int:
        return len(self._items)

    def run_all(self) -> list[str]:
        """Run every cleanup; return one line per cleanup that failed (the others still ran)."""
        errors: list[str] = []
        while True:
            with self._lock:
                if not self._items:
                    break
                item = self._items.pop()
            started = time.monotonic()
            try:
                item.action()
            except Exception as exc:  # a failing cleanup must not stop the others
                errors.append(f"{item.description}: {exc}")
                log.exception("cleanup failed: %s", item.description)
                self._note("cleanup.failed", what=item.description, error=str(exc))
            else:
                self._note("cleanup.done", what=item.description, seconds=round(time.monotonic() - started, 3))
        return errors

    def _note(self, event: str, **fields: Any) -> None:
        """Journal a cleanup's outcome; a journal that cannot be written (a full disk) never stops the others."""
        if self._journal is None:
            return
        try:
            self._journal.record(event, **fields)
        except Exception:
            log.exception("could not journal %s %s", event, fields)
