"""Fixtures for the libvirt driver tests: what is available here, unique name prefixes, and
clean-up that runs even when a test fails."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.libvirt_harness import (
    LXC_URI,
    TEST_URI,
    load_libvirt,
    lxc_reason,
    remove_all,
)


@pytest.fixture(scope="session")
def lv() -> Any:
    module = load_libvirt()
    if module is None:
        pytest.skip("libvirt-python is not installed (pip install '.[libvirt]' from the checkout)")
    return module


@pytest.fixture(scope="session")
def lxc_ready(lv: Any) -> str:
    reason = lxc_reason()
    if reason:
        pytest.skip(reason)
    return LXC_URI


@pytest.fixture
def prefix() -> str:
    return f"lvt{uuid.uuid4().hex[:6]}"


@pytest.fixture
def test_conn(lv: Any, prefix: str) -> Iterator[Any]:
    """A test:///default connection held for the whole test (the in-process state lives while
    one is open); everything named PREFIX* is removed afterwards."""
    conn = lv.open(TEST_URI)
    try:
        yield conn
    finally:
        remove_all(conn, lv, prefix)
        conn.close()


@pytest.fixture
def lxc_conn(lv: Any, lxc_ready: str, prefix: str, tmp_path: Path) -> Iterator[Any]:
    """A connection to the real libvirtd; every domain and network named PREFIX* is destroyed
    and undefined afterwards, pass or fail."""
    conn = lv.open(lxc_ready)
    try:
        yield conn
    finally:
        remove_all(conn, lv, prefix)
        conn.close()
        shutil.rmtree(tmp_path / "roots", ignore_errors=True)
