"""A native LXC config as a spec, for `reconciler convert FILE --from lxc`.

The reading is the driver's own (`reading.read_config`, pure), so a converted file and an
imported container come out the same way. Every key line the spec does not carry is reported
with its line and why (`NotConverted`), never dropped without a word; only what LXC's templates
write to run init (halt signals, autodev, pseudo-filesystem mounts, ...) and values that mean
the default are left out silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.drivers.base import NotConverted
from reconciler.drivers.lxc.config import LxcConfig, modernised
from reconciler.drivers.lxc.mapping import CgroupLayout, Context
from reconciler.drivers.lxc.reading import read_config
from reconciler.drivers.lxc.tools import parse_template_comment
from reconciler.errors import Location, PermanentError, SpecError
from reconciler.fsio import read_regular
from reconciler.model.names import NAME_RE

MAX_BYTES = 1 << 20


def convert_file(path: Path | str) -> tuple[dict[str, Any], list[NotConverted]]:
    """One LXC container config (`<lxcpath>/NAME/config` or any file in that format) as a
    canonical Domain, and the lines it does not carry. The name is the container directory's
    when the file is called `config`, else `lxc.uts.name`, else the file's stem. Legacy
    (pre-2.1) keys are read as LXC 3+ keys."""
    path = Path(path)
    where = Location(str(path), 1, 1)
    try:
        raw = read_regular(path, MAX_BYTES, follow=True)  # a path the operator typed
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror or exc}", where) from None
    if len(raw) > MAX_BYTES:
        raise SpecError(f"file is larger than {MAX_BYTES} bytes", where)
    text = raw.decode("utf-8", "replace")
    try:
        cfg = modernised(LxcConfig.parse(text))
    except PermanentError as exc:
        raise SpecError(str(exc), where) from None
    name = _name_for(path, cfg)
    if name is None:
        raise SpecError("no container name: the file is not <lxcpath>/NAME/config and has no "
                        "valid lxc.uts.name", where)
    template, options = parse_template_comment(text)
    lxcpath = str(path.resolve().parent.parent)
    rootfs = cfg.get("lxc.rootfs.path") or ""
    rootfs = rootfs[4:] if rootfs.startswith("dir:") else rootfs
    if rootfs.rstrip("/").endswith(f"/{name}/rootfs"):  # a copied file: where it was made
        lxcpath = rootfs.rstrip("/")[: -len(f"/{name}/rootfs")] or "/"
    ctx = Context(name=name, lxcpath=lxcpath, layout=CgroupLayout(), template=template,
                  template_options=options)
    try:
        reading = read_config(text, ctx)
    except PermanentError as exc:
        raise SpecError(str(exc), where) from None
    return {"kind": "Domain", **reading.spec}, reading.notes(str(path))


def _name_for(path: Path, cfg: LxcConfig) -> str | None:
    candidates = []
    if path.name == "config":
        candidates.append(path.resolve().parent.name)
    candidates += [cfg.get("lxc.uts.name") or "", path.stem]
    return next((c for c in candidates if NAME_RE.match(c) and ".." not in c), None)
