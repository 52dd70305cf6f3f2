"""HTTP transport of the cross-DC toolkit stand-in: the inetserver `HTTPBLOBInjection` receiver and the
toolkit's `HttpBlobSender` (wire format in `lab.crossdc`).

Standard library only.
"""

from __future__ import annotations

import http.client
import queue
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from lab.crossdc import Config, Message, decode
from lab.httpd import LabHTTPServer
from lab.peruntime import PEContext

Callback = Callable[[Message], None]
DoneFn = Callable[[int | None, str], None]


class Receiver(LabHTTPServer):
    def __init__(self, addr: tuple[str, int], path: str, callback: Callback) -> None:
        self.path = path
        self.callback = callback
        super().__init__(addr, _InjectHandler)


class _InjectHandler(BaseHTTPRequestHandler):
    """inetserver HTTPBLOBInjection: POST octet-stream -> tuple, reply 204."""

    protocol_version = "HTTP/1.0"
    server: Receiver

    def _reply(self, status: int, text: str = "") -> None:
        body = text.encode()
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_POST(self) -> None:
        if urlsplit(self.path).path != self.server.path:
            self._reply(404, "not found")
            return
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if ctype != "application/octet-stream":
            self._reply(500, "server error: Content-Type must be application/octet-stream")
            return
        try:
            msg = decode(body)
        except ValueError as exc:
            self._reply(500, f"server error: {exc}")
            return
        self.server.callback(msg)
        self._reply(204)

    def log_message(self, format: str, *args: Any) -> None:
        return


class HttpBlobSender:
    """CrossDataCenterSenderN (the toolkit's HttpBlobSender), one worker thread.

    As the toolkit's operator: each remote host in turn until one answers 200/204, which then stays the
    target ("sticky") until it fails (then the whole list is tried again from the first host); with
    `sendToAllRemoteMachines` every host gets every message. A non-2xx reply emits an `HttpResponseType`
    tuple (output port 0) and is logged at error level with `alwaysLogHttpErrors`, else at info level; a
    connection exception is always logged at error level and emits nothing.
    """

    LOGGER = "HttpBlobSender"

    def __init__(self, ctx: PEContext, op: str, cfg: Config, path: str, port: int) -> None:
        self.ctx = ctx
        self.op = op
        self.cfg = cfg
        self.path = path
        self.port = port
        self.urls = [f"http://{h}:{port}{path}" for h in cfg.remotes]
        self.sticky = ""
        self._q: queue.Queue[tuple[bytes, DoneFn | None]] = queue.Queue(maxsize=1000)
        threading.Thread(target=self._run, name=op, daemon=True).start()

    def submit(self, payload: bytes, done: DoneFn | None = None) -> bool:
        self.ctx.metrics.inc(self.op, "in")
        try:
            self._q.put_nowait((payload, done))
            return True
        except queue.Full:
            self.ctx.metrics.inc(self.op, "dropped")
            return False

    def _run(self) -> None:
        while True:
            payload, done = self._q.get()
            status, url = self._send(payload)
            if done is not None:
                done(status, urlsplit(url).hostname or "")

    def _post(self, url: str, payload: bytes) -> int:
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=self.cfg.conn_timeout)
        try:
            conn.connect()
            if conn.sock is not None:
                conn.sock.settimeout(self.cfg.read_timeout)
            conn.request("POST", parts.path, body=payload, headers={"Content-Type": "application/octet-stream"})
            resp = conn.getresponse()
            resp.read()
            return int(resp.status)
        finally:
            conn.close()

    def _send(self, payload: bytes) -> tuple[int | None, str]:
        trace = self.ctx.trace
        ok: tuple[int | None, str] = (None, "")
        idx = 0
        while idx < len(self.urls):
            url = self.urls[idx]
            if not self.cfg.send_to_all and self.sticky:
                url = self.sticky
            idx += 1
            try:
                status = self._post(url, payload)
            except OSError as exc:
                trace.log(
                    "ERROR",
                    self.LOGGER,
                    f"Exception while communicating with {url}. Error message: {type(exc).__name__}: {exc}",
                )
                if not self.cfg.send_to_all and url == self.sticky:
                    self._unstick(url)
                    idx = 0 if len(self.urls) > 1 else idx  # the whole list again from the first host
                continue
            if status in (200, 204):
                trace.log("INFO", self.LOGGER, f"{len(payload)} bytes have been sent to this URL: {url}")
                ok = (status, url)
                if self.cfg.send_to_all:
                    continue
                if self.sticky != url:
                    self.ctx.truth(self.op, "sender_target", url=url, previous=self.sticky or None)
                self.sticky = url
                return ok
            level = "ERROR" if self.cfg.always_log_http_errors else "INFO"
            trace.log(level, self.LOGGER, f"Error in posting the binary contents to this URL: {url}")
            trace.log(level, self.LOGGER, f"{len(payload)} bytes of binary data was attempted to be sent to that URL.")
            trace.log(level, self.LOGGER, f"HTTP response code={status}")
            self.ctx.metrics.inc(self.op, "out")  # the HttpResponseType tuple
            if not self.cfg.send_to_all and url == self.sticky:
                self._unstick(url)
                idx = 0 if len(self.urls) > 1 else idx
        return ok

    def _unstick(self, url: str) -> None:
        self.sticky = ""
        self.ctx.truth(self.op, "sender_target", url=None, previous=url)
