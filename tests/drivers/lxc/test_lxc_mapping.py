"""Model <-> LXC keys, both ways, from captured and hand-written configs (no host needed)."""

from __future__ import annotations

import os
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.drivers.lxc import LxcDriver, validated
from reconciler.drivers.lxc.config import LxcConfig
from reconciler.drivers.lxc.mapping import (
    CgroupLayout,
    Context,
    cgroup_live,
    managed_fields,
    read_spec,
    shares_to_weight,
    unsupported,
    weight_to_shares,
    write_spec,
)
from reconciler.drivers.lxc.tools import parse_template_comment
from reconciler.errors import ConfigError, PermanentError
from reconciler.model import Domain, canonical
from reconciler.model.fields import Ref, flatten

FIXTURES = Path(__file__).parent / "fixtures"
HYBRID = CgroupLayout(frozenset({"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer",
                                 "blkio", "pids"}), frozenset({"hugetlb"}))
V2 = CgroupLayout(frozenset(), frozenset({"cpuset", "cpu", "io", "memory", "pids"}))
BUSYBOX = (FIXTURES / "busybox-template.config").read_text()
TEMPLATE_MOUNTS = frozenset(LxcConfig.parse(BUSYBOX).get_all("lxc.mount.entry"))


def canon(spec: dict[str, Any]) -> dict[str, Any]:
    out = canonical(Domain.model_validate({"kind": "Domain", "type": "lxc", **spec}))
    out.pop("kind", None)
    return out


def ctx(name: str = "c1", layout: CgroupLayout = HYBRID, ours: bool = True) -> Context:
    return Context(name=name, lxcpath="/var/lib/lxc", layout=layout, template="busybox",
                   template_mounts=TEMPLATE_MOUNTS if ours else frozenset())


def read(text: str, context: Context, last: dict[str, Any] | None = None) -> dict[str, Any]:
    spec, dropped = validated(read_spec(LxcConfig.parse(text), context, last))
    assert not dropped
    return spec


def written(spec: dict[str, Any], layout: CgroupLayout = HYBRID, base: str = BUSYBOX,
            last: dict[str, Any] | None = None) -> str:
    cfg = LxcConfig.parse(base)
    write_spec(cfg, spec, managed_fields(spec, last), ctx(layout=layout))
    return cfg.render()


ROOT = {"type": "template", "name": "busybox", "target": "/"}

ROUND_TRIP = {
    "minimal": {"name": "c1", "filesystems": [ROOT]},
    "limits": {"name": "c1", "memory": "256MiB", "cpu": {"shares": 512, "cpuset": "0",
                                                         "count": 1},
               "memtune": {"soft_limit": "128MiB", "swap_hard_limit": "512MiB"},
               "filesystems": [ROOT]},
    "cpu-cap": {"name": "c1", "cpu": {"quota": 50000, "period": 100000}, "filesystems": [ROOT]},
    "cpu-limit": {"name": "c1", "cpu": {"limit": 25}, "filesystems": [ROOT]},
    "cpu-uncapped": {"name": "c1", "cpu": {"quota": -1, "shares": 100}, "filesystems": [ROOT]},
    "cpu-count": {"name": "c1", "cpu": {"count": 2}, "filesystems": [ROOT]},
    "identity": {"name": "c1", "hostname": "web-1.example", "arch": "x86_64",
                 "autostart": True, "start_order": 3, "console": {"count": 2},
                 "filesystems": [ROOT]},
    "autostart-off": {"name": "c1", "autostart": False, "filesystems": [ROOT]},
    "init": {"name": "c1", "init": {"cmd": "/sbin/init", "args": ["--verbose", "-x"],
                                    "env": {"TZ": "UTC", "GREETING": "hello world"},
                                    "dir": "/root", "user": "0", "group": "0"},
             "filesystems": [ROOT]},
    "idmap": {"name": "c1", "idmap": [{"kind": "uid", "start": 0, "target": 100000,
                                       "count": 65536},
                                      {"kind": "gid", "start": 0, "target": 100000,
                                       "count": 65536}], "filesystems": [ROOT]},
    "mounts": {"name": "c1", "filesystems": [
        ROOT, {"source": "/srv/data", "target": "/data"},
        {"source": "/srv/my files", "target": "/srv/ro", "readonly": True},
        {"type": "ram", "target": "/scratch", "size": "64MiB"}]},
    "mount-before-root": {"name": "c1", "filesystems": [
        {"source": "/srv/data", "target": "/data"}, ROOT]},
    "host-dir-root": {"name": "c1", "filesystems": [{"source": "/srv/roots/c1",
                                                     "target": "/"}]},
    "nics": {"name": "c1", "filesystems": [ROOT], "interfaces": [
        {"type": "bridge", "source": "br0", "guest_dev": "eth0", "mac": "52:54:00:AB:cd:01",
         "ip": ["10.123.7.5/24", "fd00::5/64"], "gateway": "10.123.7.1", "mtu": 1400,
         "host_dev": "vethc1"},
        {"type": "direct", "source": "eth1", "mode": "bridge", "link": "down"},
        {"type": "hostdev", "source": "dummy0", "ip": ["10.9.9.9/24"]},
        {"type": "routed", "ip": ["192.0.2.9/32"]}]},
    "nic-spelled-defaults": {"name": "c1", "filesystems": [ROOT], "interfaces": [
        {"type": "bridge", "source": "br0", "link": "up"},
        {"type": "direct", "source": "eth1", "mode": "private"}]},
    "dual-gateway": {"name": "c1", "filesystems": [ROOT], "interfaces": [
        {"type": "bridge", "source": "br0", "ip": ["10.1.1.2/24", "fd00::2/64"],
         "gateway": "10.1.1.1", "routes": [{"address": "::", "prefix": 0,
                                            "gateway": "fd00::1"}]}]},
}


