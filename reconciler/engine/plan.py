"""Desired set + live state -> an explained, ordered plan. A plan is a value: it can be saved,
shown, and applied later exactly as it is (`apply PLANFILE` refuses it if the host moved).

Order: networks before the domains that use them; provision -> define -> start; stop ->
reconfigure -> start only when a change needs a restart; `depends_on` between domains;
removals in reverse.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from reconciler.drivers.base import LiveObject, Step, StepKind
from reconciler.engine import health
from reconciler.engine.diff import FieldChange, diff_object, referenced_networks, worst
from reconciler.engine.hosts import Hosts
from reconciler.engine.maintenance import Maintenance, Window
from reconciler.engine.marks import Marks, Pending, RolledBack
from reconciler.engine.marks import digest as spec_digest
from reconciler.engine.policy import Policy
from reconciler.errors import SpecError
from reconciler.model.fields import Ref, flatten
from reconciler.rules import Refusal

if TYPE_CHECKING:  # the spec classes load only where specs are read
    from reconciler.model import Domain, Network

# waiting: a restart or replace held for its maintenance window; pending: a change written
# without a restart (restart: defer), live at the guest's next boot; rolled_back: a change
# whose health check failed was undone, and this spec is not tried again
Action = Literal["create", "update", "replace", "remove", "noop", "held", "refused", "waiting",
                 "pending", "rolled_back"]
PLAN_FORMAT = 1


@dataclass(frozen=True)
class Desired:
    """One desired object: canonical spec plus the file it came from."""

    ref: Ref
    type: str
    spec: dict[str, Any]
    source: str | None

    @cached_property
    def flat(self) -> dict[str, Any]:
        return flatten(self.spec)

    @cached_property
    def digest(self) -> str:
        return spec_digest(self.spec)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Settings:
    max_removal_share: float = 0.5
    policy: Policy = field(default_factory=Policy)
    maintenance: Maintenance = field(default_factory=Maintenance)
    now: Callable[[], datetime] = utc_now  # the clock windows are read by (a test's own)
    ignore_windows: bool = False  # `apply --now`: restarts now, whatever the windows say


@dataclass(frozen=True)
class ObjectPlan:
    """What the plan decided for one object. The decision is data: `action`, and for a
    refused object its `refusals` (each with its cause and what would allow it); `erases`
    lists the host paths its purge will erase. `notes` are only words for people."""

    ref: Ref
    type: str
    action: Action
    driver: str
    update: str | None = None
    changes: tuple[FieldChange, ...] = ()
    steps: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    fingerprint: str = "absent"
    source: str | None = None
    refusals: tuple[Refusal, ...] = ()
    erases: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()  # fields written but live only after a restart
    boot: str | None = None  # the guest's boot when the plan was made (a deferred change)

    @property
    def purges(self) -> bool:
        return any(s.endswith(":purge") for s in self.steps)

    def to_json(self, secrets: bool = False) -> dict[str, Any]:
        return {"object": str(self.ref), "kind": self.ref.kind, "name": self.ref.name,
                "type": self.type, "driver": self.driver, "action": self.action,
                "update": self.update,
                "changes": [c.to_json(secrets) for c in self.changes],
                "steps": list(self.steps), "notes": list(self.notes),
                "refusals": [r.to_json() for r in self.refusals], "erases": list(self.erases),
                "fingerprint": self.fingerprint, "source": self.source,
                **({"pending": list(self.pending), "boot": self.boot} if self.pending else {})}


@dataclass(frozen=True)
class SpecProblem:
    """A spec input that did not load: its file (absolute, as `failed_files` names it, or a
    missing path), the line (0: the whole file) and why. A plan carries them so each of its
    forms shows what was held back from it, not only the terminal that made it."""

    file: str
    line: int
    message: str

    @property
    def where(self) -> str:
        """`FILE:LINE`, or the file alone when the whole file is meant."""
        file = self.file or "<spec>"
        return f"{file}:{self.line}" if self.line else file

    def __str__(self) -> str:
        return f"{self.where}: error: {self.message}"

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "message": self.message}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SpecProblem:
        return cls(str(data["file"]), int(data.get("line") or 0), str(data["message"]))


def spec_problems(errors: Iterable[SpecError], missing: Iterable[str] = ()
                  ) -> tuple[SpecProblem, ...]:
    """Loader errors and missing spec paths as a plan carries them: files made absolute, as
    `failed_files` and the objects' sources are, so each names the same file anywhere."""
    out = [SpecProblem(os.path.abspath(e.location.file) if e.location else "",
                       e.location.line if e.location else 0, e.message) for e in errors]
    out += [SpecProblem(os.path.abspath(root), 0, "no such file or directory")
            for root in missing]
    return tuple(out)


