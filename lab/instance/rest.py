"""The REST management API of one instance (reference §1; Teracloud 7.2 paths, no `/rest`): routing, bundle
upload, job submission by bundle, job cancel, application configuration CRUD, and the lab-only instance actions
behind `streamtool stopinstance|startinstance`. The documents come from `lab.instance.resources`.

Standard library only.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from lab import clock
from lab.instance.model import PE, ApiError, Job, now_ms
from lab.instance.resources import PE_IN, PE_OUT, Resources
from lab.instance.responses import Elements, Query, Response, collection, json_response, only, pick_fields
from lab.peruntime import TRACE_LEVELS

#: LAB-ONLY request header that opens the instance actions to the lab's `streamtool` stand-in
LAB_INTERNAL_HEADER = "X-Xdc-Lab-Internal"
#: content types an upload of a bundle may carry (IBM's client sends application/x-jar)
BUNDLE_CONTENT_TYPES = frozenset({"application/x-jar", "application/octet-stream", "application/zip"})


def _tail(path: Path, limit: int = 1 << 20) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - limit))
            return f.read()
    except FileNotFoundError:
        return b""


class RestApi(Resources):
    """The REST management API of one instance."""

    # -------------------------------------------------------------- routing
    def handle(self, method: str, path: str, q: Query, body: bytes, headers: dict[str, str]) -> Response:
        segs = [unquote(s) for s in path.split("/") if s]
        if segs[:1] != ["streams"]:
            raise ApiError(404, f"The {path} resource does not exist.")
        match segs[1:]:
            case ["resources"]:
                only(method, "GET")
                return json_response(
                    {"resources": [{"name": "instances", "resource": f"{self.base}/streams/instances"}]}
                )
            case ["instances"]:
                only(method, "GET")
                url = f"{self.base}/streams/instances"
                return collection(url, "instances", "instanceList", [(self.instance_doc(), {})], q)
            case ["instances", iid, *rest]:
                if iid != self.inst.id:
                    raise ApiError(404, f"The {iid} instance does not exist.")
                return self._instance(method, rest, q, body, headers)
        raise ApiError(404, f"The {path} resource does not exist.")

    def _instance(self, method: str, rest: list[str], q: Query, body: bytes, headers: dict[str, str]) -> Response:
        inst = self.inst
        if rest == ["jobs"] and method == "POST":
            return self._submit(body)
        if rest == ["applicationbundles"]:
            only(method, "POST")
            return self._upload(body, headers)
        if rest == ["actions"]:
            if method == "POST" and headers.get(LAB_INTERNAL_HEADER.lower()) == "streamtool":
                return self._action(body)
            raise ApiError(404, f"The /actions resource does not exist in the {inst.id} instance.")
        if len(rest) == 2 and rest[0] == "jobs" and method == "DELETE":
            job = inst.job(rest[1])
            inst.cancel_async(job)
            return Response(204)
        if rest[:1] == ["applicationconfigurations"] and (method != "GET" or len(rest) == 2):
            return self._appconfig(method, rest[1:], q, body)
        only(method, "GET")
        u = self.iurl
        verbose = (q.get("verbose") or ["false"])[0].lower() == "true"
        match rest:
            case []:
                return json_response(pick_fields(self.instance_doc(), q))
            case ["jobs"]:
                elems: Elements = [(self.job_doc(j), {}) for j in inst.all_jobs()]
                return collection(f"{u}/jobs", "jobs", "jobList", elems, q)
            case ["jobs", j, *more]:
                return self._job(inst.job(j), more, q, verbose)
            case ["pes"]:
                elems = [(self.pe_doc(p, verbose), self._pe_extra(p)) for p in inst.all_pes()]
                return collection(f"{u}/pes", "pes", "peList", elems, q)
            case ["pes", p, *more]:
                return self._pe(inst.pe(p), more, q, verbose)
            case ["operators"]:
                elems = [e for j in inst.all_jobs() for e in self._ops(j)]
                return collection(f"{u}/operators", "operators", "operatorList", elems, q)
            case ["hosts"]:
                return collection(f"{u}/hosts", "hosts", "hostList", [(self.host_doc(), {})], q)
            case ["hosts", h, *more]:
                if h != inst.addr:
                    raise ApiError(404, f"The {h} host does not exist in the {inst.id} instance.")
                return self._host(more, q, verbose)
            case ["resourceallocations"]:
                return collection(
                    f"{u}/resourceallocations", "resourceAllocations", "resourceAllocationList",
                    [(self.alloc_doc(), {})], q,
                )
            case ["resourceallocations", h]:
                if h != inst.addr:
                    raise ApiError(404, f"The {h} resource allocation does not exist in the {inst.id} instance.")
                return json_response(pick_fields(self.alloc_doc(), q))
            case ["peconnections"]:
                return collection(f"{u}/peconnections", "connections", "peConnectionList", self._pe_conn_elements(), q)
            case ["peconnections", c, *more]:
                return self._pe_connection(c, more, q)
            case ["operatorconnections"]:
                elems = self._opconn_elements(inst.all_jobs())
                return collection(f"{u}/operatorconnections", "connections", "operatorConnectionList", elems, q)
            case ["operatorconnections", c]:
                for doc, _ in self._opconn_elements(inst.all_jobs()):
                    if doc["restid"] == c:
                        return json_response(pick_fields(doc, q))
                raise ApiError(404, f"The {c} operator connection does not exist in the {inst.id} instance.")
            case ["views"]:
                return collection(f"{u}/views", "views", "viewList", [], q)
            case ["exportedstreams"]:
                return collection(f"{u}/exportedstreams", "exportedStreams", "exportedStreamList", [], q)
            case ["importedstreams"]:
                return collection(f"{u}/importedstreams", "importedStreams", "importedStreamList", [], q)
            case ["applicationconfigurations"]:
                elems = [(self.appconfig_doc(c), {}) for c in inst.appconfigs.all()]
                return collection(
                    f"{u}/applicationconfigurations", "applicationConfigurations", "applicationConfigurationList",
                    elems, q,
                )
            case ["activeservices"]:
                elems = [(s, {}) for s in self.services()]
                return collection(f"{u}/activeservices", "activeServices", "activeServiceList", elems, q)
            case ["activeservices", name]:
                found = next((s for s in self.services() if s["restid"] == name), None)
                if found is None:
                    raise ApiError(404, f"The {name} service does not exist in the {inst.id} instance.")
                return json_response(pick_fields(found, q))
            case ["jobgroups"]:
                groups = sorted({"default", *(j.group for j in inst.all_jobs())})
                elems = [(self.job_group_doc(g), {}) for g in groups]
                return collection(f"{u}/jobgroups", "jobGroups", "jobGroupList", elems, q)
            case ["jobgroups", g]:
                if g != "default" and g not in {j.group for j in inst.all_jobs()}:
                    raise ApiError(404, f"The {g} job group does not exist in the {inst.id} instance.")
                return json_response(pick_fields(self.job_group_doc(g), q))
        raise ApiError(404, f"The /{'/'.join(rest)} resource does not exist in the {inst.id} instance.")

    def _pe_extra(self, pe: PE) -> dict[str, Any]:
        return {"job.restid": pe.job.id, "host.restid": self.inst.addr, "resource.restid": self.inst.addr}

    def _ops(self, job: Job) -> Elements:
        return [
            (self.op_doc(job, op), {"job.restid": job.id, "pe.restid": job.pe_of(op).id, "host.restid": self.inst.addr})
            for op in job.app.operators
        ]

    def _job(self, job: Job, more: list[str], q: Query, verbose: bool) -> Response:
        u = self.job_url(job)
        match more:
            case []:
                return json_response(pick_fields(self.job_doc(job), q))
            case ["pes"]:
                elems = [(self.pe_doc(p, verbose), self._pe_extra(p)) for p in job.pes]
                return collection(f"{u}/pes", "pes", "peList", elems, q)
            case ["operators"]:
                return collection(f"{u}/operators", "operators", "operatorList", self._ops(job), q)
            case ["operators", name, *tail]:
                return self._operator(job, name, tail, q)
            case ["hosts"]:
                return collection(f"{u}/hosts", "hosts", "hostList", [(self.host_doc(), {})], q)
            case ["resourceallocations"]:
                return collection(
                    f"{u}/resourceallocations", "resourceAllocations", "resourceAllocationList",
                    [(self.alloc_doc(), {})], q,
                )
            case ["peconnections"]:
                return collection(
                    f"{u}/peconnections", "connections", "peConnectionList", self._pe_conn_elements(job.pes), q
                )
            case ["operatorconnections"]:
                elems = self._opconn_elements([job])
                return collection(f"{u}/operatorconnections", "connections", "operatorConnectionList", elems, q)
            case ["views"]:
                return collection(f"{u}/views", "views", "viewList", [], q)
            case ["applicationlogtrace"]:
                return Response(200, self._log_trace_archive(job), "application/x-compressed",
                                {"Content-Disposition": f'attachment; filename="job{job.id}-logtrace.tar.gz"'})
        raise ApiError(404, f"The resource does not exist on the {job.id} job.")

    def _log_trace_archive(self, job: Job) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for pe in job.pes:
                for fname in ("trace.log", "console.log"):
                    data = _tail(pe.dir / fname)
                    info = tarfile.TarInfo(f"job{job.id}/pe{pe.id}/{fname}")
                    info.size = len(data)
                    info.mtime = int(clock.now())
                    tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    def _pe(self, pe: PE, more: list[str], q: Query, verbose: bool) -> Response:
        u = self.pe_url(pe)
        match more:
            case []:
                return json_response(pick_fields(self.pe_doc(pe, verbose), q))
            case ["operators"]:
                ops = [e for e in self._ops(pe.job) if e[1]["pe.restid"] == pe.id]
                return collection(f"{u}/operators", "operators", "operatorList", ops, q)
            case ["metrics"]:
                return self.metric_list(u, self.pe_metrics(pe))
            case ["connections"]:
                elems: Elements = self._pe_conn_elements([pe])
                return collection(f"{u}/connections", "connections", "peConnectionList", elems, q)
            case [("inputports" | "outputports") as kind]:
                key = "inputPorts" if kind == PE_IN else "outputPorts"
                rtype = "peInputPortList" if kind == PE_IN else "peOutputPortList"
                elems = [(self.pe_port_doc(pe, kind, n), {}) for n in range(self.pe_ports(pe, kind))]
                return collection(f"{u}/{kind}", key, rtype, elems, q)
            case [("inputports" | "outputports") as kind, n, *tail]:
                if not n.isdigit() or int(n) >= self.pe_ports(pe, kind):
                    raise ApiError(404, f"The port {n} does not exist on the {pe.id} processing element.")
                if tail == []:
                    return json_response(pick_fields(self.pe_port_doc(pe, kind, int(n)), q))
                if tail == ["metrics"]:
                    return self.metric_list(f"{u}/{kind}/{n}", self.pe_port_metrics(pe, kind))
                if tail == ["connections"]:
                    links = [(s, d) for s, d in pe.job.pe_links() if (s is pe if kind == PE_OUT else d is pe)]
                    elems = [(self.conn_doc(s, d), {}) for s, d in links]
                    return collection(f"{u}/{kind}/{n}/connections", "connections", "peConnectionList", elems, q)
            case ["applicationTrace" | "consoleLog"]:
                fname = "trace.log" if more[0] == "applicationTrace" else "console.log"
                return Response(200, _tail(pe.dir / fname), "text/plain; charset=utf-8")
        raise ApiError(404, f"The resource does not exist on the {pe.id} processing element.")

    def _host(self, more: list[str], q: Query, verbose: bool) -> Response:
        u = self.host_url()
        match more:
            case []:
                return json_response(pick_fields(self.host_doc(), q))
            case ["metrics"]:
                return self.metric_list(u, self.host_stats.metrics())
            case ["jobs"]:
                elems: Elements = [(self.job_doc(j), {}) for j in self.inst.all_jobs()]
                return collection(f"{u}/jobs", "jobs", "jobList", elems, q)
            case ["pes"]:
                elems = [(self.pe_doc(p, verbose), self._pe_extra(p)) for p in self.inst.all_pes()]
                return collection(f"{u}/pes", "pes", "peList", elems, q)
        raise ApiError(404, f"The resource does not exist on the {self.inst.addr} host.")

    def _pe_connection(self, cid: str, more: list[str], q: Query) -> Response:
        for job in self.inst.all_jobs():
            for src, dst in job.pe_links():
                doc = self.conn_doc(src, dst)
                if doc["restid"] != cid:
                    continue
                if more == []:
                    return json_response(pick_fields(doc, q))
                if more == ["metrics"]:
                    return self.metric_list(
                        doc["self"], [("congestionFactor", 0, "gauge"), ("nTuplesFilteredOut", 0, "counter")]
                    )
        raise ApiError(404, f"The {cid} PE connection does not exist in the {self.inst.id} instance.")

    def _operator(self, job: Job, name: str, more: list[str], q: Query) -> Response:
        op = job.operator(name)
        if op is None:
            raise ApiError(404, f"The {name} operator does not exist in the {job.id} job.")
        u = self.op_url(job, op)
        match more:
            case []:
                return json_response(pick_fields(self.op_doc(job, op), q))
            case ["metrics"]:
                # operator-level metrics, followed (a lab convenience) by the metrics of port 0 of each kind
                items: list[tuple[str, int, str]] = [("relativeOperatorCost", 0, "gauge")]
                if op.inputs:
                    items += self.op_port_metrics(job, op, PE_IN)
                if op.outputs:
                    items += self.op_port_metrics(job, op, PE_OUT)
                return self.metric_list(u, items)
            case ["connections"]:
                elems = [
                    e for e in self._opconn_elements([job])
                    if op.name in (e[1]["source.operator"], e[1]["target.operator"])
                ]
                return collection(f"{u}/connections", "connections", "operatorConnectionList", elems, q)
            case [("inputports" | "outputports") as kind]:
                n_ports = op.inputs if kind == PE_IN else op.outputs
                key = "inputPorts" if kind == PE_IN else "outputPorts"
                rtype = "operatorInputPortList" if kind == PE_IN else "operatorOutputPortList"
                elems = [(self.op_port_doc(job, op, kind, n), {}) for n in range(n_ports)]
                return collection(f"{u}/{kind}", key, rtype, elems, q)
            case [("inputports" | "outputports") as kind, n, *tail]:
                n_ports = op.inputs if kind == PE_IN else op.outputs
                if not n.isdigit() or int(n) >= n_ports:
                    raise ApiError(404, f"The port {n} does not exist on the {op.name} operator.")
                if tail == []:
                    return json_response(pick_fields(self.op_port_doc(job, op, kind, int(n)), q))
                if tail == ["metrics"]:
                    return self.metric_list(f"{u}/{kind}/{n}", self.op_port_metrics(job, op, kind))
                if tail == ["connections"]:
                    side = "target.operator" if kind == PE_IN else "source.operator"
                    port_key = "inputPort" if kind == PE_IN else "outputPort"
                    port_url = f"{u}/{kind}/{n}"
                    end = "target" if kind == PE_IN else "source"
                    elems = [
                        e
                        for e in self._opconn_elements([job])
                        if e[1][side] == op.name and e[0][end][port_key] == port_url
                    ]
                    return collection(f"{port_url}/connections", "connections", "operatorConnectionList", elems, q)
        raise ApiError(404, f"The resource does not exist on the {op.name} operator.")

    # -------------------------------------------------------------- application configurations
    def _appconfig(self, method: str, rest: list[str], q: Query, body: bytes) -> Response:
        """POST the collection creates (201); GET, PATCH (200) and DELETE (204) address an element by its name
        (`self`), as IBM's client does (`rest_primitives.ApplicationConfiguration`)."""
        store = self.inst.appconfigs
        if not rest:
            only(method, "POST")
            return json_response(self.appconfig_doc(store.create(_json_object(body))), 201)
        if len(rest) != 1:
            raise ApiError(404, f"The /applicationconfigurations/{'/'.join(rest)} resource does not exist.")
        name = rest[0]
        only(method, "GET", "PATCH", "PUT", "DELETE")
        if method == "GET":
            return json_response(pick_fields(self.appconfig_doc(store.get(name)), q))
        if method == "DELETE":
            store.delete(name)
            return Response(204)
        return json_response(self.appconfig_doc(store.update(name, _json_object(body))))

    # -------------------------------------------------------------- bundles and jobs
    def _upload(self, body: bytes, headers: dict[str, str]) -> Response:
        """`POST <instance>/applicationbundles` with the raw .sab (`application/x-jar`) -> 200 `{"bundleId"}`."""
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in BUNDLE_CONTENT_TYPES:
            raise ApiError(415, f"The content type {ctype or '(none)'} is not supported: send the .sab file as "
                                "application/x-jar.")
        bundle = self.inst.bundles.add(body)
        return json_response(self.bundle_doc(bundle), 200)

    def _action(self, body: bytes) -> Response:
        """LAB-ONLY: `POST .../instances/{i}/actions {"type": "stop" | "start" | "restartpe", "pe": id}` with the header
        `X-Xdc-Lab-Internal: streamtool` -> 200 + instance. Not part of the real API (a real instance is stopped
        and started with `streamtool stopinstance|startinstance` on a host); the lab's `streamtool` stand-in
        uses it, nothing else should. Without the header the path answers 404 like any unknown resource."""
        try:
            doc = json.loads(body or b"{}")
            kind = str(doc.get("type", "")) if isinstance(doc, dict) else ""
        except ValueError as exc:
            raise ApiError(400, f"The request body is not valid JSON: {exc}") from exc
        if kind == "stop":
            self.inst.stop()
        elif kind == "start":
            self.inst.start()
        elif kind == "restartpe":
            self.inst.restart_pe(self.inst.pe(str(doc.get("pe", ""))))
        else:
            raise ApiError(400, f"The action type {kind!r} is not supported: use stop, start or restartpe.")
        return json_response(self.instance_doc())

    def _submit(self, body: bytes) -> Response:
        doc = _json_object(body)
        application = str(doc.get("application") or "")
        if not application:
            raise ApiError(400, "The submission names no application: give a bundleId or an https URL of a .sab.")
        bundle = self.inst.bundles.resolve(application)
        app = bundle.app
        name = ""  # none given: the instance names the job <main composite>_<job id>, as the product does
        group = str(doc.get("jobGroup") or "default")
        tracing = "info"
        given: list[dict[str, str]] = []
        try:
            overlays = (doc.get("jobConfigurationOverlay") or {}).get("jobConfigOverlays") or []
            for ov in overlays:
                jc = ov.get("jobConfig") or {}
                name = str(jc.get("jobName") or name)
                group = str(jc.get("jobGroup") or group)
                tracing = str(jc.get("tracing") or tracing)
                given += [
                    {"name": str(p["name"]), "value": str(p["value"])} for p in jc.get("submissionParameters") or []
                ]
            given += [{"name": str(p["name"]), "value": str(p["value"])} for p in doc.get("submitParameters") or []]
        except (AttributeError, KeyError, TypeError) as exc:
            raise ApiError(400, f"The job configuration overlay is not valid: {exc}") from exc
        if tracing not in TRACE_LEVELS:
            raise ApiError(400, f"The tracing level {tracing!r} is not valid: use one of {', '.join(TRACE_LEVELS)}.")
        if doc.get("jobName"):
            name = str(doc["jobName"])
        params = {p["name"]: p["value"] for p in given}
        if doc.get("preview") is True:
            name = name or f"{app.main_composite}_{self.inst.next_job}"
            if any(j.name == name for j in self.inst.all_jobs()):
                raise ApiError(409, f"A job with the name {name} already exists in the {self.inst.id} instance.")
            preview = Job("", name, app, params, given, now_ms(), group=group, tracing=tracing, status="constructed")
            return json_response({"name": name, "applicationName": app.main_composite, "jobGroup": group,
                                  "submitParameters": self._submit_parameters(preview), "preview": True}, 200)
        job = self.inst.submit(app, name, params, given, group=group, tracing=tracing, bundle_path=str(bundle.path))
        return json_response(self.job_doc(job), 201)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body or b"{}")
    except ValueError as exc:
        raise ApiError(400, f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ApiError(400, "The request body is not a JSON object.")
    return doc
