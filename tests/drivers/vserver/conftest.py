"""Fixtures for the vserver driver's tests: a fresh simulated util-vserver host per test (under
tmp_path, removed with it), and the driver loadable by name (the CLI registers it for real)."""

from __future__ import annotations

from pathlib import Path

import pytest
from vserver_support import VsWorld

from reconciler import drivers
from reconciler.drivers.base import Driver
from tests.sims.vserver.host import VsHost


def _vserver() -> type[Driver]:
    from reconciler.drivers.vserver import VserverDriver
    return VserverDriver


@pytest.fixture(autouse=True)
def _registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(drivers.BUILTIN, "vserver", _vserver)


@pytest.fixture
def host(tmp_path: Path) -> VsHost:
    return VsHost(tmp_path / "host")


@pytest.fixture
def world(host: VsHost, tmp_path: Path) -> VsWorld:
    return VsWorld(host, tmp_path)
