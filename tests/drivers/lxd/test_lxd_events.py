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
from reconciler.drivers.lxd.events import Stream, StreamClosed, StreamRefused, refs_of, watch
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
                 status: str = "101 Switching Protocols", linger: float = 0.5) -> None:
        self.path, self.sessions, self.accept, self.status = path, sessions, accept, status
        self.linger = linger  # how long a connection stays open after its frames
        self.requests: list[str] = []
        self.received: list[bytes] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        for frames in self.sessions:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed by the test: no more sessions
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
                if not self.linger:
                    continue
                conn.settimeout(self.linger)
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


@pytest.mark.parametrize(("accept", "status", "error"), [
    ("d3Jvbmc=", "101 Switching Protocols", StreamClosed),  # not a WebSocket answer
    (None, "503 Service Unavailable", StreamClosed),         # the daemon, busy: again later
    (None, "403 Forbidden", StreamRefused)])                 # refused: no use trying again
def test_a_wrong_upgrade_answer_is_refused(tmp_path: Path, accept: str | None,
                                           status: str, error: type[Exception]) -> None:
    server = FakeServer(tmp_path / "w.sock", [[]], accept=accept, status=status)
    with pytest.raises(error):
        Stream.open(_client(tmp_path / "w.sock"), {"type": "lifecycle"})
    server.close()


def _watched(path: Path, current: list[Ref], count: int, timeout: float = 10.0,
             **options: Any) -> list[Ref]:
    """The first `count` refs `watch` yields (fewer if it takes longer than `timeout`)."""
    stop = threading.Event()
    seen: list[Ref] = []

    def run() -> None:
        for ref in watch(_client(path), stop, wanted=lambda n: n != "skipme",
                         current=lambda: current, **options):
            seen.append(ref)
            if len(seen) == count:
                stop.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    return seen


def test_after_a_reconnect_every_current_object_is_rechecked(tmp_path: Path) -> None:
    one = json.dumps(_event("/1.0/instances/a")).encode()
    two = json.dumps(_event("/1.0/instances/skipme")).encode()
    three = json.dumps(_event("/1.0/networks/n1", "network-created")).encode()
    server = FakeServer(tmp_path / "r.sock", [[_frame(0x1, one)],  # then the stream ends
                                              [_frame(0x1, two), _frame(0x1, three)]])
    current = [Ref("Domain", "a"), Ref("Domain", "b"), Ref("Domain", "skipme")]
    seen = _watched(tmp_path / "r.sock", current, 4, poll=0.05)
    server.close()
    assert seen == [Ref("Domain", "a"), Ref("Domain", "a"), Ref("Domain", "b"),
                    Ref("Network", "n1")]
    # asked to catch up (an earlier stream was lost), the first stream does it too
    server = FakeServer(tmp_path / "c.sock", [[_frame(0x1, three)]])
    assert _watched(tmp_path / "c.sock", current, 3, poll=0.05, catch_up=True) == [
        Ref("Domain", "a"), Ref("Domain", "b"), Ref("Network", "n1")]
    server.close()


def test_streams_that_end_at_once_are_opened_again_ever_more_slowly(tmp_path: Path) -> None:
    server = FakeServer(tmp_path / "e.sock", [[] for _ in range(100)], linger=0)
    calls: list[float] = []

    def current() -> list[Ref]:
        calls.append(time.monotonic())
        return []

    stop = threading.Event()
    thread = threading.Thread(target=lambda: list(watch(
        _client(tmp_path / "e.sock"), stop, wanted=lambda n: True, current=current,
        poll=0.05, backoff_max=0.4)), daemon=True)
    thread.start()
    time.sleep(1.5)
    stop.set()
    thread.join(5)
    server.close()
    # pauses of 0.1, 0.2, 0.4, 0.4 ... s: a handful of streams, not thousands
    assert 2 <= len(server.requests) <= 8, len(server.requests)
    assert len(calls) == len(server.requests) - 1  # each stream after the first caught up


def test_a_refused_stream_is_raised_not_retried(tmp_path: Path) -> None:
    server = FakeServer(tmp_path / "f.sock", [[]], status="403 Forbidden")
    with pytest.raises(StreamRefused):
        next(watch(_client(tmp_path / "f.sock"), threading.Event(), wanted=lambda n: True,
                   current=list))
    server.close()


# ------------------------------------------------------------------ the real daemon
def _listen(driver: LxdDriver, world: World, probe: str
            ) -> tuple[threading.Event, list[Ref], threading.Thread]:
    """Events of `driver` collected in a thread, once its stream is open: `probe` (an
    instance) is touched until its event arrives."""
    stop = threading.Event()
    seen: list[Ref] = []

    def consume() -> None:
        for ref in driver.events(stop):
            seen.append(ref)

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    _heard(lambda: seen, world, probe)
    seen.clear()
    return stop, seen, thread


def _heard(seen: Any, world: World, probe: str, timeout: float = 20.0) -> None:
    """Touch `probe` (a user.* key LXD does not act on) until `seen()` holds its ref."""
    deadline = time.monotonic() + timeout
    count = 0
    while Ref("Domain", probe) not in seen():
        assert time.monotonic() < deadline, "the event stream never opened"
        count += 1
        world.daemon.lxc("config", "set", probe, "user.probe", str(count))
        _until(lambda: Ref("Domain", probe) in seen(), 0.3)


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
    stop, seen, thread = _listen(driver, world, name)
    try:
        world.daemon.lxc("config", "set", name, "limits.memory", "100MiB")
        done = time.monotonic()  # the change is made: its event is on its way
        assert _until(lambda: Ref("Domain", name) in seen, 1.0), seen
        assert time.monotonic() - done < 1.0
        world.daemon.lxc("move", other, f"{other}x")
        assert _until(lambda: {Ref("Domain", other), Ref("Domain", f"{other}x")} <= set(seen))
        world.daemon.lxc("init", "busybox", "rcnotours")  # outside the driver's match
        world.daemon.lxc("delete", "rcnotours")
        seen.remove(Ref("Domain", name))
        world.daemon.lxc("config", "set", name, "user.after", "1")  # heard after those
        assert _until(lambda: Ref("Domain", name) in seen), seen
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
        probes = 0
        while not (agent.last_pass and agent.last_pass["trigger"] == "events"):
            probes += 1  # until the agent's event stream is open and heard this
            assert probes < 60, agent.last_pass
            world.daemon.lxc("config", "set", name, "user.probe", str(probes))
            _until(lambda: agent.last_pass and agent.last_pass["trigger"] == "events", 0.3)
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
