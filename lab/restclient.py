"""Minimal stdlib HTTPS client for the lab's own REST calls (CLI, `streamtool` stand-in, passive stub).

Always verifies the server certificate against the lab CA; Basic auth as `streamsadmin`.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
from typing import Any
from urllib.parse import urlsplit

from lab import paths


class RestError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


class Rest:
    def __init__(self, base: str, password: str | None = None, timeout: float = 10.0) -> None:
        self.base = base.rstrip("/")
        parts = urlsplit(self.base)
        self.host = parts.hostname or ""
        self.port = parts.port or 443
        self.ctx = ssl.create_default_context(cafile=str(paths.ca_pem()))
        pw = password if password is not None else paths.read_password()
        token = base64.b64encode(f"{paths.USER}:{pw}".encode()).decode()
        self.auth = f"Basic {token}"
        self.timeout = timeout

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        timeout: float | None = None,
        raw: bytes | None = None,
        content_type: str = "application/octet-stream",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """One request: `body` goes as JSON, or `raw` bytes as `content_type` (a bundle upload)."""
        conn = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=timeout or self.timeout)
        try:
            hdrs = {"Authorization": self.auth, "Accept": "application/json", **(headers or {})}
            data: bytes | None = None
            if raw is not None:
                data = raw
                hdrs["Content-Type"] = content_type
            elif body is not None:
                data = json.dumps(body).encode()
                hdrs["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
            ctype = resp.getheader("Content-Type") or ""
            if raw and ctype.startswith("application/json"):
                return resp.status, json.loads(raw)
            return resp.status, raw.decode("utf-8", "replace")
        finally:
            conn.close()

    def get(self, path: str, timeout: float | None = None) -> Any:
        status, body = self.call("GET", path, timeout=timeout)
        if status != 200:
            raise RestError(status, str(body))
        return body


def for_dc(dc: str, password: str | None = None, timeout: float = 10.0) -> Rest:
    return Rest(paths.rest_base(dc), password, timeout)