@pytest.mark.parametrize("layout", [HYBRID, V2], ids=["cgroup-hybrid", "cgroup-v2"])
@pytest.mark.parametrize("case", sorted(ROUND_TRIP))
def test_written_config_reads_back_as_the_spec(case: str, layout: CgroupLayout) -> None:
    spec = canon(ROUND_TRIP[case])
    text = written(spec, layout)
    live = read(text, ctx(layout=layout), last=spec)
    # what the engine compares: the flattened fields the spec manages
    want, have = flatten(spec), flatten(live)
    assert {k: have.get(k) for k in want} == want
    # and writing again changes nothing (no perpetual rewrites)
    assert written(spec, layout, base=text, last=spec) == text


def test_template_lines_survive_a_rewrite() -> None:
    spec = canon(ROUND_TRIP["nics"])
    text = written(spec)
    for line in BUSYBOX.splitlines():
        if line.startswith("lxc.uts.name"):
            continue
        assert line in text.splitlines()


def test_busybox_config_as_imported_without_a_record() -> None:
    """No sidecar: the template comes from lxc-create's comment, and the template's mount
    entries that the model can say are part of the spec (import keeps them)."""
    template, options = parse_template_comment(BUSYBOX)
    assert (template, options) == ("busybox", ())
    live = read(BUSYBOX, ctx(ours=False))
    assert live["hostname"] == "c1"
    assert live["console"] == {"count": 5}
    assert live["filesystems"][0] == {"type": "template", "name": "busybox", "target": "/"}
    assert {"source": "/lib", "target": "/lib", "readonly": True} in live["filesystems"]
    # shm without a size, mqueue and `optional` entries are not model filesystems
    assert not any(fs["target"] in ("/dev/shm", "/dev/mqueue", "/sys/kernel/security")
                   for fs in live["filesystems"])


def test_busybox_config_with_our_record_hides_template_mounts() -> None:
    live = read(BUSYBOX, ctx(ours=True))
    assert live["filesystems"] == [{"type": "template", "name": "busybox", "target": "/"}]


def test_handmade_config() -> None:
    text = (FIXTURES / "handmade.config").read_text()
    live = read(text, Context(name="web1", lxcpath="/var/lib/lxc", layout=HYBRID))
    assert live["hostname"] == "web1" and live["arch"] == "amd64"
    assert live["autostart"] is True and live["start_order"] == 10
    assert live["memory"] == "512MiB"
    assert live["memtune"] == {"swap_hard_limit": "1GiB"}
    assert live["cpu"] == {"shares": 256, "cpuset": "0-1", "count": 2}
    assert live["init"] == {"cmd": "/sbin/init", "args": ["--log-target=console"],
                            "env": {"TZ": "UTC"}}
    assert live["console"] == {"count": 4}
    assert live["idmap"][0] == {"kind": "uid", "start": 0, "target": 100000, "count": 65536}
    assert live["filesystems"] == [
        {"source": "/srv/roots/web1", "target": "/"},
        {"source": "/srv/data", "target": "/srv/data"},
        {"source": "/srv/static", "target": "/var/www", "readonly": True},
        {"type": "ram", "target": "/tmp", "size": "64MiB", "mode": "1777"}]
    assert live["interfaces"] == [
        {"type": "bridge", "source": "br0", "guest_dev": "eth0", "mac": "00:16:3e:12:34:56",
         "ip": ["192.0.2.10/24", "2001:db8::10/64"], "gateway": "192.0.2.1"},
        {"type": "direct", "source": "eth1", "mode": "bridge"}]


