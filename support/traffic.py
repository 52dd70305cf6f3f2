"""Traffic: a producer injecting an application's input at a steady rate and a consumer retrieving outputs,
both writing ledgers (their columns as the application contract declares).

Routing policy ``follow-active`` sends each batch to the data center that currently runs the application
(rediscovered through the data exchange service when a send fails, and moved to a data center as soon as the
journal shows it took over: a hung or partitioned old active may still accept input); ``static`` always sends
to one DC;
``spread`` (active/active) gives every key a home data center (a stable hash of the key) and sends a key's
tuples there, or to another DC running the application while its home does not.
A timed-out send is recorded as ``unknown`` (maybe applied), never as failed.

Neither thread dies of an error: the producer and each data center's reader journal an unexpected error
(``thread.error``) and carry on after a backoff. A malformed output tuple (not a JSON object, or without a usable
id, or with an ill-typed sequence number) is recorded as unparsed with its raw text (journal ``reader.unparsed``,
``unparsed.jsonl`` next to the received ledger) and the reading goes on; the integrity verdict counts it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from support.clocks import Clocks
from support.config.settings import AppSettings
from support.data.contract import ORDERS, DataContract
from support.data.ledger import FAIL, OK, UNKNOWN, Ledger, ReceivedRow, SentRow
from support.orchestration import Journal
from support.streams.errors import StreamsConnectionError, StreamsError, StreamsNotFound
from support.streams.exchange import UNPARSED, SinkCursor, SinkRead, unparsed_text
from support.units import format_seconds
from support.waits import WaitTimeout, wait_until

log = logging.getLogger(__name__)

TAKEOVER_CHECK_INTERVAL = 0.2  # seconds between looks at the journal for a takeover (follow-active)
#: Malformed output tuples journaled one by one per data center; later ones are journaled once per read, counted.
UNPARSED_JOURNALED = 100
JOURNALED_RAW = 500  # characters of a malformed tuple's raw text in the journal
ERROR_BACKOFF_MAX = 5.0  # seconds a thread waits after repeated errors before trying again


def thread_error(journal: Journal, thread: str, exc: BaseException, failures: int, interval: float) -> float:
    """Journal an unexpected error of a traffic thread (``thread.error``) and return how long it waits before it
    carries on (doubling with consecutive ``failures``, at most :data:`ERROR_BACKOFF_MAX`)."""
    log.error("%s: unexpected error (carrying on): %s: %s", thread, type(exc).__name__, exc, exc_info=exc)
    try:
        journal.record("thread.error", thread=thread, error=f"{type(exc).__name__}: {exc}"[:500])
    except Exception:  # the journal itself failing (a full disk) must not kill the thread either
        log.exception("%s: cannot journal the error", thread)
    return float(min(ERROR_BACKOFF_MAX, max(interval, 0.05) * 2 ** min(failures, 8)))


def malformed(contract: DataContract, item: Mapping[str, Any]) -> str | None:
    """The raw text of an output tuple the reader cannot take as a delivery, or None when it is well formed: not a
    JSON object, no id (or an id that is not a string or integer), or a sequence number that is not an integer."""
    if UNPARSED in item:
        return str(item[UNPARSED])
    out_id = item.get(contract.out_id)
    if isinstance(out_id, bool) or not isinstance(out_id, str | int) or out_id == "":
        return unparsed_text(dict(item))
    seq = item.get(contract.seq_field)
    if seq is not None:
        if isinstance(seq, bool) or (isinstance(seq, float) and not seq.is_integer()):
            return unparsed_text(dict(item))
        try:
            int(seq)
        except (TypeError, ValueError, OverflowError):
            return unparsed_text(dict(item))
    return None


class Exchange(Protocol):
    def endpoints(self, job_name: str, application: AppSettings | Mapping[str, Any] | None = None) -> Any: ...

    def inject(self, url: str, items: Sequence[Mapping[str, Any]], fmt: Any = "json", timeout: Any = None
               ) -> int: ...

    def read(self, url: str, start_time_ms: int | None = None) -> SinkRead: ...


class Source(Protocol):
    def batch(self, size: int) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class AppEndpoints:
    dc: str
    job_id: str
    source_url: str
    sink_url: str


class EndpointDirectory:
    """Where the application's source and sink endpoints are, per data center, re-looked-up at most every
    ``min_refresh`` seconds."""

    def __init__(self, exchanges: Mapping[str, Exchange], job_name: str,
                 application: AppSettings | Mapping[str, Any] | None = None, min_refresh: float = 0.2) -> None:
        self._exchanges = exchanges
        self._job_name = job_name
        self._application = application
        self._min_refresh = min_refresh
        self._lock = threading.Lock()
        self._answered = threading.Condition(self._lock)
        self._known: dict[str, tuple[float, AppEndpoints | None]] = {}
        self._inflight: dict[str, float] = {}  # dc -> when its background lookup started

    @property
    def datacenters(self) -> list[str]:
        return list(self._exchanges)

    def lookup(self, dc: str, max_age: float = 1.0) -> AppEndpoints | None:
        now = time.monotonic()
        with self._lock:
            cached = self._known.get(dc)
        if cached is not None:
            age = now - cached[0]
            if age < self._min_refresh or (cached[1] is not None and age < max_age):
                return cached[1]
        found: AppEndpoints | None = None
        try:
            raw = self._exchanges[dc].endpoints(self._job_name, self._application)
        except StreamsError as exc:
            log.debug("endpoint lookup in %s failed: %s", dc, exc)
            raw = None
        if raw is not None:
            found = AppEndpoints(dc, str(raw.job_id), raw.source_url, raw.sink_url)
        with self._lock:
            self._known[dc] = (time.monotonic(), found)
        return found

    def forget(self, dc: str) -> None:
        with self._lock:
            self._known.pop(dc, None)

    def find(self, order: Sequence[str], wait: float) -> AppEndpoints | None:
        """The application's endpoints in one of the data centers of ``order`` (the first to answer "here",
        else None), looked up in parallel. A data center that does not answer costs at most ``wait`` seconds
        once: its lookup goes on in the background and later calls do not wait for it again."""
        t0 = time.monotonic()
        with self._answered:
            for dc in order:
                if dc not in self._inflight and not self._fresh(dc, t0):
                    self._inflight[dc] = t0
                    threading.Thread(target=self._look_up_in_background, args=(dc,), name=f"lookup-{dc}",
                                     daemon=True).start()
            while True:
                now = time.monotonic()
                pending: list[float] = []
                for dc in order:
                    if self._fresh(dc, t0):
                        found = self._known[dc][1]
                        if found is not None:
                            return found
                    elif dc in self._inflight and now < self._inflight[dc] + wait:
                        pending.append(self._inflight[dc] + wait)
                if not pending:
                    return None
                self._answered.wait(min(pending) - now)

    def _fresh(self, dc: str, since: float) -> bool:
        """``dc`` answered a lookup at or after ``since`` (or so shortly before that it is not asked again)."""
        known = self._known.get(dc)
        return known is not None and known[0] >= since - self._min_refresh

    def _look_up_in_background(self, dc: str) -> None:
        try:
            self.lookup(dc, max_age=0.0)
        finally:
            with self._answered:
                self._inflight.pop(dc, None)
                self._answered.notify_all()


class Producer(threading.Thread):
    """Injects ``rate`` tuples per second in batches every ``batch_interval`` seconds, for at most
    ``max_duration`` seconds."""

    def __init__(
        self,
        directory: EndpointDirectory,
        exchanges: Mapping[str, Exchange],
        source: Source,
        ledger: Ledger[SentRow],
        journal: Journal,
        rate: float,
        batch_interval: float,
        max_duration: float,
        policy: str = "follow-active",
        preferred: Sequence[str] = (),
        contract: DataContract = ORDERS,
    ) -> None:
        super().__init__(name="producer", daemon=True)
        self._contract = contract
        self._directory = directory
        self._exchanges = exchanges
        self._source = source
        self._ledger = ledger
        self._journal = journal
        self._rate = rate
        self._interval = batch_interval
        self._max_duration = max_duration
        self._policy = policy
        known = directory.datacenters
        self._order = [dc for dc in preferred if dc in known] + [dc for dc in known if dc not in preferred]
        self._current: AppEndpoints | None = None
        self._homes: dict[str, AppEndpoints] = {}
        self._route_states: dict[str, str] = {}
        self.stop_event = threading.Event()
        self.batches = 0
        self.inject_timeout = 3.0  # seconds to wait for an acknowledgement before the outcome is unknown
        self._takeovers_seen = 0
        self._following: str | None = None  # the data center that took over last (follow-active)
        self._takeover_checked = 0.0  # monotonic instant of the last look at the journal
        self.lookup_wait = 1.0  # seconds a send waits for a data center that does not answer where the job is

    def run(self) -> None:
        started = time.monotonic()
        next_tick = started
        carry = 0.0
        failures = 0
        while not self.stop_event.is_set() and time.monotonic() - started < self._max_duration:
            carry += self._rate * self._interval
            size = int(carry)
            carry -= size
            if size:
                try:
                    self._send(self._source.batch(size))
                    failures = 0
                except Exception as exc:  # never die silently: journal it, back off, carry on
                    failures += 1
                    self.stop_event.wait(thread_error(self._journal, self.name, exc, failures, self._interval))
                    next_tick = time.monotonic()
            next_tick += self._interval
            delay = next_tick - time.monotonic()
            if delay < -1.0:  # fell far behind (a slow send): do not burst to catch up
                next_tick = time.monotonic()
                delay = 0.0
            if delay > 0:
                self.stop_event.wait(delay)
        self._journal.record("traffic.producer_stopped", batches=self.batches)

    def _follow_takeover(self) -> None:
        """follow-active: the data center the toolkit monitor last saw take over (``toolkit.takeover`` in the
        journal) is the active one now, even while the old active still accepts input: it goes first."""
        now = time.monotonic()
        if now - self._takeover_checked < TAKEOVER_CHECK_INTERVAL:
            return
        self._takeover_checked = now
        takeovers = self._journal.events("toolkit.takeover")
        if len(takeovers) <= self._takeovers_seen:
            return
        self._takeovers_seen = len(takeovers)
        dc = str(takeovers[-1].fields.get("dc", ""))
        if dc not in self._order:
            return
        self._order = [dc] + [d for d in self._order if d != dc]
        self._following = dc

    def _pick_target(self) -> AppEndpoints | None:
        if self._policy == "follow-active":
            self._follow_takeover()
            if self._following is not None and (self._current is None or self._current.dc != self._following):
                found = self._directory.find([self._following], self.lookup_wait)
                if found is not None:
                    if self._current is not None:
                        self._journal.record("traffic.following_takeover", dc=found.dc, left=self._current.dc)
                    self._current = found
                    return found
        if self._current is not None:
            return self._current
        candidates = self._order if self._policy == "follow-active" else self._order[:1]
        self._current = self._directory.find(candidates, self.lookup_wait)
        return self._current

    def _send(self, batch: list[dict[str, Any]]) -> None:
        self.batches += 1
        if self._policy == "spread":
            groups: dict[str, list[dict[str, Any]]] = {}
            key_field = self._contract.key_field
            for item in batch:
                groups.setdefault(self._home(str(item[key_field])), []).append(item)
            for home, items in groups.items():
                self._send_to(items, self._pick_spread(home), lane=home)
            return
        self._send_to(batch, self._pick_target())

    def _home(self, key: str) -> str:
        return self._order[zlib.crc32(key.encode("utf-8")) % len(self._order)]

    def _pick_spread(self, home: str) -> AppEndpoints | None:
        """The key's home DC when it runs the application, else the first other DC that does."""
        for dc in [home] + [d for d in self._order if d != home]:
            known = self._homes.get(dc)
            if known is not None:
                return known
            found = self._directory.find([dc], self.lookup_wait)
            if found is not None:
                self._homes[dc] = found
                return found
        return None

    def _send_to(self, batch: list[dict[str, Any]], target: AppEndpoints | None, lane: str = "") -> None:
        t_send = time.time()
        sent_at = self._contract.sent_at_field
        if sent_at is not None:
            for item in batch:
                item[sent_at] = t_send
        if target is None:
            self._record(batch, "", t_send, FAIL, "no data center runs the application")
            self._transition("no_target", "", lane=lane)
            return
        try:
            accepted = self._exchanges[target.dc].inject(target.source_url, batch, timeout=self.inject_timeout)
        except StreamsConnectionError as exc:
            # the request may have reached the service (read timeout, reset after sending): maybe applied
            outcome = UNKNOWN if exc.outcome_unknown else FAIL
            self._record(batch, target.dc, t_send, outcome, str(exc))
            self._drop_target(target)
            self._transition("unknown" if outcome == UNKNOWN else "refused", target.dc, str(exc), lane)
        except StreamsError as exc:
            self._record(batch, target.dc, t_send, FAIL, str(exc))
            self._drop_target(target)
            self._transition("refused", target.dc, str(exc), lane)
        else:
            if accepted == len(batch):
                self._record(batch, target.dc, t_send, OK, "")
                self._transition("accepting", target.dc, lane=lane)
            else:  # which ones were taken is not known
                self._record(batch, target.dc, t_send, UNKNOWN, f"accepted {accepted} of {len(batch)}")
                self._transition("partial", target.dc, lane=lane)

    def _drop_target(self, target: AppEndpoints) -> None:
        self._current = None
        self._homes.pop(target.dc, None)
        self._directory.forget(target.dc)

    def _record(self, batch: list[dict[str, Any]], dc: str, t_send: float, outcome: str, error: str) -> None:
        t_ack = time.time()
        c = self._contract
        n = len(batch)
        columns: dict[str, Sequence[Any]] = {
            "id": [i[c.id_field] for i in batch], "key": [i[c.key_field] for i in batch],
            "seq": [i[c.seq_field] for i in batch], "dc": [dc] * n, "t_send": [t_send] * n, "t_ack": [t_ack] * n,
            "outcome": [outcome] * n, "error": [error] * n,
        }
        for name in c.state_inputs:
            columns[name] = [_float(i.get(name)) for i in batch]
        self._ledger.extend_columns(columns)

    def _transition(self, state: str, dc: str, error: str = "", lane: str = "") -> None:
        """Journal a change of where (and whether) tuples go; ``lane`` separates the home DCs of ``spread``."""
        label = f"{state}:{dc}"
        if label != self._route_states.get(lane):
            self._route_states[lane] = label
            extra: dict[str, Any] = {"home": lane} if lane else {}
            self._journal.record(f"traffic.{state}", dc=dc, error=error[:300], **extra)


