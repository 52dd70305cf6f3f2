"""The data exchange API of one instance (HTTPS :9715, `/streams/data`): endpoint listing, OpenAPI documents,
tuple injection into source operators and retrieval from sink operators, and the defects that break the
answer to an injection (`refuse-but-deliver`, `lost-ack`).

Standard library only.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from typing import Any
from urllib.parse import unquote

from lab import paths
from lab.apps import EndpointSpec
from lab.instance import openapi
from lab.instance.model import ApiError, DropConnection, Job
from lab.instance.responses import Query, Response, json_response, only
from lab.instance.supervisor import Instance

REFUSE_EVERY = 50  # defect refuse-but-deliver: every 50th processed injection POST is answered 500
LOST_ACK_EVERY = 50  # defect lost-ack: every 50th processed injection POST gets no answer at all ...
LOST_ACK_AT = 25  # ... the 25th, 75th, ... (so that both defects can be on together)


def _columns(schema: dict[str, Any], kind: str) -> tuple[str, ...]:
    """The attributes of the input tuple schema of JSON type `kind` ("integer", "number")."""
    return tuple(name for name, prop in schema.get("properties", {}).items() if prop.get("type") == kind)


def parse_tuples(body: bytes, content_type: str, schema: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The tuples of an injection body; CSV columns the application's input tuple `schema` types as integer or
    number are converted (orders: `seq`, `crc`; `amount`, `sent_at`), the others stay strings."""
    ctype = content_type.split(";")[0].strip().lower()
    text = body.decode("utf-8")
    if ctype in ("text/csv", "application/csv"):
        ints, floats = _columns(schema or {}, "integer"), _columns(schema or {}, "number")
        rows: list[dict[str, Any]] = []
        for row in csv.DictReader(io.StringIO(text)):
            item: dict[str, Any] = dict(row)
            for c in ints:
                if item.get(c) not in (None, ""):
                    item[c] = int(item[c])
            for c in floats:
                if item.get(c) not in (None, ""):
                    item[c] = float(item[c])
            rows.append(item)
        return rows
    doc = json.loads(text)
    items = doc.get("items") if isinstance(doc, dict) else doc
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ValueError("expected {'items': [objects]} or a JSON array of objects")
    return items


class DataApi:
    def __init__(self, inst: Instance) -> None:
        self.inst = inst
        self.base = f"{paths.data_base(inst.dc)}/streams/data"
        self.defects = paths.active_defects()
        self._posts_lock = threading.Lock()
        self.injected_posts = 0  # injection POSTs the source operator took (defects refuse-but-deliver, lost-ack)

    def _endpoint_url(self, job: Job, ep: EndpointSpec) -> str:
        return f"{self.base}/jobs/{job.id}/{ep.operator}/ports/{ep.port}/tuples"

    def _jobs(self) -> list[Job]:
        return [j for j in self.inst.all_jobs() if j.status == "running" and j.app.endpoints]

    def handle(self, method: str, path: str, q: Query, body: bytes, headers: dict[str, str]) -> Response:
        segs = [unquote(s) for s in path.split("/") if s]
        match segs:
            case ["streams", "data"]:
                only(method, "GET")
                docs = [
                    {
                        "jobId": j.id,
                        "jobName": j.name,
                        "applicationName": j.app.main_composite,
                        "status": j.status,
                        "openapi": f"{self.base}/jobs/{j.id}/openapi.json",
                        "openapiYaml": f"{self.base}/jobs/{j.id}/openapi.yaml",
                        "endpoints": [
                            {
                                "operator": e.operator,
                                "port": e.port,
                                "kind": e.kind,
                                "url": self._endpoint_url(j, e),
                            }
                            for e in j.app.endpoints
                        ],
                    }
                    for j in self._jobs()
                ]
                return json_response({"jobs": docs, "total": len(docs)})
            case ["streams", "data", "jobs", j, "openapi.json"]:
                only(method, "GET")
                return json_response(self._openapi(j))
            case ["streams", "data", "jobs", j, "openapi.yaml"]:
                only(method, "GET")
                return Response(200, openapi.to_yaml(self._openapi(j)).encode(), "application/yaml")
            case ["streams", "data", "jobs", j, op, "ports", n, "tuples"]:
                job = self._job(j)
                ep = next((e for e in job.app.endpoints if e.operator == op and str(e.port) == n), None)
                if ep is None:
                    raise ApiError(404, f"The {op} endpoint port {n} does not exist in the {j} job.")
                if ep.kind == "source":
                    only(method, "POST")
                    return self._inject(job, ep, body, headers.get("content-type", "application/json"))
                only(method, "GET")
                return self._retrieve(job, ep, q)
        raise ApiError(404, f"The {path} resource does not exist.")

    def _job(self, j: str) -> Job:
        job = self.inst.job(j)
        if job.status != "running" or not job.app.endpoints:
            raise ApiError(404, f"The {j} job has no data exchange endpoints.")
        return job

    def _openapi(self, j: str) -> dict[str, Any]:
        return openapi.document(self._job(j), self.base, self.inst.id)

    def _inject(self, job: Job, ep: EndpointSpec, body: bytes, ctype: str) -> Response:
        try:
            items = parse_tuples(body, ctype, job.app.in_tuple)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"The request body cannot be read: {exc}") from exc
        try:
            reply = self.inst.pe_request(job.pes[ep.pe_index], {"cmd": "inject", "items": items}, timeout=10.0)
        except (OSError, ValueError) as exc:
            raise ApiError(503, f"The {ep.operator} operator cannot be reached: {exc}") from exc
        if "error" in reply:
            raise ApiError(503, f"The {ep.operator} operator failed: {reply['error']}")
        self._defective_answer(ep)
        return json_response({"accepted": reply.get("accepted", len(items))})

    def _defective_answer(self, ep: EndpointSpec) -> None:
        """Defects that break the answer to an injection the operator has already taken."""
        if not self.defects & {"refuse-but-deliver", "lost-ack"}:
            return
        with self._posts_lock:
            self.injected_posts += 1
            n = self.injected_posts
        if "refuse-but-deliver" in self.defects and n % REFUSE_EVERY == 0:
            raise ApiError(500, f"The {ep.operator} operator could not accept the tuples: an internal error occurred.")
        if "lost-ack" in self.defects and n % LOST_ACK_EVERY == LOST_ACK_AT:
            raise DropConnection()

    def _retrieve(self, job: Job, ep: EndpointSpec, q: Query) -> Response:
        msg: dict[str, Any] = {"cmd": "fetch"}
        if q.get("startTime"):
            try:
                msg["startTime"] = int(float(q["startTime"][0]))
            except ValueError as exc:
                raise ApiError(400, f"startTime is not a number: {exc}") from exc
        try:
            reply = self.inst.pe_request(job.pes[ep.pe_index], msg, timeout=10.0)
        except (OSError, ValueError) as exc:
            raise ApiError(503, f"The {ep.operator} operator cannot be reached: {exc}") from exc
        if "error" in reply:
            raise ApiError(503, f"The {ep.operator} operator failed: {reply['error']}")
        return json_response(reply)