@dataclass(frozen=True)
class Plan:
    id: str
    created: str
    spec_hash: str
    roots: tuple[str, ...]
    objects: tuple[ObjectPlan, ...]
    steps: tuple[Step, ...]
    notes: tuple[str, ...] = ()
    context: dict[str, Any] = field(default_factory=dict)
    breaker: str | None = None  # why every removal of this pass was refused
    failed_files: tuple[str, ...] = ()  # spec files that did not load (their objects held)
    errors: tuple[SpecProblem, ...] = ()  # why they did not, and missing spec paths
    host: str = ""  # the machine planned on (whose name the specs' `hosts:` globs matched)

    @property
    def has_changes(self) -> bool:
        return bool(self.steps)

    @property
    def refused(self) -> bool:
        """Something the specs ask for is not done (refused objects or removals)."""
        return any(o.action == "refused" for o in self.objects)

    def summary(self) -> dict[str, int]:
        counts = {a: 0 for a in ("create", "update", "replace", "remove", "held", "refused",
                                 "waiting", "pending", "rolled_back")}
        for obj in self.objects:
            if obj.action in counts:
                counts[obj.action] += 1
        return counts

    def to_json(self, secrets: bool = False) -> dict[str, Any]:
        """As data, for people, pull requests and the journal: secret values (environment)
        as digests. `secrets=True` keeps them, for a plan saved to be applied later."""
        return {"format_version": PLAN_FORMAT, "plan_id": self.id, "created": self.created,
                "spec_hash": self.spec_hash, "roots": list(self.roots),
                "context": self.context, "summary": self.summary(),
                "objects": [o.to_json(secrets) for o in self.objects if o.action != "noop"],
                "unchanged": sorted(str(o.ref) for o in self.objects if o.action == "noop"),
                "steps": [s.to_json(secrets) for s in self.steps], "notes": list(self.notes),
                "breaker": self.breaker, "failed_files": list(self.failed_files),
                "errors": [e.to_json() for e in self.errors], "host": self.host}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        objects = tuple(
            ObjectPlan(ref=Ref(o["kind"], o["name"]), type=o["type"], action=o["action"],
                       driver=o["driver"], update=o.get("update"),
                       changes=tuple(FieldChange(c["field"], c["old"], c["new"], c["class"],
                                                 c["origin"]) for c in o.get("changes", ())),
                       steps=tuple(o.get("steps", ())), notes=tuple(o.get("notes", ())),
                       fingerprint=o.get("fingerprint", "absent"), source=o.get("source"),
                       refusals=tuple(Refusal.from_json(r) for r in o.get("refusals", ())),
                       erases=tuple(o.get("erases", ())),
                       pending=tuple(o.get("pending", ())), boot=o.get("boot"))
            for o in data["objects"])
        return cls(id=data["plan_id"], created=data["created"], spec_hash=data["spec_hash"],
                   roots=tuple(data.get("roots", ())), objects=objects,
                   steps=tuple(Step.from_json(s) for s in data["steps"]),
                   notes=tuple(data.get("notes", ())), context=data.get("context", {}),
                   breaker=data.get("breaker"),
                   failed_files=tuple(data.get("failed_files", ())),
                   errors=tuple(SpecProblem.from_json(e) for e in data.get("errors", ())),
                   host=str(data.get("host", "")))


# Desired form of each loaded model object, by identity, for as long as the object lives:
# the agent plans the same loaded objects pass after pass, and dumping, hashing and flattening
# every spec again was most of the engine's share of a no-op pass.
_desired: dict[int, tuple[weakref.ref[Domain | Network], Desired]] = {}


