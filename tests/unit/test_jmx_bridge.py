"""The tester's JMX client (support/metrics/jmx.py) against a fake bridge process speaking the same JSON lines.

The fake is a real child process (this Python file's FAKE script): one per source, long-lived, answering like
JmxBridge.java would for an instance whose job beans appear only after registerJobById. The real bridge and
the lab's JMXMP server are exercised in tests/lab/test_lab_jmx.py and the integration test.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from support.metrics import jmx
from support.metrics.jmx import JmxBridge, JmxEndpoint, JmxError, JmxSource, JmxTimeout
from support.waits import wait_until

FAKE = r'''
import json, sys, time
scenario = json.loads(sys.argv[1])
registered = set()
log = open(scenario["log"], "a")
inst = 'com.ibm.streams.management:type=instance,name="streams-dc1"'
for line in sys.stdin:
    req = json.loads(line)
    log.write(json.dumps(req) + "\n"); log.flush()
    ans = {"id": req["id"], "ok": True}
    if req["op"] == "connect":
        if scenario.get("connect") == "auth":
            ans = {"id": req["id"], "ok": False, "kind": "auth", "error": "credentials refused: Authentication failed"}
        elif scenario.get("connect") == "io":
            ans = {"id": req["id"], "ok": False, "kind": "io", "error": "ConnectException: Connection refused"}
        elif scenario.get("connect") == "hang":
            continue
    elif req["op"] == "read":
        beans = {}
        for q in req["queries"]:
            if "type=instance," in q["pattern"]:
                beans[inst] = {"Status": "RUNNING", "Health": "HEALTHY", "Jobs": scenario["jobs"]}
            elif "instance.job" in q["pattern"]:
                for j in sorted(registered):
                    beans[f'com.ibm.streams.management:type=instance.job,instance="streams-dc1",id={j}'] = {
                        "Status": "RUNNING", "Health": "PARTIALLY_HEALTHY"}
            elif "instance.pe" in q["pattern"]:
                for j in sorted(registered):
                    beans[f'com.ibm.streams.management:type=instance.pe,instance="streams-dc1",id={j}0'] = {
                        "LaunchCount": 3, "Status": "RUNNING", "Health": "HEALTHY"}
        ans["beans"] = beans
    elif req["op"] == "invoke":
        job = req["args"][0]
        if job in scenario.get("gone", []):
            ans = {"id": req["id"], "ok": False, "kind": "error", "error": "IllegalArgumentException: no job " + job}
        else:
            registered.add(job)
            ans["result"] = None
    elif req["op"] == "drop":
        registered.clear()
    print(json.dumps(ans), flush=True)
'''

ENDPOINT = JmxEndpoint("dc1", "service:jmx:jmxmp://198.18.1.10:9975", "streams-dc1", "u", "p", "/ca.pem")


def fake_bridge(tmp_path: Path, **scenario: object) -> tuple[JmxBridge, Path]:
    script = tmp_path / "fake_bridge.py"
    script.write_text(FAKE)
    log = tmp_path / "requests.jsonl"
    scenario.setdefault("jobs", ["1"])
    scenario["log"] = str(log)
    return JmxBridge(command=[sys.executable, str(script), json.dumps(scenario)]), log


def requests(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_registers_the_listed_jobs_then_reads_their_beans_in_one_long_lived_process(tmp_path: Path) -> None:
    bridge, log = fake_bridge(tmp_path, jobs=["1", "2"])
    source = JmxSource([ENDPOINT], bridge=bridge, min_interval=0.1, wait=30.0)
    try:
        assert source.min_interval == 1.0
        points = dict(source.sample())
        assert points["jmx.dc1.reachable"] == 1.0
        assert points["jmx.dc1.instance.Status"] == 1.0 and points["jmx.dc1.instance.jobCount"] == 2.0
        assert points["jmx.dc1.job.1.Status"] == 1.0 and points["jmx.dc1.job.2.Health"] == 0.5
        assert points["jmx.dc1.pe.10.LaunchCount"] == 3.0
        sent = requests(log)
        connect = sent[0]
        assert connect["op"] == "connect" and connect["url"] == ENDPOINT.url
        assert (connect["user"], connect["password"], connect["ca"]) == ("u", "p", "/ca.pem")
        invokes = [r for r in sent if r["op"] == "invoke"]
        assert [(r["operation"], r["args"], r["signature"]) for r in invokes] == [
            ("registerJobById", ["1"], ["java.lang.String"]), ("registerJobById", ["2"], ["java.lang.String"])]
        # second sample: beans exist, nothing registered again, no reconnect, same process
        source.sample()
        again = requests(log)[len(sent):]
        assert [r["op"] for r in again] == ["read"]
        assert bridge.started == 1
    finally:
        source.close()
        bridge.close()


def test_beans_dropped_after_inactivity_are_registered_again(tmp_path: Path) -> None:
    bridge, log = fake_bridge(tmp_path)
    source = JmxSource([ENDPOINT], bridge=bridge, wait=30.0)
    try:
        source.sample()
        bridge.request("drop", 5.0, conn="dc1")  # the fake forgets its registrations, like an inactivity drop
        points = dict(source.sample())
        assert points["jmx.dc1.job.1.Status"] == 1.0
        assert sum(1 for r in requests(log) if r["op"] == "invoke") == 2
    finally:
        source.close()
        bridge.close()


def test_a_job_that_ended_before_registration_is_skipped(tmp_path: Path) -> None:
    bridge, _ = fake_bridge(tmp_path, jobs=["1", "9"], gone=["9"])
    source = JmxSource([ENDPOINT], bridge=bridge, wait=30.0)
    try:
        points = dict(source.sample())
        assert points["jmx.dc1.reachable"] == 1.0 and "jmx.dc1.job.1.Status" in points
        assert not any(name.startswith("jmx.dc1.job.9.") for name in points)
    finally:
        source.close()
        bridge.close()


@pytest.mark.parametrize(("connect", "words"), [("io", "Connection refused"), ("auth", "check credentials")])
def test_unreachable_jmx_is_reported_as_jmx_unreachable_not_as_a_down_dc(tmp_path: Path, connect: str,
                                                                         words: str) -> None:
    bridge, log = fake_bridge(tmp_path, connect=connect)
    source = JmxSource([ENDPOINT], bridge=bridge, wait=30.0)
    try:
        assert source.sample() == [("jmx.dc1.reachable", 0.0)]
        assert source.problems["dc1"].startswith("JMX unreachable: ") and words in source.problems["dc1"]
        source.sample()  # retried: connect again on the next sample
        assert [r["op"] for r in requests(log)] == ["connect", "connect"]
    finally:
        source.close()
        bridge.close()


def test_a_hanging_endpoint_never_holds_up_the_sampler_and_ends_as_a_timeout(tmp_path: Path) -> None:
    bridge, _ = fake_bridge(tmp_path, connect="hang")
    source = JmxSource([ENDPOINT], bridge=bridge, timeout=0.5, connect_timeout=0.5, wait=0.05)
    try:
        started = time.monotonic()
        assert source.sample() == []  # still connecting: nothing yet, and the sampler goes on
        assert time.monotonic() - started < 0.4
        late = wait_until(source.sample, bool, timeout=10, interval=0.05, what="the hanging connect times out")
        assert late == [("jmx.dc1.reachable", 0.0)]
        assert source.timeouts == {"dc1": 1} and "no answer to connect" in source.problems["dc1"]
        with pytest.raises(JmxTimeout):
            bridge.request("connect", 0.2, conn="dc1")
    finally:
        source.close()
        bridge.close()
    with pytest.raises(JmxError, match="closed"):
        bridge.request("connect", 1.0, conn="dc1")  # a closed bridge never starts a JVM again


def test_a_dead_bridge_is_an_error_not_a_hang(tmp_path: Path) -> None:
    bridge = JmxBridge(command=[sys.executable, "-c", "import sys; sys.stderr.write('boom\\n')"])
    with pytest.raises(JmxError, match="exited"):
        bridge.request("connect", 10.0, conn="dc1")
    bridge.close()


def test_bridge_command_compiles_once_into_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    command = jmx.bridge_command(["/opt/ibm/streams/lib/com.ibm.streams.management.jmxmp.jar"])
    folder = jmx.cache_dir()
    assert (folder / "JmxBridge.class").exists() and folder.is_relative_to(tmp_path)
    assert command[-1] == "JmxBridge"
    assert command[command.index("-cp") + 1] == f"{folder}:/opt/ibm/streams/lib/com.ibm.streams.management.jmxmp.jar"
    stamp = (folder / "JmxBridge.class").stat().st_mtime_ns
    jmx.bridge_command()
    assert (folder / "JmxBridge.class").stat().st_mtime_ns == stamp
