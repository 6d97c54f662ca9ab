"""`reconciler import --driver lxc` on containers made by hand, then `plan` over the result:
no changes, and the containers are managed from then on (import adopts, like Terraform)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from lxc_support import Bridge, HostWorld


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler", "--log-format", "json", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_import_three_handmade_containers_then_plan_is_empty(world: HostWorld,
                                                             bridge: Bridge) -> None:
    a, b, c = world.name("a"), world.name("b"), world.name("c")
    shared = world.lxcpath.parent / "shared"
    shared.mkdir()
    world.make_foreign(a, config=(
        f"lxc.net.0.type = veth\nlxc.net.0.link = {bridge.name}\nlxc.net.0.flags = up\n"
        f"lxc.net.0.name = eth0\nlxc.net.0.ipv4.address = {bridge.ip(31)}/24\n"
        f"lxc.net.0.ipv4.gateway = {bridge.gateway}\n"
        "lxc.cgroup.memory.limit_in_bytes = 64M\n"))
    world.make_foreign(b, config=(
        "lxc.start.auto = 1\nlxc.start.order = 20\n"
        f"lxc.mount.entry = {shared} srv none ro,bind,create=dir 0 0\n"), start=False)
    world.make_foreign(c, config=(
        "lxc.cgroup.cpu.shares = 200\nlxc.environment = MODE=test\n"
        "lxc.mount.entry = tmpfs run/scratch tmpfs size=8m,create=dir 0 0\n"))
    # a hand edit after creation, as admins do
    conf = world.lxcpath / c / "config"
    conf.write_text(conf.read_text().replace(f'lxc.uts.name = "{c}"', "lxc.uts.name = cee"))

    out = world.lxcpath.parent / "imported"
    # Containers made with lxc-create run privileged and bind-mount the host's libraries (the
    # busybox template does): managing them needs the host policy to allow both, said here
    allowed = world.lxcpath.parent / "agent.yaml"
    allowed.write_text(yaml.safe_dump({"policy": {
        "privileged": True,
        "mount_roots": ["/lib", "/usr/lib", "/lib64", "/usr/lib64", str(shared)]}}))
    common = ["--driver", "lxc", "--lxcpath", str(world.lxcpath), "--config", str(allowed)]
    imported = cli("import", *common, "--out", str(out), "--state-dir", str(world.state))
    assert imported.returncode == 0, imported.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"{a}.yaml", f"{b}.yaml", f"{c}.yaml"]

    spec_a = yaml.safe_load((out / f"{a}.yaml").read_text())
    assert spec_a["memory"] == "64MiB"
    assert spec_a["interfaces"] == [{"type": "bridge", "source": bridge.name,
                                     "guest_dev": "eth0", "ip": [f"{bridge.ip(31)}/24"],
                                     "gateway": bridge.gateway}]
    spec_b = yaml.safe_load((out / f"{b}.yaml").read_text())
    assert spec_b["state"] == "stopped" and spec_b["autostart"] is True
    assert {"source": str(shared), "target": "/srv", "readonly": True} in spec_b["filesystems"]
    spec_c = yaml.safe_load((out / f"{c}.yaml").read_text())
    assert spec_c["hostname"] == "cee" and spec_c["cpu"]["shares"] == 200
    assert spec_c["init"] == {"env": {"MODE": "test"}}
    assert {"type": "ram", "target": "/run/scratch", "size": "8MiB"} in spec_c["filesystems"]
    for spec in (spec_a, spec_b, spec_c):
        assert spec["filesystems"][0] == {"type": "template", "name": "busybox", "target": "/"}

    # adopted: a stamp holding exactly the imported spec
    for name in (a, b, c):
        stamp = json.loads((world.lxcpath / name / "reconciler.json").read_text())
        assert stamp["owner"] == "reconciler"

    planned = cli("plan", str(out), *common, "--state-dir", str(world.state),
                  "--detailed-exitcode", "--format", "json")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["steps"] == [] and plan["summary"]["refused"] == 0
    assert sorted(plan["unchanged"]) == [f"domain/{n}" for n in sorted((a, b, c))]

    # managed from now on: a change to an imported spec is planned and applied live
    spec_a["memory"] = "96MiB"
    (out / f"{a}.yaml").write_text(yaml.safe_dump(spec_a))
    planned = cli("plan", str(out), *common, "--state-dir", str(world.state),
                  "--detailed-exitcode")
    assert planned.returncode == 2, planned.stdout + planned.stderr
    applied = cli("apply", str(out), *common, "--state-dir", str(world.state), "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert world.cgroup(a, "memory.limit_in_bytes") == str(96 << 20)
    assert world.state_of(b) == "STOPPED" and world.state_of(c) == "RUNNING"
    assert cli("plan", str(out), *common, "--state-dir", str(world.state),
               "--detailed-exitcode").returncode == 0

    # importing again is harmless: owned containers come back with the same specs
    again = cli("import", *common, "--out", str(world.lxcpath.parent / "again"),
                "--state-dir", str(world.state))
    assert again.returncode == 0, again.stderr
    assert yaml.safe_load((world.lxcpath.parent / "again" / f"{a}.yaml").read_text()) == \
        spec_a


def test_import_skips_containers_someone_else_stamped(world: HostWorld, tmp_path: Path) -> None:
    name = world.name("o")
    world.make_foreign(name, start=False)
    (world.lxcpath / name / "reconciler.json").write_text(
        json.dumps({"owner": "someone-else", "source": None, "spec": {}}))
    specs = world.driver().import_specs().specs
    assert specs == []
    assert json.loads((world.lxcpath / name / "reconciler.json").read_text())["owner"] == \
        "someone-else"


def test_import_can_leave_ownership_alone(world: HostWorld) -> None:
    name = world.name("n")
    world.make_foreign(name, start=False)
    [spec] = world.driver().import_specs(adopt=False).specs
    assert spec["name"] == name and spec["state"] == "stopped"
    assert not (world.lxcpath / name / "reconciler.json").exists()
    [spec] = world.driver().import_specs(names=[name], out=str(world.specs)).specs
    stamp = json.loads((world.lxcpath / name / "reconciler.json").read_text())
    assert stamp["source"] == str(world.specs / f"{name}.yaml")