def desired_from(objects: list[Domain | Network], sources: dict[tuple[str, str], str]
                 ) -> list[Desired]:
    from reconciler.model import Domain, canonical

    out = []
    for obj in objects:
        source = sources.get((obj.kind, obj.name))
        known = _desired.get(id(obj))
        if known is not None and known[0]() is obj and known[1].source == source:
            out.append(known[1])
            continue
        spec = canonical(obj)
        spec.pop("kind", None)
        dtype = obj.type if isinstance(obj, Domain) else "network"
        made = Desired(Ref(obj.kind, obj.name), dtype, spec, source)
        _desired[id(obj)] = (weakref.ref(obj, _forget(id(obj))), made)
        out.append(made)
    return out


def _forget(key: int) -> Callable[[object], None]:
    def forget(_: object) -> None:
        _desired.pop(key, None)
    return forget


def spec_hash(desired: list[Desired]) -> str:
    blob = "\n".join(sorted(f"{d.ref.kind}/{d.ref.name} {d.digest}" for d in desired))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class _Builder:
    """Collects steps per object and wires their dependencies."""

    def __init__(self) -> None:
        self.steps: dict[str, Step] = {}
        self.chains: dict[Ref, list[str]] = {}

    def chain(self, ref: Ref, dtype: str, driver: str, kinds: list[StepKind],
              desired: Desired | None, reason: str, fields: tuple[str, ...] = (),
              live: bool = False, last_good: dict[str, Any] | None = None,
              deferred: bool = False) -> tuple[str, ...]:
        """Steps of one object, each after the one before. A guest with a health check is
        verified after its start; `last_good` is what a failed check rolls back to, and what
        a deferred update (written now, live at the next boot) keeps for that check."""
        if desired and desired.spec.get("health") and kinds and kinds[-1] == "start":
            kinds = [*kinds, "verify"]
        ids = []
        previous: tuple[str, ...] = ()
        for kind in kinds:
            sid = f"{ref}:{kind}"
            # a removal asked for by a spec (state: absent) carries it: it says purge or keep
            needs_spec = kind in ("provision", "define", "update", "purge", "undefine", "verify")
            self.steps[sid] = Step(
                id=sid, kind=kind, ref=ref, type=dtype, driver=driver,
                spec=desired.spec if desired and needs_spec else None,
                source=desired.source if desired else None,
                fields=fields if kind == "update" else (), live=live and kind == "update",
                reason=reason, deps=previous,
                previous=last_good if kind == "verify" or (kind == "update" and deferred)
                else None)
            previous = (sid,)
            ids.append(sid)
        self.chains[ref] = ids
        return tuple(ids)

    def after(self, ref: Ref, other: Ref) -> None:
        """The first step of `ref` waits for the last step of `other`."""
        mine, theirs = self.chains.get(ref), self.chains.get(other)
        if not mine or not theirs:
            return
        first = self.steps[mine[0]]
        if theirs[-1] not in first.deps:
            self.steps[mine[0]] = replace(first, deps=(*first.deps, theirs[-1]))


def make_plan(desired: list[Desired], hosts: Hosts, *, failed_files: set[str],
              roots: tuple[str, ...], no_specs: bool = False,
              settings: Settings | None = None,
              observed: dict[Ref, tuple[str, LiveObject]] | None = None,
              errors: tuple[SpecProblem, ...] = (), marks: Marks | None = None) -> Plan:
    settings = settings or Settings()
    marks = marks or Marks()
    live_all = observed if observed is not None else hosts.observe()
    b = _Builder()
    plans: dict[Ref, ObjectPlan] = {}
    wanted = {d.ref: d for d in desired}
    # every removal, asked for (state: absent) or implied (spec gone), waits for the breaker
    removals: list[_Removal] = []

    for d in sorted(desired, key=lambda d: (d.ref.kind != "Network", d.ref.name)):
        driver_name = hosts.driver_name_for(d.ref.kind, d.type)
        found = live_all.get(d.ref)
        live = found[1] if found and found[0] == driver_name else None
        decided = _plan_object(d, live, driver_name, hosts, settings, b, marks)
        if isinstance(decided, _Removal):
            removals.append(decided)
        else:
            plans[d.ref] = decided

    for ref, (driver_name, live) in sorted(live_all.items(), key=lambda item: item[0]):
        if ref in wanted or not live.owned:
            continue
        source = live.stamp.source if live.stamp else None
        if source in failed_files:
            plans[ref] = ObjectPlan(ref, live.type, "held", driver_name,
                                    fingerprint=live.fingerprint(), source=source, notes=(
                                        f"held: {source} failed to load; keeping the last "
                                        "applied spec",))
            continue
        purge = (live.last_applied or {}).get("removal") == "purge"
        removals.append(_Removal(ref, live.type, driver_name, live, None, source, purge,
                                 "spec removed"))

    breaker = _breaker(removals, live_all, no_specs, settings)
    for removal in removals:
        plans[removal.ref] = _plan_removal(removal, breaker, hosts, b)

    _wire(b, wanted, live_all, plans)
    objects = tuple(sorted(plans.values(), key=lambda p: (p.ref.kind != "Network", p.ref.name)))
    notes: tuple[str, ...] = (
        (f"removal refused: {breaker}; nothing is removed in this pass",) if breaker else ())
    notes += tuple(  # a cluster's own move (an evacuation) is its business, not drift
        f"{ref}: moved by the cluster from {moved['from']} to {moved['to']}; its target "
        "still holds, nothing to undo" for ref, (_, live) in sorted(live_all.items())
        if (moved := live.extra.get("moved_by_cluster")) and ref in plans)
    return Plan(id=uuid.uuid4().hex[:12], created=datetime.now(UTC).isoformat(timespec="seconds"),
                spec_hash=spec_hash(desired), roots=roots, objects=objects,
                steps=tuple(_toposort(b.steps)), notes=notes, breaker=breaker,
                failed_files=tuple(sorted(failed_files)), errors=errors,
                host=socket.gethostname())


