"""Settings: the agent config file (YAML) overlaid by command-line flags, frozen, passed down.

    state_dir: /var/lib/reconciler
    driver: lxc                     # the default driver
    drivers:                        # options per driver
      lxc: {lxcpath: /var/lib/lxc}
      libvirt: {uri: "lxc:///"}
    routes: {kvm: libvirt, network: libvirt}   # domain type (or "network") -> driver
    max_removal_share: 0.5
    parallel: 8
    journal_max_bytes: 64MiB        # the journal is set aside (one old file kept) past this
    policy: {...}                   # what specs may give guests of the host (engine/policy.py)
    restart: auto                   # default restart policy, and maintenance windows:
    maintenance: {...}              # engine/maintenance.py
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler import drivers
from reconciler.engine.apply import DEFAULT_PARALLEL
from reconciler.engine.hosts import Hosts
from reconciler.engine.journal import MAX_BYTES as JOURNAL_MAX_BYTES
from reconciler.engine.maintenance import Maintenance
from reconciler.engine.plan import Settings
from reconciler.engine.policy import Policy
from reconciler.errors import ConfigError
from reconciler.fsio import private_dir
from reconciler.model.units import parse_size


def default_state_dir() -> str:
    env = os.environ.get("RECONCILER_STATE_DIR")
    if env:
        return env
    if os.geteuid() == 0:
        return "/var/lib/reconciler"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(base) / "reconciler")


@dataclass(frozen=True)
class Config:
    state_dir: str
    driver: str = "sim"
    driver_chosen: bool = False
    drivers: dict[str, dict[str, Any]] = field(default_factory=dict)
    routes: dict[str, str] = field(default_factory=dict)
    max_removal_share: float = 0.5
    parallel: int = DEFAULT_PARALLEL
    journal_max_bytes: int = JOURNAL_MAX_BYTES
    policy: Policy = field(default_factory=Policy)
    maintenance: Maintenance = field(default_factory=Maintenance)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        """What the planner needs of this config."""
        return Settings(self.max_removal_share, self.policy, self.maintenance)

    @property
    def simulated_by_default(self) -> bool:
        return self.driver == "sim" and not self.driver_chosen and not self.routes


_KNOWN = {"state_dir", "driver", "drivers", "routes", "max_removal_share", "parallel",
          "journal_max_bytes", "policy", "watch", "http", "git", "restart", "maintenance"}


def load_config(path: str | None, *, state_dir: str | None = None, driver: str | None = None,
                driver_options: dict[str, Any] | None = None, parallel: int | None = None,
                max_removal_share: float | None = None) -> Config:
    data: dict[str, Any] = {}
    path = path or os.environ.get("RECONCILER_CONFIG") or None
    if path:
        import yaml  # only a config file needs it

        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config {path} is not valid YAML: {exc}") from None
        data = loaded or {}
        if not isinstance(data, dict):
            raise ConfigError(f"config {path} must be a mapping")
        unknown = set(data) - _KNOWN
        if unknown:
            raise ConfigError(f"config {path}: unknown keys {sorted(unknown)}; valid: "
                              f"{sorted(_KNOWN)}")
    options = {k: dict(v or {}) for k, v in (data.get("drivers") or {}).items()}
    chosen = driver or data.get("driver")
    if driver and driver_options:
        options.setdefault(driver, {}).update(driver_options)
    share = max_removal_share if max_removal_share is not None else \
        float(data.get("max_removal_share", 0.5))
    if not 0 <= share <= 1:
        raise ConfigError("max_removal_share must be between 0 and 1")
    journal_max = _journal_max(data.get("journal_max_bytes", JOURNAL_MAX_BYTES))
    where = state_dir or data.get("state_dir") or default_state_dir()
    return Config(
        state_dir=where, policy=Policy.from_config(data.get("policy"), where),
        driver=chosen or "sim", driver_chosen=chosen is not None,
        drivers=options, routes=dict(data.get("routes") or {}),
        max_removal_share=share,
        parallel=parallel or int(data.get("parallel", DEFAULT_PARALLEL)),
        journal_max_bytes=journal_max,
        maintenance=Maintenance.from_config(data.get("restart"), data.get("maintenance")),
        extra={k: data[k] for k in ("watch", "http", "git") if k in data},
    )


def _journal_max(value: object) -> int:
    try:
        size = parse_size(value, native=1)  # a plain number is bytes here
    except ValueError as exc:
        raise ConfigError(f"journal_max_bytes: {exc}") from None
    if size < 4096:
        raise ConfigError(f"journal_max_bytes must be at least 4KiB, not {value!r}")
    return size


def build_hosts(config: Config) -> Hosts:
    names = {config.driver, *config.routes.values()}
    private_dir(config.state_dir, tighten=True)
    built = {name: drivers.create(name, config.state_dir, **config.drivers.get(name, {}))
             for name in sorted(names)}
    return Hosts(built, config.driver, config.routes)
