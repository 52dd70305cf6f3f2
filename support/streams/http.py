"""HTTP plumbing shared by the REST management and data exchange clients.

- :func:`make_session` builds one long-lived ``requests.Session`` per target: Basic or Bearer auth, TLS
  verified against a CA bundle (never disabled), proxies and ``.netrc`` from the environment ignored,
  and a urllib3 :class:`RetryPolicy`: connection-establishment errors are retried for every method (the
  request never left), 5xx answers only for idempotent methods, read errors never (the server may have
  acted).
- :func:`request` sends one request with an explicit timeout and turns transport errors and error
  statuses into the :mod:`support.streams.errors` tree.

Credentials stay home: a session made with ``home=`` (the configured URL of the data center) sends requests
only to that origin (scheme, host and port), and attaches its auth only to them (:class:`HomeOnlyAuth`). A link
the server gave that points elsewhere (a ``self`` or collection link of the REST API, an endpoint URL of the
data exchange listing, a redirect) raises :class:`StreamsLinkRefused` before anything is sent, and each
refusal is told to the session's ``on_link_refused`` listeners (the run journals it as ``link.refused``).

Tests inject a transport: pass ``adapter=`` (mounted on ``https://`` and ``http://``). An injected
``HTTPAdapter`` gets the session's retry policy, so the real urllib3 retry logic runs over it.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Collection, Mapping
from itertools import takewhile
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from requests.auth import AuthBase, HTTPBasicAuth
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from support.config.loader import section_defaults
from support.config.settings import AuthSettings, HttpSettings, build_http_settings
from support.streams.errors import (
    StreamsApiError,
    StreamsConnectionError,
    StreamsLinkRefused,
    StreamsTimeout,
    error_for_status,
    safe_url,
)
from support.units import format_seconds

__all__ = [
    "IDEMPOTENT_METHODS",
    "STATUS_FORCELIST",
    "BasicAuth",
    "BearerAuth",
    "HomeOnlyAuth",
    "HomeSession",
    "HttpSettings",
    "RetryPolicy",
    "Timeout",
    "auth_from_config",
    "default_http_settings",
    "json_body",
    "make_retry",
    "make_session",
    "origin",
    "request",
]

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
STATUS_FORCELIST = (500, 502, 503, 504)
BACKOFF_MAX = 30.0
USER_AGENT = "streams-failover-tester/0.1"
#: Connections kept per host by one client.
POOL_SIZE = 10
_ATTEMPTS_ATTR = "failover_tester_attempts"

Timeout = float | tuple[float, float]


class RetryPolicy(Retry):
    """urllib3 ``Retry`` with a plain exponential backoff and an attempt count on the final error.

    The first retry waits ``backoff_factor`` seconds, each further retry twice as long (urllib3's own
    formula skips the first pause). When retrying stops, the raised error carries the number of attempts
    made, so messages can say what was tried.
    """

    def get_backoff_time(self) -> float:
        consecutive = len(list(takewhile(lambda h: h.redirect_location is None, reversed(self.history))))
        if consecutive == 0:
            return 0.0
        return float(min(self.backoff_max, self.backoff_factor * 2 ** (consecutive - 1)))

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        try:
            return super().increment(method, url, response, error, _pool, _stacktrace)
        except Exception as exc:
            setattr(exc, _ATTEMPTS_ATTR, len(self.history) + 1)
            raise


def make_retry(retries: int, backoff: float) -> RetryPolicy:
    """The retry policy: ``retries`` attempts after the first, first pause ``backoff`` s, doubling."""
    return RetryPolicy(
        total=retries,
        connect=retries,
        read=0,
        status=retries,
        other=0,  # e.g. TLS verification failures: retrying cannot help
        status_forcelist=STATUS_FORCELIST,
        allowed_methods=IDEMPOTENT_METHODS,
        backoff_factor=backoff,
        backoff_max=BACKOFF_MAX,
        raise_on_status=False,
        respect_retry_after_header=False,  # a long Retry-After must not stall a failover measurement
    )


class BasicAuth(HTTPBasicAuth):
    """HTTP Basic auth whose repr never shows the password."""

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password=***)"


class BearerAuth(AuthBase):
    """``Authorization: Bearer <token>``; the repr never shows the token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BearerAuth) and other._token == self._token

    def __hash__(self) -> int:
        return hash(self._token)

    def __repr__(self) -> str:
        return "BearerAuth(token=***)"