@dataclass(frozen=True)
class _Removal:
    """An object to remove, decided but not yet planned (the breaker looks at all of them)."""

    ref: Ref
    type: str
    driver: str
    live: LiveObject
    desired: Desired | None
    source: str | None
    purge: bool
    reason: str


def _breaker(removals: list[_Removal], live_all: dict[Ref, tuple[str, LiveObject]],
             no_specs: bool, settings: Settings) -> str | None:
    """Why this pass may remove nothing at all (None: removals may go ahead)."""
    count = sum(1 for r in removals if not r.live.protected and not _protected(r.desired))
    if not count:
        return None
    if no_specs:
        return "the spec directory is empty or missing"
    managed = sum(1 for _, live in live_all.values() if live.owned)
    share = count / managed if managed else 1.0
    if share > settings.max_removal_share:
        return (f"{count} of {managed} managed objects ({share:.0%}) would be removed, over "
                f"the limit of {settings.max_removal_share:.0%}")
    return None


def _protected(desired: Desired | None) -> bool:
    return bool(desired is not None and desired.spec.get("protect"))


def _plan_removal(r: _Removal, breaker: str | None, hosts: Hosts, b: _Builder) -> ObjectPlan:
    fp = r.live.fingerprint()
    refusal = None
    if r.live.protected or _protected(r.desired):
        refusal = Refusal("protect", "removal blocked: protect is true; set protect: false and "
                          "apply that first", "protect", "protect: false")
    elif breaker:
        refusal = Refusal("", f"removal refused: {breaker}", "breaker", "max_removal_share")
    if refusal is not None:
        return ObjectPlan(r.ref, r.type, "refused", r.driver, fingerprint=fp, source=r.source,
                          refusals=(refusal,), notes=(str(refusal),))
    kinds = _seq("stop" if r.live.state == "running" else None,
                 "purge" if r.purge else "undefine")
    steps = b.chain(r.ref, r.type, r.driver, kinds, r.desired,
                    f"{r.reason}; " + ("purge opted in" if r.purge else "data kept"))
    erases = hosts.drivers[r.driver].erases(r.live) if r.purge else ()
    return ObjectPlan(r.ref, r.type, "remove", r.driver, steps=steps, fingerprint=fp,
                      source=r.source, erases=erases,
                      notes=() if r.purge else ("data kept (removal: keep)",))


