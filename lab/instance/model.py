"""Jobs, PEs and the API errors of an instance service: the leaf of `lab.instance`.

Standard library only.
"""

from __future__ import annotations

import socket
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab import clock
from lab.apps import AppSpec, OperatorSpec


def now_ms() -> int:
    """Epoch ms as this data center reports them (:mod:`lab.clock`: ``python -m lab skew``)."""
    return clock.now_ms()


@dataclass
class PE:
    id: str
    index: int
    job: Job
    listener: socket.socket
    dir: Path
    status: str = "constructed"
    status_reason: str = "none"
    launch_count: int = 0
    pid: int | None = None
    proc: subprocess.Popen[bytes] | None = None
    stopping: bool = False
    responsive: bool = True  # answers the instance's liveness pings
    thread: threading.Thread | None = None
    #: `streamtool restartpe` asked to stop the running process and launch it again (not a crash)
    user_restart: bool = False
    last_metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])


@dataclass
class Job:
    id: str
    name: str
    app: AppSpec
    params: dict[str, str]
    submit_params: list[dict[str, str]]
    submit_time: int
    group: str = "default"
    tracing: str = "info"
    status: str = "running"
    pes: list[PE] = field(default_factory=list)
    #: the instance's copy of the bundle the job was submitted from (`applicationPath`)
    bundle_path: str = ""
    #: set once a canceled job's PEs are gone and the job left the instance
    gone: threading.Event = field(default_factory=threading.Event)

    def pe_of(self, op: OperatorSpec) -> PE:
        return self.pes[op.pe_index]

    def operator(self, name: str) -> OperatorSpec | None:
        return next((o for o in self.app.operators if o.name == name), None)

    def pe_links(self) -> list[tuple[PE, PE]]:
        """PE connections (source PE output port 0 -> target PE input port 0)."""
        return [(self.pes[s], self.pes[d]) for s, d in sorted(self.app.downstream.items())]


class ApiError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class DropConnection(Exception):
    """The request was handled but no answer is sent: the server closes the connection (defect `lost-ack`)."""
