"""What the engine remembers of objects between passes, in `STATE/marks.json` (0600):

    pending      a restart-class change written without a restart (`restart: defer`): which
                 fields, since when, and the guest's boot at the time; it is live once the
                 guest has booted again (another boot id, or seen stopped)
    rolled_back  a change whose health check failed and was undone: the digest of the spec
                 that failed; that spec is not tried again, a changed spec is

Written only by whoever holds the state directory's lock (apply, the agent); read by plan and
status without it. The host stays the truth: a mark only changes what a plan proposes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.errors import StateError
from reconciler.fsio import read_regular, write_atomic
from reconciler.model.fields import Ref

FILE = "marks.json"
MAX_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Pending:
    fields: tuple[str, ...]
    since: str
    boot: str | None
    plan_id: str
    previous: dict[str, Any] | None = None  # the spec before: a failed health check's target

    def to_json(self) -> dict[str, Any]:
        return {"fields": list(self.fields), "since": self.since, "boot": self.boot,
                "plan_id": self.plan_id, "previous": self.previous}


@dataclass(frozen=True)
class RolledBack:
    digest: str  # of the desired spec that failed its health check
    since: str
    reason: str
    plan_id: str

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "since": self.since, "reason": self.reason,
                "plan_id": self.plan_id}


@dataclass(frozen=True)
class Marks:
    pending: dict[Ref, Pending] = field(default_factory=dict)
    rolled_back: dict[Ref, RolledBack] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"pending": {str(r): p.to_json() for r, p in sorted(self.pending.items())},
                "rolled_back": {str(r): m.to_json()
                                for r, m in sorted(self.rolled_back.items())}}


def digest(spec: dict[str, Any]) -> str:
    """A canonical spec's identity: what tells "this spec again" from "a changed spec"."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _ref(text: str) -> Ref:
    kind, _, name = text.partition("/")
    return Ref({"domain": "Domain", "network": "Network"}.get(kind, kind), name)


def read(state_dir: str | Path) -> Marks:
    """The marks, empty when none were written. A file that is not ours (a symlink, not
    JSON) is a StateError, never silently empty: it would clear every mark."""
    path = Path(state_dir) / FILE
    try:
        raw = read_regular(path, MAX_BYTES)
    except FileNotFoundError:
        return Marks()
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(raw)
        pending = {_ref(k): Pending(tuple(v["fields"]), str(v["since"]), v.get("boot"),
                                    str(v.get("plan_id", "")), v.get("previous"))
                   for k, v in (data.get("pending") or {}).items()}
        rolled = {_ref(k): RolledBack(str(v["digest"]), str(v["since"]), str(v["reason"]),
                                      str(v.get("plan_id", "")))
                  for k, v in (data.get("rolled_back") or {}).items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StateError(f"{path} is not a marks file: {exc}") from None
    return Marks(pending, rolled)


def write(state_dir: str | Path, marks: Marks) -> None:
    path = Path(state_dir) / FILE
    try:
        write_atomic(path, json.dumps(marks.to_json(), indent=1).encode(), mode=0o600)
    except OSError as exc:
        raise StateError(f"cannot write {path}: {exc.strerror or exc}") from None


@contextmanager
def changing(state_dir: str | Path) -> Iterator[Marks]:
    """Read, let the block change the two dicts in place, write back if they changed."""
    marks = read(state_dir)
    before = marks.to_json()
    yield marks
    if marks.to_json() != before:
        write(state_dir, marks)

