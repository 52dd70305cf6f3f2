"""Request and reply shapes of data exchange endpoints, read from the OpenAPI document a job publishes.

Nothing public fixes the body of an injection, its reply, the sink's start-time parameter or the shape of
a retrieval (streams-interfaces.md §3 marks them unknown): every job publishes an OpenAPI document (JSON;
"Swagger" 2.0 in 5.x), and these shapes are taken from it.

Rules (documented in docs/spec/lab-contract.md, "Data exchange"):

- **Source POST body**: the JSON media type of the request body when it has one (else CSV when offered).
  A schema of type ``array`` means a bare JSON array of tuples; an object schema means an object whose
  (first) array property holds the tuples.
- **Source reply**: every 2xx is acceptance of the whole batch. When the documented 2xx JSON reply is an
  object with an integer property, that property (when present in a reply) counts the accepted tuples.
- **Sink GET**: the query parameter whose name contains ``start`` or ``since`` (``startTime`` preferred;
  else the only query parameter of format ``date-time`` or ``int64``) takes the start time, as epoch
  milliseconds (integer schema) or ISO 8601 (string schema). Without one, reads ask for everything.
- **Sink reply**: a bare array of tuples, or an object whose array properties are the tuples and,
  optionally, buffer marks: an array whose items are objects of integer properties only, one of them a
  time (its name or description says "time"), the other the tuple's position. A string property is a
  warning to log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

__all__ = [
    "DEFAULT_SINK",
    "DEFAULT_SOURCE",
    "SinkShape",
    "SourceShape",
    "endpoint_operation",
    "sink_shape",
    "source_shape",
]


@dataclass(frozen=True)
class SourceShape:
    """How to POST a batch: ``content_type`` (JSON or CSV), ``wrapper`` (the property that holds the tuples
    in a JSON object; None: a bare JSON array) and ``count`` (the reply property counting accepted tuples,
    None when the reply documents none)."""

    content_type: str = "application/json"
    wrapper: str | None = None
    count: str | None = None
    csv: bool = False  # the service takes text/csv too


@dataclass(frozen=True)
class SinkShape:
    """How to GET tuples: ``start`` (the start-time query parameter, None: none), ``start_format``
    (``ms`` or ``iso``), ``items`` (the reply property holding the tuples; None: the reply is a bare array),
    ``marks`` with ``position``/``time`` (the parallel array of buffer marks and its two properties; None:
    the service does not say where a tuple is in its buffer) and ``warning`` (a string property)."""

    start: str | None = None
    start_format: str = "ms"
    items: str | None = None
    marks: str | None = None
    position: str | None = None
    time: str | None = None
    warning: str | None = None


#: used for a job that publishes no OpenAPI document (logged): the body shape the 5.x samples show
DEFAULT_SOURCE = SourceShape(wrapper="items")
DEFAULT_SINK = SinkShape(start="startTime", items="items", warning="warning")


def _resolve(doc: Mapping[str, Any], schema: Any, depth: int = 0) -> dict[str, Any]:
    """``schema`` with local ``$ref`` followed and ``allOf`` merged (properties and type)."""
    if not isinstance(schema, Mapping) or depth > 20:
        return {}
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = doc
        for part in ref[2:].split("/"):
            node = node.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(node, Mapping) else None
        return _resolve(doc, node, depth + 1)
    out = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema.get("allOf") or ():
        sub = _resolve(doc, part, depth + 1)
        out.setdefault("type", sub.get("type"))
        out["properties"] = {**(sub.get("properties") or {}), **(out.get("properties") or {})}
    if "properties" in out and "type" not in out:
        out["type"] = "object"
    return out


def _properties(doc: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    props = schema.get("properties") or {}
    return {str(name): _resolve(doc, prop) for name, prop in props.items() if isinstance(prop, Mapping)}


def _media_schema(node: Mapping[str, Any], prefer: str = "application/json") -> tuple[str, Any] | None:
    """(media type, schema) of an OpenAPI 3 request body or response (``content``), or of a Swagger 2
    response or body parameter (``schema``)."""
    content = node.get("content")
    if isinstance(content, Mapping):
        for media, entry in content.items():
            if str(media).split(";")[0].strip().lower() == prefer and isinstance(entry, Mapping):
                return str(media), entry.get("schema")
        for media, entry in content.items():
            if "json" in str(media).lower() and isinstance(entry, Mapping):
                return str(media), entry.get("schema")
        return None
    if "schema" in node:
        return "application/json", node.get("schema")
    return None


def _template_regex(path: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}/]+\})", path)
    return re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + "/?$")


def endpoint_operation(doc: Mapping[str, Any], doc_url: str, endpoint_url: str, method: str
                       ) -> Mapping[str, Any] | None:
    """The operation ``method`` of the path item that serves ``endpoint_url`` (matched on the URL path:
    the document's server URL, resolved against ``doc_url``, joined with each path template)."""
    wanted = urlsplit(endpoint_url).path.rstrip("/")
    paths = doc.get("paths")
    if not isinstance(paths, Mapping):
        return None
    prefixes: list[str] = []
    for server in doc.get("servers") or ():
        if isinstance(server, Mapping) and isinstance(server.get("url"), str):
            prefixes.append(urlsplit(urljoin(doc_url, server["url"])).path.rstrip("/"))
    if isinstance(doc.get("basePath"), str):  # Swagger 2
        prefixes.append(str(doc["basePath"]).rstrip("/"))
    prefixes = prefixes or [""]
    candidates: list[tuple[int, Mapping[str, Any]]] = []
    for template, item in paths.items():
        if not isinstance(item, Mapping):
            continue
        op = item.get(method.lower())
        if not isinstance(op, Mapping):
            continue
        full = [_template_regex(prefix + str(template)) for prefix in prefixes]
        if any(rx.match(wanted) for rx in full):
            return op
        if _template_regex(str(template)).search(wanted):  # a server URL this client cannot place
            candidates.append((len(str(template)), op))
    return max(candidates, key=lambda c: c[0])[1] if candidates else None


def _two_xx(op: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    responses = op.get("responses") or {}
    return [r for code, r in sorted(responses.items(), key=lambda kv: str(kv[0]))
            if str(code).startswith("2") and isinstance(r, Mapping)]


def source_shape(doc: Mapping[str, Any], op: Mapping[str, Any]) -> SourceShape:
    """The POST shape of a source operation (see the module docstring)."""
    body: Mapping[str, Any] | None = op.get("requestBody") if isinstance(op.get("requestBody"), Mapping) else None
    if body is None:  # Swagger 2: a body parameter
        body = next((p for p in op.get("parameters") or () if isinstance(p, Mapping) and p.get("in") == "body"),
                    None)
    content = body.get("content") if body is not None else None
    offers_csv = isinstance(content, Mapping) and any("csv" in str(m).lower() for m in content)
    media = _media_schema(body) if body is not None else None
    if media is None:
        if offers_csv:
            return SourceShape(content_type="text/csv", csv=True, count=_count_property(doc, op))
        return SourceShape(count=_count_property(doc, op))
    content_type, raw = media
    schema = _resolve(doc, raw)
    wrapper: str | None = None
    if schema.get("type") != "array":
        arrays = [name for name, prop in _properties(doc, schema).items() if prop.get("type") == "array"]
        wrapper = arrays[0] if arrays else None
    return SourceShape(content_type=content_type, wrapper=wrapper, count=_count_property(doc, op), csv=offers_csv)


def _count_property(doc: Mapping[str, Any], op: Mapping[str, Any]) -> str | None:
    for response in _two_xx(op):
        media = _media_schema(response)
        if media is None:
            continue
        props = _properties(doc, _resolve(doc, media[1]))
        ints = [name for name, prop in props.items() if prop.get("type") == "integer"]
        if ints:
            return ints[0]
    return None


def sink_shape(doc: Mapping[str, Any], op: Mapping[str, Any]) -> SinkShape:
    """The GET shape of a sink operation (see the module docstring)."""
    start, start_format = None, "ms"
    params = [p for p in op.get("parameters") or () if isinstance(p, Mapping)]
    params = [_resolve(doc, p) if "$ref" in p else dict(p) for p in params]
    query = [p for p in params if p.get("in") == "query" and p.get("name")]
    named = [p for p in query if any(w in str(p["name"]).lower() for w in ("start", "since"))]
    if not named:  # else the only query parameter that holds a time
        timed = [p for p in query if _resolve(doc, p.get("schema") or p).get("format") in ("date-time", "int64")]
        named = timed if len(timed) == 1 else []
    if named:
        chosen = next((p for p in named if p.get("name") == "startTime"), named[0])
        start = str(chosen["name"])
        schema = _resolve(doc, chosen.get("schema") or chosen)  # Swagger 2 puts type on the parameter
        if schema.get("type") == "string":
            start_format = "iso"
    items = marks = position = time_key = warning = None
    for response in _two_xx(op):
        media = _media_schema(response)
        if media is None:
            continue
        schema = _resolve(doc, media[1])
        if schema.get("type") == "array":
            break
        for name, prop in _properties(doc, schema).items():
            if prop.get("type") == "string" and warning is None:
                warning = name
            if prop.get("type") != "array":
                continue
            element = _resolve(doc, prop.get("items"))
            found = _marks(doc, element)
            if found is not None and marks is None:
                marks, (position, time_key) = name, found
            elif items is None:
                items = name
        break
    return SinkShape(start=start, start_format=start_format, items=items, marks=marks, position=position,
                     time=time_key, warning=warning)


def _marks(doc: Mapping[str, Any], element: Mapping[str, Any]) -> tuple[str, str] | None:
    """(position, time) property names when ``element`` is a buffer mark: exactly two integer properties,
    one of them a time."""
    props = _properties(doc, element)
    if len(props) != 2 or any(p.get("type") != "integer" for p in props.values()):
        return None
    timed = [n for n, p in props.items() if "time" in n.lower() or "time" in str(p.get("description", "")).lower()]
    if len(timed) != 1:
        return None
    other = next(n for n in props if n != timed[0])
    return other, timed[0]
