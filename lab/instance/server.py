"""The HTTPS servers of an instance service (TLS handshake in the request thread, HTTP Basic auth) and its
`main`: REST management API on :9714, data exchange on :9715.

Standard library only.
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hmac
import logging
import os
import signal
import ssl
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lab import clock, paths
from lab.httpd import LabHTTPServer
from lab.instance.data import DataApi
from lab.instance.model import ApiError, DropConnection
from lab.instance.responses import Api, Response, error_response
from lab.instance.rest import RestApi
from lab.instance.supervisor import Instance

log = logging.getLogger("lab.instance")


class TLSServer(LabHTTPServer):
    request_queue_size = 64

    def __init__(self, addr: tuple[str, int], ctx: ssl.SSLContext, api: Api, password: str) -> None:
        self.ctx = ctx
        self.api = api
        token = base64.b64encode(f"{paths.USER}:{password}".encode()).decode()
        self.expected_auth = f"Basic {token}".encode()
        super().__init__(addr, Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(30)
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", client_address, exc)
            return
        try:
            Handler(tls, client_address, self)
        except (ssl.SSLError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError):
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("error while serving %s", client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: avoid the 40 ms delayed-ACK stall
    server: TLSServer
    server_version = "TeracloudStreams/7.2"
    sys_version = ""

    def _authorized(self) -> bool:
        got = (self.headers.get("Authorization") or "").encode()
        return hmac.compare_digest(got, self.server.expected_auth)

    def _send(self, resp: Response) -> None:
        self.send_response(resp.status)
        if resp.status != 204:
            self.send_header("Content-Type", resp.content_type)
        if resp.status != 204:
            self.send_header("Content-Length", str(len(resp.body)))
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.end_headers()
        if resp.body and self.command != "HEAD":
            self.wfile.write(resp.body)

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        parts = urlsplit(self.path)
        q = parse_qs(parts.query)
        if not self._authorized():
            resp = error_response(401, "The user is not authenticated: provide valid credentials.")
            resp.headers["WWW-Authenticate"] = 'Basic realm="streams"'
        else:
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                resp = self.server.api.handle(self.command, parts.path, q, body, headers)
            except ApiError as exc:
                resp = error_response(exc.status, exc.text)
            except DropConnection:
                log.info("%s %s -> connection closed without an answer", self.command, self.path)
                self.close_connection = True
                return
            except Exception as exc:
                log.exception("internal error on %s %s", self.command, self.path)
                resp = error_response(500, f"Internal error: {type(exc).__name__}: {exc}")
        if resp.status >= 400 or (self.command != "GET" and parts.path.startswith("/streams/instances")):
            log.info("%s %s -> %d", self.command, self.path, resp.status)
        self._send(resp)

    do_GET = _dispatch
    do_POST = _dispatch
    do_DELETE = _dispatch
    do_PUT = _dispatch
    do_PATCH = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        return

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header, on this data center's clock (:mod:`lab.clock`): what a tester estimating the
        data center's clock offset reads (whole seconds, truncated, as every HTTP server sends it)."""
        return email.utils.formatdate(clock.now() if timestamp is None else timestamp, usegmt=True)


def main(argv: list[str] | None = None) -> int:
    dc = paths.service_dc("python -m lab.instance", argv)
    clock.bind(dc)
    inst = Instance(dc)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    tls = paths.tls_dir(dc)
    ctx.load_cert_chain(str(tls / "server.pem"), str(tls / "server.key"))
    password = paths.read_password()
    rest = TLSServer((inst.addr, paths.REST_PORT), ctx, RestApi(inst), password)
    data = TLSServer((inst.addr, paths.DATA_PORT), ctx, DataApi(inst), password)

    def on_term(signum: int, _frame: Any) -> None:
        log.info("signal %d: stopping PEs and exiting", signum)
        inst.shutdown_all()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    threading.Thread(target=data.serve_forever, name="data-exchange", daemon=True).start()
    log.info(
        "instance %s serving REST on %s:%d and data exchange on %s:%d (defects: %s)",
        inst.id,
        inst.addr,
        paths.REST_PORT,
        inst.addr,
        paths.DATA_PORT,
        ",".join(sorted(paths.active_defects())) or "none",
    )
    rest.serve_forever()
    return 0
