"""LXC's `key = value` container config: read it as LXC does, rewrite it without losing a line.

LXC parses the file line by line (LXC5 src/lxc/confile.c `parse_line`, string_utils.c): a
line ends at LF only, and a NUL ends it early (it is a C string); blanks and tabs before the
key are skipped; the key and the value lose blanks and tabs at their start and blanks, tabs,
LF and NUL at their end (not CR, not any other Unicode space); one matching pair of surrounding
quotes is removed from the value; `#` starts a comment only at the beginning of a line, and
lines not starting with `lxc.` are ignored. Single-valued keys: the last occurrence wins. List
keys (`lxc.mount.entry`, `lxc.idmap`, ...) accumulate, and an empty value clears what came
before.

A rewrite changes only the lines it is asked to change. Comments, blank lines, keys we do not
model, and their order all survive, so a config edited by hand or written by a template stays
recognisable to its author, and `diff` between two versions shows only what we meant to change.

Pure: no file or process access here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from reconciler.drivers.text import lines
from reconciler.errors import PermanentError
from reconciler.model.names import BAD_CHARS, describe_char

_KEY_RE = re.compile(r"lxc\.[A-Za-z0-9_.\-]+\Z")
_QUOTES = ("'", '"')
MAX_CONFIG_BYTES = 1 << 20  # a config larger than 1 MiB is not something a person wrote


class Line(NamedTuple):
    """One line of the file. `key` is None for comments, blank and non-`lxc.` lines. (A tuple:
    a config is made of dozens, read on every observe.)"""

    text: str
    key: str | None = None
    value: str | None = None


def _trim(text: str) -> str:
    """LXC's `lxc_trim_whitespace_in_place`."""
    return text.lstrip(" \t").rstrip(" \t\n\x00")


def parse_value(raw: str) -> str:
    """A value as LXC sees it: trimmed, one matching pair of surrounding quotes removed."""
    value = _trim(raw)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in _QUOTES:
        value = value[1:-1]
    return value


def parse_line(text: str) -> Line:
    cut = text.split("\x00", 1)[0]  # C strings end at the first NUL
    stripped = cut.lstrip(" \t")
    if not stripped.startswith("lxc.") or "=" not in stripped:
        return Line(text)
    key, _, raw = stripped.partition("=")
    return Line(text, _trim(key), parse_value(raw))


def check_value(key: str, value: str) -> str:
    """Refuse what would change the meaning of the file: a line break would start a new key
    (config injection, e.g. a hook), NUL truncates in C, and no control character belongs in
    a value (the model refuses them all; this is the last line of defence)."""
    if not _KEY_RE.match(key):
        raise PermanentError(f"refusing to write LXC config key {key!r}: not an lxc.* key")
    found = BAD_CHARS.search(value)
    if found is not None:
        raise PermanentError(f"refusing to write {key}: the value contains "
                             f"{describe_char(found.group())}, and a newline or any other "
                             "control character would change the file's lines")
    return value


def format_line(key: str, value: str) -> Line:
    check_value(key, value)
    shown = value
    # LXC trims and unquotes; quote values it would otherwise change on reading
    if value != _trim(value) or (len(value) >= 2 and value[0] == value[-1]
                                 and value[0] in _QUOTES):
        shown = f'"{value}"'
    text = f"{key} = {shown}" if shown else f"{key} ="
    return Line(text, key, value)


