"""Where the simulated util-vserver keeps things: every compiled-in path, below `$VSSIM_ROOT`.

The real tools have these paths compiled in (native-formats.md §2.1); the simulator prefixes
each with the root so tests never touch the real host.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENV_ROOT = "VSSIM_ROOT"


class NoRoot(Exception):
    """VSSIM_ROOT is missing or is not a directory."""


@dataclass(frozen=True)
class Layout:
    root: Path

    @classmethod
    def from_env(cls) -> Layout:
        value = os.environ.get(ENV_ROOT, "")
        if not value:
            raise NoRoot(f"vssim: {ENV_ROOT} is not set; it must name the simulated host's root")
        root = Path(value)
        if not root.is_absolute():
            root = Path.cwd() / root
        if not root.is_dir():
            raise NoRoot(f"vssim: {ENV_ROOT}={value} is not a directory")
        return cls(root)

    # /etc/vservers and its defaults
    @property
    def confdir(self) -> Path:
        return self.root / "etc/vservers"

    @property
    def defaults(self) -> Path:
        return self.confdir / ".defaults"

    @property
    def distributions(self) -> Path:
        return self.confdir / ".distributions"

    @property
    def host_etc(self) -> Path:
        """The host's own /etc (resolv.conf and release files read by build)."""
        return self.root / "etc"

    # run files, cache, guest roots
    @property
    def rundir(self) -> Path:
        return self.root / "var/run/vservers"

    @property
    def pkgcachedir(self) -> Path:
        return self.root / "var/cache/vservers"

    @property
    def default_vserverdir(self) -> Path:
        """configure's --with-vrootdir default, /vservers."""
        return self.root / "vservers"

    @property
    def default_pkgdir(self) -> Path:
        return self.root / "vservers/.pkg"

    @property
    def lockdir(self) -> Path:
        return self.root / "var/lock/vservers"

    # simulator bookkeeping
    @property
    def statedir(self) -> Path:
        return self.root / "proc/virtual"

    @property
    def state_file(self) -> Path:
        return self.statedir / "state.json"

    @property
    def state_lock(self) -> Path:
        return self.statedir / ".state.lock"

    @property
    def call_log(self) -> Path:
        return self.root / "var/log/vssim.jsonl"

    @property
    def faults_file(self) -> Path:
        return self.root / "etc/vssim-faults.json"

    def guest_cfgdir(self, name: str) -> Path:
        return self.confdir / name
