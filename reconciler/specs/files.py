"""One spec file -> its objects, or the errors that stop it loading.

Nothing downstream of here knows whether a spec was XML or YAML.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree
from pydantic import ValidationError

from reconciler.errors import Location, SpecError
from reconciler.model import KINDS, Domain, Network, Profile, Spec
from reconciler.specs import yaml_io
from reconciler.specs.xml_read import NS, decode, line_of, read_domain, read_network
from reconciler.specs.xmlsafe import MAX_SPEC_BYTES, parse_xml

SPEC_SUFFIXES = (".xml", ".yaml", ".yml")
_BACKUP_SUFFIXES = ("~", ".swp", ".swx", ".swo", ".bak", ".orig", ".rpmnew", ".rpmsave", ".tmp")


def is_spec_file(path: Path) -> bool:
    """Only `*.xml`, `*.yaml`, `*.yml`; dotfiles, editor swap and package backups ignored."""
    name = path.name
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


def load_file(path: Path, display: str | None = None) -> Loaded:
    name = display or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise SpecError(f"file is {size} bytes; specs are limited to {MAX_SPEC_BYTES} "
                            "(refused before parsing)", Location(name, 1, 1))
        data = path.read_bytes()
    except SpecError as exc:
        return Loaded(name, "", errors=(exc,))
    except OSError as exc:
        return Loaded(name, "", errors=(SpecError(f"cannot read: {exc.strerror}",
                                                  Location(name, 1, 1)),))
    return load_bytes(data, name)


def load_bytes(data: bytes, name: str) -> Loaded:
    digest = hashlib.sha256(data).hexdigest()
    try:
        objects = _parse(data, name)
    except SpecError as exc:
        return Loaded(name, digest, errors=(exc.at(Location(name, 1, 1)),))
    except RecursionError:
        return Loaded(name, digest, errors=(SpecError(
            "spec is nested too deeply to read", Location(name, 1, 1)),))
    except Exception as exc:  # a reader bug must not take the whole directory down
        return Loaded(name, digest, errors=(SpecError(
            f"internal error while reading this file ({type(exc).__name__}: {exc}); "
            "please report it", Location(name, 1, 1)),))
    return Loaded(name, digest, objects=tuple(objects))


def _parse(data: bytes, name: str) -> list[tuple[Spec, int]]:
    if not data.strip():
        raise SpecError("file is empty; a spec needs at least one object", Location(name, 1, 1))
    if b"\x00" in data[:8192]:
        raise SpecError("file is binary, not XML or YAML text", Location(name, 1, 1))
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"file is not UTF-8 text (byte {exc.start}); specs are UTF-8",
                        Location(name, 1, 1)) from None
    if name.endswith(".xml"):
        return [_from_xml(data, name)]
    return _from_yaml(data, name)


def _from_xml(data: bytes, name: str) -> tuple[Spec, int]:
    root = parse_xml(data, name)
    lines: dict[tuple[Any, ...], int] = {}
    if root.tag == "domain":
        raw = read_domain(root, lines)
    elif root.tag == "network":
        raw = read_network(root, lines)
    elif root.tag == f"{{{NS}}}profile":
        raw = {"kind": "Profile", **decode(root)}
    else:
        raise SpecError(f"unknown root element <{etree.QName(root).localname}>; "
                        "valid: <domain>, <network>, or <rc:profile>",
                        Location(name, line_of(root), 1))
    return _validate(raw, name, lambda path: (_nearest(lines, path), 1)), line_of(root)


def _nearest(lines: dict[tuple[Any, ...], int], path: tuple[Any, ...]) -> int:
    for cut in range(len(path), -1, -1):
        if path[:cut] in lines:
            return lines[path[:cut]]
    return 1


def _from_yaml(data: bytes, name: str) -> list[tuple[Spec, int]]:
    out = []
    for index, doc in enumerate(yaml_io.load_documents(data, name)):
        def where(path: tuple[Any, ...], i: int = index) -> tuple[int, int]:
            return yaml_io.locate(data, i, path)

        if not isinstance(doc, dict):
            line, col = where(())
            raise SpecError(f"document {index + 1} is a {type(doc).__name__}, not a mapping; "
                            "a spec starts with 'kind:' and 'name:'", Location(name, line, col))
        out.append((_validate(doc, name, where), where(())[0]))
    return out


def _validate(raw: dict[str, Any], name: str, where: Any) -> Spec:
    kind = raw.get("kind", "Domain")
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        line, col = where(("kind",))
        raise SpecError(f"unknown kind {kind!r}; valid kinds: {', '.join(KINDS)}",
                        Location(name, line, col))
    try:
        obj: Domain | Network | Profile = model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = tuple(err["loc"])
        line, col = where(path)
        raise SpecError(_message(err, len(exc.errors())), Location(name, line, col)) from None
    return obj


def _message(err: Any, total: int) -> str:
    field_path = ".".join(str(p) for p in err["loc"]) or "spec"
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling; `reconciler schema` lists the valid fields)"
    elif err["type"] == "literal_error":
        msg = f"{msg}, got {err.get('input')!r}"
    elif err["type"] == "missing":
        msg = "required field is missing"
    more = f" (and {total - 1} more)" if total > 1 else ""
    return f"{field_path}: {msg}{more}"
