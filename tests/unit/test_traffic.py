"""The producer and consumer against a fake two-DC data exchange (the lab covers the real one)."""

import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from support.data.generate import OrderGenerator
from support.data.ledger import FAIL, OK, UNKNOWN, Ledger, ReceivedRow, SentRow
from support.data.validate import check_delivery
from support.orchestration import Journal
from support.streams.errors import StreamsNotFound, StreamsTimeout
from support.streams.exchange import BufferMark, Endpoints, SinkRead
from support.traffic import Traffic
from support.waits import wait_until


class FakeDC:
    """A data center running orders: its sink keeps the newest 1000 tuples with their buffer marks and,
    like the real EndpointSink's default, does not consume them on read (``consuming`` to change that)."""

    def __init__(self, name: str, running: bool, consuming: bool = False) -> None:
        self.name = name
        self.running = running
        self.consuming = consuming
        self.buffer: list[tuple[int, int, dict[str, Any]]] = []  # (arrival ms, position, tuple)
        self.position = 0
        self.count: dict[str, int] = {}
        self.timeout_next = False
        self.duplicate_next = False
        self.reads = 0
        self.lock = threading.Lock()

    def endpoints(self, job_name: str, application: Mapping[str, Any] | None = None) -> Endpoints | None:
        if not self.running:
            return None
        return Endpoints("1", f"{self.name}/in", f"{self.name}/out")

    def inject(self, url: str, items: Sequence[Mapping[str, Any]], fmt: Any = "json", timeout: Any = None) -> int:
        with self.lock:
            if not self.running:
                raise StreamsNotFound("gone", url=url, status=404)
            self._buffer([self._process(i) for i in items])
            if self.duplicate_next:  # the application delivers the batch a second time
                self.duplicate_next = False
                self._buffer([self._process(i) for i in items])
            if self.timeout_next:
                self.timeout_next = False
                raise StreamsTimeout("read timed out", url=url, request_sent=True)  # taken, the answer lost
            return len(items)

    def _buffer(self, items: list[dict[str, Any]]) -> None:
        now = int(time.time() * 1000)
        for item in items:
            self.buffer.append((now, self.position, item))
            self.position += 1
        del self.buffer[:-1000]

    def _process(self, item: Mapping[str, Any]) -> dict[str, Any]:
        self.count[item["key"]] = self.count.get(item["key"], 0) + 1
        return {**item, "dc": self.name, "count_for_key": self.count[item["key"]], "processed_at": time.time()}

    def read(self, url: str, start_time_ms: int | None = None) -> SinkRead:
        with self.lock:
            if not self.running:
                raise StreamsNotFound("gone", url=url, status=404)
            self.reads += 1
            taken = [e for e in self.buffer if start_time_ms is None or e[0] >= start_time_ms]
            if self.consuming:
                self.buffer = [e for e in self.buffer if start_time_ms is not None and e[0] < start_time_ms]
            return SinkRead([dict(i) for _, _, i in taken], [BufferMark(p, t) for t, p, _ in taken])

    def fail(self) -> None:
        with self.lock:
            self.running = False
            self.buffer = []  # whatever was buffered is lost with the job


def make_traffic(tmp_path: Path, dcs: dict[str, FakeDC], journal: Journal) -> Traffic:
    return Traffic(
        dcs, "orders", None, OrderGenerator(1, "t"),
        Ledger(tmp_path / "sent.csv", SentRow), Ledger(tmp_path / "received.csv", ReceivedRow), journal,
        rate=400, batch_interval=0.02, consumer_interval=0.02, max_duration=20, preferred=["dc1", "dc2"],
    )


def test_follow_active_moves_to_the_new_active_and_accounts_for_everything(tmp_path: Path) -> None:
    dc1, dc2 = FakeDC("dc1", True), FakeDC("dc2", False)
    journal = Journal(tmp_path / "journal.jsonl")
    traffic = make_traffic(tmp_path, {"dc1": dc1, "dc2": dc2}, journal)
    traffic.start()
    try:
        traffic.wait_steady(0.3, timeout=10)
        dc1.timeout_next = True
        wait_until(lambda: any(r.outcome == UNKNOWN for r in traffic.sent.rows()), bool, timeout=5,
                   interval=0.01, what="an unknown outcome")
        dc1.fail()
        wait_until(lambda: sum(r.outcome == FAIL for r in traffic.sent.rows()), lambda n: n >= 10, timeout=5,
                   interval=0.01, what="refused sends while no DC runs orders")
        dc2.running = True
        wait_until(lambda: sum(r.dc == "dc2" for r in traffic.received.rows()), lambda n: n >= 20, timeout=5,
                   interval=0.01, what="output from dc2")
    finally:
        traffic.drain(timeout=5, quiet=0.3)
    sent = traffic.sent.rows()
    report = check_delivery(sent, traffic.received.rows())
    assert {r.dc for r in sent if r.outcome == OK} == {"dc1", "dc2"}
    assert report.unknown >= 1 and report.failed >= 10
    assert report.duplicated == 0 and report.phantom_ids == []
    # only what sat in dc1's buffer when it failed can be lost
    assert report.lost < 40
    assert not traffic.producer.is_alive() and not traffic.consumer.is_alive()
    events = [e.event for e in journal.events()]
    assert "traffic.refused" in events or "traffic.no_target" in events
    assert [e.fields["dc"] for e in journal.events("traffic.output_started")][:2] == ["dc1", "dc2"]


