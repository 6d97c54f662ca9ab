"""The agent's parts without a process: completeness and debounce rules, backoff, rate limit,
the spec cache, partial planning, sd_notify, the lock, settings."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.agent.backoff import Backoff, RateLimit
from reconciler.agent.planner import LiveCache, plan_full, plan_some
from reconciler.agent.settings import agent_settings, parse_listen
from reconciler.agent.specstore import SpecStore
from reconciler.agent.systemd import Notifier
from reconciler.agent.watch import ChangeTracker, SpecWatcher, wanted
from reconciler.engine.apply import apply_plan
from reconciler.engine.config import Config, build_hosts, load_config
from reconciler.engine.journal import Journal
from reconciler.engine.lock import Holder, StateLock, holder
from reconciler.engine.plan import Settings
from reconciler.errors import ConfigError, SafetyError
from reconciler.model.fields import Ref

from .conftest import spec_text, write_atomic


class FakeStat:
    def __init__(self) -> None:
        self.keys: dict[str, tuple[int, int, int] | None] = {}

    def __call__(self, name: str) -> tuple[int, int, int] | None:
        return self.keys.get(name)


def _tracker(**kw: float) -> tuple[ChangeTracker, FakeStat]:
    stat = FakeStat()
    opts = {"settle": 1.0, "quiet": 0.03, "cap": 0.2, "open_hold": 30.0, **kw}
    return ChangeTracker(stat=stat, **opts), stat


# ------------------------------------------------------------------ completeness, debounce
def test_a_renamed_file_is_ready_after_the_quiet_window():
    t, _ = _tracker()
    t.event("/s/a.yaml", "moved_in", 10.0)
    assert t.due(10.01).ready == [] and t.due(10.01).next_at == pytest.approx(10.03)
    assert [r.name for r in t.due(10.03).ready] == ["/s/a.yaml"]


def test_a_flood_is_released_at_the_cap():
    t, _ = _tracker()
    now = 0.0
    while now < 0.5:  # an event every 10 ms never leaves 30 ms of quiet
        t.event(f"/s/f{now:.2f}.yaml", "moved_in", now)
        if now >= 0.2:
            break
        assert t.due(now).ready == []
        now += 0.01
    assert len(t.due(0.2).ready) > 10


def test_a_file_written_in_place_waits_until_stable():
    t, stat = _tracker()
    stat.keys["/s/a.yaml"] = (10, 1, 7)
    t.event("/s/a.yaml", "written", 0.0, (10, 1, 7))
    assert t.due(0.5).ready == []
    stat.keys["/s/a.yaml"] = (20, 2, 7)  # grew without an event reaching us
    assert t.due(1.0).ready == []
    assert t.due(1.5).ready == []
    assert [r.name for r in t.due(2.0).ready] == ["/s/a.yaml"]


def test_a_writer_holding_the_file_open_is_waited_for():
    t, stat = _tracker(open_hold=30.0)
    stat.keys["/s/a.yaml"] = (10, 1, 7)
    t.event("/s/a.yaml", "written", 0.0, (10, 1, 7))
    t.event("/s/a.yaml", "opened", 0.0)
    assert t.due(5.0).ready == []  # stable for 5 s, but still open for writing
    t.event("/s/a.yaml", "closed_write", 6.0, (10, 1, 7))
    assert t.due(6.5).ready == []
    assert [r.name for r in t.due(7.0).ready] == ["/s/a.yaml"]


def test_a_reader_that_never_closes_delays_at_most_open_hold():
    t, stat = _tracker(open_hold=3.0)
    stat.keys["/s/a.yaml"] = (10, 1, 7)
    t.event("/s/a.yaml", "opened", 0.0)
    t.event("/s/a.yaml", "written", 0.0, (10, 1, 7))
    assert t.due(2.0).ready == []
    assert [r.name for r in t.due(3.0).ready] == ["/s/a.yaml"]


def test_a_file_held_open_by_its_writer_is_never_read_however_long():
    writers: list[int] = [4242]
    stat = FakeStat()
    t = ChangeTracker(settle=1.0, quiet=0.03, cap=0.2, open_hold=3.0, stat=stat,
                      writers=lambda name: list(writers))
    stat.keys["/s/a.yaml"] = (10, 1, 7)
    t.event("/s/a.yaml", "opened", 0.0)
    t.event("/s/a.yaml", "written", 0.0, (10, 1, 7))
    for now in (3.0, 30.0, 600.0, 3600.0):
        assert t.due(now).ready == [], now  # pid 4242 still holds it open for writing
    writers.clear()  # the writer closed it (and its close event was lost)
    assert [r.name for r in t.due(3602.0).ready] == ["/s/a.yaml"]


def test_open_for_writing_finds_a_real_writer(tmp_path):
    from reconciler.agent.watch import open_for_writing

    path = tmp_path / "a.yaml"
    path.write_text("x")
    writer = subprocess.Popen([sys.executable, "-c", "import sys,time; f=open(sys.argv[1],'a');"
                               " print('open', flush=True); time.sleep(60)", str(path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "open"
        assert open_for_writing(str(path)) == [writer.pid]
    finally:
        writer.kill()
        writer.wait()
    reader = subprocess.Popen([sys.executable, "-c", "import sys,time; f=open(sys.argv[1]);"
                               " print('open', flush=True); time.sleep(60)", str(path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "open"
        assert open_for_writing(str(path)) == []  # a reader is not a writer
    finally:
        reader.kill()
        reader.wait()


def test_our_own_reads_do_not_start_a_burst():
    t, _ = _tracker()
    t.event("/s/a.yaml", "opened", 0.0)
    t.event("/s/a.yaml", "closed_nowrite", 0.0)
    due = t.due(0.0)
    assert due.ready == [] and due.next_at is None and t.open_writers() == {}


def test_a_deletion_settles_and_a_reappearing_file_is_a_change():
    t, stat = _tracker()
    t.event("/s/a.yaml", "gone", 0.0)
    assert t.due(0.5).ready == []
    stat.keys["/s/a.yaml"] = (5, 5, 9)  # an editor wrote it back in place
    assert t.due(1.0).ready == []
    ready = t.due(2.0).ready
    assert [(r.name, r.kind) for r in ready] == [("/s/a.yaml", "changed")]
    t.event("/s/b.yaml", "gone", 3.0)
    assert [(r.name, r.kind) for r in t.due(4.0).ready] == [("/s/b.yaml", "deleted")]


def test_rescan_requests_and_overflow():
    t, _ = _tracker()
    t.event("/s/a.yaml", "opened", 0.0)
    t.request_rescan("overflow", False, 0.0)
    due = t.due(0.1)
    assert [r.reason for r in due.rescans] == ["overflow"]
    assert t.open_writers() == {}  # counts were lost with the events


def test_overflow_warning_from_watchdog_asks_for_a_rescan(tmp_path):
    t, _ = _tracker()
    watcher = SpecWatcher([str(tmp_path)], t, clock=lambda: 0.0)
    watcher._overflow.install()
    try:
        logging.getLogger("watchdog.observers.inotify_c").warning(
            "Inotify queue overflowed; filesystem events were lost")
    finally:
        watcher._overflow.remove()
    assert [r.reason for r in t.due(1.0).rescans] == ["overflow"]
    assert watcher.needs_refresh


@pytest.mark.parametrize(("name", "ok"), [
    ("/s/a.yaml", True), ("/s/sub/a.yml", True), ("/s/a.xml", True), ("/s/.a.yaml", False),
    ("/s/.git/a.yaml", False), ("/s/a.yaml~", False), ("/s/a.yaml.swp", False),
    ("/s/#a.yaml#", False), ("/s/4913", False), ("/s/a.yaml.dpkg-new", False),
    ("/other/a.yaml", False)])
def test_the_loaders_filter(name, ok):
    assert wanted("/s", name) is ok


# ------------------------------------------------------------------ backoff, rate limit
def test_backoff_doubles_up_to_the_cap_and_clears_on_success():
    b = Backoff(1.0, 8.0, rand=lambda: 0.5)  # no jitter
    ref = Ref("Domain", "x")
    assert [b.failed(ref, 0.0, "e") for _ in range(6)] == [1, 2, 4, 8, 8, 8]
    assert b.blocked(0.0) == {ref}
    assert b.due(7.9) == set() and b.due(8.0) == {ref}
    assert b.due(9.0) == set()  # retried once per failure
    b.succeeded(ref)
    assert b.blocked(0.0) == set() and b.next_at() is None


def test_backoff_jitter_stays_within_20_percent():
    b = Backoff(10.0, 100.0)
    delays = [b.failed(Ref("Domain", f"o{i}"), 0.0, "e") for i in range(200)]
    assert min(delays) >= 8.0 and max(delays) <= 12.0 and len(set(delays)) > 100


def test_rate_limit_allows_a_burst_then_the_rate():
    r = RateLimit(rate=10.0, burst=3)
    assert [r.wait(0.0) for _ in range(3)] == [0, 0, 0]
    assert r.wait(0.0) == pytest.approx(0.1)
    assert r.wait(0.1) == 0
    assert r.wait(0.1) > 0


# ------------------------------------------------------------------ the spec cache
def test_specstore_reparses_only_changed_files_and_takes_the_fast_path(tmp_path):
    specs = tmp_path / "specs"
    for name in ("a", "b"):
        write_atomic(specs / f"{name}.yaml", spec_text(name))
    store = SpecStore([str(specs)])
    first = store.load_all()
    assert set(first.changed_files) == {str(specs / "a.yaml"), str(specs / "b.yaml")}
    loaded_b = store.files[str(specs / "b.yaml")][1]

    write_atomic(specs / "a.yaml", spec_text("a", "256MiB"))
    found = store.scan()
    changed, gone = store.changed_since_cache(found)
    assert changed == [str(specs / "a.yaml")] and gone == []
    update = store.apply([store.read(n) for n in changed])
    assert update.fast and update.affected == {Ref("Domain", "a")}
    assert store.files[str(specs / "b.yaml")][1] is loaded_b
    assert store.unverified and store.verify() and not store.unverified

    # a change a cross-file check may care about (a duplicate name) takes the full check
    write_atomic(specs / "c.yaml", spec_text("a"))
    update = store.apply([store.read(str(specs / "c.yaml"))])
    assert not update.fast
    assert str(specs / "c.yaml") in update.specs.failed_files
    assert Ref("Domain", "a") in update.affected

    # same bytes behind a new inode (a checkout): kept without a reparse
    before = store.files[str(specs / "b.yaml")][1]
    write_atomic(specs / "b.yaml", spec_text("b"))
    update = store.apply([store.read(str(specs / "b.yaml"))])
    assert update.empty and store.files[str(specs / "b.yaml")][1] is before


def test_specstore_profile_change_touches_the_domains_using_it(tmp_path):
    specs = tmp_path / "specs"
    write_atomic(specs / "p.yaml", "kind: Profile\nname: small\nmemory: 64MiB\n")
    write_atomic(specs / "a.yaml", spec_text("a") + "profile: small\n")
    write_atomic(specs / "b.yaml", spec_text("b"))
    store = SpecStore([str(specs)])
    store.load_all()
    write_atomic(specs / "p.yaml", "kind: Profile\nname: small\nmemory: 96MiB\n")
    update = store.apply([store.read(str(specs / "p.yaml"))])
    assert update.profiles_changed and update.affected == {Ref("Domain", "a")}


def _sim(state: Path):
    return build_hosts(Config(state_dir=str(state), driver="sim", driver_chosen=True))


def test_partial_plans_never_remove_the_whole_set_decides(tmp_path):
    specs, state = tmp_path / "specs", tmp_path / "state"
    for name in ("a", "b", "c"):
        write_atomic(specs / f"{name}.yaml", spec_text(name))
    store = SpecStore([str(specs)])
    store.load_all()
    hosts = _sim(state)
    live = LiveCache(hosts)
    plan = plan_full(store.specs, live, Settings(), {})
    journal = Journal(state)
    assert apply_plan(plan, hosts, journal).ok
    live.invalidate({Ref("Domain", n) for n in "abc"})

    write_atomic(specs / "a.yaml", spec_text("a", "64MiB"))
    update = store.apply([store.read(str(specs / "a.yaml"))])
    partial = plan_some(update.specs, update.affected, live, Settings(), {})
    assert partial is not None and [o.ref.name for o in partial.objects] == ["a"]
    assert live.refreshes == 2  # the touched object was stale: observed again

    os.unlink(specs / "b.yaml")
    update = store.apply([], [str(specs / "b.yaml")])
    assert plan_some(update.specs, update.affected, live, Settings(), {}) is None
    full = plan_full(update.specs, live, Settings(max_removal_share=0.2), {})
    assert any(n.startswith("removal refused") for n in full.notes)  # 1 of 3 > 20 %
    full = plan_full(update.specs, live, Settings(), {})
    assert [o.action for o in full.objects if o.ref.name == "b"] == ["remove"]
    journal.close()
    hosts.close()


# ------------------------------------------------------------------ service plumbing
def test_sd_notify_datagrams(tmp_path):
    path = tmp_path / "n.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    try:
        n = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"})
        assert n.enabled and n.watchdog_interval == 1.0
        n.ready("watching")
        assert sock.recv(100) == b"READY=1\nSTATUS=watching"
        n.close()
    finally:
        sock.close()
    assert not Notifier({}).enabled and Notifier({}).send("READY=1") is False
    other = Notifier({"NOTIFY_SOCKET": "@abstract", "WATCHDOG_USEC": "5", "WATCHDOG_PID": "1"})
    assert other.address == "\0abstract" and other.watchdog_interval is None


def test_one_agent_per_state_directory(tmp_path):
    first = StateLock(tmp_path, "agent")
    first.acquire()
    assert holder(tmp_path) == Holder(os.getpid(), "agent")
    with pytest.raises(SafetyError, match=rf"pid {os.getpid()}.*one agent per state directory"):
        StateLock(tmp_path, "agent").acquire()
    with pytest.raises(SafetyError, match=rf"agent \(pid {os.getpid()}\) is running.*stop it "
                       "before running apply"):
        StateLock(tmp_path, "apply").acquire()
    first.release()
    assert holder(tmp_path) is None
    with StateLock(tmp_path, "apply"):
        assert holder(tmp_path) == Holder(os.getpid(), "apply")
        with pytest.raises(SafetyError, match=rf"another reconciler apply \(pid {os.getpid()}\)"
                           " is already running"):
            StateLock(tmp_path, "agent").acquire()
        with pytest.raises(SafetyError, match=rf"apply \(pid {os.getpid()}\).*wait for it"):
            StateLock(tmp_path, "import").acquire()
    assert holder(tmp_path) is None


def test_lock_in_a_directory_that_cannot_be_made(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(SafetyError, match=r"cannot lock state directory .*file/state: Not a "
                       "directory; choose one you can write with --state-dir"):
        StateLock(tmp_path / "file" / "state", "apply").acquire()


def test_lock_file_of_an_older_agent_names_its_pid(tmp_path):
    """Agents before roles wrote only their pid; such a holder still reads as an agent."""
    lock = StateLock(tmp_path, "agent")
    lock.acquire()
    try:
        lock.path.write_text("4242\n")  # another open file: the flock stays ours
        assert holder(tmp_path) == Holder(4242, "")
        with pytest.raises(SafetyError, match=r"agent \(pid 4242\) is running"):
            StateLock(tmp_path, "apply").acquire()
    finally:
        lock.release()


def test_shipped_agent_config_loads(tmp_path):
    """deploy/agent.yaml is what people copy: every key in it must be one we read."""
    shipped = Path(__file__).resolve().parents[2] / "deploy" / "agent.yaml"
    config = load_config(str(shipped), state_dir=str(tmp_path))
    assert config.driver == "libvirt" and config.routes == {"kvm": "libvirt",
                                                              "network": "libvirt"}
    assert config.journal_max_bytes == 64 * 1024 * 1024 and config.parallel == 8
    settings = agent_settings(config.extra)
    assert settings.watch.resync == 300 and settings.listen == "127.0.0.1:9137"


def test_settings_from_config_and_flags():
    s = agent_settings({"watch": {"settle": 2, "burst": 5}, "http": {"listen": "[::1]:9000"},
                        "git": {"url": "https://x/y.git", "interval": 30, "path": "hosts"}},
                       resync=60)
    assert s.watch.settle == 2.0 and s.watch.burst == 5 and s.watch.resync == 60
    assert s.listen == "[::1]:9000" and parse_listen(s.listen) == ("::1", 9000)
    assert s.git is not None and s.git.interval == 30 and s.git.path == "hosts"
    assert agent_settings({"http": False}).listen is None
    assert agent_settings({}, listen="off").listen is None
    assert agent_settings({}).listen == "127.0.0.1:9137"
    for bad in ({"watch": {"setle": 1}}, {"watch": {"settle": -1}}, {"http": {"listen": "x"}},
                {"watch": {"rate": 0}}):
        with pytest.raises(ConfigError):
            agent_settings(bad)


def test_streamed_plan_record_is_the_journals_own_line(tmp_path):
    from reconciler.engine.records import write_plan

    specs, state = tmp_path / "specs", tmp_path / "state"
    for name in ("a", "b", "c"):
        write_atomic(specs / f"{name}.yaml", spec_text(name))
    store = SpecStore([str(specs)])
    store.load_all()
    hosts = _sim(state)
    plan = plan_full(store.specs, LiveCache(hosts), Settings(), {"commit": "abc"})
    journal = Journal(state)
    journal.write("plan", **plan.to_json())
    write_plan(journal, plan, stream_above=0)
    journal.close()
    hosts.close()
    plain, streamed = (state / "journal.jsonl").read_text().splitlines()
    a, b = json.loads(plain), json.loads(streamed)
    a.pop("ts"), b.pop("ts")
    assert a == b and list(a) == list(b)
    assert plain.split(',"event"', 1)[1] == streamed.split(',"event"', 1)[1]


class InProcessAgent:
    """The agent's loop in a thread of the test process (no signals, no subprocess)."""

    def __init__(self, tmp_path: Path, **settings: float) -> None:
        import threading

        from reconciler.agent import Agent, AgentSettings, WatchSettings

        self.specs, self.state = tmp_path / "specs", tmp_path / "state"
        self.specs.mkdir(exist_ok=True)
        config = Config(state_dir=str(self.state), driver="sim", driver_chosen=True)
        self.agent = Agent(config, AgentSettings(watch=WatchSettings(**{"resync": 0,
                                                                        **settings}),
                                                 listen=None), [str(self.specs)])
        self.thread = threading.Thread(target=self.agent._loop)
        self.agent._loop_thread = self.thread

    def __enter__(self) -> InProcessAgent:
        self.agent._setup()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.agent.request_stop("test over")
        self.thread.join(10)
        self.agent._teardown()

    def wait(self, check, timeout: float = 10.0):
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check(self.agent)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out; last pass: {self.agent.last_pass}")


