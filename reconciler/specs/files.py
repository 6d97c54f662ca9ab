"""One spec file -> its objects, or the errors that stop it loading.

Nothing downstream of here knows whether a spec was XML or YAML.
"""

from __future__ import annotations

import difflib
import errno
import hashlib
import os
import reprlib
import stat
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from lxml import etree
from pydantic import BaseModel, ValidationError

from reconciler.errors import Location, SpecError
from reconciler.model import KINDS, Domain, Network, Profile, Spec
from reconciler.model.types import FieldError
from reconciler.specs import yaml_io
from reconciler.specs.xml_read import NS, decode, line_of, read_domain, read_network
from reconciler.specs.xmlsafe import MAX_SPEC_BYTES, parse_xml

SPEC_SUFFIXES = (".xml", ".yaml", ".yml")
_BACKUP_SUFFIXES = ("~", ".swp", ".swx", ".swo", ".bak", ".orig", ".rpmnew", ".rpmsave", ".tmp")


def is_spec_file(path: Path) -> bool:
    """Only `*.xml`, `*.yaml`, `*.yml`; dotfiles, editor swap and package backups ignored."""
    return is_spec_name(path.name)


def is_spec_name(name: str) -> bool:
    if name.startswith(".") or name.startswith("#") or ".dpkg-" in name:
        return False
    if name.endswith(_BACKUP_SUFFIXES):
        return False
    return name.endswith(SPEC_SUFFIXES)


@dataclass(frozen=True)
class Loaded:
    """What one file gave: objects with their lines, or errors; never both."""

    path: str
    digest: str
    objects: tuple[tuple[Spec, int], ...] = ()
    errors: tuple[SpecError, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.errors


def load_file(path: Path, display: str | None = None, root: str | None = None) -> Loaded:
    name = display or str(path)
    data = read_spec(path, name, root)
    return data if isinstance(data, Loaded) else load_bytes(data, name)


def load_many(paths: Iterable[str | Path], root: str | None = None) -> Iterator[Loaded]:
    """`load_file` of each path, in order, a batch of files at a time: all of a batch is
    read, then parsed, then validated. Each step's code and data so stay in the CPU caches
    (file reads and lxml, pydantic-core and the interpreter evict each other otherwise): a
    directory loads a fifth faster than file by file. `root`: the real directory the paths
    are in (see `read_spec`)."""
    for batch in _batches(paths, root):
        parsed = [data if isinstance(data, Loaded) else parse_bytes(data, name)
                  for name, data in batch]
        batch.clear()  # the bytes are held by what needs them (line lookups) from here on
        yield from (step if isinstance(step, Loaded) else validate(step) for step in parsed)


BATCH_FILES = 64
BATCH_BYTES = 1 << 20  # what a batch may hold in file contents


def _batches(paths: Iterable[str | Path], root: str | None
             ) -> Iterator[list[tuple[str, bytes | Loaded]]]:
    batch: list[tuple[str, bytes | Loaded]] = []
    held = 0
    for path in paths:
        name = str(path)
        data = read_spec(path, name, root)
        batch.append((name, data))
        held += len(data) if isinstance(data, bytes) else 0
        if len(batch) == BATCH_FILES or held >= BATCH_BYTES:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


def read_spec(path: str | Path, name: str, root: str | None = None) -> bytes | Loaded:
    """The file's bytes, or a Loaded that says why they cannot be had.

    Only a regular file is read, opened without blocking (a FIFO or a device planted in the
    spec directory is an error, never a stall), at most MAX_SPEC_BYTES. A symlink is followed
    only to a file inside `root`, the spec directory's real path: a link to /etc/shadow is
    reported as a link, and no byte of its target is read (so none can be echoed in an
    error). With no `root` (a file named on the command line), the file itself is the root."""
    where = Location(name, 1, 1)
    try:
        target = str(path)
        if root is not None and os.path.islink(target):
            target = os.path.realpath(target)
            if target != root and not target.startswith(root.rstrip(os.sep) + os.sep):
                raise SpecError("is a symbolic link to a file outside the spec directory; "
                                "not read", where)
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC |
                     (os.O_NOFOLLOW if root is not None else 0))
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):  # as open() refuses it
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
            if not stat.S_ISREG(st.st_mode):
                raise SpecError("is not a regular file (a FIFO, device or socket); not read",
                                where)
            if st.st_size > MAX_SPEC_BYTES:
                raise SpecError(f"file is {st.st_size} bytes; specs are limited to "
                                f"{MAX_SPEC_BYTES} (refused before parsing)", where)
            # ask for what fstat said, not the limit: a read allocates what it is asked for
            data = _read_upto(fd, st.st_size + 1)
            if len(data) > st.st_size:  # it grew while we looked: read on, up to the limit
                data += _read_upto(fd, MAX_SPEC_BYTES + 1 - len(data))
        finally:
            os.close(fd)
        if len(data) > MAX_SPEC_BYTES:
            raise SpecError(f"file is over {MAX_SPEC_BYTES} bytes; specs are limited to "
                            f"{MAX_SPEC_BYTES} (refused before parsing)", where)
    except SpecError as exc:
        return Loaded(name, "", errors=(exc,))
    except OSError as exc:
        why = "a symbolic link moved while it was read" if exc.errno == errno.ELOOP else \
            exc.strerror
        return Loaded(name, "", errors=(SpecError(f"cannot read: {why}", where),))
    return data


