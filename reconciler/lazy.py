"""Package attributes loaded on first use (PEP 562), so that importing a light module of a
package does not load its heavy siblings: a command that never reads a spec never loads
pydantic."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def exports(package: str, homes: dict[str, str], namespace: dict[str, Any]
            ) -> Callable[[str], Any]:
    """A module `__getattr__` for `package`: `homes` maps each name to its submodule; a name
    once loaded becomes a plain attribute of `namespace` (the package's globals)."""
    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{homes[name]}"), name)
        namespace[name] = value
        return value
    return __getattr__