def test_driver_events_trigger_an_immediate_recheck(tmp_path, monkeypatch):
    """A driver with events() (libvirt lifecycle events): the object it names is observed
    again and planned at once, without waiting for the resync."""
    import queue

    from reconciler.drivers.base import Capabilities
    from reconciler.drivers.sim import SimDriver

    events: queue.Queue[Ref] = queue.Queue()

    def fake_events(self, stop):
        while not stop.is_set():
            try:
                yield events.get(timeout=0.05)
            except queue.Empty:
                continue

    monkeypatch.setattr(SimDriver, "events", fake_events, raising=False)
    monkeypatch.setattr(SimDriver, "capabilities", Capabilities(events=True))
    write_atomic(tmp_path / "specs" / "a.yaml", spec_text("a"))
    with InProcessAgent(tmp_path) as run:
        run.wait(lambda a: a.last_pass)
        SimDriver(run.state).tamper(Ref("Domain", "a"), running=False)
        events.put(Ref("Domain", "a"))
        last = run.wait(lambda a: a.last_pass if a.last_pass["trigger"] == "events" else None)
        assert last["scope"] == "partial" and last["steps"]["succeeded"] == 1
        record = json.loads((run.state / "sim" / "objects" / "Domain" / "a.json").read_text())
        assert record["running"]


