"""Helpers shared by the lab conformance tests: probe jobs, signals, iptables rules, truth queries.

Probe jobs (and standalone probe stubs) run beside the default deployment on their own ports (crossdc 26xxx,
SpecialMessagePort 26x99), config files and snapshot directories, so a test can break them without touching the
default deployment (`orders` in dc1, the passive stub in dc2).
Everything a helper starts or changes is undone by the helper (context managers, `finally`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from labwire import ADDR, LAB_DIR, Lab, wait_until

TEST_RULE_TAG = "xdc-labtest"

#: what differs between the lab's applications, as a test sees them: field and operator names
APP_NAMES: dict[str, dict[str, str]] = {
    "orders": {"key": "key", "id": "id", "seq": "seq", "count": "count_for_key", "op": "Aggregator",
               "source": "OrdersIn", "sink": "OrdersOut", "alias": "OrdersXDC"},
    "telemetry": {"key": "deviceId", "id": "trackingId", "seq": "readingSeq", "count": "readingsSoFar",
                  "op": "Peak", "source": "Readings", "sink": "Alerts", "alias": "TelemetryXDC"},
}


def probe_config(dc: str, name: str, settings: dict[str, Any], mode: int = 1) -> Path:
    """A toolkit config file for probe `name` in `dc`, as a team writes one: the lab's own settings of that DC
    and mode (`lab up` writes the same into crossdc/orders.cfg), overridden by `settings`."""
    from lab import crossdc

    values = {**crossdc.lab_file_settings(dc, mode), **{k: str(v) for k, v in settings.items()}}
    path = LAB_DIR / dc / "probe-configs" / f"{name}.cfg"
    crossdc.write_config_file(path, values, f"probe {name}")
    return path


def submit(
    lab: Lab, dc: str, app: str, name: str, params: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """Submit the lab application `app` as job `name` by its bundle (uploaded first: an instance takes no bare
    names). Toolkit settings among `params` go into a config file of the job's own (`probe_config`), handed over
    as `configFileName`, unless `params` names one: the toolkit takes no other submission parameters."""
    from lab import crossdc

    params = dict(params or {})
    if "configFileName" not in params:  # given one, toolkit-named parameters stay (unread) submission parameters
        settings = {k: params.pop(k) for k in list(params) if k in crossdc.CONFIG_KEYS}
        mode = int(settings.get("crossDCOperationMode", 1))
        params["configFileName"] = str(probe_config(dc, name, settings, mode))
    body: dict[str, Any] = {"application": lab.upload(dc, app), "jobName": name, **extra}
    if params:
        body["jobConfigurationOverlay"] = {
            "jobConfigOverlays": [
                {"jobConfig": {"submissionParameters": [{"name": k, "value": str(v)} for k, v in params.items()]}}
            ]
        }
    r = lab.post(f"{lab.rest(dc)}/jobs", json=body)
    assert r.status_code == 201, r.text
    job: dict[str, Any] = r.json()
    return job


def cancel(lab: Lab, job: dict[str, Any]) -> None:
    """Cancel and wait until the job is gone (DELETE answers at once; the job is `canceling` meanwhile)."""
    r = lab.delete(job["self"])
    assert r.status_code in (204, 404), r.text
    lab.gone(job)


def cancel_named(lab: Lab, dc: str, name: str) -> None:
    job = lab.job(dc, name)
    if job is not None:
        cancel(lab, job)


def healthy(lab: Lab, job: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        r = lab.get(job["self"])
        doc: dict[str, Any] = r.json()
        return doc if r.status_code == 200 and doc["health"] == "healthy" else None

    return wait_until(check, timeout, f"job {job['name']} healthy")


def pes(lab: Lab, job: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = lab.get(job["pes"]).json()["pes"]
    return sorted(found, key=lambda p: int(p["indexWithinJob"]))


def pe(lab: Lab, job: dict[str, Any], index: int) -> dict[str, Any]:
    return pes(lab, job)[index]


def events(lab: Lab, event: str, job: dict[str, Any] | None = None, since: float = 0.0,
           dc: str | None = None) -> list[dict[str, Any]]:
    return [
        e
        for e in lab.events(event, dc=dc, since=since)
        if job is None or (_same_source(e, job) and e["dc"] == _dc_of(job))
    ]


def _same_source(e: dict[str, Any], job: dict[str, Any]) -> bool:
    """A truth event of this job, or of this standalone stub (`standalone`: no job, its PID instead)."""
    if job.get("stub"):
        return bool(e.get("stub_pid") == job["pid"])
    return bool(e.get("job_id") == job["id"])


def _dc_of(job: dict[str, Any]) -> str:
    if job.get("stub"):
        return str(job["dc"])
    return "dc1" if f"//{ADDR['dc1']}:" in job["self"] else "dc2"


@contextlib.contextmanager
def standalone(lab: Lab, dc: str, name: str, settings: dict[str, Any] | None = None,
               script: str = "") -> Iterator[dict[str, Any]]:
    """A passive stub (`lab/stub.py`, the toolkit's passive sample) as a standalone process on `dc`'s host, with
    a config file of its own (`probe_config`, mode 0 unless `settings` say otherwise) and `script` as its
    shellScriptName; stopped by PID at the end. The dict stands in for a job in `events`/`wait_event`."""
    settings = dict(settings or {})
    mode = int(settings.get("crossDCOperationMode", 0))
    cfg = probe_config(dc, name, settings, mode)
    cmd = ["ip", "netns", "exec", f"xdc-{dc}", str(LAB_DIR / "bin" / "standalone"),
           "-P", f"configFileName={cfg}", "-P", f"shellScriptName={script}"]
    log = LAB_DIR / "logs" / f"{name}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    stub = {"stub": True, "dc": dc, "pid": proc.pid, "name": name, "config": cfg,
            "trace": LAB_DIR / dc / "crossdc" / f"standalone-{proc.pid}" / "trace.log"}
    try:
        wait_event(lab, "stub_started", stub, timeout=10)
        yield stub
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=10)


def stub_alive(stub: dict[str, Any]) -> bool:
    try:
        os.kill(int(stub["pid"]), 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{stub['pid']}").exists() and "zombie" not in _proc_state(int(stub["pid"]))


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:", 1)[1].split("\n", 1)[0].lower()
    except (OSError, IndexError):
        return "gone"


def stub_trace(stub: dict[str, Any]) -> str:
    try:
        return Path(stub["trace"]).read_text()
    except FileNotFoundError:
        return ""


def wait_event(lab: Lab, event: str, job: dict[str, Any] | None = None, since: float = 0.0, timeout: float = 10,
               dc: str | None = None) -> dict[str, Any]:
    return wait_until(lambda: events(lab, event, job, since, dc), timeout, f"truth event {event}")[0]


def operator_port_metric(lab: Lab, job: dict[str, Any], op: str, kind: str, name: str) -> int:
    url = f"{job['operators']}/{op}/{kind}/0/metrics"
    metrics = {m["name"]: m["value"] for m in lab.get(url).json()["metrics"]}
    return int(metrics[name])


# sink URL -> (arrival ms, position) of the newest tuple read_new() returned from it
_NEWEST_READ: dict[str, tuple[int, int]] = {}


def read_new(lab: Lab, sink: str) -> list[dict[str, Any]]:
    """The tuples that reached the sink after the newest one this function returned from it before (all
    buffered tuples on the first call): the sink does not consume on read (consumingReads defaults to
    false), so each read asks from the newest arrival time seen (startTime) and keeps the tuples whose
    buffer mark (time, position) is newer."""
    last = _NEWEST_READ.get(sink)
    doc = lab.get(sink, params={"startTime": last[0]} if last else None).json()
    out: list[dict[str, Any]] = []
    for item, mark in zip(doc["items"], doc["buffered"], strict=True):
        at = (int(mark["time"]), int(mark["position"]))
        if last is None or at > last:
            out.append(item)
            _NEWEST_READ[sink] = max(at, _NEWEST_READ.get(sink, at))
    return out


def sink_items(lab: Lab, dc: str, job: dict[str, Any]) -> list[dict[str, Any]]:
    """The tuples that reached `job`'s sink in `dc` since the previous call (see read_new)."""
    return read_new(lab, lab.endpoints(dc, job["id"])["sink"])


def inject(lab: Lab, dc: str, job: dict[str, Any], items: list[dict[str, Any]]) -> None:
    source = lab.endpoints(dc, job["id"])["source"]
    r = lab.post(source, json={"items": items})
    assert r.status_code == 200 and r.json() == {"accepted": len(items)}, r.text


def collect(lab: Lab, dc: str, job: dict[str, Any], n: int, timeout: float = 10) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []

    def enough() -> bool:
        got.extend(sink_items(lab, dc, job))
        return len(got) >= n

    wait_until(enough, timeout, f"{n} output tuples from {dc}")
    return got


def tuples(key: str, n: int, start: int = 0, amount: float = 1.0) -> list[dict[str, Any]]:
    now = time.time()
    return [
        {"id": f"{key}-{i}", "key": key, "seq": i, "amount": amount, "sent_at": now, "crc": 0}
        for i in range(start, start + n)
    ]


def readings(device: str, n: int, start: int = 0, values: list[float] | None = None) -> list[dict[str, Any]]:
    """n telemetry input tuples of `device` (tracking ids `<device>-<i>`, readingSeq from start + 1); the
    readings are `values` (default 1.0 each)."""
    now = time.time()
    vals = values or [1.0] * n
    return [
        {"deviceId": device, "reading": vals[i - start], "region": "emea", "trackingId": f"{device}-{i}",
         "readingSeq": i + 1, "sentAt": now}
        for i in range(start, start + n)
    ]


def app_tuples(app: str, key: str, n: int, start: int = 0, value: float = 1.0) -> list[dict[str, Any]]:
    """n input tuples of `key` for the lab application `app` (`tuples` / `readings`)."""
    return tuples(key, n, start, value) if app == "orders" else readings(key, n, start, [value] * n)


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[None]:
    """SIGSTOP a lab process for the duration of the block (always continued)."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def _iptables(action: str, rule: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", "xdc-wan", "iptables", action, "FORWARD", *rule,
         "-m", "comment", "--comment", TEST_RULE_TAG],
        capture_output=True, text=True, check=False,
    )


@contextlib.contextmanager
def blocked(src: str, dst: str, dports: str) -> Iterator[None]:
    """Reject TCP from DC `src` to DC `dst` on `dports` (e.g. "26091:26092") in the wan router."""
    rule = ["-s", ADDR[src], "-d", ADDR[dst], "-p", "tcp", "-m", "multiport", "--dports", dports,
            "-j", "REJECT", "--reject-with", "tcp-reset"]
    r = _iptables("-I", rule)
    assert r.returncode == 0, r.stderr
    try:
        yield
    finally:
        _iptables("-D", rule)


@contextlib.contextmanager
def probe_pair(
    lab: Lab,
    tag: str,
    port: int,
    params: dict[str, Any] | None = None,
    dc1_params: dict[str, Any] | None = None,
    dc2_params: dict[str, Any] | None = None,
    script: str = "",
    wait_up: bool = True,
    app: str = "orders",
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """An `app` (default `orders`) probe in dc1 (mode 1) and a standalone passive stub in dc2 (`standalone`) on
    crossdc port `port`, yielded as (job, stub).

    Snapshot directories `/run/xdc-lab/dcN/probe-<tag>`; SpecialMessagePort `port + 8`. The stub runs `script`
    on DOWN (default: none, an empty command)."""
    common: dict[str, Any] = {"crossDCHttpPort": port, "crossDCInitDelay": 0.2, **(params or {})}
    dirs = {dc: LAB_DIR / dc / f"probe-{tag}" for dc in ("dc1", "dc2")}
    p1 = {**common, "specialMessagePort": port + 8, "dataSnapshotStorageDirectory": str(dirs["dc1"]),
          **(dc1_params or {})}
    p2 = {**common, "dataSnapshotStorageDirectory": str(dirs["dc2"]), **(dc2_params or {})}
    try:
        with standalone(lab, "dc2", f"probe_{tag}_dc2", p2, script) as b:
            a = submit(lab, "dc1", app, f"probe_{tag}_dc1", p1)
            try:
                healthy(lab, a)
                if wait_up:
                    wait_event(lab, "remote_up", a, timeout=10)
                    wait_event(lab, "remote_up", b, timeout=10)
                yield a, b
            finally:
                cancel(lab, a)
    finally:
        for d in dirs.values():
            shutil.rmtree(d, ignore_errors=True)


def snapshot_files(d: Path) -> list[str]:
    return sorted(p.name for p in d.glob("*.snapshot"))


def trace(lab: Lab, pe_doc: dict[str, Any]) -> str:
    return lab.get(pe_doc["applicationTrace"]).text


def stays(cond: Any, duration: float, what: str, interval: float = 0.05) -> None:
    """Assert that `cond()` stays true for `duration` seconds (polled; fails at the first false)."""
    end = time.monotonic() + duration
    while True:
        assert cond(), f"{what} no longer holds"
        if time.monotonic() > end:
            return
        time.sleep(interval)


def send_special(dc: str, port: int, text: str) -> None:
    """Send a text line to an Aggregator's SpecialMessagePort (TCPSource) as an operator would."""
    import socket

    with socket.create_connection((ADDR[dc], port), timeout=5) as s:
        s.sendall(text.encode() + b"\n")


def hang_until_takeover(lab: Lab, app: str = "orders") -> dict[str, Any]:
    """Stop dc1's Aggregator PE (of the deployed `app`), wait for dc2's takeover, inject into dc1 meanwhile,
    continue it, then inject into both DCs; return what each DC emitted after the heal (the split-brain defect
    test reuses this)."""
    names = APP_NAMES[app]
    job1 = lab.job("dc1", app)
    assert job1 is not None
    ep1 = lab.endpoints("dc1", job1["id"])
    read_new(lab, ep1["sink"])  # what is already buffered is not this probe's
    agg = sorted(lab.get(job1["pes"]).json()["pes"], key=lambda p: p["indexWithinJob"])[1]
    key = f"hang-{uuid.uuid4().hex[:8]}"
    t_stop = time.time()
    os.kill(int(agg["processId"]), signal.SIGSTOP)
    try:
        job2 = wait_until(
            lambda: (j := lab.job("dc2", app)) and j["health"] == "healthy" and j, 15, "dc2 to take over"
        )
        wait_until(lambda: lab.events("takeover", "dc2", since=t_stop), 10, "dc2 restored dc1's state")
        during = [dict(t, **{names["id"]: f"{key}-h{i}"}) for i, t in enumerate(app_tuples(app, key, 3))]
        assert lab.post(ep1["source"], json={"items": during}).json() == {"accepted": 3}
        t_cont = time.time()  # the PE may run (and emit truth) before kill() returns: take the time first
    finally:
        os.kill(int(agg["processId"]), signal.SIGCONT)
    # let both sides sort themselves out (dc1 decides within D + 2H of hearing dc2)
    wait_until(lambda: lab.events("local_pause_detected", "dc1", since=t_cont), 10, "dc1 to notice its pause")
    held: list[dict[str, Any]] = []
    after1: list[dict[str, Any]] = []
    after2: list[dict[str, Any]] = []
    ep2 = lab.endpoints("dc2", job2["id"])
    end = time.monotonic() + 5
    n = 0
    while time.monotonic() < end:  # keep traffic flowing to both for 5 s, as a naive producer would
        item = app_tuples(app, key, 1, start=100 + n)[0]
        lab.post(ep1["source"], json={"items": [dict(item, **{names["id"]: f"{key}-a{n}"})]})
        lab.post(ep2["source"], json={"items": [dict(item, **{names["id"]: f"{key}-b{n}"})]})
        out1 = read_new(lab, ep1["sink"])
        held += [o for o in out1 if "-h" in o[names["id"]]]
        after1 += [o for o in out1 if "-a" in o[names["id"]]]
        after2 += read_new(lab, ep2["sink"])
        n += 1
        time.sleep(0.1)
    return {"job1": job1, "job2": job2, "t_cont": t_cont, "held": held, "dc1_after_heal": after1,
            "dc2_after_heal": after2}


def foreign_snapshot(d: Path, state: dict[str, list[Any]], origin: str = "Aggregator") -> None:
    """A snapshot file of the stateful operator `origin` (orders: Aggregator, telemetry: Peak) of a data center
    "dcX", stored in ``d`` as the receiver would."""
    from lab import appspec, crossdc

    d.mkdir(parents=True, exist_ok=True)
    blob = appspec.encode_state(state, time.time())
    (d / f"dcX-{origin}.snapshot").write_bytes(crossdc.encode(crossdc.Message(2, 7, "dcX", blob, origin)))


def count_after_input_before_replay(lab: Lab, name: str, http_port: int, special_port: int,
                                    app: str = "orders") -> int:
    """A failover job (``app``, default ``orders``, with ``retainOlderDataSnapshotsAtStartup=true``) over a
    stored snapshot in which key ``kq`` is at count 5 gets one ``kq`` tuple *before* SendMeDataFromSnapshotFiles,
    then the replay: the count of that tuple's output (orders ``count_for_key``, telemetry ``readingsSoFar``: 6
    when the input waited for the restore, 1 when it did not)."""
    names = APP_NAMES[app]
    d = LAB_DIR / "dc1" / f"probe-{name}"
    params = {"heartbeatExchangeInterval": 0.2, "consecutiveHeartbeatMissesAllowed": 2, "crossDCInitDelay": 0.2,
              "crossDCHttpPort": http_port, "specialMessagePort": special_port, "dataSnapshotStorageDirectory": str(d),
              "remoteDataCenterApplicationMachineNames": "127.0.0.1", "retainOlderDataSnapshotsAtStartup": "true"}
    try:
        foreign_snapshot(d, {"kq": [5, 7.5]}, names["op"])
        job = submit(lab, "dc1", app, f"probe_{name}", params)
        try:
            healthy(lab, job)
            inject(lab, "dc1", job, app_tuples(app, "kq", 1, start=5))
            t0 = time.time()
            send_special("dc1", special_port, "SendMeDataFromSnapshotFiles")
            wait_event(lab, "snapshot_restored", job, since=t0)
            out = collect(lab, "dc1", job, 1)
            return int(out[0][names["count"]])
        finally:
            cancel(lab, job)
    finally:
        shutil.rmtree(d, ignore_errors=True)