def _read_upto(fd: int, size: int) -> bytes:
    """`size` bytes, or fewer at the end of the file (one read may return less)."""
    chunks = []
    while size > 0:
        chunk = os.read(fd, size)
        if not chunk:
            break
        chunks.append(chunk)
        size -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


Where = Callable[[tuple[Any, ...]], tuple[int, int]]


class Parsed(NamedTuple):
    """A file parsed, its objects not validated yet: (model input, line, where) each."""

    name: str
    digest: str
    objects: list[tuple[Any, int, Where]]


def load_bytes(data: bytes, name: str) -> Loaded:
    parsed = parse_bytes(data, name)
    return parsed if isinstance(parsed, Loaded) else validate(parsed)


def parse_bytes(data: bytes, name: str) -> Parsed | Loaded:
    """The first half of `load_bytes`: the file's objects as the model's input."""
    digest = hashlib.sha256(data).hexdigest()
    return _guarded(name, digest, lambda: Parsed(name, digest, _parse(data, name)))


def validate(parsed: Parsed) -> Loaded:
    """The second half of `load_bytes`: the objects validated into the model."""
    name, digest = parsed.name, parsed.digest
    return _guarded(name, digest, lambda: Loaded(name, digest, objects=_validated(parsed)))


_T = TypeVar("_T")


def _guarded(name: str, digest: str, step: Callable[[], _T]) -> _T | Loaded:
    """`step()`, or a Loaded with the errors it raised."""
    try:
        return step()
    except SpecErrors as exc:
        return Loaded(name, digest, errors=tuple(e.at(Location(name, 1, 1)) for e in exc.errors))
    except SpecError as exc:
        return Loaded(name, digest, errors=(exc.at(Location(name, 1, 1)),))
    except RecursionError:
        return Loaded(name, digest, errors=(SpecError(
            "spec is nested too deeply to read", Location(name, 1, 1)),))
    except Exception as exc:  # a reader bug must not take the whole directory down
        return Loaded(name, digest, errors=(SpecError(
            f"internal error while reading this file ({type(exc).__name__}: {exc}); "
            "please report it", Location(name, 1, 1)),))


