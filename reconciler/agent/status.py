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
     "pending_restarts": ["domain/db"]}
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.errors import StateError
from reconciler.fsio import read_regular, write_atomic
from reconciler.text import printable

STATUS_NAME = "agent-status.json"
FORMAT_VERSION = 1


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
    git = data.get("git") or {}
    if git.get("last_error"):
        lines.append(f"git: failing ({git.get('failures')} in a row): "
                     f"{printable(git['last_error'])}")
    restarts = data.get("pending_restarts") or []
    if restarts:
        lines.append("pending restarts: " + printable(", ".join(restarts)))
    return "\n".join(lines) + "\n"
