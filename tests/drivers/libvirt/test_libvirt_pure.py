"""The libvirt driver's pure parts, from captured libvirt XML: no libvirt needed."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from lxml import etree

from reconciler.drivers.base import Stamp
from reconciler.drivers.libvirt import compose, connection, normalize, storage
from reconciler.drivers.libvirt.parse import Q_STATE, parse_domain, parse_network
from reconciler.errors import ConfigError, PermanentError, TransientError
from reconciler.model import Domain, canonical

STAMP = Stamp("reconciler", "/specs/web.yaml", {"name": "web", "type": "lxc"})

# `virsh dumpxml --inactive` of a domain we defined from SPEC (libvirt 9.0, LXC driver)
SPEC = canonical(Domain.model_validate({
    "name": "web", "type": "lxc", "memory": "64MiB", "init": {"cmd": "/bin/sh"},
    "filesystems": [{"type": "mount", "source": "/srv/web", "target": "/"}],
    "interfaces": [{"type": "bridge", "source": "br0", "ip": ["10.0.0.5/24"]}],
    "console": {"type": "pty"}, "xml": ['<features><privnet></privnet></features>']}))
SPEC.pop("kind", None)
LIVE_XML = f"""<domain type='lxc'>
  <name>web</name>
  <uuid>9f3e3bdf-9ec6-4661-895e-f96a10b0e58e</uuid>
  <metadata>
    <rcs:state xmlns:rcs="urn:reconciler:state:1">{escape(json.dumps(Stamp("reconciler", None,
                                                                          SPEC).to_json()))}</rcs:state>
  </metadata>
  <memory unit='KiB'>65536</memory>
  <currentMemory unit='KiB'>65536</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <resource>
    <partition>/machine</partition>
  </resource>
  <os>
    <type arch='x86_64'>exe</type>
    <init>/bin/sh</init>
  </os>
  <features>
    <privnet/>
  </features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/lib/libvirt/libvirt_lxc</emulator>
    <filesystem type='mount' accessmode='passthrough'>
      <source dir='/srv/web'/>
      <target dir='/'/>
    </filesystem>
    <interface type='bridge'>
      <mac address='52:54:00:AA:bb:01'/>
      <source bridge='br0'/>
      <ip address='10.0.0.5' family='ipv4' prefix='24'/>
    </interface>
    <console type='pty'>
      <target type='lxc' port='0'/>
    </console>
  </devices>
  <seclabel type='none' model='none'/>
