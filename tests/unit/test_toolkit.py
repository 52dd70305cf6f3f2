"""The toolkit monitor against a fake REST API whose jobs, operator counters and PE traces the test moves."""

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from support.orchestration import Journal
from support.streams.errors import StreamsConnectionError
from support.toolkit import (
    MERGER,
    RECEIVER,
    WATCHDOG,
    StandbyWatch,
    ToolkitMonitor,
    ToolkitNames,
    parse_trace,
    parse_trace_time,
)
from support.waits import wait_until

NAMES = ToolkitNames(alias="OrdersXDC")
UP_LINE = ("INFO [Application_Logic] _XXXXX_ UDP channel 0-->Received a notification about the remote data center "
           "coming up and running normally.")
DOWN_LINE = ("INFO [Application_Logic] _XXXXX_ UDP channel 0-->Received a notification about the remote data center "
             "going down due to failure or planned maintenance.")


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


class FakeRest:
    def __init__(self, with_watchdog: bool = True) -> None:
        self.job_list: list[dict[str, Any]] = []
        self.counts: dict[tuple[str, str], int] = {}
        self.trace: dict[str, list[str]] = {}
        self.down = False
        self.with_watchdog = with_watchdog
        self.pe_status: dict[str, tuple[str, int]] = {}

    def jobs(self, name: str | None = None) -> list[dict[str, Any]]:
        if self.down:
            raise StreamsConnectionError("refused", url="https://x")
        return [dict(j) for j in self.job_list]

    def operators(self, job: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The toolkit's operators as a real job names them: the alias, and a channel index on the receiver."""
        names = [WATCHDOG, RECEIVER, MERGER] if self.with_watchdog else [RECEIVER]
        return [{"name": "Aggregator"}, {"name": "Other.RemoteDCDataMerger"}] + [
            {"name": NAMES.operator(n), "pe": f"pe/{job['id']}", "self": f"op/{job['id']}/{n}",
             "outputPorts": f"ports/{job['id']}/{n}"}
            for n in names]

    def get(self, url: str, **params: Any) -> Any:
        _, job_id, name = url.split("/", 2)
        return {"outputPorts": [{"indexWithinOperator": 0, "metrics": f"m/{job_id}/{name}"}]}

    def metrics(self, element_or_url: Mapping[str, Any] | str) -> dict[str, int]:
        assert isinstance(element_or_url, str)
        _, job_id, name = element_or_url.split("/", 2)
        return {"nTuplesSubmitted": self.counts.get((job_id, name), 0)}

    def pes(self, job: Mapping[str, Any]) -> list[dict[str, Any]]:
        job_id = str(job["id"])
        status, launches = self.pe_status.get(job_id, ("running", 1))
        return [{"id": f"{job_id}0", "self": f"pe/{job_id}", "status": status, "launchCount": launches,
                 "statusReason": "crash" if launches > 1 else "none"}]

    def pe_trace(self, pe: Mapping[str, Any]) -> str:
        return "\n".join(self.trace.get(str(pe["self"]).split("/")[1], [])) + "\n"


def test_trace_lines_and_their_times() -> None:
    lines = parse_trace(
        "2026-11-26T06:40:01.123Z INFO [RemoteDC-Heartbeat-Watchdog] _XXXXX_ remote data center dc1 is DOWN after "
        "4 missed heartbeats\n"
        "2026-11-26T06:40:01.200Z INFO [Aggregator] merged state\n"
        "26 Nov 2026 06:40:02.500+0000 [123] INFO #splapptrc,J[1],P[2] M[x] - _XXXXX_ replayed 1 data snapshot(s)\n")
    assert [line.aspect for line in lines] == ["RemoteDC-Heartbeat-Watchdog", ""]
    assert lines[0].t == parse_trace_time("2026-11-26T06:40:01.123Z")
    assert lines[1].t is not None and abs(lines[1].t - lines[0].t - 1.377) < 1e-6
    assert parse_trace_time("2026-11-26T07:40:01+01:00") == parse_trace_time("2026-11-26T06:40:01Z")
    assert parse_trace_time("yesterday") is None


def test_takeover_transitions_and_trace_times_are_journaled(tmp_path: Path) -> None:
    dc1, dc2 = FakeRest(), FakeRest()
    dc1.job_list = [{"id": "1", "name": "orders", "status": "running"}]
    dc2.job_list = [{"id": "7", "name": "orders_standby", "status": "running"}]
    dc1.counts[("1", WATCHDOG)] = 1
    dc2.counts[("7", WATCHDOG)] = 1
    dc2.trace["7"] = [f"{iso(time.time() - 5)} {UP_LINE}"]
    journal = Journal(tmp_path / "j.jsonl")
    monitor = ToolkitMonitor({"dc1": dc1, "dc2": dc2}, "orders", journal, interval=0.01, max_duration=20, toolkit=NAMES,
                             trace_interval=0.05)
    monitor.start()
    try:
        wait_until(lambda: monitor.polls, lambda n: n >= 2, timeout=5, interval=0.01, what="polls")
        assert monitor.remote_up("dc2") is True
        assert journal.events() == []  # the starting layout and old trace lines are the baseline, not news
        dc2.counts[("7", RECEIVER)] = 3
        wait_until(lambda: journal.first("toolkit.snapshot_stored", dc="dc2"), bool, timeout=5, interval=0.01,
                   what="replication seen")
        assert monitor.last_replication("dc2") is not None
        dc1.job_list = []
        dc1.down = True  # an unreachable DC must not stop the monitor
        down_at = time.time() - 0.02
        dc2.trace["7"].append(f"{iso(down_at)} {DOWN_LINE}")
        dc2.counts[("7", WATCHDOG)] = 2
        wait_until(lambda: journal.first("toolkit.remote_down", dc="dc2"), bool, timeout=5, interval=0.01,
                   what="DOWN seen")
        submitted = time.time()
        dc2.job_list.append({"id": "8", "name": "orders", "status": "running", "submitTime": int(submitted * 1000)})
        wait_until(lambda: monitor.takeover_at("dc2"), bool, timeout=5, interval=0.01, what="takeover")
        dc2.pe_status["8"] = ("restarting", 2)
        wait_until(lambda: journal.first("toolkit.pe_state", dc="dc2"), bool, timeout=5, interval=0.01,
                   what="PE state change")
    finally:
        monitor.stop()
    names = [e.event for e in journal.events()]
    assert names.index("toolkit.remote_down") < names.index("toolkit.takeover")
    down = journal.first("toolkit.remote_down", dc="dc2")
    assert down is not None and abs(down.fields["happened_at"] - down_at) < 0.002 and down.t >= down_at
    takeover = journal.first("toolkit.takeover", dc="dc2")
    assert takeover is not None and takeover.fields["job_id"] == "8"
    assert abs(takeover.fields["happened_at"] - submitted) < 0.002
    trace = journal.first("toolkit.trace", dc="dc2")
    assert trace is not None and "going down" in trace.fields["message"]
    pe = journal.first("toolkit.pe_state", dc="dc2")
    assert pe is not None and pe.fields["status"] == "restarting" and pe.fields["launch_count"] == 2
    assert monitor.remote_up("dc2") is False
    assert monitor.takeover_at("dc1") is None


def test_a_stamp_outside_the_look_window_is_not_trusted(tmp_path: Path) -> None:
    dc1, dc2 = FakeRest(), FakeRest()
    dc1.job_list = [{"id": "1", "name": "orders", "status": "running"}]
    journal = Journal(None)
    monitor = ToolkitMonitor({"dc1": dc1, "dc2": dc2}, "orders", journal, interval=0.01, max_duration=20, toolkit=NAMES,
                             clock_tolerance=0.1)
    monitor.start()
    try:
        wait_until(lambda: monitor.polls, lambda n: n >= 2, timeout=5, interval=0.01, what="polls")
        skewed = time.time() - 60  # dc2's clock is a minute behind
        dc2.job_list = [{"id": "3", "name": "orders", "status": "running", "submitTime": int(skewed * 1000)}]
        wait_until(lambda: monitor.takeover_at("dc2"), bool, timeout=5, interval=0.01, what="takeover")
    finally:
        monitor.stop()
    takeover = journal.first("toolkit.takeover", dc="dc2")
    assert takeover is not None and "happened_at" not in takeover.fields
    assert monitor.takeover_at("dc2") == takeover.t


def test_active_active_takeover_in_place_and_trace_only_transitions(tmp_path: Path) -> None:
    dc1, dc2 = FakeRest(with_watchdog=False), FakeRest(with_watchdog=False)
    dc1.job_list = [{"id": "1", "name": "orders", "status": "running"}]
    dc2.job_list = [{"id": "2", "name": "orders", "status": "running"}]
    journal = Journal(None)
    monitor = ToolkitMonitor({"dc1": dc1, "dc2": dc2}, "orders", journal, interval=0.01, max_duration=20, toolkit=NAMES,
                             trace_interval=0.02)
    monitor.start()
    try:
        wait_until(lambda: monitor.polls, lambda n: n >= 2, timeout=5, interval=0.01, what="polls")
        dc2.trace["2"] = [f"{iso(time.time())} {UP_LINE}"]
        wait_until(lambda: monitor.remote_up("dc2"), bool, timeout=5, interval=0.01, what="UP from the trace")
        dc2.trace["2"].append(f"{iso(time.time())} {DOWN_LINE}")
        wait_until(lambda: journal.first("toolkit.remote_down", dc="dc2"), bool, timeout=5, interval=0.01,
                   what="DOWN from the trace")
    finally:
        monitor.stop()
    down = journal.first("toolkit.remote_down", dc="dc2")
    assert down is not None and down.fields["source"] == "trace" and "happened_at" in down.fields

    dc3, dc4 = FakeRest(), FakeRest()
    dc3.job_list = [{"id": "1", "name": "orders", "status": "running"}]
    dc4.job_list = [{"id": "2", "name": "orders", "status": "running"}]
    journal = Journal(None)
    monitor = ToolkitMonitor({"dc1": dc3, "dc2": dc4}, "orders", journal, interval=0.01, max_duration=20, toolkit=NAMES)
    monitor.start()
    try:
        wait_until(lambda: monitor.polls, lambda n: n >= 2, timeout=5, interval=0.01, what="polls")
        dc4.counts[("2", MERGER)] = 1  # dc2 replays dc1's snapshots into its running job
        wait_until(lambda: monitor.takeover_at("dc2"), bool, timeout=5, interval=0.01, what="takeover in place")
    finally:
        monitor.stop()
    takeover = journal.first("toolkit.takeover", dc="dc2")
    assert takeover is not None and takeover.fields["mode"] == "in place"
    assert journal.first("toolkit.snapshot_restored", dc="dc2") is not None


def test_takeover_is_inferred_from_output_when_the_toolkit_is_silent(tmp_path: Path) -> None:
    dc1, dc2 = FakeRest(), FakeRest()
    dc1.job_list = [{"id": "1", "name": "orders", "status": "running"}]
    outputs: dict[str, float] = {"dc1": 1.0}
    journal = Journal(None)
    monitor = ToolkitMonitor({"dc1": dc1, "dc2": dc2}, "orders", journal, interval=0.01, max_duration=20, toolkit=NAMES,
                             outputs=lambda: outputs)
    monitor.start()
    try:
        wait_until(lambda: monitor.polls, lambda n: n >= 2, timeout=5, interval=0.01, what="polls")
        dc2.down = True  # the job list of dc2 cannot be read, yet dc2 emits output
        outputs["dc2"] = 123.5
        wait_until(lambda: monitor.takeover_at("dc2"), bool, timeout=5, interval=0.01, what="inferred takeover")
    finally:
        monitor.stop()
    takeover = journal.first("toolkit.takeover", dc="dc2")
    assert takeover is not None and takeover.fields["inferred"] is True and takeover.fields["happened_at"] == 123.5
    assert monitor.takeover_at("dc1") is None


class HangingRest(FakeRest):
    """A data center whose REST API stops answering (cut off): every call blocks until released."""

    def __init__(self) -> None:
        super().__init__()
        self.hang = threading.Event()
        self.release = threading.Event()

    def jobs(self, name: str | None = None) -> list[dict[str, Any]]:
        if self.hang.is_set():
            self.release.wait(10)
            raise StreamsConnectionError("connect timed out", url="https://x")
        return super().jobs(name)


def test_a_data_center_that_stops_answering_does_not_delay_what_is_seen_of_the_other(tmp_path: Path) -> None:
    dc1, dc2 = HangingRest(), FakeRest()
    dc1.job_list = [{"id": "1", "name": "orders", "status": "running"}]
    dc2.job_list = [{"id": "7", "name": "orders_standby", "status": "running"}]
    journal = Journal(None)
    monitor = ToolkitMonitor({"dc1": dc1, "dc2": dc2}, "orders", journal, interval=0.01, max_duration=20, toolkit=NAMES)
    monitor.start()
    try:
        wait_until(lambda: monitor.polls, lambda n: n >= 2, timeout=5, interval=0.01, what="polls")
        dc1.hang.set()  # dc1's REST calls now block for up to 10 s
        submitted = time.time()
        dc2.job_list.append({"id": "8", "name": "orders", "status": "running", "submitTime": int(submitted * 1000)})
        wait_until(lambda: monitor.takeover_at("dc2"), bool, timeout=2, interval=0.01, what="takeover in dc2")
        takeover = journal.first("toolkit.takeover", dc="dc2")
        assert takeover is not None and takeover.t - submitted < 1.0
    finally:
        dc1.release.set()
        monitor.stop()


def test_the_standby_watch_reads_the_stubs_remote_status_lines_with_their_own_time() -> None:
    log = ["2026-11-26T06:40:00.000Z ERROR [TimerSignal] Local Data Center=dc2, Remote DC Status=Up and running.\n"]
    journal = Journal(None, "standby")
    text = lambda: "".join(log)  # noqa: E731
    watch = StandbyWatch("dc2", lambda offset: text().encode()[offset:].decode(), lambda: len(text().encode()),
                         ToolkitNames(), journal)
    watch._offset = watch._size()  # what start_at_end does, without the thread
    watch.look()
    assert journal.events("toolkit.remote_down") == []
    log.append("2026-11-26T06:40:05.250Z ERROR [Application_Logic] Received a notification about the remote data "
               "center going down due to failure or planned")  # the rest of the line is not written yet
    watch.look()
    assert journal.events("toolkit.remote_down") == []
    log.append(" maintenance.\nsome other output\n")
    watch.look()
    down = journal.events("toolkit.remote_down")
    assert len(down) == 1 and down[0].fields["dc"] == "dc2" and down[0].fields["source"] == "standby log"
    assert down[0].fields["happened_at"] == parse_trace_time("2026-11-26T06:40:05.250Z")
    assert watch.status is False