_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> str:
    """``scheme://host:port`` of ``url`` (lower case, the default port made explicit); "" when it has none."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not scheme or not host:
        return ""
    port = port if port is not None else _DEFAULT_PORTS.get(scheme)
    host = f"[{host}]" if ":" in host else host
    return f"{scheme}://{host}:{port}"


class HomeOnlyAuth(AuthBase):
    """``auth`` attached only to requests to the ``home`` origin (scheme, host, port); other requests go without
    it (and a :class:`HomeSession` refuses to send them at all)."""

    def __init__(self, auth: AuthBase, home: str) -> None:
        self.auth = auth
        self.home = origin(home)

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if origin(r.url or "") != self.home:
            r.headers.pop("Authorization", None)
            return r
        result = self.auth(r)
        assert isinstance(result, requests.PreparedRequest)
        return result

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HomeOnlyAuth) and (other.auth, other.home) == (self.auth, self.home)

    def __hash__(self) -> int:
        return hash((self.auth, self.home))

    def __repr__(self) -> str:
        return f"HomeOnlyAuth({self.auth!r}, home={self.home!r})"


class HomeSession(requests.Session):
    """A session that sends requests (redirects included) only to its ``home`` origin; anything else raises
    :class:`StreamsLinkRefused` before it is sent and is told to every ``on_link_refused`` listener
    (``listener(url, expected_origin)``). ``home`` "" = no restriction."""

    def __init__(self, home: str = "") -> None:
        super().__init__()
        self.home = origin(home) if home else ""
        self.on_link_refused: list[Callable[[str, str], None]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        url = request.url or ""
        if self.home and origin(url) != self.home:
            log.warning("%s %s refused: not %s (credentials stay home)", request.method, safe_url(url), self.home)
            for listener in list(self.on_link_refused):
                try:
                    listener(safe_url(url), self.home)
                except Exception:  # a listener must not turn a refusal into another error
                    log.exception("link.refused listener failed")
            raise StreamsLinkRefused(url, self.home, request.method or "GET")
        return super().send(request, **kwargs)


def auth_from_config(spec: AuthSettings | Mapping[str, Any] | None) -> AuthBase | None:
    """Typed auth settings (or the same as a mapping: ``{type: basic, username, password}`` or
    ``{type: bearer, token}``) -> a requests auth."""
    if not spec:
        return None
    if not isinstance(spec, AuthSettings):
        spec = AuthSettings(**{k: spec[k] for k in ("type", "username", "password", "token") if k in spec})
    kind, username, password, token = spec.type, spec.username, spec.password, spec.token
    if kind == "basic":
        return BasicAuth(str(username), str(password))
    if kind == "bearer":
        return BearerAuth(str(token))
    raise ValueError(f"unknown auth type {kind!r} (expected basic or bearer)")


def default_http_settings() -> HttpSettings:
    """The ``http`` section as config/schema.json's defaults make it (for clients built without a config)."""
    return build_http_settings(section_defaults("http"))


def make_session(
    auth: AuthBase | AuthSettings | Mapping[str, Any] | None,
    ca_bundle: str | None,
    retries: int,
    backoff: float,
    pool: int = 10,
    adapter: BaseAdapter | None = None,
    home: str = "",
) -> HomeSession:
    """A session for one target. ``ca_bundle`` None = the default trust store (certifi). ``home`` (the target's
    configured URL) confines the session and its auth to that origin (see :class:`HomeSession`)."""
    session = HomeSession(home)
    # Environment proxies or ~/.netrc must not reroute or re-authenticate lab or production traffic.
    session.trust_env = False
    resolved = auth_from_config(auth) if isinstance(auth, Mapping | AuthSettings) else auth
    session.auth = HomeOnlyAuth(resolved, home) if resolved is not None and home else resolved
    session.verify = str(ca_bundle) if ca_bundle else True
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept"] = "application/json"
    retry = make_retry(retries, backoff)
    if adapter is None:
        adapter = HTTPAdapter(max_retries=retry, pool_connections=pool, pool_maxsize=pool)
    elif isinstance(adapter, HTTPAdapter):
        adapter.max_retries = retry
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


_NOISE = re.compile(r"<[^<>]* object at 0x[0-9a-fA-F]+>:?\s*|\w*ConnectionPool\([^)]*\):\s*")


