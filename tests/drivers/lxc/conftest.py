"""Fixtures for tests on the real host: a private lxcpath, a private bridge on 10.123.N.0/24,
unique name prefixes, and cleanup that runs even when a test fails.

Everything is created under the test's temp dir (`-P` on every tool), so /var/lib/lxc and
other people's containers are never looked at. Network traffic goes only to our own bridge.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxc_support import Bridge, HostWorld, free_net, lxc_unavailable, run


@pytest.fixture
def lxc_host() -> None:
    reason = lxc_unavailable()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def bridge(lxc_host: None, prefix: str) -> Iterator[Bridge]:
    br = Bridge(f"{prefix}br", free_net())
    run("ip", "link", "add", br.name, "type", "bridge", check=True)
    try:
        run("ip", "addr", "add", f"{br.gateway}/24", "dev", br.name, check=True)
        run("ip", "link", "set", br.name, "up", check=True)
        yield br
    finally:
        run("ip", "link", "del", br.name)


@pytest.fixture
def prefix() -> str:
    return f"rt{uuid.uuid4().hex[:6]}"


@pytest.fixture
def world(lxc_host: None, tmp_path: Path, prefix: str) -> Iterator[HostWorld]:
    w = HostWorld(tmp_path, prefix)
    try:
        yield w
    finally:
        w.cleanup()
