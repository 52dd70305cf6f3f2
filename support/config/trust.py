"""Configuration checks for trust (issue 13): secrets long enough to redact, and no credentials over plain http.

Called by the loader after schema validation; ``error(path, problem)`` makes the loader's one-line
:class:`~support.config.loader.ConfigError` (file, dotted path, problem).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from support.redact import MIN_SECRET_LENGTH, REDACTED, SECRET_KEY, url_password, url_passwords

__all__ = ["check_plain_http_auth", "check_secrets", "is_secret_path"]

PathKey = tuple[str | int, ...]
ErrorAt = Callable[[PathKey, str], Exception]


def is_secret_path(path: PathKey) -> bool:
    """Whether a value at ``path`` is a secret (a key named like ``password``, ``token``, ``secret``...)."""
    return any(isinstance(part, str) and SECRET_KEY.search(part) is not None for part in path)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def check_secrets(data: Any, error: ErrorAt, path: PathKey = ()) -> None:
    """Refuse secrets (secret-named values, passwords in URLs) under ``MIN_SECRET_LENGTH`` characters: replacing
    such a short string in every message would garble the output, and not replacing it would leak it."""
    if isinstance(data, dict):
        for key, child in data.items():
            check_secrets(child, error, (*path, key))
    elif isinstance(data, list):
        for index, child in enumerate(data):
            check_secrets(child, error, (*path, index))
    elif data is not None and is_secret_path(path):
        text = _text(data)  # empty: no secret; "***": a stored run's redacted config.yaml
        if isinstance(data, bool) or (0 < len(text) < MIN_SECRET_LENGTH and text != REDACTED):
            raise error(path, f"secret is shorter than {MIN_SECRET_LENGTH} characters; refused (it could "
                              "not be redacted from the reports without garbling them)")
    elif isinstance(data, str):
        for password in url_passwords(data):
            if len(password) < MIN_SECRET_LENGTH and password != REDACTED:  # "***": a stored, redacted config
                raise error(path, f"the password in this URL is shorter than {MIN_SECRET_LENGTH} "
                                  "characters; refused (it could not be redacted without garbling output)")


def check_plain_http_auth(data: dict[str, Any], error: ErrorAt) -> None:
    """Credentials never travel in clear: a URL with ``http://`` whose requests carry auth (its own ``auth``, a
    ``user:password@`` part, or the data center's rest auth that the exchange inherits) is refused."""

    def check(section: Any, path: PathKey, inherited: Any = None) -> None:
        if not isinstance(section, Mapping) or not isinstance(section.get("url"), str):
            return
        url = section["url"]
        if not url.lower().startswith("http://"):
            return
        if section.get("auth") or inherited or url_password(url) is not None:
            raise error((*path, "url"), "http:// with credentials: they would travel in clear; use "
                                        "https:// (or drop the auth)")

    for dc, settings in (data.get("datacenters") or {}).items():
        if not isinstance(settings, Mapping):
            continue
        rest = settings.get("rest")
        check(rest, ("datacenters", dc, "rest"))
        exchange = settings.get("exchange")
        inherited = rest.get("auth") if isinstance(rest, Mapping) and isinstance(exchange, Mapping) and (
            "auth" not in exchange) else None
        check(exchange, ("datacenters", dc, "exchange"), inherited)
    metrics = data.get("metrics")
    if isinstance(metrics, Mapping):
        check(metrics.get("prometheus"), ("metrics", "prometheus"))