def _describe(error: BaseException) -> str:
    if len(error.args) == 2 and isinstance(error.args[0], str) and isinstance(error.args[1], BaseException):
        return f"{error.args[0].rstrip('.')}: {_describe(error.args[1])}"  # ("Connection aborted.", reset)
    text = _NOISE.sub("", str(error)).strip()
    return " ".join(text.split()) or type(error).__name__


def _connection_error(
    method: str, url: str, exc: requests.exceptions.RequestException, timeout: Timeout
) -> StreamsConnectionError:
    inner: BaseException = exc
    while inner.args and isinstance(inner.args[0], BaseException) and not hasattr(inner, _ATTEMPTS_ATTR):
        inner = inner.args[0]
    attempts: int | None = getattr(inner, _ATTEMPTS_ATTR, None)
    reason: BaseException = inner.reason if isinstance(inner, MaxRetryError) and inner.reason else inner
    connect_timeout, read_timeout = timeout if isinstance(timeout, tuple) else (timeout, timeout)

    cls: type[StreamsConnectionError] = StreamsConnectionError
    if isinstance(exc, requests.exceptions.ConnectTimeout) or (
        isinstance(reason, ConnectTimeoutError) and not isinstance(reason, NewConnectionError)
    ):
        cls, sent, last = (
            StreamsTimeout,
            False,
            f"connect timed out (connect timeout {format_seconds(connect_timeout, None, 'none')})",
        )
    elif isinstance(exc, requests.exceptions.ReadTimeout) or isinstance(reason, ReadTimeoutError):
        limit = format_seconds(read_timeout, None, "none")
        cls, sent, last = StreamsTimeout, True, f"read timed out (read timeout {limit})"
    elif isinstance(reason, NewConnectionError) or isinstance(
        exc, requests.exceptions.SSLError | requests.exceptions.ProxyError
    ):
        sent, last = False, _describe(reason)
    elif isinstance(exc, requests.exceptions.InvalidURL | requests.exceptions.MissingSchema):
        sent, last = False, f"invalid URL ({_describe(exc)})"
    else:  # reset, broken chunked body...: the server may have acted
        sent, last = True, _describe(reason)
    if isinstance(exc, requests.exceptions.SSLError):
        last = f"TLS error: {last}"
    tried = f" after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
    return cls(
        f"{method} {safe_url(url)} failed{tried}: {last}",
        url=url,
        method=method,
        attempts=attempts,
        last_error=last,
        request_sent=sent,
    )


def request(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout: Timeout,
    expected: Collection[int] | None = None,
    **kwargs: Any,
) -> requests.Response:
    """Send one request; return the response or raise a ``StreamsError``.

    ``timeout`` is required (``(connect, read)`` seconds). Error statuses (>= 400) raise by status
    (401/403 auth, 404 not found, 409 conflict, others api error); a success status outside
    ``expected`` raises ``StreamsApiError``.
    """
    if timeout is None:
        raise ValueError("request() needs a timeout")
    method = method.upper()
    started = time.monotonic()
    try:
        response = session.request(method, url, timeout=timeout, **kwargs)
    except requests.exceptions.RequestException as exc:
        error = _connection_error(method, url, exc, timeout)
        log.debug("%s", error)
        raise error from exc
    except OSError as exc:  # e.g. the CA bundle file is missing
        raise StreamsConnectionError(
            f"{method} {safe_url(url)} failed: {exc}", url=url, method=method, last_error=str(exc)
        ) from exc
    elapsed_ms = (time.monotonic() - started) * 1000
    log.debug("%s %s -> %s (%.0f ms)", method, safe_url(url), response.status_code, elapsed_ms)
    if response.status_code >= 400:
        raise error_for_status(method, url, response.status_code, response.content, response.reason or "")
    if expected is not None and response.status_code not in expected:
        wanted = " or ".join(str(code) for code in sorted(expected))
        raise StreamsApiError(
            f"{method} {safe_url(url)}: expected HTTP {wanted}, got {response.status_code}",
            url=url,
            status=response.status_code,
            method=method,
        )
    return response


def json_body(response: requests.Response) -> Any:
    """The JSON document of ``response``; ``StreamsApiError`` when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        method = response.request.method if response.request is not None else "?"
        snippet = " ".join(response.text[:120].split())
        raise StreamsApiError(
            f"{method} {safe_url(response.url)}: expected a JSON answer, got {snippet!r}",
            url=response.url,
            status=response.status_code,
            method=method,
        ) from None
