"""The lxc driver on the real host: busybox containers under a private lxcpath, a private
bridge, and every outcome checked with the LXC tools or the files themselves."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from lxc_support import Bridge, HostWorld, run

from reconciler.drivers.base import Step
from reconciler.model.fields import Ref


def actions(plan: Any) -> dict[str, str]:
    return {o.ref.name: o.action for o in plan.objects if o.action != "noop"}


def kinds(plan: Any, name: str) -> list[str]:
    return [s.kind for s in plan.steps if s.ref.name == name]


def test_create_with_network_mount_and_dns(world: HostWorld, bridge: Bridge) -> None:
    name = world.name("net")
    shared = world.lxcpath.parent / "shared"
    shared.mkdir()
    (shared / "hello.txt").write_text("hello from the host\n")
    ip = bridge.ip(10)
    spec = world.spec(name, hostname="net-one", autostart=True, start_order=7,
                      cpu={"shares": 512}, console={"count": 2},
                      dns={"nameservers": [bridge.gateway], "search": ["test.internal"]})
    spec["filesystems"] += [{"source": str(shared), "target": "/srv/shared", "readonly": True},
                            {"type": "ram", "target": "/scratch", "size": "16MiB"}]
    spec["interfaces"] = [{"type": "bridge", "source": bridge.name, "guest_dev": "eth0",
                           "mac": "52:54:00:12:34:0a", "ip": [f"{ip}/24", "fd00:123::a/64"],
                           "gateway": bridge.gateway}]
    world.write(name, spec)
    plan, _ = world.apply()
    assert kinds(plan, name) == ["provision", "define", "start"]
    assert world.state_of(name) == "RUNNING"
    assert world.boots(name) == 1

    addr = world.attach(name, "ip", "addr", "show", "eth0")
    assert f"inet {ip}/24 brd {bridge.ip(255)}" in addr      # broadcast given explicitly
    assert "inet6 fd00:123::a/64" in addr and "52:54:00:12:34:0a" in addr
    assert f"default via {bridge.gateway}" in world.attach(name, "ip", "route")
    assert world.attach(name, "cat", "/srv/shared/hello.txt") == "hello from the host\n"
    assert world.lxc("lxc-attach", name, "--", "touch", "/srv/shared/x").returncode != 0
    assert "/scratch" in world.attach(name, "df", "/scratch")
    assert world.attach(name, "hostname").strip() == "net-one"
    assert f"nameserver {bridge.gateway}" in world.attach(name, "cat", "/etc/resolv.conf")
    assert world.cgroup(name, "cpu.shares") == "512"
    assert world.cgroup(name, "memory.limit_in_bytes") == str(128 << 20)
    ping = run("busybox", "ping", "-c1", "-W2", ip)   # host -> container, our bridge only
    assert ping.returncode == 0, ping.stdout

    # the sidecar next to the config: ownership stamp + last-applied spec
    sidecar = json.loads((world.lxcpath / name / "reconciler.json").read_text())
    assert sidecar["owner"] == "reconciler"
    assert sidecar["source"] == str(world.specs / f"{name}.yaml")
    assert sidecar["spec"]["interfaces"][0]["ip"] == [f"{ip}/24", "fd00:123::a/64"]

    # the template's own lines survive (clean halt signal, autodev, its mounts)
    config = world.config_text(name)
    for line in ("lxc.signal.halt = SIGUSR1", "lxc.autodev = 1",
                 "lxc.mount.entry = /lib lib none ro,bind 0 0"):
        assert line in config.splitlines()
    # applying again is a no-op: observe normalises what LXC and the template fill in
    assert world.plan().steps == ()


def test_memory_is_live_and_hostname_restarts_once(world: HostWorld) -> None:
    name = world.name("mem")
    world.write(name, world.spec(name, hostname="before"))
    world.apply()
    pid = world.pid(name)

    cpu = {"shares": 300, "cpuset": "0", "count": 1}
    world.write(name, world.spec(name, hostname="before", memory="192MiB", cpu=cpu,
                                 autostart=True))
    plan, _ = world.apply()
    obj = next(o for o in plan.objects if o.ref.name == name)
    assert (obj.action, obj.update) == ("update", "live")
    assert kinds(plan, name) == ["update"]
    assert world.cgroup(name, "memory.limit_in_bytes") == str(192 << 20)   # read back
    assert world.cgroup(name, "cpu.shares") == "300"
    assert world.cgroup(name, "cpuset.cpus") == "0"
    config = world.config_text(name).splitlines()
    assert "lxc.cgroup.memory.limit_in_bytes = 201326592" in config
    assert "lxc.start.auto = 1" in config          # only lxc-autostart reads it: live
    assert world.pid(name) == pid and world.boots(name) == 1             # no restart

    world.write(name, world.spec(name, hostname="after", memory="192MiB", cpu=cpu,
                                 autostart=True))
    plan, _ = world.apply()
    obj = next(o for o in plan.objects if o.ref.name == name)
    assert (obj.action, obj.update) == ("update", "restart")
    assert kinds(plan, name) == ["stop", "update", "start"]
    assert world.boots(name) == 2
    assert world.attach(name, "hostname").strip() == "after"
    # the memory limit set live is also in the config, so the restart kept it
    assert world.cgroup(name, "memory.limit_in_bytes") == str(192 << 20)
    assert world.plan().steps == ()

    # limits dropped from the spec go back to the host's defaults, live
    world.write(name, world.spec(name, hostname="after", memory="192MiB"))
    plan, _ = world.apply()
    assert kinds(plan, name) == ["update"]
    assert world.cgroup(name, "cpu.shares") == "1024"
    assert world.cgroup(name, "cpuset.cpus") == Path(
        "/sys/devices/system/cpu/online").read_text().strip()
    assert "lxc.cgroup.cpu.shares" not in world.config_text(name)
    assert world.boots(name) == 2


def test_interface_and_mount_changes_restart_once(
        world: HostWorld, bridge: Bridge) -> None:
    name = world.name("nic")
    world.write(name, world.spec(name))
    world.apply()
    ip = bridge.ip(20)
    spec = world.spec(name, interfaces=[{"type": "bridge", "source": bridge.name,
                                         "ip": [f"{ip}/24"]}])
    world.write(name, spec)
    plan, _ = world.apply()
    assert kinds(plan, name) == ["stop", "update", "start"]
    assert f"inet {ip}/24" in world.attach(name, "ip", "addr")
    assert world.boots(name) == 2

    # A mount added below the root keeps the root: the engine passes old and new values to
    # update_class, which tells it from a new root, so this is a restart, not a replace.
    extra = world.lxcpath.parent / "extra"
    extra.mkdir()
    (extra / "f").write_text("mounted\n")
    new = {**spec, "filesystems": [*spec["filesystems"],
                                   {"source": str(extra), "target": "/mnt/extra"}]}
    world.write(name, new)
    plan, _ = world.apply()
    obj = next(o for o in plan.objects if o.ref.name == name)
    assert (obj.action, obj.update) == ("update", "restart")
    assert kinds(plan, name) == ["stop", "update", "start"]
    assert world.attach(name, "cat", "/mnt/extra/f") == "mounted\n"
    assert world.plan().steps == ()


def test_stop_remove_keeps_data_recreate_reuses_it_then_purge(world: HostWorld) -> None:
    name = world.name("rm")
    keep = world.name("kp")  # an emptied spec directory removes nothing (safety breaker)
    world.write(name, world.spec(name))
    world.write(keep, world.spec(keep, state="stopped"))
    world.apply()
    rootfs = world.lxcpath / name / "rootfs"
    (rootfs / "root" / "keepme").write_text("data\n")

    world.write(name, world.spec(name, state="stopped"))
    plan, _ = world.apply()
    assert kinds(plan, name) == ["stop"]
    assert world.state_of(name) == "STOPPED"

    world.remove(name)
    plan, _ = world.apply()
    assert actions(plan) == {name: "remove"} and kinds(plan, name) == ["undefine"]
    assert not (world.lxcpath / name / "config").exists()          # config gone
    assert (rootfs / "root" / "keepme").read_text() == "data\n"     # rootfs kept
    assert name not in run("lxc-ls", "-P", str(world.lxcpath), "-1").stdout.split()
    assert world.plan().steps == ()                                  # nothing left to do

    # the spec comes back: the kept rootfs is reused, not rebuilt
    world.write(name, world.spec(name))
    plan, _ = world.apply()
    assert kinds(plan, name) == ["provision", "define", "start"]
    assert world.state_of(name) == "RUNNING"
    assert world.attach(name, "cat", "/root/keepme") == "data\n"
    assert world.boots(name) == 2

    world.write(name, world.spec(name, removal="purge", state="absent"))
    plan, _ = world.apply()
    assert kinds(plan, name) == ["stop", "purge"]
    assert not (world.lxcpath / name).exists()


def test_purge_after_undefine_erases_the_kept_rootfs(world: HostWorld) -> None:
    name = world.name("pu")
    keep = world.name("kp")
    world.write(name, world.spec(name))
    world.write(keep, world.spec(keep, state="stopped"))
    world.apply()
    world.remove(name)
    world.apply()
    assert (world.lxcpath / name / "rootfs").is_dir()
    ref = Ref("Domain", name)
    world.driver().execute(Step(id=f"{ref}:purge", kind="purge", ref=ref, type="lxc"))
    assert not (world.lxcpath / name).exists()


def test_drift_is_reverted(world: HostWorld) -> None:
    name = world.name("dr")
    world.write(name, world.spec(name, hostname="right"))
    world.apply()

    world.lxc("lxc-stop", name, "-k")                      # behind the agent's back
    plan, _ = world.apply()
    obj = next(o for o in plan.objects if o.ref.name == name)
    assert [(c.field, c.origin) for c in obj.changes] == [("state", "drift")]
    assert world.state_of(name) == "RUNNING"

    # hand edits: a managed limit, a managed hostname, and a key we do not manage
    path = world.lxcpath / name / "config"
    text = path.read_text().replace(f"limit_in_bytes = {128 << 20}",
                                    f"limit_in_bytes = {64 << 20}")
    text = text.replace("lxc.uts.name = right", "lxc.uts.name = wrong")
    path.write_text(text + "lxc.start.delay = 3\n")
    plan, _ = world.apply()
    obj = next(o for o in plan.objects if o.ref.name == name)
    assert {(c.field, c.origin) for c in obj.changes} == {("memory", "drift"),
                                                           ("hostname", "drift")}
    assert kinds(plan, name) == ["stop", "update", "start"]
    config = world.config_text(name).splitlines()
    assert f"lxc.cgroup.memory.limit_in_bytes = {128 << 20}" in config
    assert "lxc.uts.name = right" in config
    assert "lxc.start.delay = 3" in config                   # not ours: kept
    assert world.attach(name, "hostname").strip() == "right"
    assert world.plan().steps == ()


def test_live_drift_of_a_limit_is_pushed_without_restart(world: HostWorld) -> None:
    name = world.name("ld")
    world.write(name, world.spec(name))
    world.apply()
    path = world.lxcpath / name / "config"
    path.write_text(path.read_text().replace(f"limit_in_bytes = {128 << 20}",
                                             f"limit_in_bytes = {96 << 20}"))
    plan, _ = world.apply()
    assert kinds(plan, name) == ["update"]
    assert world.cgroup(name, "memory.limit_in_bytes") == str(128 << 20)
    assert world.boots(name) == 1


def test_a_container_we_do_not_own_is_never_touched(world: HostWorld) -> None:
    foreign = world.name("fx")
    world.make_foreign(foreign)
    before = world.config_text(foreign)
    pid = world.pid(foreign)
    mine = world.name("my")
    world.write(mine, world.spec(mine))
    world.write(foreign, world.spec(foreign, memory="64MiB"))
    plan, _ = world.apply()
    assert actions(plan)[foreign] == "refused"
    assert kinds(plan, foreign) == []
    # removing our spec removes ours; theirs stays refused and untouched
    world.remove(mine)
    plan, _ = world.apply()
    assert actions(plan) == {mine: "remove", foreign: "refused"}
    assert not (world.lxcpath / mine / "config").exists()
    assert world.config_text(foreign) == before
    assert world.pid(foreign) == pid and world.state_of(foreign) == "RUNNING"
    assert not (world.lxcpath / foreign / "reconciler.json").exists()


def test_clean_stop_is_quick_with_the_udhcpc_line_gone(world: HostWorld) -> None:
    world.options["stop_timeout"] = 20
    name = world.name("cs")
    world.write(name, world.spec(name))
    world.apply()
    rcs = (world.lxcpath / name / "rootfs" / "etc" / "init.d" / "rcS").read_text()
    assert "udhcpc" not in rcs and "/bin/mount -a" in rcs
    world.write(name, world.spec(name, state="stopped"))
    started = time.monotonic()
    world.apply()
    took = time.monotonic() - started
    assert world.state_of(name) == "STOPPED"
    assert took < 10, f"clean stop took {took:.1f} s (busybox init ignoring the halt?)"


def test_resume_after_a_crash_between_provision_and_define(world: HostWorld) -> None:
    name = world.name("cr")
    spec = world.spec(name, hostname="resumed")
    world.write(name, spec)
    plan = world.plan()
    provision = next(s for s in plan.steps if s.kind == "provision")
    world.driver().execute(provision)                # ... and the agent dies here
    plan, _ = world.apply()                          # next pass converges, no duplicates
    assert actions(plan) == {name: "update"}
    assert world.state_of(name) == "RUNNING"
    assert world.attach(name, "hostname").strip() == "resumed"
    assert world.plan().steps == ()
