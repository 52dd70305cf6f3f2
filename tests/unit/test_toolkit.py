"""The toolkit monitor against a fake REST API whose jobs and watchdog counters the test moves."""

from pathlib import Path
from typing import Any

from support.orchestration import Journal
from support.streams.errors import StreamsConnectionError
from support.toolkit import WATCHDOG, ToolkitMonitor
from support.waits import wait_until


class FakeRest:
    def __init__(self) -> None:
        self.job_list: list[dict[str, Any]] = []
        self.transitions: dict[str, int] = {}
        self.down = False

    def jobs(self, name: str | None = None) -> list[dict[str, Any]]:
        if self.down:
            raise StreamsConnectionError("refused", url="https://x")
        return [dict(j) for j in self.job_list]

    def operators(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"name": "Aggregator"}, {"name": WATCHDOG}]

    def port_metrics(self, job: dict[str, Any], operator_name: str, direction: Any, index: int = 0
                     ) -> dict[str, int]:
        return {"nTuplesSubmitted": self.transitions.get(str(job["id"]), 0)}


def test_takeover_and_transitions_are_journaled(tmp_path: Path) -> None:
    dc1, dc2 = FakeRest(), FakeRest()
    dc1.job_list = [{"id": "1", "name": "orders", "status": "running"}]
    dc2.job_list = [{"id": "7", "name": "orders_standby", "status": "running"}]
    dc1.transitions["1"] = 1
    dc2.transitions["7"] = 1
    journal = Journal(tmp_path / "j.jsonl")
    monitor = ToolkitMonitor({"dc1": dc1, "dc2": dc2}, "orders", journal, interval=0.01, max_duration=20)
    monitor.start()
    try:
        wait_until(lambda: monitor.polls, lambda n: n >= 2, timeout=5, interval=0.01, what="polls")
        assert monitor.remote_up("dc2") is True
        assert journal.events() == []  # the starting layout is the baseline, not news
        dc1.job_list = []
        dc1.down = True  # an unreachable DC must not stop the monitor
        dc2.transitions["7"] = 2
        wait_until(lambda: journal.first("toolkit.remote_down", dc="dc2"), bool, timeout=5, interval=0.01,
                   what="DOWN seen")
        dc2.job_list.append({"id": "8", "name": "orders", "status": "running"})
        wait_until(lambda: monitor.takeover_at("dc2"), bool, timeout=5, interval=0.01, what="takeover")
    finally:
        monitor.stop()
    names = [e.event for e in journal.events()]
    assert names.index("toolkit.remote_down") < names.index("toolkit.takeover")
    assert journal.first("toolkit.takeover", dc="dc2").fields["job_id"] == "8"
    assert monitor.remote_up("dc2") is False
    assert monitor.takeover_at("dc1") is None
