"""Cross-DC toolkit fidelity (issue 3 item 4), observed over the wire and in the ground truth.

Most tests use probe pairs on their own ports and snapshot directories (see labprobes.probe_pair) with a
fast heartbeat (H 0.2 s, M 2), so the default deployment keeps running untouched. Their toolkit settings go
into a config file of their own (labprobes.submit): the toolkit takes no other submission parameters. A
sub-second H truncates to 0 in the snapshot cadence, so these probes replicate on every tick.
"""

from __future__ import annotations

import shutil
import time
import uuid
from typing import Any

import pytest
from labprobes import (
    blocked,
    cancel,
    collect,
    count_after_input_before_replay,
    events,
    foreign_snapshot,
    healthy,
    inject,
    operator_port_metric,
    pe,
    probe_pair,
    send_special,
    snapshot_files,
    standalone,
    stays,
    stopped,
    stub_trace,
    submit,
    trace,
    tuples,
    wait_event,
)
from labwire import LAB_DIR, Lab, run_lab, wait_until

from lab import appspec, crossdc

pytestmark = pytest.mark.lab

FAST = {"heartbeatExchangeInterval": 0.2, "consecutiveHeartbeatMissesAllowed": 2, "dataSnapshotExchangeInterval": 1.0}
WD = "OrdersXDC.RemoteDataCenterHeartbeatWatchdog"
SENDER1 = "OrdersXDC.CrossDataCenterSender1"
MERGER = "OrdersXDC.RemoteDCDataMerger"



def _hb_submitted(lab: Lab, job: dict[str, Any]) -> int:
    return operator_port_metric(lab, job, SENDER1, "inputports", "nTuplesProcessed")


def _no_remote_up(lab: Lab, jobs: list[dict[str, Any]], since: float) -> bool:
    return not any(events(lab, "remote_up", j, since=since) for j in jobs)


def test_every_configuration_key_reaches_the_composite(lab: Lab) -> None:
    keys = {
        **FAST,
        "crossDCInitDelay": 0.3,
        "sendToAllRemoteMachines": "false",
        "alwaysLogHttpErrors": "true",
        "httpConnectionTimeout": 2.0,
        "httpReadTimeout": 3.0,
        "retainOlderDataSnapshotsAtStartup": "false",
        "sendDataSnapshotsToOriginDCAtStartup": "false",
    }
    own = {"remoteDataCenterApplicationMachineNames": "198.18.2.10", "localDataCenterName": "dc1"}
    keys_dc1 = {**keys, **own}
    with probe_pair(lab, "cfg", 26011, params=keys, dc1_params=own) as (a, _b):
        text = trace(lab, pe(lab, a, 1))
        line = next(li for li in text.splitlines() if "_XXXXX_ configuration:" in li)
        for key, value in {**keys_dc1, "crossDCOperationMode": 1, "crossDCHttpPort": 26011}.items():
            assert f"{key}={value}(file)" in line, key
        assert f"dataSnapshotStorageDirectory={LAB_DIR}/dc1/probe-cfg(file)" in line
        given = {p["name"]: p["value"] for p in a["submitParameters"]}
        assert "heartbeatExchangeInterval" not in given  # not a submission parameter of the toolkit
        assert given["configFileName"] == str(LAB_DIR / "dc1" / "probe-configs" / "probe_cfg_dc1.cfg")
        assert f"configFileName={given['configFileName']}" in line


