"""JMX as real Streams serves it (issue 11 point 6, reference §4.2): JMXMP with TLS and credentials on :9975,
provider package com.ibm.streams.management, job and PE beans only after InstanceMXBean.registerJobById,
idle ones dropped with the `.object.inactivity.{warning,unregister}` notifications.

The client side is the tester's own (support/metrics/jmx.py + JmxBridge.java) with the lab's provider classes
on the classpath, and a Java listener (tests/lab/java/JmxNotifications.java) for the notifications. The
inactivity tests use a second lab JMX JVM for dc1 on another port with a 4 s inactivity, so the lab's own
JVM (5 min) is left as it is.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import jmxwire
import pytest
from jmxwire import connect, instance_name, invoke, pattern, read
from labwire import ADDR, CA, LAB_DIR, Lab, wait_until

from lab import jmx as lab_jmx
from lab import paths
from support.metrics.jmx import JmxError

pytestmark = pytest.mark.lab

SHORT_PORT = 19975
SHORT_INACTIVITY_S = 4.0
LISTENER = Path(__file__).resolve().parent / "java" / "JmxNotifications.java"


@pytest.fixture(scope="module", autouse=True)
def _jmx_client_ends() -> Iterator[None]:
    """The module's JMX bridge JVM ends with the module."""
    yield
    jmxwire.close()


@pytest.fixture(scope="module")
def short_jmx(lab: Lab) -> Iterator[int]:
    """A second JMX JVM for dc1 on SHORT_PORT with a 4 s inactivity; stopped by PID at the end."""
    argv = ["ip", "netns", "exec", paths.netns("dc1"),
            *lab_jmx.argv("dc1", port=SHORT_PORT, inactivity=SHORT_INACTIVITY_S)]
    with open(LAB_DIR / "logs" / f"test-jmx-{SHORT_PORT}.log", "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_until(lambda: lab_jmx.answers("dc1", port=SHORT_PORT) is None or proc.poll() is not None, 30,
                   "second JMX JVM serves TLS")
        assert proc.poll() is None, f"the second JMX JVM exited ({proc.returncode})"
        yield SHORT_PORT
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_jmx_needs_jmxmp_tls_and_the_lab_credentials(lab: Lab) -> None:
    connect("dc1", "t-auth")
    inst = read("t-auth", instance_name("dc1"), ("Id", "Status"))
    assert inst[instance_name("dc1")]["Id"] == "streams-dc1"

    with pytest.raises(JmxError) as wrong:
        connect("dc1", "t-auth-wrong", password="not-the-password")
    assert wrong.value.kind == "auth"
    with pytest.raises(JmxError) as anonymous:
        connect("dc1", "t-auth-none", user=None, password=None)
    assert anonymous.value.kind == "auth"

    # a CA that did not sign the DC's certificate: the TLS handshake fails before any credentials are sent
    system_cas = Path("/etc/ssl/certs/ca-certificates.crt")
    if system_cas.exists():
        with pytest.raises(JmxError) as untrusted:
            connect("dc1", "t-auth-ca", ca=str(system_cas))
        assert untrusted.value.kind == "io"


def test_plain_rmi_is_no_longer_served(lab: Lab) -> None:
    with pytest.raises(JmxError):
        connect("dc1", "t-rmi", url=f"service:jmx:rmi:///jndi/rmi://{ADDR['dc1']}:9975/jmxrmi")
    # a JRMP (RMI) client hello on the port gets no JRMP ack (0x4e): TLS refuses it (alert or close)
    with socket.create_connection((ADDR["dc1"], 9975), timeout=5) as raw:
        raw.sendall(b"JRMI\x00\x02\x4b")
        raw.settimeout(5)
        try:
            answer = raw.recv(16)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    assert not answer.startswith(b"\x4e"), answer


def test_job_and_pe_beans_exist_only_after_register_job_by_id(default_deployment: Lab, short_jmx: int) -> None:
    lab = default_deployment
    connect("dc1", "t-reg", port=short_jmx)
    job = lab.job("dc1", "orders")
    assert job is not None
    wait_until(lambda: job["id"] in (read("t-reg", instance_name("dc1"), ("Jobs",))
                                     [instance_name("dc1")].get("Jobs") or []), 15, "the new JVM lists orders")
    assert read("t-reg", pattern("dc1", "instance.job")) == {}
    assert read("t-reg", pattern("dc1", "instance.pe")) == {}

    invoke("t-reg", instance_name("dc1"), "registerJobById", [job["id"]], ["java.lang.String"])
    jobs = read("t-reg", pattern("dc1", "instance.job"), ("Name", "Status"))
    assert list(jobs) == [f'com.ibm.streams.management:type=instance.job,instance="streams-dc1",id={job["id"]}']
    assert next(iter(jobs.values())) == {"Name": "orders", "Status": "RUNNING"}
    pes = read("t-reg", pattern("dc1", "instance.pe"), ("JobId",))
    rest_pes = lab.get(f"{job['self']}/pes").json()["pes"]
    assert {n.rsplit("id=", 1)[1] for n in pes} == {p["id"] for p in rest_pes}
    assert {str(a["JobId"]) for a in pes.values()} == {job["id"]}

    with pytest.raises(JmxError, match="no job 424242") as unknown:
        invoke("t-reg", instance_name("dc1"), "registerJobById", ["424242"], ["java.lang.String"])
    assert unknown.value.kind == "error"


def test_idle_job_beans_are_dropped_with_the_inactivity_notifications(default_deployment: Lab,
                                                                       short_jmx: int) -> None:
    lab = default_deployment
    job = lab.job("dc1", "orders")
    assert job is not None
    done = subprocess.run(
        ["java", "-cp", jmxwire.CLASSPATH[0], str(LISTENER), jmxwire.url("dc1", short_jmx), jmxwire.USER,
         jmxwire.password(), str(CA), "streams-dc1", job["id"], "20"],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "read Name=orders"
    mine = [line.split() for line in lines[1:-1] if line.endswith(f" {job['id']}")]
    kinds = [(int(ms), kind.rsplit(".", 1)[1]) for ms, kind, _ in mine]
    assert [k for _, k in kinds] == ["warning", "unregister"], lines
    (warned, _), (dropped, _) = kinds
    # warning at half the inactivity, unregister at the inactivity (the JVM sweeps every 250 ms; the listener's
    # clock starts just after the read, so a notification may come up to a few ms "early")
    assert SHORT_INACTIVITY_S * 500 - 300 <= warned <= SHORT_INACTIVITY_S * 500 + 1500, kinds
    assert SHORT_INACTIVITY_S * 1000 - 300 <= dropped <= SHORT_INACTIVITY_S * 1000 + 1500, kinds
    assert lines[-1] == "registered false"

    # registered again on demand, like after any drop
    connect("dc1", "t-again", port=short_jmx)
    assert read("t-again", pattern("dc1", "instance.job")) == {}
    invoke("t-again", instance_name("dc1"), "registerJobById", [job["id"]], ["java.lang.String"])
    assert len(read("t-again", pattern("dc1", "instance.job"), ("Name",))) == 1