</domain>
"""


# --------------------------------------------------------------------------- parse

def test_parse_reads_the_stamp_and_leaves_it_out_of_the_spec() -> None:
    parsed = parse_domain(LIVE_XML, "web")
    assert parsed.stamp is not None and parsed.stamp.spec == SPEC
    assert parsed.spec is not None
    assert not any("urn:reconciler:state" in piece for piece in parsed.spec.get("xml", ()))
    assert parsed.spec["uuid"] == "9f3e3bdf-9ec6-4661-895e-f96a10b0e58e"


def test_parse_reports_what_the_loader_refuses() -> None:
    bad = LIVE_XML.replace("<name>web</name>", "<name>no spaces allowed</name>")
    parsed = parse_domain(bad, "no spaces allowed")
    assert parsed.spec is None and parsed.error


def test_parse_drops_device_addresses_unless_the_spec_has_them() -> None:
    xml = LIVE_XML.replace("<console type='pty'>",
                           "<console type='pty'><alias name='console0'/>")
    parsed = parse_domain(xml, "web")
    assert parsed.spec is not None
    assert parsed.spec["console"] == {}  # one pty console: the model's default, typed
    assert "devices_xml" in parsed.spec  # the emulator; no untyped console


# --------------------------------------------------------------------------- normalize

def test_projection_makes_host_filled_values_disappear() -> None:
    parsed = parse_domain(LIVE_XML, "web")
    assert parsed.spec is not None
    live = normalize.project_domain(parsed.spec, SPEC)
    for field in ("filesystems", "interfaces", "xml", "console", "init", "memory"):
        assert live[field] == SPEC[field], field
    assert "devices_xml" not in live  # the emulator path: never in the spec


def test_projection_keeps_drift_of_what_the_spec_names() -> None:
    drifted = LIVE_XML.replace("<privnet/>", "<privnet/><capabilities policy='deny'/>") \
        .replace("10.0.0.5", "10.0.0.99")
    parsed = parse_domain(drifted, "web")
    assert parsed.spec is not None
    live = normalize.project_domain(parsed.spec, SPEC)
    assert live["interfaces"][0]["ip"] == ["10.0.0.99/24"]
    assert live["xml"] == SPEC["xml"]  # a child of a kind the spec has none of: not managed


def test_projection_orders_pieces_as_the_spec_and_keeps_extras_of_managed_kinds() -> None:
    ref = ['<on_crash>restart</on_crash>', '<clock offset="localtime"></clock>']
    live = ['<clock offset="localtime"></clock>', '<on_poweroff>destroy</on_poweroff>',
            '<on_crash>restart</on_crash>', '<on_crash>destroy</on_crash>']
    assert normalize.project_pieces(live, ref) == [
        '<on_crash>restart</on_crash>', '<clock offset="localtime"></clock>',
        '<on_crash>destroy</on_crash>']


def test_projection_of_elements_pairs_children_by_tag_and_type() -> None:
    ref = ['<disk device="disk" type="file"><source file="/a.img"></source>'
           '<target dev="vda"></target></disk>']
    live = ['<disk device="disk" type="file"><driver name="qemu" type="raw"></driver>'
            '<target bus="virtio" dev="vda"></target><source file="/a.img"></source></disk>',
            '<controller index="0" type="usb"></controller>']
    assert normalize.project_pieces(live, ref) == ref


def test_projection_spells_macs_as_the_spec() -> None:
    spec = {**SPEC, "interfaces": [{**SPEC["interfaces"][0], "mac": "52:54:00:aa:BB:01"}]}
    parsed = parse_domain(LIVE_XML, "web")
    assert parsed.spec is not None
    assert normalize.project_domain(parsed.spec, spec)["interfaces"] == spec["interfaces"]


def test_a_mount_built_from_a_template_reads_back_as_the_template() -> None:
    ref_fs = {"type": "template", "name": "busybox", "target": "/"}
    live = {"name": "a", "type": "lxc",
            "filesystems": [{"source": "/state/libvirt/roots/a", "target": "/",
                             "accessmode": "passthrough"}]}
    out = normalize.project_domain(live, {"filesystems": [ref_fs]},
                                   lambda fs: "/state/libvirt/roots/a")
    assert out["filesystems"] == [ref_fs]
    moved = normalize.project_domain(live, {"filesystems": [ref_fs]}, lambda fs: "/elsewhere")
    assert moved["filesystems"] == [{"target": "/"}]  # mount source moved: shows as a diff


def test_network_projection_drops_generated_bridge_name() -> None:
    xml = """<network><name>n</name><uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>
      <forward dev='eth0' mode='nat'><interface dev='eth0'/></forward>
      <bridge name='virbr7' stp='on' delay='0'/><mac address='52:54:00:0a:0b:0c'/>
      <ip address='10.9.0.1' prefix='24'><dhcp><host mac='AA:BB:CC:DD:EE:FF' ip='10.9.0.5'/>
      </dhcp></ip></network>"""
    parsed = parse_network(xml, "n")
    assert parsed.spec is not None
    ref = {"name": "n", "forward": {"dev": "eth0"}, "bridge": {"stp": True},
           "ips": [{"address": "10.9.0.1/24",
                    "dhcp_hosts": [{"mac": "aa:bb:cc:dd:ee:ff", "ip": "10.9.0.5"}]}]}
    live = normalize.project_network(parsed.spec, ref)
    assert live["bridge"] == {"stp": True} and live["forward"] == ref["forward"]
    assert live["ips"] == ref["ips"]
    assert "bridge" in normalize.project_network(parsed.spec, {"name": "n"})  # not compared


def test_forward_with_one_interface_is_the_same_as_forward_dev() -> None:
    ref = {"forward": {"mode": "bridge", "xml": ['<interface dev="eth10"></interface>']}}
    live = {"forward": {"mode": "bridge", "dev": "eth10"}}
    assert normalize.project_network(live, ref)["forward"] == ref["forward"]


def test_import_drops_what_libvirt_fills_in() -> None:
    parsed = parse_domain(LIVE_XML, "web")
    assert parsed.spec is not None
    spec = normalize.strip_domain_defaults(parsed.spec)
    assert "arch" not in spec and "current_memory" not in spec and "cpu" not in spec
    assert spec["xml"] == ['<features><privnet></privnet></features>']
    assert "devices_xml" not in spec
    assert spec["filesystems"] == [{"source": "/srv/web", "target": "/"}]
    assert spec["interfaces"][0]["mac"] == "52:54:00:aa:bb:01"  # identity: kept


# --------------------------------------------------------------------------- compose

def _root(xml: str) -> etree._Element:
    return etree.fromstring(xml.encode())


def test_define_continues_the_existing_definition() -> None:
    xml = compose.domain_xml(SPEC, STAMP, existing=LIVE_XML, translate_templates=True,
                             template_source=lambda fs: None)
    root = _root(xml)
    assert root.findtext("uuid") == "9f3e3bdf-9ec6-4661-895e-f96a10b0e58e"
    assert root.find("devices/interface/mac").get("address") == "52:54:00:AA:bb:01"
    assert root.find("resource/partition").text == "/machine"
    stamp = json.loads(root.find(f"metadata/{Q_STATE}").text)
    assert stamp == STAMP.to_json()


def test_a_new_domain_gets_no_host_values() -> None:
    root = _root(compose.domain_xml(SPEC, STAMP, existing=None, translate_templates=True,
                                    template_source=lambda fs: None))
    assert root.find("uuid") is None and root.find("devices/interface/mac") is None
    assert root.find("resource") is None


def _nic(source: str, ip: str, mac: str | None = None) -> dict[str, Any]:
    nic: dict[str, Any] = {"type": "bridge", "source": source, "ip": [ip]}
    if mac:
        nic["mac"] = mac
    return nic


def test_nic_macs_follow_the_nic_not_the_position() -> None:
    spec = {**SPEC, "interfaces": [_nic("br0", "10.0.0.5/24"), _nic("br0", "10.0.0.6/24")]}
    old = compose.domain_xml(spec, STAMP, existing=None, translate_templates=False,
                             template_source=lambda fs: None)
    old_root = _root(old)
    for index, nic in enumerate(old_root.findall("devices/interface")):
        etree.SubElement(nic, "mac", address=f"52:54:00:00:00:0{index}")
    existing = etree.tostring(old_root).decode()
    # a new NIC in front, the second old one gone: the survivor keeps its MAC
    new = {**SPEC, "interfaces": [_nic("br1", "10.1.0.1/24"), _nic("br0", "10.0.0.5/24")]}
    root = _root(compose.domain_xml(new, STAMP, existing=existing, translate_templates=False,
                                    template_source=lambda fs: None))
    macs = [(n.find("source").get("bridge"), n.find("mac")) for n in
            root.findall("devices/interface")]
    assert macs[0][1] is None  # a new NIC: libvirt draws its MAC
    assert macs[1][1].get("address") == "52:54:00:00:00:00"
    # same type and source but otherwise changed: still the same NIC
    changed = {**SPEC, "interfaces": [_nic("br0", "10.0.0.7/24")]}
    root = _root(compose.domain_xml(changed, STAMP, existing=existing, translate_templates=False,
                                    template_source=lambda fs: None))
    assert root.find("devices/interface/mac").get("address") == "52:54:00:00:00:00"


def test_a_mac_named_in_the_spec_is_never_given_to_another_nic() -> None:
    spec = {**SPEC, "interfaces": [_nic("br0", "10.0.0.6/24"),
                                   _nic("br0", "10.0.0.5/24", "52:54:00:aa:bb:01")]}
    root = _root(compose.domain_xml(spec, STAMP, existing=LIVE_XML, translate_templates=False,
                                    template_source=lambda fs: None))
    nics = root.findall("devices/interface")
    assert nics[0].find("mac") is None
    assert nics[1].find("mac").get("address") == "52:54:00:aa:bb:01"


def test_template_filesystem_becomes_a_mount_of_its_directory() -> None:
    spec = {**SPEC, "filesystems": [{"type": "template", "name": "busybox", "target": "/",
                                     "method": "copy"}]}
    root = _root(compose.domain_xml(spec, STAMP, existing=None, translate_templates=True,
                                    template_source=lambda fs: "/roots/web"))
    fs = root.find("devices/filesystem")
    assert fs.get("type") == "mount" and fs.find("source").get("dir") == "/roots/web"
    # the extension's per-filesystem part no longer lines up: gone (the stamp keeps it)
    assert root.find("metadata/{urn:reconciler:spec:1}spec/{urn:reconciler:spec:1}"
                     "filesystems") is None
    kept = _root(compose.domain_xml(spec, STAMP, existing=None, translate_templates=False,
                                    template_source=lambda fs: "/roots/web"))
    assert kept.find("devices/filesystem").get("type") == "template"


def test_a_custom_resource_partition_is_not_carried_over() -> None:
    custom = LIVE_XML.replace("<partition>/machine</partition>", "<partition>/x</partition>")
    root = _root(compose.domain_xml(SPEC, STAMP, existing=custom, translate_templates=True,
                                    template_source=lambda fs: None))
    assert root.find("resource") is None


def test_network_continues_uuid_bridge_and_mac() -> None:
    existing = """<network><name>n</name><uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>
      <bridge name='virbr7' stp='on' delay='0'/><mac address='52:54:00:0a:0b:0c'/>
      <ip address='10.9.0.1' prefix='24'/></network>"""
    spec = {"name": "n", "ips": [{"address": "10.9.0.1/24"}]}
    root = _root(compose.network_xml(spec, STAMP, existing=existing))
    assert root.findtext("uuid") == "81ff0d90-c91e-6742-64da-4a736edb9a9b"
    assert root.find("bridge").get("name") == "virbr7"
    assert root.find("mac").get("address") == "52:54:00:0a:0b:0c"
    host_bridge = {"name": "n", "forward": {"mode": "bridge"}, "bridge": {"name": "br0"}}
    root = _root(compose.network_xml(host_bridge, STAMP, existing=existing))
    assert root.find("bridge").get("name") == "br0" and root.find("mac") is None


# --------------------------------------------------------------------------- connection

def test_uri_schemes_give_domain_types() -> None:
    assert connection.domain_types("lxc:///") == {"lxc", "network"}
    assert connection.domain_types("qemu+ssh://root@host/system") == {"kvm", "qemu", "network"}
    assert connection.domain_types("test:///default") == {"test", "network"}
    assert connection.domain_types("openvz:///system") == {"openvz", "network"}
    with pytest.raises(ConfigError, match="unknown hypervisor"):
        connection.domain_types("bhyve:///system")
    with pytest.raises(ConfigError, match="no scheme"):
        connection.domain_types("/var/run/libvirt")


def test_missing_libvirt_python_is_a_config_error_with_the_fix(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection, "_module", None)
    monkeypatch.setitem(sys.modules, "libvirt", None)  # import libvirt -> ImportError
    with pytest.raises(ConfigError, match=r"pip install '/path/to/checkout\[libvirt\]'"):
        connection.load_libvirt()
    from reconciler.drivers import create

    with pytest.raises(ConfigError, match="libvirt-python"):
        create("libvirt", "/tmp/unused", uri="test:///default")


class _FakeError(Exception):
    def __init__(self, message: str, code: int, domain: int = 0) -> None:
        super().__init__(message)
        self.code, self.domain = code, domain

    def get_error_code(self) -> int:
        return self.code

    def get_error_domain(self) -> int:
        return self.domain


_FAKE = types.SimpleNamespace(libvirtError=_FakeError, VIR_ERR_SYSTEM_ERROR=38,
                              VIR_ERR_OPERATION_TIMEOUT=68, VIR_ERR_XML_ERROR=27,
                              VIR_ERR_NO_DOMAIN=42, VIR_FROM_RPC=7, VIR_FROM_NETWORK=19)


def test_errors_are_mapped_by_what_retrying_can_do() -> None:
    assert isinstance(connection.map_error(_FAKE, _FakeError("recv", 38, 7), "x"), TransientError)
    assert isinstance(connection.map_error(_FAKE, _FakeError("slow", 68), "x"), TransientError)
    # an I/O error of the host (a missing directory) does not heal by retrying
    assert isinstance(connection.map_error(_FAKE, _FakeError("Failed to create file", 38, 19),
                                           "x"), PermanentError)
    assert isinstance(connection.map_error(_FAKE, _FakeError("internal error: client socket "
                                                              "is closed", 1), "x"),
                      TransientError)
    bad = connection.map_error(_FAKE, _FakeError("XML error: bad", 27), "define domain/a")
    assert isinstance(bad, PermanentError) and "define domain/a: XML error" in str(bad)


# --------------------------------------------------------------------------- storage

def test_only_template_filesystems_are_owned(tmp_path: Path) -> None:
    spec = {"filesystems": [{"type": "template", "name": "busybox", "target": "/"},
                            {"type": "template", "name": "empty", "source": "/srv/d/data",
                             "target": "/data"},
                            {"type": "mount", "source": "/srv/shared", "target": "/shared"}]}
    assert storage.owned_sources(spec, tmp_path, "web") == [str(tmp_path / "web"),
                                                            "/srv/d/data"]
    assert storage.owned_sources({"filesystems": [{"type": "mount", "source": "/x",
                                                   "target": "/"}]}, tmp_path, "web") == []


def test_provision_builds_missing_roots_and_keeps_existing_ones(tmp_path: Path) -> None:
    if storage.shutil.which("busybox") is None:
        pytest.skip("no busybox on this host")
    spec = {"filesystems": [{"type": "template", "name": "busybox", "target": "/"},
                            {"type": "template", "name": "empty", "target": "/data"}]}
    ledger = storage.Ledger(tmp_path / "state", "test:///default")
    built = storage.provision(spec, tmp_path, "web", ledger)
    assert built == [str(tmp_path / "web"), str(tmp_path / "web.data")]
    assert (tmp_path / "web" / "bin" / "sh").resolve().name == "busybox"
    (tmp_path / "web" / "keep").write_text("data")
    assert storage.provision(spec, tmp_path, "web", ledger) == []
    assert (tmp_path / "web" / "keep").read_text() == "data"
    with pytest.raises(PermanentError, match="not one the libvirt driver can build"):
        storage.provision({"filesystems": [{"type": "template", "name": "debian",
                                            "target": "/"}]}, tmp_path, "other", ledger)


def test_an_existing_directory_is_never_taken_over_or_erased(tmp_path: Path) -> None:
    """A spec naming a directory it did not get built (the user's data, /root/.ssh, the
    agent's own state) as a template root: provision refuses it, purge never erases it."""
    mine = tmp_path / "srv" / "precious"
    mine.mkdir(parents=True)
    (mine / "data.txt").write_text("keep me")
    ledger = storage.Ledger(tmp_path / "state", "test:///default")
    spec = {"filesystems": [{"type": "template", "name": "empty", "source": str(mine),
                             "target": "/"}]}
    with pytest.raises(PermanentError, match="never taken over"):
        storage.provision(spec, tmp_path, "web", ledger)
    assert storage.purge_built("web", ledger) == []
    assert (mine / "data.txt").read_text() == "keep me"
    # built by us, then replaced behind our back by another directory: not ours any more
    built = tmp_path / "srv" / "built"
    storage.provision({"filesystems": [{"type": "template", "name": "empty",
                                        "source": str(built), "target": "/"}]},
                      tmp_path, "app", ledger)
    assert ledger.erasable("app") == [str(built)]
    storage.shutil.rmtree(built)
    built.mkdir()
    (built / "theirs.txt").write_text("someone else's")
    assert ledger.erasable("app") == []
    assert storage.purge_built("app", ledger) == []
    assert (built / "theirs.txt").exists()


def test_purge_refuses_anything_that_is_not_a_guest_directory(tmp_path: Path) -> None:
    for path in ("/", "/var/lib", "/srv", "relative/dir", "/srv/../etc"):
        with pytest.raises(PermanentError, match="refusing to purge"):
            storage.purge([path])
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(PermanentError, match="symbolic link"):
        storage.purge([str(tmp_path / "link")])
    assert real.is_dir()
    assert storage.purge([str(real), str(tmp_path / "gone")]) == [str(real)]
    assert not real.exists()