def test_down_after_m_plus_1_silent_ticks_silence_then_up_on_a_heartbeat(lab: Lab) -> None:
    with probe_pair(lab, "down", 26021, params=FAST) as (a, b):
        with stopped(b["pid"]):
            t_stop = time.time()
            down = wait_event(lab, "remote_down", a, since=t_stop, timeout=5)
            latency = down["t"] - t_stop
            # the last heartbeat came at most one interval H before the stop: DOWN within [M-1, M+1] * H
            assert 0.15 <= latency <= 0.6 + 0.25, latency
            assert down["misses"] == 3 and down["orderly"] is False
            gone = ("Received a notification about the remote data center going down due to failure or planned "
                    "maintenance.")
            wait_until(lambda: gone in trace(lab, pe(lab, a, 1)), 3, "the application's trace line on DOWN")
            missed = [e["consecutive"] for e in events(lab, "heartbeat_missed", a, since=t_stop)]
            assert missed == [1]
            # after DOWN this side stops heartbeating (no heartbeat submitted to Sender1 any more)
            sent = _hb_submitted(lab, a)
            stays(lambda: _hb_submitted(lab, a) == sent, 1.0, "dc1 silent after DOWN")
            assert operator_port_metric(lab, a, WD, "outputports", "nTuplesSubmitted") == 2  # UP, DOWN
            t_cont = time.time()
        # the stub never saw dc1 DOWN (it was stopped): continued, it heartbeats again and dc1 hears it (UP)
        up = wait_event(lab, "remote_up", a, since=t_cont, timeout=5)
        assert up["heartbeat_cnt"] > 1
        assert operator_port_metric(lab, a, WD, "outputports", "nTuplesSubmitted") == 3  # UP, DOWN, UP
        print(f"SIGSTOP of the remote -> DOWN after {latency:.2f} s (H 0.2, M 2)")


def test_one_way_partition_ends_with_both_sides_down(lab: Lab) -> None:
    with probe_pair(lab, "oneway", 26031, params=FAST) as (a, b):
        t0 = time.time()
        with blocked("dc1", "dc2", "26031:26032"):
            wait_event(lab, "remote_down", b, since=t0, timeout=5)  # dc2 no longer hears dc1 ...
            wait_event(lab, "remote_down", a, since=t0, timeout=5)  # ... stops heartbeating, so dc1 hears nothing
        t_heal = time.time()
        # healed, but nobody heartbeats after DOWN: both stay DOWN until a job restarts
        stays(lambda: _no_remote_up(lab, [a, b], t_heal), 1.5, "both sides DOWN after the heal")


def test_snapshot_file_named_origin_dash_snapshot_origin(lab: Lab) -> None:
    with probe_pair(lab, "snap", 26041, params=FAST) as (a, b):
        t0 = time.time()
        inject(lab, "dc1", a, tuples("ks", 3, amount=2.5))
        collect(lab, "dc1", a, 3)
        sent = wait_until(
            lambda: [e for e in events(lab, "snapshot_sent", a, since=t0) if e["total_count"] >= 3],
            5,
            "a snapshot covering the 3 tuples",
        )[0]
        stored = wait_until(
            lambda: [e for e in events(lab, "snapshot_stored", b, since=t0) if e["digest"] == sent["digest"]],
            5,
            "the snapshot stored in dc2",
        )[0]
        d = LAB_DIR / "dc2" / "probe-snap"
        assert stored["file"] == str(d / "dc1-Aggregator.snapshot")
        assert snapshot_files(d) == ["dc1-Aggregator.snapshot"]
        msg = crossdc.decode((d / "dc1-Aggregator.snapshot").read_bytes())  # the whole payload as received
        assert (msg.type, msg.origin, msg.snapshot_origin) == (2, "dc1", "Aggregator")
        assert appspec.decode_state(msg.blob)["state"]["ks"][0] >= 3
        assert "Successfully replicated and persisted the data snapshot" in stub_trace(b)


