"""A container config as a validated spec, and the lines the spec leaves out: the one reading
`convert --from lxc` and `import --driver lxc` share, so both say the same of the same file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.drivers import observed
from reconciler.drivers.base import NotConverted
from reconciler.drivers.lxc.config import LxcConfig, modernised
from reconciler.drivers.lxc.mapping import Context, read_spec
from reconciler.drivers.lxc.provenance import LeftOut, Provenance, left_out

# fields tried first when a rule over the whole object fails and names none of them
_WHOLE_OBJECT_CULPRITS = ("filesystems", "interfaces", "memory", "memtune", "cpu", "init",
                          "capabilities", "blkiotune")


def validated(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The canonical form of an observed spec, and field -> why the model refused it
    (`drivers.observed.validated`)."""
    return observed.validated(raw, _WHOLE_OBJECT_CULPRITS)


@dataclass(frozen=True)
class Reading:
    """One config read: the spec, the fields the model refused (with why), the lines left
    out of the spec."""

    spec: dict[str, Any]
    refused: dict[str, str]
    left_out: tuple[LeftOut, ...]

    def notes(self, path: str) -> list[NotConverted]:
        return [NotConverted(path, item.line, item.key, item.value, item.reason)
                for item in self.left_out]


def read_config(text: str, ctx: Context, last: dict[str, Any] | None = None) -> Reading:
    """`text` (a container config; legacy keys read as LXC 3+ keys) as a spec."""
    spelled = LxcConfig.parse(text)
    cfg = modernised(spelled)
    marks = Provenance()
    spec, refused = validated(read_spec(cfg, ctx, last, marks=marks))
    return Reading(spec, refused, tuple(left_out(cfg, marks, refused, spelled)))
