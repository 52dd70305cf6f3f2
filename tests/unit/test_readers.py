"""Robust readers (issue 13, gap 7): a malformed output tuple is recorded as unparsed (raw text, journal
``reader.unparsed``, ``unparsed.jsonl``) and counted by the integrity verdict, and never stops the reader (no
false data loss); the reader and producer threads journal an unexpected error (``thread.error``) and carry on."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fake_http import FakeTransport, answer, json_answer
from test_exchange import ROOT, SINK, client_for, transport  # noqa: F401 - the fixture
from test_traffic import FakeDC, make_traffic

from support.data.contract import ORDERS
from support.data.validate import check_delivery
from support.measure import check_integrity
from support.orchestration import Journal
from support.streams.exchange import UNPARSED, BufferMark, SinkCursor, SinkRead
from support.traffic import malformed
from support.waits import wait_until


class MalformedDC(FakeDC):
    """A consuming sink that puts a malformed tuple in its buffer after every ``every`` good ones: in turn a
    string (not a JSON object), an object without an id and an object with an ill-typed seq."""

    def __init__(self, name: str, every: int = 40) -> None:
        super().__init__(name, True, consuming=True)
        self.every = every
        self.bad = 0
        self.good = 0

    def _buffer(self, items: list[dict[str, Any]]) -> None:
        out: list[Any] = []
        for item in items:
            out.append(item)
            self.good += 1
            if self.good % self.every == 0:
                out.append([f"garbage-{self.bad}{{", {"key": "k", "seq": 1}, {**item, "id": f"x{self.bad}",
                                                                               "seq": "abc"}][self.bad % 3])
                self.bad += 1
        super()._buffer(out)

    def read(self, url: str, start_time_ms: int | None = None) -> SinkRead:
        with self.lock:  # as DataExchangeClient.read gives them: a non-object as {UNPARSED: raw}
            self.reads += 1
            taken = [e for e in self.buffer if start_time_ms is None or e[0] >= start_time_ms]
            self.buffer = [e for e in self.buffer if start_time_ms is not None and e[0] < start_time_ms]
            items = [dict(i) if isinstance(i, dict) else {UNPARSED: str(i)} for _, _, i in taken]
            return SinkRead(items, [BufferMark(p, t) for t, p, _ in taken])


def test_malformed_tuples_are_recorded_as_unparsed_and_nothing_is_counted_lost(tmp_path: Path) -> None:
    dc1 = MalformedDC("dc1")
    journal = Journal(tmp_path / "journal.jsonl")
    traffic = make_traffic(tmp_path, {"dc1": dc1}, journal)  # type: ignore[dict-item]
    traffic.start()
    try:
        wait_until(lambda: dc1.bad, lambda n: n >= 4, timeout=10, interval=0.02, what="4 malformed tuples")
        traffic.wait_steady(0.3, timeout=10)  # output still flows after the malformed ones
    finally:
        traffic.drain(timeout=5, quiet=0.3)
    report = check_delivery(traffic.sent.rows(), traffic.received.rows())
    assert report.lost == 0 and report.acknowledged > 100
    bad = dc1.bad
    assert traffic.consumer.unparsed == {"dc1": bad}
    events = journal.events("reader.unparsed")
    assert sum(e.fields["count"] for e in events) == bad and events[0].fields["raw"].startswith("garbage-0")
    side = [json.loads(line) for line in (tmp_path / "unparsed.jsonl").read_text().splitlines()]
    assert len(side) == bad and side[0]["dc"] == "dc1"
    verdict = check_integrity(report, unparsed=bad)
    assert not verdict.passed and verdict.evidence["unparsed"] == bad and "could not be parsed" in verdict.summary
    assert not journal.events("thread.error")


class FlakyDC(FakeDC):
    """Raises an unexpected (non-Streams) error on the 3rd read and the 5th inject, then works again."""

    def __init__(self, name: str) -> None:
        super().__init__(name, True)
        self.injects = 0

    def read(self, url: str, start_time_ms: int | None = None) -> SinkRead:
        if self.reads == 2:
            self.reads += 1
            raise RuntimeError("reader boom")
        return super().read(url, start_time_ms)

    def inject(self, url: str, items: Sequence[Mapping[str, Any]], fmt: Any = "json", timeout: Any = None) -> int:
        self.injects += 1
        if self.injects == 5:
            raise ValueError("producer boom")
        return super().inject(url, items, fmt, timeout)


def test_reader_and_producer_journal_an_error_and_carry_on(tmp_path: Path) -> None:
    dc1 = FlakyDC("dc1")
    journal = Journal(tmp_path / "journal.jsonl")
    traffic = make_traffic(tmp_path, {"dc1": dc1}, journal)
    traffic.start()
    try:
        wait_until(lambda: len(journal.events("thread.error")), lambda n: n >= 2, timeout=10, interval=0.02,
                   what="both errors journaled")
        traffic.wait_steady(0.3, timeout=10)
        assert traffic.producer.is_alive() and traffic.consumer.is_alive()
    finally:
        traffic.drain(timeout=5, quiet=0.3)
    errors = {e.fields["thread"]: e.fields["error"] for e in journal.events("thread.error")}
    assert errors == {"consumer-dc1": "RuntimeError: reader boom", "producer": "ValueError: producer boom"}
    report = check_delivery(traffic.sent.rows(), traffic.received.rows())
    assert report.lost == 0  # the non-consuming sink kept what the failed read did not take


def test_malformed_is_about_shape_not_values() -> None:
    assert malformed(ORDERS, {"id": "a", "seq": 3}) is None
    assert malformed(ORDERS, {"id": 7, "seq": "3"}) is None
    assert malformed(ORDERS, {UNPARSED: "{oops"}) == "{oops"
    for bad in ({"seq": 1}, {"id": None}, {"id": ["a"]}, {"id": "a", "seq": "abc"}, {"id": "a", "seq": 1.5},
                {"id": True}):
        assert malformed(ORDERS, bad) is not None, bad


def test_the_exchange_client_keeps_a_malformed_tuple_with_its_mark(transport: FakeTransport) -> None:  # noqa: F811
    body = {"items": [{"id": "a"}, "not-an-object", {"id": "b"}],
            "buffered": [{"position": 1, "time": 10}, {"position": 2, "time": 11}, {"position": 3, "time": 12}]}
    transport.route("GET", SINK, json_answer(body))
    client = client_for(transport)
    read = client.read(SINK)
    assert read.items == [{"id": "a"}, {UNPARSED: "not-an-object"}, {"id": "b"}]
    assert read.marks == [BufferMark(1, 10), BufferMark(2, 11), BufferMark(3, 12)]
    assert client.retrieve(SINK) == [{"id": "a"}, {"id": "b"}]
    cursor = SinkCursor(0)
    assert len(cursor.admit(read)) == 3 and cursor.admit(read) == []  # a re-read is not counted twice


def test_a_sink_body_that_is_not_json_is_one_unparsed_output(transport: FakeTransport) -> None:  # noqa: F811
    transport.route("GET", SINK, answer(200, "<html>proxy error</html>", {"Content-Type": "text/html"}))
    read = client_for(transport).read(SINK)
    assert read.items == [{UNPARSED: "<html>proxy error</html>"}] and ROOT in SINK


def test_integrity_passes_without_unparsed() -> None:
    from test_delivery import recv, sent

    assert check_integrity(check_delivery([sent(1)], [recv(1)]), unparsed=0).evidence["unparsed"] == 0
    assert not check_integrity(check_delivery([sent(1)], [recv(1)]), unparsed=1).passed
