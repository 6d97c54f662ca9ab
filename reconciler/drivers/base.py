"""The driver contract: small, like an HTTP transport. A driver knows one technology and
nothing of plans.

    observe()              -> every object it manages on the host, in the model's canonical form
    update_class(obj, f, old, new) -> how a change of field `f` can be made: live, restart or
                           recreate (old/new let a driver tell a mount change from a new root)
    execute(step)          -> one step: provision, define, update, start, stop, undefine, purge
    events()               -> optional: host changes as they happen (names of objects to recheck)
    provisions(spec)       -> optional: False when a new object of this spec has nothing to be
                           built before its define (no provision step is planned); default True
    prepare_observe()      -> optional: start what the next observe() will wait for (a tool, a
                           daemon call), so it runs while the engine loads the spec files

Specs cross this boundary as canonical dicts (`reconciler.model.canonical`), the same form the
driver stores as the last-applied spec, so comparing desired, last-applied and live is comparing
plain data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

UpdateClass = Literal["live", "restart", "recreate"]
StepKind = Literal["provision", "define", "update", "start", "stop", "undefine", "purge"]
STEP_KINDS: tuple[StepKind, ...] = ("provision", "define", "update", "start", "stop", "undefine",
                                    "purge")
OWNER = "reconciler"

# Fields that steer the engine, not the host: changing one only rewrites the stored stamp.
POLICY_FIELDS = frozenset({"state", "protect", "removal", "allow_replace", "depends_on", "hosts",
                           "profile", "title", "description"})


class Ref(NamedTuple):
    """An object's identity. A tuple, so hashing and comparing it (done for every object in
    every plan) runs in C."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind.lower()}/{self.name}"


@dataclass(frozen=True)
class Stamp:
    """What we store on the host beside an object: ownership, where its spec came from, and
    the spec we last applied (so a field dropped from the spec can go back to its default)."""

    owner: str
    source: str | None
    spec: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"owner": self.owner, "source": self.source, "spec": self.spec}

    @classmethod
    def from_json(cls, data: Any) -> Stamp | None:
        if not isinstance(data, dict) or not isinstance(data.get("spec"), dict):
            return None
        return cls(str(data.get("owner", "")), data.get("source"), data["spec"])


@dataclass(frozen=True)
class LiveObject:
    ref: Ref
    type: str
    state: Literal["running", "stopped"]
    spec: dict[str, Any]
    stamp: Stamp | None = None
    data: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def owned(self) -> bool:
        return self.stamp is not None and self.stamp.owner == OWNER

    @property
    def last_applied(self) -> dict[str, Any] | None:
        return self.stamp.spec if self.stamp else None

    @property
    def protected(self) -> bool:
        return bool(self.last_applied and self.last_applied.get("protect"))

    def fingerprint(self) -> str:
        """Changes whenever anything a plan assumed about this object changes."""
        blob = json.dumps([self.state, self.spec, self.stamp.to_json() if self.stamp else None,
                           self.data], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    # Worked out once per object: a driver that finds an object unchanged hands back the same
    # LiveObject, so a no-op pass flattens nothing again.
    @cached_property
    def flat(self) -> dict[str, Any]:
        return flatten(self.spec)

    @cached_property
    def flat_last(self) -> dict[str, Any]:
        return flatten(self.last_applied or {})


@dataclass(frozen=True)
class Step:
    """One operation on one object. `spec` is the canonical desired spec where one is needed."""

    id: str
    kind: StepKind
    ref: Ref
    type: str
    spec: dict[str, Any] | None = None
    source: str | None = None
    fields: tuple[str, ...] = ()
    live: bool = False
    reason: str = ""
    deps: tuple[str, ...] = ()
    driver: str = ""

    def stamp(self) -> Stamp:
        assert self.spec is not None
        return Stamp(OWNER, self.source, self.spec)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "object": str(self.ref),
                "ref": [self.ref.kind, self.ref.name], "type": self.type, "spec": self.spec,
                "source": self.source, "fields": list(self.fields), "live": self.live,
                "reason": self.reason, "deps": list(self.deps), "driver": self.driver}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Step:
        return cls(id=data["id"], kind=data["kind"], ref=Ref(*data["ref"]), type=data["type"],
                   spec=data.get("spec"), source=data.get("source"),
                   fields=tuple(data.get("fields", ())), live=bool(data.get("live")),
                   reason=data.get("reason", ""), deps=tuple(data.get("deps", ())),
                   driver=data.get("driver", ""))


@runtime_checkable
class Driver(Protocol):
    name: str
    #: domain types this driver runs; "network" when it manages virtual networks
    types: frozenset[str]

    def observe(self) -> list[LiveObject]: ...

    def update_class(self, ref: Ref, type: str, field: str, old: Any = None,
                     new: Any = None) -> UpdateClass: ...

    def execute(self, step: Step) -> None: ...

    def close(self) -> None: ...


class EventSource(Protocol):
    def events(self, stop: Any) -> Iterator[Ref]: ...


def prepare_observe(driver: Driver) -> None:
    """Let `driver` start its next observe's slow outside part, if it has one."""
    prepare = getattr(driver, "prepare_observe", None)
    if prepare is not None:
        prepare()


def provisions(driver: Driver, spec: dict[str, Any]) -> bool:
    """Whether creating `spec` through `driver` needs a provision step (see the contract)."""
    ask = getattr(driver, "provisions", None)
    return True if ask is None else bool(ask(spec))


def flatten(spec: dict[str, Any]) -> dict[str, Any]:
    """Nested settings one level down (`cpu.shares`), so update classes can be per setting."""
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if key in NESTED and isinstance(value, dict):
            for sub, inner in value.items():
                out[f"{key}.{sub}"] = inner
        else:
            out[key] = value
    return out


def root_of(filesystems: Any) -> Any:
    """The filesystem mounted at `/` in a canonical `filesystems` list (None if none)."""
    return next((fs for fs in filesystems or () if fs.get("target") == "/"), None)


NESTED = frozenset({"cpu", "memtune", "quota", "scheduler", "dns", "init", "console", "os"})