def _parse(data: bytes, name: str) -> list[tuple[Any, int, Where]]:
    if not data or data.isspace():
        raise SpecError("file is empty; a spec needs at least one object", Location(name, 1, 1))
    if data.find(b"\x00", 0, 8192) >= 0:
        raise SpecError("file is binary, not XML or YAML text", Location(name, 1, 1))
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"file is not UTF-8 text (byte {exc.start}); specs are UTF-8",
                        Location(name, 1, 1)) from None
    if name.endswith(".xml"):
        return [_from_xml(data, name)]
    return _from_yaml(data, name)


def _validated(parsed: Parsed) -> tuple[tuple[Spec, int], ...]:
    out = []
    for index, (raw, line, where) in enumerate(parsed.objects):
        if not isinstance(raw, dict):  # (a YAML document; XML always reads into a dict)
            raise SpecError(f"document {index + 1} is a {type(raw).__name__}, not a mapping; "
                            "a spec starts with 'kind:' and 'name:'",
                            Location(parsed.name, line, 1))
        out.append((_validate(raw, parsed.name, where), line))
    return tuple(out)


def _from_xml(data: bytes, name: str) -> tuple[Any, int, Where]:
    root = parse_xml(data, name)
    raw = _read_xml(root, None, name)
    known: list[dict[tuple[Any, ...], int]] = []

    def where(path: tuple[Any, ...]) -> tuple[int, int]:
        """Lines are only worked out when an error needs one: read the file again."""
        if not known:
            lines: dict[tuple[Any, ...], int] = {}
            _read_xml(parse_xml(data, name), lines, name)
            known.append(lines)
        return _nearest(known[0], path), 1

    return raw, line_of(root), where


def _read_xml(root: Any, lines: dict[tuple[Any, ...], int] | None, name: str) -> dict[str, Any]:
    if root.tag == "domain":
        return read_domain(root, lines)
    if root.tag == "network":
        return read_network(root, lines)
    if root.tag == f"{{{NS}}}profile":
        if lines is not None:
            lines[()] = line_of(root)
        return {"kind": "Profile", **decode(root, lines)}
    raise SpecError(f"unknown root element <{etree.QName(root).localname}>; "
                    "valid: <domain>, <network>, or <rc:profile>",
                    Location(name, line_of(root), 1))


def locate_field(path: Path, index: int, field: tuple[Any, ...]) -> tuple[int, int] | None:
    """Line and column of `field` in the `index`-th object of the file, or None."""
    try:
        data = path.read_bytes()
        if path.name.endswith(".xml"):
            lines: dict[tuple[Any, ...], int] = {}
            _read_xml(parse_xml(data, str(path)), lines, str(path))
            return _nearest(lines, field), 1
        return yaml_io.locate(data, index, field)
    except (OSError, SpecError):
        return None


def _nearest(lines: dict[tuple[Any, ...], int], path: tuple[Any, ...]) -> int:
    for cut in range(len(path), -1, -1):
        if path[:cut] in lines:
            return lines[path[:cut]]
    return 1


def _from_yaml(data: bytes, name: str) -> list[tuple[Any, int, Where]]:
    out: list[tuple[Any, int, Where]] = []
    docs = yaml_io.load_documents(data, name)
    for index, (doc, line) in enumerate(zip(docs, yaml_io.document_lines(data, len(docs)),
                                            strict=True)):
        def where(path: tuple[Any, ...], i: int = index) -> tuple[int, int]:
            return yaml_io.locate(data, i, path)

        out.append((doc, line, where))
    return out


MAX_ERRORS = 10  # per file; the rest are counted


