"""The preview never misstates: the same edits of an applied OpenVZ guest, planned on the real
openvz driver (legacy simulator) and on `sim` imitating OpenVZ, give the same action, update
class and steps; what OpenVZ cannot do is refused on both."""

from __future__ import annotations

from typing import Any

from openvz_support import OTHER_TEMPLATE, VzWorld

from reconciler.engine.config import Config
from reconciler.engine.plan import Plan
from tests.conformance.harness import apply_pass, plan_pass


def _decision(plan: Plan, name: str) -> tuple[str, str | None, list[str], list[str]]:
    obj = next(o for o in plan.objects if o.ref.name == name)
    return (obj.action, obj.update, [s.kind for s in plan.steps if s.ref.name == name],
            [r.field for r in obj.refusals])


def test_sim_plans_what_the_openvz_driver_plans_for_each_edit(legacy: VzWorld) -> None:
    name = legacy.name("pv")
    base = legacy.spec(name, interfaces=[{"type": "routed", "ip": ["10.3.0.2/24"]}])
    legacy.write(name, base)
    legacy.apply()
    real = legacy.config()
    sim = Config(state_dir=str(legacy.state.parent / "sim-state"), driver="sim",
                 driver_chosen=True)
    apply_pass(sim, legacy.specs)  # the same guest on the simulated host
    edits: dict[str, dict[str, Any]] = {
        "memory": {"memory": "192MiB"},
        "cpu": {"cpu": {"shares": 300, "limit": 50, "count": 2}},
        "hostname": {"hostname": "renamed"},
        "dns": {"dns": {"nameservers": ["192.0.2.53"], "search": ["example.org"]}},
        "autostart": {"autostart": True},
        "limits": {"limits": {"numproc": [400, 400]}},
        "quota": {"quota": {"space": ["1GiB", "2GiB"], "inodes": [1000, 2000]}},
        "ugid": {"quota": {"ugid_limit": 50}},
        "nics": {"interfaces": [{"type": "routed", "ip": ["10.3.0.2/24", "10.3.0.3/24"]},
                                {"type": "bridge", "source": "br0", "guest_dev": "eth0"}]},
        "description": {"description": "the web box"},
        "template": {"filesystems": [{"type": "template", "name": OTHER_TEMPLATE,
                                      "target": "/"}]},
        "stopped": {"state": "stopped"},
        "users": {"quota": {"users": [{"uid": 500, "space": "1GiB"}]}},
        "order": {"start_order": 2},
    }
    seen = {}
    for what, change in edits.items():
        legacy.write(name, {**base, **change})
        on_real = _decision(plan_pass(real, legacy.specs), name)
        on_sim = _decision(plan_pass(sim, legacy.specs), name)
        assert on_sim == on_real, (what, on_sim, on_real)
        seen[what] = on_real[:2]
    assert seen == {
        "memory": ("update", "live"), "cpu": ("update", "live"),
        "hostname": ("update", "live"), "dns": ("update", "live"),
        "autostart": ("update", "live"), "limits": ("update", "live"),
        "quota": ("update", "live"), "ugid": ("update", "restart"),
        "nics": ("update", "live"), "description": ("update", "live"),
        "template": ("refused", "recreate"), "stopped": ("update", "live"),
        "users": ("refused", "restart"), "order": ("refused", "restart")}
    # and each edit applies on the real host as planned (the live ones without a restart)
    for what in ("memory", "cpu", "dns", "limits", "quota", "nics"):
        legacy.write(name, {**base, **edits[what]})
        legacy.apply()
        assert plan_pass(real, legacy.specs).steps == (), what
    assert legacy.boots(legacy.ctid(name)) == 1
