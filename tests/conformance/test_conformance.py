"""The driver conformance suite: one set of scenarios every driver must pass unchanged.

Each scenario writes specs, plans and applies through the engine, then checks the HOST through
the harness (never through the engine's own view). Drivers plug in via `harness` fixtures:
`sim` here; real drivers add theirs in conftest files next to their tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.engine.apply import ApplyReport
from reconciler.engine.plan import Plan

from .harness import Harness, apply_pass, plan_pass


class World:
    """A spec directory, a state directory and a driver under test."""

    def __init__(self, harness: Harness, tmp: Path) -> None:
        self.h = harness
        self.specs = tmp / "specs"
        self.state = tmp / "state"
        self.specs.mkdir()
        self.state.mkdir(exist_ok=True)

    def write(self, name: str, spec: dict[str, Any]) -> None:
        (self.specs / f"{name}.yaml").write_text(yaml.safe_dump(spec))

    def remove(self, name: str) -> None:
        (self.specs / f"{name}.yaml").unlink()

    def plan(self) -> Plan:
        return plan_pass(self.h.config(self.state), self.specs)

    def apply(self) -> tuple[Plan, ApplyReport]:
        plan, report = apply_pass(self.h.config(self.state), self.specs)
        assert report.ok, {k: v.error for k, v in report.outcomes.items() if v.error}
        return plan, report


def actions(plan: Plan) -> dict[str, str]:
    return {o.ref.name: o.action for o in plan.objects if o.action != "noop"}


def step_kinds(plan: Plan, name: str) -> list[str]:
    return [s.kind for s in plan.steps if s.ref.name == name]


@pytest.fixture
def world(harness: Harness, tmp_path: Path) -> Any:
    w = World(harness, tmp_path)
    yield w
    harness.cleanup()


def test_create_reaches_running(world: World) -> None:
    name = f"{world.h.prefix}a"
    world.write(name, world.h.spec(name))
    plan, _ = world.apply()
    assert actions(plan) == {name: "create"}
    assert step_kinds(plan, name) == ["provision", "define", "start"]
    facts = world.h.facts(name)
    assert facts.exists and facts.running and facts.boots == 1


def test_live_change_without_restart(world: World) -> None:
    name = f"{world.h.prefix}b"
    world.write(name, world.h.spec(name))
    world.apply()
    change, field, _ = world.h.live_change()
    world.write(name, world.h.spec(name, **change))
    plan, _ = world.apply()
    obj = next(o for o in plan.objects if o.ref.name == name)
    assert (obj.action, obj.update) == ("update", "live")
    assert [c.field for c in obj.changes] == [field]
    assert step_kinds(plan, name) == ["update"]
    facts = world.h.facts(name)
    assert facts.running and facts.boots == 1


def test_restart_change_restarts_exactly_once(world: World) -> None:
    name = f"{world.h.prefix}c"
    world.write(name, world.h.spec(name))
    world.apply()
    change, field, _ = world.h.restart_change()
    world.write(name, world.h.spec(name, **change))
    plan, _ = world.apply()
    obj = next(o for o in plan.objects if o.ref.name == name)
    assert (obj.action, obj.update) == ("update", "restart")
    assert field in [c.field for c in obj.changes]
    assert step_kinds(plan, name) == ["stop", "update", "start"]
    facts = world.h.facts(name)
    assert facts.running and facts.boots == 2


def test_replace_refused_without_opt_in(world: World) -> None:
    name = f"{world.h.prefix}d"
    spec = world.h.spec(name)
    world.write(name, spec)
    world.apply()
    before = world.h.facts(name)
    world.write(name, world.h.replace_change(spec))
    plan, _ = world.apply()
    obj = next(o for o in plan.objects if o.ref.name == name)
    assert obj.action == "refused" and obj.update == "recreate"
    assert "allow_replace" in obj.notes[0]
    assert step_kinds(plan, name) == []
    assert world.h.facts(name) == before


def test_stop_via_spec(world: World) -> None:
    name = f"{world.h.prefix}e"
    world.write(name, world.h.spec(name))
    world.apply()
    world.write(name, world.h.spec(name, state="stopped"))
    plan, _ = world.apply()
    assert step_kinds(plan, name) == ["stop"]
    facts = world.h.facts(name)
    assert facts.exists and not facts.running


def test_removal_keeps_data(world: World) -> None:
    name = f"{world.h.prefix}f"
    keep = f"{world.h.prefix}g"
    world.write(name, world.h.spec(name))
    world.write(keep, world.h.spec(keep))
    world.apply()
    world.remove(name)
    plan, _ = world.apply()
    assert actions(plan) == {name: "remove"}
    assert step_kinds(plan, name) == ["stop", "undefine"]
    facts = world.h.facts(name)
    assert not facts.exists and facts.data
    assert world.h.facts(keep).running


def test_purge_only_on_opt_in(world: World) -> None:
    name = f"{world.h.prefix}h"
    world.write(name, world.h.spec(name, removal="purge"))
    world.apply()
    world.write(name, world.h.spec(name, removal="purge", state="absent"))
    plan, _ = world.apply()
    assert step_kinds(plan, name) == ["stop", "purge"]
    facts = world.h.facts(name)
    assert not facts.exists and not facts.data


def test_apply_twice_second_plan_empty(world: World) -> None:
    names = [f"{world.h.prefix}i{n}" for n in range(3)]
    for name in names:
        world.write(name, world.h.spec(name))
    world.apply()
    plan = world.plan()
    assert plan.steps == ()
    assert actions(plan) == {}


def test_drift_is_reverted(world: World) -> None:
    name = f"{world.h.prefix}j"
    world.write(name, world.h.spec(name))
    world.apply()
    world.h.tamper_stop(name)
    assert not world.h.facts(name).running
    plan, _ = world.apply()
    obj = next(o for o in plan.objects if o.ref.name == name)
    assert [(c.field, c.origin) for c in obj.changes] == [("state", "drift")]
    assert world.h.facts(name).running


def test_objects_we_do_not_own_are_untouched(world: World) -> None:
    foreign = f"{world.h.prefix}k"
    world.h.make_foreign(foreign)
    before = world.h.facts(foreign)
    mine = f"{world.h.prefix}l"
    world.write(mine, world.h.spec(mine))
    world.apply()
    # same name in the specs: still refused, never adopted silently
    world.write(foreign, world.h.spec(foreign))
    plan = world.plan()
    assert actions(plan)[foreign] == "refused"
    assert step_kinds(plan, foreign) == []
    assert world.h.facts(foreign) == before


def test_ids_allocated_and_kept(world: World) -> None:
    if not world.h.allocates_ids:
        pytest.skip(f"{world.h.name} guests have no numeric ids")
    a, b = f"{world.h.prefix}m", f"{world.h.prefix}n"
    world.write(a, world.h.spec(a))
    world.write(b, world.h.spec(b))
    world.apply()
    ids = {world.h.facts(a).values["id"], world.h.facts(b).values["id"]}  # type: ignore[index]
    assert len(ids) == 2 and all(isinstance(i, int) for i in ids)
    change, _, _ = world.h.live_change()
    world.write(a, world.h.spec(a, **change))
    world.apply()
    assert world.h.facts(a).values["id"] in ids  # type: ignore[index]
    assert world.plan().steps == ()
