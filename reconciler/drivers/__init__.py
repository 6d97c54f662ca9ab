"""Drivers, one module per technology, found by name. Imported lazily, so a host without
libvirt-python can still run the others."""

from __future__ import annotations

import importlib
from typing import Any

from reconciler.drivers.base import Driver
from reconciler.errors import ConfigError

BUILTIN = {
    "sim": ("reconciler.drivers.sim", "SimDriver"),
    "lxc": ("reconciler.drivers.lxc", "LxcDriver"),
    "libvirt": ("reconciler.drivers.libvirt", "LibvirtDriver"),
}


def create(name: str, state_dir: str, **options: Any) -> Driver:
    if name not in BUILTIN:
        raise ConfigError(f"unknown driver {name!r}; available: {', '.join(BUILTIN)}")
    module_name, cls_name = BUILTIN[name]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"driver {name!r} cannot load: {exc}") from None
    driver: Driver = getattr(module, cls_name)(state_dir=state_dir, **options)
    return driver
