"""Drivers, one module per technology, found by name. Each is imported only when it is made,
so a host without libvirt-python can still run the others."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reconciler.drivers.base import Driver
from reconciler.errors import ConfigError


def _sim() -> type[Driver]:
    from reconciler.drivers.sim import SimDriver
    return SimDriver


def _lxc() -> type[Driver]:
    from reconciler.drivers.lxc import LxcDriver
    return LxcDriver


def _libvirt() -> type[Driver]:
    from reconciler.drivers.libvirt import LibvirtDriver
    return LibvirtDriver


def _openvz() -> type[Driver]:
    from reconciler.drivers.openvz import OpenvzDriver
    return OpenvzDriver


def _vserver() -> type[Driver]:
    from reconciler.drivers.vserver import VserverDriver
    return VserverDriver


def _lxd() -> type[Driver]:
    from reconciler.drivers.lxd import LxdDriver
    return LxdDriver


BUILTIN: dict[str, Callable[[], type[Driver]]] = {"sim": _sim, "lxc": _lxc, "libvirt": _libvirt,
                                                  "openvz": _openvz, "vserver": _vserver,
                                                  "lxd": _lxd}


def create(name: str, state_dir: str, **options: Any) -> Driver:
    if name not in BUILTIN:
        raise ConfigError(f"unknown driver {name!r}; available: {', '.join(BUILTIN)}")
    try:
        cls = BUILTIN[name]()
    except ImportError as exc:
        raise ConfigError(f"driver {name!r} cannot load: {exc}") from None
    return cls(state_dir=state_dir, **options)  # type: ignore[call-arg]
