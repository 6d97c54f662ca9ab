"""The lxd driver on a real standalone LXD daemon: the model mapped both ways, live and
restart changes, import of instances made by hand, undefine keeping data, profiles' devices
masked, refusals, networks. Every check of the host reads it through the `lxc` client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from reconciler.engine.policy import Policy
from tests.lxd import support
from tests.lxd.support import actions, kinds
from tests.lxd.world import World


def _mapped_spec(world: World, name: str, data: Path) -> dict[str, Any]:
    return support.spec(
        name, state="stopped", autostart=True, start_order=5, memory="192MiB",
        description="mapped both ways",
        cpu={"count": 1, "cpuset": "0", "limit": 50}, limits={"numproc": [200, 200]},
        init={"env": {"GREETING": "hello world", "MODE": "test"}},
        filesystems=[support.BUSYBOX_ROOT,
                     {"type": "mount", "source": str(data), "target": "/srv/data",
                      "readonly": True},
                     {"type": "volume", "source": f"default/{world.name('vol')}",
                      "target": "/srv/vol"}],
        interfaces=[{"type": "bridge", "source": "rcbr0", "ip": ["10.213.7.50"],
                     "mac": "00:16:3e:aa:bb:01"},
                    {"type": "routed", "ip": ["10.213.9.5"], "host_dev": f"{world.prefix}r"},
                    {"type": "direct", "source": "rcdummy0", "guest_dev": "mv0", "mtu": 1400},
                    {"type": "vlan", "source": "rcdummy0", "vlan": 42}])


def test_the_model_maps_onto_lxd_keys_and_reads_back(world: World, tmp_path: Path) -> None:
    name = world.name("map")
    data = tmp_path / "data"
    data.mkdir()
    world.daemon.ns.run(["ip", "link", "add", "rcdummy0", "type", "dummy"], check=False)
    world.daemon.lxc("storage", "volume", "create", "default", world.name("vol"))
    try:
        world.write(name, _mapped_spec(world, name, data))
        policy = Policy(mount_roots=(str(tmp_path),))
        plan, _ = world.apply(policy=policy)
        assert actions(plan) == {name: "create"}
        assert kinds(plan, name) == ["provision", "define"]
        found = world.instance(name)
        config, devices = found["config"], found["devices"]
        assert found["status"] == "Stopped" and found["description"] == "mapped both ways"
        assert {k: config.get(k) for k in (
            "boot.autostart", "boot.autostart.priority", "limits.memory", "limits.cpu",
            "limits.cpu.allowance", "limits.processes", "environment.GREETING",
            "environment.MODE", "security.idmap.isolated", "security.idmap.base",
            "security.idmap.size")} == {
            "boot.autostart": "true", "boot.autostart.priority": "-5",
            "limits.memory": "192MiB", "limits.cpu": "0-0", "limits.cpu.allowance": "50ms/100ms",
            "limits.processes": "200", "environment.GREETING": "hello world",
            "environment.MODE": "test", "security.idmap.isolated": "true",
            "security.idmap.base": "100000", "security.idmap.size": "65536"}
        assert devices["fs-srv-data"] == {"type": "disk", "path": "/srv/data",
                                          "source": str(data), "readonly": "true"}
        assert devices["fs-srv-vol"] == {"type": "disk", "path": "/srv/vol", "pool": "default",
                                         "source": world.name("vol")}
        assert devices["eth0"] == {"type": "nic", "name": "eth0", "nictype": "bridged",
                                   "parent": "rcbr0", "ipv4.address": "10.213.7.50",
                                   "hwaddr": "00:16:3e:aa:bb:01"}
        assert devices["eth1"] == {"type": "nic", "name": "eth1", "nictype": "routed",
                                   "ipv4.address": "10.213.9.5",
                                   "host_name": f"{world.prefix}r"}
        assert devices["mv0"] == {"type": "nic", "name": "mv0", "nictype": "macvlan",
                                  "parent": "rcdummy0", "mtu": "1400"}
        assert devices["eth3"] == {"type": "nic", "name": "eth3", "nictype": "physical",
                                   "parent": "rcdummy0", "vlan": "42"}
        stamp = json.loads(config["user.reconciler.spec"])
        assert stamp["memory"] == "192MiB" and config["user.reconciler.owner"] == "reconciler"
        again = world.plan(policy=policy)
        assert again.steps == () and actions(again) == {}, again.objects
    finally:
        support.cleanup(world.daemon, world.prefix)
        world.daemon.lxc("storage", "volume", "delete", "default", world.name("vol"),
                         check=False)
        world.daemon.ns.run(["ip", "link", "del", "rcdummy0"], check=False)


def test_live_and_restart_changes_on_a_running_container(world: World) -> None:
    name = world.name("run")
    world.write(name, support.spec(name))
    world.apply()
    world.write(name, support.spec(name, memory="200MiB", cpu={"count": 1}))
    plan, _ = world.apply()
    obj = next(o for o in plan.objects if o.ref.name == name)
    assert (obj.update, kinds(plan, name)) == ("live", ["update"])
    found = world.instance(name)
    assert found["status"] == "Running" and support.boots(world.daemon, name) == 1
    assert (found["config"]["limits.memory"], found["config"]["limits.cpu"]) == ("200MiB", "1")
    # the id map: LXD shifts the root at the next start
    bigger = [{**m, "count": 131072} for m in support.UNPRIVILEGED]
    world.write(name, support.spec(name, memory="200MiB", cpu={"count": 1}, idmap=bigger))
    plan, _ = world.apply()
    assert kinds(plan, name) == ["stop", "update", "start"]
    assert support.boots(world.daemon, name) == 2
    assert world.instance(name)["config"]["volatile.last_state.idmap"].count("131072") == 2
    assert world.plan().steps == ()


def test_import_of_hand_made_instances_then_plan_is_empty(world: World,
                                                          tmp_path: Path) -> None:
    plain, tuned, net = world.name("plain"), world.name("tuned"), world.name("n")
    daemon = world.daemon
    daemon.lxc("network", "create", net, "ipv4.address=10.213.20.1/24", "ipv4.nat=true",
               "ipv6.address=none")
    support.launch(daemon, plain, "--network", net)
    support.launch(daemon, tuned, "--network", net, "-c", "limits.memory=300MiB", "-c",
                   "boot.autostart=false", "-c", "environment.TZ=UTC", "-c", "limits.cpu=1")
    data = tmp_path / "shared"
    data.mkdir()
    daemon.lxc("config", "device", "add", tuned, "shared", "disk", f"source={data}",
               "path=/shared")
    daemon.lxc("stop", tuned)
    config = tmp_path / "agent.yaml"
    config.write_text(yaml.safe_dump({
        "driver": "lxd", "drivers": {"lxd": support.options(daemon, world.prefix)},
        "policy": {"mount_roots": [str(tmp_path)]}}))
    out = tmp_path / "imported"
    state = tmp_path / "state"
    done = support.cli("import", "--driver", "lxd", "--config", str(config), "--state-dir",
                       str(state), "--out", str(out))
    assert done.returncode == 0, done.stderr
    written = {p.stem: yaml.safe_load(p.read_text()) for p in out.glob("*.yaml")}
    assert set(written) == {plain, tuned, net}
    assert written[tuned]["memory"] == "300MiB" and written[tuned]["state"] == "stopped"
    assert written[tuned]["init"] == {"env": {"TZ": "UTC"}}
    assert {"source": str(data), "target": "/shared"} in \
        written[tuned]["filesystems"]
    assert written[plain]["filesystems"] == [support.BUSYBOX_ROOT]
    assert written[plain]["interfaces"] == [{"type": "network", "source": net}]
    assert written[net]["forward"] == {}  # nat, the model's default mode
    assert "default" not in done.stderr  # the profiles new instances get are not reported
    found = world.instance(plain)["config"]
    assert found["user.reconciler.source"] == str(out / f"{plain}.yaml")
    planned = support.cli("plan", str(out), "--config", str(config), "--state-dir",
                          str(state), "--detailed-exitcode")
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "no changes" in planned.stdout.lower()


def test_undefine_keeps_the_instance_and_a_spec_takes_it_back(world: World) -> None:
    name, other = world.name("keep"), world.name("other")
    world.write(name, support.spec(name))
    world.write(other, support.spec(other))
    world.apply()
    world.remove(name)
    plan, _ = world.apply()
    assert kinds(plan, name) == ["stop", "undefine"]
    kept = world.instance(name)
    assert kept["status"] == "Stopped"
    assert kept["config"]["user.reconciler.undefined"] and \
        kept["config"]["boot.autostart"] == "false"
    assert world.plan().steps == ()  # no longer listed: nothing to remove again
    world.write(name, support.spec(name))
    plan, _ = world.apply()
    assert kinds(plan, name) == ["provision", "define", "start"]
    back = world.instance(name)
    assert "user.reconciler.undefined" not in back["config"]
    assert "boot.autostart" not in back["config"]
    assert support.boots(world.daemon, name) == 2  # the same root: its first boot is there
    world.write(name, support.spec(name, removal="purge", state="absent"))
    plan, _ = world.apply()
    assert kinds(plan, name) == ["stop", "purge"]
    assert support.instance(world.daemon, name) is None


def test_profile_devices_are_masked_and_given_back(world: World) -> None:
    name = world.name("mask")
    world.write(name, support.spec(name, state="stopped", interfaces=[{"type": "empty"}]))
    world.apply()
    found = world.instance(name)
    assert found["devices"] == {"eth0": {"type": "none"}}
    assert "eth0" not in {k for k, v in found["expanded_devices"].items()
                          if v.get("type") == "nic"}
    assert world.plan().steps == ()
    # the profile's eth0 is on managed network rcbr0: the NIC bridged to rcbr0
    world.write(name, support.spec(name, state="stopped",
                                   interfaces=[{"type": "bridge", "source": "rcbr0"}]))
    plan, _ = world.apply()
    assert kinds(plan, name) == ["update"]
    assert world.instance(name)["devices"] == {}  # the profile gives exactly this NIC
    assert world.plan().steps == ()


def test_what_lxd_cannot_do_or_the_policy_forbids_is_refused(world: World) -> None:
    cases = {
        "priv": (support.spec(world.name("priv"), idmap=[]), "idmap"),
        "init": (support.spec(world.name("init"), init={"cmd": "/bin/sh"}), "init.cmd"),
        "targ": (support.spec(world.name("targ"), target="node2"), "target"),
        "img": (support.spec(world.name("img"), filesystems=[
            {**support.BUSYBOX_ROOT, "name": "no-such-image"}]), "filesystems.0.name"),
        "host": (support.spec(world.name("host"), hostname="elsewhere"), "hostname"),
    }
    for tag, (spec, _) in cases.items():
        world.write(world.name(tag), spec)
    plan = world.plan()
    refused = {o.ref.name: [r.field for r in o.refusals] for o in plan.objects}
    for tag, (_, field) in cases.items():
        assert field in refused[world.name(tag)], (tag, refused[world.name(tag)])
    assert plan.steps == ()
    # init through raw.lxc once the driver may write it
    for tag in cases:
        world.remove(world.name(tag))
    name = world.name("raw")
    world.write(name, support.spec(name, state="stopped",
                                   init={"cmd": "/sbin/init", "env": {"A": "1"}},
                                   capabilities={"drop": ["sys_time"]}))
    world.apply(raw_lxc=True)
    raw = world.instance(name)["config"]["raw.lxc"]
    assert "lxc.init.cmd = /sbin/init" in raw and "lxc.cap.drop = sys_time" in raw
    assert world.plan(raw_lxc=True).steps == ()


def test_dns_is_written_into_the_root(world: World) -> None:
    name = world.name("dns")
    world.write(name, support.spec(name, dns={"nameservers": ["10.213.7.1"],
                                                "search": ["example.org"]}))
    world.apply()
    text = world.daemon.lxc("file", "pull", f"{name}/etc/resolv.conf", "-").stdout
    assert "nameserver 10.213.7.1" in text and "search example.org" in text
    assert world.plan().steps == ()


def test_networks_are_lxd_managed_bridges(world: World) -> None:
    net, guest = world.name("n"), world.name("g")
    world.write(net, {"kind": "Network", "name": net, "forward": {"mode": "route"},
                      "ips": [{"address": "10.213.30.1/24", "dhcp_ranges": [
                          {"start": "10.213.30.100", "end": "10.213.30.150"}]}]})
    world.write(guest, support.spec(guest, interfaces=[{"type": "network", "source": net}]))
    plan, _ = world.apply()
    order = [s.id for s in plan.steps]
    assert order.index(f"network/{net}:define") < order.index(f"domain/{guest}:provision")
    found = world.daemon.query(f"/1.0/networks/{net}")
    assert {k: found["config"].get(k) for k in ("ipv4.address", "ipv4.dhcp",
                                                 "ipv4.dhcp.ranges", "ipv4.nat",
                                                 "ipv6.address")} == {
        "ipv4.address": "10.213.30.1/24", "ipv4.dhcp": "true",
        "ipv4.dhcp.ranges": "10.213.30.100-10.213.30.150", "ipv4.nat": "false",
        "ipv6.address": "none"}
    assert world.plan().steps == ()
    world.write(net, {"kind": "Network", "name": net, "forward": {"mode": "nat"}, "mtu": 1400,
                      "ips": [{"address": "10.213.30.1/24"}]})
    plan, _ = world.apply()
    assert kinds(plan, net) == ["update"]
    found = world.daemon.query(f"/1.0/networks/{net}")["config"]
    assert (found["ipv4.nat"], found["ipv4.dhcp"], found["bridge.mtu"]) == ("true", "false",
                                                                          "1400")
    world.remove(guest)
    world.remove(net)
    other = world.name("o")  # an emptied spec directory removes nothing
    world.write(other, support.spec(other, state="stopped"))
    plan, _ = world.apply()  # the guest is kept (data kept), without its NIC on the network
    order = [s.id for s in plan.steps]
    assert order.index(f"domain/{guest}:undefine") < order.index(f"network/{net}:undefine")
    assert net not in support.names(world.daemon, "networks", world.prefix)
