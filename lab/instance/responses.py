"""HTTP responses of the instance service's APIs: JSON documents, errors, collection envelopes with field
selection, filters and paging (reference §1.3).

Standard library only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

from lab.instance.model import ApiError


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_response(doc: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(doc, separators=(",", ":")).encode())


def error_response(status: int, text: str) -> Response:
    return json_response({"id": "CDISW5000E", "message": f"CDISW5000E {text}"}, status)


Query = dict[str, list[str]]
_RESERVED_QUERY = {"fields", "count", "page", "listFields", "verbose"}
_KEEP = ("self", "restid", "resourceType")
Elements = list[tuple[dict[str, Any], dict[str, Any]]]


def _wanted(q: Query, *names: str) -> set[str] | None:
    vals = [v for n in names for v in q.get(n, [])]
    if not vals:
        return None
    return {f.strip() for v in vals for f in v.split(",") if f.strip()}


def pick_fields(doc: dict[str, Any], q: Query, *names: str) -> dict[str, Any]:
    wanted = _wanted(q, *(names or ("fields",)))
    if wanted is None:
        return doc
    return {k: v for k, v in doc.items() if k in wanted or k in _KEEP}


def _int_param(q: Query, name: str) -> int | None:
    if not q.get(name):
        return None
    try:
        return int(q[name][0])
    except ValueError as exc:
        raise ApiError(400, f"The {name} query parameter is not an integer: {q[name][0]!r}") from exc


def collection(url: str, key: str, rtype: str, elements: Elements, q: Query) -> Response:
    """A collection envelope: property filters, `fields`/`listFields`, `count`+`page` paging with `next`/`previous`.

    Filters compare an element property (or a pseudo property such as `job.restid` given in the element's
    extras) with a comma-separated list of values; unknown properties are ignored (reference §1.3).
    """
    filters = {k: {x for v in vals for x in v.split(",")} for k, vals in q.items() if k not in _RESERVED_QUERY}
    matched: list[dict[str, Any]] = []
    for doc, extra in elements:
        ok = True
        for k, allowed in filters.items():
            if k in extra:
                value = extra[k]
            elif k in doc and not isinstance(doc[k], dict | list):
                value = doc[k]
            else:
                continue  # unknown property: ignored
            sval = str(value).lower() if isinstance(value, bool) else str(value)
            if sval not in allowed:
                ok = False
                break
        if ok:
            matched.append(pick_fields(doc, q, "fields", "listFields"))
    out: dict[str, Any] = {key: matched, "total": len(matched), "resourceType": rtype}
    count = _int_param(q, "count")
    if count is not None:
        if count < 1:
            raise ApiError(400, f"The count query parameter must be at least 1, not {count}.")
        pages = max(1, math.ceil(len(matched) / count))
        page = _int_param(q, "page") or 1
        if page == -1:
            page = pages
        if page < 1:
            raise ApiError(400, f"The page query parameter must be 1 or more, or -1 for the last page, not {page}.")
        out[key] = matched[(page - 1) * count : page * count]

        def page_url(n: int) -> str:
            query = {k: v for k, v in q.items() if k != "page"}
            query["page"] = [str(n)]
            return f"{url}?{urlencode(query, doseq=True)}"

        if page < pages:
            out["next"] = page_url(page + 1)
        if page > 1:
            out["previous"] = page_url(min(page - 1, pages))
    return json_response(out)


class Api(Protocol):
    def handle(self, method: str, path: str, q: Query, body: bytes, headers: dict[str, str]) -> Response: ...


def only(method: str, *allowed: str) -> None:
    """405 unless the request method is one of `allowed`."""
    if method not in allowed:
        raise ApiError(405, f"The {method} method is not supported for this resource.")
