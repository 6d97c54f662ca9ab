"""YAML and XML are the same model: pieces the libvirt corpus does not exercise."""

from __future__ import annotations

import textwrap

import pytest
from lxml import etree
from specs_support import SCHEMAS

from reconciler.model import Domain
from reconciler.specs import rng
from reconciler.specs.convert import to_xml_text, to_yaml
from reconciler.specs.files import load_bytes


def load_one(text: str, name: str) -> Domain:
    loaded = load_bytes(textwrap.dedent(text).encode(), name)
    assert loaded.ok, loaded.errors
    [(obj, _line)] = loaded.objects
    assert isinstance(obj, Domain)
    return obj


def both_ways(obj: Domain) -> str:
    """Assert YAML and XML give the model back; return the XML."""
    xml_text = to_xml_text(obj)
    assert load_one(xml_text, "x.xml") == obj, xml_text
    assert load_one(to_yaml([obj]), "x.yaml") == obj
    return xml_text


def error_of(text: str, name: str) -> str:
    loaded = load_bytes(textwrap.dedent(text).encode(), name)
    assert not loaded.ok
    return str(loaded.errors[0])


VSERVER = """
    kind: Domain
    name: testvm
    type: vserver
    id: 2000
    scheduler:
      fill_rate: 100
      interval: 1000
      cpus:
        0: {fill_rate: 0}
        1: {fill_rate: 250, interval: 1000, idle_time: true, fill_rate2: 250, interval2: 1000}
    limits: {}
    filesystems:
      - {type: template, name: etch, method: debootstrap, release: etch,
         source: /vservers/testvm, options: [--arch, i386], target: /}
"""


def test_per_cpu_buckets_survive_xml() -> None:
    obj = load_one(VSERVER, "v.yaml")
    assert obj.scheduler is not None and set(obj.scheduler.cpus) == {0, 1}
    xml_text = both_ways(obj)
    assert "key=\"0\"" in xml_text and "key=\"1\"" in xml_text


def test_kvm_domain_with_kept_devices_and_volume() -> None:
    obj = load_one("""
        <domain type='kvm' id='7'>
          <name>vm1</name>
          <memory unit='bytes'>1000000</memory>
          <os><type arch='x86_64'>hvm</type><boot dev='cdrom'/><boot dev='hd'/></os>
          <devices>
            <disk type='file' device='disk'><source file='/var/lib/vm1.img'/>
              <target dev='vda' bus='virtio'/></disk>
            <filesystem type='volume'><source pool='tank' volume='data'/>
              <target dir='/srv'/></filesystem>
            <interface type='user'><mac address='52:54:00:00:00:01'/></interface>
            <interface type='network'><source network='default'/></interface>
          </devices>
        </domain>""", "vm.xml")
    assert obj.memory == 1000000  # not rounded to KiB
    assert obj.filesystems[0].source == "tank/data"
    # the 'user' NIC is kept as XML, so the typed one after it is too (NIC order = names)
    assert obj.interfaces == ()
    assert [x.split()[0] for x in obj.devices_xml] == ["<disk", "<interface", "<interface"]
    assert "@id=7" in obj.xml
    assert obj.os is not None and obj.os.type is None  # hvm is kvm's default
    xml_text = both_ways(obj)
    assert "<memory unit=\"bytes\">1000000</memory>" in xml_text
    assert xml_text.index('dev="cdrom"') < xml_text.index('dev="hd"')


def test_hostdev_nic_listed_first_still_aligns_its_extension() -> None:
    obj = load_one("""
        name: c1
        type: lxc
        interfaces:
          - {type: hostdev, source: eth1, ip: [192.0.2.7/24],
             ranges: [192.0.2.100-192.0.2.110/24]}
          - {type: routed, ip: [198.51.100.5/24], host_mac: "52:54:00:aa:bb:cc"}
    """, "c.yaml")
    assert [n.type for n in obj.interfaces] == ["routed", "hostdev"]
    xml_text = both_ways(obj)
    assert rng.validate_element(etree.fromstring(xml_text.encode()), SCHEMAS) == []


