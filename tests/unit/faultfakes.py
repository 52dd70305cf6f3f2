"""Helpers for the fault library's unit tests: a config of the lab's shape that needs no lab, a recording
executor, and a private network namespace (root only) where fault scripts can run for real."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from support.config import Config, load_config
from support.faults.base import FaultContext, Topology
from support.faults.executor import Executor, ExecutorPool, LocalExecutor, Result
from support.faults.guard import Allowlist

PROJECT = Path(__file__).resolve().parents[2]


UNIT_TAG = "xdc-ut"  # not the lab's tag: what a test runs for real on this machine stays out of the lab's audit


def lab_shaped_config(tmp_path: Path, *overrides: str) -> Config:
    """config/lab.yaml with a password from a temp file (so no lab is needed) and the unit tests' own fault tag:
    the unit tests run beside the lab tests, on the same machine, and their dead-man timers and tagged processes
    name the lab's host addresses; under the lab's tag the lab's residue audit would report them (and its sweep
    kill them)."""
    secret = tmp_path / "pw"
    secret.write_text("unit-secret-pw\n")
    path = tmp_path / "faults.yaml"
    path.write_text(
        f"extends: {PROJECT / 'config' / 'lab.yaml'}\n"
        "datacenters:\n"
        f"  dc1: {{rest: {{auth: {{password: '${{file:{secret}}}'}}}}}}\n"
        f"  dc2: {{rest: {{auth: {{password: '${{file:{secret}}}'}}}}}}\n"
    )
    return load_config(path, [f"faults.tag={UNIT_TAG}", *overrides])


class RecordingExecutor(Executor):
    """Records scripts; answers with ``answer(script)`` (default: success, no output)."""

    def __init__(self, host: str, log: list[tuple[str, str]],
                 answer: Callable[[str], Result] | None = None) -> None:
        super().__init__(host)
        self.log = log
        self.answer = answer

    def run(self, script: str, timeout: float = 30.0) -> Result:
        self.log.append((self.host, script))
        if self.answer is not None:
            return self.answer(script)
        return Result(self.host, 0, "", "", 0.0)


def fake_context(config: Config, log: list[tuple[str, str]] | None = None,
                 answer: Callable[[str], Result] | None = None, rest: dict | None = None,
                 dry_run: bool = False) -> FaultContext:
    calls = log if log is not None else []
    topology = Topology.from_settings(config.settings, str(config.source))
    allowlist = Allowlist(topology)
    pool = ExecutorPool(topology, allowlist, factory=lambda host: RecordingExecutor(host, calls, answer))
    return FaultContext(topology, config.settings.faults, pool, allowlist, rest or {}, dry_run=dry_run)


class NetnsExecutor(LocalExecutor):
    """Runs scripts inside a network namespace (``ip netns exec``), as SSH into a DC host would."""

    def __init__(self, host: str, netns: str) -> None:
        super().__init__(host)
        self.netns = netns

    def run(self, script: str, timeout: float = 30.0) -> Result:
        return super().run(f"exec ip netns exec {self.netns} bash -c {_quote(script)}", timeout)


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def is_root() -> bool:
    return os.geteuid() == 0


@contextmanager
def private_netns() -> Iterator[str]:
    """A throwaway network namespace (loopback up), deleted afterwards."""
    name = f"xdc-ut-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
