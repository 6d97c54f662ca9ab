"""The reconcile loop: file changes, resyncs, driver events and retries -> passes.

One thread runs passes, one at a time (load what changed, plan, apply); the watcher, driver
event sources, the git poller, the HTTP server and the systemd heartbeat run beside it and
only hand it work. The main thread does nothing but wait for signals:

    SIGTERM/SIGINT  no new step starts; the running ones finish; status written; exit 0
    SIGHUP          config reloaded, directories rescanned, a full pass

What a pass covers:
    files      changed files reparsed; only the objects they touch planned (see planner.py)
    events     objects a driver reported changed, re-observed and planned
    retry      objects whose backoff ran out
    resync     every file re-stat'ed, the whole host re-observed, everything planned (drift)
    rescan     a symlink swap, a root removed or recreated, or lost inotify events
"""

from __future__ import annotations

import contextlib
import gc
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from reconciler.engine import apply_planned
from reconciler.engine.apply import ApplyReport, StepOutcome
from reconciler.engine.config import Config, build_hosts
from reconciler.engine.hosts import Hosts
from reconciler.engine.journal import Journal
from reconciler.engine.lock import StateLock
from reconciler.engine.plan import Plan
from reconciler.errors import ConfigError, DriverError, ReconcilerError
from reconciler.log import get_logger
from reconciler.model.fields import Ref

from .backoff import Backoff, RateLimit
from .gitsource import GitHealth, GitPoller, GitSource
from .http import HttpServer
from .metrics import OBJECT_STATES, Metrics
from .planner import LiveCache, plan_full, plan_some
from .settings import AgentSettings
from .specstore import FileRead, SpecStore, Update
from .status import iso, write_status
from .systemd import Heartbeat, Notifier
from .watch import ChangeTracker, Rescan, SpecWatcher

STATUS_EVERY = 0.5