def test_lxc_container_written_xml_is_schema_valid() -> None:
    obj = load_one("""
        name: c2
        type: lxc
        memory: 1000B
        cpu: {count: 2, cpuset: "0-1", shares: 1024}
        memtune: {hard_limit: 1GiB}
        init: {cmd: /sbin/init, args: [--log, debug], env: {A: "1"}, user: root, group: root}
        filesystems:
          - {type: ram, size: 1000B, target: /tmp}
          - {type: file, source: /var/img.qcow2, driver: nbd, format: qcow2, target: /}
          - {type: bind, source: /srv/x, target: /x, readonly: true}
        interfaces:
          - {type: bridge, source: br0, mac: "52:54:00:12:34:56", guest_dev: eth0,
             ip: [192.0.2.5/24, "2001:db8::5/64"], gateway: 192.0.2.1,
             routes: [{address: 203.0.113.0, prefix: 24, gateway: 192.0.2.254, metric: 5}]}
          - {type: direct, source: eth0, mode: vepa}
        console: {count: 2}
        idmap:
          - {kind: uid, start: 0, target: 100000, count: 65536}
          - {kind: gid, start: 0, target: 100000, count: 65536}
    """, "c2.yaml")
    xml_text = both_ways(obj)
    assert rng.validate_element(etree.fromstring(xml_text.encode()), SCHEMAS) == []


@pytest.mark.parametrize(("text", "name", "words"), [
    ("<domain type='lxc'><name>a</name><metadata><rc:spec xmlns:rc='urn:reconciler:spec:1'>"
     "<rc:memory>1</rc:memory></rc:spec></metadata></domain>", "a.xml", "unknown field 'memory'"),
    ("<domain type='lxc'><name>a</name><metadata><rc:spec xmlns:rc='urn:reconciler:spec:1'>"
     "<rc:item>1</rc:item></rc:spec></metadata></domain>", "a.xml", "named fields"),
    ("<domain type='lxc'><name>a</name><metadata>\n<rc:spec xmlns:rc='urn:reconciler:spec:1'>\n"
     "<rc:interfaces><rc:item><rc:mac>52:54:00:00:00:01</rc:mac></rc:item></rc:interfaces>"
     "</rc:spec></metadata></domain>", "a.xml", "interfaces.mac does not belong"),
    ("name: a\ntype: lxc\ncpu: {cpuset: '0-1'}\n", "a.yaml", "cpuset needs count"),
    ("name: a\ntype: lxc\nfilesystems: [{type: mount, source: /a, target: /b, size: 1G}]\n",
     "a.yaml", "'size' applies to ram"),
    ("name: a\ntype: lxc\ninterfaces: [{type: hostdev, source: eth1, mac: '52:54:00:00:00:01'}]\n",
     "a.yaml", "hostdev interface cannot have 'mac'"),
    ("name: a\ntype: lxc\ninterfaces: [{type: routed, source: br0}]\n", "a.yaml",
     "routed interface cannot have 'source'"),
    ("name: a\ntype: xen\ninit: {cmd: /sbin/init}\n", "a.yaml", "needs os.type"),
    ("name: a\ntype: lxc\ninterfaces: [{type: routed, routes: [{address: 10.0.0.0, "
     "gateway: '2001:db8::1'}]}]\n", "a.yaml", "same family"),
    ("name: a\ntype: lxc\nfilesystems: [{type: volume, source: nopool, target: /v}]\n",
     "a.yaml", "pool/volume"),
])
def test_pieces_xml_could_not_carry_are_refused(text: str, name: str, words: str) -> None:
    assert words in error_of(text, name)


def test_route_family_spelled_out_is_the_same_route() -> None:
    a = load_one("name: a\ntype: lxc\ninterfaces: [{type: routed, routes: [{address: 10.0.0.0, "
                 "prefix: 8, gateway: 10.0.0.1, family: ipv4}]}]\n", "a.yaml")
    b = load_one("name: a\ntype: lxc\ninterfaces: [{type: routed, routes: [{address: 10.0.0.0, "
                 "prefix: 8, gateway: 10.0.0.1}]}]\n", "b.yaml")
    assert a == b
    both_ways(a)


def test_kept_elements_are_ordered_as_libvirt_writes_them() -> None:
    """A hand-ordered spec and libvirt's own dumpxml give the same model (no phantom diff)."""
    body = ["<clock offset='utc'/>", "<resource><partition>/machine</partition></resource>",
            "<on_reboot>restart</on_reboot>", "<seclabel type='none'/>"]
    head = "<domain type='lxc'><name>a</name>"
    a = load_one(head + "".join(body) + "</domain>", "a.xml")
    b = load_one(head + "".join(reversed(body)) + "</domain>", "b.xml")
    assert a == b
    assert [x.split(">")[0].split()[0] for x in a.xml] == \
        ["<resource", "<clock", "<on_reboot", "<seclabel"]
