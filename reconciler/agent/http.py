"""/healthz and /metrics on a small HTTP server (loopback by default).

/healthz: 200 ("ok") when the last pass succeeded, the watcher is alive and the git source (if
any) is fresh, else 503 ("unhealthy", or "degraded" when only git is stale); the body is a short
JSON document saying why (`Agent.health`). /metrics: Prometheus text format.

One asyncio loop in one thread serves every connection, so an idle connection costs a socket
and a little memory, never a thread. Each request must arrive whole within `timeout` seconds
(a client that sends nothing, or a byte at a time, is cut off), and at most
`max_connections` are open at once: a new one closes the longest-open one, so a flood of idle
connections can never lock out the monitoring that asks /healthz.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from reconciler.errors import ConfigError

from .settings import parse_listen

MAX_REQUEST_HEAD = 8192
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            503: "Service Unavailable"}


class HttpServer:
    def __init__(self, address: str, health: Callable[[], tuple[bool, dict[str, Any]]],
                 metrics: Callable[[], bytes], *, timeout: float = 5.0,
                 max_connections: int = 256) -> None:
        host, port = parse_listen(address)
        self.health, self.metrics = health, metrics
        self.timeout, self.max_connections = timeout, max_connections
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self._sock = socket.socket(family, socket.SOCK_STREAM)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind((host, port))
            self._sock.listen(128)
            self._sock.setblocking(False)
        except OSError as exc:
            raise ConfigError(f"cannot serve /healthz and /metrics on {address}: "
                              f"{exc.strerror or exc}") from None
        self._loop = asyncio.new_event_loop()
        self._open: dict[asyncio.Task[None], float] = {}  # connection -> when it opened
        self._stopped: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)

    @property
    def address(self) -> str:
        host, port = self._sock.getsockname()[:2]
        host = str(host)
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            def stop_now() -> None:
                if self._stopped is not None:
                    self._stopped.set()
            self._loop.call_soon_threadsafe(stop_now)
            self._thread.join(timeout=5)
        with contextlib.suppress(OSError):
            self._sock.close()

    # ------------------------------------------------------------------ the loop's thread
    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stopped = asyncio.Event()
        server = await asyncio.start_server(self._connection, sock=self._sock,
                                            limit=MAX_REQUEST_HEAD)
        async with server:
            await self._stopped.wait()
            for task in list(self._open):
                task.cancel()

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._open) >= self.max_connections:  # make room: the oldest goes
            oldest = min(self._open, key=self._open.__getitem__)
            oldest.cancel()
            self._open.pop(oldest, None)
        self._open[task] = time.monotonic()
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.timeout)
            code, ctype, body = self._answer(head)
            reason = _REASONS.get(code, "OK")
            writer.write(f"HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\n"
                         f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\n"
                         "Connection: close\r\n\r\n".encode() + body)
            await asyncio.wait_for(writer.drain(), self.timeout)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._open.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    def _answer(self, head: bytes) -> tuple[int, str, bytes]:
        words = head.split(b"\r\n", 1)[0].split()
        if len(words) != 3 or not words[2].startswith(b"HTTP/"):
            return 400, "text/plain", b"bad request\n"
        if words[0] != b"GET":
            return 405, "text/plain", b"only GET\n"
        path = words[1].split(b"?", 1)[0]
        if path == b"/healthz":
            ok, body = self.health()
            return (200 if ok else 503, "application/json",
                    json.dumps(body, default=str).encode() + b"\n")
        if path == b"/metrics":
            return 200, CONTENT_TYPE_LATEST, self.metrics()
        return 404, "text/plain", b"not found; try /healthz or /metrics\n"
