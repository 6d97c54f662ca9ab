"""The driver contract: small, like an HTTP transport. A driver knows one technology and
nothing of plans. Every member a driver may have is declared here; what a driver can do is
data (`Capabilities`), never found by looking for an attribute.

    observe()            every object it manages on the host, in the model's canonical form
    prepare_observe()    start what the next observe() will wait for (a tool, a daemon call),
                         so it runs while the engine loads the spec files (capability)
    technology(k, t)     the rules (`reconciler.rules`) for objects of kind k and type t
    check(k, t, spec)    what of a desired spec it cannot realize, as refusals (plan time:
                         the plan refuses the object; apply never attempts it)
    update_class(...)    how a change of one field is made: live, restart or recreate
    provisions(k, t, s)  whether a new object of spec s is built before its define
    erases(live)         the host paths a purge of that object erases (the plan shows them)
    handlers()           the step table: (object kind, step kind) -> the function that runs it
    execute(step)        one step through the table, with errors mapped at one boundary
    events(stop)         host changes as they happen: refs to recheck (capability)
    import_specs(...)    specs for what the host runs, adopting them (capability)
    close()

Specs cross this boundary as canonical dicts (`reconciler.model.canonical`), the same form the
driver stores as the last-applied spec, so comparing desired, last-applied and live is comparing
plain data.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Literal

from reconciler.errors import DriverError, PermanentError, as_driver_error
from reconciler.model.fields import Ref, concealed, flatten
from reconciler.rules import Refusal, Technology, UpdateClass, update_class

# `verify` is the engine's own: a health check after a start (engine/health.py)
StepKind = Literal["provision", "define", "update", "start", "stop", "undefine", "purge",
                   "verify"]
STEP_KINDS: tuple[StepKind, ...] = ("provision", "define", "update", "start", "stop", "undefine",
                                    "purge", "verify")
OWNER = "reconciler"


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
        source = data.get("source")
        return cls(str(data.get("owner", "")), source if isinstance(source, str) else None,
                   data["spec"])


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
    # the last good spec (the stamp's before this change): what a failed health check of a
    # verify step rolls back to (None for a new guest); set on an update step only when the
    # update is deferred (restart: defer)
    previous: dict[str, Any] | None = None

    @property
    def deferred(self) -> bool:
        """An update of a running guest whose restart-class settings are saved for its next
        boot (restart: defer): the guest is never restarted for them; its live-class ones
        are pushed live as in any live update (`live` is set)."""
        return self.kind == "update" and self.previous is not None

    def stamp(self) -> Stamp:
        if self.spec is None:
            raise PermanentError(f"{self.id}: step has no spec")
        return Stamp(OWNER, self.source, self.spec)

    def to_json(self, secrets: bool = False) -> dict[str, Any]:
        """As data; secret values in the spec as digests unless `secrets` (a saved plan
        needs them to be applied later)."""
        return {"id": self.id, "kind": self.kind, "object": str(self.ref),
                "ref": [self.ref.kind, self.ref.name], "type": self.type,
                "spec": self.spec if secrets else concealed(self.spec),
                "source": self.source, "fields": list(self.fields), "live": self.live,
                "reason": self.reason, "deps": list(self.deps), "driver": self.driver,
                **({"previous": self.previous if secrets else concealed(self.previous)}
                   if self.previous is not None else {})}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Step:
        kind = data["kind"]
        if kind not in STEP_KINDS:
            raise ValueError(f"unknown step kind {kind!r}")
        return cls(id=data["id"], kind=kind, ref=Ref(*data["ref"]), type=data["type"],
                   spec=data.get("spec"), source=data.get("source"),
                   fields=tuple(data.get("fields", ())), live=bool(data.get("live")),
                   reason=data.get("reason", ""), deps=tuple(data.get("deps", ())),
                   driver=data.get("driver", ""), previous=data.get("previous"))


@dataclass(frozen=True)
class Capabilities:
    """What a driver can do beyond the required members, as data."""

    events: bool = False            # events() reports host changes as they happen
    imports: bool = False           # import_specs() writes specs for what the host runs
    prepares_observe: bool = False  # prepare_observe() starts the next observe early


@dataclass(frozen=True)
class NotConverted:
    """A line of a native file that did not become part of a spec, and why: a converter maps
    every key or says, with its line, that it did not."""

    file: str
    line: int
    key: str
    value: str
    reason: str

    def report(self, severity: str = "warning") -> str:
        return (f"{self.file}:{self.line}: {severity}: not converted: {self.key} = "
                f"{self.value} ({self.reason})")


@dataclass(frozen=True)
class ImportResult:
    """What `import_specs` found: the specs (adopted unless told not to), the objects it
    left out with why, and the lines of their native files the specs do not carry."""

    specs: list[dict[str, Any]]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    not_converted: list[NotConverted] = field(default_factory=list)


Handler = Callable[[Step], None]


class NameLocks:
    """One lock per object name, so steps on one guest never overlap (the agent and a retry
    may race), while steps on different guests run side by side."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    def serialized(self, run: Callable[[Step, str], None],
                   check: Callable[[str], str] = str) -> Handler:
        """A step handler that runs `run(step, name)` under the name's lock; `check` turns
        the step's object name into the name the driver uses (and refuses a bad one)."""
        def handler(step: Step) -> None:
            name = check(step.ref.name)
            with self.lock(name):
                run(step, name)
        return handler


