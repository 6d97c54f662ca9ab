"""How util-vserver's C library finds a guest from an id (used by vserver-info, vserver-stat).

An id is either a path (`/abs`, `./rel`, `../rel`) to a config dir or a name under the config
root. A config dir counts when its `vdir` is a directory (for paths, a symlink is enough); a
`legacy` file, or only `/etc/vservers/NAME.conf` plus `/vservers/NAME`, means a legacy guest.
Context numbers come from the `run` file (verified against the running context) and, when
allowed, from the static `context` file; both are read as strict base-10 numbers of at most
50 bytes.
"""

from __future__ import annotations

import enum
import os
from pathlib import Path

from . import numbers
from .paths import Layout
from .state import State, get_context, uts_context

NAME_LIMIT = 1024  # longer `name` files are ignored, as by the C reader


class Style(enum.Enum):
    NONE = "none"
    LEGACY = "legacy"
    SHORT = "short"  # a name under the config root
    FULL = "full"  # a path to the config dir


def is_path(ident: str) -> bool:
    return ident.startswith(("/", "./", "../"))


def style_of(layout: Layout, ident: str) -> Style:
    style = Style.NONE
    if is_path(ident):
        vdir = Path(ident) / "vdir"
        if vdir.is_dir() or vdir.is_symlink():
            style = Style.FULL
    else:
        if (layout.confdir / ident / "vdir").is_dir():
            style = Style.SHORT
        elif ((layout.default_vserverdir / ident).is_dir()
              and (layout.confdir / f"{ident}.conf").is_file()):
            return Style.LEGACY
    if style is not Style.NONE and (cfg_path(layout, ident, style) / "legacy").exists():
        return Style.LEGACY
    return style


def cfg_path(layout: Layout, ident: str, style: Style) -> Path:
    return Path(ident) if style is Style.FULL else layout.confdir / ident


def xid_from_file(path: Path) -> int | None:
    """The C getCtxFromFile: a base-10 number filling the file up to an optional newline."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) > 50:
        return None
    text = data.decode("latin-1")
    parsed = numbers.strtol(text, 10)
    rest = text[parsed.end:]
    if rest and not rest.startswith("\n"):
        return None
    return parsed.value


def same_dir(left: str | Path, right: str | Path) -> bool:
    try:
        return os.path.samefile(left, right)
    except OSError:
        return False


def vserver_ctx(layout: Layout, st: State, ident: str, honor_static: bool) -> int | None:
    """vc_getVserverCtx for XIDs: the running context, else (if allowed) the static one."""
    style = style_of(layout, ident)
    if style is Style.NONE:
        return None
    if style is Style.LEGACY:
        return None  # legacy guests keep their XID elsewhere; not simulated
    cfg = cfg_path(layout, ident, style)
    xid = xid_from_file(cfg / "run")
    if xid is not None:
        owner = uts_context(st, xid)
        if owner is None or not same_dir(owner, cfg):
            xid = None
    if xid is None and honor_static:
        xid = xid_from_file(cfg / "context")
    return xid


def xidopt2xid(layout: Layout, st: State, text: str) -> int | None:
    """vc_xidopt2xid: a number, `:NAME`, or a guest name or path."""
    if text == "self":
        return 0  # the tools run on the host
    if text.startswith(":"):
        return vserver_ctx(layout, st, text[1:], True)
    parsed = numbers.strtol(text, 10)
    if parsed.end and text[parsed.end:parsed.end + 1] in ("", "\n"):
        return parsed.value
    return vserver_ctx(layout, st, text, True)


def cfgdir_of_xid(st: State, xid: int) -> str | None:
    """vc_getVserverByCtx: the config dir recorded in the context's uts `context`."""
    return uts_context(st, xid) if get_context(st, xid) is not None else None


def display_name(layout: Layout, ident: str, style: Style) -> str | None:
    """vc_getVserverName: the `name` file without trailing newlines, else the dir basename."""
    if style is Style.NONE:
        return None
    if style is Style.LEGACY:
        return ident
    cfg = cfg_path(layout, ident, style)
    name_file = cfg / "name"
    if name_file.is_file() and name_file.stat().st_size < NAME_LIMIT:
        text = name_file.read_bytes().decode("utf-8", "surrogateescape").rstrip("\n")
        if text:
            return text
    return os.path.basename(os.path.realpath(cfg))
