"""LXD's event stream -> Refs of the instances and networks it reports changed.

`GET /1.0/events?type=lifecycle` is a WebSocket (RFC 6455). The upgrade goes over the same
transport as the API (the unix socket, or TLS with the pinned certificate); then the
server's frames are read: a text frame carries one JSON event, a ping is answered, a close
ends the stream. Frames are cut from our own buffer, so a read timeout (how often `stop` is
looked at) never splits one. In a cluster, any member forwards every member's events.

A lifecycle event names what changed by its API path (`source`): `/1.0/instances/NAME...`
or `/1.0/networks/NAME`, with the project beside it. Our own changes come back too; the
agent re-observes those objects and finds nothing to do.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from reconciler.drivers.lxd.client import Client
from reconciler.errors import DriverError, PermanentError, TransientError
from reconciler.model.fields import Ref

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
_MAX_MESSAGE = 16 << 20   # one event is a few hundred bytes; a larger one is not LXD's
_MAX_HEADERS = 64 << 10
_KINDS = {"instances": "Domain", "networks": "Network"}
_TEXT, _BINARY, _CONTINUATION, _CLOSE, _PING, _PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


class StreamClosed(TransientError):
    """The daemon ended the stream (restart, member leaving): reconnect."""


class StreamRefused(PermanentError):
    """The daemon refused the stream (an untrusted certificate, an unknown project)."""


def refs_of(event: Any, project: str) -> list[Ref]:
    """The objects a lifecycle event of `project` names; [] for anything else."""
    if not isinstance(event, dict) or event.get("type") != "lifecycle":
        return []
    if (event.get("project") or "default") != project:
        return []
    meta = event.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("source"), str):
        return []
    parts = urlsplit(meta["source"]).path.split("/")
    # "", "1.0", KIND, NAME[, ...]: a snapshot, a log or a file is still its instance's
    if len(parts) < 4 or parts[1] != "1.0" or parts[2] not in _KINDS or not parts[3]:
        return []
    kind = _KINDS[parts[2]]
    refs = [Ref(kind, unquote(parts[3]))]
    context = meta.get("context")
    old = context.get("old_name") if isinstance(context, dict) else None
    if isinstance(old, str) and old and str(meta.get("action")).endswith("-renamed"):
        refs.append(Ref(kind, old))
    return refs


class Stream:
    """One open event stream: `next()` returns the next text message, or None when
    `timeout` passed without one."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        self.sock = sock
        self.timeout = timeout
        self._buf = bytearray()
        self._parts: list[bytes] = []
        self._closing = False  # our close frame is sent: never a second one

    @classmethod
    def open(cls, client: Client, query: dict[str, str], timeout: float = 1.0) -> Stream:
        sock = client.connect()
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            host = urlsplit(client.remote.url).netloc or "lxd"
            request = (f"GET /1.0/events?{urlencode(query)} HTTP/1.1\r\nHost: {host}\r\n"
                       f"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
            sock.sendall(request.encode())
            stream = cls(sock, timeout)
            stream._handshake(key)
            sock.settimeout(timeout)
            return stream
        except BaseException:
            sock.close()
            raise

    def _handshake(self, key: str) -> None:
        while b"\r\n\r\n" not in self._buf:
            if len(self._buf) > _MAX_HEADERS:
                raise StreamClosed("LXD's answer to the event stream request has no end")
            self._fill()
        head, _, rest = bytes(self._buf).partition(b"\r\n\r\n")
        self._buf = bytearray(rest)
        lines = head.decode("latin-1").split("\r\n")
        status = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip()
                   for k, _, v in (line.partition(":") for line in lines[1:])}
        if len(status) < 2 or status[1] != "101":
            refused = StreamRefused if status[1:2] and status[1].startswith("4") \
                else StreamClosed
            raise refused(f"LXD refused the event stream: {lines[0]}")
        digest = hashlib.sha1((key + _GUID).encode(), usedforsecurity=False).digest()
        accept = base64.b64encode(digest).decode()
        if headers.get("sec-websocket-accept") != accept:
            raise StreamClosed("LXD's event stream answered with a wrong Sec-WebSocket-Accept")

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise StreamClosed("LXD closed the event stream")
        self._buf += chunk

    def _frame(self) -> tuple[bool, int, bytes] | None:
        """The next whole frame in the buffer (fin, opcode, payload), or None."""
        buf = self._buf
        if len(buf) < 2:
            return None
        fin, opcode = bool(buf[0] & 0x80), buf[0] & 0x0F
        masked, size, at = bool(buf[1] & 0x80), buf[1] & 0x7F, 2
        if size == 126:
            if len(buf) < 4:
                return None
            size, at = struct.unpack_from("!H", buf, 2)[0], 4
        elif size == 127:
            if len(buf) < 10:
                return None
            size, at = struct.unpack_from("!Q", buf, 2)[0], 10
        if size > _MAX_MESSAGE:
            raise StreamClosed(f"an event frame of {size} bytes")
        mask = b""
        if masked:  # servers do not mask; accepted all the same
            if len(buf) < at + 4:
                return None
            mask, at = bytes(buf[at:at + 4]), at + 4
        if len(buf) < at + size:
            return None
        payload = bytes(buf[at:at + size])
        del buf[:at + size]
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return fin, opcode, payload

    def _send(self, opcode: int, payload: bytes) -> None:
        """A client frame: always masked (RFC 6455 §5.3); only control frames are sent."""
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload[:125]))
        self.sock.sendall(bytes((0x80 | opcode, 0x80 | len(body))) + mask + body)

    def next(self) -> str | None:
        while True:
            frame = self._frame()
            if frame is None:
                try:
                    self._fill()
                except TimeoutError:
                    return None
                continue
            fin, opcode, payload = frame
            if opcode == _PING:
                self._send(_PONG, payload)
            elif opcode == _CLOSE:
                self._close_frame(payload[:2])
                raise StreamClosed("LXD closed the event stream")
            elif opcode in (_TEXT, _BINARY, _CONTINUATION):
                self._parts.append(payload)
                if sum(map(len, self._parts)) > _MAX_MESSAGE:
                    raise StreamClosed("an event message over 16 MiB")
                if fin:
                    message, self._parts = b"".join(self._parts), []
                    return message.decode("utf-8", "replace")

    def _close_frame(self, payload: bytes) -> None:
        if not self._closing:
            self._closing = True
            with contextlib.suppress(OSError):
                self._send(_CLOSE, payload)

    def close(self) -> None:
        self._close_frame(struct.pack("!H", 1000))
        self.sock.close()