def _plan_object(d: Desired, live: LiveObject | None, driver_name: str, hosts: Hosts,
                 settings: Settings, b: _Builder, marks: Marks) -> ObjectPlan | _Removal:
    want_state = d.spec.get("state", "running")
    is_domain = d.ref.kind == "Domain"
    driver = hosts.drivers[driver_name]
    if want_state == "absent":
        if live is None:
            return ObjectPlan(d.ref, d.type, "noop", driver_name, source=d.source)
        if not live.owned:
            return _not_ours(d, live, driver_name)
        return _Removal(d.ref, d.type, driver_name, live, d, d.source,
                        d.spec.get("removal") == "purge", "state: absent")
    refusals = (*driver.check(d.ref.kind, d.type, d.spec),
                *settings.policy.refusals(d.ref.kind, d.type, d.spec),
                *_restart_refusals(d, driver.technology(d.ref.kind, d.type), settings))
    build = is_domain and driver.provisions(d.ref.kind, d.type, d.spec)
    if live is None:
        if refusals:
            return _refused(d, driver_name, refusals, "absent")
        steps = b.chain(d.ref, d.type, driver_name,
                        _seq("provision" if build else None, "define",
                             "start" if want_state == "running" else None), d, "new in spec")
        return ObjectPlan(d.ref, d.type, "create", driver_name, steps=steps, source=d.source)
    if not live.owned:
        return _not_ours(d, live, driver_name)
    undone = marks.rolled_back.get(d.ref)
    if undone is not None and undone.digest == d.digest:
        return _rolled_back(d, live, driver_name, undone)
    restart = _Restart.of(d, live, driver, settings, marks.pending.get(d.ref))

    changes = diff_object(d.flat, live, driver)
    cls = worst(changes)
    running = live.state == "running"
    state_change = () if (want_state == "running") == running else (
        FieldChange("state", live.state, want_state, "live",
                    "spec" if (live.last_applied or {}).get("state", "running") != want_state
                    else "drift"),)
    if not changes and not state_change:
        if restart.pending is not None:
            return _pending(d, live, driver_name, restart, b)
        return ObjectPlan(d.ref, d.type, "noop", driver_name, source=d.source)
    fields = tuple(c.field for c in changes)
    why = _reason(changes + state_change)
    fp = live.fingerprint()  # only a plan that acts on the object needs the state it acted on
    if refusals:
        return _refused(d, driver_name, refusals, fp, cls, changes + state_change)
    if cls == "recreate":
        recreate = [c.field for c in changes if c.update == "recreate"]
        if live.protected or d.spec.get("protect"):
            return _refused(d, driver_name, (Refusal(
                recreate[0], f"replace blocked: changing {', '.join(recreate)} means a new guest "
                "and protect is true", "protect", "protect: false"),), fp, cls, changes)
        if not d.spec.get("allow_replace"):
            return _refused(d, driver_name, (Refusal(
                recreate[0], f"replace refused: changing {', '.join(recreate)} means a new "
                "guest and its data would be lost", "replace", "allow_replace: true"),),
                fp, cls, changes)
        if restart.policy == "refuse" and running:
            return _refused(d, driver_name, (restart.refusal(recreate, "replaces"),), fp, cls,
                            changes)
        if not restart.now:
            return _waiting(d, driver_name, restart, "recreate", changes + state_change, fp)
        again = _seq("stop" if running else None, "purge" if is_domain else "undefine",
                     "provision" if build else None, "define",
                     "start" if want_state == "running" else None)
        steps = b.chain(d.ref, d.type, driver_name, again, d, why, fields)
        return ObjectPlan(d.ref, d.type, "replace", driver_name, update="recreate",
                          changes=changes + state_change, steps=steps, fingerprint=fp,
                          source=d.source, erases=driver.erases(live) if is_domain else (),
                          notes=("data is erased (allow_replace: true)",))
    kinds: list[StepKind] = []
    if cls == "restart" and running and want_state == "running":
        needs = [c.field for c in changes if c.update == "restart"]
        if restart.policy == "refuse":
            return _refused(d, driver_name, (restart.refusal(needs, "restarts"),), fp, cls,
                            changes)
        if restart.policy == "defer" and not restart.restarts_now:
            return _deferred(d, live, driver_name, driver, restart, needs, changes, fp, why, b)
        if not restart.now:
            return _waiting(d, driver_name, restart, "restart", changes, fp)
        kinds = ["stop", "update", "start"]
    else:
        if changes:
            kinds.append("update")
        if want_state == "running" and not running:
            kinds.append("start")
        elif want_state == "stopped" and running:
            kinds.insert(0, "stop") if cls == "restart" else kinds.append("stop")
    live_update = cls == "live" and running
    steps = b.chain(d.ref, d.type, driver_name, kinds, d, why, fields, live=live_update,
                    last_good=restart.last_good)
    still = restart.pending if restart.pending and "start" not in kinds else None
    return ObjectPlan(d.ref, d.type, "update", driver_name,
                      update=cls if cls else "live", changes=changes + state_change,
                      steps=steps, fingerprint=fp, source=d.source,
                      pending=still.fields if still else (), boot=still.boot if still else None)


