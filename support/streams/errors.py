"""One exception tree for everything that can go wrong talking to a Streams instance.

::

    StreamsError                      url, status, error_id, message (the server's), method
    ├── StreamsConnectionError        no (complete) answer after retries; attempts, last_error, request_sent
    │   └── StreamsTimeout            connect or read timeout
    ├── StreamsAuthError              401 / 403
    ├── StreamsNotFound               404
    ├── StreamsConflict               409
    ├── StreamsApiError               any other 4xx / 5xx, or an answer that is not what the API promises
    └── StreamsLinkRefused            a server-given link to another origin (scheme, host, port): never sent

``request_sent`` tells whether the server may have acted on the request: ``False`` when no connection
could be established (the operation certainly failed), ``True`` when the request went out and no
complete answer came back (a read timeout, a reset): the outcome is unknown.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from support.errors import TransientError

__all__ = [
    "StreamsApiError",
    "StreamsAuthError",
    "StreamsConflict",
    "StreamsConnectionError",
    "StreamsError",
    "StreamsLinkRefused",
    "StreamsNotFound",
    "StreamsTimeout",
    "error_for_status",
    "parse_error_body",
    "safe_url",
]

_MAX_BODY = 300


def safe_url(url: str | None) -> str:
    """``url`` without any ``user:password@`` part, for messages and logs."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


class StreamsError(TransientError):
    """Base class: a request to a Streams service did not do what was asked.

    Transient for :func:`support.waits.wait_until`: the service may answer differently on the next poll."""

    def __init__(
        self,
        text: str,
        *,
        url: str | None = None,
        status: int | None = None,
        error_id: str | None = None,
        message: str | None = None,
        method: str | None = None,
    ) -> None:
        self.text = text
        self.url = safe_url(url) or None
        self.status = status
        self.error_id = error_id
        #: The server's message when it sent one (e.g. ``CDISW5000E ... not found``), else ``text``.
        self.message = message if message is not None else text
        self.method = method
        super().__init__(text)

    def __str__(self) -> str:
        return self.text


class StreamsLinkRefused(StreamsError):
    """A link the server gave (``self``, a collection, an endpoint in a listing) points to another origin than
    the configured URL of that data center: the request is not sent (credentials stay home)."""

    def __init__(self, url: str, expected: str, method: str = "GET") -> None:
        super().__init__(
            f"{method} {safe_url(url)} refused: the link leaves {expected} (the configured origin of this data "
            "center); credentials are sent only there",
            url=url,
            method=method,
        )
        self.expected = expected


class StreamsConnectionError(StreamsError):
    """No (complete) answer: connection refused, DNS, TLS, reset, after the configured retries."""

    def __init__(
        self,
        text: str,
        *,
        url: str | None = None,
        method: str | None = None,
        attempts: int | None = None,
        last_error: str | None = None,
        request_sent: bool = False,
    ) -> None:
        super().__init__(text, url=url, method=method)
        self.attempts = attempts
        self.last_error = last_error
        self.request_sent = request_sent

    @property
    def outcome_unknown(self) -> bool:
        """True when the server may have processed the request (treat the operation as unknown)."""
        return self.request_sent


class StreamsTimeout(StreamsConnectionError):
    """The connect or read timeout expired (``request_sent`` tells which)."""


class StreamsAuthError(StreamsError):
    """401 or 403: the credentials are missing, wrong, or not allowed to do this."""


class StreamsNotFound(StreamsError):
    """404: the resource (instance, job, endpoint...) does not exist (any more)."""


class StreamsConflict(StreamsError):
    """409: e.g. a job with that name is already running."""


class StreamsApiError(StreamsError):
    """Any other error status, or an answer that does not have the promised shape."""


def parse_error_body(body: str | bytes | None) -> tuple[str | None, str | None]:
    """Return ``(error_id, message)`` from a Streams error body, or ``(None, short text)``.

    Understands ``{"id","message"}``, ``{"messages":[{"id","message"}, ...]}`` and
    ``{"errors":[{"message"}, ...]}``.
    """
    if body is None:
        return None, None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text.strip()
    if not text:
        return None, None
    try:
        document: Any = json.loads(text)
    except ValueError:
        return None, _short(text)
    if isinstance(document, dict):
        for key in ("messages", "errors"):
            entries = document.get(key)
            if isinstance(entries, list) and entries and isinstance(entries[0], dict):
                first = entries[0]
                return _opt_str(first.get("id")), _opt_str(first.get("message"))
        if "message" in document or "id" in document:
            return _opt_str(document.get("id")), _opt_str(document.get("message"))
    return None, _short(text)


def _opt_str(value: Any) -> str | None:
    return None if value is None else _short(str(value))


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_BODY else text[: _MAX_BODY - 3] + "..."


_STATUS_CLASSES: dict[int, type[StreamsError]] = {
    401: StreamsAuthError,
    403: StreamsAuthError,
    404: StreamsNotFound,
    409: StreamsConflict,
}


def error_for_status(method: str, url: str, status: int, body: str | bytes | None, reason: str = "") -> StreamsError:
    """The exception for an error answer, e.g. ``GET https://h/x: 404 CDISW5000E job 7 not found``."""
    error_id, message = parse_error_body(body)
    cls = _STATUS_CLASSES.get(status, StreamsApiError)
    detail = message or reason or "no details"
    if error_id and not detail.startswith(error_id):
        detail = f"{error_id} {detail}"
    text = f"{method} {safe_url(url)}: HTTP {status}: {detail}"
    return cls(text, url=url, status=status, error_id=error_id, message=message, method=method)
