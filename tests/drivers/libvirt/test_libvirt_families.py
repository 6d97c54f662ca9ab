"""Block I/O tuning, capabilities and the NIC kinds on libvirt: composed into domain XML and
read back unchanged (pure), defined on test:///default with an empty plan after, refused in the
plan where a hypervisor cannot have them, and on a real libvirtd (lxc:///) read back from the
running guest: its init's capability bounding set, its own network namespace, its cgroup."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from libvirt_support import apply, changes, config, errors, plan

from reconciler.drivers.base import OWNER, Stamp
from reconciler.drivers.libvirt.compose import domain_xml
from reconciler.drivers.libvirt.parse import parse_domain
from reconciler.model import Domain, canonical
from tests.conformance.libvirt_harness import init_pid, lxc_guest_spec

BLKIO = {"weight": 300, "devices": [{"path": "/dev/block/254:0", "weight": 500,
                                     "read_bytes_sec": 1048576, "write_iops_sec": 100}]}
CAPS = {"policy": "allow", "drop": ["mknod", "net_raw", "sys_module"]}
CAP_BITS = {"mknod": 27, "net_raw": 13, "sys_module": 16, "sys_admin": 21}


def _canon(spec: dict[str, Any]) -> dict[str, Any]:
    out = canonical(Domain.model_validate(spec))
    out.pop("kind", None)
    return out


def _write(specs: Path, spec: dict[str, Any]) -> None:
    specs.mkdir(exist_ok=True)
    (specs / f"{spec['name']}.yaml").write_text(yaml.safe_dump(spec))


@pytest.mark.parametrize("more", [
    {"blkiotune": BLKIO, "capabilities": CAPS},
    {"capabilities": {"policy": "deny", "keep": ["chown", "kill"]},
     "interfaces": [{"type": "empty"}]},
    {"interfaces": [{"type": "none"}]},
    {"interfaces": [{"type": "direct", "source": "eth0", "mode": "passthrough"},
                    {"type": "vlan", "source": "eth0", "vlan": 7}]},
], ids=["blkio-caps", "deny-empty", "none", "direct-vlan"])
def test_new_fields_survive_compose_and_parse(more: dict[str, Any]) -> None:
    spec = _canon({"kind": "Domain", "name": "g", "type": "lxc", "memory": "64MiB",
                   "filesystems": [{"source": "/srv/g", "target": "/"}], **more})
    xml = domain_xml(spec, Stamp(OWNER, None, spec), existing=None, translate_templates=True,
                     template_source=lambda fs: None)
    parsed = parse_domain(xml, "g")
    assert parsed.error is None and parsed.spec == spec


def test_privnet_beside_nics_stays_a_feature() -> None:
    xml = ("<domain type='lxc'><name>g</name><os><type>exe</type></os>"
           "<features><privnet/><capabilities policy='deny'><chown state='on'/>"
           "</capabilities></features><devices><interface type='bridge'>"
           "<source bridge='br0'/></interface></devices></domain>")
    parsed = parse_domain(xml, "g")
    assert parsed.spec is not None
    assert parsed.spec["capabilities"] == {"policy": "deny", "keep": ["chown"]}
    assert parsed.spec["interfaces"] == [{"type": "bridge", "source": "br0"}]
    assert parsed.spec["xml"] == ["<features><privnet></privnet></features>"]


def test_on_the_test_hypervisor_blkio_applies_and_container_settings_are_refused(
        test_conn: Any, prefix: str, tmp_path: Path) -> None:
    specs, cfg = tmp_path / "specs", config(tmp_path / "state", "test:///default", prefix)
    base = {"kind": "Domain", "type": "test", "os": {"type": "hvm"}, "memory": "128MiB",
            "state": "stopped"}
    tuned, caps = f"{prefix}t", f"{prefix}c"
    _write(specs, {**base, "name": tuned, "blkiotune": BLKIO, "interfaces": [
        {"type": "direct", "source": "eth0", "mode": "vepa"}]})
    _write(specs, {**base, "name": caps, "capabilities": CAPS})
    first, report = apply(specs, cfg)
    assert not errors(report), errors(report)
    refused = next(o for o in first.objects if o.ref.name == caps)
    assert refused.action == "refused"
    assert [r.field for r in refused.refusals] == ["capabilities"]
    xml = test_conn.lookupByName(tuned).XMLDesc(0)
    assert "<read_bytes_sec>1048576</read_bytes_sec>" in xml and "<weight>300</weight>" in xml
    assert changes(plan(specs, cfg)) == {f"domain/{caps}": ["refused"]}


def test_a_libvirt_lxc_guest_gets_its_capabilities_private_network_and_blkio_weight(
        lxc_conn: Any, prefix: str, tmp_path: Path) -> None:
    name, root = f"{prefix}fam", tmp_path / "roots" / f"{prefix}fam"
    specs, cfg = tmp_path / "specs", config(tmp_path / "state", "lxc:///", prefix)
    spec = {**lxc_guest_spec(name, root, "sleep 100000"), "capabilities": CAPS,
            "blkiotune": {"weight": 300}, "interfaces": [{"type": "empty"}]}
    _write(specs, spec)
    _, report = apply(specs, cfg)
    assert not errors(report), errors(report)
    pid = init_pid(lxc_conn.lookupByName(name).ID())
    assert pid is not None
    status = Path(f"/proc/{pid}/status").read_text()
    bounding = int(next(line.split()[1] for line in status.splitlines()
                        if line.startswith("CapBnd:")), 16)
    assert not any(bounding >> CAP_BITS[cap] & 1 for cap in CAPS["drop"])
    assert bounding >> CAP_BITS["sys_admin"] & 1
    assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
    assert sorted(os.listdir(f"/proc/{pid}/root/sys/class/net")) == ["lo"]
    weight = Path(f"/sys/fs/cgroup/blkio/machine/{name}.libvirt-lxc/blkio.bfq.weight")
    if weight.exists():
        assert weight.read_text().strip() == "300"
    assert changes(plan(specs, cfg)) == {}
