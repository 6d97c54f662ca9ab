"""Fixtures for the openvz driver's tests: a simulated OpenVZ host per test (tests/sims/openvz)
under the test's temp dir, its vzctl/vzlist first on PATH (the driver finds them there, as on
a real host), a spec and state directory, and a unique name prefix. Everything lives under
tmp_path, so nothing outlives the test.

`openvz` is made loadable by name here (`reconciler.drivers.BUILTIN`); the real registration
is the lead's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from openvz_support import VzWorld

from reconciler.drivers import BUILTIN
from reconciler.drivers.openvz import OpenvzDriver


@pytest.fixture(autouse=True)
def _openvz_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BUILTIN, "openvz", lambda: OpenvzDriver)


@pytest.fixture
def make_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
               ) -> Callable[[str], VzWorld]:
    def make(version: str) -> VzWorld:
        world = VzWorld(tmp_path / f"v{version}", version)
        monkeypatch.setenv("PATH", f"{world.host.bin_dir}{os.pathsep}{os.environ['PATH']}")
        return world
    return make


@pytest.fixture(params=["4", "7"], ids=["legacy", "o7"])
def vz(request: pytest.FixtureRequest, make_world: Callable[[str], VzWorld]) -> VzWorld:
    """A world on each version: vzctl 4.x and OpenVZ 7."""
    return make_world(request.param)


@pytest.fixture
def legacy(make_world: Callable[[str], VzWorld]) -> VzWorld:
    return make_world("4")


@pytest.fixture
def o7(make_world: Callable[[str], VzWorld]) -> VzWorld:
    return make_world("7")
