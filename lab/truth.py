"""Ground-truth event log `/run/xdc-lab/truth.jsonl` (written by the lab, read only by tests).

Each event is one JSON line appended with a single O_APPEND write, so lines from concurrent
processes never interleave. Written as events happen.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

from lab import paths


def emit(dc: str, component: str, event: str, **details: Any) -> None:
    record: dict[str, Any] = {
        "t": time.time(),
        "mono": time.monotonic(),
        "dc": dc,
        "component": component,
        "event": event,
    }
    record.update(details)
    line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
    try:
        fd = os.open(paths.truth_file(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except FileNotFoundError:  # lab being torn down
        return
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_events() -> Iterator[dict[str, Any]]:
    try:
        with open(paths.truth_file(), encoding="utf-8") as f:
            for line in f:
                if line.endswith("\n"):
                    try:
                        yield json.loads(line)
                    except ValueError:
                        continue
    except FileNotFoundError:
        return
