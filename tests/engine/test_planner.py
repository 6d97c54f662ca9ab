"""The planner, called directly: (desired specs, what the host holds) -> the plan's decision for
each object. Fast table-driven cases; the host is an observed map, never a driver call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciler.drivers.base import OWNER, LiveObject, Stamp
from reconciler.drivers.sim import SimDriver
from reconciler.engine.hosts import Hosts
from reconciler.engine.plan import Plan, Settings, desired_from, make_plan
from reconciler.model import KINDS, canonical
from reconciler.model.fields import Ref

IDMAP = [{"kind": "uid", "start": 0, "target": 100000, "count": 65536},
         {"kind": "gid", "start": 0, "target": 100000, "count": 65536}]
ROOT = {"type": "template", "name": "busybox", "target": "/"}


def dom(name: str, **more: Any) -> dict[str, Any]:
    return {"kind": "Domain", "name": name, "type": "lxc", "memory": "64MiB",
            "filesystems": [ROOT], "idmap": IDMAP, **more}


def net(name: str, **more: Any) -> dict[str, Any]:
    return {"kind": "Network", "name": name, **more}


def live(spec: dict[str, Any], *, state: str = "running", owner: str | None = OWNER,
         source: str | None = "/specs/x.yaml", applied: dict[str, Any] | None = None,
         **drift: Any) -> LiveObject:
    """An object on the host as a driver reports it: applied from `applied` (default: the
    spec itself), its live config that plus `drift`."""
    model = KINDS[spec["kind"]]
    last = canonical(model.model_validate(applied or spec))
    last.pop("kind", None)
    config = {**last, **drift}
    dtype = "network" if spec["kind"] == "Network" else spec["type"]
    stamp = Stamp(owner, source, last) if owner else None
    return LiveObject(Ref(spec["kind"], spec["name"]), dtype, state,  # type: ignore[arg-type]
                      config, stamp)


CASES: list[tuple[str, list[dict[str, Any]], list[LiveObject], dict[str, Any]]] = [
    ("new guest", [dom("a")], [],
     {"a": ("create", None, ["provision", "define", "start"])}),
    ("in sync", [dom("a")], [live(dom("a"))], {"a": ("noop", None, [])}),
    ("memory: a restart on libvirt LXC", [dom("a", memory="96MiB")], [live(dom("a"))],
     {"a": ("update", "restart", ["stop", "update", "start"])}),
    ("current memory: live", [dom("a", current_memory="32MiB")], [live(dom("a"))],
     {"a": ("update", "live", ["update"])}),
    ("drift is reverted", [dom("a")], [live(dom("a"), memory="1GiB")],
     {"a": ("update", "restart", ["stop", "update", "start"])}),
    ("stopped by spec", [dom("a", state="stopped")], [live(dom("a"))],
     {"a": ("update", "live", ["stop"])}),
    ("started again", [dom("a")], [live(dom("a"), state="stopped")],
     {"a": ("update", "live", ["start"])}),
    ("not ours: left alone", [dom("a", memory="96MiB")], [live(dom("a"), owner=None)],
     {"a": ("refused", None, [])}),
    ("spec removed: data kept", [dom("b"), dom("c")],
     [live(dom("a")), live(dom("b")), live(dom("c"))],
     {"a": ("remove", None, ["stop", "undefine"])}),
    ("spec removed, purge opted in", [dom("b"), dom("c")],
     [live(dom("a", removal="purge")), live(dom("b")), live(dom("c"))],
     {"a": ("remove", None, ["stop", "purge"])}),
    ("protected: never removed", [dom("b")], [live(dom("a", protect=True)), live(dom("b"))],
     {"a": ("refused", None, [])}),
    ("state absent, protect in the spec", [dom("a", protect=True, state="absent")],
     [live(dom("a", protect=True))], {"a": ("refused", None, [])}),
    ("state absent", [dom("a", state="absent"), dom("b")], [live(dom("a")), live(dom("b"))],
     {"a": ("remove", None, ["stop", "undefine"])}),
    ("breaker: three of four", [dom("d")],
     [live(dom(n)) for n in "abcd"], {"a": ("refused", None, [])}),
    ("uuid change: replace refused", [dom("a", uuid="8dfd44b3-1e76-d8d3-3515-0a2d98211ea0")],
     [live(dom("a"))], {"a": ("refused", "recreate", [])}),
    ("uuid change, replace allowed",
     [dom("a", uuid="8dfd44b3-1e76-d8d3-3515-0a2d98211ea0", allow_replace=True)],
     [live(dom("a"))],
     {"a": ("replace", "recreate", ["stop", "purge", "provision", "define", "start"])}),
    ("privileged: refused by the policy", [dom("a", idmap=[])], [],
     {"a": ("refused", None, [])}),
    ("a template libvirt cannot build: refused by the technology",
     [dom("a", filesystems=[{"type": "template", "name": "debian", "target": "/"}])], [],
     {"a": ("refused", None, [])}),
    ("network first", [net("n"), dom("a", interfaces=[{"type": "network", "source": "n"}])], [],
     {"n": ("create", None, ["define", "start"]),
      "a": ("create", None, ["provision", "define", "start"])}),
    ("held: its file failed to load", [], [live(dom("a"), source="/specs/broken.yaml")],
     {"a": ("held", None, [])}),
]


@pytest.fixture
def hosts(tmp_path: Path) -> Hosts:
    return Hosts({"sim": SimDriver(tmp_path)}, "sim")


def plan_for(hosts: Hosts, specs: list[dict[str, Any]], objects: list[LiveObject]) -> Plan:
    models = [KINDS[s["kind"]].model_validate(s) for s in specs]
    sources = {(m.kind, m.name): "/specs/x.yaml" for m in models}
    return make_plan(desired_from(models, sources), hosts,  # type: ignore[arg-type]
                     failed_files={"/specs/broken.yaml"}, roots=("/specs",),
                     settings=Settings(), observed={o.ref: ("sim", o) for o in objects})


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_planner_decides(hosts: Hosts, case: tuple[str, list[dict[str, Any]],
                                                  list[LiveObject], dict[str, Any]]) -> None:
    _, specs, objects, expected = case
    plan = plan_for(hosts, specs, objects)
    got = {o.ref.name: (o.action, o.update, [s.kind for s in plan.steps if s.ref == o.ref])
           for o in plan.objects}
    for name, want in expected.items():
        assert got[name] == want, (name, got[name])


def test_the_reasons_are_data(hosts: Hosts) -> None:
    debian = [{"type": "template", "name": "debian", "target": "/"}]
    plan = plan_for(hosts, [dom("a", idmap=[]), dom("b", filesystems=debian),
                            dom("c", uuid="8dfd44b3-1e76-d8d3-3515-0a2d98211ea0")],
                    [live(dom("c"))])
    why = {o.ref.name: [(r.cause, r.field, r.allow) for r in o.refusals] for o in plan.objects}
    assert why["a"] == [("policy", "idmap", "policy.privileged")]
    assert why["b"] == [("unsupported", "filesystems.0.name", None)]
    assert why["c"] == [("replace", "uuid", "allow_replace: true")]
    removed = plan_for(hosts, [dom("d")], [live(dom(n)) for n in "abcd"])
    assert removed.breaker and "3 of 4" in removed.breaker
    assert all(o.refusals[0].cause == "breaker" for o in removed.objects if o.ref.name != "d")


def test_a_move_the_cluster_made_is_a_note_not_a_change(hosts: Hosts) -> None:
    """An instance a cluster moved itself (an evacuation) plans nothing; the plan says so."""
    from dataclasses import replace

    moved = replace(live(dom("a")), extra={"moved_by_cluster": {"from": "m1", "to": "m2"}})
    plan = plan_for(hosts, [dom("a")], [moved])
    assert not plan.steps and [o.action for o in plan.objects] == ["noop"]
    assert plan.notes == ("domain/a: moved by the cluster from m1 to m2; its target still "
                          "holds, nothing to undo",)
