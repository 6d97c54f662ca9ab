"""Health checks: after a guest starts, its `verify` step is done only once the check passes.

    health:
      tcp: 8080              # a TCP connection to the guest's address on this port succeeds
      address: 10.0.3.5      # optional: else the first address of the guest's interfaces
      command: [/bin/check]  # or: this exits 0 inside the guest (through its driver, no shell)
      timeout: 60            # seconds until the check has failed (default 60)

The check is tried every `INTERVAL` seconds until it passes or the timeout is over. What a
failure does (roll back to the last good spec) is apply's part; this module only answers
whether the guest is healthy, and why not.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from typing import Any

from reconciler.drivers.base import Driver, Step
from reconciler.errors import DriverError
from reconciler.rules import Refusal, Technology

INTERVAL = 1.0
DEFAULT_TIMEOUT = 60.0
_CONNECT = 2.0  # one TCP attempt


def address_of(spec: dict[str, Any]) -> str | None:
    """Where a TCP check connects: `health.address`, else the guest's first interface
    address (without its prefix)."""
    health = spec.get("health") or {}
    if health.get("address"):
        return str(health["address"])
    for nic in spec.get("interfaces", ()):
        for ip in nic.get("ip", ()):
            return str(ipaddress.ip_interface(ip).ip)
    return None


def refusals(spec: dict[str, Any], tech: Technology) -> list[Refusal]:
    """What of a spec's health check its technology cannot do (plan time)."""
    health = spec.get("health")
    if not health:
        return []
    out = []
    if health.get("command") and not tech.guest_exec:
        out.append(Refusal("health.command", f"{tech.name} cannot run a command inside a "
                           "guest; check a TCP port instead (health.tcp)"))
    if health.get("tcp") and address_of(spec) is None:
        out.append(Refusal("health.address", "a TCP check needs the guest's address: give "
                           "the guest an interface address or set health.address"))
    if spec.get("state", "running") != "running":
        out.append(Refusal("health", "a health check needs a running guest (state: running)"))
    return out


def check(step: Step, driver: Driver, stop: threading.Event) -> str | None:
    """None when the guest of `step` is healthy within its timeout, else why not."""
    spec = step.spec or {}
    health = spec.get("health") or {}
    timeout = float(health.get("timeout") or DEFAULT_TIMEOUT)
    deadline = time.monotonic() + timeout
    last = "not checked"
    while True:
        last = _once(step, driver, health, spec, max(deadline - time.monotonic(), 1.0)) or ""
        if not last:
            return None
        if time.monotonic() + INTERVAL >= deadline or stop.is_set():
            return f"health check failed after {timeout:g} s: {last}"
        stop.wait(INTERVAL)


def _once(step: Step, driver: Driver, health: dict[str, Any], spec: dict[str, Any],
          left: float) -> str | None:
    if health.get("tcp"):
        address, port = address_of(spec), int(health["tcp"])
        if address is None:
            return "no address to connect to"
        try:
            with socket.create_connection((address, port), timeout=min(_CONNECT, left)):
                return None
        except OSError as exc:
            return f"tcp {address} port {port}: {exc.strerror or exc}"
    argv = tuple(str(a) for a in health.get("command", ()))
    try:
        status = driver.run_in_guest(step.ref, argv, timeout=left)
    except DriverError as exc:
        return f"{argv[0] if argv else 'command'}: {exc}"
    return None if status == 0 else f"{argv[0]} exited {status}"
