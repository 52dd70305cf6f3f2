"""The dashboard's HTTP server: standard library only, read-only (GET and HEAD; anything else is refused).

Serves the pages of :class:`support.dashboard.pages.Site` (rendered afresh per request: the store grows while
runs finish), ``assets/``, ``api/live.json`` (:class:`support.dashboard.live.LiveView`) and the runs' reports
under ``reports/<run>/``. The dashboard's own pages get a content security policy that allows only their own
scripts; the runs' reports are served as they are (Allure's single file inlines its scripts).
"""

from __future__ import annotations

import json
import mimetypes
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from support.dashboard.assets import asset_files
from support.dashboard.live import LiveView
from support.dashboard.pages import Site

__all__ = ["CSP", "make_server"]

CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def make_server(site: Site, live: LiveView | None, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """A server for ``site`` on ``host:port`` (0: any free port; ``server.server_address`` tells which)."""

    class Handler(BaseHTTPRequestHandler):
        def version_string(self) -> str:
            return "failover-tester-dashboard"

        def do_GET(self) -> None:
            self._answer(body=True)

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: a page polls every few seconds

        def _answer(self, body: bool) -> None:
            path = unquote(urlsplit(self.path).path).lstrip("/")
            try:
                found = self._find(path)
            except Exception as exc:  # a store being written, a file gone: say so, keep serving
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, f"dashboard error: {exc}\n".encode(), "text/plain",
                           body)
                return
            if found is None and path == "favicon.ico":  # asked for by every page, the runs' reports too
                self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon", False)
                return
            if found is None:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain", body)
                return
            data, ctype, own = found
            self._send(HTTPStatus.OK, data, ctype, body, csp=own)

        def _find(self, path: str) -> tuple[bytes, str, bool] | None:
            if path == "api/live.json":
                status = live.status() if live is not None else {"live": False, "state": "idle",
                                                                 "message": "no reports folder given"}
                return json.dumps(status, default=str).encode(), "application/json", True
            if path.startswith("assets/"):
                file = asset_files().get(path.removeprefix("assets/"))
                return (file.read_bytes(), _type(file), True) if file is not None else None
            if path.startswith("reports/"):
                report = site.report_file(path)
                return (report.read_bytes(), _type(report), False) if report is not None else None
            page = site.render(path)
            return (page.encode(), "text/html; charset=utf-8", True) if page is not None else None

        def _send(self, status: HTTPStatus, data: bytes, ctype: str, body: bool, csp: bool = True) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            if csp:
                self.send_header("Content-Security-Policy", CSP)
            self.end_headers()
            if body:
                self.wfile.write(data)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def _type(path: Path) -> str:
    guessed = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") or guessed.endswith("javascript") else guessed