def _validate(raw: dict[str, Any], name: str, where: Any) -> Spec:
    kind = raw.get("kind", "Domain")
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        line, col = where(("kind",))
        raise SpecError(f"unknown kind {shown(kind)}; valid kinds: {', '.join(KINDS)}",
                        Location(name, line, col))
    try:
        obj: Domain | Network | Profile = model.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        found = []
        for err in errors[:MAX_ERRORS]:
            blamed = (err.get("ctx") or {}).get("error")
            if isinstance(blamed, FieldError):
                err["loc"] = (*err["loc"], *blamed.path)
            line, col = where(tuple(err["loc"]))
            found.append(SpecError(_message(err, model), Location(name, line, col)))
        found.sort(key=lambda e: (e.location.line, e.location.col) if e.location else (0, 0))
        if len(errors) > MAX_ERRORS:
            last = found[-1]
            found[-1] = SpecError(f"{last.message} (and {len(errors) - MAX_ERRORS} more errors)",
                                  last.location)
        raise SpecErrors(found) from None
    return obj


class SpecErrors(SpecError):
    """Several errors in one object; `errors` holds them, first in file order."""

    def __init__(self, errors: list[SpecError]) -> None:
        super().__init__(errors[0].message, errors[0].location)
        self.errors = errors


_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
_short.maxlist = _short.maxtuple = _short.maxdict = 4
_short.maxlevel = 2


def shown(value: Any) -> str:
    """A value as it may appear in a message: quoted, and short however big it is."""
    return _short.repr(value)


_EXPECTED = {
    "int_parsing": "a whole number", "int_type": "a whole number",
    "int_from_float": "a whole number", "float_parsing": "a number", "float_type": "a number",
    "bool_parsing": "true or false", "bool_type": "true or false",
    "string_type": "text (quote it if it looks like a number or yes/no)",
    "dict_type": "a mapping (key: value lines)", "model_type": "a mapping (key: value lines)",
    "model_attributes_type": "a mapping (key: value lines)",
    "list_type": "a list", "tuple_type": "a list",
}


def _message(err: Any, model: type[Any]) -> str:
    loc = tuple(err["loc"])
    field_path = ".".join(str(p) for p in loc) or "spec"
    msg = str(err["msg"]).removeprefix("Value error, ")
    kind = err["type"]
    got = shown(err.get("input"))
    if kind == "extra_forbidden":
        valid = _fields_at(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        msg = (f"unknown field; {hint}valid here: {', '.join(valid)}" if valid else
               "unknown field (check the spelling; `reconciler schema` lists the valid fields)")
    elif kind == "missing":
        choices = _choices(model, loc)
        msg = "required field is missing" + (f"; one of: {', '.join(choices)}" if choices else "")
    elif kind in _EXPECTED:
        msg = f"expected {_EXPECTED[kind]}, got {got}"
    elif kind in ("literal_error", "enum"):
        msg = f"{msg.replace('Input should be ', 'expected ')}, got {got}"
    elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than",
                  "string_pattern_mismatch", "string_too_short", "string_too_long",
                  "too_short", "too_long"):
        msg = f"{msg.replace('Input should', 'must').replace('String should', 'must')}, got {got}"
    return f"{field_path}: {msg}"


def _fields_at(model: type[Any], path: tuple[Any, ...]) -> list[str]:
    """The field names of the model reached by `path` (list indexes and dict keys skipped)."""
    current: Any = model
    for key in path:
        fields = getattr(current, "model_fields", {})
        if isinstance(key, str) and key in fields:
            found = _model_in(fields[key].annotation)
            if found is None:
                return []
            current = found
    return list(getattr(current, "model_fields", {}))


def _choices(model: type[Any], loc: tuple[Any, ...]) -> list[str]:
    """The values a Literal field allows (for 'missing' messages)."""
    owner = model
    for key in loc[:-1]:
        fields = getattr(owner, "model_fields", {})
        if isinstance(key, str) and key in fields:
            owner = _model_in(fields[key].annotation) or owner
    field_info = getattr(owner, "model_fields", {}).get(loc[-1]) if loc else None
    if field_info is None:
        return []
    annotation = field_info.annotation
    if typing.get_origin(annotation) is typing.Literal:
        return [str(a) for a in typing.get_args(annotation)]
    return []


def _model_in(annotation: Any) -> type[Any] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
