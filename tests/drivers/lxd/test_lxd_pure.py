"""The lxd driver's pure parts, without a daemon: LXD's value syntax, reading an instance as
LXD lists it and composing its config back, placement, images, networks, the client's error
mapping, and `sim` previewing LXD's rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconciler.drivers.base import Stamp
from reconciler.drivers.lxd import compose, images, networks, values
from reconciler.drivers.lxd import stamp as stamps
from reconciler.drivers.lxd.client import NotFound, Remote, _answer
from reconciler.drivers.lxd.parse import Context, read_instance
from reconciler.drivers.lxd.placement import Cluster, placement
from reconciler.drivers.sim import SimDriver
from reconciler.errors import ConfigError, PermanentError, TransientError
from reconciler.model.fields import Ref
from tests.lxd.support import BUSYBOX_ROOT, UNPRIVILEGED

PROFILE_DEVICES = {"root": {"type": "disk", "path": "/", "pool": "default"},
                   "eth0": {"type": "nic", "name": "eth0", "network": "lxdbr0"}}
IDMAP_NEXT = json.dumps([{"Isuid": True, "Isgid": False, "Hostid": 100000, "Nsid": 0,
                          "Maprange": 65536},
                         {"Isuid": False, "Isgid": True, "Hostid": 100000, "Nsid": 0,
                          "Maprange": 65536}])


def test_values_are_read_as_lxd_defines_them() -> None:
    assert values.bytes_of("512MiB") == 512 * 1024**2
    assert values.bytes_of("1GB") == 1000**3 and values.bytes_of("4096") == 4096
    assert values.bytes_of("50%") is None and values.bytes_of("1 GiB") is None
    assert values.allowance_of("25ms/100ms") == {"quota": 25000, "period": 100000}
    assert values.allowance_of("50%") is None and values.is_share("50%")
    assert values.cpu_list(frozenset({0, 1, 3, 5, 6, 7})) == "0-1,3,5-7"
    assert values.is_true("YES") and values.is_false("off") and not values.is_true("")
    assert values.idmap_of(IDMAP_NEXT) == UNPRIVILEGED
    assert values.idmap_of("not json") is None
    assert values.raw_lxc_lines("# c\nlxc.init.cmd = /bin/sh -c x\n\nbad\n") == [
        ("lxc.init.cmd", "/bin/sh -c x")]
    assert values.power("Frozen") == "running" and values.power("Error") == "stopped"


def _instance(spec: dict[str, Any], existing: compose.Existing | None = None,
              **item: Any) -> dict[str, Any]:
    """The instance LXD would list after the driver wrote `spec` (profiles merged)."""
    existing = existing or compose.Existing({"volatile.idmap.next": IDMAP_NEXT,
                                             "volatile.base_image": "ab" * 32},
                                            {}, PROFILE_DEVICES, {})
    fields = compose.managed(spec, None)
    config = compose.instance_config(spec, fields, existing, Stamp("reconciler", None, spec))
    devices = compose.instance_devices(spec, fields, existing, "default")
    expanded = {**existing.profile_devices, **devices}
    expanded = {k: v for k, v in expanded.items() if v.get("type") != "none"}
    return {"name": spec["name"], "type": "container", "status": "Stopped", "location": "none",
            "config": config, "devices": devices, "expanded_config": config,
            "expanded_devices": expanded, "profiles": ["default"], **item}


def _canonical(spec: dict[str, Any]) -> dict[str, Any]:
    from reconciler.model import Domain, canonical

    out = canonical(Domain.model_validate(spec))
    out.pop("kind", None)
    return out


def test_a_composed_instance_reads_back_as_its_spec() -> None:
    spec = _canonical({
        "name": "web", "type": "lxc", "state": "stopped", "autostart": False,
        "start_order": -3, "memory": "1GiB", "cpu": {"count": 2, "cpuset": "2-3",
                                                     "quota": 50000, "period": 100000},
        "limits": {"numproc": [100, 100]}, "init": {"env": {"LANG": "C.UTF-8"}},
        "idmap": UNPRIVILEGED, "target": None,
        "filesystems": [BUSYBOX_ROOT, {"source": "/srv/www", "target": "/var/www",
                                       "readonly": True}],
        "interfaces": [{"type": "bridge", "source": "lxdbr0"},
                       {"type": "routed", "ip": ["192.0.2.10", "2001:db8::10"],
                        "host_dev": "vweb"}],
        "dns": {"nameservers": ["192.0.2.1"]}})
    item = _instance(spec)
    assert item["config"]["boot.autostart.priority"] == "3"
    assert item["config"]["limits.cpu"] == "2-3"
    assert item["devices"]["eth1"]["ipv6.address"] == "2001:db8::10"
    assert "eth0" not in item["devices"]  # the profile's eth0 on lxdbr0 is this NIC
    reading = read_instance(item, Context())
    assert reading.error is None and reading.stamp is not None
    assert reading.spec == spec


def test_a_profile_nic_the_spec_does_not_want_is_masked() -> None:
    spec = _canonical({"name": "iso", "type": "lxc", "idmap": UNPRIVILEGED,
                       "filesystems": [BUSYBOX_ROOT], "interfaces": [{"type": "empty"}]})
    item = _instance(spec, status="Running")
    assert item["devices"] == {"eth0": {"type": "none"}}
    assert read_instance(item, Context()).spec == spec
    # the spec drops interfaces: back to what the profile gives (the mask lifted)
    last = dict(spec)
    spec2 = {k: v for k, v in spec.items() if k != "interfaces"}
    existing = compose.Existing(item["config"], item["devices"], PROFILE_DEVICES, {})
    devices = compose.instance_devices(spec2, compose.managed(spec2, last), existing, None)
    assert devices == {}


def test_keys_the_model_does_not_carry_are_kept_and_reported() -> None:
    spec = _canonical({"name": "k", "type": "lxc", "idmap": UNPRIVILEGED,
                       "filesystems": [BUSYBOX_ROOT], "memory": "256MiB"})
    item = _instance(spec)
    item["config"]["security.nesting"] = "true"
    item["devices"]["eth0"] = {"type": "nic", "name": "eth0", "network": "lxdbr0",
                               "limits.ingress": "10Mbit"}
    existing = compose.Existing(item["config"], item["devices"], PROFILE_DEVICES, {})
    spec2 = {**spec, "memory": "512MiB"}
    config = compose.instance_config(spec2, compose.managed(spec2, spec), existing,
                                     Stamp("reconciler", None, spec2))
    assert config["security.nesting"] == "true" and config["limits.memory"] == "512MiB"
    left = read_instance({**item, "expanded_devices": item["devices"]}, Context()).left_out
    keys = {key for key, _, _ in left}
    assert {"security.nesting", "devices.eth0.limits.ingress"} <= keys


def test_a_privileged_container_has_no_id_map() -> None:
    spec = _canonical({"name": "p", "type": "lxc", "filesystems": [BUSYBOX_ROOT]})
    item = _instance(spec)
    assert item["config"]["security.privileged"] == "true"
    assert "idmap" not in (read_instance(item, Context()).spec or {})


def test_raw_lxc_keeps_lines_a_person_wrote() -> None:
    spec = _canonical({"name": "r", "type": "lxc", "idmap": UNPRIVILEGED,
                       "filesystems": [BUSYBOX_ROOT],
                       "init": {"cmd": "/sbin/init", "args": ["--quiet"]},
                       "capabilities": {"policy": "deny", "keep": ["chown", "kill"]}})
    existing = compose.Existing({"raw.lxc": "lxc.apparmor.profile = unconfined\n"}, {},
                                PROFILE_DEVICES, {})
    config = compose.instance_config(spec, compose.managed(spec, None), existing,
                                     Stamp("reconciler", None, spec))
    assert config["raw.lxc"].splitlines() == ["lxc.apparmor.profile = unconfined",
                                              "lxc.init.cmd = /sbin/init --quiet",
                                              "lxc.cap.keep = chown kill"]


CLUSTER = Cluster.from_listing([
    {"server_name": "node1", "status": "Online", "groups": ["default"]},
    {"server_name": "node2", "status": "Evacuated", "groups": ["default", "ssd"]},
    {"server_name": "node3", "status": "Online", "groups": ["default", "ssd"]}])


def test_placement_in_a_cluster() -> None:
    assert CLUSTER.satisfies("node3", "@ssd") and not CLUSTER.satisfies("node1", "@ssd")
    assert CLUSTER.refusal("node2") == "member node2 is evacuated; restore it or choose another"
    assert CLUSTER.refusal("node9") is not None and CLUSTER.refusal("@hdd") is not None
    assert CLUSTER.refusal("@ssd") is None  # node3 is online
    assert CLUSTER.pick("@ssd", {"node3": 5}) == "node3"  # node2 is evacuated
    moved = placement("node3", "node2", {"volatile.evacuate.origin": "node2"}, CLUSTER, False)
    assert (moved.target, moved.moved_from) == ("node2", "node2")
    by_hand = placement("node1", "node2", {}, CLUSTER, False)
    assert (by_hand.target, by_hand.moved_from) == ("node1", None)
    assert placement("node1", None, {}, CLUSTER, True).target == "node1"  # import pins it
    assert placement("node1", None, {}, CLUSTER, False).target is None
    assert placement("none", "node1", {}, None, False).target is None


def test_images_stay_local_unless_a_listed_remote_is_named() -> None:
    found = images.Images.from_listing([{"fingerprint": "ab" * 32,
                                         "aliases": [{"name": "busybox"}]}])
    assert found.resolve("busybox") == "ab" * 32 and found.resolve("abababababab") == "ab" * 32
    assert found.name_of("ab" * 32) == "busybox"
    assert images.source({"name": "busybox"}, {}) == {"type": "image", "alias": "busybox"}
    assert images.refusal({"name": "debian", "release": "12"}, found, {}) is not None
    remotes = {"images": images.ImageRemote.parse("images", {"server": "https://x.example"})}
    assert images.source({"name": "images:debian", "release": "12"}, remotes) == {
        "type": "image", "mode": "pull", "server": "https://x.example",
        "protocol": "simplestreams", "alias": "debian/12"}
    assert images.refusal({"name": "elsewhere:debian"}, found, remotes) is not None
    with pytest.raises(ConfigError):
        images.ImageRemote.parse("bad", {"server": "http://plain.example"})


def test_networks_both_ways() -> None:
    spec = {"name": "n1", "forward": {"mode": "route"}, "mtu": 1400,
            "ips": [{"address": "10.0.0.1/24",
                     "dhcp_ranges": [{"start": "10.0.0.10", "end": "10.0.0.20"}]}]}
    stamp = Stamp("reconciler", None, spec)
    config = networks.network_config(spec, set(spec), {"bridge.external_interfaces": "x"},
                                     stamp)
    assert config["ipv4.nat"] == "false" and config["ipv4.routing"] == "true"
    assert config["ipv6.address"] == "none" and config["bridge.external_interfaces"] == "x"
    read = networks.read_network({"name": "n1", "status": "Created", "config": config})
    assert read.spec is not None and read.stamp == stamp
    assert {k: read.spec[k] for k in spec if k != "name"} == {k: v for k, v in spec.items()
                                                              if k != "name"}
    default = networks.read_network({"name": "n2", "status": "Created",
                                     "config": {"ipv4.address": "10.1.0.1/24"}})
    assert default.spec is not None
    assert default.spec["ips"][0]["dhcp_ranges"] == [{"start": "10.1.0.2", "end": "10.1.0.254"}]
    assert networks.read_network({"name": "n3", "status": "Pending", "config": {}}).pending


def test_the_client_maps_lxd_errors() -> None:
    with pytest.raises(NotFound):
        _answer(404, b'{"type":"error","error":"Instance not found","error_code":404}', None,
                "GET x")
    with pytest.raises(TransientError):
        _answer(500, b'{"type":"error","error":"Failed to begin transaction","error_code":500}',
                None, "PUT x")
    with pytest.raises(PermanentError):
        _answer(400, b'{"type":"error","error":"Invalid config","error_code":400}', None, "PUT")
    with pytest.raises(ConfigError):
        Remote("https://cluster.example:8443")  # no certificates: refused, never trusted
    with pytest.raises(ConfigError):
        Remote("tcp://x")


def test_the_stamp_lives_in_user_keys() -> None:
    config: dict[str, Any] = {"user.other": "x"}
    stamps.write(config, Stamp("reconciler", "/specs/a.yaml", {"name": "a", "memory": "1GiB"}))
    assert stamps.read(config) == Stamp("reconciler", "/specs/a.yaml",
                                        {"name": "a", "memory": "1GiB"})
    stamps.undefine(config)
    assert stamps.undefined(config) and config["boot.autostart"] == "false"
    assert stamps.read({"user.reconciler.owner": "x", "user.reconciler.spec": "{bad"}) is None


def test_sim_previews_a_cluster_as_the_lxd_driver_plans_it(tmp_path: Path) -> None:
    sim = SimDriver(tmp_path, imitate={"lxc": "lxd", "network": "lxd-network"})
    ref = Ref("Domain", "g")
    assert sim.update_class(ref, "lxc", "target") == "restart"
    assert sim.update_class(ref, "lxc", "memory") == "live"
    spec = _canonical({"name": "g", "type": "lxc", "target": "@ssd", "allow_move": True,
                       "filesystems": [BUSYBOX_ROOT]})
    assert sim.check("Domain", "lxc", spec) == []
    bad = _canonical({"name": "bad_name", "type": "lxc", "filesystems": [BUSYBOX_ROOT]})
    assert [r.field for r in sim.check("Domain", "lxc", bad)] == ["name"]
