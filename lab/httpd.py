"""The HTTP server class every lab service uses (REST/data exchange, crossdc receivers, the exporter)."""

from __future__ import annotations

import socketserver
from http.server import ThreadingHTTPServer


class LabHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server that binds without the DNS lookup of ``HTTPServer.server_bind``."""

    daemon_threads = True
    allow_reuse_address = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind would call socket.getfqdn(): a DNS lookup the lab must never make
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)
