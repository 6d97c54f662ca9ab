"""LXD's REST API, over the daemon's unix socket or HTTPS with a client certificate.

One keep-alive connection per thread (apply runs steps on a worker pool, and `http.client`
connections are not shared between threads). A request that LXD answers with a background
operation is waited for through `/1.0/operations/ID/wait`, so every call returns when the
change is made. LXD's errors are mapped here, once: a busy instance, a stale ETag, a daemon
that is restarting or a cluster member that is briefly away are transient; everything else
(bad config, not found, refused) is permanent.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

from reconciler.errors import ConfigError, DriverError, PermanentError, TransientError

# paths whose objects live in a project (the others are server- or cluster-wide)
_PROJECT_PATHS = ("/1.0/instances", "/1.0/networks", "/1.0/profiles", "/1.0/images",
                  "/1.0/storage-pools")
_TRANSIENT_STATUS = frozenset({409, 412, 423, 429, 502, 503, 504})
# LXD answers these with a plain 400/500 while the operation would succeed later
_TRANSIENT_TEXT = ("database is locked", "is busy running", "Failed to begin transaction",
                   "cluster member is offline", "Missing event connection",
                   "connection refused")
_RECONNECT = (http.client.RemoteDisconnected, http.client.BadStatusLine, BrokenPipeError,
              ConnectionResetError, ConnectionAbortedError)


class NotFound(PermanentError):
    """LXD has no such object (HTTP 404)."""


@dataclass(frozen=True)
class Remote:
    """Where the daemon is: `unix:///var/lib/lxd/unix.socket`, or `https://HOST:PORT` with
    our client certificate and key and the server's certificate (LXD's are self-signed, so
    the server is pinned to it rather than checked against a CA)."""

    url: str
    client_cert: str | None = None
    client_key: str | None = None
    server_cert: str | None = None

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme == "unix":
            if not parts.path.startswith("/"):
                raise ConfigError(f"lxd: remote {self.url!r}: write unix:///PATH/unix.socket")
        elif parts.scheme == "https":
            if not parts.hostname:
                raise ConfigError(f"lxd: remote {self.url!r} names no host")
            if not (self.client_cert and self.client_key and self.server_cert):
                raise ConfigError("lxd: an https remote needs client_cert, client_key (the "
                                  "certificate the cluster trusts) and server_cert (the "
                                  "cluster's certificate, to pin it)")
        else:
            raise ConfigError(f"lxd: remote {self.url!r}: use unix:///PATH or https://HOST:PORT")


@dataclass(frozen=True)
class Response:
    status: int
    body: dict[str, Any]
    etag: str | None

    @property
    def metadata(self) -> Any:
        return self.body.get("metadata")

    @property
    def operation(self) -> str | None:
        op = self.body.get("operation")
        return op if self.body.get("type") == "async" and isinstance(op, str) and op else None


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("lxd", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = _unix_socket(self.socket_path, self.timeout)


def _unix_socket(path: str, timeout: float | None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


class Client:
    """Requests to one LXD server (any member of a cluster answers for all of it)."""

    def __init__(self, remote: Remote, project: str = "default", timeout: float = 30.0) -> None:
        self.remote = remote
        self.project = project
        self.timeout = timeout
        self._local = threading.local()
        self._tls: ssl.SSLContext | None = None

    # ------------------------------------------------------------------ connections
    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection, and whether it was used before (may have gone stale)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn, True
        parts = urlsplit(self.remote.url)
        if parts.scheme == "unix":
            conn = _UnixConnection(parts.path, self.timeout)
        else:
            conn = http.client.HTTPSConnection(parts.hostname or "", parts.port or 8443,
                                               timeout=self.timeout, context=self._context())
        self._local.conn = conn
        return conn, False

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                             cafile=self.remote.server_cert)
            # pinned: the server must present exactly this certificate; LXD's certificates
            # name the host they were made on, not the address we reach it by
            ctx.check_hostname = False
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            assert self.remote.client_cert and self.remote.client_key
            ctx.load_cert_chain(self.remote.client_cert, self.remote.client_key)
            self._tls = ctx
        return self._tls

    def connect(self) -> socket.socket:
        """A socket of its own to the daemon, for what `http.client` cannot carry (the event
        stream's WebSocket)."""
        parts = urlsplit(self.remote.url)
        if parts.scheme == "unix":
            return _unix_socket(parts.path, self.timeout)
        raw = socket.create_connection((parts.hostname or "", parts.port or 8443), self.timeout)
        try:
            return self._context().wrap_socket(raw, server_hostname=parts.hostname)
        except BaseException:
            raw.close()
            raise

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def close(self) -> None:
        self._drop()

    # ------------------------------------------------------------------ requests
    def url(self, path: str, query: dict[str, str] | None = None) -> str:
        params = dict(query or {})
        if path.startswith(_PROJECT_PATHS) and self.project != "default":
            params.setdefault("project", self.project)
        return path + ("?" + urlencode(params) if params else "")

    def request(self, method: str, path: str, *, query: dict[str, str] | None = None,
                body: Any = None, data: bytes | None = None, etag: str | None = None,
                headers: dict[str, str] | None = None, timeout: float | None = None
                ) -> Response:
        """One request; LXD's error answers raised as ours."""
        target = self.url(path, query)
        sent = dict(headers or {})
        payload = data
        if body is not None:
            payload = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        if etag:
            sent["If-Match"] = etag
        for attempt in range(2):
            conn, reused = self._connection()
            conn.timeout = timeout or self.timeout
            if conn.sock is not None:
                conn.sock.settimeout(conn.timeout)
            try:
                conn.request(method, target, body=payload, headers=sent)
                raw = conn.getresponse()
                text = raw.read()
            except _RECONNECT:
                self._drop()
                if reused and attempt == 0:
                    continue  # the daemon closed an idle keep-alive connection: once more
                raise TransientError(f"LXD at {self.remote.url} closed the connection "
                                     f"({method} {path})") from None
            except TimeoutError:
                self._drop()
                raise TransientError(f"LXD at {self.remote.url} did not answer {method} {path} "
                                     f"in {conn.timeout:.0f} s", delay=2.0) from None
            except ssl.SSLError as exc:
                self._drop()
                raise PermanentError(f"TLS with {self.remote.url} failed: {exc.reason or exc}"
                                     ) from None
            except OSError as exc:
                self._drop()
                raise TransientError(f"LXD is not answering at {self.remote.url}: "
                                     f"{exc.strerror or exc}") from None
            return _answer(raw.status, text, raw.getheader("ETag"), f"{method} {path}")
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, path: str, **query: str) -> Any:
        return self.request("GET", path, query=query or None).metadata

    def call(self, method: str, path: str, body: Any = None, *,
             query: dict[str, str] | None = None, etag: str | None = None,
             timeout: float | None = None) -> Any:
        """A change, waited for: the operation's metadata (or the sync answer's)."""
        answer = self.request(method, path, query=query, body=body, etag=etag)
        if answer.operation is None:
            return answer.metadata
        return self.wait(answer.operation, timeout or self.timeout, f"{method} {path}")

    def wait(self, operation: str, timeout: float, what: str) -> Any:
        """Wait for a background operation; its failure raised as ours."""
        deadline = time.monotonic() + timeout
        while True:
            left = max(1, int(deadline - time.monotonic()))
            try:
                answer = self.request("GET", f"{operation}/wait", query={"timeout": str(left)},
                                      timeout=left + 10.0)
                op = answer.metadata or {}
            except PermanentError as exc:
                # since 5.0.3 LXD answers a wait that timed out with an error of its own
                if "deadline exceeded" not in str(exc):
                    raise
                op = {}
            status = op.get("status")
            if status == "Success":
                return op.get("metadata")
            if status in ("Failure", "Cancelled"):
                raise _error(400, str(op.get("err") or status), what)
            if time.monotonic() >= deadline:
                raise TransientError(f"{what}: LXD's operation {operation} did not finish in "
                                     f"{timeout:.0f} s", delay=5.0)

    def push_file(self, instance: str, path: str, data: bytes, mode: int = 0o644) -> None:
        """Write a file inside an instance as root (LXD shifts ownership through its map)."""
        self.request("POST", f"/1.0/instances/{quote(instance, safe='')}/files",
                     query={"path": path}, data=data,
                     headers={"Content-Type": "application/octet-stream", "X-LXD-uid": "0",
                              "X-LXD-gid": "0", "X-LXD-mode": f"{mode:04o}",
                              "X-LXD-type": "file", "X-LXD-write": "overwrite"})


def _answer(status: int, text: bytes, etag: str | None, what: str) -> Response:
    try:
        body = json.loads(text) if text else {}
    except ValueError:
        body = {"error": text[:200].decode("utf-8", "replace")}
    if not isinstance(body, dict):
        body = {}
    if status >= 400 or body.get("type") == "error":
        raise _error(int(body.get("error_code") or status), str(body.get("error") or status),
                     what)
    return Response(status, body, etag)


def _error(code: int, message: str, what: str) -> DriverError:
    text = f"{what}: {message}"
    if code == 404:
        return NotFound(text)
    if code in _TRANSIENT_STATUS or any(part.lower() in message.lower()
                                        for part in _TRANSIENT_TEXT):
        return TransientError(text, delay=1.0)
    return PermanentError(text)


def path_of(*parts: str) -> str:
    """`/1.0/...` with every part quoted: names reach the path as one segment each."""
    return "/1.0/" + "/".join(quote(part, safe="") for part in parts)


def name_of(url: str) -> str:
    """The object a listing's URL names (`/1.0/instances/NAME?project=P` -> NAME)."""
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])
