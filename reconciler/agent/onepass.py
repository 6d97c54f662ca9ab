"""One pass of the agent: read what changed, plan what it touches (or everything), apply, and
account for it.

What a pass covers:
    files      changed files reparsed; only the objects they touch planned (see planner.py)
    events     objects a driver reported changed, re-observed and planned
    retry      objects whose backoff ran out
    resync     every file re-stat'ed, the whole host re-observed, everything planned (drift)
    request    as resync, asked for by an operator (`reconciler reconcile`)
    rescan     a symlink swap, a root removed or recreated, or lost inotify events

Planning and applying are the engine's (`compute_plan` through planner.py, `apply_planned`);
this module decides what to read and what to plan, from the caches the agent keeps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.engine import apply_planned, marks
from reconciler.engine.apply import ApplyReport, StepOutcome
from reconciler.engine.config import Config
from reconciler.engine.hosts import Hosts
from reconciler.engine.journal import Journal
from reconciler.engine.plan import Plan
from reconciler.errors import DriverError, StateError

from .accounting import Accounting
from .backoff import Backoff
from .gitsource import GitSource
from .metrics import Metrics
from .planner import LiveCache, plan_full, plan_some
from .schedule import Work
from .specstore import FileRead, SpecStore, Update
from .watch import ChangeTracker, SpecWatcher


@dataclass
class Parts:
    """The agent's components, made at start. A reload that changes the drivers replaces
    `hosts` and `live`; everything else lives as long as the agent."""

    config: Config
    paths: list[str]
    hosts: Hosts
    live: LiveCache
    journal: Journal
    store: SpecStore
    watcher: SpecWatcher
    tracker: ChangeTracker
    metrics: Metrics
    backoff: Backoff
    accounting: Accounting
    stop: threading.Event
    git: GitSource | None = None


@dataclass
class Outcome:
    """How a pass went, for the record the agent keeps (`Accounting.finish`)."""

    trigger: str
    full: bool
    plan: Plan | None = None
    report: ApplyReport | None = None
    error: str | None = None  # the host could not be read
    commit: str | None = None
    started_up: bool = False  # the startup load is done (READY)
    waiting_for_git: bool = False  # no commit fetched yet: nothing was planned
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def scope(self) -> str:
        return "full" if self.full else "partial"


def run(parts: Parts, work: Work, clock: Callable[[], float], log: Any,
        beat: Callable[[], None]) -> Outcome | None:
    """One pass over `work`; None when there was nothing to plan (no pass is recorded).
    `beat` is called as steps finish (the watchdog's sign of life)."""
    started = clock()
    outcome = Outcome(work.trigger, work.full)
    if parts.git is not None and parts.git.current_commit() is None:
        log.warning("git.waiting", reason="no commit fetched yet; nothing is planned")
        outcome.waiting_for_git = True
        return outcome
    if work.startup:
        update = parts.store.load_all(stop=parts.stop.is_set)
        if parts.stop.is_set():
            return None
        parts.metrics.files_read.inc(len(update.changed_files))
        outcome.started_up = True
    else:
        update, root_moved = load_changes(parts, work, clock, log)
        outcome.full = outcome.full or root_moved
    outcome.timings["load"] = round(clock() - started, 4)
    affected = set(update.affected) | work.recheck | work.retry
    for ref in update.affected:
        parts.backoff.retry_now(ref, started)
    if work.recheck:
        parts.live.invalidate(work.recheck)
    if not outcome.full and not affected:
        return None
    context: dict[str, Any] = {"drivers": sorted(parts.hosts.names()),
                               "trigger": work.trigger, "agent": True}
    if parts.git is not None:
        real = parts.store.real_roots().values()
        outcome.commit = next((c for c in map(parts.git.commit_of, real) if c), None)
        if outcome.commit:
            context["commit"] = outcome.commit
    settings = parts.config.settings
    try:
        known = marks.read(parts.config.state_dir)
        plan = None if outcome.full else plan_some(
            parts.store.specs, affected, parts.live, settings, context,
            profiles=parts.store.profiles(), marks=known)
        if plan is None:
            outcome.full = True
            fresh = work.recheck_all or work.startup or work.reload or bool(parts.live.stale) or \
                parts.live.observed is None or bool(work.rescans)
            plan = plan_full(parts.store.specs, parts.live, settings, context, fresh=fresh,
                             marks=known)
    except DriverError as exc:
        log.error("observe.failed", error=str(exc), trigger=work.trigger)
        outcome.error = f"cannot read the host: {exc}"
        return outcome
    except StateError as exc:  # a marks file that is not ours: plan nothing until it is
        log.error("marks.unreadable", error=str(exc))
        outcome.error = str(exc)
        return outcome
    outcome.plan = plan
    outcome.timings["plan"] = round(clock() - started - outcome.timings["load"], 4)
    outcome.report = apply(parts, plan, started, beat)
    outcome.timings["apply"] = round(clock() - started - outcome.timings["load"] -
                                     outcome.timings["plan"], 4)
    touched = parts.accounting.account(plan, outcome.report, outcome.full, clock())
    parts.live.invalidate(touched)
    return outcome


def apply(parts: Parts, plan: Plan, now: float, beat: Callable[[], None]
          ) -> ApplyReport | None:
    """Record and apply the plan; objects in backoff wait."""
    if plan.breaker:
        parts.metrics.removals_refused.inc()
    blocked = parts.backoff.blocked(now)
    skip = {s.id for s in plan.steps if s.ref in blocked}

    def progress(outcome: StepOutcome, done: int, total: int) -> None:
        beat()

    return apply_planned(plan, parts.hosts, parts.journal, parallel=parts.config.parallel,
                         journal_max_bytes=parts.config.journal_max_bytes, stop=parts.stop,
                         skip=skip, progress=progress,
                         max_restarts=parts.config.maintenance.max_restarts)


def load_changes(parts: Parts, work: Work, clock: Callable[[], float], log: Any
                 ) -> tuple[Update, bool]:
    """Read what is due; a rescan compares every file with the cache first. Returns the
    update and whether a root moved (then everything is planned)."""
    store, watcher, tracker, metrics = parts.store, parts.watcher, parts.tracker, parts.metrics
    now = clock()
    real = store.real_roots()
    root_moved = False
    reads: list[FileRead] = []
    gone: list[str] = []
    names = dict(work.reads)
    if work.rescans or work.recheck_all or work.reload:
        trusted = work.reload or any(r.trusted for r in work.rescans)
        if trusted:
            # the scan below reads the tree as it is; cleared before it, not after, so a
            # file written while it runs keeps its event and is read by the next pass
            tracker.clear()
        for r in work.rescans:
            metrics.rescans.labels(r.reason).inc()
        if work.rescans:
            log.info("watch.rescan", reasons=sorted({r.reason for r in work.rescans}),
                     trusted=trusted)
        if watcher.needs_refresh or work.rescans or work.reload:
            before = watcher.watching()
            watcher.refresh()
            root_moved = before != watcher.watching() or any(
                r.reason != "overflow" and "directory" not in r.reason for r in work.rescans)
        found = store.scan(real)
        changed, vanished = store.changed_since_cache(found)
        pending = tracker.pending()
        if trusted:
            names = {n: k for n, k in names.items() if n in found}
            for name in changed:
                names[name] = "complete"
            gone.extend(vanished)
        else:
            for name in changed:
                if name not in pending and name not in names:
                    tracker.add(name, "changed", now, found[name])
            for name in vanished:
                if name not in pending and name not in names:
                    tracker.add(name, "deleted", now)
    for name, kind in sorted(names.items()):
        if kind == "deleted":
            gone.append(name)
            continue
        result = store.read(name, real)
        if result.loaded is None:
            tracker.add(name, "deleted", now)  # vanished since: let it settle
        elif not result.stable:
            tracker.add(name, "changed", now, result.key)
        else:
            reads.append(result)
    metrics.files_read.inc(len(reads))
    update = store.apply(reads, gone, force_full=root_moved)
    if update.changed_files:
        log.info("specs.changed", files=update.changed_files[:20],
                 count=len(update.changed_files), objects=len(update.affected),
                 incremental=update.fast)
    return update, root_moved
