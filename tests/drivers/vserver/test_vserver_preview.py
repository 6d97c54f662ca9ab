"""The preview never misstates: the same edits of an applied VServer guest, planned on the
vserver driver (simulated util-vserver host) and on `sim` imitating it (its default for
vserver guests), give the same action, update class and steps; what VServer cannot do is
refused on both."""

from __future__ import annotations

from typing import Any

from vserver_support import ROOT, VsWorld

from reconciler.engine.config import Config
from reconciler.engine.plan import Plan
from tests.conformance.harness import apply_pass, plan_pass


def _decision(plan: Plan, name: str) -> tuple[str, str | None, list[str], list[str]]:
    obj = next(o for o in plan.objects if o.ref.name == name)
    return (obj.action, obj.update, [s.kind for s in plan.steps if s.ref.name == name],
            [r.field for r in obj.refusals])


def test_sim_plans_what_the_vserver_driver_plans_for_each_edit(world: VsWorld) -> None:
    world.policy = {"mount_roots": [str(world.specs.parent)]}
    base = world.spec("pv", scheduler={"fill_rate": 10, "interval": 100},
                      interfaces=[{"type": "routed", "host_dev": "eth0",
                                   "ip": ["10.0.0.5/24"]}])
    world.write("pv", base)
    world.write("dep", world.spec("dep"))
    world.apply()
    real = world.config()
    sim = Config(state_dir=str(world.specs.parent / "sim-state"), driver="sim",
                 driver_chosen=True, policy=real.policy)
    apply_pass(sim, world.specs)  # the same guests, applied on the simulated host
    shared = str(world.specs.parent)
    edits: dict[str, dict[str, Any]] = {
        "hostname": {"hostname": "renamed"},
        "arch": {"arch": "i686"},
        "scheduler": {"scheduler": {"fill_rate": 20, "interval": 100,
                                    "cpus": {1: {"fill_rate": 5}}}},
        "interfaces": {"interfaces": [{"type": "routed", "ip": ["2001:db8::5/64"]}]},
        "memory": {"memory": "64MiB"},
        "limits": {"limits": {"numproc": [100, 200]}},
        "autostart": {"autostart": True},
        "depends_on": {"depends_on": ["dep"]},
        "init": {"init": {"cmd": "/sbin/init"}},
        "mount": {"filesystems": [ROOT, {"source": shared, "target": "/shared"}]},
        "id": {"id": 77},
        "root": {"filesystems": [{**ROOT, "method": "debootstrap", "name": "bookworm"}]},
        "bridge": {"interfaces": [{"type": "bridge", "source": "br0"}]},
        "cpu": {"cpu": {"shares": 512}},
        "stopped": {"state": "stopped"},
    }
    seen = {}
    for what, change in edits.items():
        world.write("pv", {**base, **change})
        on_real = _decision(plan_pass(real, world.specs), "pv")
        on_sim = _decision(plan_pass(sim, world.specs), "pv")
        assert on_sim == on_real, (what, on_sim, on_real)
        seen[what] = on_real[:3]
    live = ("update", "live", ["update"])
    restart = ("update", "restart", ["stop", "update", "start"])
    assert seen == {
        "hostname": live, "arch": live, "scheduler": live, "interfaces": live,
        "memory": live, "limits": live, "autostart": live, "depends_on": live,
        "init": restart, "mount": restart, "id": restart,
        "root": ("refused", "recreate", []),  # a new root is a new guest: allow_replace
        "bridge": ("refused", "live", []), "cpu": ("refused", "restart", []),
        "stopped": ("update", "live", ["stop"]),
    }
