"""The real parts of each DC (issue 3, item 5 and 7): sshd, the Prometheus exporter, Prometheus, JMX, cgroups,
and `lab status` — each checked over its own wire (SSH, HTTP text format, PromQL, JMX) against the REST API.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jmxwire
import paramiko
import pytest
from jmxwire import connect as jmx_connect
from jmxwire import read as jmx_read
from jmxwire import registered_beans
from labwire import ADDR, LAB_DIR, Lab, run_lab, wait_until

from support.metrics.prometheus import PrometheusClient, PrometheusSource

pytestmark = pytest.mark.lab

SSH_DIR = LAB_DIR / "ssh"
CLIENT_KEY = SSH_DIR / "client_key"
KNOWN_HOSTS = SSH_DIR / "known_hosts"
EXPORTER_PORT = 25500
PROMETHEUS = "http://127.0.0.1:19090"
CGROUP = Path("/sys/fs/cgroup")
DCS = ("dc1", "dc2")

INSTANCE_LABELS = ["instancename"]
JOB_LABELS = ["instancename", "jobname"]
PE_LABELS = ["instancename", "jobname", "resource", "peid"]
OP_LABELS = ["instancename", "jobname", "resource", "peid", "operatorname", "operatorkind"]

# streams-metric-exporter encodings (reference §4.3), re-stated independently of the lab's code
HEALTH = {"healthy": 1.0, "partiallyHealthy": 0.5, "partiallyUnhealthy": 0.5}
JOB_STATUS = {"running": 1.0, "canceling": 0.5, "constructed": 0.5}
PE_STATUS = {"running": 1.0, "starting": 0.5, "constructed": 0.5, "restarting": 0.5, "stopping": 0.5, "submitted": 0.5}


# ------------------------------------------------------------------------------------------------ SSH


def ssh_client(dc: str, key: paramiko.PKey | None = None, known_hosts: Path | None = KNOWN_HOSTS) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    if known_hosts is not None:
        client.load_host_keys(str(known_hosts))
    client.connect(
        ADDR[dc],
        port=22,
        username="root",
        pkey=key,
        key_filename=None if key is not None else str(CLIENT_KEY),
        look_for_keys=False,
        allow_agent=False,
        timeout=5,
        banner_timeout=5,
        auth_timeout=5,
    )
    return client


def ssh_run(dc: str, command: str) -> tuple[int, str]:
    client = ssh_client(dc)
    try:
        _in, out, err = client.exec_command(command, timeout=10)
        rc = out.channel.recv_exit_status()
        return rc, out.read().decode() + err.read().decode()
    finally:
        client.close()


def test_ssh_files_for_the_framework(lab: Lab) -> None:
    assert CLIENT_KEY.stat().st_mode & 0o777 == 0o600
    lines = [ln.split() for ln in KNOWN_HOSTS.read_text().splitlines() if ln.strip()]
    assert sorted(ln[0] for ln in lines) == sorted([*ADDR.values(), "198.18.3.10"])  # the DC hosts and the bastion
    assert {ln[1] for ln in lines} == {"ssh-ed25519"}
    assert len({ln[2] for ln in lines}) == 3, "each DC (and the bastion) has its own host key"


@pytest.mark.parametrize("dc", DCS)
def test_sshd_accepts_client_key_and_runs_in_the_dc(lab: Lab, dc: str) -> None:
    rc, out = ssh_run(dc, "id -un; ip -4 -o addr show; cat /proc/self/cgroup")
    assert rc == 0, out
    assert out.splitlines()[0] == "root"
    assert f"inet {ADDR[dc]}/24" in out, "the session runs in the DC's network namespace"
    assert "xdc-lab" not in out, "sshd (and so its sessions) stays outside the DC's resource cgroups"
    ctrls = [c for c in ("cpu", "memory") if (CGROUP / c / "xdc-lab" / dc / "cgroup.procs").exists()]
    if not ctrls:
        pytest.skip("cgroup v1 cpu/memory not available here")
    join = "; ".join(f"echo $$ > /sys/fs/cgroup/{c}/xdc-lab/{dc}/cgroup.procs" for c in ctrls)
    rc, out = ssh_run(dc, f"{join} && cat /proc/self/cgroup")
    assert rc == 0, out
    for c in ctrls:
        assert re.search(rf"^\d+:{c}:/xdc-lab/{dc}$", out, re.M), out


def test_sshd_rejects_a_key_that_is_not_authorized(lab: Lab) -> None:
    stranger = paramiko.RSAKey.generate(2048)
    with pytest.raises(paramiko.AuthenticationException):
        ssh_client("dc1", key=stranger)


def test_sshd_host_key_must_be_known(lab: Lab, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
        ssh_client("dc1", known_hosts=empty)
    # dc2's host key filed under dc1's address: a different server answers -> rejected
    dc2_key = next(ln for ln in KNOWN_HOSTS.read_text().splitlines() if ln.startswith(ADDR["dc2"] + " "))
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(dc2_key.replace(ADDR["dc2"], ADDR["dc1"], 1) + "\n")
    with pytest.raises(paramiko.BadHostKeyException):
        ssh_client("dc1", known_hosts=wrong)


# ------------------------------------------------------------------------------------------- exporter


Family = dict[str, Any]


def parse_exposition(text: str) -> dict[str, Family]:
    """Prometheus text format 0.0.4 -> {name: {"help", "type", "samples": [(labels, value)]}}."""
    families: dict[str, Family] = {}
    sample = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
    label = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            families.setdefault(name, {"samples": []})["help"] = help_text
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            families.setdefault(name, {"samples": []})["type"] = kind
        else:
            m = sample.match(line)
            assert m, f"unparsable line: {line!r}"
            labels = [(k, v) for k, v in label.findall(m.group(2) or "")]
            families.setdefault(m.group(1), {"samples": []})["samples"].append((labels, float(m.group(3))))
    return families


def scrape(lab: Lab, dc: str, path: str = "/metrics") -> dict[str, Family]:
    r = lab.http.get(f"http://{ADDR[dc]}:{EXPORTER_PORT}{path}", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain")
    return parse_exposition(r.text)


def values(fams: dict[str, Family], name: str, **match: str) -> list[float]:
    return [
        v
        for labels, v in fams.get(name, {"samples": []})["samples"]
        if all(dict(labels).get(k) == want for k, want in match.items())
    ]


def rest_state(lab: Lab, dc: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    jobs = lab.get(f"{lab.rest(dc)}/jobs").json()["jobs"]
    pes = lab.get(f"{lab.rest(dc)}/pes").json()["pes"]
    ops = lab.get(f"{lab.rest(dc)}/operators").json()["operators"]
    return jobs, pes, ops


def job_of(pe: dict[str, Any]) -> str:
    return str(pe["job"]).rstrip("/").rsplit("/", 1)[-1]


def label_keys(name: str) -> list[str]:
    """The labels of a family of the real exporter (StreamsObjectType, v5), by name prefix."""
    if name == "streams_resource_role":
        return ["instancename", "resource", "role"]
    for prefix, keys in (
        ("streams_instance_", INSTANCE_LABELS),
        ("streams_resource_", ["instancename", "resource"]),
        ("streams_job_", JOB_LABELS),
        ("streams_pe_op_connection_", [*PE_LABELS, "index", "connectionid"]),
        ("streams_pe_ip_", [*PE_LABELS, "index"]),
        ("streams_pe_op_", [*PE_LABELS, "index"]),
        ("streams_pe_", PE_LABELS),
        ("streams_operator_ip_", [*OP_LABELS, "inputportname"]),
        ("streams_operator_op_", [*OP_LABELS, "outputportname"]),
        ("streams_operator_", OP_LABELS),
    ):
        if name.startswith(prefix):
            return keys
    pytest.fail(f"unexpected family {name}")


@pytest.mark.parametrize("dc", DCS)
def test_exporter_names_labels_and_encodings(default_deployment: Lab, dc: str) -> None:
    lab = default_deployment
    jobs, pes, ops = rest_state(lab, dc)
    fams = scrape(lab, dc)
    inst = f"streams-{dc}"

    for name, fam in fams.items():
        assert name.startswith("streams_"), name
        assert fam.get("type") == "gauge" and fam.get("help"), f"{name} lacks # HELP / # TYPE gauge"
        for labels, _v in fam["samples"]:
            assert [k for k, _ in labels] == label_keys(name), (name, labels)
    # tuple counters are PE *port* metrics in the real exporter: no streams_pe_nTuples* family
    assert not [n for n in fams if n.startswith("streams_pe_nTuples")], sorted(fams)
    assert "streams_instance_creationTime" not in fams

    assert values(fams, "streams_instance_status", instancename=inst) == [1.0]
    assert values(fams, "streams_instance_health", instancename=inst) == [1.0]
    assert len(values(fams, "streams_instance_startTime", instancename=inst)) == 1
    assert values(fams, "streams_instance_jobCount", instancename=inst) == [float(len(jobs))]
    assert values(fams, "streams_resource_status", instancename=inst, resource=ADDR[dc]) == [1.0]
    assert values(fams, "streams_resource_role", resource=ADDR[dc], role="application") == [1.0]
    assert len(values(fams, "streams_resource_cpuUtilization", resource=ADDR[dc])) == 1
    for job in jobs:
        jl = {"instancename": inst, "jobname": job["name"]}
        job_pes = [p for p in pes if job_of(p) == job["id"]]
        assert values(fams, "streams_job_health", **jl) == [HEALTH.get(job["health"], 0.0)]
        assert values(fams, "streams_job_healthy", **jl) == [HEALTH.get(job["health"], 0.0)]
        assert values(fams, "streams_job_status", **jl) == [JOB_STATUS.get(job["status"], 0.0)]
        assert values(fams, "streams_job_submitTime", **jl) == [float(job["submitTime"])]
        assert values(fams, "streams_job_pecount", **jl) == [float(len(job_pes))]
        for agg in ("sum", "avg", "max", "min"):
            assert len(values(fams, f"streams_job_{agg}_congestionFactor", **jl)) == 1
        for pe in job_pes:
            pl = {**jl, "peid": pe["id"], "resource": ADDR[dc]}
            assert values(fams, "streams_pe_status", **pl) == [PE_STATUS.get(pe["status"], 0.0)]
            assert values(fams, "streams_pe_health", **pl) == [HEALTH.get(pe["health"], 0.0)]
            assert values(fams, "streams_pe_launchCount", **pl) == [float(pe["launchCount"])]
            assert len(values(fams, "streams_pe_nCpuMilliseconds", **pl)) == 1
            # one series per PE port (index = indexWithinPE) and per output connection, as the REST API lists
            for side, family in (("inputPorts", "streams_pe_ip_nTuplesProcessed"),
                                 ("outputPorts", "streams_pe_op_nTuplesSubmitted")):
                ports = lab.get(pe[side]).json()[side]
                samples = fams.get(family, {"samples": []})["samples"]
                got = sorted(dict(lbl)["index"] for lbl, _ in samples if dict(lbl)["peid"] == pe["id"])
                assert got == sorted(str(p["indexWithinPE"]) for p in ports), (pe["id"], family)
            conns = sorted(c["id"] for c in lab.get(pe["connections"]).json()["connections"]
                           if job_of({"job": c["source"]["pe"]}) == pe["id"])
            got_conns = sorted(dict(lbl)["connectionid"] for lbl, _ in
                               fams.get("streams_pe_op_connection_congestionFactor", {"samples": []})["samples"]
                               if dict(lbl)["peid"] == pe["id"])
            assert got_conns == conns, pe["id"]
        # every operator of the job has a port; each port's series carries the operator's name and kind
        job_ops = {o["name"]: o for o in ops if job_of(o) == job["id"]}
        port_samples = [
            dict(lbl)
            for name in ("streams_operator_ip_nTuplesProcessed", "streams_operator_op_nTuplesSubmitted")
            for lbl, _v in fams[name]["samples"]
            if dict(lbl)["jobname"] == job["name"]
        ]
        assert {d["operatorname"] for d in port_samples} == set(job_ops)
        for d in port_samples:
            assert d["operatorkind"] == job_ops[d["operatorname"]]["operatorKind"]
            assert d["peid"] == job_of({"job": job_ops[d["operatorname"]]["pe"]})
        op_level = {dict(lbl)["operatorname"] for lbl, _ in fams["streams_operator_relativeOperatorCost"]["samples"]
                    if dict(lbl)["jobname"] == job["name"]}
        assert op_level == set(job_ops)
    assert "streams_operator_nTuplesProcessed" not in fams, "operator port metrics stay under the ports"
    # dc2 of the default deployment runs no job: its passive stub is a standalone process, not a job
    assert bool(fams.get("streams_operator_ip_nTuplesProcessed", {"samples": []})["samples"]) == bool(jobs)
    assert set(scrape(lab, dc, "/prometheus")) == set(fams)


def test_exporter_operator_counters_follow_the_tuples(default_deployment: Lab) -> None:
    lab = default_deployment
    job = lab.job("dc1", "orders")
    assert job is not None
    ep = lab.endpoints("dc1", job["id"])

    def processed() -> float:
        got = values(
            scrape(lab, "dc1"), "streams_operator_ip_nTuplesProcessed", jobname="orders", operatorname="Aggregator"
        )
        assert len(got) == 1
        return got[0]

    before = processed()
    items = [{"id": f"exp-{i}", "key": "exporter", "seq": i, "amount": 1.0, "sent_at": time.time()} for i in range(7)]
    assert lab.post(ep["source"], json={"items": items}).json() == {"accepted": 7}
    wait_until(lambda: processed() >= before + 7, 10, "Aggregator nTuplesProcessed +7 in the exporter")
    lab.get(ep["sink"])  # drain


def test_series_follow_the_jobs_through_a_failover(default_deployment: Lab) -> None:
    """dc1's orders canceled -> its series vanish; dc2, where the standalone stub is invisible to the exporter,
    gains orders (exporter, JMX, Prometheus)."""
    lab = default_deployment
    job1 = lab.job("dc1", "orders")
    assert job1 is not None
    try:
        assert values(scrape(lab, "dc2"), "streams_instance_jobCount") == [0.0]  # the stub is no job
        assert lab.delete(job1["self"]).status_code == 204
        wait_until(lambda: values(scrape(lab, "dc1"), "streams_instance_jobCount") == [0.0], 10, "dc1 jobCount 0")
        fams1 = scrape(lab, "dc1")
        gone = ("streams_job_", "streams_pe_", "streams_operator_")
        assert not [n for n, f in fams1.items() if n.startswith(gone) and f["samples"]]
        assert "streams_job_health" in fams1, "as simpleclient: a family without series keeps its headers"

        # the failover script's job has the product's default name, orders::Orders_<id>
        job2 = wait_until(lambda: lab.job("dc2", "orders"), 15, "dc2 runs orders")
        name2 = job2["name"]
        assert name2.startswith("orders::Orders_"), name2

        def dc2_switched() -> bool:
            fams = scrape(lab, "dc2")
            return values(fams, "streams_job_health", jobname=name2) == [1.0]

        wait_until(dc2_switched, 15, "dc2 exporter: orders healthy")

        def jmx_switched() -> bool:
            b1 = jmx_beans("dc1", "instance.job")
            b2 = jmx_beans("dc2", "instance.job")
            return not b1 and sorted(a.get("Name") for a in b2.values()) == [name2]

        wait_until(jmx_switched, 15, "JMX job beans: none in dc1, orders in dc2", interval=0.5)
        wait_until(
            lambda: promql(lab, f'streams_job_health{{dc="dc2",jobname="{name2}"}} == 1'),
            15,
            "Prometheus sees orders healthy in dc2",
            interval=0.5,
        )
    finally:
        r = run_lab("reset")
        assert r.returncode == 0, r.stderr


def test_unhealthy_pe_values_are_frozen(default_deployment: Lab) -> None:
    """A SIGSTOPped PE turns unhealthy (issue 3 item 2): its status/health follow, its metric series are not
    updated but stay with their last values (JobDetails skips them; nothing removes them)."""
    lab = default_deployment
    job = lab.job("dc1", "orders")
    assert job is not None
    pes = lab.get(f"{job['self']}/pes").json()["pes"]
    sink = next(p for p in pes if p["indexWithinJob"] == 2)
    pid = sink["processId"]
    before = scrape(lab, "dc1")
    frozen_names = [n for n, f in before.items() if n.startswith(("streams_pe_n", "streams_pe_ip_", "streams_pe_op_",
                    "streams_operator_")) and values(before, n, peid=sink["id"])]
    assert "streams_pe_ip_nTuplesProcessed" in frozen_names and "streams_pe_nCpuMilliseconds" in frozen_names
    rc, out = ssh_run("dc1", f"kill -STOP {pid}")
    assert rc == 0, out
    try:
        stopped = wait_until(
            lambda: (p := lab.get(sink["self"]).json())["health"] != "healthy" and p,
            20,
            "the instance to report the SIGSTOPped PE unhealthy",
        )
        job_now = lab.get(job["self"]).json()

        def exporter_agrees() -> dict[str, Family] | None:
            fams = scrape(lab, "dc1")
            pl = {"jobname": "orders", "peid": sink["id"]}
            ok = values(fams, "streams_pe_health", **pl) == [HEALTH.get(stopped["health"], 0.0)] and values(
                fams, "streams_job_health", jobname="orders"
            ) == [HEALTH.get(job_now["health"], 0.0)]
            return fams if ok else None

        fams = wait_until(exporter_agrees, 10, "the exporter to report the unhealthy PE")
        assert values(fams, "streams_pe_status", jobname="orders", peid=sink["id"]) == [
            PE_STATUS.get(stopped["status"], 0.0)
        ]
        assert values(fams, "streams_pe_launchCount", jobname="orders", peid=sink["id"])
        later = scrape(lab, "dc1")
        for name in frozen_names:
            assert values(later, name, peid=sink["id"]), f"{name} of the unhealthy PE was removed"
            assert values(later, name, peid=sink["id"]) == values(fams, name, peid=sink["id"]), f"{name} updated"
        assert values(later, "streams_pe_nCpuMilliseconds", peid=pes[0]["id"]), "healthy PEs keep their values"
        assert values(later, "streams_job_health", jobname="orders") == [0.5]
    finally:
        ssh_run("dc1", f"kill -CONT {pid}")
        wait_until(lambda: lab.get(job["self"]).json()["health"] == "healthy", 20, "orders healthy again")


def test_exporter_that_loses_its_source_keeps_only_the_last_known_status(default_deployment: Lab) -> None:
    """Reference §4.3 / StreamsInstanceTracker.resetTracker(): dc1's REST API made unreachable for its exporter
    -> every series goes, `streams_instance_status` stays 1 (last known), no health sample; Prometheus and the
    tester's source see a missing health series, not a 0; the first scrape after the heal has everything."""
    lab = default_deployment
    rule = ["INPUT", "-s", ADDR["dc1"], "-d", ADDR["dc1"], "-p", "tcp", "--dport", "9714", "-m", "comment",
            "--comment", "xdc-test-exporter-source", "-j", "DROP"]  # REST from inside dc1: the exporter's pull
    interval = scrape_interval_s()
    source = PrometheusSource.for_application(PrometheusClient(PROMETHEUS), "orders", "Aggregator")
    subprocess.run(["ip", "netns", "exec", "xdc-dc1", "iptables", "-w", "-I", *rule], check=True)
    try:
        def reset() -> dict[str, Family] | None:
            fams = scrape(lab, "dc1")
            return fams if not values(fams, "streams_instance_health") else None

        fams = wait_until(reset, 15, "dc1's exporter to lose its source", interval=0.5)
        assert {n: f["samples"] for n, f in fams.items() if f["samples"]} == {
            "streams_instance_status": [([("instancename", "streams-dc1")], 1.0)]
        }, "only the last known status is left"
        assert "streams_instance_health" in fams and "streams_job_health" in fams, "families keep their headers"
        assert lab.get(lab.rest("dc1")).json()["status"] == "running", "the instance itself is fine"

        def prometheus_sees_it() -> dict[str, float] | None:
            if promql(lab, 'streams_instance_health{dc="dc1"}') or promql(lab, 'streams_job_health{dc="dc1"}'):
                return None
            points = dict(source.sample())
            return points if points.get("prom.dc1.exporter_has_source") == 0.0 else None

        points = wait_until(prometheus_sees_it, 3 * interval + 10, "Prometheus to see dc1's exporter without source",
                            interval=0.5)
        assert [float(r["value"][1]) for r in promql(lab, 'streams_instance_status{dc="dc1"}')] == [1.0]
        assert points["prom.dc1.exporter_up"] == 1.0 and "prom.dc1.instance_status" not in points
        assert "prom.dc1.job_health" not in points and points["prom.dc2.exporter_has_source"] == 1.0
        assert points["prom.dc2.instance_status"] == 1.0 and points["prom.dc2.instance_health"] == 1.0
    finally:
        subprocess.run(["ip", "netns", "exec", "xdc-dc1", "iptables", "-w", "-D", *rule], check=False)

    def healed() -> dict[str, Family] | None:
        fams = scrape(lab, "dc1")
        return fams if values(fams, "streams_instance_health") else None

    fams = wait_until(healed, 15, "dc1's exporter to find its source again", interval=0.5)
    assert values(fams, "streams_job_health", jobname="orders") == [1.0], "the first good scrape has everything"
    assert values(fams, "streams_instance_jobCount") == [float(len(lab.get(f"{lab.rest('dc1')}/jobs").json()["jobs"]))]
    wait_until(lambda: dict(source.sample()).get("prom.dc1.exporter_has_source") == 1.0
               and promql(lab, 'streams_instance_jobCount{dc="dc1"}'), 3 * interval + 10,
               "Prometheus and the tester to see dc1's exporter with its source again", interval=0.5)


