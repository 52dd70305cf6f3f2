"""Defect switches (issue 3 item 6): each `lab up --defect NAME` shown changing the lab's behaviour.

The clean counterparts are in test_lab_data.py (every tuple once, in order), test_lab_failover.py (restored
state, takeover, the old active stands down) and test_lab_crossdc.py (DOWN after M+1 ticks); for `telemetry`
in test_lab_telemetry.py. Each switch is shown on `orders` and on `telemetry` (a telemetry probe job beside the
default deployment, or the telemetry deployment of `lab reset --app telemetry`).
Every test brings the lab up with its defects (`lab up` is a no-op when they are already on, and switches them in
place on an up lab: the instances and the stub are restarted, nothing is rebuilt); the module leaves a clean lab
behind.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from labprobes import (
    APP_NAMES,
    app_tuples,
    cancel,
    collect,
    count_after_input_before_replay,
    events,
    hang_until_takeover,
    healthy,
    inject,
    operator_port_metric,
    probe_pair,
    readings,
    sink_items,
    stays,
    stopped,
    submit,
    wait_event,
)
from labwire import LAB_DIR, Lab, run_lab, wait_until

from support.data.generate import tuple_crc

pytestmark = pytest.mark.lab

#: The sink-side switches, shown together (one `lab up` for all of them).
SINK_DEFECTS = "drop-sink,reorder,corrupt-output,malformed-output"
#: What the sink read of ``malformed-output`` holds besides tuples (kept apart by _flow_into).
MALFORMED: list[Any] = []


def _relogin(lab: Lab) -> None:
    """`lab up` after `down` makes a new password and CA: refresh the session's client in place."""
    lab.refresh()


def _with_defects(lab: Lab, defects: str, app: str = "orders") -> Lab:
    """The lab up with `defects`, `app` deployed active/passive (after `lab up`: orders)."""
    # on an up lab at the same scrape interval this restarts only the instances and the stub (no rebuild)
    up = run_lab("up", "--defect", defects)
    assert up.returncode == 0, up.stdout + up.stderr
    _relogin(lab)
    status = run_lab("status", "--json")
    assert f'"{defects.split(",")[0]}"' in status.stdout
    d1 = lab.job("dc1", app)
    if not (d1 and d1["health"] == "healthy" and lab.standby()) or lab.job("dc2", app):
        r = run_lab("reset", "--app", app)
        assert r.returncode == 0, r.stderr
    return lab


@contextlib.contextmanager
def _telemetry_probe(lab: Lab, tag: str, port: int) -> Iterator[dict[str, Any]]:
    """A telemetry job in dc1 beside the default deployment, on its own toolkit ports and snapshot directory."""
    d = LAB_DIR / "dc1" / f"probe-{tag}"
    params = {"crossDCHttpPort": port, "specialMessagePort": port + 8, "dataSnapshotStorageDirectory": str(d)}
    job = submit(lab, "dc1", "telemetry", f"probe_{tag}", params)
    try:
        healthy(lab, job)
        yield job
    finally:
        cancel(lab, job)
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module", autouse=True)
def clean_lab_afterwards(lab: Lab) -> Iterator[None]:
    yield
    up = run_lab("up")  # the switches off again, in place
    if up.returncode != 0:  # a switch that failed half way: rebuild the lab from scratch
        run_lab("down")
        up = run_lab("up")
    assert up.returncode == 0, up.stderr
    _relogin(lab)


def _orders(lab: Lab, dc: str = "dc1") -> dict[str, Any]:
    job = lab.job(dc, "orders")
    assert job is not None
    return job


