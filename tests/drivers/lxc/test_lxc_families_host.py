"""Block I/O tuning, capabilities, tmpfs mounts and NIC kinds on real LXC containers: each
applied from a spec and read back from the host (the container's cgroup, its init's
capability bounding set, its network namespace, its mount table); a container carrying them
all imports into specs whose plan is empty.

NIC parents are veth pairs the test makes (this kernel has no `dummy` driver), each named with
the test's prefix and deleted afterwards, pass or fail. Block devices are a loop device over a
file in the test's directory, with the BFQ scheduler (per-device weights are BFQ's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from lxc_support import Bridge, HostWorld, run

# Linux capability numbers (include/uapi/linux/capability.h)
CAP_BITS = {"chown": 0, "kill": 5, "setgid": 6, "setuid": 7, "net_bind_service": 10,
            "net_raw": 13, "sys_module": 16, "sys_chroot": 18, "sys_admin": 21,
            "sys_time": 25, "mknod": 27}


def kinds(plan: Any, name: str) -> list[str]:
    return [s.kind for s in plan.steps if s.ref.name == name]


def decision(plan: Any, name: str) -> tuple[str, str | None]:
    obj = next(o for o in plan.objects if o.ref.name == name)
    return obj.action, obj.update


def cap_bounding_set(pid: str) -> set[int]:
    status = Path(f"/proc/{pid}/status").read_text()
    mask = int(next(line.split()[1] for line in status.splitlines()
                    if line.startswith("CapBnd:")), 16)
    return {bit for bit in range(64) if mask >> bit & 1}


def links_inside(pid: str) -> dict[str, dict[str, Any]]:
    """The links of a container's network namespace, as the host's iproute2 reports them."""
    out = run("nsenter", f"--net=/proc/{pid}/ns/net", "ip", "-d", "-j", "link", "show",
              check=True).stdout
    return {link["ifname"]: link for link in json.loads(out)}


@dataclass(frozen=True)
class Veth:
    host: str   # the end left on the host (a macvlan or vlan parent)
    peer: str   # the other end (moved into a container as a phys NIC)


@pytest.fixture
def veths(lxc_host: None, prefix: str) -> Iterator[list[Veth]]:
    made: list[Veth] = []

    try:
        for n in range(2):
            pair = Veth(f"{prefix}h{n}", f"{prefix}p{n}")
            run("ip", "link", "add", pair.host, "type", "veth", "peer", "name", pair.peer,
                check=True)
            made.append(pair)
            run("ip", "link", "set", pair.host, "up", check=True)
        yield made
    finally:
        for pair in made:
            for name in (pair.host, pair.peer):
                run("ip", "link", "del", name)


@dataclass(frozen=True)
class Disk:
    path: str
    number: str  # MAJ:MIN


@pytest.fixture
def disk(lxc_host: None, tmp_path: Path) -> Iterator[Disk]:
    image = tmp_path / "disk.img"
    with open(image, "wb") as fh:
        fh.truncate(64 << 20)
    device = run("losetup", "--find", "--show", str(image), check=True).stdout.strip()
    try:
        name = os.path.basename(device)
        scheduler = Path(f"/sys/block/{name}/queue/scheduler")
        try:
            scheduler.write_text("bfq")
        except OSError as exc:
            pytest.skip(f"the BFQ I/O scheduler cannot be set on {device} ({exc.strerror}): "
                        "per-device blkio weights are BFQ's")
        number = Path(f"/sys/block/{name}/dev").read_text().strip()
        yield Disk(device, number)
    finally:
        run("losetup", "-d", device)


def allow_host_nics(world: HostWorld) -> None:
    world.policy = {"mount_roots": [str(world.lxcpath.parent)], "privileged": True,
                    "host_nics": True}


# ---------------------------------------------------------------------------- block I/O


def test_block_io_weights_and_throttles_reach_the_cgroup_and_change_live(
        world: HostWorld, disk: Disk) -> None:
    name = world.name("bio")
    device = f"/dev/block/{disk.number}"
    tune = {"weight": 300, "devices": [{"path": device, "weight": 500,
                                        "read_bytes_sec": 1048576, "write_iops_sec": 100}]}
    world.write(name, world.spec(name, blkiotune=tune))
    world.apply()
    assert world.cgroup(name, "blkio.bfq.weight") == "300"
    assert f"{disk.number} 500" in world.cgroup(name, "blkio.bfq.weight_device").splitlines()
    assert world.cgroup(name, "blkio.throttle.read_bps_device") == f"{disk.number} 1048576"
    assert world.cgroup(name, "blkio.throttle.write_iops_device") == f"{disk.number} 100"
    config = world.config_text(name).splitlines()
    assert "lxc.cgroup.blkio.bfq.weight = 300" in config
    assert f"lxc.cgroup.blkio.throttle.read_bps_device = {disk.number} 1048576" in config
    pid = world.pid(name)

    # a new weight and rate, a dropped throttle and device weight: live, through lxc-cgroup
    tune = {"weight": 600, "devices": [{"path": device, "read_bytes_sec": 2097152}]}
    world.write(name, world.spec(name, blkiotune=tune))
    plan, _ = world.apply()
    assert decision(plan, name) == ("update", "live") and kinds(plan, name) == ["update"]
    assert world.cgroup(name, "blkio.bfq.weight") == "600"
    assert world.cgroup(name, "blkio.throttle.read_bps_device") == f"{disk.number} 2097152"
    assert world.cgroup(name, "blkio.throttle.write_iops_device") == ""
    assert disk.number not in world.cgroup(name, "blkio.bfq.weight_device")
    assert world.pid(name) == pid and world.boots(name) == 1
    assert world.plan().steps == ()

    # and the config says the same, so the next start keeps it
    world.write(name, world.spec(name, blkiotune=tune, hostname="again"))
    world.apply()
    assert world.cgroup(name, "blkio.bfq.weight") == "600"
    assert world.cgroup(name, "blkio.throttle.read_bps_device") == f"{disk.number} 2097152"


# ---------------------------------------------------------------------------- capabilities


def test_dropped_capabilities_leave_the_bounding_set_and_deny_keeps_only_those(
        world: HostWorld) -> None:
    name = world.name("cap")
    allow = {"policy": "allow", "drop": ["mknod", "net_raw", "sys_module"]}
    world.write(name, world.spec(name, capabilities=allow))
    world.apply()
    bounding = cap_bounding_set(world.pid(name))
    assert not bounding & {CAP_BITS["mknod"], CAP_BITS["net_raw"], CAP_BITS["sys_module"]}
    # allow: every other one, sys_time too, which the busybox template drops by itself
    assert {CAP_BITS["sys_time"], CAP_BITS["sys_admin"], CAP_BITS["chown"]} <= bounding
    assert world.plan().steps == ()

    keep = ["chown", "kill", "net_bind_service", "setgid", "setuid", "sys_admin",
            "sys_chroot"]
    world.write(name, world.spec(name, capabilities={"policy": "deny", "keep": keep}))
    plan, _ = world.apply()
    assert decision(plan, name) == ("update", "restart")
    assert kinds(plan, name) == ["stop", "update", "start"]
    assert cap_bounding_set(world.pid(name)) == {CAP_BITS[c] for c in keep}
    assert world.plan().steps == ()


# ---------------------------------------------------------------------------- tmpfs


def test_a_ram_filesystem_gets_its_size_and_mode(world: HostWorld) -> None:
    name = world.name("ram")
    spec = world.spec(name)
    spec["filesystems"].append({"type": "ram", "target": "/run", "size": "8MiB",
                                "mode": "0750"})
    world.write(name, spec)
    world.apply()
    pid = world.pid(name)
    assert oct(os.stat(f"/proc/{pid}/root/run").st_mode & 0o7777) == "0o750"
    mounts = Path(f"/proc/{pid}/mounts").read_text().splitlines()
    [line] = [m for m in mounts if m.split()[1] == "/run"]
    options = set(line.split()[3].split(","))
    assert {"size=8192k", "mode=750", "nosuid", "nodev"} <= options
    assert world.plan().steps == ()


# ---------------------------------------------------------------------------- NICs


def test_bridge_macvlan_and_phys_nics_together(world: HostWorld, bridge: Bridge,
                                               veths: list[Veth]) -> None:
    allow_host_nics(world)
    name = world.name("nic")
    parent, moved = veths[0].host, veths[1].peer
    nics = [{"type": "bridge", "source": bridge.name, "guest_dev": "eth0",
             "ip": [f"{bridge.ip(40)}/24"]},
            {"type": "direct", "source": parent, "mode": "bridge", "guest_dev": "mv0",
             "mac": "52:54:00:77:00:01"},
            {"type": "hostdev", "source": moved}]
    world.write(name, world.spec(name, interfaces=nics))
    world.apply()
    links = links_inside(world.pid(name))
    assert links["eth0"]["linkinfo"]["info_kind"] == "veth"
    assert links["mv0"]["linkinfo"]["info_kind"] == "macvlan"
    assert links["mv0"]["linkinfo"]["info_data"]["mode"] == "bridge"
    assert links["mv0"]["address"] == "52:54:00:77:00:01"
    assert links["mv0"]["link_index"] == int(Path(f"/sys/class/net/{parent}/ifindex")
                                             .read_text())
    assert moved in links                                    # moved in, keeping its name
    assert not Path(f"/sys/class/net/{moved}").exists()      # and gone from the host
    assert world.plan().steps == ()

    # another macvlan mode is a restart (LXC reads NICs only at start)
    nics[1] = {**nics[1], "mode": "private"}
    world.write(name, world.spec(name, interfaces=nics))
    plan, _ = world.apply()
    assert decision(plan, name) == ("update", "restart")
    links = links_inside(world.pid(name))
    assert links["mv0"]["linkinfo"]["info_data"]["mode"] == "private"
    assert world.plan().steps == ()


def test_a_vlan_nic_appears_inside(world: HostWorld, veths: list[Veth]) -> None:
    probe = f"{world.prefix}vl"
    made = run("ip", "link", "add", "link", veths[0].host, "name", probe, "type", "vlan",
               "id", "7")
    if made.returncode != 0:
        pytest.skip("this kernel cannot make 802.1Q VLAN devices (built without "
                    f"CONFIG_VLAN_8021Q): `ip link add ... type vlan` says "
                    f"{made.stderr.strip()!r}")
    run("ip", "link", "del", probe)
    name = world.name("vln")
    world.write(name, world.spec(name, interfaces=[
        {"type": "vlan", "source": veths[0].host, "vlan": 7, "guest_dev": "v7"}]))
    world.apply()
    link = links_inside(world.pid(name))["v7"]
    assert link["linkinfo"]["info_kind"] == "vlan"
    assert link["linkinfo"]["info_data"]["id"] == 7
    assert world.plan().steps == ()


def test_empty_and_none_networks(world: HostWorld) -> None:
    allow_host_nics(world)
    empty, shared = world.name("emp"), world.name("hst")
    world.write(empty, world.spec(empty, interfaces=[{"type": "empty"}]))
    # in the host's network namespace nothing of busybox's boot runs: only a sleep
    world.write(shared, world.spec(shared, interfaces=[{"type": "none"}],
                                   init={"cmd": "/bin/sleep", "args": ["600"]}))
    world.apply()
    host_netns = os.readlink("/proc/self/ns/net")   # the network this test runs in
    empty_pid, shared_pid = world.pid(empty), world.pid(shared)
    assert os.readlink(f"/proc/{empty_pid}/ns/net") != host_netns
    assert list(links_inside(empty_pid)) == ["lo"]
    assert os.readlink(f"/proc/{shared_pid}/ns/net") == host_netns
    assert world.plan().steps == ()


def test_the_host_policy_refuses_the_hosts_network_unless_allowed(world: HostWorld) -> None:
    name = world.name("pol")
    world.write(name, world.spec(name, interfaces=[{"type": "none"}]))
    plan = world.plan()
    obj = next(o for o in plan.objects if o.ref.name == name)
    assert obj.action == "refused"
    assert [(r.field, r.allow) for r in obj.refusals] == [("interfaces.0", "policy.host_nics")]


# ---------------------------------------------------------------------------- import


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler", "--log-format", "json", *args],
                          capture_output=True, text=True, timeout=180, check=False)


def test_import_of_every_family_then_plan_is_empty(world: HostWorld, bridge: Bridge,
                                                   veths: list[Veth], disk: Disk) -> None:
    full, vlan, empty, shared = (world.name(s) for s in ("all", "vln", "emp", "hst"))
    world.make_foreign(full, config=(
        "lxc.cgroup.blkio.bfq.weight = 250\n"
        f"lxc.cgroup.blkio.bfq.weight_device = {disk.number} 400\n"
        f"lxc.cgroup.blkio.throttle.write_bps_device = {disk.number} 4194304\n"
        "lxc.cap.drop = net_raw mknod\n"
        "lxc.mount.entry = tmpfs run tmpfs size=8m,mode=0755,nodev,nosuid,create=dir 0 0\n"
        f"lxc.net.0.type = veth\nlxc.net.0.link = {bridge.name}\nlxc.net.0.flags = up\n"
        f"lxc.net.0.name = eth0\nlxc.net.0.ipv4.address = {bridge.ip(41)}/24\n"
        f"lxc.net.1.type = macvlan\nlxc.net.1.link = {veths[0].host}\n"
        "lxc.net.1.macvlan.mode = vepa\nlxc.net.1.flags = up\nlxc.net.1.name = mv0\n"
        f"lxc.net.2.type = phys\nlxc.net.2.link = {veths[1].peer}\nlxc.net.2.flags = up\n"
        "lxc.start.delay = 2\n"))
    # a VLAN NIC needs a kernel with 802.1Q to start; importing and planning need none
    world.make_foreign(vlan, config=(
        f"lxc.net.0.type = vlan\nlxc.net.0.link = {veths[0].host}\nlxc.net.0.vlan.id = 7\n"
        "lxc.net.0.flags = up\nlxc.net.0.name = v7\n"
        f"lxc.net.1.type = macvlan\nlxc.net.1.link = {veths[0].host}\n"
        "lxc.net.1.macvlan.mode = passthru\n"), start=False)
    world.make_foreign(empty, config="lxc.net.0.type = empty\n")
    world.make_foreign(shared, config="lxc.net.0.type = none\n", start=False)
    assert world.state_of(full) == world.state_of(empty) == "RUNNING"

    out = world.lxcpath.parent / "imported"
    allowed = world.lxcpath.parent / "agent.yaml"
    allowed.write_text(yaml.safe_dump({"policy": {
        "privileged": True, "host_nics": True,
        "mount_roots": ["/lib", "/usr/lib", "/lib64", "/usr/lib64"]}}))
    common = ["--driver", "lxc", "--lxcpath", str(world.lxcpath), "--config", str(allowed),
              "--state-dir", str(world.state)]
    imported = cli("import", *common, "--out", str(out))
    assert imported.returncode == 0, imported.stderr
    config = world.lxcpath / full / "config"
    line = config.read_text().splitlines().index("lxc.start.delay = 2") + 1
    assert f"{config}:{line}: warning: not converted: lxc.start.delay = 2 (no spec field " \
        "for it)" in imported.stderr.splitlines()

    spec = yaml.safe_load((out / f"{full}.yaml").read_text())
    device = f"/dev/block/{disk.number}"
    assert spec["blkiotune"] == {"weight": 250, "devices": [
        {"path": device, "weight": 400, "write_bytes_sec": 4194304}]}
    # the busybox template drops its own four on top of the config's two
    assert spec["capabilities"] == {"drop": ["mac_admin", "mac_override", "mknod", "net_raw",
                                             "sys_module", "sys_time"]}
    assert {"type": "ram", "target": "/run", "size": "8MiB", "mode": "0755"} in \
        spec["filesystems"]
    assert spec["interfaces"] == [
        {"type": "bridge", "source": bridge.name, "guest_dev": "eth0",
         "ip": [f"{bridge.ip(41)}/24"]},
        {"type": "direct", "source": veths[0].host, "mode": "vepa", "guest_dev": "mv0"},
        {"type": "hostdev", "source": veths[1].peer}]
    assert yaml.safe_load((out / f"{vlan}.yaml").read_text())["interfaces"] == [
        {"type": "vlan", "source": veths[0].host, "vlan": 7, "guest_dev": "v7"},
        {"type": "direct", "source": veths[0].host, "mode": "passthrough", "link": "down"}]
    assert yaml.safe_load((out / f"{empty}.yaml").read_text())["interfaces"] == [
        {"type": "empty"}]
    assert yaml.safe_load((out / f"{shared}.yaml").read_text())["interfaces"] == [
        {"type": "none"}]

    planned = cli("plan", str(out), *common, "--detailed-exitcode", "--format", "json")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["steps"] == [] and plan["summary"]["refused"] == 0
    assert sorted(plan["unchanged"]) == sorted(f"domain/{n}"
                                               for n in (full, vlan, empty, shared))


def test_import_says_what_it_skips_and_strict_adopts_nothing(world: HostWorld) -> None:
    """Container directories need no running container for this: a foreign owner's stamp,
    a name no spec can have, and a key the spec has no field for."""
    def container(name: str, extra: str = "", owner: str | None = None) -> Path:
        cdir = world.lxcpath / name
        cdir.mkdir()
        (cdir / "config").write_text(f"lxc.uts.name = host\nlxc.rootfs.path = dir:{cdir}/rootfs\n"
                                     + extra)
        if owner:
            (cdir / "reconciler.json").write_text(json.dumps(
                {"owner": owner, "source": None, "spec": {}}))
        return cdir

    theirs, mine = world.name("th"), world.name("mi")
    container(theirs, owner="someone-else")
    container("bad..name")
    container(mine, "lxc.group = web\n")
    out = world.lxcpath.parent / "imported"
    common = ["--driver", "lxc", "--lxcpath", str(world.lxcpath), "--state-dir",
              str(world.state), "--out", str(out)]
    strict = cli("import", *common, "--strict")
    assert strict.returncode == 1
    assert f"{world.lxcpath / mine / 'config'}:3: error: not converted: lxc.group = web" in \
        strict.stderr
    assert not (world.lxcpath / mine / "reconciler.json").exists()   # nothing adopted

    done = cli("import", *common)
    assert done.returncode == 0, done.stderr
    assert f"skipped domain/{theirs}: owned by 'someone-else'" in done.stderr.splitlines()
    assert any(line.startswith("skipped domain/bad..name: its name is not one a spec can")
               for line in done.stderr.splitlines())
    assert f"{world.lxcpath / mine / 'config'}:3: warning: not converted: lxc.group = web " \
        "(no spec field for it)" in done.stderr.splitlines()
    assert sorted(p.name for p in out.iterdir()) == [f"{mine}.yaml"]
    assert (world.lxcpath / mine / "reconciler.json").exists()
