"""Optional check of XML specs against libvirt's own RelaxNG schemas."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.errors import Location, SpecError

if TYPE_CHECKING:  # lxml loads when a schema is used, not when the CLI names the default
    from lxml import etree

DEFAULT_SCHEMA_DIR = "/usr/share/libvirt/schemas"
# libvirt never adopted these domain types, so its schema cannot judge them.
NOT_IN_LIBVIRT = frozenset({"vserver"})


def schema_dir(explicit: str | None) -> Path | None:
    for candidate in ([explicit] if explicit else [DEFAULT_SCHEMA_DIR]):
        path = Path(candidate)
        if (path / "domain.rng").is_file():
            return path
    return None


@cache
def _schema(path: str) -> etree.RelaxNG:
    from lxml import etree

    return etree.RelaxNG(etree.parse(path))


def validate_element(root: etree._Element, directory: Path) -> list[str]:
    """Schema errors for a `<domain>` or `<network>` element (empty when valid)."""
    name = {"domain": "domain.rng", "network": "network.rng"}.get(str(root.tag))
    if name is None or root.get("type") in NOT_IN_LIBVIRT:
        return []
    schema = _schema(str(directory / name))
    if schema.validate(root):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]


def validate_file(path: Path, directory: Path) -> list[SpecError]:
    from reconciler.specs.xmlsafe import parse_xml

    root = parse_xml(path.read_bytes(), str(path))
    problems = validate_element(root, directory)
    if not problems:
        return []
    first = schema_error_line(problems[0])
    return [SpecError(f"does not match libvirt's schema ({directory}): {problems[0]}",
                      Location(str(path), first, 1))]


def schema_error_line(problem: str) -> int:
    head = problem.split(":", 1)[0].removeprefix("line ")
    return int(head) if head.isdigit() else 1
