"""A fault session against the lab as the tester builds one (config, REST clients, cleanup stack), for the lab tests
that inject faults directly; closing it heals everything and proves that no residue is left on the hosts. Also the
`faults inject` CLI started and SIGKILLed once its fault is effective (the dead-man tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from labwire import ROOT

from support.config import load_config
from support.faults.session import FaultSession
from support.orchestration import CleanupStack, Journal
from support.streams.rest import StreamsRestClient


@contextmanager
def fault_session(config_path: Path, title: str) -> Iterator[FaultSession]:
    config = load_config(config_path)
    rest = {dc: StreamsRestClient.from_settings(config.settings, dc) for dc in config.settings.datacenters}
    cleanup = CleanupStack()
    faults = FaultSession(config, Journal(None, title), cleanup, rest)
    try:
        yield faults
        assert cleanup.run_all() == []
        residue = faults.audit()
        assert residue == [], f"the fault left residue on the hosts: {residue}"
    finally:
        faults.close()
        for client in rest.values():
            client.close()


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "support.cli", *args]


def start_and_kill(args: list[str]) -> float:
    """Start ``faults inject ...``, SIGKILL it once the fault is verified; return the kill instant."""
    proc = subprocess.Popen(cli(*args), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        deadline = time.monotonic() + 30
        while True:
            line = proc.stdout.readline()
            assert line, f"the CLI ended before the fault was effective: {proc.stderr.read() if proc.stderr else ''}"
            if ": effective after " in line:
                break
            assert time.monotonic() < deadline
        killed = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        return killed
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