def test_handmade_rewrite_keeps_unmodelled_keys_and_order() -> None:
    text = (FIXTURES / "handmade.config").read_text()
    context = Context(name="web1", lxcpath="/var/lib/lxc", layout=HYBRID)
    live = read(text, context)
    spec = {**live, "memory": "1GiB", "hostname": "web2"}
    spec["interfaces"] = [dict(live["interfaces"][0], ip=["192.0.2.11/24"])]
    cfg = LxcConfig.parse(text)
    write_spec(cfg, spec, managed_fields(spec, live), context)
    out = cfg.render().splitlines()
    for kept in ("lxc.include = /usr/share/lxc/config/common.conf", "lxc.start.delay = 5",
                 "lxc.group = onboot", "lxc.cgroup.devices.allow = c 10:200 rwm",
                 "lxc.net.0.script.up = /usr/local/bin/net-up",
                 "lxc.mount.entry = tmpfs tmp tmpfs size=64m,mode=1777 0 0",
                 "lxc.mount.entry = proc proc proc nodev,noexec,nosuid 0 0",
                 "lxc.apparmor.profile = unconfined",
                 "# network: bridged NIC with a fixed MAC and addresses, plus a macvlan on eth1"):
        assert kept in out
    assert "lxc.uts.name = web2" in out
    assert out.index("lxc.uts.name = web2") == text.splitlines().index("lxc.uts.name = web1")
    assert "lxc.cgroup.memory.limit_in_bytes = 1073741824" in out
    assert not any(line.startswith("lxc.net.1.") for line in out)
    assert "lxc.net.0.ipv4.address = 192.0.2.11/24 192.0.2.255" in out
    again = flatten(read(cfg.render(), context, last=spec))
    assert {k: again.get(k) for k in flatten(spec)} == flatten(spec)


def test_a_field_dropped_from_the_spec_goes_back_to_lxc_default() -> None:
    before = canon({"name": "c1", "hostname": "h", "memory": "64MiB", "autostart": True,
                    "filesystems": [ROOT]})
    text = written(before)
    after = canon({"name": "c1", "filesystems": [ROOT]})
    cfg = LxcConfig.parse(text)
    write_spec(cfg, after, managed_fields(after, before), ctx())
    assert cfg.get("lxc.cgroup.memory.limit_in_bytes") is None
    assert cfg.get("lxc.start.auto") is None
    assert cfg.get("lxc.uts.name") is None
    assert cfg.get("lxc.tty.max") == "5"   # never managed: the template's value stays


def test_unmanaged_fields_are_not_touched() -> None:
    cfg = LxcConfig.parse(BUSYBOX)
    spec = canon({"name": "c1", "memory": "64MiB"})
    write_spec(cfg, spec, managed_fields(spec, None), ctx())
    assert cfg.get("lxc.uts.name") == "c1" and cfg.get("lxc.tty.max") == "5"


def test_v2_weight_keeps_the_users_shares() -> None:
    spec = canon({"name": "c1", "cpu": {"shares": 1000}, "filesystems": [ROOT]})
    text = written(spec, V2)
    assert f"lxc.cgroup2.cpu.weight = {shares_to_weight(1000)}" in text.splitlines()
    assert read(text, ctx(layout=V2), last=spec)["cpu"]["shares"] == 1000
    # without a last-applied spec the weight converts back to the nearest shares
    assert read(text, ctx(layout=V2))["cpu"]["shares"] == weight_to_shares(
        shares_to_weight(1000))
    assert shares_to_weight(1024) == 39 and shares_to_weight(2) == 1
    assert shares_to_weight(262144) == 10000