def test_producer_keeps_the_rate(tmp_path: Path) -> None:
    dc1 = FakeDC("dc1", True)
    traffic = make_traffic(tmp_path, {"dc1": dc1}, Journal(None))
    started = time.monotonic()
    traffic.start()
    wait_until(lambda: len(traffic.sent.rows()), lambda n: n >= 400, timeout=5, interval=0.01, what="400 sent")
    elapsed = time.monotonic() - started
    traffic.stop()
    assert 0.8 <= elapsed <= 2.0  # 400 tuples at 400/s


def test_spread_gives_each_key_a_home_and_moves_it_while_the_home_is_down(tmp_path: Path) -> None:
    dc1, dc2 = FakeDC("dc1", True), FakeDC("dc2", True)
    journal = Journal(None)
    traffic = Traffic(
        {"dc1": dc1, "dc2": dc2}, "orders", None, OrderGenerator(1, "t"),
        Ledger(None, SentRow), Ledger(None, ReceivedRow), journal,
        rate=400, batch_interval=0.02, consumer_interval=0.02, max_duration=20, policy="spread",
        preferred=["dc1", "dc2"],
    )
    traffic.start()
    try:
        wait_until(lambda: len(traffic.received), lambda n: n >= 200, timeout=5, interval=0.01, what="output")
        dc1.fail()
        mark = len(traffic.sent)
        wait_until(lambda: sum(r.dc == "dc2" for r in traffic.sent.rows()[mark:] if r.outcome == OK),
                   lambda n: n >= 200, timeout=5, interval=0.01, what="dc1's keys moved to dc2")
    finally:
        traffic.drain(timeout=5, quiet=0.3)
    sent = traffic.sent.rows()
    before = sent[:mark]
    homes = {}
    for r in before:
        if r.outcome == OK:
            assert homes.setdefault(r.key, r.dc) == r.dc  # one home per key while both run
    assert set(homes.values()) == {"dc1", "dc2"}
    moved = {r.key for r in sent[mark:] if r.outcome == OK}
    assert {k for k, dc in homes.items() if dc == "dc1"} <= moved
    assert all(r.amount > 0 for r in sent) and all(r.amount > 0 for r in traffic.received.rows())
    assert traffic.missing() == check_delivery(traffic.sent.table(), traffic.received.table()).lost


class CutOffDC(FakeDC):
    """A data center that stops answering at all (isolated): every call blocks until released."""

    def __init__(self, name: str, running: bool) -> None:
        super().__init__(name, running)
        self.cut = threading.Event()
        self.release = threading.Event()

    def _hang(self, url: str, limit: float = 10.0, sent: bool = False) -> None:
        if self.cut.is_set():
            self.release.wait(limit)
            raise StreamsTimeout("timed out", url=url, request_sent=sent)

    def endpoints(self, job_name: str, application: Mapping[str, Any] | None = None) -> Endpoints | None:
        self._hang("endpoints")
        return super().endpoints(job_name, application)

    def inject(self, url: str, items: Sequence[Mapping[str, Any]], fmt: Any = "json", timeout: Any = None) -> int:
        self._hang(url, float(timeout or 10.0), sent=True)  # a kept-alive connection: the read times out
        return super().inject(url, items, fmt, timeout)

    def read(self, url: str, start_time_ms: int | None = None) -> SinkRead:
        self._hang(url)
        return super().read(url, start_time_ms)