def _refused(d: Desired, driver_name: str, refusals: tuple[Refusal, ...], fingerprint: str,
             update: str | None = None, changes: tuple[FieldChange, ...] = ()) -> ObjectPlan:
    return ObjectPlan(d.ref, d.type, "refused", driver_name, update=update, changes=changes,
                      fingerprint=fingerprint, source=d.source, refusals=refusals,
                      notes=tuple(map(str, refusals)))


@dataclass(frozen=True)
class _Restart:
    """When this object's guest may be restarted: its restart policy, whether its window
    (or `apply --now`) allows it now, and a valid pending change (the guest has not booted
    since it was written)."""

    policy: str
    window: Window | None
    now: bool  # the window allows a restart now (no window, it is open, or `apply --now`)
    forced: bool  # `apply --now`
    opens: datetime | None
    pending: Pending | None
    last_good: dict[str, Any] | None

    @classmethod
    def of(cls, d: Desired, live: LiveObject, driver: Any, settings: Settings,
           pending: Pending | None) -> _Restart:
        maint = settings.maintenance
        window = maint.window_of(d.spec)
        clock = settings.now()
        now = settings.ignore_windows or window is None or window.is_open(clock)
        if pending is not None and (live.state != "running" or (
                pending.boot is not None and driver.booted_since(live, pending.boot))):
            pending = None  # the guest booted (or stopped) since: the change is live
        return cls(maint.policy_of(d.spec), window, now, settings.ignore_windows,
                   None if now or window is None else window.next_open(clock), pending,
                   pending.previous if pending is not None else live.last_applied)

    @property
    def restarts_now(self) -> bool:
        """A change that waits for a restart (restart: defer) is made live now: in its
        window, by `apply --now`, or at once once the policy says auto."""
        if self.forced:
            return True
        return self.now and (self.window is not None or self.policy == "auto")

    def wait_note(self) -> str:
        assert self.window is not None and self.opens is not None
        return (f"waits for maintenance window {self.window.name} (opens "
                f"{self.opens.isoformat(timespec='minutes')}); `apply --now` overrides")

    def refusal(self, fields: list[str], what: str) -> Refusal:
        return Refusal(fields[0] if fields else "", f"changing {', '.join(fields)} {what} the "
                       "running guest and its restart policy is refuse", "restart",
                       "restart: auto or restart: defer")


def _restart_refusals(d: Desired, tech: Any, settings: Settings) -> list[Refusal]:
    """What of a spec's restart policy, window and health check cannot be honoured here."""
    out = list(health.refusals(d.spec, tech))
    why = settings.maintenance.unknown_window(d.spec)
    if why:
        out.append(Refusal("window", why, "policy", "maintenance.windows"))
    return out


def _rolled_back(d: Desired, live: LiveObject, driver_name: str, mark: RolledBack
                 ) -> ObjectPlan:
    return ObjectPlan(d.ref, d.type, "rolled_back", driver_name, fingerprint=live.fingerprint(),
                      source=d.source, notes=(
                          f"rolled back at {mark.since}: {mark.reason}; this spec is not tried "
                          "again until it changes",))


def _waiting(d: Desired, driver_name: str, restart: _Restart, update: str,
             changes: tuple[FieldChange, ...], fp: str) -> ObjectPlan:
    return ObjectPlan(d.ref, d.type, "waiting", driver_name, update=update, changes=changes,
                      fingerprint=fp, source=d.source, notes=(restart.wait_note(),))


