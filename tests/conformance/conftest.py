"""Harnesses are found, not listed: each `*_harness.py` here exposes `HARNESSES`, a list of
(id, factory(tmp_path) -> Harness | None). A factory returns None where its driver cannot run
(no root, no daemon), and that harness is skipped with the reason it gives."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

_HERE = Path(__file__).parent


def _factories() -> list[tuple[str, Any]]:
    found = []
    for path in sorted(_HERE.glob("*_harness.py")):
        module = importlib.import_module(f"{__package__}.{path.stem}")
        found.extend(getattr(module, "HARNESSES", []))
    return found


_ALL = _factories()


@pytest.fixture(params=[f for _, f in _ALL], ids=[i for i, _ in _ALL])
def harness(request: Any, tmp_path: Path) -> Any:
    made = request.param(tmp_path)
    if isinstance(made, str):
        pytest.skip(made)
    return made
