"""LXD's event stream: lifecycle events -> refs (pure), the WebSocket framing against a
server speaking RFC 6455 on a unix socket made here, and the driver's events() on the real
daemon, alone and driving the agent: a change made by hand is put back without a resync."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.drivers.lxd import LxdDriver
from reconciler.drivers.lxd.client import Client, Remote
from reconciler.drivers.lxd.events import Stream, StreamClosed, refs_of, watch
from reconciler.model.fields import Ref
from tests.lxd import support
from tests.lxd.world import World

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _event(source: str, action: str = "instance-updated", project: str = "default",
           **context: Any) -> dict[str, Any]:
    return {"type": "lifecycle", "timestamp": "2026-11-30T10:00:00Z", "project": project,
            "location": "none",
            "metadata": {"action": action, "source": source, "context": context}}


@pytest.mark.parametrize(("event", "refs"), [
    (_event("/1.0/instances/web"), [Ref("Domain", "web")]),
    (_event("/1.0/instances/web/snapshots/s1", "instance-snapshot-created"),
     [Ref("Domain", "web")]),
    (_event("/1.0/instances/db?project=default", "instance-stopped"), [Ref("Domain", "db")]),
    (_event("/1.0/instances/new", "instance-renamed", old_name="old"),
     [Ref("Domain", "new"), Ref("Domain", "old")]),
    (_event("/1.0/networks/br%2Dx", "network-updated"), [Ref("Network", "br-x")]),
    (_event("/1.0/instances/web", project="other"), []),
    (_event("/1.0/profiles/default", "profile-updated"), []),
    (_event("/1.0/instances/", "instance-updated"), []),
    ({"type": "logging", "metadata": {"message": "x"}}, []),
    ({"type": "lifecycle", "metadata": "nonsense"}, []),
    ({"type": "lifecycle", "metadata": {"source": "/1.0/instances/x", "action": 7,
                                        "context": {"old_name": "y"}}}, [Ref("Domain", "x")]),
    ({"type": "lifecycle", "metadata": {"source": 5}}, []),
    ("not an object", []),
])
def test_lifecycle_events_name_instances_and_networks(event: Any, refs: list[Ref]) -> None:
    assert refs_of(event, "default") == refs


# ------------------------------------------------------------------ framing
def _frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    head = bytes([(0x80 if fin else 0) | opcode])
    if len(payload) < 126:
        head += bytes([len(payload)])
    elif len(payload) < 65536:
        head += bytes([126]) + struct.pack("!H", len(payload))
    else:
        head += bytes([127]) + struct.pack("!Q", len(payload))
    return head + payload


def _unmask(data: bytes) -> tuple[int, bytes]:
    """A client frame as the server reads it: (opcode, payload); it must be masked."""
    assert data[1] & 0x80, "client frames are masked"
    size, mask = data[1] & 0x7F, data[2:6]
    return data[0] & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data[6:6 + size]))


class FakeServer:
    """A WebSocket server on a unix socket: answers the upgrade, then sends what each
    connection is given, a few bytes at a time, and records what the client sends."""

    def __init__(self, path: Path, sessions: list[list[bytes]], accept: str | None = None,
                 status: str = "101 Switching Protocols") -> None:
        self.path, self.sessions, self.accept, self.status = path, sessions, accept, status
        self.requests: list[str] = []
        self.received: list[bytes] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        for frames in self.sessions:
            conn, _ = self.sock.accept()
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(4096)
                text = request.decode()
                self.requests.append(text)
                key = next(line.split(":", 1)[1].strip() for line in text.split("\r\n")
                           if line.lower().startswith("sec-websocket-key:"))
                accept = self.accept or base64.b64encode(
                    hashlib.sha1((key + GUID).encode(), usedforsecurity=False).digest()).decode()
                conn.sendall(f"HTTP/1.1 {self.status}\r\nUpgrade: websocket\r\n"
                             f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}"
                             "\r\n\r\n".encode())
                data = b"".join(frames)
                at = 0
                while at < len(data):  # the first frames split across reads, the rest bulk
                    step = 7 if at < 600 else 4093
                    conn.sendall(data[at:at + step])
                    at += step
                    time.sleep(0.001)
                conn.settimeout(0.5)
                try:
                    while chunk := conn.recv(4096):
                        self.received.append(chunk)
                except TimeoutError:
                    pass

    def close(self) -> None:
        self.sock.close()


def _client(path: Path) -> Client:
    return Client(Remote(f"unix://{path}"))


def test_frames_split_across_reads_fragments_pings_and_close(tmp_path: Path) -> None:
    big = json.dumps(_event("/1.0/instances/" + "b" * 300)).encode()
    huge = b"x" * 70000
    server = FakeServer(tmp_path / "s.sock", [[
        _frame(0x9, b"are you there"),
        _frame(0x1, b'{"type": "lif', fin=False), _frame(0x0, b'ecycle"}'),
        _frame(0x1, big), _frame(0x2, huge), _frame(0x8, struct.pack("!H", 1001))]])
    stream = Stream.open(_client(tmp_path / "s.sock"), {"type": "lifecycle"}, timeout=0.5)
    try:
        assert stream.next() == '{"type": "lifecycle"}'
        assert stream.next() == big.decode()
        assert stream.next() == huge.decode()
        with pytest.raises(StreamClosed):
            stream.next()
    finally:
        stream.sock.close()
    server.thread.join(5)
    server.close()
    assert server.requests[0].startswith("GET /1.0/events?type=lifecycle HTTP/1.1\r\n")
    sent = b"".join(server.received)
    pong_size = 2 + 4 + len(b"are you there")
    assert _unmask(sent[:pong_size]) == (0xA, b"are you there")  # the ping answered
    assert _unmask(sent[pong_size:]) == (0x8, struct.pack("!H", 1001))  # the close echoed


def test_a_quiet_stream_times_out_without_losing_a_frame(tmp_path: Path) -> None:
    path = tmp_path / "q.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    client_side = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client_side.connect(str(path))
    server_side, _ = listener.accept()
    stream = Stream(client_side, 0.05)
    client_side.settimeout(0.05)
    frame = _frame(0x1, b"hello")
    server_side.sendall(frame[:3])
    assert stream.next() is None  # half a frame, then silence: nothing yet, nothing lost
    server_side.sendall(frame[3:])
    assert stream.next() == "hello"
    for sock in (server_side, client_side, listener):
        sock.close()


@pytest.mark.parametrize(("accept", "status"), [("d3Jvbmc=", "101 Switching Protocols"),
                                                (None, "403 Forbidden")])
def test_a_wrong_upgrade_answer_is_refused(tmp_path: Path, accept: str | None,
                                           status: str) -> None:
    server = FakeServer(tmp_path / "w.sock", [[]], accept=accept, status=status)
    with pytest.raises(StreamClosed):
        Stream.open(_client(tmp_path / "w.sock"), {"type": "lifecycle"})
    server.close()


def test_after_a_reconnect_every_current_object_is_rechecked(tmp_path: Path) -> None:
    one = json.dumps(_event("/1.0/instances/a")).encode()
    two = json.dumps(_event("/1.0/instances/skipme")).encode()
    three = json.dumps(_event("/1.0/networks/n1", "network-created")).encode()
    server = FakeServer(tmp_path / "r.sock", [[_frame(0x1, one)],  # then the stream ends
                                              [_frame(0x1, two), _frame(0x1, three)]])
    stop = threading.Event()
    seen: list[Ref] = []
    current = [Ref("Domain", "a"), Ref("Domain", "b"), Ref("Domain", "skipme")]
    for ref in watch(_client(tmp_path / "r.sock"), stop, wanted=lambda n: n != "skipme",
                     current=lambda: current, poll=0.05):
        seen.append(ref)
        if len(seen) == 4:
            stop.set()
    server.close()
    assert seen == [Ref("Domain", "a"), Ref("Domain", "a"), Ref("Domain", "b"),
                    Ref("Network", "n1")]


# ------------------------------------------------------------------ the real daemon
def _listen(driver: LxdDriver) -> tuple[threading.Event, list[Ref], threading.Thread]:
    stop = threading.Event()
    seen: list[Ref] = []

    def consume() -> None:
        for ref in driver.events(stop):
            seen.append(ref)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    time.sleep(0.3)  # the stream is open
    return stop, seen, thread


def _until(check: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    return check()


@pytest.fixture
def driver(world: World) -> Iterator[LxdDriver]:
    made = LxdDriver(world.tmp / "state", **support.options(world.daemon, world.prefix))
    yield made
    made.close()


def test_changes_made_by_hand_arrive_as_events(world: World, driver: LxdDriver) -> None:
    name, other = world.name("ev"), world.name("rn")
    world.write(name, support.spec(name, state="stopped"))
    world.apply()
    world.daemon.lxc("init", "busybox", other)
    stop, seen, thread = _listen(driver)
    try:
        started = time.monotonic()
        world.daemon.lxc("config", "set", name, "limits.memory", "100MiB")
        assert _until(lambda: Ref("Domain", name) in seen, 1.0), seen
        assert time.monotonic() - started < 1.0
        world.daemon.lxc("move", other, f"{other}x")
        assert _until(lambda: {Ref("Domain", other), Ref("Domain", f"{other}x")} <= set(seen))
        world.daemon.lxc("init", "busybox", "rcnotours")  # outside the driver's match
        world.daemon.lxc("delete", "rcnotours")
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert Ref("Domain", "rcnotours") not in seen


def test_the_agent_puts_back_a_change_made_by_hand_without_a_resync(world: World) -> None:
    from reconciler.agent import Agent, AgentSettings, WatchSettings

    name = world.name("ag")
    world.write(name, support.spec(name))
    agent = Agent(world.config(), AgentSettings(watch=WatchSettings(resync=0), listen=None),
                  [str(world.specs)])
    loop = threading.Thread(target=agent._loop)
    agent._loop_thread = loop
    agent._setup()
    loop.start()
    try:
        assert _until(lambda: (support.instance(world.daemon, name) or {}).get("status")
                      == "Running", 120), agent.last_pass
        time.sleep(1.0)  # the passes our own changes set off are over
        world.daemon.lxc("config", "set", name, "limits.memory", "100MiB")
        put_back = _until(lambda: world.instance(name)["config"]["limits.memory"] == "128MiB",
                          10)
        assert put_back, world.instance(name)["config"]["limits.memory"]
        assert agent.last_pass["trigger"] == "events"
        assert support.boots(world.daemon, name) == 1  # memory is live: no restart
    finally:
        agent.request_stop("test over")
        loop.join(30)
        agent._teardown()
    assert not loop.is_alive()
    assert os.path.exists(world.tmp / "state" / "journal.jsonl")