def test_v1_keys_on_hybrid_and_v2_keys_on_v2() -> None:
    spec = canon({"name": "c1", "memory": "64MiB", "memtune": {"swap_hard_limit": "96MiB"},
                  "cpu": {"quota": 20000}, "filesystems": [ROOT]})
    v1 = written(spec, HYBRID).splitlines()
    assert "lxc.cgroup.memory.limit_in_bytes = 67108864" in v1
    assert "lxc.cgroup.memory.memsw.limit_in_bytes = 100663296" in v1
    assert "lxc.cgroup.cpu.cfs_quota_us = 20000" in v1
    v2 = written(spec, V2).splitlines()
    assert "lxc.cgroup2.memory.max = 67108864" in v2
    assert "lxc.cgroup2.memory.swap.max = 33554432" in v2   # swap alone on v2
    assert "lxc.cgroup2.cpu.max = 20000 100000" in v2
    assert not any(line.startswith("lxc.cgroup.") for line in v2)


def test_switching_layout_replaces_the_other_familys_key() -> None:
    spec = canon({"name": "c1", "memory": "64MiB", "filesystems": [ROOT]})
    text = written(spec, V2)
    cfg = LxcConfig.parse(text)
    write_spec(cfg, spec, managed_fields(spec, spec), ctx(layout=HYBRID))
    assert cfg.get("lxc.cgroup2.memory.max") is None
    assert cfg.get("lxc.cgroup.memory.limit_in_bytes") == "67108864"


def test_cgroup_live_values_and_resets() -> None:
    spec = canon({"name": "c1", "memory": "256MiB", "cpu": {"shares": 512},
                  "filesystems": [ROOT]})
    managed = {"memory", "cpu.shares", "cpu.cpuset", "cpu.count"}
    assert cgroup_live(spec | {"cpu.shares": 512}, managed, HYBRID, "0-1") == [
        ("memory.limit_in_bytes", "268435456"), ("cpu.shares", "512"),
        ("cpuset.cpus", "0-1")]
    assert cgroup_live({}, {"memory", "cpu.shares"}, V2, "0-1") == [
        ("memory.max", "max"), ("cpu.weight", "100")]


@pytest.mark.parametrize("spec, message", [
    ({"init": {"cmd": "/bin/sh", "args": ["-c", "echo hi"]}}, "whitespace"),
    ({"interfaces": [{"type": "network", "source": "default"}]}, "not supported on LXC"),
    ({"limits": {"numproc": [10, 10]}}, "limits"),
    ({"filesystems": [{"type": "file", "source": "/x.img", "target": "/x"}]}, "type file"),
    ({"filesystems": [{"type": "block", "source": "/dev/vdb", "target": "/x"}]}, "type block"),
    ({"memory": "64MiB", "memtune": {"hard_limit": "128MiB"}}, "hard_limit"),
    ({"interfaces": [{"type": "bridge", "source": "br0", "routes": [
        {"address": "10.9.0.0", "prefix": 16, "gateway": "10.1.1.1"}]}]}, "routes"),
    ({"init": {"cmd": "/sbin/init", "user": "root", "group": "root"}}, "numeric"),
])
def test_unsupported_settings_are_named(spec: dict[str, Any], message: str) -> None:
    problems = unsupported(canon({"name": "c1", **spec}))
    assert any(message in p for p in problems), problems
    with pytest.raises(PermanentError, match="cannot express on LXC"):
        write_spec(LxcConfig(), canon({"name": "c1", **spec}), {"init.cmd"}, ctx())


def test_unknown_driver_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="stop_timeut"):
        LxcDriver(state_dir="/nonexistent", stop_timeut=3)


def test_update_classes_follow_lxc() -> None:
    driver = LxcDriver(state_dir="/nonexistent", lxcpath="/nonexistent/lxc")
    ref = Ref("Domain", "c1")
    cls = {f: driver.update_class(ref, "lxc", f) for f in (
        "memory", "memtune.soft_limit", "cpu.shares", "cpu.cpuset", "cpu.quota", "autostart",
        "start_order", "dns.nameservers", "protect", "removal", "description", "hostname",
        "interfaces", "init.cmd", "console.count", "arch", "filesystems", "idmap", "type")}
    assert {f for f, c in cls.items() if c == "live"} == {
        "memory", "memtune.soft_limit", "cpu.shares", "cpu.cpuset", "cpu.quota", "autostart",
        "start_order", "dns.nameservers", "protect", "removal", "description"}
    assert {f for f, c in cls.items() if c == "recreate"} == {"filesystems", "idmap", "type"}
    assert cls["hostname"] == cls["interfaces"] == cls["init.cmd"] == "restart"
    # told the values, a mount change that keeps the root is a restart
    old = [ROOT]
    new = [ROOT, {"source": "/srv", "target": "/srv"}]
    assert driver.update_class(ref, "lxc", "filesystems", old, new) == "restart"
    assert driver.update_class(ref, "lxc", "filesystems", old,
                               [{**ROOT, "name": "download"}]) == "recreate"


