"""The live run: ``running.json`` that names it (for ``failover-tester abort``) and the forwarder of its signals.

Shared by ``failover-tester run`` (:mod:`support.cli.run`) and its soak mode (:mod:`support.cli.soak`), where one
forwarder lives across the rounds.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from pathlib import Path
from types import FrameType

__all__ = ["RUNNING_FILE", "SIGNAL_EXIT", "Forwarder", "remove_running"]

#: names the live run in ``run.reports_dir`` (for ``failover-tester abort``); removed when the run ends
RUNNING_FILE = "running.json"
#: the exit code of a run stopped by a signal: 128 + the signal's number
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


class Forwarder:
    """While entered: SIGINT and SIGTERM are noted and forwarded to behave (started by :meth:`run` in its own
    process group, so that a terminal's Ctrl-C reaches behave once, through here). A signal that comes while
    behave is being started is forwarded as soon as it runs; one that comes after it ended is only noted."""

    def __init__(self) -> None:
        self.first: signal.Signals | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._pending: list[int] = []
        self._previous: dict[int, object] = {}

    def __enter__(self) -> Forwarder:
        for signum in SIGNAL_EXIT:
            self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.first is None:
            self.first = signal.Signals(signum)
        proc = self._proc
        if proc is None:
            self._pending.append(signum)
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signum)

    def run(self, cmd: list[str], env: dict[str, str] | None = None) -> int:
        """Run behave to its end (every signal forwarded); its exit code. After a signal that came before behave
        started, behave is not started at all (nothing was touched): exit code 1. Called once per round of
        ``--repeat`` (and of a soak): a signal between two rounds is kept for the next one, which therefore does
        not start."""
        self._proc = None  # from here a signal is pending until the next behave runs, not sent to the last one
        if self.first is not None:
            return 1
        self._proc = subprocess.Popen(cmd, process_group=0, env=env)
        pending, self._pending = self._pending, []
        for signum in pending:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signum)
        return self._proc.wait()


def remove_running(path: Path, pid: int) -> None:
    """Remove ``running.json`` if it still names this process (another run may have replaced a stale one)."""
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == pid:
            path.unlink()
    except (OSError, ValueError):
        pass
