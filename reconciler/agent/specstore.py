"""The agent's view of the spec directories: one cached load per file, a SpecSet rebuilt from
the cache, and which objects a change touches.

A file is reparsed only when its (size, mtime_ns, inode) moved *and* its bytes differ: a git
checkout or a symlink swap gives every file a new inode, but unchanged files keep their parsed
result. The cross-file checks (`check_set`: duplicate names, unique ids/MACs/IPs, references,
cycles) run on the whole set, except for the common edit that cannot affect them: a domain's
own resources (memory, cpu, hostname ...) in a file that loaded cleanly, where nothing else
refers to the file. That shortcut is re-verified with a full check when the agent is idle.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.model import Domain, Profile
from reconciler.model.fields import Ref
from reconciler.specs.files import Loaded, load_bytes, read_spec
from reconciler.specs.loader import Entry, SpecSet, check_set, spec_files

from .watch import FileKey, file_key

# Domain fields that no cross-file check reads (check_set looks at kind, name, type, id, uuid,
# profile, interfaces, depends_on). Fields not listed here, including any added to the model
# later, are compared, so a change to them takes the full check.
LOCAL_FIELDS = frozenset({
    "title", "description", "state", "autostart", "start_order", "hostname", "arch", "os",
    "memory", "current_memory", "memtune", "cpu", "limits", "quota", "scheduler", "init",
    "idmap", "filesystems", "console", "dns", "protect", "removal", "allow_replace", "xml",
    "devices_xml"})


@dataclass(frozen=True)
class FileRead:
    name: str
    key: FileKey | None
    loaded: Loaded | None  # None: the file is gone
    stable: bool = True    # False: it changed while we read it


@dataclass
class Update:
    """What one batch of file changes did to the desired set."""

    specs: SpecSet
    changed_files: list[str] = field(default_factory=list)
    affected: set[Ref] = field(default_factory=set)
    profiles_changed: bool = False
    fast: bool = False

    @property
    def empty(self) -> bool:
        return not self.changed_files


class SpecStore:
    def __init__(self, roots: Iterable[str]) -> None:
        self.roots = tuple(os.path.abspath(r) for r in roots)
        self.files: dict[str, tuple[FileKey | None, Loaded]] = {}
        self.specs = SpecSet(roots=self.roots, missing_roots=self.roots)
        self.unverified = False
        self._profiles: tuple[SpecSet | None, dict[tuple[str, str], Entry]] = (None, {})

    # ------------------------------------------------------------------ reading
    def real_roots(self) -> dict[str, str | None]:
        """Each root's real directory now: one pass reads one tree, even mid-swap."""
        return {r: (os.path.realpath(r) if os.path.exists(r) else None) for r in self.roots}

    def scan(self, real: dict[str, str | None] | None = None) -> dict[str, FileKey | None]:
        """Every spec file now present, with its key (stat only, no reads)."""
        real = real if real is not None else self.real_roots()
        out: dict[str, FileKey | None] = {}
        for root, where in real.items():
            if where is None:
                continue
            base = Path(where)
            for path in spec_files(base):
                name = root + str(path)[len(where):]
                out[name] = file_key(str(path))
        return out

    def changed_since_cache(self, found: dict[str, FileKey | None]
                            ) -> tuple[list[str], list[str]]:
        """(new or changed files, files gone) compared with the cache."""
        changed = [n for n, key in found.items()
                   if n not in self.files or self.files[n][0] != key]
        gone = [n for n in self.files if n not in found]
        return sorted(changed), sorted(gone)

    def read(self, name: str, real: dict[str, str | None] | None = None) -> FileRead:
        """Read one file through its root's current real directory."""
        path, where = self._real_path(name, real)
        before = file_key(path) if path else None
        if path is None or before is None:
            return FileRead(name, None, None)
        cached = self.files.get(name)
        if cached is not None and cached[0] == before:
            return FileRead(name, before, cached[1])
        loaded = self._load(path, name, cached[1] if cached else None,
                            where if where is not None and os.path.isdir(where) else None)
        after = file_key(path)
        if after is None:
            return FileRead(name, None, None)
        return FileRead(name, after, loaded, stable=after == before)

    @staticmethod
    def _load(path: str, name: str, previous: Loaded | None, root: str | None) -> Loaded:
        """The file read as the loader reads it (regular files only, no blocking, links only
        inside `root`), parsed unless its bytes are the ones parsed before."""
        data = read_spec(path, name, root)
        if isinstance(data, Loaded):
            return data
        if previous is not None and previous.digest == hashlib.sha256(data).hexdigest():
            return previous  # same bytes behind a new inode (a checkout): no reparse
        return load_bytes(data, name)

    def _real_path(self, name: str, real: dict[str, str | None] | None
                   ) -> tuple[str | None, str | None]:
        """(the file's path through its root's real directory, that directory)."""
        for root in self.roots:
            if name == root or name.startswith(root + os.sep):
                where = root if real is None else real.get(root, root)
                return (None, None) if where is None else (where + name[len(root):], where)
        return None, None

    def load_all(self, stop: Callable[[], bool] | None = None) -> Update:
        """Startup: read every file (unchanged ones are kept from the cache)."""
        real = self.real_roots()
        found = self.scan(real)
        reads = []
        for name in sorted(found):
            if stop is not None and stop():
                break
            reads.append(self.read(name, real))
        gone = [n for n in self.files if n not in found]
        return self.apply(reads, gone, force_full=True)

    # ------------------------------------------------------------------ updating
    def apply(self, reads: list[FileRead], gone: Iterable[str] = (), *,
              force_full: bool = False) -> Update:
        """Fold reads and deletions into the cache; rebuild the SpecSet; say what changed."""
        old = self.specs
        changed: list[str] = []
        before: dict[str, Loaded | None] = {}
        for r in reads:
            if r.loaded is None:
                gone = [*gone, r.name]
                continue
            prev = self.files.get(r.name)
            self.files[r.name] = (r.key, r.loaded)
            if prev is None or (prev[1] is not r.loaded and (
                    prev[1].digest != r.loaded.digest or prev[1].errors != r.loaded.errors)):
                changed.append(r.name)
                before[r.name] = prev[1] if prev else None
        for name in gone:
            prev = self.files.pop(name, None)
            if prev is not None:
                changed.append(name)
                before[name] = prev[1]
        missing = tuple(r for r in self.roots if not os.path.exists(r))
        if not changed and not force_full and missing == old.missing_roots:
            return Update(old)
        fast = not force_full and missing == old.missing_roots and \
            self._fast_path_ok(old, changed, before)
        if fast:
            specs = SpecSet(roots=self.roots, files=dict(old.files), objects=dict(old.objects),
                            errors=list(old.errors), missing_roots=missing)
            for name in changed:
                loaded = self.files[name][1]
                specs.files[name] = loaded
                for spec, line in loaded.objects:
                    specs.objects[(spec.kind, spec.name)] = Entry(spec, name, line)
            self.unverified = True
            if self._profiles[0] is old:  # the fast path never touches a profile
                self._profiles = (specs, self._profiles[1])
        else:
            specs = self._full_set(missing)
        self.specs = specs
        update = Update(specs, changed_files=changed, fast=fast)
        self._affected(update, old, before)
        return update

    def _full_set(self, missing: tuple[str, ...]) -> SpecSet:
        specs = SpecSet(roots=self.roots, missing_roots=missing)
        for name in sorted(self.files):
            specs.files[name] = self.files[name][1]
        for loaded in specs.files.values():
            specs.errors.extend(loaded.errors)
        check_set(specs)
        return specs

    def _fast_path_ok(self, old: SpecSet, changed: list[str],
                      before: dict[str, Loaded | None]) -> bool:
        if not changed:
            return False
        failed = old.failed_files
        for name in changed:
            prev = before.get(name)
            now = self.files.get(name)
            if prev is None or now is None or not prev.ok or not now[1].ok or name in failed:
                return False
            if any(name in err.message for err in old.errors):
                return False  # another file's error names this one (and maybe its lines)
            new_objs = now[1].objects
            if [(s.kind, s.name) for s, _ in prev.objects] != [(s.kind, s.name)
                                                                for s, _ in new_objs]:
                return False
            for (a, _), (b, _) in zip(prev.objects, new_objs, strict=True):
                if not isinstance(a, Domain) or not isinstance(b, Domain):
                    return False
                if old.objects.get((a.kind, a.name), None) is None or \
                        old.objects[(a.kind, a.name)].file != name:
                    return False
                if a.model_dump(exclude=set(LOCAL_FIELDS)) != \
                        b.model_dump(exclude=set(LOCAL_FIELDS)):
                    return False
        return True

    def _affected(self, update: Update, old: SpecSet, before: dict[str, Loaded | None]) -> None:
        new = update.specs
        names: set[tuple[str, str]] = set()
        files = set(update.changed_files)
        if not update.fast:
            files |= old.failed_files ^ new.failed_files
        for name in files:
            for loaded in (before.get(name) if name in before else old.files.get(name),
                           new.files.get(name)):
                if loaded is not None:
                    names |= {(s.kind, s.name) for s, _ in loaded.objects}
        profiles = {n for k, n in names if k == "Profile"}
        if profiles:
            update.profiles_changed = True
            for specs in (old, new):
                for key, entry in specs.objects.items():
                    if isinstance(entry.spec, Domain) and entry.spec.profile in profiles:
                        names.add(key)
        update.affected = {Ref(k, n) for k, n in names if k in ("Domain", "Network")}

    def verify(self) -> bool:
        """Run the full cross-file check on the cache and adopt its result. True when it
        agrees with what the fast path built (it always should)."""
        self.unverified = False
        full = self._full_set(self.specs.missing_roots)
        old = self.specs
        same = old.failed_files == full.failed_files and old.objects.keys() == \
            full.objects.keys() and all(old.objects[k].file == e.file and
                                        old.objects[k].spec is e.spec
                                        for k, e in full.objects.items())
        self.specs = full
        return same

    # ------------------------------------------------------------------ reporting
    def held_files(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for err in self.specs.errors:
            file = err.location.file if err.location else "<spec>"
            out.setdefault(file, []).append(str(err))
        return out

    def profiles(self) -> dict[tuple[str, str], Entry]:
        """The Profile entries of the current set (cached per set)."""
        if self._profiles[0] is not self.specs:
            self._profiles = (self.specs, {k: e for k, e in self.specs.objects.items()
                                           if isinstance(e.spec, Profile)})
        return self._profiles[1]
