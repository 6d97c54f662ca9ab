"""A guest's configuration tree, `<confdir>/<NAME>/`, read and written by util-vserver's own
file rules (reference native-formats §2.2).

Reading takes one snapshot of the tree (`snapshot`): every regular file's bytes, the
directories and the symlinks, walked without following a link (`vdir`, `cache` and `run` point
into the guest root and the host), each file opened as a regular file only, without blocking,
size-capped. Values are then taken from the bytes the way the code that reads each file does:

    scalar   the shell's `read` (no -r): the first line, backslashes processed, a trailing
             backslash joining the next line, blanks trimmed; `read` fails (and a `set -e`
             start with it) on a file without a newline
    list     `while read`: blank and `#` lines skipped, a last line without newline lost
    array    `$(< file)` split at newlines: empty lines vanish, `#` is data
    flag     existence
    whole    the C readers (vuname --dir, the display name): the file less trailing newlines

Writing goes through `apply_edits`: each file replaced atomically (`fsio.write_atomic`, never
through a symlink), every file ending with a newline (§2.2: a start aborts on a scalar
without one), only the files an edit names; the rest of the tree is left as it is.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from reconciler.errors import PermanentError
from reconciler.fsio import read_regular, write_atomic

MAX_FILE = 1 << 20  # a config file larger than this is not a config file
MAX_ENTRIES = 4096  # a tree with more entries than this is not a config tree
_BLANKS = " \t\n"


@dataclass(frozen=True)
class Tree:
    """One snapshot of a guest's configuration directory (paths relative to it, `/`-joined).
    `unreadable` holds entries that are not regular files, directories or symlinks, or that
    could not be read (a FIFO, a file over the size cap)."""

    path: str
    files: Mapping[str, bytes] = field(default_factory=dict)
    dirs: frozenset[str] = frozenset()
    links: Mapping[str, str] = field(default_factory=dict)
    unreadable: frozenset[str] = frozenset()

    def has(self, rel: str) -> bool:
        return rel in self.files or rel in self.dirs or rel in self.links

    def get(self, rel: str) -> bytes | None:
        return self.files.get(rel)

    def children(self, rel: str) -> list[str]:
        """Names directly below directory `rel` ('' is the top), sorted as the shell's glob
        sorts them in the C locale (util-vserver processes interfaces in this order)."""
        return self._index.get(rel, [])

    @cached_property
    def _index(self) -> dict[str, list[str]]:
        found: dict[str, set[str]] = {}
        for path in (*self.files, *self.dirs, *self.links, *self.unreadable):
            parent, _, name = path.rpartition("/")
            found.setdefault(parent, set()).add(name)
        return {k: sorted(v, key=lambda n: n.encode()) for k, v in found.items()}

    def subdirs(self, rel: str) -> list[str]:
        prefix = f"{rel}/" if rel else ""
        return [n for n in self.children(rel) if f"{prefix}{n}" in self.dirs]


def snapshot(path: str | Path) -> Tree:
    """The tree below `path` as it is now. OSError if `path` itself cannot be listed."""
    top = str(path)
    files: dict[str, bytes] = {}
    dirs: set[str] = set()
    links: dict[str, str] = {}
    unreadable: set[str] = set()
    pending = [""]
    count = 0
    while pending:
        rel = pending.pop()
        with os.scandir(os.path.join(top, rel) if rel else top) as entries:
            for entry in entries:
                count += 1
                if count > MAX_ENTRIES:
                    raise PermanentError(f"{top}: more than {MAX_ENTRIES} entries; not a "
                                         "util-vserver configuration tree")
                sub = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_symlink():
                    links[sub] = os.readlink(entry.path)
                elif entry.is_dir(follow_symlinks=False):
                    dirs.add(sub)
                    pending.append(sub)
                elif entry.is_file(follow_symlinks=False):
                    data = _read_file(entry.path)
                    if data is None:
                        unreadable.add(sub)
                    else:
                        files[sub] = data
                else:
                    unreadable.add(sub)
    return Tree(top, files, frozenset(dirs), links, frozenset(unreadable))


_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _read_file(path: str) -> bytes | None:
    """A regular file's bytes (fsio.read_regular's rules: no symlink, nothing that blocks,
    checked on the open descriptor), or None when it is not one or is over MAX_FILE. A read
    of a regular file never blocks, so the descriptor stays non-blocking."""
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks, left = [], MAX_FILE + 1
        while left > 0:
            chunk = os.read(fd, min(left, 65536))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        return data if len(data) <= MAX_FILE else None
    except OSError:
        return None
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- reading values


def text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


@dataclass(frozen=True)
class Scalar:
    value: str
    ok: bool  # False: `read` met the end of the file before a newline (a `set -e` abort)


def scalar(data: bytes) -> Scalar:
    """What `read var < file` leaves in var (bash, IFS default, no -r), and whether `read`
    succeeded."""
    source = text(data)
    chars: list[tuple[str, bool]] = []  # (character, escaped by a backslash)
    i, ok = 0, False
    while i < len(source):
        ch = source[i]
        if ch == "\\":
            if i + 1 < len(source) and source[i + 1] != "\n":
                chars.append((source[i + 1], True))
            i += 2  # backslash-newline joins lines; a final lone backslash vanishes
            continue
        if ch == "\n":
            ok = True
            break
        chars.append((ch, False))
        i += 1
    start, end = 0, len(chars)
    while start < end and not chars[start][1] and chars[start][0] in _BLANKS:
        start += 1
    while end > start and not chars[end - 1][1] and chars[end - 1][0] in _BLANKS:
        end -= 1
    return Scalar("".join(ch for ch, _ in chars[start:end]), ok)


def list_items(data: bytes) -> list[str]:
    """A `while read` list file: each complete line as `read` gives it, blank and `#` lines
    skipped; a last line without a newline is lost (read fails and ends the loop)."""
    items = []
    rest = data
    while rest:
        end = _line_end(rest)
        if end is None:
            break
        value = scalar(rest[:end + 1]).value
        rest = rest[end + 1:]
        if value and not value.startswith("#"):
            items.append(value)
    return items


def _line_end(data: bytes) -> int | None:
    i = 0
    while i < len(data):
        if data[i:i + 1] == b"\\":
            i += 2
            continue
        if data[i:i + 1] == b"\n":
            return i
        i += 1
    return None


def array_items(data: bytes) -> list[str]:
    """getFileArray: the non-empty lines, as they are (split at LF only)."""
    return [line for line in text(data).split("\n") if line]


def whole(data: bytes) -> str:
    """The C readers' view: the whole file less its trailing newlines."""
    return text(data).rstrip("\n")


