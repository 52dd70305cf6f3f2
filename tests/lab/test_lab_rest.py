"""REST management API conformance (issue 3 item 1), over HTTPS verified against the lab CA.

Property, link and enum names are those of the reference (`shared/reference/streams-interfaces.md` §1).
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import json
import os
import signal
import ssl
import subprocess
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from labprobes import cancel, events, healthy, pe, pes, submit, wait_event
from labwire import LAB_DIR, Lab, run_lab, wait_until

pytestmark = pytest.mark.lab

#: the probe's toolkit config file (written by the autouse fixture `probe_config_file`)
PROBE_CFG = LAB_DIR / "probe-configs" / "rest_probe.cfg"
PROBE = {
    "jobName": "rest_probe",
    # own crossdc ports and a long init delay in its config file, its own SpecialMessagePort: the probe never
    # talks to anyone
    "submitParameters": [
        {"name": "configFileName", "value": str(PROBE_CFG)},
        {"name": "specialMessagePort", "value": "26099"},
    ],
}


@pytest.fixture(autouse=True)
def probe_config_file(lab: Lab) -> None:
    text = "crossDCHttpPort=26091\ncrossDCInitDelay=3600\nremoteDataCenterApplicationMachineNames=127.0.0.1\n"
    PROBE_CFG.parent.mkdir(parents=True, exist_ok=True)
    PROBE_CFG.write_text(text)

JOB_STATUS = {"constructed", "running", "canceling", "canceled", "unknown"}
HEALTH = {"healthy", "partiallyHealthy", "partiallyUnhealthy", "unhealthy", "unknown"}
PE_STATUS = {"constructed", "submitted", "starting", "running", "restarting", "stopping", "stopped", "unknown"}
PE_REASON = {
    "none", "automatic", "crash", "failure", "hostFailure", "userRequest", "voluntary", "noViableResource",
    "setCapabilitiesFailure", "unknown",
}
CONNECTION_HEALTH = {"connected", "partiallyConnected", "disconnected", "unknown"}
METRIC_KIND = {"counter", "gauge", "time", "unknown"}
METRIC_TYPE = {"system", "custom", "unknown"}


def _element(doc: dict[str, Any], rtype: str) -> None:
    assert doc["resourceType"] == rtype, doc
    assert isinstance(doc["self"], str) and doc["self"].startswith("https://")
    assert isinstance(doc["restid"], str) and unquote(doc["self"]).endswith(f"/{doc['restid']}"), doc


def _collection(lab: Lab, url: str, key: str, rtype: str, **params: Any) -> list[dict[str, Any]]:
    r = lab.get(url, params=params or None)
    assert r.status_code == 200, (url, r.text)
    doc = r.json()
    assert doc["resourceType"] == rtype and doc["total"] == len(doc[key]), doc
    assert "next" not in doc and "previous" not in doc  # only when paged
    items: list[dict[str, Any]] = doc[key]
    return items


def _metrics(lab: Lab, url: str) -> dict[str, dict[str, Any]]:
    doc = lab.get(url).json()
    assert doc["resourceType"] == "metricList" and doc["total"] == len(doc["metrics"])
    assert isinstance(doc["owner"], str) and url.startswith(doc["owner"])
    out = {}
    for m in doc["metrics"]:
        assert m["resourceType"] == "metric"
        assert set(m) >= {"name", "description", "value", "metricKind", "metricType", "lastTimeRetrieved"}
        assert m["metricKind"] in METRIC_KIND and m["metricType"] in METRIC_TYPE
        assert isinstance(m["value"], int) and isinstance(m["lastTimeRetrieved"], int)
        out[m["name"]] = m
    return out


def test_resources_root(lab: Lab) -> None:
    for dc in ("dc1", "dc2"):
        r = lab.get(f"{lab.root(dc)}/resources")
        assert r.status_code == 200
        res = r.json()["resources"]
        assert {"name": "instances", "resource": f"{lab.root(dc)}/instances"} in res


def test_instance_properties_and_every_link(lab: Lab) -> None:
    insts = _collection(lab, f"{lab.root('dc1')}/instances", "instances", "instanceList")
    assert [i["id"] for i in insts] == ["streams-dc1"]
    inst = lab.get(lab.rest("dc1")).json()
    _element(inst, "instance")
    assert inst["id"] == inst["restid"] == "streams-dc1" and inst["self"] == lab.rest("dc1")
    for key in ("owner", "creationUser", "startedBy"):
        assert inst[key] == "streamsadmin"
    assert isinstance(inst["creationTime"], int) and inst["startTime"] >= inst["creationTime"]
    assert inst["status"] == "running" and inst["health"] in HEALTH and inst["productVersion"] == "7.2.0.0"
    assert inst["activeVersion"]["productName"] == "Teracloud Streams"
    assert inst["activeVersion"]["productVersion"] == "7.2.0.0"
    links = {
        "jobs": ("jobs", "jobList"),
        "pes": ("pes", "peList"),
        "operators": ("operators", "operatorList"),
        "hosts": ("hosts", "hostList"),
        "views": ("views", "viewList"),
        "exportedStreams": ("exportedStreams", "exportedStreamList"),
        "importedStreams": ("importedStreams", "importedStreamList"),
        "operatorConnections": ("connections", "operatorConnectionList"),
        "peConnections": ("connections", "peConnectionList"),
        "resourceAllocations": ("resourceAllocations", "resourceAllocationList"),
        "activeServices": ("activeServices", "activeServiceList"),
        "applicationConfigurations": ("applicationConfigurations", "applicationConfigurationList"),
        "jobGroups": ("jobGroups", "jobGroupList"),
    }
    for link, (key, rtype) in links.items():
        assert inst[link].startswith(lab.rest("dc1") + "/"), link
        for item in _collection(lab, inst[link], key, rtype):
            assert {"self", "restid", "resourceType"} <= set(item), (link, item)
            assert lab.get(item["self"]).status_code == 200, item["self"]


def test_job_properties_links_and_filters(default_deployment: Lab) -> None:
    lab = default_deployment
    jobs = _collection(lab, f"{lab.rest('dc1')}/jobs", "jobs", "jobList")
    job = next(j for j in jobs if j["name"] == "orders")
    _element(job, "job")
    for key in (
        "id", "name", "applicationName", "applicationVersion", "applicationPath", "applicationScope", "adlFile",
        "dataPath", "outputPath", "status", "health", "jobGroup", "startedBy", "submitTime", "submitParameters",
    ):
        assert key in job, key
    assert isinstance(job["id"], str) and job["id"].isdigit() and isinstance(job["submitTime"], int)
    assert job["status"] in JOB_STATUS and job["health"] in HEALTH and job["jobGroup"] == "default"
    for param in job["submitParameters"]:
        assert set(param) >= {"name", "value", "values", "defaultValue", "composite", "parameterKind", "required"}
    given = {p["name"]: p for p in job["submitParameters"]}
    assert given["configFileName"]["value"] == str(LAB_DIR / "dc1" / "crossdc" / "orders.cfg")
    assert given["fencing"]["value"] == "false" and "crossDCOperationMode" not in given  # toolkit keys: in the file
    for link in ("instance", "pes", "operators", "hosts", "views", "operatorConnections", "peConnections",
                 "resourceAllocations", "applicationLogTrace"):
        assert lab.get(job[link]).status_code == 200, link
    assert lab.get(f"{lab.rest('dc1')}/jobs", params={"name": "nope"}).json()["total"] == 0
    assert [j["id"] for j in lab.get(f"{lab.rest('dc1')}/jobs", params={"name": "orders,x"}).json()["jobs"]] == [
        job["id"]
    ]
    slim = lab.get(f"{lab.rest('dc1')}/jobs", params={"name": "orders", "fields": "name"}).json()["jobs"][0]
    assert set(slim) == {"name", "self", "restid", "resourceType"}
    one = lab.get(job["self"], params={"fields": "health,status"}).json()
    assert set(one) == {"health", "status", "self", "restid", "resourceType"}


def test_application_log_trace_archive(default_deployment: Lab) -> None:
    lab = default_deployment
    job = lab.job("dc1", "orders")
    assert job is not None
    r = lab.get(job["applicationLogTrace"])
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/x-compressed"
    with tarfile.open(fileobj=io.BytesIO(r.content), mode="r:gz") as tar:
        names = tar.getnames()
        agg = pe(lab, job, 1)
        member = tar.extractfile(f"job{job['id']}/pe{agg['id']}/trace.log")
        assert member is not None and b"_XXXXX_" in member.read()
    assert len(names) == 6  # trace + console of 3 PEs


def test_paging_count_page_next_previous(default_deployment: Lab) -> None:
    lab = default_deployment
    url = f"{lab.rest('dc1')}/operators"
    everything = lab.get(url).json()
    total = everything["total"]
    assert total >= 12
    first = lab.get(url, params={"count": 5}).json()
    assert first["total"] == total and len(first["operators"]) == 5
    assert "previous" not in first and first["next"].endswith("page=2")
    seen = [o["self"] for o in first["operators"]]
    doc = first
    while "next" in doc:
        doc = lab.get(doc["next"]).json()
        assert doc["previous"]
        seen += [o["self"] for o in doc["operators"]]
    assert seen == [o["self"] for o in everything["operators"]]
    last = lab.get(url, params={"count": 5, "page": -1}).json()
    assert last["operators"] == doc["operators"] and "next" not in last
    assert lab.get(url, params={"count": 5, "page": 2, "job.restid": "99999"}).json()["operators"] == []
    assert lab.get(url, params={"count": "x"}).status_code == 400


def test_property_filters(default_deployment: Lab) -> None:
    lab = default_deployment
    job = lab.job("dc1", "orders")
    assert job is not None
    by_job = lab.get(f"{lab.rest('dc1')}/pes", params={"job.restid": job["id"]}).json()["pes"]
    assert [p["id"] for p in by_job] == [p["id"] for p in pes(lab, job)]
    agg = pe(lab, job, 1)
    ops = lab.get(f"{lab.rest('dc1')}/operators", params={"pe.restid": agg["id"]}).json()["operators"]
    names = {o["name"] for o in ops}
    assert "Aggregator" in names and "OrdersXDC.RemoteDataCenterHeartbeatWatchdog" in names
    assert "OrdersIn" not in names and "OrdersOut" not in names
    assert {o["pe"] for o in ops} == {agg["self"]}
    # unknown properties are ignored
    assert lab.get(f"{lab.rest('dc1')}/pes", params={"nosuch": "x"}).json()["total"] >= 3


def test_pe_properties_ports_connections_and_metrics(default_deployment: Lab) -> None:
    lab = default_deployment
    job = lab.job("dc1", "orders")
    assert job is not None
    for doc in pes(lab, job):
        _element(doc, "pe")
        assert doc["status"] in PE_STATUS and doc["statusReason"] in PE_REASON and doc["health"] == "healthy"
        assert isinstance(doc["launchCount"], int) and doc["processId"].isdigit()
        assert doc["restartable"] is True and doc["relocatable"] is False
        assert doc["requiredConnections"] in CONNECTION_HEALTH and doc["optionalConnections"] in CONNECTION_HEALTH
        for key in ("tracingLevel", "pendingTracingLevel", "osCapabilities", "resourceTags", "currentWorkingPath"):
            assert key in doc
        assert "restartPriority" not in doc
        assert "restartPriority" in lab.get(doc["self"], params={"verbose": "true"}).json()
        for link in ("job", "instance", "host", "resource", "resourceAllocation", "operators", "inputPorts",
                     "outputPorts", "connections", "metrics", "applicationTrace", "consoleLog"):
            assert lab.get(doc[link]).status_code == 200, link
        pe_metrics = _metrics(lab, doc["metrics"])
        assert {"nCpuMilliseconds", "nMemoryConsumption", "nResidentMemoryConsumption"} <= set(pe_metrics)
    source, agg, sink = pes(lab, job)
    assert _collection(lab, source["inputPorts"], "inputPorts", "peInputPortList") == []
    ins = _collection(lab, agg["inputPorts"], "inputPorts", "peInputPortList")
    outs = _collection(lab, agg["outputPorts"], "outputPorts", "peOutputPortList")
    assert _collection(lab, sink["outputPorts"], "outputPorts", "peOutputPortList") == []
    for port, rtype in ((ins[0], "peInputPort"), (outs[0], "peOutputPort")):
        _element(port, rtype)
        assert port["indexWithinPE"] == 0 and port["transportType"] and port["id"]
    assert set(_metrics(lab, ins[0]["metrics"])) == {
        "nTuplesProcessed", "nTupleBytesProcessed", "nWindowPunctsProcessed", "nFinalPunctsProcessed"
    }
    assert set(_metrics(lab, outs[0]["metrics"])) == {
        "nTuplesSubmitted", "nTupleBytesSubmitted", "nWindowPunctsSubmitted", "nFinalPunctsSubmitted",
        "nBrokenConnections", "nRequiredConnecting", "nOptionalConnecting", "nTuplesTransmitted",
        "nTupleBytesTransmitted", "nConnections",
    }
    conns = _collection(lab, agg["connections"], "connections", "peConnectionList")
    assert len(conns) == 2
    for conn in conns:
        _element(conn, "peConnection")
        assert conn["required"] is True and conn["status"] == "connected"
        assert set(conn["source"]) == {"job", "pe", "outputPort"} and set(conn["target"]) == {"job", "pe", "inputPort"}
        assert set(_metrics(lab, conn["metrics"])) == {"congestionFactor", "nTuplesFilteredOut"}
        assert lab.get(conn["self"]).json()["id"] == conn["id"]
    assert {c["id"] for c in conns} <= {c["id"] for c in lab.get(job["peConnections"]).json()["connections"]}


def test_operator_properties_ports_and_metrics(default_deployment: Lab) -> None:
    lab = default_deployment
    job = lab.job("dc1", "orders")
    assert job is not None
    ops = _collection(lab, job["operators"], "operators", "operatorList")
    names = {o["name"] for o in ops}
    assert {"OrdersIn", "Aggregator", "OrdersOut", "SpecialMessagePort"} <= names
    # the application's alias for the composite; the parallel region's operators carry their channel
    for suffix in ("HeartbeatSignalGenerator", "HeartbeatMessagePreparer", "CrossDataCenterSender1",
                   "CrossDataCenterSender2[0]", "CrossDataCenterReceiverForHB", "RemoteDataCenterHeartbeatWatchdog",
                   "CrossDataCenterReceiver[0]", "RemoteDCDataMerger"):
        assert f"OrdersXDC.{suffix}" in names
    assert not any(n.startswith("CrossDCFailover.") for n in names)
    for op in ops:
        _element(op, "operator")
        assert op["operatorKind"] and op["logicalName"] and isinstance(op["indexWithinJob"], int)
        for link in ("job", "pe", "host", "resourceAllocation", "inputPorts", "outputPorts", "connections", "metrics"):
            assert lab.get(op[link]).status_code == 200, (op["name"], link)
    agg = next(o for o in ops if o["name"] == "Aggregator")
    assert agg["operatorKind"] == "orders::Aggregator"
    inp = _collection(lab, agg["inputPorts"], "inputPorts", "operatorInputPortList")[0]
    outp = _collection(lab, agg["outputPorts"], "outputPorts", "operatorOutputPortList")[0]
    for port, rtype in ((inp, "operatorInputPort"), (outp, "operatorOutputPort")):
        _element(port, rtype)
        assert port["indexWithinOperator"] == 0 and port["name"] and port["streamName"]
        assert lab.get(port["connections"]).json()["total"] == 1
    assert set(_metrics(lab, inp["metrics"])) == {
        "nTuplesProcessed", "nTuplesDropped", "nTuplesQueued", "nWindowPunctsProcessed", "nFinalPunctsProcessed",
        "nWindowPunctsQueued", "nFinalPunctsQueued", "queueSize", "maxItemsQueued", "recentMaxItemsQueued",
        "recentMaxItemsQueuedInterval", "nEnqueueWaits",
    }
    assert set(_metrics(lab, outp["metrics"])) == {
        "nTuplesSubmitted", "nWindowPunctsSubmitted", "nFinalPunctsSubmitted"
    }
    assert "relativeOperatorCost" in _metrics(lab, agg["metrics"])
    conns = _collection(lab, agg["connections"], "connections", "operatorConnectionList")
    assert {(c["source"]["operator"].rsplit("/", 1)[1], c["target"]["operator"].rsplit("/", 1)[1]) for c in conns} == {
        ("OrdersIn", "Aggregator"), ("Aggregator", "OrdersOut")
    }
    wd = f"{job['operators']}/OrdersXDC.RemoteDataCenterHeartbeatWatchdog"
    rx = f"{job['operators']}/OrdersXDC.CrossDataCenterReceiver[0]"
    assert lab.get(f"{rx}/outputports/0/metrics").status_code == 200
    assert _metrics(lab, f"{wd}/inputports/0/metrics")["nTuplesProcessed"]["value"] >= 1  # heartbeats received
    assert _metrics(lab, f"{wd}/outputports/0/metrics")["nTuplesSubmitted"]["value"] == 1  # one transition: UP


def test_hosts(lab: Lab) -> None:
    hosts = _collection(lab, f"{lab.rest('dc2')}/hosts", "hosts", "hostList")
    assert len(hosts) == 1
    host = hosts[0]
    _element(host, "host")
    assert host["name"] == host["ipAddress"] == host["restid"] == "198.18.2.10"
    assert isinstance(host["processorCount"], int) and host["status"] == "running"
    for key in ("tags", "restrictedTags", "services"):
        assert isinstance(host[key], list)
    for link in ("instance", "jobs", "pes", "metrics"):
        assert lab.get(host[link]).status_code == 200, link
    assert set(_metrics(lab, host["metrics"])) == {
        "nProcessors", "cpuSpeed", "loadAverage", "cpuUtilization", "memoryCapacity", "memoryUtilization",
        "appNetworkCapacity", "appNetworkUtilization",
    }
    assert lab.get(f"{lab.rest('dc2')}/hosts/10.0.0.1").status_code == 404


def test_401_without_or_with_bad_credentials(lab: Lab) -> None:
    for auth in (None, ("streamsadmin", "wrong-password")):
        r = lab.get(f"{lab.rest('dc1')}/jobs", auth=auth)
        assert r.status_code == 401
        assert r.headers["WWW-Authenticate"] == 'Basic realm="streams"'
        assert r.json()["id"] == "CDISW5000E"
    r = lab.get(f"{lab.data('dc1')}", auth=None)
    assert r.status_code == 401


def test_404_error_body(lab: Lab) -> None:
    for url in (
        f"{lab.rest('dc1')}/jobs/99999",
        f"{lab.rest('dc1')}/pes/99999",
        f"{lab.rest('dc1')}/peconnections/o1p0i99p0",
        f"{lab.rest('dc1')}/jobs/1/operators/NoSuchOperator",
        f"{lab.root('dc1')}/instances/streams-nope",
        f"{lab.root('dc1')}/nothing",
    ):
        r = lab.get(url)
        assert r.status_code == 404, url
        body = r.json()
        assert body["id"] == "CDISW5000E" and body["message"].startswith("CDISW5000E ")


def test_submit_conflict_and_unknown_application(default_deployment: Lab) -> None:
    lab = default_deployment
    bundle = lab.upload("dc1", "orders")
    r = lab.post(f"{lab.rest('dc1')}/jobs", json={"application": bundle, "jobName": "orders"})
    assert r.status_code == 409 and r.json()["id"] == "CDISW5000E"  # the job name `orders` is taken
    r = lab.post(f"{lab.rest('dc1')}/jobs", json={"application": bundle, "preview": True})
    assert r.status_code == 200  # no name given: the product's default <main composite>_<job id>
    assert r.json()["name"].startswith("orders::Orders_") and r.json()["applicationName"] == "orders::Orders"
    for bare in ("orders", "orders_standby", "no_such_bundle"):  # a bare name is no bundle (reference §2)
        r = lab.post(f"{lab.rest('dc1')}/jobs", json={"application": bare, "jobName": f"bare_{bare}"})
        assert r.status_code == 404 and r.json()["id"] == "CDISW5000E", bare
    r = lab.post(f"{lab.rest('dc1')}/jobs", json={"jobName": "no_application"})
    assert r.status_code == 400 and r.json()["id"] == "CDISW5000E"
    r = lab.post(f"{lab.rest('dc1')}/jobs", data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["id"] == "CDISW5000E"


def test_bundle_upload_answers_a_bundle_id(lab: Lab) -> None:
    """`POST <instance>/applicationbundles`, `application/x-jar`, raw .sab -> 200 with `bundleId` (reference §2;
    IBM's client: rest_primitives `_StreamsRestDelegator._upload_bundle`)."""
    url = f"{lab.rest('dc1')}/applicationbundles"
    sab = (LAB_DIR / "bundles" / "orders.sab").read_bytes()
    assert zipfile.is_zipfile(io.BytesIO(sab))
    r = lab.post(url, data=sab, headers={"Content-Type": "application/x-jar", "Accept": "application/json"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["application"] == "orders" and isinstance(doc["bundleId"], str) and doc["bundleId"]
    assert doc["bundleId"] not in ("orders", "orders.sab")
    assert lab.upload("dc1", "orders") == doc["bundleId"]  # the same bundle again: the same id
    r = lab.post(url, data=b"not a zip", headers={"Content-Type": "application/x-jar"})
    assert r.status_code == 400 and r.json()["id"] == "CDISW5000E"
    r = lab.post(url, data=sab, headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["id"] == "CDISW5000E"
    assert lab.get(url).status_code == 405
    r = lab.post(f"{lab.rest('dc1')}/jobs", json={"application": "0" * 32, "jobName": "never_uploaded"})
    assert r.status_code == 404 and r.json()["id"] == "CDISW5000E"


def test_submit_by_https_url_of_a_sab(lab: Lab, tmp_path: Path) -> None:
    """The instance downloads an https URL of a .sab (here: served from the root namespace with a certificate
    of the lab CA); http, a non-.sab path and an unreachable URL are refused."""
    base = lab.rest("dc1")
    for bad, status in (
        ("http://198.18.0.1:26443/orders.sab", 400),
        ("https://198.18.0.1:26443/orders.zip", 400),
        ("https://198.18.0.1:1/orders.sab", 404),  # nothing listens there
    ):
        r = lab.post(f"{base}/jobs", json={"application": bad, "jobName": "by_url"})
        assert r.status_code == status and r.json()["id"] == "CDISW5000E", (bad, r.text)
    with _https_bundle_server(tmp_path, "198.18.0.1") as url:
        r = lab.post(f"{base}/jobs", json={"application": f"{url}/orders.sab", **PROBE, "jobName": "by_url"})
        assert r.status_code == 201, r.text
    job = r.json()
    try:
        assert job["applicationName"] == "orders::Orders"
        assert job["applicationPath"].endswith(".sab")
    finally:
        cancel(lab, job)


@contextlib.contextmanager
def _https_bundle_server(tmp: Path, addr: str) -> Iterator[str]:
    """An https file server of the lab's bundles on `addr` with a certificate the lab CA signed (openssl)."""
    key, csr, crt, ext = tmp / "srv.key", tmp / "srv.csr", tmp / "srv.pem", tmp / "ext.cnf"
    ext.write_text(f"subjectAltName=IP:{addr}\n")
    for cmd in (
        ["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
         "-subj", f"/CN={addr}"],
        ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(LAB_DIR / "ca" / "ca.pem"),
         "-CAkey", str(LAB_DIR / "ca" / "ca.key"), "-CAcreateserial", "-CAserial", str(tmp / "ca.srl"),
         "-out", str(crt), "-days", "1", "-extfile", str(ext)],
    ):
        subprocess.run(cmd, check=True, capture_output=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(LAB_DIR / "bundles"))
    server = http.server.ThreadingHTTPServer((addr, 0), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(crt), str(key))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://{addr}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_submit_with_overlay_and_submit_parameters_then_cancel(lab: Lab) -> None:
    body = {
        "application": lab.upload("dc1", "orders"),
        "jobConfigurationOverlay": {
            "jobConfigOverlays": [
                {
                    "jobConfig": {
                        "jobName": "rest_overlay",
                        "jobGroup": "probes",
                        "tracing": "error",
                        "submissionParameters": [{"name": "configFileName", "value": str(PROBE_CFG)}],
                    }
                }
            ]
        },
        "submitParameters": [
            {"name": "specialMessagePort", "value": "26199"},
        ],
    }
    r = lab.post(f"{lab.rest('dc1')}/jobs", json=body)
    assert r.status_code == 201, r.text
    job = r.json()
    try:
        assert job["name"] == "rest_overlay" and job["jobGroup"] == "probes"
        assert job["applicationName"] == "orders::Orders"
        given = {p["name"]: p["value"] for p in job["submitParameters"]}
        assert given["configFileName"] == str(PROBE_CFG) and given["specialMessagePort"] == "26199"
        defaults = {p["name"]: p["defaultValue"] for p in job["submitParameters"]}
        assert defaults["configFileName"] == "" and defaults["fencing"] == "false"
        healthy(lab, job)
        agg = pe(lab, job, 1)
        assert agg["tracingLevel"] == "error"
        assert "_XXXXX_" not in lab.get(agg["applicationTrace"]).text  # info lines filtered at level error
        groups = lab.get(f"{lab.rest('dc1')}/jobgroups").json()["jobGroups"]
        assert {"default", "probes"} <= {g["name"] for g in groups}
    finally:
        assert lab.delete(job["self"]).status_code == 204
    lab.gone(job)
    assert lab.delete(job["self"]).status_code == 404


def test_submit_pes_cancel(lab: Lab) -> None:
    r = lab.post(f"{lab.rest('dc1')}/jobs", json={"application": lab.upload("dc1", "orders"), **PROBE})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["name"] == "rest_probe" and job["applicationName"] == "orders::Orders"
    assert {"configFileName": str(PROBE_CFG)}.items() <= {
        p["name"]: p["value"] for p in job["submitParameters"]
    }.items()

    def running_pes() -> list[dict[str, object]] | None:
        found = lab.get(job["pes"]).json()["pes"]
        return found if found and all(p["status"] == "running" for p in found) else None

    found = wait_until(running_pes, 5, "the probe's PEs to run")
    pids = []
    for doc in found:
        assert doc["resourceType"] == "pe" and doc["launchCount"] == 1 and doc["health"] == "healthy"
        pid = int(str(doc["processId"]))
        os.kill(pid, 0)  # a real, live process
        assert b"lab.pe" in Path(f"/proc/{pid}/cmdline").read_bytes()
        pids.append(pid)
        trace = lab.get(str(doc["applicationTrace"]))
        assert trace.status_code == 200 and trace.headers["Content-Type"].startswith("text/plain")
    r = lab.delete(job["self"])
    assert r.status_code == 204
    lab.gone(job)
    for pid in pids:
        assert not _alive(pid)
    # ground truth: each PE started and stopped, the job submitted and canceled
    assert {e["pid"] for e in events(lab, "pe_started", job)} == set(pids)
    assert {e["pid"] for e in events(lab, "pe_stopped", job)} == set(pids)
    assert events(lab, "job_submitted", job) and events(lab, "job_canceled", job)


def test_application_trace_carries_toolkit_lines(default_deployment: Lab) -> None:
    lab = default_deployment
    job = lab.job("dc1", "orders")
    assert job is not None
    text = lab.get(pe(lab, job, 1)["applicationTrace"]).text
    assert "[Heartbeat-Message-Preparer] _XXXXX_ configuration: configFileName=" in text
    assert "crossDCOperationMode=1(file)" in text
    # the toolkit traces no UP/DOWN line; the application traces the sample application's line
    assert ("[Application_Logic] _XXXXX_ UDP channel -1-->Received a notification about the remote data center "
            "coming up and running normally.") in text
    assert "is UP" not in text and "is DOWN" not in text
    assert "_XXXXX_ Received the heartbeat message" in text
    assert "bytes have been sent to this URL: http://198.18.2.10:25091/crossdcrx/CrossDataCenterReceiverForHB" in text
    stub = lab.standby()
    assert stub is not None
    stub_text = stub["trace"].read_text()
    assert "[RemoteDC-Watchdog] _XXXXX_ Successfully replicated and persisted the data snapshot" in stub_text


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_instance_stop_and_start_with_streamtool(default_deployment: Lab) -> None:
    """`streamtool stopinstance|startinstance` on the DC host (the documented way, issue 11 point 10); the REST
    action behind it is lab-only: not linked from the instance, 404 without the lab's internal header."""
    lab = default_deployment
    job = lab.job("dc1", "orders")
    assert job is not None
    pids = [int(p["processId"]) for p in pes(lab, job)]
    inst0 = lab.get(lab.rest("dc1")).json()
    assert "actions" not in inst0
    r = lab.post(f"{lab.rest('dc1')}/actions", json={"type": "stop"})
    assert r.status_code == 404 and r.json()["id"] == "CDISW5000E"
    try:
        refused = lab.streamtool("dc1", "stopinstance")  # jobs run: needs --force
        assert refused.returncode == 1 and "--force" in refused.stderr
        assert lab.get(lab.rest("dc1")).json()["status"] == "running"
        done = lab.streamtool("dc1", "stopinstance", "--force")
        assert done.returncode == 0, done.stderr
        assert "streams-dc1 instance was stopped" in done.stdout
        inst = lab.get(lab.rest("dc1")).json()
        assert inst["status"] == "stopped"
        assert lab.get(f"{lab.rest('dc1')}/jobs").json()["total"] == 0  # a stopped instance's jobs are gone
        assert lab.get(job["self"]).status_code == 404
        assert not any(_alive(p) for p in pids)
        assert lab.get(lab.data("dc1")).json()["total"] == 0
        r = lab.post(f"{lab.rest('dc1')}/jobs", json={"application": lab.upload("dc1", "orders")})
        assert r.status_code == 409 and r.json()["id"] == "CDISW5000E"
        assert lab.streamtool("dc1", "stopinstance", "--force").returncode == 0  # idempotent
        wait_event(lab, "instance_stopped", dc="dc1")
        started = lab.streamtool("dc1", "startinstance")
        assert started.returncode == 0, started.stderr
        inst2 = lab.get(lab.rest("dc1")).json()
        assert inst2["status"] == "running" and inst2["startTime"] > inst["startTime"]
        wait_event(lab, "instance_started", dc="dc1")
        assert lab.get(f"{lab.rest('dc1')}/jobs").json()["total"] == 0  # start does not bring jobs back
        probe = submit(
            lab, "dc1", "orders", "after_start",
            {"crossDCInitDelay": 3600, "crossDCHttpPort": 26291, "specialMessagePort": 26299},
        )
        healthy(lab, probe)
        cancel(lab, probe)
    finally:
        lab.streamtool("dc1", "startinstance")
        r2 = run_lab("reset")
        assert r2.returncode == 0, r2.stderr


def test_delete_answers_at_once_and_the_job_shows_canceling_until_its_pes_are_gone(lab: Lab) -> None:
    """DELETE -> 204 at once; a real job may still be `canceling` (issue 11 point 12): GET shows it, its name
    stays taken, and only once its PEs are gone does the job answer 404 and the name become free."""
    body = {"application": lab.upload("dc1", "orders"), **PROBE, "jobName": "rest_canceling"}
    r = lab.post(f"{lab.rest('dc1')}/jobs", json=body)
    assert r.status_code == 201, r.text
    job = r.json()
    healthy(lab, job)
    pid = int(pe(lab, job, 0)["processId"])
    os.kill(pid, signal.SIGSTOP)  # a PE that does not stop at once: the instance kills it after its grace
    try:
        assert lab.delete(job["self"]).status_code == 204
        doc = lab.get(job["self"]).json()
        assert doc["status"] == "canceling", doc
        assert pe(lab, job, 0)["status"] == "stopping"
        assert [j["status"] for j in lab.get(f"{lab.rest('dc1')}/jobs").json()["jobs"] if j["id"] == job["id"]] == [
            "canceling"
        ]
        assert lab.delete(job["self"]).status_code == 204  # canceling already
        again = lab.post(f"{lab.rest('dc1')}/jobs", json=body)
        assert again.status_code == 409 and again.json()["id"] == "CDISW5000E"  # the name is still taken
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    lab.gone(job)
    assert not _alive(pid)
    assert events(lab, "job_canceling", job) and events(lab, "job_canceled", job)
    r = lab.post(f"{lab.rest('dc1')}/jobs", json=body)  # re-submission once the old job is gone
    assert r.status_code == 201, r.text
    cancel(lab, r.json())


def test_application_configuration_crud(lab: Lab) -> None:
    """POST the collection, GET/PATCH/DELETE the element's `self` (rest_primitives ApplicationConfiguration);
    stored as appconfigs/<name>.json {"name", "description", "properties"} for the toolkit in the PEs."""
    coll = f"{lab.rest('dc1')}/applicationconfigurations"
    name = "RestProbeConfig"
    stored = LAB_DIR / "dc1" / "appconfigs" / f"{name}.json"
    r = lab.post(coll, json={"name": name, "description": "probe", "properties": {"a": "1", "b": "2"}})
    assert r.status_code == 201, r.text
    doc = r.json()
    try:
        _element(doc, "applicationConfiguration")
        assert doc["name"] == name and doc["description"] == "probe" and doc["properties"] == {"a": "1", "b": "2"}
        assert isinstance(doc["creationTime"], int) and isinstance(doc["lastModifiedTime"], int)
        assert json.loads(stored.read_text()) == {"name": name, "description": "probe",
                                                  "properties": {"a": "1", "b": "2"}}
        listed = _collection(lab, coll, "applicationConfigurations", "applicationConfigurationList")
        assert name in {c["name"] for c in listed}
        assert lab.get(doc["self"]).json()["properties"] == {"a": "1", "b": "2"}
        dup = lab.post(coll, json={"name": name, "properties": {}})
        assert dup.status_code == 409 and dup.json()["id"] == "CDISW5000E"
        r = lab.request("PATCH", doc["self"], json={"properties": {"a": "3", "b": None, "c": "4"}})
        assert r.status_code == 200, r.text
        assert r.json()["properties"] == {"a": "3", "c": "4"} and r.json()["description"] == "probe"
        assert json.loads(stored.read_text())["properties"] == {"a": "3", "c": "4"}
        r = lab.request("PATCH", doc["self"], json={"description": "changed"})
        assert r.json()["description"] == "changed" and r.json()["properties"] == {"a": "3", "c": "4"}
        bad = lab.post(coll, json={"name": "../escape", "properties": {}})
        assert bad.status_code == 400 and bad.json()["id"] == "CDISW5000E"
        assert lab.post(coll, json={"properties": {}}).status_code == 400
    finally:
        assert lab.delete(doc["self"]).status_code == 204
    assert not stored.exists()
    assert lab.get(doc["self"]).status_code == 404
    assert lab.delete(doc["self"]).status_code == 404
    assert lab.request("PATCH", doc["self"], json={"properties": {}}).status_code == 404


def test_streamtool_jobs_on_the_dc_host(lab: Lab) -> None:
    """submitjob uploads the .sab and submits its bundleId with -P parameters; lsjobs lists it; canceljob
    cancels it (issue 11 point 9, the reference failover script's commands)."""
    sab = str(LAB_DIR / "bundles" / "orders.sab")
    out = lab.streamtool("dc2", "submitjob", sab, "--jobname", "st_probe", "-P", f"configFileName={PROBE_CFG}",
                         "-P", "specialMessagePort=26499")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "The following number of applications were submitted to the streams-dc2 instance: 1."
    jid = out.stderr.strip().rsplit(":", 1)[1].strip()
    job = lab.get(f"{lab.rest('dc2')}/jobs/{jid}").json()
    try:
        assert job["name"] == "st_probe" and job["applicationName"] == "orders::Orders"
        given = {p["name"]: p["value"] for p in job["submitParameters"]}
        assert given["configFileName"] == str(PROBE_CFG) and given["specialMessagePort"] == "26499"
        listed = lab.streamtool("dc2", "lsjobs", "--jobnames", "st_probe", "--xheaders")
        assert listed.returncode == 0 and listed.stdout.split()[:2] == [jid, "Running"], listed.stdout
        table = lab.streamtool("dc2", "lsjobs")
        assert table.stdout.splitlines()[0] == "Instance: streams-dc2"
        assert table.stdout.splitlines()[1].split() == ["Id", "State", "Healthy", "User", "Date", "Name", "Group"]
        bad = lab.streamtool("dc2", "submitjob", sab, "-P", "novalue")
        assert bad.returncode == 1 and "<name>=<value>" in bad.stderr
    finally:
        done = lab.streamtool("dc2", "canceljob", jid)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"The following job ID was canceled: {jid}. The job was in the streams-dc2 instance."
    lab.gone(job)
    missing = lab.streamtool("dc2", "canceljob", jid)
    assert missing.returncode == 1 and f"was not found {jid}" in missing.stderr
    # off the DC hosts there is no instance to talk to unless one is named
    off = subprocess.run([str(LAB_DIR / "bin" / "streamtool"), "lsjobs"], capture_output=True, text=True,
                         timeout=60, check=False)
    assert off.returncode == 1 and "DC host" in off.stderr
    named = subprocess.run([str(LAB_DIR / "bin" / "streamtool"), "lsjobs", "-i", "streams-dc1"],
                           capture_output=True, text=True, timeout=60, check=False)
    assert named.returncode == 0 and named.stdout.startswith("Instance: streams-dc1")


def test_streamtool_getnsentry_reads_the_name_service(lab: Lab) -> None:
    """`getnsentry <name> [--jobs ID]` prints `<name> <host>:<port>` per entry of the instance's name service
    (files nameservice/<jobId>.<name>, written by the PE that registers the entry)."""
    d = LAB_DIR / "dc1" / "nameservice"
    d.mkdir(parents=True, exist_ok=True)
    entries = {d / "990001.ProbePort": "198.18.1.10:26999", d / "990002.ProbePort": "198.18.1.10:26998"}
    try:
        for f, value in entries.items():
            f.write_text(value + "\n")
        one = lab.streamtool("dc1", "getnsentry", "ProbePort", "--jobs", "990002")
        assert one.returncode == 0 and one.stdout == "ProbePort 198.18.1.10:26998\n", one
        both = lab.streamtool("dc1", "getnsentry", "ProbePort")
        assert both.stdout.splitlines() == ["ProbePort 198.18.1.10:26999", "ProbePort 198.18.1.10:26998"]
        none = lab.streamtool("dc1", "getnsentry", "ProbePort", "--jobs", "1")
        assert none.returncode == 1 and not none.stdout
        other_dc = lab.streamtool("dc2", "getnsentry", "ProbePort")
        assert other_dc.returncode == 1
    finally:
        for f in entries:
            f.unlink(missing_ok=True)


def test_streamtool_application_configurations(lab: Lab) -> None:
    name = "StProbeConfig"
    try:
        mk = lab.streamtool("dc1", "mkappconfig", name, "--property", "x=1", "--property", "y=2",
                            "--description", "from streamtool")
        assert mk.returncode == 0, mk.stderr
        assert "application configuration was created successfully for the streams-dc1 instance" in mk.stdout
        assert lab.streamtool("dc1", "mkappconfig", name).returncode == 1  # exists
        ch = lab.streamtool("dc1", "chappconfig", name, "--property", "x=3")
        assert ch.returncode == 0, ch.stderr
        got = lab.streamtool("dc1", "getappconfig", name)
        assert got.stdout.splitlines() == ["x=3", "y=2"]
        ls = lab.streamtool("dc1", "lsappconfig")
        assert ls.stdout.splitlines()[0].split()[:4] == ["Id", "Owner", "Created", "Modified"]
        assert any(line.startswith(name) for line in ls.stdout.splitlines())
        doc = lab.get(f"{lab.rest('dc1')}/applicationconfigurations/{name}").json()
        assert doc["description"] == "from streamtool" and doc["properties"] == {"x": "3", "y": "2"}
    finally:
        rm = lab.streamtool("dc1", "rmappconfig", name, "--noprompt")
    assert rm.returncode == 0, rm.stderr
    assert lab.get(f"{lab.rest('dc1')}/applicationconfigurations/{name}").status_code == 404
    assert lab.streamtool("dc1", "chappconfig", name, "--property", "x=1").returncode == 1
