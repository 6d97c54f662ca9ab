"""Restart policy and health-gated apply on a real LXD daemon: a deferred change is saved
while the container keeps running, and counts as live after its next start (LXD's
`last_used_at`); a health command runs inside the container through LXD's exec API, and a
change whose check fails is rolled back to the last good spec."""

from __future__ import annotations

import json
from typing import Any

from tests.lxd import support
from tests.lxd.support import kinds
from tests.lxd.world import World

# exits 0 inside the container only when the instance's environment says so
CHECK = ["/bin/sh", "-c", 'test "$MODE" = good']


def _marks(world: World) -> dict[str, Any]:
    path = world.tmp / "state" / "marks.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _action(plan: Any, name: str) -> str:
    return next(o.action for o in plan.objects if o.ref.name == name)


def test_a_deferred_change_is_saved_and_live_after_the_next_start(world: World) -> None:
    name = world.name("defer")
    world.write(name, support.spec(name, restart="defer", init={"env": {"MODE": "one"}}))
    world.apply()
    assert support.boots(world.daemon, name) == 1
    world.write(name, support.spec(name, restart="defer", init={"env": {"MODE": "two"}}))
    plan, _ = world.apply()
    obj = next(o for o in plan.objects if o.ref.name == name)
    assert obj.update == "deferred" and obj.pending == ("init.env",)
    assert kinds(plan, name) == ["update"]
    found = world.instance(name)
    assert found["config"]["environment.MODE"] == "two"  # saved ...
    assert found["status"] == "Running" and support.boots(world.daemon, name) == 1  # ... no restart
    assert _marks(world)["pending"][f"domain/{name}"]["fields"] == ["init.env"]
    world.daemon.lxc("exec", name, "--", "/bin/true")  # an exec is not a start
    again = world.plan()
    assert _action(again, name) == "pending" and again.steps == ()
    # a start behind our back makes it live
    world.daemon.lxc("restart", "--force", name)
    assert support.boots(world.daemon, name) == 2
    after = world.plan()
    assert _action(after, name) == "noop" and after.steps == ()
    world.apply()
    assert f"domain/{name}" not in _marks(world).get("pending", {})


def test_a_health_command_runs_inside_and_a_failed_one_is_rolled_back(world: World) -> None:
    name = world.name("health")
    health = {"command": CHECK, "timeout": 5}
    world.write(name, support.spec(name, health=health, init={"env": {"MODE": "good"}}))
    plan, _ = world.apply()
    assert kinds(plan, name)[-1] == "verify"  # passed: MODE is good inside
    world.write(name, support.spec(name, health=health, init={"env": {"MODE": "bad"}}))
    plan, report = world.apply(ok=False)
    verify = report.outcomes[f"domain/{name}:verify"]
    assert verify.result == "failed" and verify.rolled_back
    assert "health check failed" in (verify.error or "") and "exited 1" in (verify.error or "")
    found = world.instance(name)
    assert found["config"]["environment.MODE"] == "good"  # the last good spec is back
    assert found["status"] == "Running"
    assert _marks(world)["rolled_back"][f"domain/{name}"]["reason"].startswith(
        "health check failed")
    again = world.plan()
    assert _action(again, name) == "rolled_back" and again.steps == ()
    # a command that is not there fails the check too, with LXD's reason; so does one
    # still running at the timeout
    for attempt, command, why in ((2, ["/bin/nonexistent"], "/bin/nonexistent: "),
                                  (3, ["/bin/sleep", "30"], "did not finish in")):
        world.write(name, support.spec(name, health={"command": command, "timeout": 3},
                                       init={"env": {"MODE": "good", "TRY": str(attempt)}}))
        plan, report = world.apply(ok=False)
        verify = report.outcomes[f"domain/{name}:verify"]
        assert verify.result == "failed" and verify.rolled_back
        assert why in (verify.error or ""), verify.error
        assert world.instance(name)["config"].get("environment.TRY") != str(attempt)
