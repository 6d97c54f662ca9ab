"""The one value rule: every string field of the model refuses every character a reader could
take for a line break, and every control character, wherever it sits in a spec.

The list of fields is found by walking the model's annotations, so a string field added later
without the rule fails `test_every_string_field_is_covered` until it is listed here (and then
the refusal tests check it).
"""

from __future__ import annotations

import copy
import types
import typing
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from reconciler.model import Domain, Network, Profile
from reconciler.specs.files import load_bytes

# every character str.splitlines breaks at, every C0/C1 control, DEL
BAD = [chr(c) for c in (*range(0x00, 0x20), *range(0x7F, 0xA0))] + ["\u2028", "\u2029"]
assert set("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029") <= set(BAD)
assert all(len(f"a{c}b".splitlines()) == 1 for c in set(map(chr, range(0x20, 0x7F))))


def _string_leaves(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> set[str]:
    out: set[str] = set()
    for name, info in model.model_fields.items():
        out |= _walk(info.annotation, (*prefix, name))
    return out


def _walk(ann: Any, path: tuple[str, ...]) -> set[str]:
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if ann is str:
        return {".".join(path)}
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return _string_leaves(ann, path)
    if origin is typing.Annotated:
        return _walk(args[0], path)
    if origin in (typing.Union, types.UnionType, tuple):
        step = ("[]",) if origin is tuple else ()
        return set().union(*(_walk(a, (*path, *step)) for a in args if a is not Ellipsis))
    if origin is dict:
        return _walk(args[0], (*path, "{key}")) | _walk(args[1], (*path, "{}"))
    return set()


DOMAIN = {"kind": "Domain", "name": "d1", "type": "lxc"}
NETWORK = {"kind": "Network", "name": "n1"}
PROFILE = {"kind": "Profile", "name": "p1"}
IP4 = "192.0.2.7"

# field -> (base spec, where the value goes, a good value); `V` marks the value's place
V = object()
CASES: dict[str, tuple[dict[str, Any], Any]] = {
    "Domain name": (DOMAIN, {"name": V}),
    "Domain uuid": (DOMAIN, {"uuid": V}),
    "Domain title": (DOMAIN, {"title": V}),
    "Domain description": (DOMAIN, {"description": V}),
    "Domain hostname": (DOMAIN, {"hostname": V}),
    "Domain arch": (DOMAIN, {"arch": V}),
    "Domain target": (DOMAIN, {"target": V}),
    "Domain os.type": (DOMAIN, {"os": {"type": V}}),
    "Domain os.machine": (DOMAIN, {"os": {"machine": V}}),
    "Domain os.xml.[]": (DOMAIN, {"os": {"xml": [V]}}),
    "Domain profile": (DOMAIN, {"profile": V}),
    "Domain cpu.cpuset": (DOMAIN, {"cpu": {"count": 1, "cpuset": V}}),
    "Domain blkiotune.devices.[].path": (DOMAIN, {"blkiotune": {"devices": [
        {"path": V, "weight": 500}]}}),
    "Domain capabilities.keep.[]": (DOMAIN, {"capabilities": {"policy": "deny",
                                                               "keep": [V]}}),
    "Domain capabilities.drop.[]": (DOMAIN, {"capabilities": {"policy": "allow",
                                                               "drop": [V]}}),
    "Domain filesystems.[].mode": (DOMAIN, {"filesystems": [
        {"type": "ram", "target": "/run", "size": "8MiB", "mode": V}]}),
    "Domain limits.{key}": (DOMAIN, {"limits": {V: [1, 1]}}),
    "Domain init.cmd": (DOMAIN, {"init": {"cmd": V}}),
    "Domain init.args.[]": (DOMAIN, {"init": {"cmd": "/sbin/init", "args": [V]}}),
    "Domain init.env.{key}": (DOMAIN, {"init": {"env": {V: "x"}}}),
    "Domain init.env.{}": (DOMAIN, {"init": {"env": {"A": V}}}),
    "Domain init.dir": (DOMAIN, {"init": {"dir": V}}),
    "Domain init.user": (DOMAIN, {"init": {"user": V, "group": "0"}}),
    "Domain init.group": (DOMAIN, {"init": {"user": "0", "group": V}}),
    "Domain filesystems.[].driver": (DOMAIN, {"filesystems": [
        {"type": "file", "source": "/srv/a.img", "target": "/a", "driver": V}]}),
    "Domain filesystems.[].format": (DOMAIN, {"filesystems": [
        {"type": "file", "source": "/srv/a.img", "target": "/a", "driver": "loop",
         "format": V}]}),
    "Domain filesystems.[].method": (DOMAIN, {"filesystems": [
        {"type": "template", "name": "busybox", "target": "/", "method": V}]}),
    "Domain filesystems.[].name": (DOMAIN, {"filesystems": [
        {"type": "template", "name": V, "target": "/"}]}),
    "Domain filesystems.[].options.[]": (DOMAIN, {"filesystems": [
        {"type": "template", "name": "busybox", "target": "/", "options": [V]}]}),
    "Domain filesystems.[].release": (DOMAIN, {"filesystems": [
        {"type": "template", "name": "busybox", "target": "/", "release": V}]}),
    "Domain filesystems.[].source": (DOMAIN, {"filesystems": [
        {"type": "mount", "source": V, "target": "/a"}]}),
    "Domain filesystems.[].target": (DOMAIN, {"filesystems": [
        {"type": "mount", "source": "/srv/a", "target": V}]}),
    "Domain filesystems.[].xml.[]": (DOMAIN, {"filesystems": [
        {"type": "mount", "source": "/srv/a", "target": "/a", "xml": [V]}]}),
    "Domain interfaces.[].gateway": (DOMAIN, {"interfaces": [
        {"type": "bridge", "source": "br0", "gateway": V}]}),
    "Domain interfaces.[].guest_dev": (DOMAIN, {"interfaces": [
        {"type": "bridge", "source": "br0", "guest_dev": V}]}),
    "Domain interfaces.[].host_dev": (DOMAIN, {"interfaces": [
        {"type": "bridge", "source": "br0", "host_dev": V}]}),
    "Domain interfaces.[].host_ip.[].address": (DOMAIN, {"interfaces": [
        {"type": "routed", "host_ip": [{"address": V}]}]}),
    "Domain interfaces.[].host_ip.[].peer": (DOMAIN, {"interfaces": [
        {"type": "routed", "host_ip": [{"address": IP4, "prefix": 24, "peer": V}]}]}),
    "Domain interfaces.[].host_mac": (DOMAIN, {"interfaces": [
        {"type": "bridge", "source": "br0", "host_mac": V}]}),
    "Domain interfaces.[].host_routes.[].address": (DOMAIN, {"interfaces": [
        {"type": "routed", "host_routes": [{"address": V, "gateway": "192.0.2.1"}]}]}),
    "Domain interfaces.[].host_routes.[].gateway": (DOMAIN, {"interfaces": [
        {"type": "routed", "host_routes": [{"address": IP4, "gateway": V}]}]}),
    "Domain interfaces.[].ip.[].address": (DOMAIN, {"interfaces": [
        {"type": "bridge", "source": "br0", "ip": [{"address": V}]}]}),
    "Domain interfaces.[].ip.[].peer": (DOMAIN, {"interfaces": [
        {"type": "bridge", "source": "br0", "ip": [{"address": IP4, "prefix": 24,
                                                    "peer": V}]}]}),
    "Domain interfaces.[].mac": (DOMAIN, {"interfaces": [
        {"type": "bridge", "source": "br0", "mac": V}]}),
    "Domain interfaces.[].model": (DOMAIN, {"interfaces": [
        {"type": "bridge", "source": "br0", "model": V}]}),
    "Domain interfaces.[].ranges.[].end": (DOMAIN, {"interfaces": [
        {"type": "routed", "ranges": [{"start": "192.0.2.1", "end": V}]}]}),
    "Domain interfaces.[].ranges.[].start": (DOMAIN, {"interfaces": [
        {"type": "routed", "ranges": [{"start": V, "end": "192.0.2.9"}]}]}),
    "Domain interfaces.[].routes.[].address": (DOMAIN, {"interfaces": [
        {"type": "bridge", "source": "br0", "routes": [{"address": V,
                                                        "gateway": "192.0.2.1"}]}]}),
    "Domain interfaces.[].routes.[].gateway": (DOMAIN, {"interfaces": [
        {"type": "bridge", "source": "br0", "routes": [{"address": IP4, "gateway": V}]}]}),
    "Domain interfaces.[].source": (DOMAIN, {"interfaces": [{"type": "bridge", "source": V}]}),
    "Domain interfaces.[].xml.[]": (DOMAIN, {"interfaces": [
        {"type": "bridge", "source": "br0", "xml": [V]}]}),
    "Domain dns.nameservers.[]": (DOMAIN, {"dns": {"nameservers": [V]}}),
    "Domain dns.search.[]": (DOMAIN, {"dns": {"search": [V]}}),
    "Domain depends_on.[]": (DOMAIN, {"depends_on": [V]}),
    "Domain hosts.[]": (DOMAIN, {"hosts": [V]}),
    "Domain window": (DOMAIN, {"window": V}),
    "Domain health.address": (DOMAIN, {"health": {"tcp": 80, "address": V}}),
    "Domain health.command.[]": (DOMAIN, {"health": {"command": ["/bin/check", V]}}),
    "Domain xml.[]": (DOMAIN, {"xml": [V]}),
    "Domain devices_xml.[]": (DOMAIN, {"devices_xml": [V]}),
    "Network name": (NETWORK, {"name": V}),
    "Network uuid": (NETWORK, {"uuid": V}),
    "Network title": (NETWORK, {"title": V}),
    "Network description": (NETWORK, {"description": V}),
    "Network bridge.name": (NETWORK, {"bridge": {"name": V}}),
    "Network bridge.xml_attrs.{key}": (NETWORK, {"bridge": {"xml_attrs": {V: "x"}}}),
    "Network bridge.xml_attrs.{}": (NETWORK, {"bridge": {"xml_attrs": {"a": V}}}),
    "Network forward.dev": (NETWORK, {"forward": {"dev": V}}),
    "Network forward.xml.[]": (NETWORK, {"forward": {"xml": [V]}}),
    "Network forward.xml_attrs.{key}": (NETWORK, {"forward": {"xml_attrs": {V: "x"}}}),
    "Network forward.xml_attrs.{}": (NETWORK, {"forward": {"xml_attrs": {"a": V}}}),
    "Network mac": (NETWORK, {"mac": V}),
    "Network domain": (NETWORK, {"domain": V}),
    "Network ips.[].address.address": (NETWORK, {"ips": [{"address": {"address": V}}]}),
    "Network ips.[].address.peer": (NETWORK, {"ips": [
        {"address": {"address": IP4, "prefix": 24, "peer": V}}]}),
    "Network ips.[].dhcp_hosts.[].id": (NETWORK, {"ips": [
        {"address": "192.0.2.1/24", "dhcp_hosts": [{"id": V}]}]}),
    "Network ips.[].dhcp_hosts.[].ip": (NETWORK, {"ips": [
        {"address": "192.0.2.1/24", "dhcp_hosts": [{"ip": V}]}]}),
    "Network ips.[].dhcp_hosts.[].mac": (NETWORK, {"ips": [
        {"address": "192.0.2.1/24", "dhcp_hosts": [{"mac": V}]}]}),
    "Network ips.[].dhcp_hosts.[].name": (NETWORK, {"ips": [
        {"address": "192.0.2.1/24", "dhcp_hosts": [{"name": V}]}]}),
    "Network ips.[].dhcp_hosts.[].xml.[]": (NETWORK, {"ips": [
        {"address": "192.0.2.1/24", "dhcp_hosts": [{"xml": [V]}]}]}),
    "Network ips.[].dhcp_ranges.[].end": (NETWORK, {"ips": [
        {"address": "192.0.2.1/24", "dhcp_ranges": [{"start": "192.0.2.9", "end": V}]}]}),
    "Network ips.[].dhcp_ranges.[].start": (NETWORK, {"ips": [
        {"address": "192.0.2.1/24", "dhcp_ranges": [{"start": V, "end": "192.0.2.9"}]}]}),
    "Network ips.[].dhcp_ranges.[].xml.[]": (NETWORK, {"ips": [
        {"address": "192.0.2.1/24", "dhcp_ranges": [{"start": "192.0.2.9",
                                                     "end": "192.0.2.9", "xml": [V]}]}]}),
    "Network ips.[].dhcp_xml.[]": (NETWORK, {"ips": [{"address": "192.0.2.1/24",
                                                      "dhcp_xml": [V]}]}),
    "Network ips.[].netmask": (NETWORK, {"ips": [{"address": "192.0.2.1", "netmask": V}]}),
    "Network ips.[].xml.[]": (NETWORK, {"ips": [{"address": "192.0.2.1/24", "xml": [V]}]}),
    "Network hosts.[]": (NETWORK, {"hosts": [V]}),
    "Network xml.[]": (NETWORK, {"xml": [V]}),
    "Profile name": (PROFILE, {"name": V}),
    "Profile description": (PROFILE, {"description": V}),
    "Profile cpu.cpuset": (PROFILE, {"cpu": {"count": 1, "cpuset": V}}),
    "Profile limits.{key}": (PROFILE, {"limits": {V: [1, 1]}}),
    "Profile init.cmd": (PROFILE, {"init": {"cmd": V}}),
    "Profile init.args.[]": (PROFILE, {"init": {"cmd": "/sbin/init", "args": [V]}}),
    "Profile init.env.{key}": (PROFILE, {"init": {"env": {V: "x"}}}),
    "Profile init.env.{}": (PROFILE, {"init": {"env": {"A": V}}}),
    "Profile init.dir": (PROFILE, {"init": {"dir": V}}),
    "Profile init.user": (PROFILE, {"init": {"user": V, "group": "0"}}),
    "Profile init.group": (PROFILE, {"init": {"user": "0", "group": V}}),
    "Profile dns.nameservers.[]": (PROFILE, {"dns": {"nameservers": [V]}}),
    "Profile dns.search.[]": (PROFILE, {"dns": {"search": [V]}}),
}

# a valid value for each field, into which the bad character is put (middle and end)
GOOD: dict[str, str] = {
    "name": "web1", "uuid": "8dfd44b3-1e76-d8d3-3515-0a2d98211ea0", "hostname": "web1",
    "arch": "x86_64", "profile": "vps.basic", "cpuset": "0", "limits": "numproc",
    "cmd": "/sbin/init", "dir": "/root", "{key}": "HOME", "driver": "loop", "format": "raw",
    "method": "debootstrap", "release": "bookworm", "source": "/srv/data", "target": "node1",
    "filesystems.target": "/data",
    "gateway": "192.0.2.1", "guest_dev": "eth0", "host_dev": "veth1", "address": "192.0.2.5",
    "peer": "192.0.2.9", "host_mac": "52:54:00:00:00:01", "mac": "52:54:00:00:00:02",
    "mode": "bridge", "start": "192.0.2.1", "end": "192.0.2.9", "nameservers": "192.0.2.53",
    "search": "example.org", "depends_on": "other", "xml": "<a b='c'>d</a>",
    "os.xml": "<kernel>/boot/vmlinuz</kernel>", "devices_xml": "<controller type='usb'/>",
    "dev": "eth0", "netmask": "255.255.255.0", "ip": "192.0.2.8", "id": "01:02",
    "domain": "example.org", "interfaces.source": "br0",
    "devices.path": "/dev/block/8:0", "capabilities.keep": "chown",
    "capabilities.drop": "mknod", "filesystems.mode": "0755", "window": "nightly",
    "health.address": "192.0.2.5", "health.command": "--quick",
}


def _good(field: str) -> str:
    parts = [p for p in field.split(" ", 1)[1].split(".") if p not in ("[]", "{}")]
    if "{key}" in field and field.endswith("{key}"):
        return {"limits": "numproc", "xml_attrs": "attr"}.get(parts[-2], "HOME")
    for key in (".".join(parts[-2:]), parts[-1]):
        if key in GOOD:
            return GOOD[key]
    if parts[-1].endswith("xml"):
        return GOOD["xml"]
    return "text"


def _place(shape: Any, value: str) -> Any:
    if shape is V:
        return value
    if isinstance(shape, dict):
        return {(value if k is V else k): _place(v, value) for k, v in shape.items()}
    if isinstance(shape, list):
        return [_place(item, value) for item in shape]
    return shape


def _spec(field: str, value: str) -> dict[str, Any]:
    base, shape = CASES[field]
    return {**copy.deepcopy(base), **_place(shape, value)}


def _loads(spec: dict[str, Any]) -> bool:
    text = yaml.safe_dump(spec, allow_unicode=False)
    assert yaml.safe_load(text) == spec  # the character really reaches the loader
    return load_bytes(text.encode(), "value.yaml").ok


def test_every_string_field_is_covered() -> None:
    found = {f"{m.__name__} {p}" for m in (Domain, Network, Profile) for p in _string_leaves(m)}
    assert found == set(CASES), ("string fields without a value-rule case: "
                                 f"{sorted(found - set(CASES))}; stale cases: "
                                 f"{sorted(set(CASES) - found)}")


@pytest.mark.parametrize("field", sorted(CASES))
def test_good_value_loads(field: str) -> None:
    assert _loads(_spec(field, _good(field))), field


@pytest.mark.parametrize("field", sorted(CASES))
def test_every_line_break_and_control_is_refused(field: str) -> None:
    good = _good(field)
    accepted = [hex(ord(c)) for c in BAD
                for value in (good[:1] + c + good[1:], good + c)
                if _loads(_spec(field, value))]
    assert not accepted, f"{field} accepted {sorted(set(accepted))}"


@pytest.mark.parametrize("name", ["web1\n", "web1\r", "web1\u2028"])
def test_names_are_anchored_at_the_very_end(name: str) -> None:
    """`$` matches before a final newline; the name rule must not."""
    assert not _loads({**DOMAIN, "name": name})
