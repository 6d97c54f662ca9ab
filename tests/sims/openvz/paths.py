"""Where the simulated host keeps things, and which tool version is simulated.

Every path the real tools have compiled in lives below `$VZSIM_ROOT`. Paths that come from
config values (VE_PRIVATE, VE_ROOT, TEMPLATE, LOCKDIR) are used exactly as written.

The config directory is always addressed as `etc/vz/conf`; for version 3 the fixture makes it a
symlink to `etc/sysconfig/vz-scripts`, as the vzctl RPM did, so both names work and `--save`
writes through the link.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .console import fail

VERSIONS = ("3", "4", "7")
DEFAULT_NCPUS = 4


@dataclass(frozen=True)
class Sim:
    """One invocation's view of the host: its root and the simulated tool version."""

    root: Path
    version: str
    ncpus: int = DEFAULT_NCPUS

    @property
    def legacy(self) -> bool:
        """vzctl 3.x/4.x (as opposed to OpenVZ 7)."""
        return self.version != "7"

    @property
    def v3(self) -> bool:
        """vzctl 3.0.x: no ploop/VE_LAYOUT, no vzlist -j, old disk-quota value rules."""
        return self.version == "3"

    @property
    def etc_vz(self) -> Path:
        return self.root / "etc" / "vz"

    @property
    def vz_conf(self) -> Path:
        return self.etc_vz / "vz.conf"

    @property
    def conf_dir(self) -> Path:
        return self.etc_vz / "conf"

    @property
    def names_dir(self) -> Path:
        return self.etc_vz / "names"

    @property
    def proc_vz(self) -> Path:
        return self.root / "proc" / "vz"

    @property
    def state_file(self) -> Path:
        return self.proc_vz / "state.json"

    @property
    def vswap_flag(self) -> Path:
        return self.proc_vz / "vswap"

    @property
    def log_file(self) -> Path:
        return self.root / "var" / "log" / "vzsim.jsonl"

    @property
    def faults_file(self) -> Path:
        return self.root / "etc" / "vzsim-faults.json"

    @property
    def default_lockdir(self) -> Path:
        return self.root / "vz" / "lock"

    def kernel_has_vswap(self) -> bool:
        return self.version == "7" or self.vswap_flag.exists()

    def conf_path(self, ctid: str) -> Path:
        return self.conf_dir / f"{ctid}.conf"

    def sample_path(self, name: str) -> Path:
        return self.conf_dir / f"ve-{name}.conf-sample"


def sim_from_env(env: Mapping[str, str] | None = None) -> Sim:
    """Read VZSIM_ROOT / VZSIM_VERSION / VZSIM_NCPUS; exit 3 when the root is not given."""
    env = os.environ if env is None else env
    root = env.get("VZSIM_ROOT", "")
    if not root:
        raise fail(3, "vzsim: VZSIM_ROOT is not set; it must name the simulated host's root")
    version = env.get("VZSIM_VERSION", "4") or "4"
    if version not in VERSIONS:
        raise fail(3, f"vzsim: VZSIM_VERSION must be one of {', '.join(VERSIONS)}, not {version}")
    try:
        ncpus = int(env.get("VZSIM_NCPUS", DEFAULT_NCPUS))
    except ValueError:
        ncpus = DEFAULT_NCPUS
    return Sim(Path(root), version, max(ncpus, 1))
