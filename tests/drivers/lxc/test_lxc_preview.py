"""The preview never misstates: the same edits of an applied container, planned on the real
lxc driver and on `sim` imitating it, give the same action, update class and steps; and what
LXC cannot do is refused in the plan, never discovered at apply."""

from __future__ import annotations

import json
from typing import Any

import yaml
from lxc_support import HostWorld

from reconciler.engine.config import Config
from reconciler.engine.plan import Plan
from tests.conformance.harness import apply_pass, plan_pass
from tests.conftest import run_cli


def _decision(plan: Plan, name: str) -> tuple[str, str | None, list[str]]:
    obj = next(o for o in plan.objects if o.ref.name == name)
    return obj.action, obj.update, [s.kind for s in plan.steps if s.ref.name == name]


def test_sim_plans_what_real_lxc_plans_for_each_edit(world: HostWorld) -> None:
    name = world.name("pv")
    base = world.spec(name)
    world.write(name, base)
    world.apply()
    real = world.config()
    sim = Config(state_dir=str(world.lxcpath.parent / "sim-state"), driver="sim",
                 driver_chosen=True, drivers={"sim": {"imitate": {"lxc": "lxc"}}},
                 policy=real.policy)
    apply_pass(sim, world.specs)  # the same guest, applied on the simulated host
    shared = world.lxcpath.parent / "more"
    shared.mkdir()
    edits: dict[str, dict[str, Any]] = {
        "memory": {"memory": "192MiB"},
        "cpu.count": {"cpu": {"count": 2}},
        "cpu.shares": {"cpu": {"shares": 300}},
        "hostname": {"hostname": "renamed"},
        "dns": {"dns": {"nameservers": ["192.0.2.53"]}},
        "mount": {"filesystems": [*base["filesystems"],
                                  {"source": str(shared), "target": "/more"}]},
        "autostart": {"autostart": True},
        "init": {"init": {"cmd": "/boot/boot", "args": ["quiet"]}},
        "blkiotune": {"blkiotune": {"weight": 300}},
        "capabilities": {"capabilities": {"policy": "allow", "drop": ["net_raw"]}},
        "empty network": {"interfaces": [{"type": "empty"}]},
        "ram mode": {"filesystems": [*base["filesystems"],
                                     {"type": "ram", "target": "/run", "size": "8MiB",
                                      "mode": "0755"}]},
    }
    seen = {}
    for what, change in edits.items():
        world.write(name, {**base, **change})
        on_real = _decision(plan_pass(real, world.specs), name)
        on_sim = _decision(plan_pass(sim, world.specs), name)
        assert on_sim == on_real, (what, on_sim, on_real)
        seen[what] = on_real[1]
    assert seen == {"memory": "live", "cpu.count": "live", "cpu.shares": "live",
                    "hostname": "restart", "dns": "live", "mount": "restart",
                    "autostart": "live", "init": "restart", "blkiotune": "live",
                    "capabilities": "restart", "empty network": "restart",
                    "ram mode": "restart"}


def test_a_setting_lxc_cannot_have_is_refused_in_the_plan_and_others_apply(
        world: HostWorld) -> None:
    good, vz = world.name("ok"), world.name("vz")
    world.write(good, world.spec(good))
    world.write(vz, world.spec(vz, limits={"numproc": [65, 65]}))
    allowed = world.lxcpath.parent / "agent.yaml"
    allowed.write_text(yaml.safe_dump({"policy": {"mount_roots": [str(world.lxcpath.parent)],
                                                  "privileged": True}}))
    common = ["--driver", "lxc", "--lxcpath", str(world.lxcpath), "--state-dir",
              str(world.state), "--config", str(allowed)]
    planned = run_cli("plan", str(world.specs), *common, "--format", "json")
    assert planned.returncode == 1, planned.stderr
    [obj] = [o for o in json.loads(planned.stdout)["objects"] if o["name"] == vz]
    assert obj["action"] == "refused"
    assert [(r["field"], r["reason"]) for r in obj["refusals"]] == [("limits",
                                                                     "not an LXC setting")]
    applied = run_cli("apply", str(world.specs), *common, "--yes")
    assert applied.returncode == 1, applied.stdout + applied.stderr
    assert "refused: limits: not an LXC setting" in applied.stdout
    assert not (world.lxcpath / vz).exists()
    assert world.state_of(good) == "RUNNING"