def test_a_data_center_that_stops_answering_delays_neither_sending_nor_reading_the_other(tmp_path: Path) -> None:
    dc1, dc2 = CutOffDC("dc1", True), FakeDC("dc2", False)
    journal = Journal(None)
    traffic = make_traffic(tmp_path, {"dc1": dc1, "dc2": dc2}, journal)
    traffic.start()
    try:
        traffic.wait_steady(0.3, timeout=10)
        dc1.cut.set()
        dc2.running = True
        cut_at = time.time()
        wait_until(lambda: [r for r in traffic.received.rows() if r.dc == "dc2"], bool, timeout=8, interval=0.01,
                   what="output from dc2 while dc1 does not answer")
        first = min(r.t_recv for r in traffic.received.rows() if r.dc == "dc2")
        # the send in flight times out (3 s), then one lookup wait: not one unanswered call per DC in turn
        assert first - cut_at < 5.0
    finally:
        dc1.release.set()
        traffic.drain(timeout=5, quiet=0.3)
    report = check_delivery(traffic.sent.rows(), traffic.received.rows())
    assert report.unknown > 0
    # only what sat unread in dc1's sink when it was cut off is missing; nothing dc2 acknowledged
    assert set(report.lost_by_dc) <= {"dc1"} and report.lost < 40


def test_follow_active_moves_to_a_data_center_that_took_over_while_the_old_active_still_accepts(
        tmp_path: Path) -> None:
    dc1, dc2 = FakeDC("dc1", True), FakeDC("dc2", True)  # e.g. dc1's aggregator hangs, its endpoint does not
    journal = Journal(None)
    traffic = make_traffic(tmp_path, {"dc1": dc1, "dc2": dc2}, journal)
    traffic.start()
    try:
        traffic.wait_steady(0.3, timeout=10)
        assert not [r for r in traffic.sent.rows() if r.dc == "dc2"]  # dc1 is preferred while nothing happened
        journal.record("toolkit.takeover", dc="dc2", job="orders")
        wait_until(lambda: sum(r.dc == "dc2" and r.outcome == OK for r in traffic.sent.rows()), lambda n: n >= 300,
                   timeout=5, interval=0.01, what="sends to dc2 after its takeover")
    finally:
        traffic.drain(timeout=5, quiet=0.3)
    assert [e.fields for e in journal.events("traffic.following_takeover")] == [{"dc": "dc2", "left": "dc1"}]
    followed = journal.events("traffic.following_takeover")[0].t  # when the producer saw the takeover
    after = [r for r in traffic.sent.rows() if r.t_send > followed]
    assert after and all(r.dc == "dc2" for r in after)  # dc1 still accepts, yet gets nothing any more


def test_a_non_consuming_sink_is_read_once_per_delivery_and_a_real_duplicate_counts(tmp_path: Path) -> None:
    dc1 = FakeDC("dc1", True)
    traffic = make_traffic(tmp_path, {"dc1": dc1}, Journal(None))
    traffic.start()
    try:
        traffic.wait_steady(0.3, timeout=10)
        reads = dc1.reads
        wait_until(lambda: dc1.reads, lambda n: n >= reads + 5, timeout=5, interval=0.01, what="more reads")
        dc1.duplicate_next = True
        wait_until(lambda: dc1.duplicate_next, lambda pending: not pending, timeout=5, interval=0.01,
                   what="a batch delivered twice")
    finally:
        traffic.drain(timeout=5, quiet=0.3)
    report = check_delivery(traffic.sent.rows(), traffic.received.rows())
    assert report.lost == 0 and report.acknowledged > 100
    assert 1 <= report.duplicated <= 20  # exactly the batch the application delivered twice (400/s, 20 ms)
    sent_twice = set(report.duplicated_ids)
    assert len(traffic.received.rows()) == report.acknowledged + len(sent_twice)


def test_a_consuming_sink_still_works(tmp_path: Path) -> None:
    dc1 = FakeDC("dc1", True, consuming=True)
    traffic = make_traffic(tmp_path, {"dc1": dc1}, Journal(None))
    traffic.start()
    try:
        traffic.wait_steady(0.3, timeout=10)
    finally:
        traffic.drain(timeout=5, quiet=0.3)
    report = check_delivery(traffic.sent.rows(), traffic.received.rows())
    assert report.lost == 0 and report.duplicated == 0 and report.acknowledged > 100


def test_output_buffered_before_the_traffic_started_is_not_read(tmp_path: Path) -> None:
    dc1 = FakeDC("dc1", True)
    earlier = int(time.time() * 1000) - 5000  # a reused job: its sink still holds an earlier run's output
    dc1.buffer = [(earlier, n, {"id": f"earlier-{n}", "key": "k", "seq": n, "crc": 0}) for n in range(50)]
    dc1.position = 50
    traffic = make_traffic(tmp_path, {"dc1": dc1}, Journal(None))
    traffic.start()
    try:
        traffic.wait_steady(0.3, timeout=10)
    finally:
        traffic.drain(timeout=5, quiet=0.3)
    report = check_delivery(traffic.sent.rows(), traffic.received.rows())
    assert report.unexpected_ids == [] and report.lost == 0 and report.duplicated == 0