def test_orderly_shutdown_drops_snapshots_reports_down_and_the_stub_launches_anyway(lab: Lab) -> None:
    # the status stream is a bare boolean: a stub built like the passive sample launches on this DOWN too
    marker = LAB_DIR / "dc2" / "probe-os-launched"
    marker.unlink(missing_ok=True)
    script = f"echo launched by $XDC_STUB_PID parent $PPID >> {marker}"
    with probe_pair(lab, "os", 26051, params=FAST, script=script) as (a, b):
        d = LAB_DIR / "dc2" / "probe-os"
        wait_until(lambda: snapshot_files(d), 5, "a replicated snapshot in dc2")
        t0 = time.time()
        send_special("dc1", 26051 + 8, "OrderlyShutdown")
        sent_event = wait_event(lab, "orderly_shutdown_sent", a, since=t0)
        received = wait_event(lab, "orderly_shutdown_received", b, since=t0)
        assert received["origin"] == "dc1" and received["dropped"] == ["dc1-Aggregator"]
        assert snapshot_files(d) == []
        down = wait_event(lab, "remote_down", b, since=t0, timeout=5)
        assert down["orderly"] is True  # the lab knows; the stub's status tuple does not say
        launched = wait_event(lab, "failover_launched", b, since=t0, timeout=5)
        # (M+1) silent ticks after the last heartbeat: at most (M+1)*H after the shutdown message
        assert 0 <= launched["t"] - sent_event["t"] <= 3 * 0.2 + 0.3, launched["t"] - sent_event["t"]
        wait_until(lambda: marker.exists(), 5, "the failover script's output")
        assert marker.read_text().split() == ["launched", "by", str(b["pid"]), "parent", str(b["pid"])]
        sent = _hb_submitted(lab, a)
        stays(lambda: _hb_submitted(lab, a) == sent, 1.0, "the shut-down side sends no heartbeats any more")
        assert "we sent an orderly shutdown message" in trace(lab, pe(lab, a, 1)).lower()
        text = stub_trace(b)
        assert "Received a remote DC orderly shutdown message" in text
        assert ("ERROR [Application_Logic] Received a notification about the remote data center going down due "
                "to failure or planned maintenance.") in text
    marker.unlink(missing_ok=True)


def test_old_snapshots_deleted_at_startup_unless_retained_then_send_me_data(lab: Lab) -> None:
    d = LAB_DIR / "dc1" / "probe-retain"
    base = {**FAST, "crossDCHttpPort": 26061, "specialMessagePort": 26069, "crossDCInitDelay": 0.2,
            "dataSnapshotStorageDirectory": str(d), "remoteDataCenterApplicationMachineNames": "127.0.0.1"}
    try:
        foreign_snapshot(d, {"kr": [5, 7.5]})
        job = submit(lab, "dc1", "orders", "probe_noretain", base)
        try:
            wait_until(lambda: not snapshot_files(d), 5, "the old snapshot deleted at the first tick")
        finally:
            cancel(lab, job)
        foreign_snapshot(d, {"kr": [5, 7.5]})
        job = submit(lab, "dc1", "orders", "probe_retain", {**base, "retainOlderDataSnapshotsAtStartup": "true"})
        try:
            healthy(lab, job)
            t0 = time.time()
            stays(lambda: snapshot_files(d) == ["dcX-Aggregator.snapshot"], 0.6, "the retained snapshot")
            send_special("dc1", 26069, "SendMeDataFromSnapshotFiles")
            restored = wait_event(lab, "snapshot_restored", job, since=t0)
            assert restored["reason"] == "SendMeDataFromSnapshotFiles" and restored["origin"] == "dcX"
            assert wait_event(lab, "takeover", job, since=t0)["snapshots"] == 1
            assert snapshot_files(d) == []
            inject(lab, "dc1", job, tuples("kr", 1, start=5))
            out = collect(lab, "dc1", job, 1)
            assert out[0]["count_for_key"] == 6 and out[0]["sum_for_key"] == 8.5
            assert operator_port_metric(lab, job, MERGER, "outputports", "nTuplesSubmitted") == 1
        finally:
            cancel(lab, job)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_a_failover_job_holds_input_that_arrives_before_the_replay(lab: Lab) -> None:
    # the stub submits the job, then sends SendMeDataFromSnapshotFiles: input in between waits for the state
    assert count_after_input_before_replay(lab, "early", 26081, 26089) == 6


