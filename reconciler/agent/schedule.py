"""When the loop runs a pass, and what the pass covers.

Other threads only hand the loop work (a file change through the tracker, a driver event, a
reload, a failed verification) and wake it; the loop collects what is due into one `Work`:
files complete enough to read, rescans, the periodic resync, objects whose backoff ran out.
Passes are rate-limited (a token bucket), and a wake-up between the loop's look and its sleep
is never lost (a generation counter under one condition variable).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from reconciler.model.fields import Ref

from .backoff import Backoff, RateLimit
from .settings import WatchSettings
from .watch import ChangeTracker, Rescan


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
    requested: float | None = None  # `reconciler reconcile`: when the newest request came

    def __bool__(self) -> bool:
        return bool(self.reads or self.rescans or self.resync or self.reload or self.recheck or
                    self.retry or self.startup or self.verify_failed or
                    self.requested is not None)

    @property
    def trigger(self) -> str:
        for name, on in (("startup", self.startup), ("reload", self.reload),
                         ("request", self.requested is not None),
                         ("rescan", bool(self.rescans)), ("resync", self.resync),
                         ("verify", self.verify_failed), ("files", bool(self.reads)),
                         ("events", bool(self.recheck)), ("retry", bool(self.retry))):
            if on:
                return name
        return "none"

    @property
    def full(self) -> bool:
        """A pass over every object and the whole host, not only what changed."""
        return self.startup or self.reload or self.verify_failed or self.recheck_all

    @property
    def recheck_all(self) -> bool:
        """Every file re-stat'ed and the host observed afresh: the periodic resync, or a pass
        an operator asked for."""
        return self.resync or self.requested is not None


class Scheduler:
    def __init__(self, tracker: ChangeTracker, backoff: Backoff, settings: WatchSettings,
                 clock: Callable[[], float]) -> None:
        self.tracker, self.backoff, self.clock = tracker, backoff, clock
        self.settings = settings
        self.rate = RateLimit(settings.rate, settings.burst)
        self.next_resync = 0.0
        self._cond = threading.Condition()
        self._generation = 0  # bumped by every wake-up, so none is lost before a wait
        self._seen_generation = 0
        self._reload_requested = False
        self._requested: float | None = None
        self._recheck: set[Ref] = set()
        self._verify_failed = False
        self._pending = Work()

    # ------------------------------------------------------------ called from other threads
    def wake(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def request_reload(self) -> None:
        with self._cond:
            self._reload_requested = True
            self._generation += 1
            self._cond.notify_all()

    def request_pass(self, received: float) -> None:
        """An operator asked for a pass (`reconciler reconcile`); `received`: wall time."""
        with self._cond:
            self._requested = max(received, self._requested or received)
            self._generation += 1
            self._cond.notify_all()

    def recheck(self, ref: Ref) -> None:
        with self._cond:
            self._recheck.add(ref)
            self._generation += 1
            self._cond.notify_all()

    def verify_failed(self) -> None:
        with self._cond:
            self._verify_failed = True

    # ------------------------------------------------------------ the loop's thread
    def configure(self, settings: WatchSettings) -> None:
        """New watch settings (a reload): the rate and the resync interval."""
        self.settings = settings
        self.rate = RateLimit(settings.rate, settings.burst)
        self.schedule_resync()

    def schedule_resync(self) -> None:
        w = self.settings
        jitter = 1.0 + random.uniform(-w.resync_jitter, w.resync_jitter)  # noqa: S311
        self.next_resync = self.clock() + max(1.0, w.resync * jitter) if w.resync > 0 \
            else float("inf")

    def resync_soon(self, within: float) -> None:
        self.next_resync = min(self.next_resync, self.clock() + within)

    def collect(self, also_at: float | None = None) -> tuple[Work | None, float | None]:
        """Gather what is due into the pending work; return it when a pass may start now,
        else (None, seconds until something may be due). `also_at`: another time the loop
        must wake at (the status file's next write)."""
        with self._cond:
            self._seen_generation = self._generation
        now = self.clock()
        work = self._pending
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
            if self._requested is not None and not due.in_burst:
                # in a burst (a git commit's rescan just asked for), the request waits for
                # it, so the pass asked for reads the new tree
                work.requested, self._requested = self._requested, None
        if now >= self.next_resync:
            work.resync = True
            self.schedule_resync()
        retry_at = self.backoff.next_at()
        if retry_at is not None and retry_at <= now:
            work.retry |= self.backoff.due(now)
            retry_at = self.backoff.next_at()
        waits = [t - now for t in (due.next_at, self.next_resync, retry_at, also_at)
                 if t is not None]
        wait = max(0.0, min(waits)) if waits else None
        if not work:
            return None, wait
        delay = self.rate.wait(now)
        if delay > 0:
            return None, delay
        self._pending = Work()
        return work, wait

    def sleep(self, wait: float | None, stop: threading.Event) -> None:
        """Until `wait` passes or anything wakes the loop (at most a minute)."""
        with self._cond:
            if stop.is_set() or self._generation != self._seen_generation:
                return
            self._cond.wait(timeout=min(wait, 60.0) if wait is not None else 60.0)