def _flow(lab: Lab, n: int, keys: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Inject n tuples over `keys` keys into dc1's orders (batches, sink drained in between); (sent, received,
    at sink)."""
    tag = uuid.uuid4().hex[:6]
    sent = [
        {"id": f"{tag}-{i}", "key": f"{tag}-k{i % keys}", "seq": i // keys, "product": "tea", "amount": 1.0,
         "sent_at": time.time()}
        for i in range(n)
    ]
    for item in sent:
        item["crc"] = tuple_crc(item)
    got, at_sink = _flow_into(lab, _orders(lab), "OrdersOut", sent)
    return sent, got, at_sink


def _flow_into(
    lab: Lab, job: dict[str, Any], sink: str, sent: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], int]:
    """Inject `sent` into dc1's `job` (batches of 200, its sink operator `sink` drained in between); (received,
    at sink)."""
    n = len(sent)
    sink_items(lab, "dc1", job)
    before = operator_port_metric(lab, job, sink, "inputports", "nTuplesProcessed")
    got: list[dict[str, Any]] = []
    for start in range(0, n, 200):
        inject(lab, "dc1", job, sent[start : start + 200])
        target = before + min(n, start + 200)
        wait_until(
            lambda target=target: operator_port_metric(lab, job, sink, "inputports", "nTuplesProcessed") >= target,
            10,
            "the batch at the sink",
        )
        got += _tuples(sink_items(lab, "dc1", job))
    wait_until(
        lambda: operator_port_metric(lab, job, sink, "inputports", "nTuplesProcessed") >= before + n,
        10,
        "everything at the sink",
    )
    got += _tuples(sink_items(lab, "dc1", job))
    at_sink = operator_port_metric(lab, job, sink, "inputports", "nTuplesProcessed") - before
    return got, at_sink


def _tuples(items: list[Any]) -> list[dict[str, Any]]:
    """The JSON objects of a sink read; anything else (defect malformed-output) goes to MALFORMED."""
    MALFORMED.extend(i for i in items if not isinstance(i, dict))
    return [i for i in items if isinstance(i, dict)]


def test_drop_sink_silently_loses_one_percent(lab: Lab) -> None:
    _with_defects(lab, SINK_DEFECTS)
    sent, got, at_sink = _flow(lab, 2000, 10)
    assert at_sink == 2000  # every tuple reached the sink ...
    ids = [o["id"] for o in got]
    assert len(ids) == len(set(ids)) == 1980  # ... and 1 % vanished there, without a warning or a drop count
    assert set(ids) < {s["id"] for s in sent}
    _only_overflow_drops_counted(lab)


def test_reorder_puts_output_of_a_key_out_of_order(lab: Lab) -> None:
    _with_defects(lab, SINK_DEFECTS)
    _sent, got, _ = _flow(lab, 2000, 10)
    last: dict[str, int] = {}
    inversions = 0
    for o in got:
        if o["seq"] < last.get(o["key"], -1):
            inversions += 1
        last[o["key"]] = max(o["seq"], last.get(o["key"], -1))
    assert inversions >= 10, inversions  # every 50th output comes after the next one of its key


def test_corrupt_and_malformed_output_alter_one_percent_of_the_output(lab: Lab) -> None:
    """corrupt-output alters 1 % of the tuples; malformed-output adds, after 1 % of them, an output that is not a
    JSON object (a string), while every real tuple still comes out (the same flow shows both)."""
    _with_defects(lab, SINK_DEFECTS)
    MALFORMED.clear()
    sent, got, at_sink = _flow(lab, 2000, 10)
    assert at_sink == 2000
    assert len(MALFORMED) == 20 and all(isinstance(m, str) and "not json" in m for m in MALFORMED), MALFORMED[:3]
    assert len(got) == 1980  # every real tuple (drop-sink takes its 1 %; clean: 2000 and no extras)
    by_id = {s["id"]: s for s in sent}
    altered = [o for o in got if o["product"] != by_id[o["id"]]["product"]]
    assert len(altered) == 20, len(altered)  # 1 % (clean: none); drop-sink takes other tuples than these
    assert all(o["product"] == "tea~" and o["crc"] == by_id[o["id"]]["crc"] for o in altered)
    assert all(o["crc"] != tuple_crc(o) for o in altered)  # the checksum no longer matches the payload
    assert all(o["crc"] == tuple_crc(o) for o in got if o not in altered)
    _only_overflow_drops_counted(lab)


def test_telemetry_drop_sink_reorder_and_corrupt_output(lab: Lab) -> None:
    """The sink-side switches on telemetry (one flow of 2000 readings over 10 devices; malformed-output: 20 extra
    outputs that are not objects): 1 % of the readings
    vanish at Alerts, every 50th output of Peak comes after the next one of its device, and 1 % of the outputs
    carry a `peakReading` 1.0 above the highest reading so far (telemetry has no checksum: only the state
    check sees it)."""
    _with_defects(lab, SINK_DEFECTS)
    tag = uuid.uuid4().hex[:6]
    sent = [dict(r, trackingId=f"{tag}-{i}", readingSeq=i // 10 + 1)
            for i in range(2000) for r in readings(f"{tag}-d{i % 10}", 1, values=[float((i * 37) % 161 - 40)])]
    MALFORMED.clear()
    with _telemetry_probe(lab, "tdefects", 26311) as job:
        got, at_sink = _flow_into(lab, job, "Alerts", sent)
    assert at_sink == 2000
    assert len(MALFORMED) == 20  # malformed-output (clean: none)
    ids = [o["trackingId"] for o in got]
    assert len(ids) == len(set(ids)) == 1980  # drop-sink (clean: 2000)
    last: dict[str, int] = {}
    inversions = 0
    for o in got:
        inversions += o["readingsSoFar"] < last.get(o["deviceId"], 0)
        last[o["deviceId"]] = max(o["readingsSoFar"], last.get(o["deviceId"], 0))
    assert inversions >= 10, inversions  # reorder (clean: 0)
    by_device: dict[str, list[float]] = {}
    for s in sent:
        by_device.setdefault(s["deviceId"], []).append(s["reading"])
    expected = {o["trackingId"]: max(by_device[o["deviceId"]][: o["readingsSoFar"]]) for o in got}
    altered = [o for o in got if o["peakReading"] != expected[o["trackingId"]]]
    assert len(altered) == 20, len(altered)  # corrupt-output (clean: none)
    assert all(o["peakReading"] == expected[o["trackingId"]] + 1.0 for o in altered)


def _only_overflow_drops_counted(lab: Lab) -> None:
    """nTuplesDropped counts only the buffer's overflow (reads do not consume by default, so a full buffer
    pushes out its oldest tuples): the tuples that took a buffer position beyond its 1000, nothing for the
    tuples the defects made vanish (they never took a position)."""
    job = _orders(lab)
    marks = lab.get(lab.endpoints("dc1", job["id"])["sink"]).json()["buffered"]
    entered = marks[-1]["position"] + 1 if marks else 0
    dropped = operator_port_metric(lab, job, "OrdersOut", "inputports", "nTuplesDropped")
    assert dropped == max(0, entered - 1000), (dropped, entered)


Answers = list[tuple[dict[str, Any], int | Exception, str]]


def _posts(lab: Lab, n: int, job: dict[str, Any] | None = None, app: str = "orders"
           ) -> tuple[Answers, list[dict[str, Any]]]:
    """n injection POSTs of 2 tuples each into dc1's `job` of `app` (default: orders): [(batch, HTTP status or
    the exception, body)], and every output tuple (fails unless all 2n come out within 10 s)."""
    job = job or _orders(lab)
    sink_items(lab, "dc1", job)
    source = lab.endpoints("dc1", job["id"])["source"]
    tag = uuid.uuid4().hex[:6]
    id_field = APP_NAMES[app]["id"]
    answers: Answers = []
    for i in range(n):
        batch = {"items": [dict(t, **{id_field: f"{tag}-{i}-{j}"})
                           for j, t in enumerate(app_tuples(app, f"{tag}-k", 2, start=2 * i))]}
        try:
            r = lab.post(source, json=batch)
        except requests.exceptions.RequestException as exc:
            answers.append((batch, exc, ""))
        else:
            answers.append((batch, r.status_code, r.text))
    return answers, collect(lab, "dc1", job, 2 * n)


def test_refuse_but_deliver_answers_500_for_tuples_it_takes(lab: Lab) -> None:
    _with_defects(lab, "refuse-but-deliver,lost-ack")
    answers, got = _posts(lab, 100)
    refused = [(i, batch, body) for i, (batch, status, body) in enumerate(answers) if status == 500]
    assert len(refused) == 2 and refused[1][0] - refused[0][0] == 50, [i for i, _, _ in refused]
    assert all(json.loads(body)["id"] == "CDISW5000E" for _, _, body in refused)
    out = {o["id"] for o in got}
    for _, batch, _ in refused:
        assert {t["id"] for t in batch["items"]} <= out  # refused, yet delivered (clean: every answer 200)
    assert len(out) == len(got) == 200  # every tuple of every POST came out, once


def test_telemetry_refuse_but_deliver_and_lost_ack(lab: Lab) -> None:
    _with_defects(lab, "refuse-but-deliver,lost-ack")
    with _telemetry_probe(lab, "tposts", 26321) as job:
        answers, got = _posts(lab, 100, job, "telemetry")
    refused = [i for i, (_, status, _) in enumerate(answers) if status == 500]
    unanswered = [i for i, (_, status, _) in enumerate(answers) if isinstance(status, Exception)]
    assert len(refused) == 2 and refused[1] - refused[0] == 50, refused  # clean: every answer 200
    assert len(unanswered) == 2 and unanswered[1] - unanswered[0] == 50, unanswered
    out = {o["trackingId"] for o in got}
    assert len(out) == len(got) == 200  # every reading of every POST came out once, answered or not


def test_lost_ack_closes_the_connection_without_an_answer(lab: Lab) -> None:
    _with_defects(lab, "refuse-but-deliver,lost-ack")
    answers, got = _posts(lab, 100)
    dropped = [(i, batch, status) for i, (batch, status, _) in enumerate(answers) if isinstance(status, Exception)]
    assert len(dropped) == 2 and dropped[1][0] - dropped[0][0] == 50, [(i, repr(e)) for i, _, e in dropped]
    for _, _, exc in dropped:  # no HTTP answer at all: the server closed the connection after the request
        assert isinstance(exc, requests.exceptions.ConnectionError), repr(exc)
        assert not isinstance(exc, requests.exceptions.SSLError | requests.exceptions.Timeout), repr(exc)
        assert "RemoteDisconnected" in repr(exc) or "aborted" in repr(exc), repr(exc)
    out = {o["id"] for o in got}
    for _, batch, _ in dropped:
        assert {t["id"] for t in batch["items"]} <= out  # unanswered, yet delivered (clean: every answer 200)
    assert len(out) == len(got) == 200


@pytest.mark.parametrize(("app", "port"), [("orders", 26201), ("telemetry", 26211)])
def test_slow_detection_needs_ten_times_the_misses(lab: Lab, app: str, port: int) -> None:
    _with_defects(lab, "slow-detection")
    fast = {"heartbeatExchangeInterval": 0.2, "consecutiveHeartbeatMissesAllowed": 2}
    with probe_pair(lab, f"slow-{app}", port, params=fast, app=app) as (a, b):
        with stopped(b["pid"]):
            t_stop = time.time()
            down = wait_event(lab, "remote_down", a, since=t_stop, timeout=10)
        latency = down["t"] - t_stop
        assert down["misses"] == 21  # 10 * M + 1 silent ticks instead of M + 1 = 3
        assert latency >= 10 * 2 * 0.2 - 0.25, latency  # clean: at most (M + 1) * H = 0.6 s
        print(f"slow-detection: DOWN after {latency:.2f} s (clean bound 0.6 s)")


def _failover(lab: Lab, key: str, n: int, app: str = "orders") -> tuple[dict[str, Any], list[dict[str, Any]], float]:
    """n tuples through dc1, a replicated snapshot after them, cancel dc1's `app`; dc2's job once running."""
    job1 = lab.job("dc1", app)
    assert job1 is not None
    sink_items(lab, "dc1", job1)
    inject(lab, "dc1", job1, app_tuples(app, key, n))
    out1 = collect(lab, "dc1", job1, n)
    processed = time.time()
    wait_until(
        lambda: [e for e in events(lab, "snapshot_sent", job1, since=processed) if e["taken_at"] > processed],
        10,
        "a snapshot taken after the tuples",
    )
    t_cancel = time.time()
    assert lab.delete(job1["self"]).status_code == 204
    job2 = wait_until(lambda: (j := lab.job("dc2", app)) and j["health"] == "healthy" and j, 15, f"dc2 {app}")
    wait_until(lambda: events(lab, "takeover", job2, since=t_cancel), 10, "the takeover")
    return job2, out1, t_cancel


@pytest.mark.parametrize("app", ["orders", "telemetry"])
def test_duplicate_replay_emits_already_emitted_output_again(lab: Lab, app: str) -> None:
    _with_defects(lab, "duplicate-replay", app)
    names = APP_NAMES[app]
    key = f"dup-{uuid.uuid4().hex[:6]}"
    job2, out1, _ = _failover(lab, key, 5, app)
    replayed = collect(lab, "dc2", job2, 5)
    again = {o[names["id"]] for o in replayed if o[names["key"]] == key}
    assert {o[names["id"]] for o in out1} <= again  # the same ids come out a second time, now from dc2's sink
    if app == "orders":
        assert all(o["dc"] == "dc1" for o in out1) and all(o["dc"] == "dc2" for o in replayed)
    else:  # telemetry's output is only deviceId, trackingId, readingsSoFar, peakReading: the same tuples again
        assert [o for o in replayed if o[names["key"]] == key] == out1


@pytest.mark.parametrize("app", ["orders", "telemetry"])
def test_lose_snapshot_restores_an_empty_state(lab: Lab, app: str) -> None:
    _with_defects(lab, "lose-snapshot", app)
    since = time.time()  # the truth log also holds what happened before the switch
    key = f"lost-{uuid.uuid4().hex[:6]}"
    job2, _out1, t_cancel = _failover(lab, key, 5, app)
    # the receiver answered 204 but kept nothing
    assert not events(lab, "snapshot_stored", dc="dc2", since=since)
    assert not events(lab, "snapshot_restored", job2, since=t_cancel)
    inject(lab, "dc2", job2, app_tuples(app, key, 1, start=5))
    out = collect(lab, "dc2", job2, 1)
    assert out[0][APP_NAMES[app]["count"]] == 1  # clean: 6 (continues from dc1's replicated state)


@pytest.mark.parametrize("app", ["orders", "telemetry"])
def test_no_takeover_leaves_the_standby_idle(lab: Lab, app: str) -> None:
    _with_defects(lab, "no-takeover", app)
    job1 = lab.job("dc1", app)
    assert job1 is not None
    t0 = time.time()
    assert lab.delete(job1["self"]).status_code == 204
    stub = lab.standby()
    assert stub is not None
    wait_event(lab, "remote_down", stub, since=t0, timeout=10)
    stays(lambda: lab.job("dc2", app) is None and not events(lab, "failover_launched", since=t0), 2.0,
          "no takeover")
    assert lab.standby() is not None and events(lab, "failover_skipped", stub, since=t0)


@pytest.mark.parametrize("app", ["orders", "telemetry"])
def test_split_brain_old_active_keeps_emitting_after_the_heal(lab: Lab, app: str) -> None:
    _with_defects(lab, "split-brain")
    r = run_lab("reset", "--fencing", "--app", app)  # the defect breaks the application's fencing: only there it shows
    assert r.returncode == 0, r.stderr
    t = hang_until_takeover(lab, app)
    assert t["held"], "the tuples injected during the hang are emitted by dc1 after it continues"
    assert t["dc1_after_heal"] and t["dc2_after_heal"]  # read from each DC's own sink
    if app == "orders":
        assert all(o["dc"] == "dc1" for o in t["dc1_after_heal"])
        assert all(o["dc"] == "dc2" for o in t["dc2_after_heal"])
    assert not events(lab, "stood_down", dc="dc1", since=t["t_cont"])  # clean (with fencing): dc1 stands down


@pytest.mark.parametrize(("app", "port"), [("orders", 26081), ("telemetry", 26301)])
def test_early_input_processes_input_before_the_restore(lab: Lab, app: str, port: int) -> None:
    _with_defects(lab, "early-input")
    # clean: 6 (test_lab_crossdc)
    assert count_after_input_before_replay(lab, f"early-{app}", port, port + 8, app) == 1