def test_snapshots_returned_to_their_origin_after_a_dual_outage(lab: Lab) -> None:
    d1, d2 = LAB_DIR / "dc1" / "probe-dual", LAB_DIR / "dc2" / "probe-dual"
    # whole seconds: with FAST's sub-second H (a snapshot on every tick) the restarted dc1 may replicate its
    # empty state over the stored copy before the stub's first contact returns it
    whole = {"heartbeatExchangeInterval": 1.0, "consecutiveHeartbeatMissesAllowed": 2,
             "dataSnapshotExchangeInterval": 2.0}
    common = {**whole, "crossDCHttpPort": 26071, "crossDCInitDelay": 0.2}
    p1 = {**common, "specialMessagePort": 26079, "dataSnapshotStorageDirectory": str(d1)}
    p2 = {**common, "dataSnapshotStorageDirectory": str(d2)}
    try:
        with standalone(lab, "dc2", "probe_dual_dc2", p2) as b:
            a = submit(lab, "dc1", "orders", "probe_dual_dc1", p1)
            try:
                wait_event(lab, "remote_up", a)
                t0 = time.time()
                inject(lab, "dc1", a, tuples("kd", 3))
                collect(lab, "dc1", a, 3)
                sent = wait_until(
                    lambda: [e for e in events(lab, "snapshot_sent", a, since=t0) if e["total_count"] >= 3], 5,
                    "snapshot",
                )[-1]
                wait_until(lambda: [e for e in events(lab, "snapshot_stored", b, since=t0)
                                    if e["digest"] == sent["digest"]], 5, "stored in dc2")
            except BaseException:
                cancel(lab, a)
                raise
        # both DCs down: the stub first (so the active's DOWN replays nothing there), then the active
        cancel(lab, a)
        assert snapshot_files(d2) == ["dc1-Aggregator.snapshot"]
        t1 = time.time()
        with standalone(lab, "dc2", "probe_dual_dc2b", {**p2, "sendDataSnapshotsToOriginDCAtStartup": "true"}) as b:
            a = submit(lab, "dc1", "orders", "probe_dual_dc1", p1)
            try:
                returned = wait_event(lab, "snapshot_returned", b, since=t1)
                restored = wait_event(lab, "snapshot_restored", a, since=t1)
                assert restored["reason"] == "returned_to_origin" and restored["origin"] == "dc1"
                assert restored["digest"] == returned["digest"] and restored["total_count"] >= 3
                assert snapshot_files(d2) == []
                inject(lab, "dc1", a, tuples("kd", 1, start=3))
                assert [o["count_for_key"] for o in collect(lab, "dc1", a, 1)] == [restored["total_count"] + 1]
            finally:
                cancel(lab, a)
    finally:
        shutil.rmtree(d1, ignore_errors=True)
        shutil.rmtree(d2, ignore_errors=True)


def _exceptions_to(lab: Lab, pe_doc: dict[str, Any], url_prefix: str) -> int:
    return sum(
        1
        for line in trace(lab, pe_doc).splitlines()
        if "[HttpBlobSender] Exception while communicating with " + url_prefix in line
    )


def test_several_remote_machines_first_answering_host_is_sticky(lab: Lab) -> None:
    hosts = {"remoteDataCenterApplicationMachineNames": "127.0.0.1,198.18.2.10"}
    with probe_pair(lab, "sticky", 26101, params=FAST, dc1_params=hosts) as (a, _b):
        agg = pe(lab, a, 1)
        targets = [e for e in events(lab, "sender_target", a) if e["component"] == SENDER1]
        hb_url = "http://198.18.2.10:26101/crossdcrx/CrossDataCenterReceiverForHB/ports/output/0/inject"
        assert [e["url"] for e in targets] == [hb_url]
        n = _exceptions_to(lab, agg, "http://127.0.0.1:26101")
        assert n == 1  # tried once, then the answering host stays the target
        stays(lambda: _exceptions_to(lab, agg, "http://127.0.0.1:26101") == 1, 1.0, "127.0.0.1 not tried again")
    to_all = {**hosts, "sendToAllRemoteMachines": "true"}
    with probe_pair(lab, "toall", 26111, params=FAST, dc1_params=to_all) as (a, _b):
        agg = pe(lab, a, 1)
        n = _exceptions_to(lab, agg, "http://127.0.0.1:26111")
        wait_until(
            lambda: _exceptions_to(lab, agg, "http://127.0.0.1:26111") >= n + 3, 3, "every heartbeat to every host"
        )


