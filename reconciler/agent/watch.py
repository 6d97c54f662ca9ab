"""Watching spec directories: watchdog (inotify) events -> files that are complete, in bursts.

Two parts:

- `ChangeTracker` decides *when* a changed file may be read. It is pure bookkeeping with the
  clock passed in, so its rules are tested without a file system:

  * a file that arrived by rename (`mv tmp a.yaml`, git, rsync, most editors) is complete at
    once: the rename is atomic, there is no half of it to see;
  * a file written in place (created, modified, closed, attributes) is complete only when its
    (size, mtime, inode) has not changed for `settle` seconds *and* nobody holds it open for
    writing. An inotify open without its close is waited for up to `open_hold`; then the
    processes holding the file are looked up (/proc/*/fdinfo), and one holding it open for
    writing is waited for as long as it does: a file held open by its writer is never read.
    A half-written YAML may well parse, so parse success is never the test, stability is;
  * a deleted (or renamed-away) file counts as gone only after `settle`: editors that save by
    "rename the old file to a backup, write a new one" must not look like a deletion;
  * events come in bursts; a burst is released after `quiet` seconds without events, or `cap`
    seconds after it began, whichever comes first, so a flood cannot starve the loop.

- `SpecWatcher` turns watchdog events into tracker events: recursive watches on each spec root
  (its real path), and a watch on the parent directory of the root and of every symlink above
  it, so a symlink swapped to a new tree (git-sync style) is seen as one change and the watch
  moves to the new tree. A kernel event-queue overflow (events lost) asks for a full rescan.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers.api import ObservedWatch
from watchdog.observers.inotify import InotifyObserver

from reconciler.log import get_logger
from reconciler.specs.files import is_spec_file

FileKey = tuple[int, int, int]  # size, mtime_ns, inode
PendingKind = Literal["complete", "changed", "deleted"]
EventKind = Literal["moved_in", "written", "gone", "opened", "closed_write", "closed_nowrite"]


def file_key(path: str) -> FileKey | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def wanted(root: str, name: str) -> bool:
    """The loader's filter: spec suffixes only; dotfiles/dot-directories, editor and package
    backups ignored."""
    rel = os.path.relpath(name, root)
    if rel.startswith(".." + os.sep) or rel == "..":
        return False
    if any(part.startswith(".") for part in Path(rel).parts):
        return False
    return is_spec_file(Path(name))


@dataclass
class _Pending:
    kind: PendingKind
    first: float
    last: float
    key: FileKey | None = None


@dataclass(frozen=True)
class Ready:
    name: str
    kind: PendingKind
    key: FileKey | None


@dataclass(frozen=True)
class Rescan:
    reason: str
    trusted: bool  # the tree is complete (atomic swap, startup, reload): read it at once


@dataclass
class Due:
    ready: list[Ready] = field(default_factory=list)
    rescans: list[Rescan] = field(default_factory=list)
    next_at: float | None = None
    in_burst: bool = False  # events are still arriving: what is pending is held back


class ChangeTracker:
    """Pending file changes and when each may be read. Thread-safe: the watcher thread feeds
    it, the agent loop drains it; `wake` is called whenever something new arrived."""

    def __init__(self, *, settle: float = 1.0, quiet: float = 0.02, cap: float = 0.2,
                 open_hold: float = 30.0, wake: Callable[[], None] | None = None,
                 stat: Callable[[str], FileKey | None] = file_key,
                 writers: Callable[[str], list[int]] | None = None) -> None:
        self.settle, self.quiet, self.cap, self.open_hold = settle, quiet, cap, open_hold
        self._wake = wake or (lambda: None)
        self._stat = stat
        self._writers = writers or open_for_writing
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._opens: dict[str, int] = {}
        self._open_since: dict[str, float] = {}
        self._rescans: list[Rescan] = []
        self._burst_start: float | None = None
        self._last_activity = 0.0

    def configure(self, *, settle: float, quiet: float, cap: float, open_hold: float) -> None:
        with self._lock:
            self.settle, self.quiet, self.cap, self.open_hold = settle, quiet, cap, open_hold

    # ------------------------------------------------------------ fed by the watcher
    def event(self, name: str, kind: EventKind, now: float, key: FileKey | None = None) -> None:
        with self._lock:
            if kind == "opened":
                if self._opens.get(name, 0) == 0:
                    self._open_since[name] = now
                self._opens[name] = self._opens.get(name, 0) + 1
                return
            if kind in ("closed_write", "closed_nowrite"):
                count = self._opens.get(name, 0) - 1
                if count <= 0:
                    self._opens.pop(name, None)
                    self._open_since.pop(name, None)
                else:
                    self._opens[name] = count
                if kind == "closed_nowrite":
                    return
            if kind == "moved_in":
                pending: PendingKind = "complete"
                self._opens.pop(name, None)  # a new inode at this name; nobody writes it yet
                self._open_since.pop(name, None)
            elif kind == "gone":
                pending = "deleted"
                self._opens.pop(name, None)
                self._open_since.pop(name, None)
            else:
                pending = "changed"
            entry = self._pending.get(name)
            if entry is None:
                self._pending[name] = _Pending(pending, now, now, key)
            else:
                entry.kind, entry.last, entry.key = pending, now, key
            self._activity(now)
        self._wake()

    def request_rescan(self, reason: str, trusted: bool, now: float) -> None:
        with self._lock:
            self._rescans.append(Rescan(reason, trusted))
            if reason == "overflow":  # open/close pairs were lost with the other events
                self._opens.clear()
                self._open_since.clear()
            self._activity(now)
        self._wake()

    def _activity(self, now: float) -> None:
        if self._burst_start is None:
            self._burst_start = now
        self._last_activity = now

    # ------------------------------------------------------------ drained by the loop
    def add(self, name: str, kind: PendingKind, now: float, key: FileKey | None = None,
            first: float | None = None) -> None:
        """Put a file (back) in waiting: found changed by a rescan, or changed while read."""
        with self._lock:
            entry = self._pending.get(name)
            if entry is None:
                self._pending[name] = _Pending(kind, first if first is not None else now, now,
                                               key)
            else:
                entry.kind, entry.last, entry.key = kind, now, key

    def discard(self, names: Iterable[str]) -> None:
        with self._lock:
            for name in names:
                self._pending.pop(name, None)

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

    def due(self, now: float) -> Due:
        """What may be acted on now, and when to look again."""
        with self._lock:
            out = Due()
            if self._burst_start is not None:
                flush_at = min(self._last_activity + self.quiet, self._burst_start + self.cap)
                if now < flush_at:
                    out.next_at, out.in_burst = flush_at, True
                    return out
                self._burst_start = None
            out.rescans, self._rescans = self._rescans, []
            for name, entry in list(self._pending.items()):
                at = self._ready_at(name, entry, now)
                if at is None:
                    continue
                if at <= now:
                    out.ready.append(Ready(name, entry.kind, entry.key))
                    del self._pending[name]
                elif out.next_at is None or at < out.next_at:
                    out.next_at = at
            return out

    def _ready_at(self, name: str, entry: _Pending, now: float) -> float | None:
        if entry.kind == "complete":
            return entry.last
        at = entry.last + self.settle
        if at > now:
            return at
        if entry.kind == "deleted":
            key = self._stat(name)
            if key is not None:  # it came back (written in place): wait for it to settle
                entry.kind, entry.last, entry.key = "changed", now, key
                return now + self.settle
            return at
        if self._opens.get(name, 0) > 0:
            held_until = self._open_since.get(name, now) + self.open_hold
            if held_until > now:
                return max(held_until, at)
            if self._writers(name):  # a writer still holds it: never read half a file
                entry.last = now
                return now + self.settle
            self._opens.pop(name, None)  # a reader, or a close we never heard of
            self._open_since.pop(name, None)
        key = self._stat(name)
        if key != entry.key:  # changed without an event reaching us yet: not stable
            entry.key, entry.last = key, now
            return now + self.settle
        return at

    def pending(self) -> dict[str, tuple[PendingKind, float]]:
        with self._lock:
            return {name: (e.kind, e.first) for name, e in self._pending.items()}

    def open_writers(self) -> dict[str, int]:
        with self._lock:
            return dict(self._opens)


def open_for_writing(path: str) -> list[int]:
    """The pids of processes holding `path` open for writing, from /proc (every process's
    descriptors when run as root; one's own otherwise). Costs a walk of /proc, so the tracker
    asks only about a file opened and not closed for `open_hold`."""
    try:
        target = os.stat(path)
    except OSError:
        return []
    pids = []
    me = os.getpid()
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            fds = list(os.scandir(f"{entry.path}/fd"))
        except OSError:
            continue
        for fd in fds:
            try:
                st = os.stat(fd.path)
                if (st.st_dev, st.st_ino) != (target.st_dev, target.st_ino):
                    continue
                with open(f"{entry.path}/fdinfo/{fd.name}") as info:
                    flags = next((line.split()[1] for line in info
                                  if line.startswith("flags:")), "0")
            except (OSError, IndexError):
                continue
            if int(flags, 8) & os.O_ACCMODE in (os.O_WRONLY, os.O_RDWR):
                pids.append(int(entry.name))
                break
    return pids


# ---------------------------------------------------------------- the watchdog side
_TREE_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent, FileDeletedEvent, FileModifiedEvent, FileMovedEvent, FileClosedEvent,
    FileClosedNoWriteEvent, FileOpenedEvent, FileAttribEvent, DirCreatedEvent, DirDeletedEvent,
    DirMovedEvent]
_PARENT_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent, FileDeletedEvent, FileMovedEvent, DirCreatedEvent, DirDeletedEvent,
    DirMovedEvent]


def _text(path: bytes | str) -> str:
    return os.fsdecode(path)


class _TreeHandler(FileSystemEventHandler):
    """Events below one root's real directory, reported under the root's own name."""

    def __init__(self, watcher: SpecWatcher, root: str, real: str) -> None:
        self.watcher, self.root, self.real = watcher, root, real
        self.active = True

    def _name(self, path: bytes | str) -> str | None:
        text = _text(path)
        if not text:
            return None
        if text == self.real:
            return self.root
        if text.startswith(self.real + os.sep):
            return self.root + text[len(self.real):]
        return None

    def dispatch(self, event: FileSystemEvent) -> None:
        if not self.active:
            return
        w = self.watcher
        now = w.clock()
        if event.is_directory:
            src = _text(event.src_path)
            if isinstance(event, DirDeletedEvent) and src == self.real:
                w.root_changed(self.root, "root deleted", trusted=False)
            elif isinstance(event, DirMovedEvent | DirDeletedEvent):
                # files below a directory moved away get no events of their own
                w.tracker.request_rescan("directory moved or deleted", False, now)
            return
        if isinstance(event, FileMovedEvent):
            left, arrived = self._name(event.src_path), self._name(event.dest_path)
            if left and wanted(self.root, left):
                w.tracker.event(left, "gone", now)
            if arrived and wanted(self.root, arrived):
                w.tracker.event(arrived, "moved_in", now)
            return
        name = self._name(event.src_path)
        if name is None or not wanted(self.root, name):
            return
        real = _text(event.src_path)
        if isinstance(event, FileOpenedEvent):
            w.tracker.event(name, "opened", now)
        elif isinstance(event, FileClosedNoWriteEvent):
            w.tracker.event(name, "closed_nowrite", now)
        elif isinstance(event, FileClosedEvent):
            w.tracker.event(name, "closed_write", now, file_key(real))
        elif isinstance(event, FileDeletedEvent):
            w.tracker.event(name, "gone", now)
        else:  # created, modified, attributes
            w.tracker.event(name, "written", now, file_key(real))


class _ParentHandler(FileSystemEventHandler):
    """Entries of a directory holding a root or a symlink above it: a swap or removal."""

    def __init__(self, watcher: SpecWatcher, directory: str) -> None:
        self.watcher, self.directory = watcher, directory
        self.active = True

    def dispatch(self, event: FileSystemEvent) -> None:
        if not self.active:
            return
        paths = {_text(event.src_path)}
        if isinstance(event, FileMovedEvent | DirMovedEvent):
            paths.add(_text(event.dest_path))
        dest = _text(event.dest_path) if isinstance(event, FileMovedEvent | DirMovedEvent) \
            else ""
        for root, watched in self.watcher.swap_points().items():
            for path in paths & watched:
                arrived = path == dest or isinstance(event, FileCreatedEvent | DirCreatedEvent)
                # a rename onto the name (mv -T, git-sync) or a new symlink: the tree behind
                # it is complete; a plain new directory may still be filling up
                trusted = arrived and (path == dest or os.path.islink(path))
                self.watcher.root_changed(root, "symlink swap" if trusted else
                                          ("root replaced" if arrived else "root removed"),
                                          trusted=trusted)


@dataclass
class _RootWatch:
    root: str
    real: str | None = None
    ident: tuple[int, int] | None = None
    tree: ObservedWatch | None = None
    handler: _TreeHandler | None = None
    swap_points: frozenset[str] = frozenset()


class SpecWatcher:
    """watchdog observer over the spec roots. `refresh()` (called by the loop after a rescan
    request) re-points watches whose root moved to a new real directory or came back."""

    def __init__(self, roots: Iterable[str], tracker: ChangeTracker,
                 clock: Callable[[], float]) -> None:
        self.roots = [os.path.abspath(r) for r in roots]
        self.tracker = tracker
        self.clock = clock
        self.log = get_logger()
        self._observer: InotifyObserver | None = None
        self._lock = threading.Lock()
        self._roots = {r: _RootWatch(r) for r in self.roots}
        self._parents: dict[str, tuple[ObservedWatch, _ParentHandler]] = {}
        self._overflow = _OverflowHook(self)
        self.needs_refresh = False

    def start(self) -> None:
        self._observer = InotifyObserver(generate_full_events=True)
        self._observer.daemon = True
        self._observer.start()
        self._overflow.install()
        self.refresh()

    def stop(self) -> None:
        self._overflow.remove()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    def alive(self) -> bool:
        return self._observer is not None and self._observer.is_alive()

    def swap_points(self) -> dict[str, frozenset[str]]:
        with self._lock:
            return {r.root: r.swap_points for r in self._roots.values()}

    def root_changed(self, root: str, reason: str, trusted: bool) -> None:
        self.needs_refresh = True
        self.log.info("watch.root_changed", root=root, reason=reason)
        self.tracker.request_rescan(reason, trusted, self.clock())

    def overflow(self) -> None:
        self.needs_refresh = True
        self.log.warning("watch.overflow", reason="inotify event queue overflowed; rescanning")
        self.tracker.request_rescan("overflow", False, self.clock())

    def refresh(self) -> None:
        """(Re)schedule watches so they follow each root's current real directory."""
        observer = self._observer
        if observer is None:
            return
        self.needs_refresh = False
        with self._lock:
            wanted_parents: set[str] = set()
            for rw in self._roots.values():
                rw.swap_points = frozenset(_swap_points(rw.root))
                wanted_parents |= {os.path.dirname(p) for p in rw.swap_points}
                self._refresh_tree(observer, rw)
            for directory in wanted_parents - set(self._parents):
                if not os.path.isdir(directory):
                    continue
                handler = _ParentHandler(self, directory)
                try:
                    watch = observer.schedule(handler, directory, recursive=False,
                                              event_filter=_PARENT_EVENTS)
                except OSError as exc:
                    self.log.warning("watch.failed", path=directory, error=str(exc))
                    continue
                self._parents[directory] = (watch, handler)
            for directory in set(self._parents) - wanted_parents:
                watch, handler = self._parents.pop(directory)
                handler.active = False
                _unschedule(observer, watch)

    def _refresh_tree(self, observer: InotifyObserver, rw: _RootWatch) -> None:
        real = os.path.realpath(rw.root) if os.path.isdir(rw.root) else None
        ident = None
        if real is not None:
            st = os.stat(real)
            ident = (st.st_dev, st.st_ino)
        if real == rw.real and ident == rw.ident and rw.tree is not None:
            return
        if rw.handler is not None:
            rw.handler.active = False
        if rw.tree is not None:
            _unschedule(observer, rw.tree)
        rw.real, rw.ident, rw.tree, rw.handler = real, ident, None, None
        if real is None:
            self.log.warning("watch.root_missing", root=rw.root)
            return
        handler = _TreeHandler(self, rw.root, real)
        try:
            rw.tree = observer.schedule(handler, real, recursive=True, event_filter=_TREE_EVENTS)
        except OSError as exc:
            self.log.error("watch.failed", path=real, error=str(exc))
            rw.real = None
            return
        rw.handler = handler
        self.log.info("watch.started", root=rw.root, real=real)

    def watching(self) -> dict[str, str | None]:
        with self._lock:
            return {r.root: r.real for r in self._roots.values()}


def _swap_points(root: str) -> set[str]:
    """The root itself, every symlink among its ancestors, and the first missing ancestor:
    a change of any of them swaps (or brings) the tree we watch."""
    points = {root}
    path = root
    while True:
        parent = os.path.dirname(path)
        if parent == path:
            break
        if os.path.islink(path) or (not os.path.exists(path) and os.path.isdir(parent)):
            points.add(path)
        path = parent
    return points


def _unschedule(observer: InotifyObserver, watch: ObservedWatch) -> None:
    # the emitter may already have stopped itself (root deleted)
    with contextlib.suppress(KeyError, RuntimeError, OSError):
        observer.unschedule(watch)


class _OverflowHook(logging.Handler):
    """watchdog rebuilds its watches on IN_Q_OVERFLOW but tells its handlers nothing; it does
    log a warning, which is the one signal we get that events were lost."""

    LOGGERS = ("watchdog.observers.inotify_c", "watchdog.observers.inotify")

    def __init__(self, watcher: SpecWatcher) -> None:
        super().__init__(logging.WARNING)
        self.watcher = watcher

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self.watcher.overflow()

    def install(self) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).addHandler(self)

    def remove(self) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeHandler(self)