@dataclass(frozen=True)
class ObjState:
    state: str
    error: str | None = None
    note: str | None = None
    restart_pending: bool = False
    source: str | None = None

    def to_json(self, failing: Any = None) -> Any:
        if self.state == "in_sync" and not self.restart_pending:
            return "in_sync"
        out: dict[str, Any] = {"state": self.state}
        for key in ("error", "note", "source"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.restart_pending:
            out["restart_pending"] = True
        if failing is not None:
            out["failures"] = failing.failures
            out["retry_at"] = failing.retry_at
        return out


IN_SYNC = ObjState("in_sync")


@dataclass
class Work:
    reads: dict[str, str] = field(default_factory=dict)  # name -> complete|changed|deleted
    rescans: list[Rescan] = field(default_factory=list)
    resync: bool = False
    reload: bool = False
    verify_failed: bool = False
    recheck: set[Ref] = field(default_factory=set)
    retry: set[Ref] = field(default_factory=set)
    startup: bool = False

    def __bool__(self) -> bool:
        return bool(self.reads or self.rescans or self.resync or self.reload or self.recheck or
                    self.retry or self.startup or self.verify_failed)

    @property
    def trigger(self) -> str:
        for name, on in (("startup", self.startup), ("reload", self.reload),
                         ("rescan", bool(self.rescans)), ("resync", self.resync),
                         ("verify", self.verify_failed), ("files", bool(self.reads)),
                         ("events", bool(self.recheck)), ("retry", bool(self.retry))):
            if on:
                return name
        return "none"


class Agent:
    def __init__(self, config: Config, settings: AgentSettings, paths: list[str], *,
                 reload: Callable[[], tuple[Config, AgentSettings]] | None = None) -> None:
        self.config, self.settings = config, settings
        self.paths = [os.path.abspath(p) for p in paths]
        self._reload_fn = reload
        self.clock = time.monotonic
        self.log = get_logger()
        self.stop_event = threading.Event()
        self._cond = threading.Condition()
        self._reload_requested = False
        self._generation = 0  # bumped by every wake-up, so none is lost before a wait
        self._seen_generation = 0
        self._recheck: set[Ref] = set()
        self._verify_failed = False
        self.metrics = Metrics()
        self.notifier = Notifier()
        self.git: GitSource | None = None
        self.git_poller: GitPoller | None = None
        self.hosts: Hosts | None = None
        self.live: LiveCache | None = None
        self.journal: Journal | None = None
        self.watcher: SpecWatcher | None = None
        self.http: HttpServer | None = None
        self.store: SpecStore | None = None
        w = settings.watch
        self.tracker = ChangeTracker(settle=w.settle, quiet=w.quiet, cap=w.cap,
                                     open_hold=w.open_hold, wake=self._wake)
        self.backoff = Backoff(w.backoff_initial, w.backoff_max)
        self.rate = RateLimit(w.rate, w.burst)
        self.objects: dict[Ref, ObjState] = {}
        self._objects_json: dict[str, Any] = {}
        self.started_at = time.time()
        self.last_pass: dict[str, Any] | None = None
        self.last_success: float | None = None
        self.last_ok: bool | None = None
        self.commit: str | None = None
        self.ready = False
        self.crashed: str | None = None
        self._heartbeat = self.clock()
        self._last_activity = self.clock()
        self._next_resync = 0.0
        self._status_dirty = True
        self._status_written = 0.0
        self._pending_work = Work()
        self._events_stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._loop_thread: threading.Thread | None = None

    # ------------------------------------------------------------ called from other threads
    def _wake(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def request_stop(self, why: str = "stop requested") -> None:
        if not self.stop_event.is_set():
            self.log.info("agent.stopping", reason=why)
            self.notifier.stopping(f"stopping: {why}")
        self.stop_event.set()
        self._wake()

    def request_reload(self) -> None:
        with self._cond:
            self._reload_requested = True
            self._generation += 1
            self._cond.notify_all()

    def recheck(self, ref: Ref) -> None:
        with self._cond:
            self._recheck.add(ref)
            self._generation += 1
            self._cond.notify_all()

    def health(self) -> tuple[bool, dict[str, Any]]:
        watcher = self.watcher is not None and self.watcher.alive()
        loop = self._loop_thread is not None and self._loop_thread.is_alive()
        reasons = []
        if not watcher:
            reasons.append("file watcher is not running")
        if not loop:
            reasons.append("reconcile loop is not running")
        git = self.git_poller.health if self.git_poller is not None else None
        if git is not None and git.last_error:
            reasons.append(f"git: {git.last_error}")
        if self.last_ok is None:
            reasons.append("no pass has finished yet")
        elif not self.last_ok:
            reasons.append(f"last pass {self.last_pass.get('result') if self.last_pass else ''}")
        body = {"status": "ok" if not reasons else "unhealthy", "reasons": reasons,
                "last_pass": self.last_pass, "last_success": iso(self.last_success),
                "watcher": "alive" if watcher else "dead", "commit": self.commit}
        if git is not None:
            body["git"] = git.to_json()
        return not reasons, body

    def _git_result(self, health: GitHealth) -> None:
        """After each poll (the git thread): metrics now, the status file soon."""
        self.metrics.git_up.set(0 if health.last_error else 1)
        if health.last_error:
            self.metrics.git_failures.inc()
        if health.last_success is not None:
            self.metrics.git_last_success.set(health.last_success)
        self._status_dirty = True
        self._wake()

    def _alive(self) -> bool:
        loop = self._loop_thread is not None and self._loop_thread.is_alive()
        fresh = self.clock() - self._heartbeat < self.settings.watch.stall_timeout
        return loop and fresh and self.watcher is not None and self.watcher.alive()

    # ------------------------------------------------------------ lifecycle (main thread)
    def run(self) -> int:
        lock = StateLock(self.config.state_dir, "agent")
        try:
            lock.acquire()
        except ReconcilerError as exc:
            return _error(str(exc))
        try:
            return self._run_locked()
        finally:
            lock.release()

    def _run_locked(self) -> int:
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT,
                                                           signal.SIGHUP)}

        def on_stop(signum: int, frame: FrameType | None) -> None:
            self.request_stop(signal.Signals(signum).name)

        def on_hup(signum: int, frame: FrameType | None) -> None:
            self.request_reload()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)
        try:
            self._setup()
        except (ReconcilerError, OSError) as exc:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._teardown()
            return _error(str(exc))
        try:
            self._loop_thread = threading.Thread(target=self._loop, name="reconcile")
            self._loop_thread.start()
            Heartbeat(self.notifier, self._alive, self.stop_event).start()
            while self._loop_thread.is_alive():
                self._loop_thread.join(0.5)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop_event.set()
            self._teardown()
        if self.crashed:
            return _error(f"the reconcile loop stopped: {self.crashed}")
        self.log.info("agent.stopped")
        return 0

    def _setup(self) -> None:
        self.log.info("agent.starting", pid=os.getpid(), state_dir=self.config.state_dir,
                      paths=self.paths, driver=self.config.driver)
        self.hosts = build_hosts(self.config)
        self.live = LiveCache(self.hosts, after_refresh=gc.freeze)
        self.journal = Journal(self.config.state_dir)
        if self.settings.git is not None:
            self.git = GitSource(self.settings.git, self.config.state_dir)
            self.git.base.mkdir(parents=True, exist_ok=True)
            self.paths = [self.git.root]
            self.git_poller = GitPoller(
                self.git, self.stop_event,
                on_commit=lambda commit: self.tracker.request_rescan("git commit", True,
                                                                     self.clock()),
                on_result=self._git_result)
            self._threads.append(self.git_poller)
        self.store = SpecStore(self.paths)
        self.watcher = SpecWatcher(self.paths, self.tracker, self.clock)
        self.watcher.start()
        for thread in self._threads:  # the git poller: after the watcher, so no swap is missed
            thread.start()
        if self.settings.listen:
            self.http = HttpServer(self.settings.listen, self.health, self.metrics.render)
            self.http.start()
            self.log.info("http.listening", address=self.http.address, port=self.http.port)
        self._start_event_sources()

    def _teardown(self) -> None:
        self._events_stop.set()
        if self.live is not None and self.live.background_running():
            self.live.wait_background(timeout=10.0)
        if self.watcher is not None:
            self.watcher.stop()
        if self.http is not None:
            with contextlib.suppress(Exception):
                self.http.stop()
        for thread in self._threads:
            thread.join(timeout=2)
        if self.journal is not None:
            with contextlib.suppress(Exception):
                self.journal.close()
        if self.hosts is not None:
            with contextlib.suppress(Exception):
                self.hosts.close()
        self.notifier.close()

    def _start_event_sources(self) -> None:
        assert self.hosts is not None
        self._events_stop = stop = threading.Event()
        for name, driver in self.hosts.drivers.items():
            if not driver.capabilities.events:
                continue
            thread = threading.Thread(target=self._events, args=(name, driver.events, stop),
                                      name=f"events-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _events(self, name: str, events: Callable[[threading.Event], Any],
                stop: threading.Event) -> None:
        """A driver's host events -> immediate re-checks of those objects."""
        while not stop.is_set() and not self.stop_event.is_set():
            try:
                for ref in events(stop):
                    if isinstance(ref, Ref):
                        self.recheck(ref)
                    if stop.is_set() or self.stop_event.is_set():
                        return
            except Exception as exc:
                self.log.warning("events.failed", driver=name, error=str(exc))
            stop.wait(5.0)

    # ------------------------------------------------------------ the loop (loop thread)
    def _loop(self) -> None:
        try:
            self._schedule_resync()
            self._run_pass(Work(startup=True))
            while not self.stop_event.is_set():
                work, wait = self._collect()
                if work is not None:
                    self._run_pass(work)
                    continue
                idle_at = self._idle_at()
                if idle_at is not None:
                    now = self.clock()
                    if idle_at > now:
                        wait = idle_at - now if wait is None else min(wait, idle_at - now)
                    elif wait is None or wait >= 0.2:  # nothing else is about to be due
                        self._idle_tasks()
                        continue
                self._flush_status()
                self._sleep(wait)
        except Exception as exc:  # the loop's death is reported, not swallowed
            self.crashed = f"{type(exc).__name__}: {exc}"
            self.log.exception("agent.crashed", error=self.crashed)
            self.stop_event.set()
        finally:
            self._flush_status(force=True)

    def _sleep(self, wait: float | None) -> None:
        self._heartbeat = self.clock()
        with self._cond:
            if self.stop_event.is_set() or self._generation != self._seen_generation:
                return
            self._cond.wait(timeout=min(wait, 60.0) if wait is not None else 60.0)
        self._heartbeat = self.clock()

    def _run_pass(self, work: Work) -> None:
        """One pass; an unexpected error fails that pass, not the agent: it is logged with
        its traceback, the host cache is dropped and a full resync follows in 30 s."""
        try:
            self._pass(work)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            self.log.exception("pass.crashed", trigger=work.trigger, error=error)
            if self.live is not None:
                self.live.invalidate(None)
            self._next_resync = min(self._next_resync, self.clock() + 30.0)
            self._finish_pass(None, None, work.trigger, "full", self.clock(), time.time(),
                              result="failed", error=f"the pass failed: {error}")

    def _schedule_resync(self) -> None:
        w = self.settings.watch
        jitter = 1.0 + random.uniform(-w.resync_jitter, w.resync_jitter)  # noqa: S311
        self._next_resync = self.clock() + max(1.0, w.resync * jitter) if w.resync > 0 \
            else float("inf")

    def _collect(self) -> tuple[Work | None, float | None]:
        """Gather what is due into the pending work; return it when a pass may start now,
        else (None, seconds until something may be due)."""
        with self._cond:
            self._seen_generation = self._generation
        now = self.clock()
        work = self._pending_work
        due = self.tracker.due(now)
        for item in due.ready:
            work.reads[item.name] = item.kind
        work.rescans.extend(due.rescans)
        with self._cond:
            if self._reload_requested:
                work.reload, self._reload_requested = True, False
            work.recheck |= self._recheck
            self._recheck = set()
            if self._verify_failed:
                work.verify_failed, self._verify_failed = True, False
        if now >= self._next_resync:
            work.resync = True
            self._schedule_resync()
        retry_at = self.backoff.next_at()
        if retry_at is not None and retry_at <= now:
            work.retry |= self.backoff.due(now)
            retry_at = self.backoff.next_at()
        waits = [t - now for t in (due.next_at, self._next_resync, retry_at) if t is not None]
        if self._status_dirty:
            waits.append(self._status_written + STATUS_EVERY - now)
        wait = max(0.0, min(waits)) if waits else None
        if not work:
            return None, wait
        delay = self.rate.wait(now)
        if delay > 0:
            return None, delay
        self._pending_work = Work()
        return work, wait

    def _idle_at(self) -> float | None:
        """When the idle tasks may run (None: there are none)."""
        idle = self.settings.watch.idle_refresh
        if self.store is not None and self.store.unverified:
            return self._last_activity + idle
        live = self.live
        if live is not None and live.stale and not live.background_running():
            retry = live.background_started + (30.0 if live.background_error else idle)
            return max(self._last_activity + idle, retry)
        return None

    def _idle_tasks(self) -> bool:
        """Between bursts: verify the fast path's cross-file check, refresh the host cache.
        True when it did something (the loop then looks for work again)."""
        assert self.store is not None and self.live is not None
        if self.store.unverified:
            if not self.store.verify():
                self.log.warning("specs.verify_mismatch",
                                 reason="the full cross-file check disagrees with the "
                                        "incremental one; planning everything")
                with self._cond:
                    self._verify_failed = True
            return True
        if self.live.stale:
            if self.live.background_error:
                self.log.warning("observe.failed", error=self.live.background_error)
            return self.live.refresh_in_background()
        return False

    def _compact_memory(self) -> None:
        """After a pass over everything: collect once, then freeze what survives so the
        collector does not walk ~10^5 long-lived spec and host objects on every later pass
        (a full collection at 10,000 objects takes ~0.1 s, a latency spike if it lands in one).
        A host refresh freezes its new map too (`after_refresh`); cyclic garbage frozen with
        it is collected here, at the next full pass."""
        gc.unfreeze()
        gc.collect()
        gc.freeze()

    # ------------------------------------------------------------ one pass
    def _pass(self, work: Work) -> None:
        assert self.store is not None and self.live is not None and self.journal is not None
        assert self.hosts is not None
        started, wall = self.clock(), time.time()
        self._timings: dict[str, float] = {}
        self._heartbeat = started
        trigger = work.trigger
        full = work.startup or work.reload or work.resync or work.verify_failed
        if work.reload:
            self._reload()
        if self.git is not None and self.git.current_commit() is None:
            if work.startup:
                self.notifier.ready("waiting for the first git fetch")
            self.log.warning("git.waiting", reason="no commit fetched yet; nothing is planned")
            self._last_activity = self.clock()
            return
        if work.startup:
            update = self.store.load_all(stop=self.stop_event.is_set)
            if self.stop_event.is_set():
                return
            self.metrics.files_read.inc(len(update.changed_files))
            self.ready = True
            self.notifier.ready(f"watching {', '.join(self.paths)}; "
                                f"{len(self.store.specs.objects)} objects")
            self.log.info("agent.ready", files=len(self.store.files),
                          objects=len(self.store.specs.objects))
        else:
            update, root_moved = self._load_changes(work)
            full = full or root_moved
        self._timings["load"] = round(self.clock() - started, 4)
        affected = set(update.affected) | work.recheck | work.retry
        for ref in update.affected:
            self.backoff.retry_now(ref, started)
        if work.recheck:
            self.live.invalidate(work.recheck)
        if not full and not affected:
            self._last_activity = self.clock()
            self._status_dirty = True
            return
        real = self.store.real_roots()
        commit = None
        if self.git is not None:
            commit = next((c for c in (self.git.commit_of(r) for r in real.values()) if c), None)
        context: dict[str, Any] = {"drivers": sorted(self.hosts.names()), "trigger": trigger,
                                   "agent": True}
        if commit:
            context["commit"] = commit
        settings = self.config.settings
        try:
            plan = None if full else plan_some(self.store.specs, affected, self.live, settings,
                                               context, profiles=self.store.profiles())
            if plan is None:
                full = True
                plan = plan_full(self.store.specs, self.live, settings, context,
                                 fresh=work.resync or work.startup or work.reload or
                                 bool(self.live.stale) or self.live.observed is None or
                                 bool(work.rescans))
        except DriverError as exc:
            self.log.error("observe.failed", error=str(exc), trigger=trigger)
            self._finish_pass(None, None, trigger, "full" if full else "partial", started, wall,
                              result="failed", error=f"cannot read the host: {exc}")
            return
        if commit:
            self.commit = commit
        self._timings["plan"] = round(self.clock() - started - self._timings["load"], 4)
        report = self._apply(plan, started)
        self._timings["apply"] = round(self.clock() - started - self._timings["load"] -
                                       self._timings["plan"], 4)
        self._account(plan, report, full)
        self._finish_pass(plan, report, trigger, "full" if full else "partial", started, wall)
        if full:
            self._compact_memory()

    def _load_changes(self, work: Work) -> tuple[Update, bool]:
        """Read what is due; a rescan compares every file with the cache first."""
        assert self.store is not None and self.watcher is not None
        now = self.clock()
        real = self.store.real_roots()
        root_moved = False
        reads: list[FileRead] = []
        gone: list[str] = []
        names = dict(work.reads)
        if work.rescans or work.resync or work.reload:
            trusted = work.reload or any(r.trusted for r in work.rescans)
            if trusted:
                # the scan below reads the tree as it is; cleared before it, not after, so a
                # file written while it runs keeps its event and is read by the next pass
                self.tracker.clear()
            for r in work.rescans:
                self.metrics.rescans.labels(r.reason).inc()
            if work.rescans:
                self.log.info("watch.rescan", reasons=sorted({r.reason for r in work.rescans}),
                              trusted=trusted)
            if self.watcher.needs_refresh or work.rescans or work.reload:
                before = self.watcher.watching()
                self.watcher.refresh()
                root_moved = before != self.watcher.watching() or any(
                    r.reason != "overflow" and "directory" not in r.reason
                    for r in work.rescans)
            found = self.store.scan(real)
            changed, vanished = self.store.changed_since_cache(found)
            pending = self.tracker.pending()
            if trusted:
                names = {n: k for n, k in names.items() if n in found}
                for name in changed:
                    names[name] = "complete"
                gone.extend(vanished)
            else:
                for name in changed:
                    if name not in pending and name not in names:
                        self.tracker.add(name, "changed", now, found[name])
                for name in vanished:
                    if name not in pending and name not in names:
                        self.tracker.add(name, "deleted", now)
        for name, kind in sorted(names.items()):
            if kind == "deleted":
                gone.append(name)
                continue
            result = self.store.read(name, real)
            if result.loaded is None:
                self.tracker.add(name, "deleted", now)  # vanished since: let it settle
            elif not result.stable:
                self.tracker.add(name, "changed", now, result.key)
            else:
                reads.append(result)
        self.metrics.files_read.inc(len(reads))
        update = self.store.apply(reads, gone, force_full=root_moved)
        if update.changed_files:
            self.log.info("specs.changed", files=update.changed_files[:20],
                          count=len(update.changed_files), objects=len(update.affected),
                          incremental=update.fast)
        return update, root_moved

    def _apply(self, plan: Plan, now: float) -> ApplyReport | None:
        assert self.hosts is not None and self.journal is not None
        if plan.breaker:
            self.metrics.removals_refused.inc()
        blocked = self.backoff.blocked(now)
        skip = {s.id for s in plan.steps if s.ref in blocked}

        def progress(outcome: StepOutcome, done: int, total: int) -> None:
            self._heartbeat = self.clock()

        return apply_planned(plan, self.hosts, self.journal, parallel=self.config.parallel,
                             journal_max_bytes=self.config.journal_max_bytes,
                             stop=self.stop_event, skip=skip, progress=progress)

    def _account(self, plan: Plan, report: ApplyReport | None, full: bool) -> None:
        """Per-object state, backoff and metrics from a plan and how its apply went."""
        assert self.live is not None
        now = self.clock()
        kinds = {s.id: s.kind for s in plan.steps}
        outcomes = report.outcomes if report else {}
        for sid, outcome in outcomes.items():
            if outcome.error != "object refused":
                self.metrics.steps.labels(kinds.get(sid, "?"), outcome.result).inc()
        touched = {s.ref for s in plan.steps if s.id in outcomes and
                   outcomes[s.id].attempts > 0}
        self.live.invalidate(touched)
        blocked = self.backoff.blocked(now)
        states: dict[Ref, ObjState] = {} if full else self.objects
        for obj in plan.objects:
            results = [outcomes[s] for s in obj.steps if s in outcomes]
            restart = obj.update in ("restart", "recreate") and obj.action in ("update",
                                                                               "replace")
            if obj.action == "held":
                states[obj.ref] = ObjState("held", note=obj.notes[0] if obj.notes else None,
                                           source=obj.source)
                continue
            if obj.action == "refused":
                states[obj.ref] = ObjState("refused", note="; ".join(map(str, obj.refusals))
                                           or None, source=obj.source)
                continue
            failed = [o for o in results if o.result == "failed"]
            if failed:
                error = failed[0].error or "failed"
                delay = self.backoff.failed(obj.ref, now, error)
                self.metrics.failures.inc()
                self.log.warning("object.backoff", object=str(obj.ref), error=error,
                                 failures=self.backoff.objects[obj.ref].failures,
                                 retry_in=round(delay, 2))
                states[obj.ref] = ObjState("failed", error=error, restart_pending=restart,
                                           source=obj.source)
            elif obj.ref in blocked and any(o.result == "skipped" for o in results):
                previous = self.objects.get(obj.ref)
                states[obj.ref] = previous if previous and previous.state == "failed" else \
                    ObjState("failed", error="in backoff", source=obj.source)
            elif any(o.result == "skipped" for o in results) or (obj.steps and not results):
                states[obj.ref] = ObjState("pending", note="not applied yet (interrupted or "
                                           "waiting for a dependency)", restart_pending=restart,
                                           source=obj.source)
            else:
                self.backoff.succeeded(obj.ref)
                if obj.action == "remove":
                    states.pop(obj.ref, None)
                else:
                    states[obj.ref] = IN_SYNC
        if full:
            for ref in list(self.backoff.objects):
                if ref not in states:
                    self.backoff.forget(ref)
            self._objects_json = {str(r): st.to_json() for r, st in sorted(states.items())}
        else:
            for obj in plan.objects:
                st = states.get(obj.ref)
                if st is None:
                    self._objects_json.pop(str(obj.ref), None)
                else:
                    self._objects_json[str(obj.ref)] = st.to_json()
        self.objects = states

    def _finish_pass(self, plan: Plan | None, report: ApplyReport | None, trigger: str,
                     scope: str, started: float, wall: float, *, result: str | None = None,
                     error: str | None = None) -> None:
        duration = self.clock() - started
        counts = report.counts() if report else {"succeeded": 0, "failed": 0, "skipped": 0}
        notes = list(plan.notes) if plan else []
        if result is None:
            if report is not None and report.interrupted:
                result = "interrupted"
            elif counts["failed"] or counts["skipped"]:
                result = "failed"
            elif plan is not None and plan.breaker:
                result = "refused"
            else:
                result = "succeeded"
        if error:
            notes.append(error)
        ok = result == "succeeded"
        self.last_ok = ok
        finished = time.time()
        if ok:
            self.last_success = finished
            self.metrics.last_success.set(finished)
        self.metrics.passes.labels(trigger, result).inc()
        self.metrics.pass_duration.observe(duration)
        self.metrics.last_pass.set(finished)
        self.metrics.last_pass_ok.set(1 if ok else 0)
        self.last_pass = {"plan_id": plan.id if plan else None, "trigger": trigger,
                          "scope": scope, "started": iso(wall), "finished": iso(finished),
                          "duration": round(duration, 4), "result": result, "steps": counts,
                          "summary": plan.summary() if plan else {}, "notes": notes,
                          "commit": plan.context.get("commit") if plan else None}
        self.log.info("pass.finished", plan_id=plan.id if plan else None, trigger=trigger,
                      scope=scope, result=result, duration=round(duration, 4),
                      timings=getattr(self, "_timings", {}),
                      steps=len(plan.steps) if plan else 0, **counts)
        self.notifier.status(f"last pass {result} ({trigger}) at {iso(finished)}; "
                             f"{len(self.backoff.objects)} failing, "
                             f"{len(self.store.held_files()) if self.store else 0} held files")
        self._last_activity = self.clock()
        self._status_dirty = True
        self._flush_status()

    def _reload(self) -> None:
        """SIGHUP: read the config again; rebuild the drivers if their settings changed."""
        if self._reload_fn is None:
            return
        try:
            config, settings = self._reload_fn()
        except ReconcilerError as exc:
            self.log.error("config.reload_failed", error=str(exc))
            return
        if config != self.config:
            try:
                hosts = build_hosts(config)
            except (ConfigError, DriverError) as exc:
                self.log.error("config.reload_failed", error=str(exc))
                return
            old, self.hosts = self.hosts, hosts
            self.live = LiveCache(hosts, after_refresh=gc.freeze)
            self._events_stop.set()
            self._start_event_sources()
            if old is not None:
                with contextlib.suppress(Exception):
                    old.close()
        if settings.listen != self.settings.listen or settings.git != self.settings.git:
            self.log.warning("config.restart_needed",
                             reason="http and git settings take effect at the next start")
        w = settings.watch
        self.tracker.configure(settle=w.settle, quiet=w.quiet, cap=w.cap, open_hold=w.open_hold)
        self.backoff.initial, self.backoff.cap = w.backoff_initial, w.backoff_max
        self.rate = RateLimit(w.rate, w.burst)
        self.config, self.settings = config, settings
        self._schedule_resync()
        self.log.info("config.reloaded", driver=config.driver, state_dir=config.state_dir)

    # ------------------------------------------------------------ status
    def _flush_status(self, force: bool = False) -> None:
        now = self.clock()
        if not force and (not self._status_dirty or now - self._status_written < STATUS_EVERY):
            return
        self._status_dirty = False
        self._status_written = now
        counts = dict.fromkeys(OBJECT_STATES, 0)
        restarts = []
        for ref, st in self.objects.items():
            counts[st.state] = counts.get(st.state, 0) + 1
            if st.restart_pending:
                restarts.append(str(ref))
        objects = self._objects_json  # kept up to date per pass; only backoff times added
        if self.backoff.objects:
            objects = dict(objects)
            for ref, failing in self.backoff.objects.items():
                known = self.objects.get(ref)
                entry = known.to_json(failing) if known is not None else None
                if isinstance(entry, dict):
                    entry["retry_at"] = iso(time.time() + failing.retry_at - now)
                    objects[str(ref)] = entry
        for state, n in counts.items():
            self.metrics.objects.labels(state).set(n)
        held = self.store.held_files() if self.store else {}
        pending = self.tracker.pending()
        self.metrics.held_files.set(len(held))
        self.metrics.pending_files.set(len(pending))
        self.metrics.watcher_up.set(1 if self.watcher and self.watcher.alive() else 0)
        if self.commit:
            self.metrics.commit.info({"commit": self.commit})
        wall_now = time.time()
        running = not (force and self.stop_event.is_set())
        doc = {"pid": os.getpid(), "running": running, "started": iso(self.started_at),
               "updated": iso(wall_now), "state_dir": self.config.state_dir,
               "roots": self.paths, "commit": self.commit,
               "watcher": "alive" if self.watcher and self.watcher.alive() else "dead",
               "http": self.http.address if self.http else None,
               "ready": self.ready, "last_pass": self.last_pass,
               "last_success": iso(self.last_success), "object_counts": counts,
               "objects": objects,
               "held_files": [{"file": f, "errors": errs} for f, errs in sorted(held.items())],
               "pending_files": [{"file": n, "waiting": k, "since": iso(wall_now - (now - t))}
                                 for n, (k, t) in sorted(pending.items())],
               "pending_restarts": sorted(restarts)}
        if self.git_poller is not None:
            doc["git"] = {"url": self.git.settings.url if self.git else None,
                          **self.git_poller.health.to_json()}
        if self.crashed:
            doc["crashed"] = self.crashed
        try:
            write_status(self.config.state_dir, doc)
        except OSError as exc:
            self.log.warning("status.write_failed", error=str(exc))


def _error(message: str) -> int:
    print(f"reconciler: error: {message}", file=sys.stderr)
    return 1