def test_non_2xx_heartbeat_replies_are_counted_by_sender1(lab: Lab) -> None:
    # the stub's crossDCHttpPort is one lower: dc1's heartbeats reach the stub's *snapshot* receiver (404)
    stub_params = {**FAST, "crossDCHttpPort": 26120, "crossDCInitDelay": 0.2}
    with standalone(lab, "dc2", "probe_404_dc2", stub_params):
        a = submit(lab, "dc1", "orders", "probe_404_dc1",
                   {**FAST, "crossDCHttpPort": 26121, "specialMessagePort": 26129, "crossDCInitDelay": 0.2,
                    "alwaysLogHttpErrors": "true"})
        try:
            healthy(lab, a)
            wait_until(lambda: operator_port_metric(lab, a, SENDER1, "outputports", "nTuplesSubmitted") >= 3, 5,
                       "HttpResponseType tuples for 404 replies")
            text = trace(lab, pe(lab, a, 1))
            assert "ERROR [HttpBlobSender] HTTP response code=404" in text
            assert operator_port_metric(lab, a, WD, "outputports", "nTuplesSubmitted") == 0  # never UP
        finally:
            cancel(lab, a)


@pytest.fixture()
def active_active(lab: Lab) -> Any:
    r = run_lab("reset", "--mode", "active-active")
    assert r.returncode == 0, r.stderr
    try:
        yield lab
    finally:
        r = run_lab("reset")
        assert r.returncode == 0, r.stderr


def test_active_active_survivor_merges_the_failed_dcs_state(active_active: Lab) -> None:
    lab = active_active
    j1, j2 = lab.job("dc1", "orders"), lab.job("dc2", "orders")
    assert j1 is not None and j2 is not None
    cfg2 = {p["name"]: p["value"] for p in j2["submitParameters"]}["configFileName"]
    assert cfg2 == str(LAB_DIR / "dc2" / "crossdc" / "orders.cfg")
    assert "crossDCOperationMode=1" in (LAB_DIR / "dc2" / "crossdc" / "orders.cfg").read_text().splitlines()
    ka, kb = f"a-{uuid.uuid4().hex[:6]}", f"b-{uuid.uuid4().hex[:6]}"
    t0 = time.time()
    inject(lab, "dc1", j1, tuples(ka, 3))
    inject(lab, "dc2", j2, tuples(kb, 4, amount=2.0))
    assert collect(lab, "dc1", j1, 3)[-1]["count_for_key"] == 3
    assert collect(lab, "dc2", j2, 4)[-1]["count_for_key"] == 4
    # both replicate: each DC stores the other's snapshot
    for src, dst in ((j1, j2), (j2, j1)):
        sent = wait_until(
            lambda src=src: [e for e in events(lab, "snapshot_sent", src, since=t0) if e["total_count"] >= 3],
            5, "a snapshot after processing",
        )[-1]
        wait_until(
            lambda dst=dst, sent=sent: [e for e in events(lab, "snapshot_stored", dst, since=t0)
                                        if e["digest"] == sent["digest"]],
            5, "the snapshot stored on the other side",
        )
    t_cancel = time.time()
    assert lab.delete(j2["self"]).status_code == 204
    down = wait_event(lab, "remote_down", j1, since=t_cancel, timeout=5)
    takeover = wait_event(lab, "takeover", j1, since=t_cancel)
    assert takeover["how"] == "remote_down" and takeover["snapshots"] == 1
    restored = wait_event(lab, "snapshot_restored", j1, since=t_cancel)
    assert restored["origin"] == "dc2" and restored["t"] >= down["t"]
    assert operator_port_metric(lab, j1, MERGER, "outputports", "nTuplesSubmitted") == 1
    # keys of the failed DC continue from its replicated state in the survivor; the survivor's own keys too
    inject(lab, "dc1", j1, [*tuples(kb, 1, start=4, amount=2.0), *tuples(ka, 1, start=3)])
    out = {o["key"]: o for o in collect(lab, "dc1", j1, 2)}
    assert out[kb]["count_for_key"] == 5 and out[kb]["sum_for_key"] == 10.0 and out[kb]["dc"] == "dc1"
    assert out[ka]["count_for_key"] == 4