class Consumer(threading.Thread):
    """Retrieves outputs from every data center's sink every ``interval`` seconds, one thread per data
    center, so a data center that does not answer never delays reading the others (a sink's buffer is
    bounded: output not read in time is lost).

    Each sink is read through a :class:`SinkCursor`, so consuming and non-consuming sinks both record each
    delivery once: reads ask for the tuples from the newest seen minus ``overlap`` seconds, and re-reads
    of the same buffered tuple are skipped. The first read of a sink starts at the consumer's start minus
    ``clock_tolerance`` (a reused job's buffer still holds earlier runs' output), on that data center's clock.

    ``clocks``: the data centers' estimated clock offsets (:mod:`support.clocks`). A sink's start time is asked
    on the data center's clock (the tester's instant plus the offset, less the offset's bound), and each output's
    ``processed_at`` is recorded on the tester's timeline (the data center's stamp minus the offset of the data
    center that stamped it), so a skewed data center neither loses its first outputs nor shifts the phases."""

    def __init__(
        self,
        directory: EndpointDirectory,
        exchanges: Mapping[str, Exchange],
        ledger: Ledger[ReceivedRow],
        journal: Journal,
        interval: float,
        max_duration: float,
        gap: float = 1.0,
        overlap: float = 0.5,
        clock_tolerance: float = 0.5,
        contract: DataContract = ORDERS,
        clocks: Clocks | None = None,
    ) -> None:
        super().__init__(name="consumer", daemon=True)
        self._clocks = clocks or Clocks()
        self._offsets = self._clocks.offsets()
        self._contract = contract
        self._directory = directory
        self._exchanges = exchanges
        self._ledger = ledger
        self._journal = journal
        self._interval = interval
        self._max_duration = max_duration
        self._gap = gap
        self._overlap_ms = int(overlap * 1000)
        self._tolerance_ms = int(clock_tolerance * 1000)
        self._since_ms = int(time.time() * 1000) - self._tolerance_ms
        self._cursors: dict[str, tuple[str, SinkCursor]] = {}  # dc -> (sink URL, its cursor)
        self.stop_event = threading.Event()
        self.last_output = 0.0  # monotonic instant of the newest output
        self.streak_start = 0.0  # monotonic instant output started flowing without a gap
        self._emitting: dict[str, float] = {}
        self._streaks: dict[str, float] = {}
        self._lock = threading.Lock()
        self.unparsed: dict[str, int] = {}  # malformed output tuples per data center

    def run(self) -> None:
        started = time.monotonic()
        self._since_ms = int(time.time() * 1000) - self._tolerance_ms
        readers = [threading.Thread(target=self._read_loop, args=(dc, started), name=f"consumer-{dc}", daemon=True)
                   for dc in self._directory.datacenters]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join()
        self._journal.record("traffic.consumer_stopped", received=len(self._ledger))

    def _read_loop(self, dc: str, started: float) -> None:
        failures = 0
        while not self.stop_event.is_set() and time.monotonic() - started < self._max_duration:
            tick = time.monotonic()
            try:
                self._poll(dc)
                failures = 0
            except Exception as exc:  # never die silently: journal it, back off, carry on
                failures += 1
                self.stop_event.wait(thread_error(self._journal, f"consumer-{dc}", exc, failures, self._interval))
                continue
            self.stop_event.wait(max(0.0, self._interval - (time.monotonic() - tick)))

    def _poll(self, dc: str) -> None:
        found = self._directory.lookup(dc, max_age=2.0)
        if found is None:
            return
        cursor = self._cursor(dc, found.sink_url)
        try:
            read = self._exchanges[dc].read(found.sink_url, cursor.start_time_ms())
        except StreamsNotFound:
            self._directory.forget(dc)
            return
        except StreamsError as exc:
            log.debug("retrieve from %s failed: %s", dc, exc)
            self._directory.forget(dc)
            return
        admitted = cursor.admit(read)
        if not admitted:
            return
        t_recv = time.time()
        now = time.monotonic()
        items: list[dict[str, Any]] = []
        unparsed: list[str] = []
        for item in admitted:
            raw = malformed(self._contract, item)
            if raw is None:
                items.append(item)
            else:
                unparsed.append(raw)
        items = self._record_received(dc, items, t_recv, unparsed)
        if unparsed:
            self._record_unparsed(dc, unparsed, t_recv)
        if not items:
            return
        with self._lock:
            if now - self.last_output > self._gap:
                self.streak_start = now
            self.last_output = max(self.last_output, now)
            last_seen = self._emitting.get(dc)
            started = last_seen is None or now - last_seen > self._gap
            if started:
                self._streaks[dc] = t_recv
            self._emitting[dc] = now
        if started:
            self._journal.record("traffic.output_started", dc=dc, tuples=len(items))

    def _record_received(self, dc: str, items: list[dict[str, Any]], t_recv: float, unparsed: list[str]
                         ) -> list[dict[str, Any]]:
        """Add well-formed ``items`` to the received ledger; an item whose columns cannot be made goes to
        ``unparsed`` instead (one at a time, so the others are still recorded). The items recorded."""
        if not items:
            return items
        try:
            columns = received_columns(self._contract, items, dc, t_recv, self._offsets)
        except Exception:
            recorded: list[dict[str, Any]] = []
            for item in items:
                try:
                    single = received_columns(self._contract, [item], dc, t_recv, self._offsets)
                except Exception as exc:
                    log.debug("output tuple from %s cannot be recorded: %s", dc, exc)
                    unparsed.append(unparsed_text(item))
                    continue
                self._ledger.extend_columns(single)
                recorded.append(item)
            return recorded
        self._ledger.extend_columns(columns)
        return items

    def _record_unparsed(self, dc: str, raws: list[str], t_recv: float) -> None:
        """Malformed output tuples: ``unparsed.jsonl`` next to the received ledger, and the journal
        (``reader.unparsed``, one event each for the first :data:`UNPARSED_JOURNALED` of a data center, then one per
        read with their ``count``)."""
        with self._lock:
            before = self.unparsed.get(dc, 0)
            self.unparsed[dc] = before + len(raws)
        path = self._ledger.path
        if path is not None:
            with path.with_name("unparsed.jsonl").open("a", encoding="utf-8") as out:
                for raw in raws:
                    out.write(json.dumps({"dc": dc, "t_recv": t_recv, "raw": raw}) + "\n")
        single = raws[:max(0, UNPARSED_JOURNALED - before)]
        for raw in single:
            self._journal.record("reader.unparsed", dc=dc, raw=raw[:JOURNALED_RAW], count=1)
        rest = raws[len(single):]
        if rest:
            self._journal.record("reader.unparsed", dc=dc, raw=rest[0][:JOURNALED_RAW], count=len(rest))

    def _cursor(self, dc: str, url: str) -> SinkCursor:
        """The cursor of ``dc``'s sink at ``url`` (a new one when the application moved to another job)."""
        known = self._cursors.get(dc)
        if known is None or known[0] != url:
            # the sink stamps arrivals on its data center's clock: ask from the same instant on that clock
            shift_ms = round((self._clocks.offset(dc) - (self._clocks.bound(dc) or 0.0)) * 1000)
            known = (url, SinkCursor(self._since_ms + shift_ms, self._overlap_ms, id_field=self._contract.out_id))
            self._cursors[dc] = known
        return known[1]

    def streaks(self) -> dict[str, float]:
        """Per data center, when its current output streak started (wall clock)."""
        with self._lock:
            return dict(self._streaks)


