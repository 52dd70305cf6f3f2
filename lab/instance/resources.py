"""The REST resource documents of one instance (reference §1; Teracloud 7.2 paths, no `/rest`): URLs,
documents and metric lists. `lab.instance.rest.RestApi` routes requests to them.

Standard library only.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from lab import crossdc, paths
from lab.apps import OperatorSpec, StreamSpec
from lab.instance.hoststats import HostStats, proc_stats
from lab.instance.model import PE, Job, now_ms
from lab.instance.responses import Elements, Response, json_response
from lab.instance.store import Bundle
from lab.instance.supervisor import Instance

#: path segments of the input and output ports of PEs and operators
PE_IN = "inputports"
PE_OUT = "outputports"

_METRIC_DESCRIPTIONS: dict[str, str] = {
    "nTuplesProcessed": "Number of tuples processed",
    "nTuplesDropped": "Number of tuples dropped",
    "nTuplesQueued": "Number of tuples queued",
    "nTuplesSubmitted": "Number of tuples submitted",
    "nCpuMilliseconds": "CPU time used by the PE, in milliseconds",
    "nResidentMemoryConsumption": "Resident memory of the PE, in KB",
    "nMemoryConsumption": "Virtual memory of the PE, in KB",
    "nTupleBytesProcessed": "Number of tuple bytes processed",
    "nTupleBytesSubmitted": "Number of tuple bytes submitted",
    "nBrokenConnections": "Number of broken connections",
    "nConnections": "Number of active connections",
    "congestionFactor": "Congestion factor of the connection (0-100)",
    "relativeOperatorCost": "Relative cost of the operator within its PE",
}


class Resources:
    """The resource documents of one instance, with the URLs they link by."""

    def __init__(self, inst: Instance) -> None:
        self.inst = inst
        self.base = paths.rest_base(inst.dc)
        self.iurl = f"{self.base}/streams/instances/{inst.id}"
        self.host_stats = HostStats(f"xdc-d{inst.dc[-1]}")

    # -------------------------------------------------------------- URLs
    def job_url(self, job: Job) -> str:
        return f"{self.iurl}/jobs/{job.id}"

    def pe_url(self, pe: PE) -> str:
        return f"{self.iurl}/pes/{pe.id}"

    def op_url(self, job: Job, op: OperatorSpec | str) -> str:
        name = op if isinstance(op, str) else op.name
        return f"{self.job_url(job)}/operators/{quote(name, safe='')}"

    def host_url(self) -> str:
        return f"{self.iurl}/hosts/{self.inst.addr}"

    def alloc_url(self) -> str:
        return f"{self.iurl}/resourceallocations/{self.inst.addr}"

    # -------------------------------------------------------------- documents
    def instance_doc(self) -> dict[str, Any]:
        i = self.inst
        u = self.iurl
        return {
            "self": u,
            "restid": i.id,
            "resourceType": "instance",
            "id": i.id,
            "status": i.status,
            "health": i.health(),
            "owner": paths.USER,
            "creationTime": i.creation_time,
            "creationUser": paths.USER,
            "startTime": i.start_time,
            "startedBy": paths.USER,
            "productVersion": paths.PRODUCT_VERSION,
            "activeVersion": {
                "productName": paths.PRODUCT_NAME,
                "productVersion": paths.PRODUCT_VERSION,
                "architecture": "x86_64",
                "fullProductVersion": paths.PRODUCT_VERSION,
                "buildVersion": "lab",
                "editionName": "Lab Edition",
            },
            "jobs": f"{u}/jobs",
            "pes": f"{u}/pes",
            "operators": f"{u}/operators",
            "hosts": f"{u}/hosts",
            "views": f"{u}/views",
            "exportedStreams": f"{u}/exportedstreams",
            "importedStreams": f"{u}/importedstreams",
            "operatorConnections": f"{u}/operatorconnections",
            "peConnections": f"{u}/peconnections",
            "resourceAllocations": f"{u}/resourceallocations",
            "activeServices": f"{u}/activeservices",
            "applicationConfigurations": f"{u}/applicationconfigurations",
            "jobGroups": f"{u}/jobgroups",
        }

    def job_doc(self, job: Job) -> dict[str, Any]:
        u = self.job_url(job)
        app = job.app
        return {
            "self": u,
            "restid": job.id,
            "resourceType": "job",
            "id": job.id,
            "name": job.name,
            "applicationName": app.main_composite,
            "applicationVersion": app.version,
            "applicationPath": job.bundle_path or str(paths.bundles_dir() / f"{app.name}.sab"),
            "applicationScope": "Default",
            "adlFile": f"output/{app.main_composite.replace('::', '.')}.adl",
            "dataPath": str(paths.LAB_DIR / self.inst.dc / "data"),
            "outputPath": str(paths.LAB_DIR / self.inst.dc / "output" / job.id),
            "status": job.status,
            "health": self.inst.job_health(job),
            "jobGroup": job.group,
            "startedBy": paths.USER,
            "submitTime": job.submit_time,
            "submitParameters": self._submit_parameters(job),
            "instance": self.iurl,
            "pes": f"{u}/pes",
            "operators": f"{u}/operators",
            "hosts": f"{u}/hosts",
            "views": f"{u}/views",
            "operatorConnections": f"{u}/operatorconnections",
            "peConnections": f"{u}/peconnections",
            "resourceAllocations": f"{u}/resourceallocations",
            "applicationLogTrace": f"{u}/applicationlogtrace",
        }

    def _submit_parameters(self, job: Job) -> list[dict[str, Any]]:
        given = {p["name"]: p["value"] for p in job.submit_params}
        names = list(job.app.parameters) + [n for n in given if n not in job.app.parameters]
        dc_defaults = crossdc.dc_defaults(self.inst.dc)
        out = []
        for name in names:
            default = job.app.parameters.get(name, "") or dc_defaults.get(name, "")
            value = given.get(name, default)
            out.append(
                {
                    "name": name,
                    "value": value,
                    "values": [value],
                    "defaultValue": default,
                    "composite": job.app.main_composite,
                    "parameterKind": "named",
                    "required": False,
                }
            )
        return out

    def pe_doc(self, pe: PE, verbose: bool = False) -> dict[str, Any]:
        u = self.pe_url(pe)
        inst = self.inst
        doc: dict[str, Any] = {
            "self": u,
            "restid": pe.id,
            "resourceType": "pe",
            "id": pe.id,
            "indexWithinJob": pe.index,
            "status": pe.status,
            "statusReason": pe.status_reason,
            "health": inst.pe_health(pe),
            "launchCount": pe.launch_count,
            "processId": str(pe.pid) if pe.pid is not None and pe.status not in ("stopped", "restarting") else "",
            "relocatable": False,
            "restartable": True,
            "requiredConnections": inst.pe_required_connections(pe),
            "optionalConnections": "connected",
            "tracingLevel": pe.job.tracing,
            "pendingTracingLevel": pe.job.tracing,
            "osCapabilities": [],
            "resourceTags": [],
            "currentWorkingPath": str(pe.dir),
            "job": self.job_url(pe.job),
            "instance": self.iurl,
            "host": self.host_url(),
            "resource": self.host_url(),
            "resourceAllocation": self.alloc_url(),
            "operators": f"{u}/operators",
            "inputPorts": f"{u}/inputports",
            "outputPorts": f"{u}/outputports",
            "connections": f"{u}/connections",
            "metrics": f"{u}/metrics",
            "applicationTrace": f"{u}/applicationTrace",
            "consoleLog": f"{u}/consoleLog",
        }
        if verbose:
            doc["restartPriority"] = 0
        return doc

    def op_doc(self, job: Job, op: OperatorSpec) -> dict[str, Any]:
        u = self.op_url(job, op)
        return {
            "self": u,
            "restid": op.name,
            "resourceType": "operator",
            "name": op.name,
            "logicalName": op.name,
            "operatorKind": op.kind,
            "indexWithinJob": job.app.operators.index(op),
            "job": self.job_url(job),
            "pe": self.pe_url(job.pe_of(op)),
            "host": self.host_url(),
            "resourceAllocation": self.alloc_url(),
            "inputPorts": f"{u}/inputports",
            "outputPorts": f"{u}/outputports",
            "connections": f"{u}/connections",
            "metrics": f"{u}/metrics",
        }

    def op_port_doc(self, job: Job, op: OperatorSpec, kind: str, n: int) -> dict[str, Any]:
        u = f"{self.op_url(job, op)}/{kind}/{n}"
        stream = job.app.stream_in(op.name, n) if kind == PE_IN else job.app.stream_out(op.name, n)
        return {
            "self": u,
            "restid": str(n),
            "resourceType": "operatorInputPort" if kind == PE_IN else "operatorOutputPort",
            "name": stream,
            "streamName": stream,
            "indexWithinOperator": n,
            "operator": self.op_url(job, op),
            "connections": f"{u}/connections",
            "metrics": f"{u}/metrics",
        }

    def pe_ports(self, pe: PE, kind: str) -> int:
        """Number of PE input (output) ports: the lab's PEs have at most one of each."""
        links = pe.job.app.downstream
        if kind == PE_IN:
            return 1 if pe.index in links.values() else 0
        return 1 if pe.index in links else 0

    def pe_port_doc(self, pe: PE, kind: str, n: int) -> dict[str, Any]:
        u = f"{self.pe_url(pe)}/{kind}/{n}"
        return {
            "self": u,
            "restid": str(n),
            "resourceType": "peInputPort" if kind == PE_IN else "peOutputPort",
            "id": f"{pe.id}{'i' if kind == PE_IN else 'o'}{n}",
            "indexWithinPE": n,
            "transportType": "TCP",
            "pe": self.pe_url(pe),
            "connections": f"{u}/connections",
            "metrics": f"{u}/metrics",
        }

    def conn_doc(self, src: PE, dst: PE) -> dict[str, Any]:
        cid = f"o{src.id}p0i{dst.id}p0"
        u = f"{self.iurl}/peconnections/{cid}"
        return {
            "self": u,
            "restid": cid,
            "resourceType": "peConnection",
            "id": cid,
            "required": True,
            "status": self.inst.connection_status(src, dst),
            "metrics": f"{u}/metrics",
            "source": {"job": self.job_url(src.job), "pe": self.pe_url(src), "outputPort": 0},
            "target": {"job": self.job_url(dst.job), "pe": self.pe_url(dst), "inputPort": 0},
        }

    def _pe_conn_elements(self, pes: list[PE] | None = None) -> Elements:
        out: Elements = []
        for job in self.inst.all_jobs():
            for src, dst in job.pe_links():
                if pes is None or src in pes or dst in pes:
                    out.append((self.conn_doc(src, dst), {"job.restid": job.id}))
        return out

    def opconn_doc(self, job: Job, s: StreamSpec) -> dict[str, Any]:
        cid = f"{job.id}.{s.src}.o{s.src_port}.{s.dst}.i{s.dst_port}"
        src, dst = self.op_url(job, s.src), self.op_url(job, s.dst)
        return {
            "self": f"{self.iurl}/operatorconnections/{quote(cid, safe='')}",
            "restid": cid,
            "resourceType": "operatorConnection",
            "id": cid,
            "streamName": s.name,
            "job": self.job_url(job),
            "source": {"operator": src, "outputPort": f"{src}/outputports/{s.src_port}"},
            "target": {"operator": dst, "inputPort": f"{dst}/inputports/{s.dst_port}"},
        }

    def _opconn_elements(self, jobs: list[Job]) -> Elements:
        return [
            (self.opconn_doc(job, s), {"job.restid": job.id, "source.operator": s.src, "target.operator": s.dst})
            for job in jobs
            for s in job.app.streams
        ]

    def host_doc(self) -> dict[str, Any]:
        a = self.inst.addr
        u = self.host_url()
        return {
            "self": u,
            "restid": a,
            "resourceType": "host",
            "name": a,
            "ipAddress": a,
            "processorCount": os.cpu_count() or 1,
            "status": "running" if self.inst.status == "running" else "stopped",
            "tags": ["application", "management"],
            "restrictedTags": [],
            "services": ["application", "management", "dataExchange"],
            "instance": self.iurl,
            "jobs": f"{u}/jobs",
            "pes": f"{u}/pes",
            "metrics": f"{u}/metrics",
        }

    def alloc_doc(self) -> dict[str, Any]:
        u = self.alloc_url()
        return {
            "self": u,
            "restid": self.inst.addr,
            "resourceType": "resourceAllocation",
            "applicationResource": True,
            "schedulerStatus": "schedulable",
            "status": "running" if self.inst.status == "running" else "stopped",
            "resource": self.host_url(),
            "instance": self.iurl,
            "jobs": f"{self.host_url()}/jobs",
            "pes": f"{self.host_url()}/pes",
        }

    def services(self) -> list[dict[str, Any]]:
        out = []
        for name, url in (
            ("management", f"{self.base}/streams/resources"),
            ("dataExchange", f"{paths.data_base(self.inst.dc)}/streams/data"),
        ):
            out.append(
                {
                    "self": f"{self.iurl}/activeservices/{name}",
                    "restid": name,
                    "resourceType": "activeService",
                    "name": name,
                    "host": self.host_url(),
                    "status": "running",
                    "url": url,
                    "instance": self.iurl,
                }
            )
        return out

    def appconfig_doc(self, cfg: dict[str, Any]) -> dict[str, Any]:
        name = str(cfg["name"])
        return {
            "self": f"{self.iurl}/applicationconfigurations/{quote(name, safe='')}",
            "restid": name,
            "resourceType": "applicationConfiguration",
            "name": name,
            "description": cfg["description"],
            "properties": cfg["properties"],
            "owner": paths.USER,
            "creationTime": cfg["creationTime"],
            "lastModifiedTime": cfg["lastModifiedTime"],
            "lastModifiedBy": paths.USER,
            "instance": self.iurl,
        }

    def bundle_doc(self, bundle: Bundle) -> dict[str, Any]:
        return {
            "bundleId": bundle.id,
            "application": bundle.app.name,
            "applicationVersion": bundle.app.version,
            "mainComposite": bundle.app.main_composite,
            "resourceType": "applicationBundle",
            "instance": self.iurl,
        }

    def job_group_doc(self, name: str) -> dict[str, Any]:
        return {
            "self": f"{self.iurl}/jobgroups/{quote(name, safe='')}",
            "restid": name,
            "resourceType": "jobGroup",
            "name": name,
            "instance": self.iurl,
            "jobs": f"{self.iurl}/jobs?jobGroup={quote(name, safe='')}",
        }

    # -------------------------------------------------------------- metrics
    def metric_list(self, owner: str, items: list[tuple[str, int, str]]) -> Response:
        t = now_ms()
        return json_response(
            {
                "metrics": [
                    {
                        "name": n,
                        "description": _METRIC_DESCRIPTIONS.get(n, n),
                        "value": int(v),
                        "metricKind": kind,
                        "metricType": "system",
                        "lastTimeRetrieved": t,
                        "resourceType": "metric",
                    }
                    for n, v, kind in items
                ],
                "total": len(items),
                "resourceType": "metricList",
                "owner": owner,
            }
        )

    def op_port_metrics(self, job: Job, op: OperatorSpec, kind: str) -> list[tuple[str, int, str]]:
        counters = self.inst.pe_counters(job.pe_of(op)).get("operators", {}).get(op.name, {})
        if kind == PE_IN:
            return [
                ("nTuplesProcessed", counters.get("in", 0), "counter"),
                ("nTuplesDropped", counters.get("dropped", 0), "counter"),
                ("nTuplesQueued", counters.get("queued", 0), "gauge"),
                ("nWindowPunctsProcessed", 0, "counter"),
                ("nFinalPunctsProcessed", 0, "counter"),
                ("nWindowPunctsQueued", 0, "gauge"),
                ("nFinalPunctsQueued", 0, "gauge"),
                ("queueSize", 0, "gauge"),
                ("maxItemsQueued", 0, "gauge"),
                ("recentMaxItemsQueued", 0, "gauge"),
                ("recentMaxItemsQueuedInterval", 0, "time"),
                ("nEnqueueWaits", 0, "counter"),
            ]
        return [
            ("nTuplesSubmitted", counters.get("out", 0), "counter"),
            ("nWindowPunctsSubmitted", 0, "counter"),
            ("nFinalPunctsSubmitted", 0, "counter"),
        ]

    def pe_port_metrics(self, pe: PE, kind: str) -> list[tuple[str, int, str]]:
        c = self.inst.pe_counters(pe).get("ports", {})
        if kind == PE_IN:
            return [
                ("nTuplesProcessed", c.get("in_tuples", 0), "counter"),
                ("nTupleBytesProcessed", c.get("in_bytes", 0), "counter"),
                ("nWindowPunctsProcessed", 0, "counter"),
                ("nFinalPunctsProcessed", 0, "counter"),
            ]
        conns = [(s, d) for s, d in pe.job.pe_links() if s is pe]
        connected = sum(1 for s, d in conns if self.inst.connection_status(s, d) == "connected")
        return [
            ("nTuplesSubmitted", c.get("out_tuples", 0), "counter"),
            ("nTupleBytesSubmitted", c.get("out_bytes", 0), "counter"),
            ("nWindowPunctsSubmitted", 0, "counter"),
            ("nFinalPunctsSubmitted", 0, "counter"),
            ("nBrokenConnections", c.get("broken", 0), "counter"),
            ("nRequiredConnecting", len(conns) - connected, "gauge"),
            ("nOptionalConnecting", 0, "gauge"),
            ("nTuplesTransmitted", c.get("out_tuples", 0), "counter"),
            ("nTupleBytesTransmitted", c.get("out_bytes", 0), "counter"),
            ("nConnections", connected, "gauge"),
        ]

    def pe_metrics(self, pe: PE) -> list[tuple[str, int, str]]:
        counters = self.inst.pe_counters(pe).get("pe", {})
        alive = pe.status not in ("stopped",)
        cpu, rss, vsz = proc_stats(pe.pid if alive else None)
        return [
            ("nCpuMilliseconds", cpu, "counter"),
            ("nResidentMemoryConsumption", rss, "gauge"),
            ("nMemoryConsumption", vsz, "gauge"),
            ("nTuplesProcessed", counters.get("nTuplesProcessed", 0), "counter"),
            ("nTuplesSubmitted", counters.get("nTuplesSubmitted", 0), "counter"),
        ]
