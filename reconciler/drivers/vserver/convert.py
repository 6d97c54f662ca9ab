"""One util-vserver configuration tree (`/etc/vservers/NAME`) as a spec, for
`reconciler convert DIR --from vserver`: the same reading as the driver's observe
(mapping.read_tree), so a converted tree and an imported guest come out the same way.

Nothing is dropped without a word: every file of the tree is either mapped into the spec or
reported (`not_converted`, printed as `PATH:LINE: warning: not converted: KEY = VALUE
(WHY)`, the contract's NotConverted form; WHY says what the model lacks or what is wrong with
the value). Lines of util-vserver's own default fstab are not reported: `vserver NAME build`
writes them again. What util-vserver's start would fail on is reported too (`problems`). A
tree this driver built carries how its root was built in our sidecar, and that becomes the
root filesystem; any other tree says nothing of how its guest root was made, so its spec has
no root (and a note says so).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from reconciler.drivers.base import OWNER, NotConverted, Stamp
from reconciler.drivers.vserver import mapping
from reconciler.drivers.vserver.driver import not_converted, read_sidecar, validated
from reconciler.drivers.vserver.tree import snapshot
from reconciler.errors import DriverError, Location, SpecError
from reconciler.model import Domain
from reconciler.model.names import NAME_RE
from reconciler.text import printable


@dataclass(frozen=True)
class Converted:
    """The spec; what of the tree it does not carry; what util-vserver would fail on."""

    domain: Domain
    not_converted: tuple[NotConverted, ...]
    problems: tuple[tuple[str, str], ...]  # (file, why)

    @property
    def warnings(self) -> tuple[str, ...]:
        """Every report as the line to print on stderr."""
        return (*(printable(n.report()) for n in self.not_converted),
                *(printable(f"{where}: warning: {why}") for where, why in self.problems))


def convert_tree(path: str | Path, page_size: int | None = None) -> Converted:
    """`path` is one guest's configuration directory; its basename is the guest's name.
    SpecError when it is not a directory util-vserver would take as a guest."""
    top = Path(path)
    where = Location(str(top), 1, 1)
    name = top.resolve().name
    if not NAME_RE.match(name) or ".." in name:
        raise SpecError(f"{name!r} is not a guest name the model allows (the directory's name "
                        "is the guest's)", where)
    if not top.is_dir():
        raise SpecError("not a directory: give one util-vserver tree, e.g. /etc/vservers/NAME",
                        where)
    try:
        tree = snapshot(top)
    except (OSError, DriverError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise SpecError(f"cannot read: {why}", where) from None
    sidecar = read_sidecar(tree, name)
    stamp = Stamp.from_json(sidecar) if sidecar is not None else None
    record = (sidecar or {}).get("vserver") or {}
    last = stamp.spec if stamp is not None and stamp.owner == OWNER else None
    ctx = mapping.Context(name, page_size or os.sysconf("SC_PAGE_SIZE"),
                          root=record.get("root"), last=last)
    reading = mapping.read_tree(tree, ctx)
    try:
        spec, dropped = validated(reading.spec)
    except DriverError as exc:
        raise SpecError(str(exc), where) from None
    notes = [not_converted(top, note) for note in reading.notes]
    notes += [NotConverted(str(top), 1, field, "", "the value read is not valid in the model")
              for field in sorted(dropped)]
    problems = tuple((str(top / p.path if p.path else top),
                      f"util-vserver would fail on this: {p.why}") for p in reading.problems)
    return Converted(Domain.model_validate(spec), tuple(notes), problems)
