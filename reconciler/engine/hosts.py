"""Which driver runs which object: a rule table from domain type to driver (the agent
config's `routes:`), with one default. Networks go to the driver named for them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from reconciler.drivers.base import Driver, LiveObject, observe
from reconciler.errors import ConfigError
from reconciler.model.fields import Ref


@dataclass
class Hosts:
    drivers: dict[str, Driver]
    default: str
    routes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for target in [self.default, *self.routes.values()]:
            if target not in self.drivers:
                raise ConfigError(f"route names driver {target!r}, which is not configured")

    def driver_name_for(self, kind: str, dtype: str) -> str:
        key = "network" if kind == "Network" else dtype
        return self.routes.get(key, self.default)

    def prepare_observe(self) -> None:
        for driver in self.drivers.values():
            if driver.capabilities.prepares_observe:
                driver.prepare_observe()

    def observe(self) -> dict[Ref, tuple[str, LiveObject]]:
        """Every managed object on the host, with the driver that reported it.

        An object reported by a driver that its type is not routed to is left out: it belongs
        to whatever runs that technology, not to this routing."""
        seen: dict[Ref, tuple[str, LiveObject]] = {}
        for name, driver in self.drivers.items():
            for obj in observe(driver):
                if self.driver_name_for(obj.ref.kind, obj.type) == name:
                    seen[obj.ref] = (name, obj)
        return seen

    def close(self) -> None:
        for driver in self.drivers.values():
            driver.close()

    def names(self) -> Iterable[str]:
        return self.drivers.keys()
