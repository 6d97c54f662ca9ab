"""Planning for the agent: the engine's `compute_plan`, fed from caches.

- The host's observed state is cached between passes (`LiveCache`) and refreshed on resync,
  on driver events, when a plan needs an object the last apply touched, and when idle.
- A change to a few files plans only the objects it touches: `compute_plan` gets a SpecSet
  holding just those objects (plus every profile, for resolution) and a host view holding just
  their live state. A plan that would *remove* an object is never made that way: removals
  are planned over the whole set and the whole host, so the engine's removal breaker (share of
  managed objects, empty or missing spec directory) sees the real numbers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from reconciler.drivers.base import LiveObject, Stamp
from reconciler.engine import compute_plan
from reconciler.engine.hosts import Hosts
from reconciler.engine.marks import Marks
from reconciler.engine.plan import Plan, Settings
from reconciler.model import Profile
from reconciler.model.fields import Ref
from reconciler.specs.loader import Entry, SpecSet

Observed = dict[Ref, tuple[str, LiveObject]]


@dataclass
class SnapshotHosts(Hosts):
    """The real drivers, but `observe()` answers from a snapshot taken by the agent."""

    snapshot: Observed = field(default_factory=dict)

    def observe(self) -> Observed:
        return self.snapshot


class LiveCache:
    """The host's observed state between passes.

    Objects a pass changed are marked stale; planning a stale object observes again first.
    `refresh_in_background()` (the loop calls it when idle) observes in a thread, so the loop
    stays responsive; objects a pass touched after it started stay stale. Either way the old
    map is let go before observing: at 10,000 objects two maps at once are the agent's peak
    memory (+30 MB), so a plan arriving mid-refresh waits for the new map instead.
    """

    def __init__(self, hosts: Hosts, after_refresh: Callable[[], None] | None = None) -> None:
        self.hosts = hosts
        self.after_refresh = after_refresh
        self.observed: Observed | None = None
        self.stale: set[Ref] = set()
        self.refreshes = 0
        self._touched: dict[Ref, int] = {}
        self._generation = 0
        self._lock = threading.Lock()
        self._observing = threading.Lock()  # one observe() at a time
        self._background: threading.Thread | None = None
        self.background_error: str | None = None
        self.background_started = 0.0

    def refresh(self) -> Observed:
        """Observe now (the loop's thread). The old map is let go first: at 10,000 objects
        two of them at once are the agent's peak memory."""
        self.wait_background()
        with self._observing:
            with self._lock:
                self._generation += 1
                started_at = self._generation
                self.observed = None
            started = time.monotonic()
            observed = self.hosts.observe()
            return self._merge(observed, started_at, started)

    def _merge(self, observed: Observed, started_at: int, started: float) -> Observed:
        _share_specs(observed)
        with self._lock:
            self.observed = observed
            self.stale = {r for r in self.stale if self._touched.get(r, 0) > started_at}
            self._touched = {r: g for r, g in self._touched.items() if r in self.stale}
            self.refreshes += 1
        if self.after_refresh is not None:
            self.after_refresh()
        return observed

    def refresh_in_background(self) -> bool:
        """Start observing in a thread (unless one runs); True when one was started."""
        if self.background_running():
            return False
        self.background_started = time.monotonic()
        with self._lock:
            self._generation += 1
            started_at = self._generation
            self.observed = None  # one map at a time; a plan meanwhile waits for the new one

        def run() -> None:
            started = time.monotonic()
            with self._observing:
                try:
                    observed = self.hosts.observe()
                except Exception as exc:  # reported; the next pass observes again
                    self.background_error = f"{type(exc).__name__}: {exc}"
                    return
            self.background_error = None
            self._merge(observed, started_at, started)

        self._background = threading.Thread(target=run, name="observe", daemon=True)
        self._background.start()
        return True

    def background_running(self) -> bool:
        return self._background is not None and self._background.is_alive()

    def wait_background(self, timeout: float | None = None) -> None:
        thread = self._background
        if thread is not None and thread.is_alive():
            thread.join(timeout)

    def _needs(self, refs: set[Ref] | None) -> bool:
        with self._lock:
            return self.observed is None or bool(
                self.stale and (refs is None or refs & self.stale))

    def current(self, refs: set[Ref] | None = None) -> Observed:
        """The cache, refreshed first if it is empty or any of `refs` (all: None) is stale."""
        if self._needs(refs) and self._background is not None:
            self.wait_background()  # a refresh under way may well cover them
        if self._needs(refs):
            return self.refresh()
        assert self.observed is not None
        return self.observed

    def invalidate(self, refs: set[Ref] | None = None) -> None:
        with self._lock:
            if refs is None:
                self.observed = None
                return
            self._generation += 1
            for ref in refs:
                self.stale.add(ref)
                self._touched[ref] = self._generation


def _share_specs(observed: Observed) -> None:
    """An object in sync carries the same spec twice (live config and the last-applied spec
    in its stamp), parsed into two equal dicts: keep one. Halves the cache at 10,000 objects."""
    for ref, (driver, obj) in observed.items():
        stamp = obj.stamp
        if stamp is not None and stamp.spec is not obj.spec and stamp.spec == obj.spec:
            observed[ref] = (driver, replace(obj, stamp=Stamp(stamp.owner, stamp.source,
                                                             obj.spec)))


def _hosts_with(hosts: Hosts, snapshot: Observed) -> SnapshotHosts:
    return SnapshotHosts(hosts.drivers, hosts.default, hosts.routes, snapshot=snapshot)


def plan_full(specs: SpecSet, live: LiveCache, settings: Settings,
              context: dict[str, Any], fresh: bool = True, marks: Marks | None = None
              ) -> Plan:
    observed = live.refresh() if fresh or live.observed is None else live.current()
    hosts = _hosts_with(live.hosts, observed)
    return compute_plan(specs.roots, hosts, settings, specs=specs,
                        context={**context, "scope": "full"}, marks=marks).plan


def plan_some(specs: SpecSet, refs: set[Ref], live: LiveCache, settings: Settings,
              context: dict[str, Any], profiles: dict[tuple[str, str], Entry] | None = None,
              marks: Marks | None = None) -> Plan | None:
    """A plan for `refs` only; None when it would remove something (plan the whole set).
    `profiles`: the set's Profile entries, when the caller keeps them at hand."""
    observed = live.current(refs)
    keys = {(r.kind, r.name) for r in refs}
    if profiles is None:
        profiles = {k: e for k, e in specs.objects.items() if isinstance(e.spec, Profile)}
    objects = {k: specs.objects[k] for k in keys if k in specs.objects}
    objects.update(profiles)
    files = {objects[k].file for k in keys if k in objects}
    for ref in refs:
        found = observed.get(ref)
        if found and found[1].stamp and found[1].stamp.source:
            files.add(found[1].stamp.source)
    errors = [e for e in specs.errors if e.location and e.location.file in files]
    subset = SpecSet(roots=specs.roots, files=specs.files, objects=objects, errors=errors,
                     missing_roots=specs.missing_roots)
    wanted = {Ref(o.kind, o.name) for o in subset.resolved()}
    failed = subset.failed_files
    for ref in refs:
        found = observed.get(ref)
        if found is None or ref in wanted or not found[1].owned:
            continue
        stamp = found[1].stamp
        if stamp is not None and stamp.source in failed:
            continue  # held, not removed: fine to plan here
        return None
    snapshot = {r: observed[r] for r in refs if r in observed}
    hosts = _hosts_with(live.hosts, snapshot)
    return compute_plan(specs.roots, hosts, settings, specs=subset,
                        context={**context, "scope": "partial"}, marks=marks).plan