def watch(client: Client, stop: threading.Event, *, wanted: Callable[[str], bool],
          current: Callable[[], list[Ref]], catch_up: bool = False,
          backoff_max: float = 5.0, poll: float = 0.5, steady: float = 5.0) -> Iterator[Ref]:
    """Yield Refs of changed objects until `stop` is set. When the stream ends it is opened
    again, after a pause that grows while streams keep ending at once, and then every object
    `current()` names is yielded: what changed meanwhile was not heard (`catch_up`: do so
    on the first stream too). A refusal (`StreamRefused`) is raised."""
    query = {"type": "lifecycle", "project": client.project}
    delay = poll
    while not stop.is_set():
        try:
            stream = Stream.open(client, query, timeout=poll)
        except StreamRefused:
            raise
        except (OSError, TransientError):
            catch_up = True
            stop.wait(delay)
            delay = min(delay * 2, backoff_max)
            continue
        opened, heard = time.monotonic(), False
        try:
            if catch_up:
                yield from (ref for ref in current() if wanted(ref.name))
                catch_up = False
            while not stop.is_set():
                message = stream.next()
                if message is None:
                    continue
                heard = True
                try:
                    event = json.loads(message)
                except ValueError:
                    continue
                yield from (ref for ref in refs_of(event, client.project) if wanted(ref.name))
        except (OSError, DriverError):
            catch_up = True  # the stream, or the listing after it, failed: both again
        finally:
            stream.close()
        if heard or time.monotonic() - opened >= steady:
            delay = poll
        else:
            delay = min(delay * 2, backoff_max)
        stop.wait(delay)