def test_init_delay_and_read_timeout(lab: Lab) -> None:
    t0 = time.time()
    dc1 = {"crossDCInitDelay": 1.5, "httpReadTimeout": 0.3}
    with probe_pair(lab, "timing", 26131, params=FAST, dc1_params=dc1, dc2_params={"crossDCInitDelay": 3600},
                    wait_up=False) as (a, b):
        started = next(e for e in events(lab, "pe_started", a, since=t0) if e["index"] == 1)
        counting = wait_event(lab, "init_delay_started", a, since=t0)
        up = wait_event(lab, "remote_up", b, since=t0)
        # the stub never ticks (init delay 3600): it hears dc1's first heartbeat crossDCInitDelay after dc1's
        # operator started counting, which is while its PE starts (before the PE answers its first ping)
        assert counting["delay_s"] == 1.5 and counting["t"] <= started["t"] + 0.1
        assert 1.5 <= up["t"] - counting["t"] <= 1.5 + 0.5, up["t"] - counting["t"]
        agg = pe(lab, a, 1)
        url = "http://198.18.2.10:26131/crossdcrx/CrossDataCenterReceiverForHB"
        with stopped(b["pid"]):
            # the stopped stub's kernel accepts the connection, nobody answers: httpReadTimeout ends each POST
            wait_until(lambda: _exceptions_to(lab, agg, url) >= 2, 3, "read timeouts logged by the sender")
        assert "timed out" in next(li for li in trace(lab, agg).splitlines() if f"communicating with {url}" in li)


def test_sub_second_snapshot_interval_kills_the_process_once_the_remote_is_up(lab: Lab) -> None:
    # (cnt * (uint64)H) % (uint64)D with D = 0.5 s: a modulo by zero, evaluated once the remote is UP
    t0 = time.time()
    with probe_pair(lab, "modzero", 26141, params={**FAST, "dataSnapshotExchangeInterval": 0.5}, wait_up=False) as (
        a,
        _b,
    ):
        died = wait_event(lab, "modulo_by_zero", a, since=t0, timeout=10)
        assert died["snapshot_interval"] == 0.5
        assert "integer modulo by zero" in trace(lab, pe(lab, a, 1))


def test_settings_come_from_the_config_file_then_the_application_configuration_then_the_defaults(lab: Lab) -> None:
    """The application configuration CrossDCFailover (keys `orders::Orders_<key>`) fills what the config file
    does not set; the file wins where both do; the composite's defaults fill the rest; submission parameters
    named like toolkit keys are not read."""
    coll = f"{lab.rest('dc1')}/applicationconfigurations"
    props = {"orders::Orders_heartbeatExchangeInterval": "5.0", "orders::Orders_httpReadTimeout": "7",
             "orders::Other_httpConnectionTimeout": "9"}
    r = lab.post(coll, json={"name": "CrossDCFailover", "description": "probe", "properties": props})
    assert r.status_code == 201, r.text
    cfg = LAB_DIR / "dc1" / "probe-configs" / "probe_appcfg.cfg"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text("# only a few keys\ncrossDCHttpPort = 26151\nhttpReadTimeout=3\ncrossDCInitDelay=3600\n"
                   "remoteDataCenterApplicationMachineNames=127.0.0.1\n")
    try:
        job = submit(lab, "dc1", "orders", "probe_appcfg",
                     {"configFileName": str(cfg), "specialMessagePort": 26159, "httpConnectionTimeout": "1"})
        try:
            healthy(lab, job)
            line = wait_until(lambda: next((li for li in trace(lab, pe(lab, job, 1)).splitlines()
                                            if "_XXXXX_ configuration:" in li), None), 5, "the configuration line")
            assert "heartbeatExchangeInterval=5.0(appconfig)" in line
            assert "httpReadTimeout=3.0(file)" in line and "crossDCHttpPort=26151(file)" in line
            assert "httpConnectionTimeout=25.0(default)" in line  # neither the submission parameter nor Other_
            assert "consecutiveHeartbeatMissesAllowed=4(default)" in line
            assert "dataSnapshotExchangeInterval=888888888.0(default)" in line
        finally:
            cancel(lab, job)
    finally:
        lab.delete(f"{coll}/CrossDCFailover")
