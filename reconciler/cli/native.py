"""Native configs as specs, for `reconciler convert FILE --from TECHNOLOGY`: each driver
package converts its own files (its parser and mapping are pure, so a converted file and an
imported object come out the same way); here they are only looked up by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.drivers.base import NotConverted
    from reconciler.model import Spec

Specs = tuple[list[dict[str, Any]], list["NotConverted"]]


@dataclass(frozen=True)
class Converted:
    objects: list[Spec]
    not_converted: list[NotConverted]


def _lxc(path: Path) -> Specs:
    from reconciler.drivers.lxc.convert import convert_file

    spec, notes = convert_file(path)
    return [spec], notes


CONVERTERS: dict[str, Callable[[Path], Specs]] = {"lxc": _lxc}
NATIVE_SOURCES = tuple(CONVERTERS)


def convert_native(source: str, path: Path | str) -> Converted:
    """FILE read as `source`'s native config: the specs, and every line they do not carry.
    SpecError when the file cannot be read as one."""
    from reconciler.model import KINDS

    specs, notes = CONVERTERS[source](Path(path))
    objects = [KINDS[raw.get("kind", "Domain")].model_validate(raw) for raw in specs]
    return Converted(objects, sorted(notes, key=lambda n: (n.file, n.line, n.key)))
