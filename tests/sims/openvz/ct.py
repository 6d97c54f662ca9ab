"""One container as vzctl sees it: its id, vz.conf, CTID.conf, paths and kernel state."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import values
from .config import Conf, merged, read_conf, subst_veid
from .keys import RUNTIME_KEYS, UBC_NAMES
from .paths import Sim
from .state import KernelState
from .values import Caps, Features, Veth


@dataclass
class Ct:
    sim: Sim
    ctid: str
    verbose: int = 0
    gconf: Conf = field(default_factory=Conf)
    conf: Conf = field(default_factory=Conf)

    def __post_init__(self) -> None:
        self.kernel = KernelState(self.sim)

    @property
    def ctx(self) -> values.Ctx:
        return values.Ctx(self.ctid, self.sim.legacy, self.sim.v3, self.sim.ncpus)

    @property
    def conf_path(self) -> Path:
        return self.sim.conf_path(self.ctid)

    def load(self, *, warn: bool = True) -> None:
        """(Re)read vz.conf and CTID.conf."""
        self.gconf = read_conf(self.sim.vz_conf, self.ctx, verbose=self.verbose, warn=warn)
        self.reload(warn=warn)

    def reload(self, *, warn: bool = False) -> None:
        self.conf = read_conf(self.conf_path, self.ctx, verbose=self.verbose, warn=warn)

    @property
    def eff(self) -> dict[str, Any]:
        """Effective values: vz.conf merged with CTID.conf."""
        return merged(self.gconf, self.conf).values

    def private(self, eff: dict[str, Any] | None = None) -> str | None:
        eff = self.eff if eff is None else eff
        return subst_veid(eff.get("VE_PRIVATE"), self.ctid, self.sim.legacy)

    def root(self, eff: dict[str, Any] | None = None) -> str | None:
        eff = self.eff if eff is None else eff
        return subst_veid(eff.get("VE_ROOT"), self.ctid, self.sim.legacy)

    def lockdir(self) -> Path:
        value = self.eff.get("LOCKDIR")
        return Path(value) if value else self.sim.default_lockdir

    def exists(self) -> bool:
        """Both the private area and CTID.conf exist (status' "exist")."""
        private = self.private()
        return private is not None and os.path.exists(private) and self.conf_path.exists()

    def running(self) -> bool:
        return self.kernel.is_running(self.ctid)

    def mounted(self) -> bool:
        return self.kernel.is_mounted(self.ctid)


def state_repr(key: str, value: Any) -> str:
    """How a value is recorded in the kernel state (version-neutral, numbers spelled out)."""
    if key in UBC_NAMES or key in ("DISKSPACE", "DISKINODES"):
        return f"{value[0]}:{value[1]}"
    if isinstance(value, list):
        if value and isinstance(value[0], Veth):
            return values.render_netif(value, legacy=True)
        return " ".join(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple) and key == "CPULIMIT":
        return str(value[1])
    if isinstance(value, Caps):
        return values.render_caps(value, None)
    if isinstance(value, Features):
        return values.render_features(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def runtime_params(eff: dict[str, Any]) -> dict[str, str]:
    """What starting a CT pushes into the kernel."""
    return {k: state_repr(k, v) for k, v in eff.items() if k in RUNTIME_KEYS}