def _deferred(d: Desired, live: LiveObject, driver_name: str, driver: Any, restart: _Restart,
              needs: list[str], changes: tuple[FieldChange, ...], fp: str, why: str,
              b: _Builder) -> ObjectPlan:
    """restart: defer: the new definition is written, the guest keeps running; the boot it
    runs now is kept, to tell when it has booted again (asked only here: it may cost a tool
    call)."""
    fields = tuple(c.field for c in changes)
    pending = tuple(sorted({*needs, *(restart.pending.fields if restart.pending else ())}))
    steps = b.chain(d.ref, d.type, driver_name, ["update"], d, why, fields, live=True,
                    last_good=restart.last_good, deferred=True)
    when = f" or in maintenance window {restart.window.name}" if restart.window else ""
    return ObjectPlan(d.ref, d.type, "update", driver_name, update="deferred", changes=changes,
                      steps=steps, fingerprint=fp, source=d.source, pending=pending,
                      boot=restart.pending.boot if restart.pending else driver.boot_id(live),
                      notes=(
                          f"restart deferred: {', '.join(pending)} take effect at the guest's "
                          f"next start{when} (restart: defer)",))


def _pending(d: Desired, live: LiveObject, driver_name: str, restart: _Restart,
             b: _Builder) -> ObjectPlan:
    """An object whose written change waits for a restart: restarted now if its window is
    open (or `apply --now`), else shown as pending."""
    assert restart.pending is not None
    fields = restart.pending.fields
    since = f"pending restart since {restart.pending.since}: {', '.join(fields)}"
    fp = live.fingerprint()
    if restart.restarts_now:
        steps = b.chain(d.ref, d.type, driver_name, ["stop", "start"], d, since,
                        last_good=restart.last_good)
        return ObjectPlan(d.ref, d.type, "update", driver_name, update="restart", steps=steps,
                          fingerprint=fp, source=d.source, pending=fields,
                          boot=restart.pending.boot, notes=(since,))
    when = f"; restarts in window {restart.window.name}" if restart.window else \
        "; takes effect at the guest's next start"
    return ObjectPlan(d.ref, d.type, "pending", driver_name, update="deferred", fingerprint=fp,
                      source=d.source, pending=fields, boot=restart.pending.boot,
                      notes=(since + when,))


def _seq(*kinds: StepKind | None) -> list[StepKind]:
    return [k for k in kinds if k is not None]


def _not_ours(d: Desired, live: LiveObject, driver_name: str) -> ObjectPlan:
    return _refused(d, driver_name, (Refusal(
        "", f"{d.ref} exists on the host but is not managed by reconciler (no ownership "
        "stamp); it is left alone. Import it or remove it by hand.", "foreign",
        "reconciler import"),), live.fingerprint())


def _reason(changes: tuple[FieldChange, ...]) -> str:
    parts = [f"{c.field}{' (drift)' if c.origin == 'drift' else ''}" for c in changes]
    return "changed: " + ", ".join(parts) if parts else ""


def _wire(b: _Builder, wanted: dict[Ref, Desired], live_all: dict[Ref, tuple[str, LiveObject]],
          plans: dict[Ref, ObjectPlan]) -> None:
    """Dependencies between objects: networks first, depends_on, removals in reverse."""
    bridges = {str(d.spec["bridge"]["name"]): ref for ref, d in wanted.items()
               if ref.kind == "Network" and (d.spec.get("bridge") or {}).get("name")}
    for ref, d in wanted.items():
        if ref.kind != "Domain":
            continue
        for net in referenced_networks(d.spec, bridges):
            b.after(ref, net)
        for dep in d.spec.get("depends_on", ()):
            b.after(ref, Ref("Domain", dep))
    removed = [r for r, p in plans.items() if p.action == "remove"]
    for ref in removed:
        if ref.kind != "Domain" or ref not in live_all:
            continue
        spec = live_all[ref][1].last_applied or live_all[ref][1].spec
        for net in referenced_networks(spec):
            if net in removed:
                b.after(net, ref)
        for dep in spec.get("depends_on", ()):
            if Ref("Domain", dep) in removed:
                b.after(Ref("Domain", dep), ref)


def _toposort(steps: dict[str, Step]) -> list[Step]:
    """Dependencies first; ties broken by object kind and name, never by insertion order."""
    order: list[Step] = []
    done: set[str] = set()
    pending = dict(steps)
    while pending:
        ready = sorted((s for s in pending.values() if all(d in done or d not in steps
                                                           for d in s.deps)),
                       key=lambda s: (s.ref.kind != "Network", s.ref.name, s.id))
        if not ready:  # a cycle slipped past the loader: run the rest in name order
            ready = sorted(pending.values(), key=lambda s: s.id)
        for step in ready:
            order.append(step)
            done.add(step.id)
            del pending[step.id]
    return order