# ----------------------------------------------------------------------------------------- Prometheus


def promql(lab: Lab, query: str) -> list[dict[str, Any]]:
    r = lab.http.get(f"{PROMETHEUS}/api/v1/query", params={"query": query}, timeout=10)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["status"] == "success"
    result: list[dict[str, Any]] = doc["data"]["result"]
    return result


def scrape_interval_s() -> float:
    """The interval `lab up` recorded (the lab's default: 10 s, as the exporter's sample prometheus.yml)."""
    return float(json.loads((LAB_DIR / "state.json").read_text())["scrape_interval_s"])


def test_prometheus_scrapes_both_dcs_at_the_configured_interval(lab: Lab) -> None:
    interval = scrape_interval_s()
    shown = f"{interval:g}s" if interval == int(interval) else f"{round(interval * 1000)}ms"
    got = promql(lab, "streams_instance_jobCount")
    assert sorted(r["metric"]["dc"] for r in got) == ["dc1", "dc2"]
    assert {r["metric"]["instancename"] for r in got} == {"streams-dc1", "streams-dc2"}
    up = promql(lab, 'up{job="streams"}')
    assert sorted((r["metric"]["dc"], r["value"][1]) for r in up) == [("dc1", "1"), ("dc2", "1")]
    targets = lab.http.get(f"{PROMETHEUS}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
    assert sorted((t["labels"]["dc"], t["scrapeUrl"], t["scrapeInterval"]) for t in targets) == [
        ("dc1", f"http://{ADDR['dc1']}:{EXPORTER_PORT}/metrics", shown),
        ("dc2", f"http://{ADDR['dc2']}:{EXPORTER_PORT}/metrics", shown),
    ]
    # the tester discovers the same interval
    assert PrometheusClient(PROMETHEUS).scrape_interval() == interval

    def sample_times() -> list[list[float]] | None:
        # `up`: one sample per scrape, whatever the exporter serves (a reset drops jobCount for a while)
        got = promql(lab, f'up{{job="streams"}}[{round(interval * 4000)}ms]')
        times = [[float(t) for t, _v in r["values"]] for r in got]
        return times if len(times) == 2 and all(len(ts) >= 3 for ts in times) else None

    for times in wait_until(sample_times, 5 * interval + 10, "three samples from each DC", interval=0.5):
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(abs(g - interval) <= 0.1 * interval + 0.05 for g in gaps), (interval, gaps)


def test_the_tester_reads_a_tuple_rate_at_the_scrape_interval(default_deployment: Lab) -> None:
    """The tester's PromQL rate over its discovered window (4 scrape intervals) sees tuples flowing in dc1 —
    where a fixed `[5s]` returns nothing at the default 10 s interval."""
    lab = default_deployment
    job = lab.job("dc1", "orders")
    assert job is not None
    ep = lab.endpoints("dc1", job["id"])
    source = PrometheusSource.for_application(PrometheusClient(PROMETHEUS), "orders", "Aggregator")
    sent = {"n": 0}

    def flowing() -> float | None:
        items = [{"id": f"rate-{sent['n'] + i}", "key": "rate", "seq": sent["n"] + i, "amount": 1.0,
                  "sent_at": time.time()} for i in range(10)]
        sent["n"] += 10
        lab.post(ep["source"], json={"items": items})
        lab.get(ep["sink"])  # drain
        rate = dict(source.sample()).get("prom.dc1.tuples_per_s")
        return rate if rate else None

    interval = scrape_interval_s()
    assert wait_until(flowing, 3 * interval + 10, "a tuple rate in dc1 from Prometheus", interval=0.5) > 0
    assert source.window == f"{4 * interval:g}s"
    if interval >= 5:
        fixed = promql(lab, 'rate(streams_operator_ip_nTuplesProcessed{dc="dc1",operatorname="Aggregator"}[2s])')
        assert not fixed, "a range shorter than two scrape intervals holds at most one sample"


# ------------------------------------------------------------------------------------------------ JMX


@pytest.fixture(scope="module", autouse=True)
def _jmx_client_ends() -> Iterator[None]:
    """The module's JMX bridge JVM ends with the module."""
    yield
    jmxwire.close()


def jmx_beans(dc: str, kind: str) -> dict[str, dict[str, Any]]:
    """Job or PE beans over JMXMP + TLS + credentials, after registerAllJobs (they exist only once registered)."""
    return registered_beans(dc, kind)


def enum_name(rest_value: str) -> str:
    """The MXBean form of a REST enum string: partiallyHealthy -> PARTIALLY_HEALTHY."""
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", rest_value).upper()


def test_jmx_instance_job_and_pe_beans_match_rest(default_deployment: Lab) -> None:
    lab = default_deployment
    jmx_connect("dc1", "parts")

    def instance_bean() -> dict[str, Any] | None:
        # an earlier test's fault may still be healing (the instance partially healthy): the bean mirrors REST
        # every 500 ms, so wait until both agree the instance is healthy
        if lab.get(lab.rest("dc1")).json().get("health") != "healthy":
            return None
        found = jmx_read("parts", 'com.ibm.streams.management:type=instance,name="streams-dc1"')
        attrs = next(iter(found.values()), {})
        return attrs if attrs.get("Health") == "HEALTHY" else None

    attrs = wait_until(instance_bean, 30, "dc1 instance healthy over REST and JMX", interval=0.5)
    assert attrs["Id"] == "streams-dc1" and attrs["Status"] == "RUNNING" and attrs["Health"] == "HEALTHY"

    for dc in DCS:
        jobs, pes, _ops = rest_state(lab, dc)
        jbeans = jmx_beans(dc, "instance.job")
        assert set(jbeans) == {
            f'com.ibm.streams.management:type=instance.job,instance="streams-{dc}",id={j["id"]}' for j in jobs
        }
        for j in jobs:
            a = jbeans[f'com.ibm.streams.management:type=instance.job,instance="streams-{dc}",id={j["id"]}']
            assert (a["Name"], a["Status"], a["Health"], a["SubmitTime"]) == (
                j["name"],
                enum_name(j["status"]),
                enum_name(j["health"]),
                j["submitTime"],
            )
        pbeans = jmx_beans(dc, "instance.pe")
        assert len(pbeans) == len(pes)
        for p in pes:
            a = pbeans[f'com.ibm.streams.management:type=instance.pe,instance="streams-{dc}",id={p["id"]}']
            assert a["Pid"] == p["processId"] and a["Pid"]
            assert (a["Status"], a["Health"], a["StatusReason"], a["LaunchCount"]) == (
                enum_name(p["status"]),
                enum_name(p["health"]),
                enum_name(p["statusReason"]),
                p["launchCount"],
            )
            assert str(a["JobId"]) == job_of(p)


def test_jmx_follows_a_pe_crash(default_deployment: Lab) -> None:
    lab = default_deployment
    job = lab.job("dc1", "orders")
    assert job is not None
    pe = next(p for p in lab.get(f"{job['self']}/pes").json()["pes"] if p["indexWithinJob"] == 0)
    rc, out = ssh_run("dc1", f"kill -KILL {pe['processId']}")
    assert rc == 0, out
    relaunched = wait_until(
        lambda: (
            (p := lab.get(pe["self"]).json())["launchCount"] == pe["launchCount"] + 1 and p["status"] == "running" and p
        ),
        15,
        "the PE relaunched",
    )
    name = f'com.ibm.streams.management:type=instance.pe,instance="streams-dc1",id={pe["id"]}'

    def jmx_caught_up() -> dict[str, Any] | None:
        a = jmx_beans("dc1", "instance.pe").get(name, {})
        # the relaunch passes through restarting (LaunchCount already +1, no Pid yet) before it runs again;
        # the bean may be synced in between, so wait for the running state, not only the count
        return a if a.get("LaunchCount") == relaunched["launchCount"] and a.get("Status") == "RUNNING" else None

    a = wait_until(jmx_caught_up, 15, "JMX LaunchCount +1 and RUNNING", interval=0.5)
    assert a["Pid"] == relaunched["processId"] != pe["processId"]
    assert a["StatusReason"] == "CRASH"
    assert a["Status"] == "RUNNING"


# -------------------------------------------------------------------------------------------- cgroups


def test_dc_processes_in_their_cgroups_with_limits(default_deployment: Lab) -> None:
    lab = default_deployment
    ctrls = [c for c in ("cpu", "memory") if (CGROUP / c / "cgroup.procs").exists()]
    if len(ctrls) < 2:
        pytest.skip(f"cgroup v1 cpu and memory not both available (found {ctrls})")
    doc = json.loads((LAB_DIR / "state.json").read_text())
    state, standby = doc["processes"], doc.get("standby") or {}
    for dc in DCS:
        members = {c: set((CGROUP / c / "xdc-lab" / dc / "cgroup.procs").read_text().split()) for c in ctrls}
        _jobs, pes, _ops = rest_state(lab, dc)
        stub = [str(standby["pid"])] if standby.get("dc") == dc else []  # the standalone passive stub
        assert pes or stub
        inside = [p["processId"] for p in pes] + [str(state[f"{dc}-instance"]["pid"]), str(state[f"{dc}-jmx"]["pid"])]
        inside += stub
        outside = [str(state[f"{dc}-sshd"]["pid"]), str(state[f"{dc}-exporter"]["pid"])]
        for c in ctrls:
            assert set(inside) <= members[c], (dc, c, inside, members[c])
            assert not set(outside) & members[c], (dc, c, outside)
        assert (CGROUP / "memory" / "xdc-lab" / dc / "memory.limit_in_bytes").read_text().strip() == str(2 * 1024**3)
        assert (CGROUP / "cpu" / "xdc-lab" / dc / "cpu.cfs_quota_us").read_text().strip() == "100000"
        assert (CGROUP / "cpu" / "xdc-lab" / dc / "cpu.cfs_period_us").read_text().strip() == "100000"


# --------------------------------------------------------------------------------------------- status


def test_status_json_lists_every_component_healthy(default_deployment: Lab) -> None:
    r = run_lab("status", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["healthy"] is True
    comps = doc["components"]
    expected = {f"{dc}-{k}" for dc in DCS for k in ("instance", "sshd", "exporter", "jmx")} | {"prometheus"}
    assert set(comps) == expected | {"bastion-sshd"}  # lab/bastion.py
    for name, comp in comps.items():
        assert comp["alive"], name
        assert comp.get("health", comp.get("rest")) in ("ok",), (name, comp)
    assert set(comps["prometheus"]["targets"]) == {"dc1", "dc2"}
    assert doc["scrape_interval_s"] == scrape_interval_s()
    assert comps["prometheus"]["scrape_interval"] == f"{scrape_interval_s():g}s"
    assert f"Prometheus scrapes every {scrape_interval_s():g}s" in run_lab("status").stdout
    cg = doc["cgroups"]
    if all(cg["available"].values()):
        for dc in DCS:
            assert cg["current"][dc]["memory/memory.limit_in_bytes"] == str(2 * 1024**3)
            assert cg["current"][dc]["cpu/cpu.cfs_quota_us"] == "100000"
    else:
        assert "note" in cg


def test_up_again_is_a_no_op(lab: Lab) -> None:
    r = run_lab("up")
    assert r.returncode == 0, r.stderr
    assert "already up and healthy" in r.stdout
    text = run_lab("logs").stdout
    for comp in ("dc1-sshd", "dc2-sshd", "dc1-exporter", "dc2-exporter", "dc1-jmx", "dc2-jmx", "prometheus"):
        assert comp in text.split(), comp
    assert "Server listening on" in run_lab("logs", "dc1-sshd").stdout


def test_up_while_a_dc_does_not_answer_keeps_the_lab_and_its_password(lab: Lab) -> None:
    """Issue 10 §4: `lab up` during a run's "dc1 is cut off" tore the lab down as half-up and made a new password;
    the run, holding the old one, got HTTP 401 from dc2 from then on. A lab whose processes all run is up."""
    rule = ["INPUT", "-s", "198.18.0.1", "-p", "tcp", "--dport", "9714", "-m", "comment", "--comment",
            "xdc-test-cut-off", "-j", "DROP"]  # dc1's REST unreachable from the root namespace, as when cut off
    password = (LAB_DIR / "secrets" / "streams-password").read_text()
    pids = json.loads((LAB_DIR / "state.json").read_text())["processes"]
    subprocess.run(["ip", "netns", "exec", "xdc-dc1", "iptables", "-w", "-I", *rule], check=True)
    try:
        up = run_lab("up")
        reset = run_lab("reset")
    finally:
        subprocess.run(["ip", "netns", "exec", "xdc-dc1", "iptables", "-w", "-D", *rule], check=False)
        if (LAB_DIR / "secrets" / "streams-password").read_text() != password:
            lab.refresh()  # rebuilt (the defect): later tests need the new password
    assert up.returncode == 1, up.stdout + up.stderr
    assert "REST API of dc1 does not answer" in up.stderr and "not rebuilding" in up.stderr, up.stderr
    assert reset.returncode == 1 and "REST API of dc1 does not answer" in reset.stderr, reset.stdout + reset.stderr
    assert (LAB_DIR / "secrets" / "streams-password").read_text() == password
    assert json.loads((LAB_DIR / "state.json").read_text())["processes"] == pids
    for dc in DCS:
        assert lab.get(f"{lab.rest(dc)}/jobs").status_code == 200, dc  # the credentials a run holds still work
    again = run_lab("up")
    assert again.returncode == 0 and "already up and healthy" in again.stdout, again.stdout + again.stderr
