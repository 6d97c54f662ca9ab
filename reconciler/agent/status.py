"""The status file, STATE/agent-status.json: what the agent last did, for `reconciler status`,
monitoring scripts and people. Written atomically (temp file + rename) after passes, at most
every half second while busy, and once more on exit.

    {"format_version": 1, "pid": 123, "running": true, "updated": "...",
     "roots": [...], "commit": "...", "watcher": "alive", "http": "127.0.0.1:9137",
     "last_pass": {"plan_id", "trigger", "scope", "started", "finished", "duration",
                   "result": "succeeded|failed|interrupted|refused", "steps": {...},
                   "notes": [...]},
     "last_success": "...",
     "objects": {"domain/web": "in_sync",
                 "domain/db": {"state": "failed", "error": "...", "failures": 3,
                               "retry_at": "..."}},
     "held_files": [{"file": "...", "errors": ["..."]}],
     "pending_files": [{"file": "...", "waiting": "changed", "since": "..."}],
     "pending_restarts": ["domain/db"],
     "git": {"url": "...", "branch": "main", "last_attempt": 1700000000.0,
             "last_success": 1700000000.0, "last_error": "git's whole message", "failures": 0,
             "refused": null, "since_success": 12.5, "stale_after": 900, "stale": false},
     "request": {"received": "...", "answered": "...", "plan_id": "...", "result": "...",
                 ...}}

`git` is there only when the agent follows a repository; `request` once `reconciler reconcile`
asked for a pass (see request.py).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.errors import StateError
from reconciler.fsio import read_regular, write_atomic
from reconciler.text import printable

if TYPE_CHECKING:
    from .accounting import Accounting

STATUS_NAME = "agent-status.json"
FORMAT_VERSION = 1
STATUS_EVERY = 0.5  # seconds: the most often the file is written while passes run


def status_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / STATUS_NAME


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


def write_status(state_dir: str | Path, data: dict[str, Any]) -> None:
    """Atomically, 0600 (it names files and errors), never through a symlink."""
    body = json.dumps({"format_version": FORMAT_VERSION, **data}, separators=(",", ":"),
                      default=str)
    write_atomic(status_path(state_dir), body + "\n", 0o600)


class StatusFile:
    """The status file's writer: written after passes, at most every STATUS_EVERY seconds
    while busy, and once more on exit (`force`)."""

    def __init__(self, state_dir: str | Path, clock: Callable[[], float]) -> None:
        self.state_dir, self.clock = state_dir, clock
        self.dirty = True
        self._written = 0.0

    def due_at(self) -> float | None:
        """When the loop must wake to write it (None: nothing new to write)."""
        return self._written + STATUS_EVERY if self.dirty else None

    def flush(self, build: Callable[[float, bool], dict[str, Any]], log: Any,
              force: bool = False) -> None:
        """Write `build(clock_now, final)` if something changed and it is time (or `force`,
        the last write, `final`)."""
        now = self.clock()
        if not force and (not self.dirty or now - self._written < STATUS_EVERY):
            return
        self.dirty = False
        self._written = now
        try:
            write_status(self.state_dir, build(now, force))
        except OSError as exc:
            log.warning("status.write_failed", error=str(exc))


def document(*, accounting: Accounting, clock_now: float, running: bool, started_at: float,
             state_dir: str, roots: list[str], commit: str | None, watcher_alive: bool,
             http: str | None, ready: bool, held: Mapping[str, list[str]],
             pending: Mapping[str, tuple[str, float]], git: dict[str, Any] | None,
             request: dict[str, Any] | None, crashed: str | None) -> dict[str, Any]:
    """The status document (the module docstring shows its shape)."""
    objects, counts, restarts = accounting.status_objects(clock_now)
    wall_now = time.time()
    doc: dict[str, Any] = {
        "pid": os.getpid(), "running": running, "started": iso(started_at),
        "updated": iso(wall_now), "state_dir": state_dir, "roots": roots, "commit": commit,
        "watcher": "alive" if watcher_alive else "dead", "http": http, "ready": ready,
        "last_pass": accounting.last_pass, "last_success": iso(accounting.last_success),
        "object_counts": counts, "objects": objects,
        "held_files": [{"file": f, "errors": errs} for f, errs in sorted(held.items())],
        "pending_files": [{"file": n, "waiting": k, "since": iso(wall_now - (clock_now - t))}
                          for n, (k, t) in sorted(pending.items())],
        "pending_restarts": restarts}
    if git is not None:
        doc["git"] = git
    if request is not None:
        doc["request"] = request
    if crashed:
        doc["crashed"] = crashed
    return doc


MAX_STATUS_BYTES = 64 * 1024 * 1024


def read_status(state_dir: str | Path) -> dict[str, Any] | None:
    """The status, or None when there is none; StateError when it cannot be used."""
    path = status_path(state_dir)
    try:
        data = json.loads(read_regular(path, MAX_STATUS_BYTES))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read the status file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise StateError(f"the status file {path} is not valid JSON ({exc}); the agent "
                         "writes a new one after its next pass") from None
    if not isinstance(data, dict):
        raise StateError(f"the status file {path} does not hold a status object")
    return data


def object_state(entry: Any) -> str:
    return entry if isinstance(entry, str) else str(entry.get("state", "unknown"))


def render_text(data: dict[str, Any], running_pid: int | None) -> str:
    """The status as a person reads it: the verdict first, then what needs attention."""
    lines = []
    if running_pid:
        lines.append(f"agent: running (pid {running_pid}), watcher {data.get('watcher', '?')}")
    else:
        lines.append(f"agent: not running (status from {data.get('updated', '?')})")
    roots = ", ".join(map(printable, data.get("roots") or [])) or "-"
    lines.append(f"specs: {roots}" + (f" @ {data['commit'][:12]}" if data.get("commit") else ""))
    last = data.get("last_pass")
    if last:
        steps = last.get("steps") or {}
        lines.append(
            f"last pass: {last.get('result')} at {last.get('finished')} "
            f"({last.get('trigger')}, {last.get('scope')}, plan {last.get('plan_id')}, "
            f"{last.get('duration')} s; {steps.get('succeeded', 0)} steps ok, "
            f"{steps.get('failed', 0)} failed, {steps.get('skipped', 0)} skipped)")
        for note in last.get("notes") or []:
            lines.append(f"  note: {printable(note)}")
    else:
        lines.append("last pass: none yet")
    lines.append(f"last success: {data.get('last_success') or 'never'}")
    objects: dict[str, Any] = data.get("objects") or {}
    counts: dict[str, int] = {}
    for entry in objects.values():
        state = object_state(entry)
        counts[state] = counts.get(state, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"
    lines.append(f"objects: {summary}")
    for name, entry in sorted(objects.items()):
        if isinstance(entry, dict):
            extra = []
            if entry.get("error"):
                extra.append(str(entry["error"]))
            if entry.get("failures"):
                extra.append(f"{entry['failures']} failures, retry at {entry.get('retry_at')}")
            if entry.get("note"):
                extra.append(str(entry["note"]))
            lines.append(f"  {printable(entry.get('state'))}: {printable(name)}" +
                         (f" - {printable('; '.join(extra))}" if extra else ""))
    held = data.get("held_files") or []
    if held:
        lines.append(f"held files: {len(held)}")
        for item in held:
            lines.append(f"  {printable(item.get('file'))}")
            for err in item.get("errors", []):
                lines.append(f"    {printable(err)}")
    pending = data.get("pending_files") or []
    if pending:
        lines.append(f"files waiting to be complete: {len(pending)}")
        for item in pending[:20]:
            lines.append(f"  {printable(item.get('file'))} ({item.get('waiting')} since "
                         f"{item.get('since')})")
    if data.get("git"):
        lines.extend(render_git(data["git"]))
    restarts = data.get("pending_restarts") or []
    if restarts:
        lines.append("pending restarts: " + printable(", ".join(restarts)))
    return "\n".join(lines) + "\n"


def render_git(git: dict[str, Any]) -> list[str]:
    """The git source: how fetching goes, and git's whole message when it fails (one line of
    it per line, each escaped)."""
    source = printable(git.get("url") or "?") + (f" (branch {printable(git['branch'])})"
                                                 if git.get("branch") else "")
    last_success = _epoch_iso(git.get("last_success")) or "never"
    if not git.get("last_error"):
        return [f"git: {source}: ok, last fetch {_epoch_iso(git.get('last_attempt')) or 'not yet'}"]
    out = [f"git: {source}: failing, {git.get('failures')} fetches in a row; last success "
           f"{last_success}"]
    if git.get("stale"):
        out.append(f"  stale: no fetch worked for {git.get('since_success')} s "
                   f"(git.stale_after: {git.get('stale_after')} s)")
    out.append(f"  last error at {_epoch_iso(git.get('last_attempt'))}:")
    out.extend(f"    {printable(line)}".rstrip() for line in str(git["last_error"]).split("\n"))
    return out


def _epoch_iso(value: Any) -> str | None:
    return iso(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