def received_columns(contract: DataContract, items: Sequence[Mapping[str, Any]], dc: str, t_recv: float,
                     offsets: Mapping[str, float] | None = None) -> dict[str, list[Any]]:
    """The received ledger's columns of output tuples ``items`` retrieved from ``dc``'s sink. Only the id must
    come back: key, seq and the state's input fields are taken from the output when it carries them, and the
    judge fills them in from the sent ledger by id (:func:`~support.data.ledger.join_inputs`). ``offsets``: the
    data centers' clock offsets, taken off each ``processed_at`` by the data center that stamped it (the
    tester's timeline)."""
    c = contract
    n = len(items)
    get_float = _float
    columns: dict[str, list[Any]] = {
        "id": [str(i.get(c.out_id, "")) for i in items],
        "key": [str(i.get(c.key_field, "")) for i in items],
        "seq": [_int(i.get(c.seq_field)) for i in items],
        "dc": [str(i.get(c.out_dc, dc)) for i in items] if c.out_dc else [dc] * n,
        "t_recv": [t_recv] * n,
        "processed_at": [get_float(i.get(c.out_processed_at)) for i in items] if c.out_processed_at else [0.0] * n,
    }
    if offsets:
        columns["processed_at"] = [p - offsets.get(d, 0.0) if p > 0 else p
                                   for p, d in zip(columns["processed_at"], columns["dc"], strict=True)]
    for aggregate in c.state:
        convert = _int if aggregate.kind == "count" else get_float
        columns[aggregate.output] = [convert(i.get(aggregate.output)) for i in items]
    columns["crc_ok"] = [_crc_ok(c, i) for i in items] if c.has_checksum else [True] * n
    for name in c.state_inputs:  # NaN: the output does not carry it (the judge takes it from the sent ledger)
        columns[name] = [get_float(i.get(name), _NAN) for i in items]
    return columns


