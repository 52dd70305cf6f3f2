"""The OpenAPI 3 document of a job's data exchange endpoints (`/streams/data/jobs/{j}/openapi.json|.yaml`).

Standard library only.
"""

from __future__ import annotations

import json
from typing import Any

from lab.instance.model import Job


def to_yaml(doc: Any, indent: int = 0) -> str:
    """A small block-style YAML writer (scalars as JSON, which YAML reads) for the OpenAPI documents."""
    pad = "  " * indent
    if isinstance(doc, dict):
        if not doc:
            return pad + "{}\n"
        out = []
        for k, v in doc.items():
            key = json.dumps(str(k))
            if isinstance(v, dict | list) and v:
                out.append(f"{pad}{key}:\n{to_yaml(v, indent + 1)}")
            else:
                out.append(f"{pad}{key}: {json.dumps(v)}\n")
        return "".join(out)
    if isinstance(doc, list):
        if not doc:
            return pad + "[]\n"
        out = []
        for v in doc:
            if isinstance(v, dict | list) and v:
                inner = to_yaml(v, indent + 1)
                out.append(f"{pad}- {inner.lstrip()}")
            else:
                out.append(f"{pad}- {json.dumps(v)}\n")
        return "".join(out)
    return pad + json.dumps(doc) + "\n"


_TRUE = ("true", "1", "yes")


def _sink_setting(job: Job, name: str, default: str) -> str:
    return job.params.get(name, "") or job.app.parameters.get(name, "") or default


def document(job: Job, base: str, instance_id: str) -> dict[str, Any]:
    """The OpenAPI document of `job`'s endpoints, served under `base` (`.../streams/data`).

    It describes exactly what `lab.instance.data` takes and answers: the source POST body (JSON
    `{"items": [tuples]}` or CSV with a header line) and its 200 reply `{"accepted": n}`, the sink GET
    parameter `startTime` and its reply `{"items": [tuples], "buffered": [{"position", "time"}],
    "warning"?}`; the tuple schemas (`InTuple`, `OutTuple`) are the application's (`AppSpec.in_tuple`,
    `out_tuple`).
    """
    tuple_schema = job.app.in_tuple or {"type": "object", "additionalProperties": True}
    out_schema = job.app.out_tuple or {"type": "object", "additionalProperties": True}
    buffered_schema = {
        "type": "object",
        "description": "Where a returned tuple is in the sink's buffer (one entry per tuple of items, same order)",
        "properties": {
            "position": {
                "type": "integer",
                "format": "int64",
                "description": "0, 1, 2, ... in the order tuples reached the sink (restarts with the PE)",
            },
            "time": {
                "type": "integer",
                "format": "int64",
                "description": "epoch milliseconds at which the tuple reached the sink",
            },
        },
        "required": ["position", "time"],
    }
    paths_doc: dict[str, Any] = {}
    prefix = f"/jobs/{job.id}"
    for ep in job.app.endpoints:
        p = f"{prefix}/{ep.operator}/ports/{ep.port}/tuples"
        if ep.kind == "source":
            paths_doc[p] = {
                "post": {
                    "operationId": f"{ep.operator}_{ep.port}_inject",
                    "summary": f"Inject tuples into {ep.operator} port {ep.port}",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "items": {
                                            "type": "array",
                                            "items": {"$ref": "#/components/schemas/InTuple"},
                                        }
                                    },
                                    "required": ["items"],
                                }
                            },
                            "text/csv": {
                                "schema": {"type": "string", "description": "a header line, then one row per tuple"}
                            },
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "the tuples were submitted on the output port",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "accepted": {
                                                "type": "integer",
                                                "description": "how many tuples were submitted",
                                            }
                                        },
                                        "required": ["accepted"],
                                    }
                                }
                            },
                        },
                        "400": {"description": "unreadable body"},
                        "404": {"description": "unknown job or endpoint"},
                        "503": {"description": "operator unreachable"},
                    },
                }
            }
        else:
            consuming = _sink_setting(job, f"{ep.operator}.consumingReads", "false").strip().lower() in _TRUE
            buffer_size = _sink_setting(job, f"{ep.operator}.bufferSize", "1000")
            reads = (
                "returned tuples are removed from the buffer"
                if consuming
                else "returned tuples stay in the buffer and are returned again by later reads"
            )
            paths_doc[p] = {
                "get": {
                    "operationId": f"{ep.operator}_{ep.port}_retrieve",
                    "summary": f"Retrieve buffered tuples of {ep.operator} port {ep.port}",
                    "description": f"bufferSize {buffer_size} (the oldest tuple is dropped when full); "
                    f"consumingReads {str(consuming).lower()}: {reads}",
                    "parameters": [
                        {
                            "name": "startTime",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "format": "int64"},
                            "description": "epoch milliseconds; only the tuples that reached the sink at or "
                            "after it (without it: every buffered tuple)",
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "the buffered tuples, oldest first",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "items": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/OutTuple"},
                                            },
                                            "buffered": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/Buffered"},
                                            },
                                            "warning": {
                                                "type": "string",
                                                "description": "tuples at or after startTime were dropped "
                                                "because the buffer was full",
                                            },
                                        },
                                        "required": ["items", "buffered"],
                                    }
                                }
                            },
                        },
                        "400": {"description": "startTime is not a number"},
                        "404": {"description": "unknown job or endpoint"},
                        "503": {"description": "operator unreachable"},
                    },
                }
            }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": f"{job.name} ({job.app.name}) data exchange",
            "description": f"Endpoints of job {job.id} of the {instance_id} instance",
            "version": job.app.version,
        },
        "servers": [{"url": base}],
        "paths": paths_doc,
        "components": {
            "schemas": {"InTuple": tuple_schema, "OutTuple": out_schema, "Buffered": buffered_schema},
            "securitySchemes": {"authBasic": {"type": "http", "scheme": "basic"}},
        },
        "security": [{"authBasic": []}],
    }
