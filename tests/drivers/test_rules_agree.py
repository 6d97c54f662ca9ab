"""`sim` says what the real driver does: for every technology a real driver runs and every
field of the model, the update class `sim` gives (imitating that technology) is the real
driver's, and so is what each refuses. Both read reconciler/rules; this keeps it so."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest

from reconciler.drivers.base import Driver
from reconciler.drivers.lxc import LxcDriver
from reconciler.drivers.sim import SimDriver
from reconciler.model import Domain
from reconciler.model.fields import NESTED, Ref
from reconciler.rules.libvirt import SCHEME_TYPES


def _fields() -> list[str]:
    """Every field name a diff can carry: top-level fields, and nested settings flattened."""
    out = []
    for name, info in Domain.model_fields.items():
        if name in NESTED:
            model = next(a for a in typing.get_args(info.annotation) if a is not type(None))
            out += [f"{name}.{sub}" for sub in model.model_fields]
        else:
            out.append(name)
    return sorted(out)


FIELDS = _fields()
ROOT = {"type": "template", "name": "busybox", "target": "/"}
MOUNTS = [
    (None, None), ([ROOT], [ROOT, {"source": "/srv/a", "target": "/a"}]),
    ([ROOT], [{**ROOT, "name": "download"}]),
    ([{"source": "/srv/r", "target": "/"}], [{"source": "/srv/s", "target": "/"}]),
    ([{"source": "/srv/r", "target": "/"}], [ROOT]),
]
SAMPLES: list[dict[str, Any]] = [
    {"limits": {"numproc": [65, 65]}},
    {"uuid": "8dfd44b3-1e76-d8d3-3515-0a2d98211ea0"},
    {"interfaces": [{"type": "network", "source": "default"}]},
    {"filesystems": [{"type": "template", "name": "debian", "target": "/"}]},
    {"filesystems": [{**ROOT, "options": ["--rootfs=/etc"]}]},
    {"filesystems": [{"source": "/srv/r", "target": "/"}], "dns": {"nameservers": ["1.1.1.1"]}},
    {"init": {"cmd": "/bin/sh", "args": ["-c", "echo hi"]}},
    {"memory": "64MiB", "memtune": {"hard_limit": "128MiB"}},
    {"scheduler": {"fill_rate": 10}},
    {},
]
# block I/O tuning, capabilities, NIC kinds and ram modes, by name
FAMILIES: dict[str, dict[str, Any]] = {
    "blkio": {"blkiotune": {"weight": 500, "devices": [{"path": "/dev/block/8:0",
                                                        "read_bytes_sec": 1048576}]}},
    "blkio-by-name": {"blkiotune": {"devices": [{"path": "/dev/sda", "weight": 200}]}},
    "caps-allow": {"capabilities": {"policy": "allow", "drop": ["sys_module", "bpf"]}},
    "caps-default-keep": {"capabilities": {"keep": ["net_raw"]}},
    "vlan-macvlan": {"interfaces": [{"type": "vlan", "source": "eth0", "vlan": 10},
                                    {"type": "direct", "source": "eth0", "mode": "passthrough"}]},
    "none": {"interfaces": [{"type": "none"}]},
    "empty": {"interfaces": [{"type": "empty"}]},
    "ram-mode": {"filesystems": [ROOT, {"type": "ram", "target": "/run", "size": "8MiB",
                                        "mode": "0755"}]},
}
SAMPLES += FAMILIES.values()


def _openvz(tmp: Path) -> list[tuple[str, str, Driver]]:
    """The openvz driver on simulated hosts (legacy and OpenVZ 7) that have the templates the
    samples name in their cache (the driver refuses a template the host does not have)."""
    from reconciler.drivers.openvz import OpenvzDriver
    from tests.sims.openvz.host import VzHost

    out: list[tuple[str, str, Driver]] = []
    for tech, version in (("openvz", "legacy"), ("openvz7", "7")):
        host = VzHost(tmp / f"vz{version}", "7" if version == "7" else "4")
        for template in ("busybox", "debian"):
            host.write_template(template)
        out.append((tech, "openvz", OpenvzDriver(
            tmp / "state", conf_dir=str(host.conf_dir), vz_conf=str(host.vz_conf),
            version=version)))
    return out


def _vserver(tmp: Path) -> list[tuple[str, str, Driver]]:
    """The vserver driver on a simulated util-vserver host whose template directory has the
    tarballs the samples name (a `method: template` root names one of them)."""
    from reconciler.drivers.vserver import VserverDriver
    from tests.conformance.vserver_harness import driver_options
    from tests.sims.vserver.host import VsHost, make_template

    host = VsHost(tmp / "vs")
    for template in ("busybox", "debian", "download"):
        make_template(host.template_dir / f"{template}.tar.gz", {"etc/hostname": "x\n"})
    return [("vserver", "vserver", VserverDriver(tmp / "state", **driver_options(host)))]


def _lxd(tmp: Path) -> list[tuple[str, str, Driver]]:
    """The lxd driver, with and without raw.lxc (it talks to no daemon until it observes)."""
    from reconciler.drivers.lxd import LxdDriver

    remote = f"unix://{tmp / 'no-daemon' / 'unix.socket'}"
    return [("lxd", "lxc", LxdDriver(tmp / "state", remote=remote)),
            ("lxd-raw", "lxc", LxdDriver(tmp / "state", remote=remote, raw_lxc=True))]


def _technologies(tmp: Path) -> list[tuple[str, str, Driver]]:
    """(technology, domain type, the real driver running it)."""
    templates = tmp / "templates"
    templates.mkdir(exist_ok=True)
    for name in ("busybox", "download"):
        script = templates / f"lxc-{name}"
        script.write_text("#!/bin/sh\n")
        script.chmod(0o755)
    out: list[tuple[str, str, Driver]] = [
        ("lxc", "lxc", LxcDriver(tmp / "state", lxcpath=str(tmp / "lxc"),
                                 template_dir=str(templates))), *_openvz(tmp), *_vserver(tmp),
        *_lxd(tmp)]
    try:
        from reconciler.drivers.libvirt import LibvirtDriver
    except ImportError:  # pragma: no cover - libvirt-python is a test dependency
        return out
    for scheme, types in sorted(SCHEME_TYPES.items()):
        out.append((f"libvirt-{scheme}", types[0],
                    LibvirtDriver(tmp / "state", uri=f"{scheme}:///system")))
    return out


@pytest.fixture
def pairs(tmp_path: Path) -> list[tuple[str, str, Driver, SimDriver]]:
    return [(tech, dtype, real, SimDriver(tmp_path / "sim", imitate={dtype: tech}))
            for tech, dtype, real in _technologies(tmp_path)]


def test_every_technology_and_field_has_one_update_class(pairs: Any) -> None:
    ref = Ref("Domain", "g")
    compared = 0
    for tech, dtype, real, sim in pairs:
        for field in FIELDS:
            for old, new in MOUNTS if field == "filesystems" else [(None, None)]:
                want = real.update_class(ref, dtype, field, old, new)
                assert sim.update_class(ref, dtype, field, old, new) == want, (tech, field)
                compared += 1
    assert compared == len(pairs) * (len(FIELDS) + len(MOUNTS) - 1)
    assert {tech for tech, *_ in pairs} >= {"lxc", "libvirt-lxc", "libvirt-qemu", "libvirt-test",
                                            "openvz", "openvz7", "vserver"}
    by = {tech: (real, dtype) for tech, dtype, real, _ in pairs}
    lxc, _ = by["lxc"]
    # the cases that drifted apart before sim read the drivers' own rules
    assert lxc.update_class(ref, "lxc", "cpu.count") == "live"
    assert lxc.update_class(ref, "lxc", "dns.nameservers") == "live"
    libvirt_lxc, _ = by["libvirt-lxc"]
    assert libvirt_lxc.update_class(ref, "lxc", "hostname") == "live"
    assert libvirt_lxc.update_class(ref, "lxc", "filesystems", [ROOT],
                                    [{**ROOT, "name": "empty"}]) == "recreate"
    for tech in ("openvz", "openvz7"):  # reference §1.7, both versions
        openvz, _ = by[tech]
        classes = {f: openvz.update_class(ref, "openvz", f) for f in (
            "memory", "limits", "cpu.shares", "cpu.limit", "cpu.count", "quota.space",
            "quota.inodes", "interfaces", "hostname", "dns.nameservers", "autostart",
            "quota.ugid_limit", "id", "uuid", "type")}
        assert classes == {"memory": "live", "limits": "live", "cpu.shares": "live",
                           "cpu.limit": "live", "cpu.count": "live", "quota.space": "live",
                           "quota.inodes": "live", "interfaces": "live", "hostname": "live",
                           "dns.nameservers": "live", "autostart": "live",
                           "quota.ugid_limit": "restart", "id": "recreate",
                           "uuid": "recreate", "type": "recreate"}, tech
        assert openvz.update_class(ref, "openvz", "filesystems", [ROOT],
                                   [{**ROOT, "name": "debian"}]) == "recreate"
    vserver, _ = by["vserver"]  # reference §2.6: pushed by vsched, vuname, naddress, vlimit
    classes = {f: vserver.update_class(ref, "vserver", f) for f in (
        "hostname", "arch", "scheduler.fill_rate", "scheduler.cpus", "interfaces", "memory",
        "memtune.soft_limit", "limits", "autostart", "id", "init.cmd", "init.env", "type")}
    assert classes == {"hostname": "live", "arch": "live", "scheduler.fill_rate": "live",
                       "scheduler.cpus": "live", "interfaces": "live", "memory": "live",
                       "memtune.soft_limit": "live", "limits": "live", "autostart": "live",
                       "id": "restart", "init.cmd": "restart", "init.env": "restart",
                       "type": "recreate"}
    mount = {"source": "/srv/a", "target": "/a"}
    assert vserver.update_class(ref, "vserver", "filesystems", [ROOT],
                                [ROOT, mount]) == "restart"
    assert vserver.update_class(ref, "vserver", "filesystems", [ROOT],
                                [{**ROOT, "name": "debian"}]) == "recreate"


def test_sim_refuses_exactly_what_the_real_driver_refuses(pairs: Any) -> None:
    for tech, dtype, real, sim in pairs:
        for sample in SAMPLES:
            spec = {"name": "g", "type": dtype, "filesystems": [ROOT], **sample}
            if tech.startswith("libvirt") and dtype not in ("lxc", "openvz", "vz"):
                spec.setdefault("os", {"type": "hvm"})
            canon = Domain.model_validate(spec).model_dump(mode="json", exclude_defaults=True)
            assert sim.check("Domain", dtype, canon) == real.check("Domain", dtype, canon), \
                (tech, sample)
    lxc = next(real for tech, _, real, _ in pairs if tech == "lxc")
    refused = lxc.check("Domain", "lxc", {"name": "g", "type": "lxc", "filesystems": [ROOT],
                                          "limits": {"numproc": [65, 65]}})
    assert [(r.field, r.reason) for r in refused] == [("limits", "not an LXC setting")]
    # what the two OpenVZ versions refuse differently (§1.3): O7 has no bridge, ignores some
    # beancounters and QUOTATIME
    by = {tech: real for tech, _, real, _ in pairs}
    spec = {"name": "g", "type": "openvz", "filesystems": [ROOT],
            "limits": {"numtcpsock": [80, 80]}, "quota": {"time": 0},
            "interfaces": [{"type": "bridge", "source": "br0", "guest_dev": "eth0"}]}
    assert by["openvz"].check("Domain", "openvz", spec) == []
    assert [r.field for r in by["openvz7"].check("Domain", "openvz", spec)] == [
        "limits.numtcpsock", "quota.time", "interfaces.0.type"]
    # what VServer cannot express (§2): IP isolation only, one address an interface, the
    # token-bucket scheduler for CPU, a root built by `vserver build`
    spec = {"name": "g", "type": "vserver", "uuid": "8dfd44b3-1e76-d8d3-3515-0a2d98211ea0",
            "cpu": {"shares": 512}, "filesystems": [ROOT, {"source": "/srv/a b",
                                                         "target": "/a"}],
            "interfaces": [{"type": "bridge", "source": "br0"},
                           {"type": "routed", "ip": ["192.0.2.1", "192.0.2.2"]}]}
    assert [r.field for r in by["vserver"].check("Domain", "vserver", spec)] == [
        "uuid", "cpu", "filesystems.1.source", "interfaces.0.type", "interfaces.1.ip"]


def test_block_io_capabilities_and_nic_kinds_on_each_technology(pairs: Any) -> None:
    """LXC applies block I/O tuning live (lxc-cgroup); capabilities and NICs need a restart;
    libvirt has no VLAN NIC and no ram filesystem mode, and only its LXC driver has
    capabilities and a container network namespace."""
    ref = Ref("Domain", "g")
    by = {tech: (real, dtype) for tech, dtype, real, _ in pairs}
    lxc, _ = by["lxc"]
    assert [lxc.update_class(ref, "lxc", f) for f in ("blkiotune", "capabilities",
                                                      "interfaces")] == [
        "live", "restart", "restart"]
    libvirt_lxc, _ = by["libvirt-lxc"]
    assert libvirt_lxc.update_class(ref, "lxc", "blkiotune") == "restart"

    def refused(tech: str, sample: dict[str, Any]) -> list[str]:
        real, dtype = by[tech]
        spec = {"name": "g", "type": dtype, "filesystems": [ROOT], **sample}
        if dtype not in ("lxc", "openvz", "vz"):
            spec.setdefault("os", {"type": "hvm"})
        canon = Domain.model_validate(spec).model_dump(mode="json", exclude_defaults=True)
        return [r.field for r in real.check("Domain", dtype, canon)]

    assert refused("lxc", FAMILIES["blkio-by-name"]) == ["blkiotune.devices.0.path"]
    assert refused("lxc", FAMILIES["caps-default-keep"]) == ["capabilities.keep"]
    assert refused("lxc", FAMILIES["blkio"]) == refused("lxc", FAMILIES["vlan-macvlan"]) == []
    assert refused("libvirt-lxc", FAMILIES["caps-allow"]) == ["capabilities"]   # bpf
    assert refused("libvirt-lxc", FAMILIES["caps-default-keep"]) == []
    assert refused("libvirt-lxc", FAMILIES["vlan-macvlan"]) == ["interfaces.0.type"]
    assert refused("libvirt-lxc", FAMILIES["ram-mode"]) == ["filesystems.1.mode"]
    assert refused("libvirt-lxc", FAMILIES["none"]) == refused("libvirt-lxc",
                                                               FAMILIES["empty"]) == []
    assert refused("libvirt-qemu", FAMILIES["none"]) == ["interfaces.0.type"]
    assert refused("libvirt-qemu", FAMILIES["caps-default-keep"]) == ["capabilities"]


def test_lxd_classes_follow_what_lxd_applies_to_a_running_container(pairs: Any) -> None:
    """limits.* and disk devices apply live; the id map, environment, raw.lxc, NICs and a
    move need a restart; a new image is a new instance. Placement is LXD's alone."""
    ref = Ref("Domain", "g")
    by = {tech: real for tech, _, real, _ in pairs}
    lxd = by["lxd"]
    classes = {f: lxd.update_class(ref, "lxc", f) for f in (
        "memory", "cpu.count", "cpu.quota", "limits", "autostart", "start_order",
        "dns.nameservers", "idmap", "init.env", "init.cmd", "capabilities", "interfaces",
        "target", "allow_move", "type")}
    assert classes == {"memory": "live", "cpu.count": "live", "cpu.quota": "live",
                       "limits": "live", "autostart": "live", "start_order": "live",
                       "dns.nameservers": "live", "idmap": "restart", "init.env": "restart",
                       "init.cmd": "restart", "capabilities": "restart",
                       "interfaces": "restart", "target": "restart", "allow_move": "live",
                       "type": "recreate"}
    mount = {"source": "/srv/a", "target": "/a"}
    assert lxd.update_class(ref, "lxc", "filesystems", [ROOT], [ROOT, mount]) == "live"
    assert lxd.update_class(ref, "lxc", "filesystems", [ROOT],
                            [{**ROOT, "name": "debian"}]) == "recreate"
    assert lxd.update_class(ref, "lxc", "target", "node1", None) == "live"  # moves nothing

    def refused(tech: str, sample: dict[str, Any]) -> list[str]:
        spec = {"name": "g", "type": "lxc", "filesystems": [ROOT], **sample}
        canon = Domain.model_validate(spec).model_dump(mode="json", exclude_defaults=True)
        return [r.field for r in by[tech].check("Domain", "lxc", canon)]

    assert refused("lxd", {"target": "node2", "allow_move": True}) == []
    assert refused("lxc", {"target": "node2"}) == ["target"]
    assert refused("libvirt-lxc", {"target": "@ssd"}) == ["target"]
    assert refused("vserver", {"target": "node2"}) == ["target"]
    assert refused("lxd", FAMILIES["caps-allow"]) == ["capabilities"]  # raw.lxc not allowed
    assert refused("lxd-raw", FAMILIES["caps-allow"]) == []
    assert refused("lxd", FAMILIES["none"]) == ["interfaces.0.type"]
    assert refused("lxd", FAMILIES["empty"]) == []
    assert refused("lxd", {"cpu": {"shares": 512}}) == ["cpu.shares"]
    assert refused("lxd", {"limits": {"numproc": [65, 65]}}) == []