def test_weight_conversion_is_stable() -> None:
    assert all(shares_to_weight(weight_to_shares(w)) == w for w in range(1, 10001))


# ---------------------------------------------------------------------------- property

_seg = st.text(alphabet=string.ascii_letters + string.digits + " _-.", min_size=1, max_size=8
               ).filter(lambda s: s.strip(". ") == s and s not in (".", ".."))
_path = st.lists(_seg, min_size=1, max_size=3).map(lambda parts: "/" + "/".join(parts))
_word = st.text(alphabet=string.ascii_letters + string.digits + "-_=/.:", min_size=1,
                max_size=10)
# printable text: the model refuses tabs, line breaks and other control characters
_env_value = st.text(alphabet=string.printable.replace("\n", "").replace("\r", "")
                     .replace("\x0b", "").replace("\x0c", "").replace("\t", ""), max_size=12)


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": "c1", "filesystems": [ROOT]}
    if draw(st.booleans()):
        spec["hostname"] = draw(st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True))
    if draw(st.booleans()):
        spec["memory"] = f"{draw(st.integers(4, 4096))}MiB"
    cpu: dict[str, Any] = {}
    if draw(st.booleans()):
        cpu["shares"] = draw(st.integers(2, 262144))
    if draw(st.booleans()):
        cpu["count"] = draw(st.integers(1, 8))
    if draw(st.booleans()):
        cpu["quota"] = draw(st.integers(1000, 400000))
    if cpu:
        spec["cpu"] = cpu
    if draw(st.booleans()):
        spec["autostart"] = draw(st.booleans())
        spec["start_order"] = draw(st.integers(-100, 100))
    if draw(st.booleans()):
        spec["console"] = {"count": draw(st.integers(1, 64))}
    if draw(st.booleans()):
        spec["init"] = {"cmd": draw(_path.filter(lambda p: " " not in p)),
                        "args": draw(st.lists(_word, max_size=3)),
                        "env": draw(st.dictionaries(
                            st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True),
                            _env_value, max_size=3))}
    mounts = draw(st.lists(_path, max_size=3, unique=True))
    for target in mounts:
        spec["filesystems"].append({"source": draw(_path), "target": "/m" + target,
                                    "readonly": draw(st.booleans())})
    if draw(st.booleans()):
        last_octet = draw(st.integers(0, 255))
        spec["interfaces"] = [{"type": "bridge", "source": "br0",
                               "mac": f"52:54:00:00:00:{last_octet:02x}",
                               "ip": [f"10.1.{draw(st.integers(0, 255))}.5/24"],
                               "link": draw(st.sampled_from(["up", "down"]))}]
    return spec


@settings(max_examples=150, deadline=None)
@given(spec=specs(), layout=st.sampled_from([HYBRID, V2]))
def test_any_supported_spec_round_trips(spec: dict[str, Any], layout: CgroupLayout) -> None:
    spec = canon(spec)
    text = written(spec, layout)
    want, have = flatten(spec), flatten(read(text, ctx(layout=layout), last=spec))
    assert {k: have.get(k) for k in want} == want
    assert written(spec, layout, base=text, last=spec) == text


def test_a_fifo_or_link_in_a_guest_root_is_never_read(tmp_path: Path) -> None:
    """A privileged guest owns its root: what it plants at etc/resolv.conf must neither stall
    an observe (a FIFO) nor lead the host elsewhere (a symlink)."""
    from reconciler.drivers.lxc import rootfs

    etc = tmp_path / "etc"
    etc.mkdir()
    os.mkfifo(etc / "resolv.conf")
    assert rootfs.read_file(str(tmp_path), "etc/resolv.conf") is None
    (etc / "resolv.conf").unlink()
    (etc / "resolv.conf").symlink_to("/etc/hostname")
    assert rootfs.read_file(str(tmp_path), "etc/resolv.conf") is None
    with pytest.raises(PermanentError):
        rootfs.write_file(str(tmp_path / "missing"), "etc/resolv.conf", "nameserver 1.1.1.1\n")
