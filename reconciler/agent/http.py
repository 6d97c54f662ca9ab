"""/healthz and /metrics on a small threading HTTP server (loopback by default).

/healthz: 200 when the last pass succeeded and the watcher is alive, else 503; the body is a
short JSON document saying why. /metrics: Prometheus text format.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from reconciler.errors import ConfigError

from .settings import parse_listen


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    health: Callable[[], tuple[bool, dict[str, Any]]]
    metrics: Callable[[], bytes]


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "reconciler"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            ok, body = self.server.health()
            self._send(200 if ok else 503, "application/json",
                       json.dumps(body, default=str).encode() + b"\n")
        elif path == "/metrics":
            self._send(200, CONTENT_TYPE_LATEST, self.server.metrics())
        else:
            self._send(404, "text/plain", b"not found; try /healthz or /metrics\n")

    def _send(self, code: int, ctype: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return  # scrapes every few seconds are not news


class HttpServer:
    def __init__(self, address: str, health: Callable[[], tuple[bool, dict[str, Any]]],
                 metrics: Callable[[], bytes]) -> None:
        host, port = parse_listen(address)
        cls = _Server6 if ":" in host else _Server
        try:
            self._server = cls((host, port), _Handler)
        except OSError as exc:
            raise ConfigError(f"cannot serve /healthz and /metrics on {address}: "
                              f"{exc.strerror or exc}") from None
        self._server.health = health
        self._server.metrics = metrics
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 1.0}, name="http", daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        host = str(host)
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
