from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .sim_harness import SimHarness


@pytest.fixture(params=["lxc", "openvz"], ids=["sim-lxc", "sim-openvz"])
def harness(request: Any, tmp_path: Path) -> SimHarness:
    return SimHarness(tmp_path / "state", domain_type=request.param)
