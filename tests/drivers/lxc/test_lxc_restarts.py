"""Restart policy and health-gated apply on real LXC containers: a deferred change is
written while the container keeps its init, and is live after its next boot; a change whose
health check fails is rolled back and not tried again until its spec changes."""

from __future__ import annotations

import json
from pathlib import Path

from lxc_support import Bridge, HostWorld

# the container's init: a web server on the port given, then busybox init
SERVE = """#!/bin/sh
busybox httpd -p "$1" -h /
exec /sbin/init
"""


def serving(world: HostWorld, bridge: Bridge, name: str, port: int, **extra: object
            ) -> dict[str, object]:
    (world.bootdir / "serve").write_text(SERVE)
    (world.bootdir / "serve").chmod(0o755)
    return world.spec(name, init={"cmd": "/boot/serve", "args": [str(port)]},
                      interfaces=[{"type": "bridge", "source": bridge.name,
                                   "guest_dev": "eth0", "ip": [f"{bridge.ip(20)}/24"]}],
                      **extra)


def marks(world: HostWorld) -> dict[str, dict[str, object]]:
    path = world.state / "marks.json"
    return json.loads(path.read_text()) if path.exists() else {}


def test_deferred_change_keeps_the_init_and_is_live_after_the_next_boot(
        world: HostWorld) -> None:
    name = world.name("defer")
    world.write(name, world.spec(name, hostname="before", restart="defer"))
    world.apply()
    world.settle(name)
    pid = world.pid(name)
    world.write(name, world.spec(name, hostname="after", restart="defer"))
    plan, _ = world.apply()
    [obj] = [o for o in plan.objects if o.ref.name == name]
    assert obj.update == "deferred" and obj.pending == ("hostname",)
    assert [s.kind for s in plan.steps] == ["update"]
    assert "lxc.uts.name = after" in world.config_text(name)  # written ...
    assert world.state_of(name) == "RUNNING" and world.pid(name) == pid  # ... same init
    assert world.attach(name, "hostname").strip() == "before"
    assert marks(world)["pending"][f"domain/{name}"]["fields"] == ["hostname"]
    again = world.plan()
    assert [o.action for o in again.objects if o.ref.name == name] == ["pending"]
    assert again.steps == ()

    # the container's next boot (by hand, behind our back) makes it live
    assert world.lxc("lxc-stop", name, "-k").returncode == 0
    assert world.lxc("lxc-start", name, "-d").returncode == 0
    world.settle(name)
    assert world.attach(name, "hostname").strip() == "after"
    after = world.plan()
    assert [o.action for o in after.objects if o.ref.name == name] == ["noop"]
    world.apply()
    assert f"domain/{name}" not in marks(world).get("pending", {})


def test_a_failed_health_check_is_rolled_back_and_not_retried(
        world: HostWorld, bridge: Bridge) -> None:
    name = world.name("health")
    health = {"tcp": 8080, "timeout": 8}
    world.write(name, serving(world, bridge, name, 8080, health=health))
    plan, _ = world.apply()  # its init serves 8080: healthy
    assert [s.kind for s in plan.steps if s.ref.name == name][-1] == "verify"
    # the new spec's init serves another port: the check on 8080 fails
    world.write(name, serving(world, bridge, name, 9090, health=health))
    plan, report = world.apply(ok=False)
    verify = report.outcomes[f"domain/{name}:verify"]
    assert verify.result == "failed" and verify.rolled_back
    assert "health check failed" in (verify.error or "")
    assert "lxc.init.cmd = /boot/serve 8080" in world.config_text(name)  # the old config
    assert world.state_of(name) == "RUNNING"
    world.settle(name)
    assert "httpd -p 8080" in world.attach(name, "ps")
    assert marks(world)["rolled_back"][f"domain/{name}"]["reason"].startswith(
        "health check failed")
    # the same spec is not tried again
    again, report = world.apply()
    assert [o.action for o in again.objects if o.ref.name == name] == ["rolled_back"]
    assert again.steps == ()
    # a changed spec is
    world.write(name, serving(world, bridge, name, 8080, health=health, hostname="fixed"))
    plan, _ = world.apply()
    assert "lxc.uts.name = fixed" in world.config_text(name)
    assert f"domain/{name}" not in marks(world).get("rolled_back", {})
    Path(world.bootdir / "serve").unlink()
