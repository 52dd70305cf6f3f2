"""The lab exporter's tracker against a fake REST source: the real exporter's families, labels, the frozen
values of an unhealthy PE, job removal and the tracker reset when the source is lost (reference §4.3)."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from lab import exporter

IURL = "/streams/instances/streams-dc1"
HOST = "198.18.1.10"
BASE: dict[str, Any] = {
    IURL: {"id": "streams-dc1", "status": "running", "health": "healthy", "startTime": 1_700_000_000_000},
    f"{IURL}/hosts": {
        "hosts": [
            {
                "name": HOST,
                "restid": HOST,
                "status": "running",
                "services": ["application", "management"],
                "metrics": f"https://{HOST}:8443{IURL}/hosts/{HOST}/metrics",
            }
        ]
    },
    f"{IURL}/hosts/{HOST}/metrics": {"metrics": [{"name": "cpuUtilization", "value": 5}]},
    f"{IURL}/jobs": {
        "jobs": [{"id": "1", "name": "orders", "health": "healthy", "status": "running", "submitTime": 9}]
    },
    f"{IURL}/pes": {
        "pes": [
            {
                "id": str(n),
                "job": f"{IURL}/jobs/1",
                "indexWithinJob": n - 1,
                "resource": f"{IURL}/hosts/{HOST}",
                "status": "running",
                "health": "healthy",
                "launchCount": 1,
            }
            for n in (1, 2)
        ]
    },
    f"{IURL}/operators": {
        "operators": [
            {"name": "Src", "job": f"{IURL}/jobs/1", "pe": f"{IURL}/pes/1", "operatorKind": "spl.utility::Beacon"},
            {
                "name": "Agg",
                "job": f"{IURL}/jobs/1",
                "pe": f"{IURL}/pes/2",
                "operatorKind": "spl.relational::Aggregate",
            },
        ]
    },
    # the lab's REST lists PE-level tuple counters too: the exporter must not turn them into streams_pe_nTuples*
    f"{IURL}/pes/1/metrics": {
        "metrics": [{"name": "nCpuMilliseconds", "value": 100}, {"name": "nTuplesProcessed", "value": 4}]
    },
    f"{IURL}/pes/2/metrics": {"metrics": [{"name": "nCpuMilliseconds", "value": 50}]},
    f"{IURL}/pes/1/inputports": {"inputPorts": []},
    f"{IURL}/pes/1/outputports": {"outputPorts": [{"indexWithinPE": 0}]},
    f"{IURL}/pes/1/outputports/0/connections": {"connections": [{"id": "o1p0i2p0"}]},
    f"{IURL}/pes/1/outputports/0/metrics": {"metrics": [{"name": "nTuplesSubmitted", "value": 40}]},
    f"{IURL}/peconnections/o1p0i2p0/metrics": {"metrics": [{"name": "congestionFactor", "value": 7}]},
    f"{IURL}/pes/2/inputports": {"inputPorts": [{"indexWithinPE": 0}]},
    f"{IURL}/pes/2/outputports": {"outputPorts": []},
    f"{IURL}/pes/2/inputports/0/metrics": {"metrics": [{"name": "nTuplesProcessed", "value": 40}]},
    f"{IURL}/jobs/1/operators/Src/inputports": {"inputPorts": []},
    f"{IURL}/jobs/1/operators/Src/outputports": {
        "outputPorts": [{"indexWithinOperator": 0, "name": "Src_out0", "streamName": "Orders"}]
    },
    f"{IURL}/jobs/1/operators/Src/outputports/0/metrics": {"metrics": [{"name": "nTuplesSubmitted", "value": 40}]},
    f"{IURL}/jobs/1/operators/Src/metrics": {
        "metrics": [
            {"name": "relativeOperatorCost", "value": 0},
            {"name": "nTuplesSubmitted", "value": 40},
            {"name": "my custom", "value": 3},
        ]
    },
    f"{IURL}/jobs/1/operators/Agg/inputports": {
        "inputPorts": [{"indexWithinOperator": 0, "name": "Agg_in0", "streamName": "Orders"}]
    },
    f"{IURL}/jobs/1/operators/Agg/outputports": {"outputPorts": []},
    f"{IURL}/jobs/1/operators/Agg/inputports/0/metrics": {"metrics": [{"name": "nTuplesProcessed", "value": 40}]},
    f"{IURL}/jobs/1/operators/Agg/metrics": {"metrics": [{"name": "relativeOperatorCost", "value": 0}]},
}


class FakeRest:
    iurl = IURL

    def __init__(self) -> None:
        self.docs = copy.deepcopy(BASE)
        self.down = False

    def get(self, path: str, timeout: float | None = None) -> Any:
        if self.down:
            raise ConnectionRefusedError("connection refused")
        assert path in self.docs, f"unexpected REST call {path}"
        return copy.deepcopy(self.docs[path])

    def close(self) -> None:
        pass


Samples = dict[str, list[tuple[dict[str, str], float]]]
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$")


def parse(body: bytes) -> tuple[set[str], Samples]:
    """(families with # HELP and # TYPE gauge, samples by name)."""
    headers: dict[str, set[str]] = {}
    samples: Samples = {}
    for line in body.decode().splitlines():
        if line.startswith("# "):
            _, what, name, _rest = (line + " ").split(" ", 3)
            headers.setdefault(name, set()).add(what if what == "HELP" else _rest.strip())
            continue
        m = SAMPLE.match(line)
        assert m, line
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        samples.setdefault(m.group(1), []).append((labels, float(m.group(3))))
    families = {n for n, h in headers.items() if h == {"HELP", "gauge"}}
    assert set(samples) <= families
    return families, samples


def collector() -> tuple[exporter.Collector, FakeRest]:
    rest = FakeRest()
    return exporter.Collector("dc1", "pw", rest=rest), rest


def one(samples: Samples, name: str, **match: str) -> float:
    got = [v for labels, v in samples.get(name, []) if all(labels.get(k) == w for k, w in match.items())]
    assert len(got) == 1, (name, match, samples.get(name))
    return got[0]


PE_L = ["instancename", "jobname", "resource", "peid"]
OP_L = [*PE_L, "operatorname", "operatorkind"]
LABELS = {
    "streams_instance_": ["instancename"],
    "streams_job_": ["instancename", "jobname"],
    "streams_pe_op_connection_": [*PE_L, "index", "connectionid"],
    "streams_pe_ip_": [*PE_L, "index"],
    "streams_pe_op_": [*PE_L, "index"],
    "streams_pe_": PE_L,
    "streams_operator_ip_": [*OP_L, "inputportname"],
    "streams_operator_op_": [*OP_L, "outputportname"],
    "streams_operator_": OP_L,
}


def test_families_labels_and_values_of_the_real_exporter() -> None:
    c, _ = collector()
    _, s = parse(c.scrape())
    for name, rows in s.items():
        for labels, _v in rows:
            if name == "streams_resource_role":
                assert list(labels) == ["instancename", "resource", "role"]
            elif name.startswith("streams_resource_"):
                assert list(labels) == ["instancename", "resource"]
            else:
                prefix = next(p for p in LABELS if name.startswith(p))
                assert list(labels) == LABELS[prefix], name
    assert not [n for n in s if n.startswith("streams_pe_nTuples")], "tuple counters are PE port metrics"
    assert "streams_instance_creationTime" not in s
    pe1 = {"jobname": "orders", "peid": "1", "resource": HOST}
    assert one(s, "streams_pe_nCpuMilliseconds", **pe1) == 100
    assert one(s, "streams_pe_op_nTuplesSubmitted", **pe1, index="0") == 40
    assert one(s, "streams_pe_ip_nTuplesProcessed", peid="2", index="0") == 40
    assert one(s, "streams_pe_op_connection_congestionFactor", **pe1, index="0", connectionid="o1p0i2p0") == 7
    assert one(s, "streams_operator_op_nTuplesSubmitted", operatorname="Src", outputportname="Orders") == 40
    assert (
        one(
            s,
            "streams_operator_ip_nTuplesProcessed",
            operatorname="Agg",
            operatorkind="spl.relational::Aggregate",
            inputportname="Orders",
        )
        == 40
    )
    assert one(s, "streams_operator_my_custom", operatorname="Src") == 3
    assert one(s, "streams_operator_relativeOperatorCost", operatorname="Agg") == 0
    assert "streams_operator_nTuplesSubmitted" not in s, "port metrics stay under the ports"
    job = {"jobname": "orders"}
    assert one(s, "streams_job_nCpuMilliseconds", **job) == 150 and one(s, "streams_job_pecount", **job) == 2
    for agg, want in (("sum", 7), ("avg", 7), ("max", 7), ("min", 7)):
        assert one(s, f"streams_job_{agg}_congestionFactor", **job) == want
    assert one(s, "streams_resource_status", resource=HOST) == 1
    assert one(s, "streams_resource_cpuUtilization", resource=HOST) == 5
    assert {r["role"] for r, _ in s["streams_resource_role"]} == {"application", "service"}
    inst = {"instancename": "streams-dc1"}
    assert [one(s, f"streams_instance_{m}", **inst) for m in ("status", "health", "jobCount")] == [1, 1, 1]


def test_a_lost_source_leaves_only_the_last_known_status() -> None:
    c, rest = collector()
    parse(c.scrape())
    rest.down = True
    families, s = parse(c.scrape())
    assert s == {"streams_instance_status": [({"instancename": "streams-dc1"}, 1.0)]}, "last known status, no health"
    assert {"streams_instance_health", "streams_job_health", "streams_pe_ip_nTuplesProcessed"} <= families
    rest.down = False
    _, s = parse(c.scrape())
    assert one(s, "streams_instance_health") == 1 and one(s, "streams_pe_ip_nTuplesProcessed", peid="2") == 40


def test_a_stopped_instance_resets_the_tracker_with_its_new_status() -> None:
    c, rest = collector()
    parse(c.scrape())
    rest.docs[IURL] = {**rest.docs[IURL], "status": "stopped", "health": "unhealthy"}
    rest.docs[f"{IURL}/jobs"] = {"jobs": []}
    _, s = parse(c.scrape())
    assert s == {"streams_instance_status": [({"instancename": "streams-dc1"}, 0.0)]}


def test_a_source_down_from_the_start_reports_status_unknown() -> None:
    c, rest = collector()
    rest.down = True
    _, s = parse(c.scrape())
    assert s == {"streams_instance_status": [({"instancename": "streams-dc1"}, 0.0)]}


def test_an_unhealthy_pe_keeps_its_last_values() -> None:
    c, rest = collector()
    parse(c.scrape())
    rest.docs[f"{IURL}/pes"]["pes"][1].update(health="partiallyUnhealthy", status="running")
    rest.docs[f"{IURL}/pes/2/inputports/0/metrics"] = {"metrics": [{"name": "nTuplesProcessed", "value": 99}]}
    _, s = parse(c.scrape())
    assert one(s, "streams_pe_health", peid="2") == 0.5
    assert one(s, "streams_pe_ip_nTuplesProcessed", peid="2") == 40, "frozen while unhealthy"
    assert one(s, "streams_job_nCpuMilliseconds") == 100, "aggregates over the healthy PEs only"
    rest.docs[f"{IURL}/pes"]["pes"][1]["health"] = "healthy"
    _, s = parse(c.scrape())
    assert one(s, "streams_pe_ip_nTuplesProcessed", peid="2") == 99


def test_a_gone_job_takes_its_series_and_keeps_the_headers() -> None:
    c, rest = collector()
    parse(c.scrape())
    rest.docs[f"{IURL}/jobs"] = {"jobs": []}
    families, s = parse(c.scrape())
    assert not [n for n in s if n.startswith(("streams_job_", "streams_pe_", "streams_operator_"))]
    assert "streams_job_health" in families
    assert one(s, "streams_instance_jobCount") == 0 and one(s, "streams_instance_health") == 1


@pytest.mark.parametrize(
    ("raw", "name"), [("nItemsQueued (Port 2)", "nItemsQueued_Port_2"), ("_x:y", "xy"), ("my custom", "my_custom")]
)
def test_metric_names_are_sanitized_like_the_real_exporter(raw: str, name: str) -> None:
    assert exporter.sanitize(raw) == name
