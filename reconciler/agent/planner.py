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

import time
from dataclasses import dataclass, field
from typing import Any

from reconciler.drivers.base import LiveObject, Ref
from reconciler.engine import compute_plan
from reconciler.engine.hosts import Hosts
from reconciler.engine.plan import Plan, Settings
from reconciler.model import Profile
from reconciler.specs.loader import Entry, SpecSet

Observed = dict[Ref, tuple[str, LiveObject]]


@dataclass
class SnapshotHosts(Hosts):
    """The real drivers, but `observe()` answers from a snapshot taken by the agent."""

    snapshot: Observed = field(default_factory=dict)

    def observe(self) -> Observed:
        return self.snapshot


class LiveCache:
    def __init__(self, hosts: Hosts) -> None:
        self.hosts = hosts
        self.observed: Observed | None = None
        self.stale: set[Ref] = set()
        self.refreshed_at = 0.0
        self.refreshes = 0

    def refresh(self) -> Observed:
        started = time.monotonic()
        self.observed = self.hosts.observe()
        self.stale.clear()
        self.refreshed_at = time.monotonic()
        self.refreshes += 1
        self.last_duration = self.refreshed_at - started
        return self.observed

    def current(self, refs: set[Ref] | None = None) -> Observed:
        """The cache, refreshed first if it is empty or any of `refs` (all: None) is stale."""
        if self.observed is None or (self.stale and (refs is None or refs & self.stale)):
            return self.refresh()
        return self.observed

    def invalidate(self, refs: set[Ref] | None = None) -> None:
        if refs is None:
            self.observed = None
        else:
            self.stale |= refs


def _hosts_with(hosts: Hosts, snapshot: Observed) -> SnapshotHosts:
    return SnapshotHosts(hosts.drivers, hosts.default, hosts.routes, snapshot=snapshot)


def plan_full(specs: SpecSet, live: LiveCache, settings: Settings,
              context: dict[str, Any], fresh: bool = True) -> Plan:
    observed = live.refresh() if fresh or live.observed is None else live.current()
    hosts = _hosts_with(live.hosts, observed)
    return compute_plan(specs.roots, hosts, settings, specs=specs,
                        context={**context, "scope": "full"}).plan


def plan_some(specs: SpecSet, refs: set[Ref], live: LiveCache, settings: Settings,
              context: dict[str, Any], profiles: dict[tuple[str, str], Entry] | None = None
              ) -> Plan | None:
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
                        context={**context, "scope": "partial"}).plan
