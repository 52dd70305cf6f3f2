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


def document(job: Job, base: str, instance_id: str) -> dict[str, Any]:
    """The OpenAPI document of `job`'s endpoints, served under `base` (`.../streams/data`)."""
    tuple_schema = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "key": {"type": "string"},
            "seq": {"type": "integer", "format": "int64"},
            "amount": {"type": "number", "format": "double"},
            "sent_at": {"type": "number", "format": "double"},
            "crc": {"type": "integer", "format": "int64"},
        },
        "additionalProperties": True,
    }
    out_schema = {
        "allOf": [
            {"$ref": "#/components/schemas/InTuple"},
            {
                "type": "object",
                "properties": {
                    "dc": {"type": "string"},
                    "count_for_key": {"type": "integer", "format": "int64"},
                    "sum_for_key": {"type": "number", "format": "double"},
                    "processed_at": {"type": "number", "format": "double"},
                },
            },
        ]
    }
    paths_doc: dict[str, Any] = {}
    prefix = f"/jobs/{job.id}"
    for ep in job.app.endpoints:
        p = f"{prefix}/{ep.operator}/ports/{ep.port}/tuples"
        if ep.kind == "source":
            paths_doc[p] = {
                "post": {
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
                                }
                            },
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "accepted",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {"accepted": {"type": "integer"}},
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
            paths_doc[p] = {
                "get": {
                    "summary": f"Retrieve buffered tuples of {ep.operator} port {ep.port}",
                    "parameters": [
                        {
                            "name": "startTime",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "format": "int64"},
                            "description": "epoch milliseconds; only tuples buffered at or after it",
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "tuples",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "items": {
                                                "type": "array",
                                                "items": {"$ref": "#/components/schemas/OutTuple"},
                                            },
                                            "warning": {"type": "string"},
                                        },
                                    }
                                }
                            },
                        },
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
            "schemas": {"InTuple": tuple_schema, "OutTuple": out_schema},
            "securitySchemes": {"authBasic": {"type": "http", "scheme": "basic"}},
        },
        "security": [{"authBasic": []}],
    }