# --------------------------------------------------------------------------- writing

class Touch:
    """An edit's content: an empty flag file (util-vserver tests only its existence)."""


TOUCH = Touch()
REMOVE = None


@dataclass(frozen=True)
class Edit:
    """Make `rel` hold `content` (bytes, TOUCH for an empty flag file), or remove it (None).
    `tree=True` removes a whole directory this driver manages (an interface, a CPU bucket)."""

    rel: str
    content: bytes | Touch | None
    tree: bool = False
    mode: int = 0o644


def line(value: str) -> bytes:
    """One value as a scalar file: the value and the newline util-vserver needs (§2.2).
    A value that `read` would not give back unchanged is refused here, whatever checked it
    before: no line break or control character, no backslash, no blank at either end."""
    check_value(value)
    return (value + "\n").encode()


def lines_of(values: Iterable[str], array: bool = False) -> bytes:
    """A list file (`array=False`: each line goes through `read`) or an array file (each line
    kept as it is): one value a line, each line ending with a newline."""
    out = []
    for value in values:
        check_value(value, array)
        out.append(value + "\n")
    return "".join(out).encode()


def check_value(value: str, array: bool = False) -> None:
    """A value that its reader would not give back unchanged is refused, whatever checked it
    before: no line break or control character, not empty; for `read` also no backslash and
    no blank at either end."""
    bad = not value or any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029"
                           for c in value)
    if not array:
        bad = bad or value != value.strip(" \t") or "\\" in value
    if bad:
        raise PermanentError(f"refusing to write {value!r} into a util-vserver file: it would "
                             "not read back as the same one line")


def apply_edits(top: str | Path, edits: Iterable[Edit]) -> bool:
    """Carry out `edits` below `top`; True if anything changed. Parent directories are made
    as needed; no path below `top` is followed through a symlink."""
    base = Path(top)
    changed = False
    for edit in edits:
        path = _inside(base, edit.rel)
        if edit.content is None:
            changed |= _remove(base, path, edit.tree)
            continue
        payload = b"" if isinstance(edit.content, Touch) else edit.content
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        if st is not None and stat.S_ISREG(st.st_mode) and \
                (isinstance(edit.content, Touch) or _same_bytes(path, payload)):
            continue
        _make_parents(base, path.parent)
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise PermanentError(f"{path} is a directory; expected a file")
        write_atomic(path, payload, edit.mode)
        changed = True
    return changed


def _same_bytes(path: Path, payload: bytes) -> bool:
    try:
        return read_regular(path, MAX_FILE) == payload
    except OSError:
        return False


def _inside(base: Path, rel: str) -> Path:
    parts = rel.split("/")
    if not rel or any(p in ("", ".", "..") for p in parts):
        raise PermanentError(f"refusing tree path {rel!r}")
    return base.joinpath(*parts)


def _make_parents(base: Path, parent: Path) -> None:
    """mkdir -p below `base`, refusing a symlink on the way (it could lead out of the
    tree: `vdir` and `cache` are links into the guest root and the host)."""
    missing = []
    here = parent
    while here != base:
        try:
            st = os.lstat(here)
        except FileNotFoundError:
            missing.append(here)
            here = here.parent
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise PermanentError(f"{here} is not a directory (a symlink or a file); not "
                                 "writing through it")
        break
    _no_links(base, parent)
    for directory in reversed(missing):
        os.mkdir(directory, 0o755)


def _no_links(base: Path, directory: Path) -> None:
    for ancestor in (directory, *directory.parents):
        if ancestor == base:
            return
        if os.path.islink(ancestor):
            raise PermanentError(f"{ancestor} is a symlink; not writing through it")


def _remove(base: Path, path: Path, tree: bool) -> bool:
    _no_links(base, path.parent)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode):
        if not tree:
            raise PermanentError(f"{path} is a directory; expected a file")
        shutil.rmtree(path)
    else:
        path.unlink()
    return True
