"""A fault session against the lab as the tester builds one (config, REST clients, cleanup stack), for the lab tests
that inject faults directly; closing it heals everything and proves that no residue is left on the hosts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
