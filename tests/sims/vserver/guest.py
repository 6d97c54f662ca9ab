"""Which config dir `vserver NAME ...` works on (native-formats.md §2.4, "How NAME is resolved").

One trailing `/` is dropped. `./rel` is taken relative to the current directory and `/abs` as the
config dir itself. Anything else is first tried as a context: when it names a running XID (or a
guest whose context runs), that context's config dir is used. Otherwise the dir is
`/etc/vservers/NAME`, and a `legacy` file there, or a missing dir next to an existing
`NAME.conf`, hands over to the legacy tool. As in the real script, a name is looked up as a
context first: a guest whose static `context` is taken by another running guest resolves to
that guest (give a path, `/etc/vservers/NAME`, to avoid it).

Liveness: a guest runs when its `run` file holds an XID whose context was started from this
config dir and has processes (§2.5). The simulator compares normalised absolute paths where the
shell compares the literal strings, so `./g1` and `/etc/vservers/g1` count as the same guest.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import cfgstyle, tree
from .paths import Layout
from .state import State, get_context, uts_context


@dataclass(frozen=True)
class Guest:
    arg: str  # NAME as the script keeps it, used in status messages
    dir: str  # the config dir as the script spells it, used in error messages

    @property
    def path(self) -> Path:
        return Path(self.dir)

    @property
    def name(self) -> str:
        """The script's VSERVER_NAME: the config dir's basename (not the `name` file)."""
        return os.path.basename(self.dir.rstrip("/"))

    @property
    def key(self) -> str:
        """How the kernel state names this guest (its uts `context`)."""
        return os.path.normpath(os.path.abspath(self.dir))


@dataclass(frozen=True)
class Legacy:
    arg: str


def resolve(layout: Layout, st: State, raw: str) -> Guest | Legacy:
    name = raw[:-1] if raw.endswith("/") else raw
    if name.startswith("./"):
        return Guest(name, f"{os.getcwd()}/{name}")
    if name.startswith("/"):
        return Guest(name, name)
    xid = cfgstyle.xidopt2xid(layout, st, name)
    owner = uts_context(st, xid) if xid is not None else None
    if owner and os.path.isdir(owner):
        return Guest(name, owner)
    cfgdir = layout.confdir / name
    if (cfgdir / "legacy").exists() or (
            not cfgdir.is_dir() and (layout.confdir / f"{name}.conf").exists()):
        return Legacy(name)
    return Guest(name, str(cfgdir))


@dataclass(frozen=True)
class Status:
    xid: int | None  # what the run file holds, if it could be read as a number
    procs: int

    @property
    def running(self) -> bool:
        return self.xid is not None and self.procs > 0


def status(st: State, guest: Guest, cleanup: bool) -> Status:
    """getVserverStatus; with cleanup (isVserverRunning) a stale run file is deleted."""
    run = guest.path / "run"
    if not os.access(run, os.R_OK):
        return Status(None, 0)
    text = tree.shell_read(run.read_bytes()).value
    xid = int(text) if text.isdigit() else None
    procs = 0
    if xid is not None and uts_context(st, xid) == guest.key:
        ctx = get_context(st, xid)
        procs = int(ctx["procs"]) if ctx else 0
    if procs == 0 and cleanup and run.is_symlink():
        target = Path(os.readlink(run))
        target = target if target.is_absolute() else run.parent / target
        target.unlink(missing_ok=True)
    return Status(xid, procs)
