"""What the journal says each applied plan did to each object: `reconciler history` and the
spec `reconciler revert` goes back to.

The journal (and the one set-aside file before it) is read line by line; a line that is not
a whole JSON record (the last one of a crash) is skipped. An entry is one object in one plan
that changed it: when, from which commit, what changed, how its steps ended, and the spec the
object had after it (the spec its define or update step carried; secret values are digests
there, as everywhere in the journal).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.fsio import open_regular

_JOURNALS = ("journal.jsonl.1", "journal.jsonl")
_SPEC_STEPS = ("define", "update", "provision")


@dataclass
class Entry:
    plan_id: str
    created: str
    commit: str | None
    object: str
    action: str
    update: str | None
    changes: list[dict[str, Any]]
    steps: list[str]
    spec: dict[str, Any] | None
    source: str | None
    results: dict[str, str] = field(default_factory=dict)  # step id -> how it ended
    interrupted: bool = False

    @property
    def outcome(self) -> str:
        """applied, failed, rolled back, interrupted or not applied."""
        ended = [self.results.get(s) for s in self.steps]
        if any(r == "rolled_back" for r in ended):
            return "rolled back"
        if any(r == "failed" for r in ended):
            return "failed"
        if ended and all(r == "succeeded" for r in ended):
            return "applied"
        return "interrupted" if self.interrupted else "not applied"


def _records(state_dir: Path) -> Iterator[dict[str, Any]]:
    for name in _JOURNALS:
        try:
            fd = open_regular(state_dir / name)
        except FileNotFoundError:
            continue
        with open(fd, encoding="utf-8", errors="replace", newline="") as fh:
            for line in fh:  # text mode splits at "\n" only (newline="")
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    yield record


def entries(state_dir: str | Path, name: str | None = None) -> list[Entry]:
    """Every object a recorded plan changed (only `name`'s: an object name, or KIND/NAME),
    oldest first."""
    out: list[Entry] = []
    by_step: dict[tuple[str, str], Entry] = {}
    by_plan: dict[str, list[Entry]] = {}
    for record in _records(Path(state_dir)):
        event, plan_id = record.get("event"), str(record.get("plan_id", ""))
        if event == "plan":
            for entry in _plan_entries(record, name):
                out.append(entry)
                by_plan.setdefault(plan_id, []).append(entry)
                for sid in entry.steps:
                    by_step[(plan_id, sid)] = entry
        elif event in ("step.succeeded", "step.failed", "step.skipped"):
            owner = by_step.get((plan_id, str(record.get("step"))))
            if owner is not None:
                owner.results[str(record["step"])] = str(event).split(".", 1)[1]
        elif event == "object.rolled_back":
            for entry in by_plan.get(plan_id, []):
                if entry.object == record.get("object"):
                    entry.results[f"{entry.object}:verify"] = "rolled_back"
        elif event == "apply.interrupted":
            for entry in by_plan.get(plan_id, []):
                entry.interrupted = True
    return out


def _plan_entries(record: dict[str, Any], name: str | None) -> Iterator[Entry]:
    steps = [s for s in record.get("steps", ()) if isinstance(s, dict)]
    commit = (record.get("context") or {}).get("commit")
    for obj in record.get("objects", ()):
        if not isinstance(obj, dict) or not obj.get("steps"):
            continue
        label = str(obj.get("object", ""))
        if name is not None and name not in (label, obj.get("name")):
            continue
        own = [s for s in steps if s.get("object") == label]
        spec = next((s.get("spec") for s in reversed(own) if s.get("kind") in _SPEC_STEPS
                     and isinstance(s.get("spec"), dict)), None)
        yield Entry(str(record.get("plan_id", "")), str(record.get("created") or record.get("ts")),
                    commit if isinstance(commit, str) else None, label, str(obj.get("action")),
                    obj.get("update"), list(obj.get("changes") or ()),
                    [str(s) for s in obj.get("steps", ())], spec, obj.get("source"))


def spec_after(state_dir: str | Path, name: str, plan_id: str) -> Entry | None:
    """The entry of `name` in plan `plan_id` (a unique prefix of its id will do)."""
    found = [e for e in entries(state_dir, name) if e.plan_id.startswith(plan_id)]
    return found[-1] if len({e.plan_id for e in found}) == 1 else None