def _crc_ok(contract: DataContract, item: Mapping[str, Any]) -> bool:
    try:
        return int(item.get(contract.out_checksum or "", -1)) == contract.checksum(item)
    except (TypeError, ValueError):
        return False


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


_NAN = float("nan")


def _float(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


class Traffic:
    """A producer and a consumer over the same data centers, with their ledgers."""

    def __init__(
        self,
        exchanges: Mapping[str, Exchange],
        job_name: str,
        application: AppSettings | Mapping[str, Any] | None,
        source: Source,
        sent: Ledger[SentRow],
        received: Ledger[ReceivedRow],
        journal: Journal,
        *,
        rate: float,
        batch_interval: float,
        consumer_interval: float,
        max_duration: float,
        policy: str = "follow-active",
        preferred: Sequence[str] = (),
        sink_overlap: float = 0.5,
        clock_tolerance: float = 0.5,
        contract: DataContract = ORDERS,
        clocks: Clocks | None = None,
    ) -> None:
        self.sent = sent
        self.contract = contract
        self.received = received
        self._journal = journal
        self.directory = EndpointDirectory(exchanges, job_name, application)
        self.producer = Producer(
            self.directory, exchanges, source, sent, journal, rate, batch_interval, max_duration, policy, preferred,
            contract,
        )
        self.consumer = Consumer(self.directory, exchanges, received, journal, consumer_interval, max_duration,
                                 overlap=sink_overlap, clock_tolerance=clock_tolerance, contract=contract,
                                 clocks=clocks)
        self.rate = rate
        self._drained = False

    def start(self) -> None:
        self._journal.record("traffic.started", rate=self.rate)
        self.consumer.start()
        self.producer.start()

    def stop_producing(self) -> None:
        if self.producer.is_alive():
            self.producer.stop_event.set()
            self.producer.join(timeout=30)

    def wait_steady(self, seconds: float, timeout: float, progress: Callable[[str, float, float], None] | None = None
                    ) -> float:
        """Wait until output has flowed without a gap for ``seconds``; return the streak length."""

        def streak() -> float:
            if not self.consumer.last_output or time.monotonic() - self.consumer.last_output > 1.0:
                return 0.0
            return self.consumer.last_output - self.consumer.streak_start

        return wait_until(
            streak, lambda s: s >= seconds, timeout=timeout, interval=0.2,
            what=f"{self.contract.noun} flowing steadily for {format_seconds(seconds, None)}", progress=progress,
        )

    def drain(self, timeout: float, quiet: float = 2.0) -> None:
        """Stop producing, then collect output until every acknowledged tuple came out or nothing new
        arrived for ``quiet`` seconds (bounded by ``timeout``); then stop the consumer."""
        if self._drained:
            return
        self.stop_producing()
        self._journal.record("traffic.draining", timeout=timeout)

        def outstanding() -> tuple[int, float]:
            return self.missing(), time.monotonic() - self.consumer.last_output

        try:
            wait_until(outstanding, lambda v: v[0] == 0 or v[1] >= quiet, timeout=timeout, interval=0.2,
                       what="output to drain")
        except WaitTimeout as exc:
            log.warning("%s", exc)
        self.stop()
        missing, _ = outstanding()
        self._journal.record("traffic.drained", missing=missing)
        self._drained = True

    def missing(self) -> int:
        """Acknowledged tuples not received (yet)."""
        sent, received = self.sent.table(), self.received.table()
        ok = sent["id"][sent.is_("outcome", OK)]
        return int((~np.isin(ok, received["id"])).sum())

    def first_outputs(self) -> dict[str, float]:
        """Per data center, the instant of its newest output streak start (for inference)."""
        return self.consumer.streaks()

    def stop(self) -> None:
        self.stop_producing()
        self.consumer.stop_event.set()
        if self.consumer.is_alive():
            self.consumer.join(timeout=30)
