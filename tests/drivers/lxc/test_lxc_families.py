"""Block I/O tuning, capabilities, tmpfs mounts and every NIC kind: an LXC config carrying each
converts with every value in the spec, in the old (`lxc.network.*`) and new (`lxc.net.N.*`)
spellings and cgroup v1 and v2 key names; a spec writes back the config it was read from; what
the spec does not carry is reported line by line. No host needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reconciler.cli.native import convert_native
from reconciler.drivers.base import NotConverted
from reconciler.drivers.lxc import blkio
from reconciler.drivers.lxc.config import LxcConfig
from reconciler.drivers.lxc.mapping import (
    CgroupLayout,
    Context,
    managed_fields,
    unsupported,
    write_spec,
)
from reconciler.drivers.lxc.reading import read_config
from reconciler.model import Domain, canonical

HYBRID = CgroupLayout(frozenset({"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer",
                                 "blkio", "pids"}), frozenset({"hugetlb"}))
V2 = CgroupLayout(frozenset(), frozenset({"cpuset", "cpu", "io", "memory", "pids"}))
HEAD = "lxc.uts.name = box\nlxc.rootfs.path = dir:/srv/roots/box\n"


def convert(tmp_path: Path, body: str) -> tuple[dict[str, Any], list[NotConverted]]:
    path = tmp_path / "box.conf"
    path.write_text(HEAD + body)
    converted = convert_native("lxc", path)
    [obj] = converted.objects
    spec = canonical(obj)
    return spec, converted.not_converted


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def canon(spec: dict[str, Any]) -> dict[str, Any]:
    out = canonical(Domain.model_validate({"kind": "Domain", "name": "box", "type": "lxc",
                                           "filesystems": [ROOT], **spec}))
    out.pop("kind", None)
    return out


ROOT = {"source": "/srv/roots/box", "target": "/"}


def write(spec: dict[str, Any], base: str = HEAD, layout: CgroupLayout = HYBRID,
          last: dict[str, Any] | None = None) -> str:
    cfg = LxcConfig.parse(base)
    write_spec(cfg, spec, managed_fields(spec, last), Context("box", "/var/lib/lxc", layout))
    return cfg.render()


def reread(text: str, layout: CgroupLayout = HYBRID,
           last: dict[str, Any] | None = None) -> dict[str, Any]:
    reading = read_config(text, Context("box", "/var/lib/lxc", layout), last)
    assert not reading.refused and not reading.left_out, (reading.refused, reading.left_out)
    return reading.spec


# ---------------------------------------------------------------------------- block I/O


V1_BLKIO = """\
lxc.cgroup.blkio.weight = 500
lxc.cgroup.blkio.device_weight = 8:16\t1000
lxc.cgroup.blkio.device_weight = 8:0    300
lxc.cgroup.blkio.throttle.read_bps_device = 8:16 1234
lxc.cgroup.blkio.throttle.write_bps_device = 8:16 5678
lxc.cgroup.blkio.throttle.read_iops_device = 8:16 4321
lxc.cgroup.blkio.throttle.write_iops_device = 8:16 8765
"""
BLKIO = {"weight": 500, "devices": [
    {"path": "/dev/block/8:0", "weight": 300},
    {"path": "/dev/block/8:16", "weight": 1000, "read_bytes_sec": 1234,
     "write_bytes_sec": 5678, "read_iops_sec": 4321, "write_iops_sec": 8765}]}


def test_blkio_v1_keys_convert_as_libvirt_reads_them(tmp_path: Path) -> None:
    """libvirt's own lxcconf2xml-blkiotune case: the CFQ weight key and the converter's
    `device_weight` spelling."""
    spec, notes = convert(tmp_path, V1_BLKIO)
    assert spec["blkiotune"] == BLKIO
    assert notes == []


def test_blkio_bfq_and_v2_keys_convert_to_the_same(tmp_path: Path) -> None:
    bfq = ("lxc.cgroup.blkio.bfq.weight = 500\n"
           "lxc.cgroup.blkio.bfq.weight_device = 8:16 1000\n"
           "lxc.cgroup.blkio.bfq.weight_device = 8:0 300\n" +
           "".join(line + "\n" for line in V1_BLKIO.splitlines()[3:]))
    v2 = ("lxc.cgroup2.io.weight = default 500\nlxc.cgroup2.io.weight = 8:16 1000\n"
          "lxc.cgroup2.io.weight = 8:0 300\n"
          "lxc.cgroup2.io.max = 8:16 rbps=1234 wbps=5678 riops=4321 wiops=8765\n")
    for body in (bfq, v2):
        spec, notes = convert(tmp_path, body)
        assert spec["blkiotune"] == BLKIO and notes == [], body


@pytest.mark.parametrize("layout", [HYBRID, V2], ids=["cgroup-v1", "cgroup-v2"])
def test_blkio_writes_this_hosts_keys_and_reads_back(layout: CgroupLayout) -> None:
    spec = canon({"blkiotune": BLKIO})
    text = write(spec, layout=layout)
    lines = text.splitlines()
    if layout is HYBRID:
        assert "lxc.cgroup.blkio.bfq.weight = 500" in lines
        assert "lxc.cgroup.blkio.bfq.weight_device = 8:16 1000" in lines
        assert "lxc.cgroup.blkio.throttle.write_iops_device = 8:16 8765" in lines
    else:
        assert "lxc.cgroup2.io.weight = default 500" in lines
        assert "lxc.cgroup2.io.max = 8:16 rbps=1234 wbps=5678 riops=4321 wiops=8765" in lines
        assert not any(line.startswith("lxc.cgroup.") for line in lines)
    assert reread(text, layout)["blkiotune"] == spec["blkiotune"]
    assert write(spec, text, layout, last=spec) == text   # no rewrite when nothing changed
    # dropped from the spec: every block I/O key goes, other cgroup keys stay
    text = write(canon({}), text + "lxc.cgroup.blkio.leaf_weight = 200\n", layout, last=spec)
    assert "blkiotune" not in reread(text.replace("lxc.cgroup.blkio.leaf_weight = 200\n", ""),
                                     layout)
    assert not any(key in text for key in ("weight_device", "throttle", "io.max", "bfq.weight"))
    assert "lxc.cgroup.blkio.leaf_weight = 200" in text.splitlines()


def test_blkio_weight_file_follows_the_kernel() -> None:
    assert blkio.weight_file(1) == "blkio.bfq.weight"
    assert blkio.weight_file(1, cfq=True) == "blkio.weight"
    assert blkio.weight_file(2) == "io.weight"
    cfq = CgroupLayout(HYBRID.v1, HYBRID.v2, cfq=True)
    assert "lxc.cgroup.blkio.weight = 500" in write(canon({"blkiotune": BLKIO}),
                                                    layout=cfq).splitlines()


def test_blkio_live_values_and_resets() -> None:
    old = canon({"blkiotune": BLKIO})["blkiotune"]
    new = {"weight": 200, "devices": [{"path": "/dev/block/8:16", "read_bytes_sec": 99}]}
    assert blkio.live(new, old, 1, "blkio.bfq.weight") == [
        ("blkio.bfq.weight", "200"),
        ("blkio.bfq.weight_device", "8:0 default"),
        ("blkio.bfq.weight_device", "8:16 default"),
        ("blkio.throttle.write_bps_device", "8:16 0"),
        ("blkio.throttle.read_iops_device", "8:16 0"),
        ("blkio.throttle.write_iops_device", "8:16 0"),
        ("blkio.throttle.read_bps_device", "8:16 99")]
    assert blkio.live(None, new, 2, "io.weight") == [
        ("io.weight", "default 100"),
        ("io.max", "8:16 rbps=max")]


def test_a_block_device_by_name_is_refused_on_lxc() -> None:
    spec = canon({"blkiotune": {"devices": [{"path": "/dev/sda", "weight": 200}]}})
    assert any("MAJ:MIN" in problem for problem in unsupported(spec))


# ---------------------------------------------------------------------------- capabilities


@pytest.mark.parametrize("body, caps", [
    ("lxc.cap.drop = sys_module mac_admin mac_override mknod\n",
     {"drop": ["mac_admin", "mac_override", "mknod", "sys_module"]}),
    ("lxc.cap.drop = sys_module\nlxc.cap.drop = mknod sys_module\n",
     {"drop": ["mknod", "sys_module"]}),
    ("lxc.cap.drop = sys_time\nlxc.cap.drop =\nlxc.cap.drop = net_raw\n",
     {"policy": "allow", "drop": ["net_raw"]}),
    ("lxc.cap.drop =\nlxc.cap.keep = sys_admin net_bind_service\n",
     {"policy": "deny", "keep": ["net_bind_service", "sys_admin"]}),
    ("lxc.cap.keep = none\n", {"policy": "deny"}),
], ids=["drop", "drop-twice", "allow", "deny", "keep-none"])
def test_capabilities_convert(tmp_path: Path, body: str, caps: dict[str, Any]) -> None:
    spec, notes = convert(tmp_path, body)
    assert spec["capabilities"] == caps and notes == []
    text = write(canon({"capabilities": caps}))
    assert reread(text)["capabilities"] == caps


def test_capabilities_lxc_does_not_know_are_reported(tmp_path: Path) -> None:
    spec, notes = convert(tmp_path, "lxc.cap.drop = sys_module 16\n")
    assert "capabilities" not in spec
    assert [(n.line, n.key, n.value) for n in notes] == [(3, "lxc.cap.drop", "sys_module 16")]


def test_capabilities_written_in_place_of_the_templates_line() -> None:
    base = HEAD + "lxc.cap.drop = sys_module mac_admin mac_override sys_time\nlxc.autodev = 1\n"
    text = write(canon({"capabilities": {"policy": "deny", "keep": ["chown"]}}), base)
    assert text.splitlines()[2:5] == ["lxc.cap.drop =", "lxc.cap.keep = chown",
                                      "lxc.autodev = 1"]


# ---------------------------------------------------------------------------- tmpfs mounts


def test_tmpfs_with_size_and_mode_is_a_ram_filesystem(tmp_path: Path) -> None:
    spec, notes = convert(tmp_path, (
        "lxc.mount.entry = tmpfs run tmpfs size=8m,mode=0755,nodev,nosuid 0 0\n"
        "lxc.mount.entry = tmpfs tmp tmpfs size=64m 0 0\n"
        "lxc.mount.entry = tmpfs dev/shm tmpfs defaults,create=dir 0 0\n"   # a template's
        "lxc.mount.entry = tmpfs scratch tmpfs size=50%,noexec 0 0\n"))
    assert spec["filesystems"][1:] == [
        {"type": "ram", "target": "/run", "size": "8MiB", "mode": "0755"},
        {"type": "ram", "target": "/tmp", "size": "64MiB"}]
    assert [(n.line, n.value) for n in notes] == [(6, "tmpfs scratch tmpfs size=50%,noexec 0 0")]
    # written nosuid and nodev, as libvirt mounts its ram filesystems; read back the same
    fss = [ROOT, {"type": "ram", "target": "/run", "size": "8MiB", "mode": "0755"}]
    text = write(canon({"filesystems": fss}))
    assert "lxc.mount.entry = tmpfs run tmpfs size=8388608,mode=0755,nodev,nosuid,create=dir 0 0" \
        in text.splitlines()
    assert reread(text)["filesystems"] == canon({"filesystems": fss})["filesystems"]


def test_a_mount_entry_that_says_the_spec_stays_as_written() -> None:
    base = HEAD + "lxc.mount.entry = tmpfs run tmpfs size=8m,mode=0755 0 0\n"
    spec = read_config(base, Context("box", "/var/lib/lxc", HYBRID)).spec
    more = {**spec, "filesystems": [*spec["filesystems"],
                                    {"source": "/srv/a", "target": "/a"}]}
    text = write(more, base, last=spec)
    assert "lxc.mount.entry = tmpfs run tmpfs size=8m,mode=0755 0 0" in text.splitlines()
    assert "lxc.mount.entry = /srv/a a none bind,create=dir 0 0" in text.splitlines()


# ---------------------------------------------------------------------------- NICs


NEW_NICS = """\
lxc.net.0.type = veth
lxc.net.0.link = br0
lxc.net.0.flags = up
lxc.net.0.name = eth0
lxc.net.1.type = macvlan
lxc.net.1.link = eth1
lxc.net.1.macvlan.mode = passthru
lxc.net.1.flags = up
lxc.net.1.name = eth1
lxc.net.2.type = vlan
lxc.net.2.link = eth1
lxc.net.2.vlan.id = 42
lxc.net.2.flags = up
lxc.net.2.name = eth2
lxc.net.2.hwaddr = 52:54:00:00:00:2A
lxc.net.2.mtu = 1400
lxc.net.2.ipv4.address = 192.0.2.5/24
lxc.net.2.ipv4.gateway = 192.0.2.1
lxc.net.3.type = phys
lxc.net.3.link = eth9
lxc.net.3.flags = up
"""
OLD_NICS = """\
lxc.network.type = veth
lxc.network.link = br0
lxc.network.flags = up
lxc.network.name = eth0
lxc.network.type = macvlan
lxc.network.link = eth1
lxc.network.macvlan.mode = passthru
lxc.network.flags = up
lxc.network.name = eth1
lxc.network.type = vlan
lxc.network.link = eth1
lxc.network.vlan.id = 42
lxc.network.flags = up
lxc.network.name = eth2
lxc.network.hwaddr = 52:54:00:00:00:2A
lxc.network.mtu = 1400
lxc.network.ipv4 = 192.0.2.5/24 192.0.2.255
lxc.network.ipv4.gateway = 192.0.2.1
lxc.network.type = phys
lxc.network.link = eth9
lxc.network.flags = up
"""
MIXED = [
    {"type": "bridge", "source": "br0", "guest_dev": "eth0"},
    {"type": "direct", "source": "eth1", "mode": "passthrough", "guest_dev": "eth1"},
    {"type": "vlan", "source": "eth1", "vlan": 42, "guest_dev": "eth2",
     "mac": "52:54:00:00:00:2a", "mtu": 1400, "ip": ["192.0.2.5/24"], "gateway": "192.0.2.1"},
    {"type": "hostdev", "source": "eth9"}]


@pytest.mark.parametrize("body", [NEW_NICS, OLD_NICS], ids=["lxc.net.N", "lxc.network"])
def test_mixed_nics_convert_in_both_spellings(tmp_path: Path, body: str) -> None:
    spec, notes = convert(tmp_path, body)
    assert spec["interfaces"] == MIXED and notes == []


def test_mixed_nics_write_back_as_lxc_keys() -> None:
    spec = canon({"interfaces": MIXED})
    text = write(spec)
    lines = text.splitlines()
    for line in ("lxc.net.1.macvlan.mode = passthru", "lxc.net.2.type = vlan",
                 "lxc.net.2.vlan.id = 42", "lxc.net.2.link = eth1",
                 "lxc.net.3.type = phys", "lxc.net.3.link = eth9"):
        assert line in lines
    assert reread(text, last=spec)["interfaces"] == spec["interfaces"]
    assert write(spec, text, last=spec) == text


@pytest.mark.parametrize("mode", ["private", "vepa", "bridge", "passthru"])
def test_every_macvlan_mode(tmp_path: Path, mode: str) -> None:
    spec, _ = convert(tmp_path, f"lxc.net.0.type = macvlan\nlxc.net.0.link = eth1\n"
                                f"lxc.net.0.macvlan.mode = {mode}\nlxc.net.0.flags = up\n")
    assert spec["interfaces"] == [{"type": "direct", "source": "eth1",
                                   "mode": "passthrough" if mode == "passthru" else mode}]


@pytest.mark.parametrize("kind", ["none", "empty"])
def test_none_and_empty_networks(tmp_path: Path, kind: str) -> None:
    spec, notes = convert(tmp_path, f"lxc.net.0.type = {kind}\n")
    assert spec["interfaces"] == [{"type": kind}] and notes == []
    text = write(canon({"interfaces": [{"type": kind}]}))
    assert f"lxc.net.0.type = {kind}" in text.splitlines()
    assert not any(line.startswith("lxc.net.0.") and "type" not in line
                   for line in text.splitlines())
    assert reread(text)["interfaces"] == [{"type": kind}]


def test_an_empty_nic_beside_others_says_nothing(tmp_path: Path) -> None:
    spec, notes = convert(tmp_path, "lxc.net.0.type = empty\nlxc.net.1.type = veth\n"
                                    "lxc.net.1.link = br0\nlxc.net.1.flags = up\n")
    assert spec["interfaces"] == [{"type": "bridge", "source": "br0"}] and notes == []


def test_nic_lines_the_model_lacks_are_reported_and_kept(tmp_path: Path) -> None:
    body = ("lxc.net.0.type = vlan\nlxc.net.0.link = eth1\nlxc.net.0.vlan.id = 7\n"
            "lxc.net.0.flags = up\nlxc.net.0.script.up = /usr/local/bin/up\n"
            "lxc.net.1.type = ipvlan\nlxc.net.1.link = eth1\n"
            "lxc.net.2.type = phys\nlxc.net.2.link = eth9\nlxc.net.2.name = wan0\n")
    spec, notes = convert(tmp_path, body)
    assert spec["interfaces"] == [{"type": "vlan", "source": "eth1", "vlan": 7},
                                  {"type": "hostdev", "source": "eth9"}]
    assert [(n.line, n.key) for n in notes] == [
        (7, "lxc.net.0.script.up"), (8, "lxc.net.1.type"), (9, "lxc.net.1.link"),
        (12, "lxc.net.2.name")]
    assert "ipvlan" in notes[1].reason and "phys" in notes[3].reason
    # a rewrite keeps the vlan NIC's own script line as written
    base = HEAD + body.replace("script.up = ", "script.up =  ")
    live = read_config(base, Context("box", "/var/lib/lxc", HYBRID)).spec
    changed = {**live, "interfaces": [{**live["interfaces"][0], "vlan": 8}]}
    lines = write(changed, base, last=live).splitlines()
    assert "lxc.net.0.vlan.id = 8" in lines
    assert "lxc.net.0.script.up =  /usr/local/bin/up" in lines
    assert not any(line.startswith(("lxc.net.1.", "lxc.net.2.")) for line in lines)


def test_a_nic_value_cannot_start_a_second_line() -> None:
    """A spec is hostile: every value the NIC writer takes comes through the model, and the
    config writer refuses a line break however it got there."""
    for bad in ({"type": "vlan", "source": "eth1\nlxc.hook.start = /bin/sh", "vlan": 1},
                {"type": "direct", "source": "eth1", "mode": "bridge\nlxc.hook.start = x"}):
        with pytest.raises(ValueError):
            canon({"interfaces": [bad]})
    cfg = LxcConfig.parse(HEAD)
    with pytest.raises(Exception, match="refusing to write"):
        write_spec(cfg, {"name": "box", "type": "lxc", "filesystems": [ROOT],
                         "interfaces": [{"type": "vlan", "source": "eth1\nlxc.hook.x = y",
                                         "vlan": 1}]},
                   {"interfaces"}, Context("box", "/var/lib/lxc", HYBRID))


# ---------------------------------------------------------------------------- left out


UNKNOWN = """\
# a config with keys the spec has no field for
lxc.uts.name = box
lxc.rootfs.path = dir:/srv/roots/box
lxc.signal.halt = SIGUSR1
lxc.autodev = 1
lxc.start.delay = 5
lxc.group = onboot
lxc.cgroup.devices.allow = c 10:200 rwm
lxc.hook.pre-start = /usr/local/bin/prepare
lxc.mount.entry = proc proc proc nodev,noexec,nosuid 0 0
lxc.prlimit.nofile = 1024
lxc.include = /usr/share/lxc/config/common.conf
lxc.include = /usr/share/lxc/config/nesting.conf
"""


def test_each_key_left_out_is_one_warning_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "box.conf"
    path.write_text(UNKNOWN)
    done = cli("convert", str(path), "--from", "lxc", "--to", "yaml")
    assert done.returncode == 0, done.stderr
    assert "name: box" in done.stdout
    warnings = done.stderr.splitlines()
    assert [line.split(": warning: not converted: ")[0] for line in warnings] == [
        f"{path}:{n}" for n in (6, 7, 8, 9, 11, 13)]
    assert warnings[0] == f"{path}:6: warning: not converted: lxc.start.delay = 5 (no spec " \
        "field for it)"
    assert "lxc.hook.pre-start = /usr/local/bin/prepare (a hook runs a host program" in \
        warnings[3]
    strict = cli("convert", str(path), "--from", "lxc", "--to", "yaml", "--strict")
    assert strict.returncode == 1 and strict.stdout == ""
    assert len(strict.stderr.splitlines()) == 6
    assert all(": error: not converted: " in line for line in strict.stderr.splitlines())


def test_a_value_the_model_refuses_is_reported_at_its_line(tmp_path: Path) -> None:
    spec, notes = convert(tmp_path, "lxc.net.0.type = vlan\nlxc.net.0.link = eth1\n"
                                    "lxc.net.0.vlan.id = 5000\nlxc.net.0.flags = up\n")
    assert "interfaces" not in spec
    assert [(n.line, n.key) for n in notes] == [(3, "lxc.net.0.type"), (4, "lxc.net.0.link"),
                                                (5, "lxc.net.0.vlan.id"),
                                                (6, "lxc.net.0.flags")]
    assert all("model refuses" in n.reason for n in notes)
