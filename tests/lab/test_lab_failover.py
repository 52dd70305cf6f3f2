"""The failover path: cancel dc1's orders -> dc2's standalone stub runs its failover script, which submits
orders in dc2 (restoring script: with dc1's last snapshot; reference script: empty)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from labprobes import hang_until_takeover, read_new
from labwire import LAB_DIR, Lab, run_lab, wait_until

pytestmark = pytest.mark.lab


def test_cancel_dc1_orders_dc2_takes_over_with_state(default_deployment: Lab) -> None:
    lab = default_deployment
    try:
        _run_failover(lab)
    finally:
        r = run_lab("reset")
        assert r.returncode == 0, r.stderr


def _run_failover(lab: Lab) -> None:
    job1 = lab.job("dc1", "orders")
    assert job1 is not None
    ep1 = lab.endpoints("dc1", job1["id"])
    read_new(lab, ep1["sink"])  # what is already buffered is not this test's
    key = f"cust-{uuid.uuid4().hex[:8]}"
    items = [{"id": f"{key}-{i}", "key": key, "seq": i, "amount": 1.5, "sent_at": time.time()} for i in range(5)]
    assert lab.post(ep1["source"], json={"items": items}).json() == {"accepted": 5}
    got: list[dict[str, Any]] = []
    wait_until(lambda: got.extend(read_new(lab, ep1["sink"])) or len(got) >= 5, 5, "dc1 output")
    processed = time.time()
    assert got[-1]["count_for_key"] == 5 and got[-1]["sum_for_key"] == 7.5

    # a snapshot taken after the tuples were processed reaches dc2's stub
    stored = wait_until(
        lambda: [
            e
            for e in lab.events("snapshot_sent", "dc1", since=processed)
            if e["job_id"] == job1["id"] and e["taken_at"] > processed
        ],
        10,
        "a replicated snapshot after processing",
    )[0]

    stub = lab.standby()
    assert stub is not None and lab.job("dc2", "orders") is None
    assert lab.get(f"{lab.rest('dc2')}/jobs").json()["jobs"] == []  # the stub is no Streams job
    t_cancel = time.time()
    r = lab.delete(job1["self"])
    assert r.status_code == 204
    lab.gone(job1)

    def dc2_orders_running() -> dict[str, Any] | None:
        j = lab.job("dc2", "orders")
        return j if j and j["health"] == "healthy" else None

    job2 = wait_until(dc2_orders_running, 10, "orders running in dc2")
    t_running = time.time() - t_cancel
    restored = wait_until(lambda: lab.events("snapshot_restored", "dc2", since=t_cancel), 5, "restore")[0]
    print(f"cancel -> dc2 orders healthy: {t_running:.2f} s; -> state restored {restored['t'] - t_cancel:.2f} s")
    assert t_running < 6

    down = lab.events("remote_down", "dc2", since=t_cancel)
    launched = lab.events("failover_launched", "dc2", since=t_cancel)
    assert down and launched and launched[0]["stub_pid"] == stub["pid"]
    assert launched[0]["script"].endswith("/crossdc/failover-restoring.sh")
    assert restored["job_id"] == job2["id"] and restored["origin"] == "dc1"
    submitted = [e for e in lab.events("job_submitted", "dc2", since=t_cancel) if e["job_id"] == job2["id"]]
    assert submitted and submitted[0]["t"] > launched[0]["t"]  # the script submitted it through streamtool
    # the restored state is dc1's state at its LAST replicated snapshot
    last_stored = [e for e in lab.events("snapshot_stored", "dc2") if e["origin"] == "dc1" and e["t"] < down[0]["t"]][
        -1
    ]
    assert restored["digest"] == last_stored["digest"]
    assert restored["total_count"] >= stored["total_count"]
    # the script stops the stub (by PID) after handing over
    wait_until(lambda: lab.standby() is None, 5, "the failover script to stop the stub")

    # tuples injected into dc2 continue from the restored state
    ep2 = lab.endpoints("dc2", job2["id"])
    more = {"id": f"{key}-5", "key": key, "seq": 5, "amount": 2.0, "sent_at": time.time()}
    assert lab.post(ep2["source"], json={"items": [more]}).json() == {"accepted": 1}
    out: list[dict[str, Any]] = []
    wait_until(lambda: out.extend(read_new(lab, ep2["sink"])) or out, 5, "dc2 output")
    assert out[0]["dc"] == "dc2"
    assert out[0]["count_for_key"] == 6 and out[0]["sum_for_key"] == 9.5

    # the failover job's merger metric counts the replayed snapshot
    merger = f"{job2['operators']}/OrdersXDC.RemoteDCDataMerger/outputports/0/metrics"
    metrics = {m["name"]: m["value"] for m in lab.get(merger).json()["metrics"]}
    assert metrics["nTuplesSubmitted"] == 1


def test_hang_of_the_active_takeover_then_both_emit(default_deployment: Lab) -> None:
    """No fencing (the toolkit has none): SIGSTOP dc1's Aggregator until dc2 took over; continued, dc1 emits what
    it held and keeps processing beside dc2: both DCs emit after the heal (split brain), and replicate."""
    lab = default_deployment
    try:
        t = hang_until_takeover(lab)
        assert t["held"] and all(o["dc"] == "dc1" for o in t["held"])
        assert t["dc1_after_heal"] and all(o["dc"] == "dc1" for o in t["dc1_after_heal"])
        assert t["dc2_after_heal"] and all(o["dc"] == "dc2" for o in t["dc2_after_heal"])
        assert not lab.events("stood_down", "dc1", since=t["t_cont"])
        assert not lab.events("fencing_hold", "dc1", since=t["t_cont"])
        # after the heal each side replicates to the other
        wait_until(lambda: [e for e in lab.events("snapshot_stored", "dc1", since=t["t_cont"]) if e["origin"] == "dc2"],
                   10, "dc1 to store dc2's snapshot")
        wait_until(lambda: [e for e in lab.events("snapshot_stored", "dc2", since=t["t_cont"]) if e["origin"] == "dc1"],
                   10, "dc2 to store dc1's snapshot")
    finally:
        r = run_lab("reset")
        assert r.returncode == 0, r.stderr


def test_hang_with_fencing_the_old_active_stands_down(lab: Lab) -> None:
    """Application option fencing=true: SIGSTOP dc1's Aggregator until dc2 took over; continued, dc1 holds its
    output, sees dc2 replicate (dc2 is now an active) and stands down: only one DC emits after the heal."""
    r = run_lab("reset", "--fencing")
    assert r.returncode == 0, r.stderr
    try:
        t = hang_until_takeover(lab)
        assert t["held"] == [] and t["dc1_after_heal"] == []
        stood = wait_until(lambda: lab.events("stood_down", "dc1", since=t["t_cont"]), 10, "dc1 to stand down")[0]
        assert stood["job_id"] == t["job1"]["id"] and stood["remote"] == "dc2"
        assert lab.events("fencing_hold", "dc1", since=t["t_cont"])
        assert lab.events("snapshot_retracted", "dc1", since=t["t_cont"])
        assert all(o["dc"] == "dc2" for o in t["dc2_after_heal"]) and t["dc2_after_heal"]
    finally:
        r = run_lab("reset")
        assert r.returncode == 0, r.stderr


def test_reference_script_takes_over_without_the_state(lab: Lab) -> None:
    """The toolkit's reference failover script submits the application and stops the stub, nothing more: the
    new job deletes the stored snapshots on its first tick (retain=false) and starts empty."""
    r = run_lab("reset", "--failover-script", "reference")
    assert r.returncode == 0, r.stderr
    try:
        status = run_lab("status", "--json")
        doc = json.loads(status.stdout)
        assert doc["failover_script"] == "reference" and doc["standby"]["alive"]
        assert doc["standby"]["script_path"].endswith("/dc2/crossdc/failover-reference.sh")
        job1 = lab.job("dc1", "orders")
        assert job1 is not None
        ep1 = lab.endpoints("dc1", job1["id"])
        key = f"ref-{uuid.uuid4().hex[:8]}"
        items = [{"id": f"{key}-{i}", "key": key, "seq": i, "amount": 1.0, "sent_at": time.time()} for i in range(3)]
        assert lab.post(ep1["source"], json={"items": items}).status_code in (200, 201, 204)
        processed = time.time()
        wait_until(lambda: [e for e in lab.events("snapshot_stored", "dc2", since=processed)
                            if e["origin"] == "dc1"], 10, "a replicated snapshot in dc2")
        t_cancel = time.time()
        assert lab.delete(job1["self"]).status_code == 204
        job2 = wait_until(lambda: (j := lab.job("dc2", "orders")) and j["health"] == "healthy" and j, 15,
                          "the reference script's job in dc2")
        wait_until(lambda: lab.standby() is None, 5, "the reference script to stop the stub")
        wait_until(lambda: not list((LAB_DIR / "dc2" / "snapshots").glob("*.snapshot")), 10,
                   "the new job to delete the stored snapshots on its first tick")
        assert not lab.events("snapshot_restored", "dc2", since=t_cancel)
        ep2 = lab.endpoints("dc2", job2["id"])
        more = {"id": f"{key}-3", "key": key, "seq": 3, "amount": 1.0, "sent_at": time.time()}
        lab.post(ep2["source"], json={"items": [more]})
        out: list[dict[str, Any]] = []
        wait_until(lambda: out.extend(lab.get(ep2["sink"]).json()["items"]) or out, 5, "dc2 output")
        assert out[0]["count_for_key"] == 1  # restoring script: 4
        result = (LAB_DIR / "dc2" / "crossdc" / "failover-result.txt").read_text()
        assert "submitted" in result
    finally:
        r = run_lab("reset", "--failover-script", "restoring")
        assert r.returncode == 0, r.stderr