def test_a_pass_that_crashes_fails_alone_and_a_resync_follows(tmp_path, monkeypatch):
    from reconciler.agent import onepass as loop_module

    real = loop_module.plan_some
    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise KeyError("a bug")
        return real(*args, **kwargs)

    monkeypatch.setattr(loop_module, "plan_some", broken)
    write_atomic(tmp_path / "specs" / "a.yaml", spec_text("a"))
    with InProcessAgent(tmp_path) as run:
        run.wait(lambda a: a.last_pass)
        write_atomic(run.specs / "b.yaml", spec_text("b"))
        failed = run.wait(lambda a: a.last_pass if a.last_pass["trigger"] == "files" else None)
        assert failed["result"] == "failed" and "KeyError" in failed["notes"][-1]
        assert run.thread.is_alive()
        assert run.agent.scheduler.next_resync - run.agent.clock() <= 30.0
        write_atomic(run.specs / "c.yaml", spec_text("c"))
        ok = run.wait(lambda a: a.last_pass if a.last_pass["result"] == "succeeded" and
                      a.last_pass["trigger"] == "files" else None)
        assert ok["steps"]["succeeded"] == 3


def test_a_file_written_during_a_trusted_rescan_is_read(tmp_path, monkeypatch):
    """A reload rescans the tree and trusts what it finds; a file that appears after the scan
    listed the directory must still be read, from its watcher event, not dropped with the
    events the scan made redundant."""
    import time

    from reconciler.agent.specstore import SpecStore

    real_scan = SpecStore.scan
    armed: list[InProcessAgent] = []

    def scan_then_write(self, real=None):
        found = real_scan(self, real)
        if armed:
            run = armed.pop()
            write_atomic(run.specs / "b.yaml", spec_text("b"))
            deadline = time.monotonic() + 10
            while not any(n.endswith("b.yaml") for n in run.agent.tracker.pending()):
                assert time.monotonic() < deadline, "the watcher never saw b.yaml"
                time.sleep(0.01)
        return found

    monkeypatch.setattr(SpecStore, "scan", scan_then_write)
    write_atomic(tmp_path / "specs" / "a.yaml", spec_text("a"))
    with InProcessAgent(tmp_path) as run:
        run.wait(lambda a: a.last_pass)
        armed.append(run)
        run.agent.request_reload()
        run.wait(lambda a: not armed and a.last_pass["trigger"] != "startup")
        run.wait(lambda a: (run.state / "sim" / "objects" / "Domain" / "b.json").exists())
