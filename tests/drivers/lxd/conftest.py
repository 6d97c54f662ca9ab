"""Fixtures for the lxd driver on real LXD daemons (tests/lxd/daemons.py): a standalone one
and a three-member cluster, each started once, on first use, in namespaces of its own, and
stopped at the end of the session. A test gets a unique name prefix; every instance and
network named with it is deleted after the test, whether it passed or not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lxd import daemons, support
from tests.lxd.world import World


def _lxd_installed() -> None:
    why = daemons.reason()
    if why:
        pytest.skip(why)


@pytest.fixture(scope="session")
def solo() -> daemons.Daemon:
    _lxd_installed()
    return daemons.shared_single()


@pytest.fixture(scope="session")
def lxd_cluster() -> daemons.LxdCluster:
    _lxd_installed()
    return daemons.shared_cluster()


def _world(daemon: daemons.Daemon, tmp: Path) -> Iterator[World]:
    world = World(daemon, support.prefix(), tmp, {})
    try:
        yield world
    finally:
        support.cleanup(daemon, world.prefix)


@pytest.fixture
def world(solo: daemons.Daemon, tmp_path: Path) -> Iterator[World]:
    yield from _world(solo, tmp_path)


@pytest.fixture
def cworld(lxd_cluster: daemons.LxdCluster, tmp_path: Path) -> Iterator[World]:
    yield from _world(lxd_cluster.first, tmp_path)
