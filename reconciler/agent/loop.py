"""The agent's life: start its parts, run the reconcile loop, stop cleanly.

One thread runs passes, one at a time (`onepass`); the watcher, driver event sources, the git
poller, the HTTP server and the systemd heartbeat run beside it and only hand it work through
the scheduler (`schedule`). The main thread does nothing but wait for signals:

    SIGTERM/SIGINT  no new step starts; the running ones finish; status written; exit 0
    SIGHUP          config reloaded, directories rescanned, a full pass
    SIGUSR1         a full pass now, after a fetch from git (`reconciler reconcile`); the
                    status file's `request` says when it came and how the pass went

Modules, one concern each: `schedule` (what is due and when), `onepass` (one pass),
`accounting` (what each object's state is after a pass), `status` (the status file), and
this one (lifecycle: parts, threads, signals, reload, the loop).
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from reconciler.engine.config import Config, build_hosts
from reconciler.engine.journal import Journal
from reconciler.engine.lock import StateLock
from reconciler.errors import ConfigError, DriverError, ReconcilerError
from reconciler.log import get_logger
from reconciler.model.fields import Ref

from . import onepass
from .accounting import Accounting
from .backoff import Backoff
from .gitsource import GitHealth, GitPoller, GitSource
from .http import HttpServer
from .metrics import Metrics
from .planner import LiveCache
from .request import REQUEST_SIGNAL
from .schedule import Scheduler, Work
from .settings import AgentSettings
from .specstore import SpecStore
from .status import StatusFile, document, iso
from .systemd import Heartbeat, Notifier
from .watch import ChangeTracker, SpecWatcher


class Agent:
    def __init__(self, config: Config, settings: AgentSettings, paths: list[str], *,
                 reload: Callable[[], tuple[Config, AgentSettings]] | None = None) -> None:
        self.config, self.settings = config, settings
        self.paths = [os.path.abspath(p) for p in paths]
        self._reload_fn = reload
        self.clock = time.monotonic
        self.log = get_logger()
        self.stop_event = threading.Event()
        self.metrics = Metrics(git=settings.git is not None)
        self.notifier = Notifier()
        w = settings.watch
        self.backoff = Backoff(w.backoff_initial, w.backoff_max)
        self.tracker = ChangeTracker(settle=w.settle, quiet=w.quiet, cap=w.cap,
                                     open_hold=w.open_hold, wake=self._wake)
        self.scheduler = Scheduler(self.tracker, self.backoff, w, self.clock)
        self.accounting = Accounting(self.metrics, self.backoff, self.log)
        self.status_file = StatusFile(config.state_dir, self.clock)
        self.parts: onepass.Parts | None = None
        self.git: GitSource | None = None
        self.git_poller: GitPoller | None = None
        self.watcher: SpecWatcher | None = None
        self.http: HttpServer | None = None
        self.started_at = time.time()
        self.commit: str | None = None
        self.ready = False
        self.crashed: str | None = None
        self.request: dict[str, Any] | None = None  # the last pass asked for, and its result
        self._heartbeat = self.clock()
        self._last_activity = self.clock()
        self._events_stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._loop_thread: threading.Thread | None = None

    @property
    def last_pass(self) -> dict[str, Any] | None:
        return self.accounting.last_pass

    # ------------------------------------------------------------ called from other threads
    def _wake(self) -> None:
        self.scheduler.wake()

    def request_stop(self, why: str = "stop requested") -> None:
        if not self.stop_event.is_set():
            self.log.info("agent.stopping", reason=why)
            self.notifier.stopping(f"stopping: {why}")
        self.stop_event.set()
        self._wake()
        if self.git_poller is not None:
            self.git_poller.kick()

    def request_reload(self) -> None:
        self.scheduler.request_reload()

    def request_pass(self, received: float) -> None:
        """A full pass now (`reconciler reconcile`); with git, after a fetch, so what was
        just pushed is what the pass applies. Called from a signal handler: it logs nothing
        (the main thread may hold the log stream's lock); `agent.pass_answered` tells."""
        if self.stop_event.is_set():
            return
        if self.git_poller is not None and self.git_poller.is_alive():
            self.git_poller.fetch_now(lambda: self.scheduler.request_pass(received))
        else:
            self.scheduler.request_pass(received)

    def recheck(self, ref: Ref) -> None:
        self.scheduler.recheck(ref)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, body) for /healthz: "unhealthy" when the agent cannot do its work,
        "degraded" when it works on specs that may be old (no fetch from git worked for
        longer than git.stale_after), "ok" otherwise."""
        watcher = self.watcher is not None and self.watcher.alive()
        loop = self._loop_thread is not None and self._loop_thread.is_alive()
        accounting = self.accounting
        reasons, degraded = [], []
        if not watcher:
            reasons.append("file watcher is not running")
        if not loop:
            reasons.append("reconcile loop is not running")
        git = self.git_poller.report(time.time()) if self.git_poller is not None else None
        if git is not None:
            if git["refused"] and git["last_error"]:
                reasons.append(f"git: {git['refused']}")
            if git["stale"]:
                degraded.append(f"git: no fetch worked for {git['since_success']:.0f} s "
                                f"(git.stale_after: {git['stale_after']:g} s); git's message "
                                "is in git.last_error")
        if accounting.last_ok is None:
            waiting = self.git is not None and self.git.current_commit() is None
            reasons.append("no commit fetched from git yet" if waiting else
                           "no pass has finished yet")
        elif not accounting.last_ok:
            last = accounting.last_pass or {}
            reasons.append(f"last pass {last.get('result', '')}")
        status = "unhealthy" if reasons else "degraded" if degraded else "ok"
        body = {"status": status, "reasons": reasons + degraded,
                "last_pass": accounting.last_pass,
                "last_success": iso(accounting.last_success),
                "watcher": "alive" if watcher else "dead", "commit": self.commit}
        if git is not None:
            body["git"] = git
        return status == "ok", body

    def _git_result(self, health: GitHealth) -> None:
        """After each poll (the git thread): metrics now, the status file soon."""
        if self.metrics.git is not None:
            self.metrics.git.update(health)
        self.status_file.dirty = True
        self._wake()

    def _alive(self) -> bool:
        loop = self._loop_thread is not None and self._loop_thread.is_alive()
        fresh = self.clock() - self._heartbeat < self.settings.watch.stall_timeout
        return loop and fresh and self.watcher is not None and self.watcher.alive()

    def _beat(self) -> None:
        self._heartbeat = self.clock()

    # ------------------------------------------------------------ lifecycle (main thread)
    def run(self) -> int:
        # handlers before the lock: once the lock names our pid, `reconciler reconcile` may
        # signal it, and SIGUSR1's default action would end the agent
        previous = self._handle_signals()
        lock = StateLock(self.config.state_dir, "agent")
        try:
            lock.acquire()
        except ReconcilerError as exc:
            _restore_signals(previous)
            return _error(str(exc))
        try:
            return self._run_locked()
        finally:
            lock.release()
            _restore_signals(previous)

    def _handle_signals(self) -> dict[signal.Signals, Any]:
        """Install the agent's signal handlers; returns the ones they replace."""
        def on_stop(signum: int, frame: FrameType | None) -> None:
            self.request_stop(signal.Signals(signum).name)

        def on_hup(signum: int, frame: FrameType | None) -> None:
            self.request_reload()

        def on_request(signum: int, frame: FrameType | None) -> None:
            self.request_pass(time.time())

        handlers = {signal.SIGTERM: on_stop, signal.SIGINT: on_stop, signal.SIGHUP: on_hup,
                    REQUEST_SIGNAL: on_request}
        previous = {sig: signal.getsignal(sig) for sig in handlers}
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        return previous

    def _run_locked(self) -> int:
        try:
            self._setup()
        except (ReconcilerError, OSError) as exc:
            self._teardown()
            return _error(str(exc))
        try:
            self._loop_thread = threading.Thread(target=self._loop, name="reconcile")
            self._loop_thread.start()
            Heartbeat(self.notifier, self._alive, self.stop_event).start()
            while self._loop_thread.is_alive():
                self._loop_thread.join(0.5)
        finally:
            self.stop_event.set()
            self._teardown()
        if self.crashed:
            return _error(f"the reconcile loop stopped: {self.crashed}")
        self.log.info("agent.stopped")
        return 0

    def _setup(self) -> None:
        self.log.info("agent.starting", pid=os.getpid(), state_dir=self.config.state_dir,
                      paths=self.paths, driver=self.config.driver)
        hosts = build_hosts(self.config)
        live = LiveCache(hosts, after_refresh=gc.freeze)
        journal = Journal(self.config.state_dir)
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
            if self.metrics.git is not None:
                poller = self.git_poller
                self.metrics.git.stale.set_function(lambda: float(poller.stale(time.time())))
                self.metrics.git.stale_after.set(self.settings.git.stale_after)
        store = SpecStore(self.paths)
        self.watcher = SpecWatcher(self.paths, self.tracker, self.clock)
        self.parts = onepass.Parts(
            config=self.config, paths=self.paths, hosts=hosts, live=live, journal=journal,
            store=store, watcher=self.watcher, tracker=self.tracker, metrics=self.metrics,
            backoff=self.backoff, accounting=self.accounting, stop=self.stop_event,
            git=self.git)
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
        if self.git_poller is not None:
            self.git_poller.kick()  # out of its wait, to see the stop
        parts = self.parts
        if parts is not None and parts.live.background_running():
            parts.live.wait_background(timeout=10.0)
        if self.watcher is not None:
            self.watcher.stop()
        if self.http is not None:
            with contextlib.suppress(Exception):
                self.http.stop()
        for thread in self._threads:
            thread.join(timeout=2)
        if parts is not None:
            with contextlib.suppress(Exception):
                parts.journal.close()
            with contextlib.suppress(Exception):
                parts.hosts.close()
        self.notifier.close()

    def _start_event_sources(self) -> None:
        assert self.parts is not None
        self._events_stop = stop = threading.Event()
        for name, driver in self.parts.hosts.drivers.items():
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

    def _reload(self) -> None:
        """SIGHUP: read the config again; rebuild the drivers if their settings changed."""
        if self._reload_fn is None or self.parts is None:
            return
        try:
            config, settings = self._reload_fn()
        except ReconcilerError as exc:
            self.log.error("config.reload_failed", error=str(exc))
            return
        parts = self.parts
        if config != self.config:
            try:
                hosts = build_hosts(config)
            except (ConfigError, DriverError) as exc:
                self.log.error("config.reload_failed", error=str(exc))
                return
            old, parts.hosts = parts.hosts, hosts
            parts.live = LiveCache(hosts, after_refresh=gc.freeze)
            self._events_stop.set()
            self._start_event_sources()
            with contextlib.suppress(Exception):
                old.close()
        if settings.listen != self.settings.listen or settings.git != self.settings.git:
            self.log.warning("config.restart_needed",
                             reason="http and git settings take effect at the next start")
        w = settings.watch
        self.tracker.configure(settle=w.settle, quiet=w.quiet, cap=w.cap, open_hold=w.open_hold)
        self.backoff.initial, self.backoff.cap = w.backoff_initial, w.backoff_max
        self.scheduler.configure(w)
        self.config, self.settings = config, settings
        parts.config = config
        self.log.info("config.reloaded", driver=config.driver, state_dir=config.state_dir)

    # ------------------------------------------------------------ the loop (loop thread)
    def _loop(self) -> None:
        try:
            self.scheduler.schedule_resync()
            self._run_pass(Work(startup=True))
            while not self.stop_event.is_set():
                work, wait = self.scheduler.collect(also_at=self.status_file.due_at())
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
                self._beat()
                self.scheduler.sleep(wait, self.stop_event)
                self._beat()
        except Exception as exc:  # the loop's death is reported, not swallowed
            self.crashed = f"{type(exc).__name__}: {exc}"
            self.log.exception("agent.crashed", error=self.crashed)
            self.stop_event.set()
        finally:
            self._flush_status(force=True)

    def _run_pass(self, work: Work) -> None:
        """One pass; an unexpected error fails that pass, not the agent: it is logged with
        its traceback, the host cache is dropped and a full resync follows in 30 s."""
        assert self.parts is not None
        started, wall = self.clock(), time.time()
        self._beat()
        if work.reload:
            self._reload()
        try:
            outcome = onepass.run(self.parts, work, self.clock, self.log, self._beat)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            self.log.exception("pass.crashed", trigger=work.trigger, error=error)
            self.parts.live.invalidate(None)
            self.scheduler.resync_soon(30.0)
            outcome = onepass.Outcome(work.trigger, True, error=f"the pass failed: {error}")
        self._last_activity = self.clock()
        if outcome is None:  # stopping
            self._answer(work.requested, {"result": "interrupted",
                                          "notes": ["the agent is stopping"]})
            self.status_file.dirty = True
            return
        if outcome.waiting_for_git:
            if work.startup:
                self.notifier.ready("waiting for the first git fetch")
            self._answer(work.requested, {"result": "waiting", "notes": [
                "no commit fetched from git yet: nothing to plan"]})
            self.status_file.dirty = True
            return
        if outcome.started_up:
            store = self.parts.store
            self.ready = True
            self.notifier.ready(f"watching {', '.join(self.paths)}; "
                                f"{len(store.specs.objects)} objects")
            self.log.info("agent.ready", files=len(store.files), objects=len(store.specs.objects))
        if outcome.commit and outcome.plan is not None:
            self.commit = outcome.commit
        self._record(outcome, started, wall, work.requested)
        self._wake_for_windows(outcome)
        if outcome.full and outcome.error is None:
            self._compact_memory()

    def _wake_for_windows(self, outcome: onepass.Outcome) -> None:
        """A restart waits for its maintenance window: a full pass when the next one opens
        (a minute of slack for clocks that read the window as still closed)."""
        plan = outcome.plan
        windows = self.config.maintenance.windows
        if plan is None or not windows or not any(
                o.action in ("waiting", "pending") for o in plan.objects):
            return
        now = datetime.now(UTC)
        opens = min(window.next_open(now) for window in windows.values())
        self.scheduler.resync_soon((opens - now).total_seconds() + 1.0)

    def _answer(self, requested: float | None, record: dict[str, Any]) -> None:
        """What the pass an operator asked for did, for `reconciler reconcile` (which waits
        for it in the status file)."""
        if requested is None:
            return
        self.request = {"received": iso(requested), "answered": iso(time.time()),
                        **{key: record.get(key) for key in ("plan_id", "trigger", "scope",
                                                            "result", "steps", "notes",
                                                            "commit")}}
        self.log.info("agent.pass_answered", plan_id=record.get("plan_id"),
                      result=record.get("result"))

    def _record(self, outcome: onepass.Outcome, started: float, wall: float,
                requested: float | None) -> None:
        """The pass's record: accounting, the log line, systemd's status, the status file."""
        assert self.parts is not None
        duration = self.clock() - started
        record = self.accounting.finish(
            outcome.plan, outcome.report, trigger=outcome.trigger, scope=outcome.scope,
            duration=duration, wall=wall, result="failed" if outcome.error else None,
            error=outcome.error)
        plan = outcome.plan
        self.log.info("pass.finished", plan_id=plan.id if plan else None,
                      trigger=outcome.trigger, scope=outcome.scope, result=record["result"],
                      duration=round(duration, 4), timings=outcome.timings,
                      steps=len(plan.steps) if plan else 0, **record["steps"])
        self.notifier.status(f"last pass {record['result']} ({outcome.trigger}) at "
                             f"{record['finished']}; {len(self.backoff.objects)} failing, "
                             f"{len(self.parts.store.held_files())} held files")
        self._answer(requested, record)
        self._last_activity = self.clock()
        self.status_file.dirty = True
        self._flush_status()

    def _idle_at(self) -> float | None:
        """When the idle tasks may run (None: there are none)."""
        if self.parts is None:
            return None
        idle = self.settings.watch.idle_refresh
        if self.parts.store.unverified:
            return self._last_activity + idle
        live = self.parts.live
        if live.stale and not live.background_running():
            retry = live.background_started + (30.0 if live.background_error else idle)
            return max(self._last_activity + idle, retry)
        return None

    def _idle_tasks(self) -> bool:
        """Between bursts: verify the fast path's cross-file check, refresh the host cache.
        True when it did something (the loop then looks for work again)."""
        assert self.parts is not None
        store, live = self.parts.store, self.parts.live
        if store.unverified:
            if not store.verify():
                self.log.warning("specs.verify_mismatch",
                                 reason="the full cross-file check disagrees with the "
                                        "incremental one; planning everything")
                self.scheduler.verify_failed()
            return True
        if live.stale:
            if live.background_error:
                self.log.warning("observe.failed", error=live.background_error)
            return live.refresh_in_background()
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

    # ------------------------------------------------------------ status
    def _flush_status(self, force: bool = False) -> None:
        self.status_file.flush(self._status_document, self.log, force)

    def _status_document(self, clock_now: float, final: bool) -> dict[str, Any]:
        parts = self.parts
        held = parts.store.held_files() if parts is not None else {}
        pending = self.tracker.pending()
        watcher = self.watcher is not None and self.watcher.alive()
        self.metrics.held_files.set(len(held))
        self.metrics.pending_files.set(len(pending))
        self.metrics.watcher_up.set(1 if watcher else 0)
        if self.commit:
            self.metrics.commit.info({"commit": self.commit})
        git = None
        if self.git_poller is not None:
            git = {"url": self.git.settings.url if self.git else None,
                   "branch": self.git.settings.branch if self.git else None,
                   **self.git_poller.report(time.time())}
        return document(
            accounting=self.accounting, clock_now=clock_now,
            running=not (final and self.stop_event.is_set()), started_at=self.started_at,
            state_dir=self.config.state_dir, roots=self.paths, commit=self.commit,
            watcher_alive=watcher, http=self.http.address if self.http else None,
            ready=self.ready, held=held, pending=pending, git=git, request=self.request,
            crashed=self.crashed)


def _restore_signals(previous: dict[signal.Signals, Any]) -> None:
    for sig, handler in previous.items():
        if sig == REQUEST_SIGNAL and handler == signal.SIG_DFL:
            # a `reconcile` that read our pid just before the lock was released must not end
            # the process with a signal while it exits
            handler = signal.SIG_IGN
        signal.signal(sig, handler)


def _error(message: str) -> int:
    print(f"reconciler: error: {message}", file=sys.stderr)
    return 1
