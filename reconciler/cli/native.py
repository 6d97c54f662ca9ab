"""Native configs as specs, for `reconciler convert FILE --from TECHNOLOGY`: each driver
package converts its own files (its parser and mapping are pure, so a converted file and an
imported object come out the same way); here they are only looked up by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.drivers.base import NotConverted
    from reconciler.model import Spec

Options = dict[str, Any]  # the source's own options (`--openvz-version`)


@dataclass(frozen=True)
class Read:
    """What one converter made of a file: canonical specs, the lines they leave out, and
    other warnings (what the technology's own tools would fail on)."""

    specs: list[dict[str, Any]]
    not_converted: list[NotConverted]
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (file, why)


@dataclass(frozen=True)
class Converted:
    objects: list[Spec]
    not_converted: list[NotConverted]
    warnings: list[tuple[str, str]]


def _lxc(path: Path, options: Options) -> Read:
    from reconciler.drivers.lxc.convert import convert_file

    spec, notes = convert_file(path)
    return Read([spec], notes)


def _openvz(path: Path, options: Options) -> Read:
    """A `CTID.conf` (a Domain) or a `ve-NAME.conf-sample` (a Profile), read by the rules of
    the vzctl that wrote it (`--openvz-version`: legacy 3.x/4.x by default, or 7)."""
    from reconciler.drivers.openvz import convert_file

    spec, notes = convert_file(str(path), options.get("openvz_version") or "legacy")
    return Read([spec], notes)


def _vserver(path: Path, options: Options) -> Read:
    """One guest's util-vserver tree (`/etc/vservers/NAME`, a directory)."""
    from reconciler.drivers.vserver.convert import convert_tree
    from reconciler.model import canonical

    done = convert_tree(path)
    return Read([{"kind": "Domain", **canonical(done.domain)}], list(done.not_converted),
                list(done.problems))


CONVERTERS: dict[str, Callable[[Path, Options], Read]] = {
    "lxc": _lxc, "openvz": _openvz, "vserver": _vserver}
NATIVE_SOURCES = tuple(CONVERTERS)


def convert_native(source: str, path: Path | str, **options: Any) -> Converted:
    """FILE read as `source`'s native config: the specs, and every line they do not carry.
    SpecError when the file cannot be read as one."""
    from reconciler.model import KINDS

    read = CONVERTERS[source](Path(path), options)
    objects = [KINDS[raw.get("kind", "Domain")].model_validate(raw) for raw in read.specs]
    return Converted(objects, sorted(read.not_converted, key=lambda n: (n.file, n.line, n.key)),
                     read.warnings)