class LxcConfig:
    """An ordered list of lines with key lookups. Mutating methods edit in place; `lines`
    may be replaced as a whole, not changed in place (lookups go through an index of it)."""

    def __init__(self, lines: Iterable[Line] = ()) -> None:
        self._lines: list[Line] = list(lines)
        self._index: dict[str, list[str]] | None = None

    @property
    def lines(self) -> list[Line]:
        return self._lines

    @lines.setter
    def lines(self, lines: list[Line]) -> None:
        self._lines = lines
        self._index = None

    def _values(self, key: str) -> list[str]:
        """Every value of `key` in file order. Reading a container maps some 35 keys, and a
        scan of the lines per key was most of an observe."""
        if self._index is None:
            index: dict[str, list[str]] = {}
            for line in self._lines:
                if line.key is not None and line.value is not None:
                    index.setdefault(line.key, []).append(line.value)
            self._index = index
        return self._index.get(key, [])

    @classmethod
    def parse(cls, text: str) -> LxcConfig:
        if len(text) > MAX_CONFIG_BYTES:
            raise PermanentError(f"LXC config is {len(text)} bytes; refusing over "
                                 f"{MAX_CONFIG_BYTES}")
        return cls(parse_line(t) for t in lines(text))

    def render(self) -> str:
        return "".join(f"{line.text}\n" for line in self.lines)

    def copy(self) -> LxcConfig:
        return LxcConfig(self.lines)

    # ------------------------------------------------------------------ reading
    def items(self) -> Iterator[tuple[str, str]]:
        for line in self.lines:
            if line.key is not None and line.value is not None:
                yield line.key, line.value

    def get(self, key: str) -> str | None:
        """A single-valued key: the last occurrence wins, as in LXC."""
        values = self._values(key)
        return values[-1] if values else None

    def values(self, key: str) -> list[str]:
        """Every value of `key` as written, empty ones included (a list key's clears)."""
        return list(self._values(key))

    def get_all(self, key: str) -> list[str]:
        """A list key: every value in order; an empty value clears what came before."""
        out: list[str] = []
        for v in self._values(key):
            if v == "":
                out.clear()
            else:
                out.append(v)
        return out

    def key_names(self) -> list[str]:
        return [k for k, _ in self.items()]

    # ------------------------------------------------------------------ writing
    def remove_where(self, match: Callable[[str], bool]) -> int | None:
        """Drop every key line whose key matches; the index of the first one dropped."""
        first = None
        kept: list[Line] = []
        for line in self.lines:
            if line.key is not None and match(line.key):
                if first is None:
                    first = len(kept)
                continue
            kept.append(line)
        self.lines = kept
        return first

    def insert(self, index: int | None, pairs: Iterable[tuple[str, str]]) -> None:
        self.insert_lines(index, [format_line(k, v) for k, v in pairs])

    def insert_lines(self, index: int | None, new: list[Line]) -> None:
        """Lines (made by `format_line`, or kept from this file) at `index` (None: the end)."""
        at = len(self.lines) if index is None else index
        self.lines = [*self.lines[:at], *new, *self.lines[at:]]

    def set(self, key: str, value: str | None) -> None:
        """One value for `key`, at the place of its first occurrence (or appended); None
        removes the key. An unchanged line is left exactly as it was written."""
        current = [i for i, line in enumerate(self.lines) if line.key == key]
        if value is None:
            self.remove_where(lambda k: k == key)
            return
        if len(current) == 1 and self.lines[current[0]].value == value:
            return
        index = self.remove_where(lambda k: k == key)
        self.insert(index, [(key, value)])

    def set_all(self, key: str, values: list[str]) -> None:
        """The whole list for a list key, where it stood before (or appended)."""
        if self.get_all(key) == values and "" not in [v for k, v in self.items() if k == key]:
            return
        index = self.remove_where(lambda k: k == key)
        self.insert(index, [(key, v) for v in values])


# pre-2.1 keys LXC 3+ refuses, and their successors (the renames lxc-update-config makes)
_LEGACY = {"lxc.utsname": "lxc.uts.name", "lxc.rootfs": "lxc.rootfs.path",
           "lxc.tty": "lxc.tty.max", "lxc.pts": "lxc.pty.max", "lxc.id_map": "lxc.idmap",
           "lxc.init_cmd": "lxc.init.cmd", "lxc.init_uid": "lxc.init.uid",
           "lxc.init_gid": "lxc.init.gid", "lxc.mount": "lxc.mount.fstab",
           "lxc.aa_profile": "lxc.apparmor.profile",
           "lxc.aa_allow_incomplete": "lxc.apparmor.allow_incomplete",
           "lxc.se_context": "lxc.selinux.context", "lxc.seccomp": "lxc.seccomp.profile",
           "lxc.console": "lxc.console.path", "lxc.devttydir": "lxc.tty.dir",
           "lxc.haltsignal": "lxc.signal.halt", "lxc.rebootsignal": "lxc.signal.reboot",
           "lxc.stopsignal": "lxc.signal.stop", "lxc.syslog": "lxc.log.syslog",
           "lxc.logfile": "lxc.log.file", "lxc.loglevel": "lxc.log.level",
           "lxc.network": "lxc.net"}
_LEGACY_PREFIXES = (("lxc.limit.", "lxc.prlimit."),)
_LEGACY_NET = {"ipv4": "ipv4.address", "ipv6": "ipv6.address", "pair": "veth.pair"}
_INDEXED_NET = re.compile(r"lxc\.network\.([0-9]+)\.(.+)\Z")


def modernised(cfg: LxcConfig) -> LxcConfig:
    """A copy with legacy keys renamed, line for line: `lxc.network.*` blocks become
    `lxc.net.N.*` (each `lxc.network.type` starts a new interface; `lxc.network.N.*` keeps its
    N), `lxc.utsname` becomes `lxc.uts.name`, `lxc.limit.*` `lxc.prlimit.*`..."""
    out: list[Line] = []
    index = -1
    for line in cfg.lines:
        if line.key is None or line.value is None:
            out.append(line)
            continue
        key = line.key
        indexed = _INDEXED_NET.match(key)
        if indexed:
            sub = indexed.group(2)
            key = f"lxc.net.{indexed.group(1)}.{_LEGACY_NET.get(sub, sub)}"
        elif key.startswith("lxc.network."):
            sub = key[len("lxc.network."):]
            if sub == "type":
                index += 1
            index = max(index, 0)
            key = f"lxc.net.{index}.{_LEGACY_NET.get(sub, sub)}"
        else:
            key = _LEGACY.get(key, key)
            for old, new in _LEGACY_PREFIXES:
                if key.startswith(old):
                    key = new + key[len(old):]
        out.append(line if key == line.key else Line(line.text, key, line.value))
    return LxcConfig(out)