class Driver(ABC):
    name: ClassVar[str]
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: domain types this driver runs; "network" when it manages virtual networks
    types: frozenset[str]

    # ------------------------------------------------------------------ reading
    @abstractmethod
    def observe(self) -> list[LiveObject]: ...

    def prepare_observe(self) -> None:
        return None

    # ------------------------------------------------------------------ rules
    @abstractmethod
    def technology(self, kind: str, dtype: str) -> Technology: ...

    def check(self, kind: str, dtype: str, spec: dict[str, Any]) -> list[Refusal]:
        return self.technology(kind, dtype).refusals(spec)

    def update_class(self, ref: Ref, type: str, field: str, old: Any = None,
                     new: Any = None) -> UpdateClass:
        return update_class(self.technology(ref.kind, type), field, old, new)

    def provisions(self, kind: str, dtype: str, spec: dict[str, Any]) -> bool:
        return self.technology(kind, dtype).provisions(spec)

    def erases(self, live: LiveObject) -> tuple[str, ...]:
        """Host paths a purge of `live` erases (nothing by default)."""
        return ()

    def boot_id(self, live: LiveObject) -> str | None:
        """What tells this boot of a running guest from the next (its init's pid and start
        time, a domain id, ...), so a change waiting for a restart knows when it happened.
        None: the driver cannot tell (such a change is live only once we restart it)."""
        return None

    def booted_since(self, live: LiveObject, boot: str) -> bool:
        """Whether the running guest booted again since `boot_id` said `boot`."""
        now = self.boot_id(live)
        return now is not None and now != boot

    def run_in_guest(self, ref: Ref, argv: tuple[str, ...], timeout: float) -> int:
        """Run `argv` inside the running guest, as its root, with no shell; its exit status.
        Drivers whose technology `guest_exec` says so implement it (a health check)."""
        raise PermanentError(f"the {self.name} driver cannot run a command inside a guest")

    # ------------------------------------------------------------------ writing
    @abstractmethod
    def handlers(self) -> Mapping[tuple[str, StepKind], Handler]:
        """(object kind, step kind) -> the function that runs that step."""

    @cached_property
    def _handlers(self) -> dict[tuple[str, StepKind], Handler]:
        return dict(self.handlers())

    def execute(self, step: Step) -> None:
        """Run one step. Every failure leaves as a DriverError: the file system's and the
        tools' errors are mapped here, once, to transient (worth retrying) or permanent."""
        handler = self._handlers.get((step.ref.kind, step.kind))
        if handler is None:
            raise PermanentError(f"the {self.name} driver cannot {step.kind} a "
                                 f"{step.ref.kind.lower()} ({step.ref})")
        try:
            handler(step)
        except DriverError:
            raise
        except (OSError, subprocess.SubprocessError) as exc:
            raise as_driver_error(exc, f"{step.kind} {step.ref}") from None

    # ------------------------------------------------------------------ capabilities
    def events(self, stop: threading.Event) -> Iterator[Ref]:
        raise NotImplementedError(f"the {self.name} driver reports no events")

    def import_specs(self, names: Iterable[str] | None = None, adopt: bool = True,
                     out: str | None = None, format: str = "yaml") -> ImportResult:
        raise NotImplementedError(f"the {self.name} driver cannot import")

    def close(self) -> None:
        return None


def observe(driver: Driver) -> list[LiveObject]:
    """`driver.observe()` with the file system's and the tools' errors mapped, as for steps."""
    try:
        return driver.observe()
    except DriverError:
        raise
    except (OSError, subprocess.SubprocessError) as exc:
        raise as_driver_error(exc, f"observe ({driver.name})") from None


__all__ = ["OWNER", "STEP_KINDS", "Capabilities", "Driver", "Handler", "ImportResult",
           "LiveObject", "Stamp", "Step", "StepKind", "observe"]
