"""The driver against libvirt's in-process test hypervisor (test:///default): no daemon needed,
so these run wherever libvirt-python is installed."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from libvirt_support import apply, changes, config, errors, plan

from reconciler.drivers.base import Step
from reconciler.drivers.libvirt import LibvirtDriver
from reconciler.drivers.libvirt.connection import Connection
from reconciler.errors import ConfigError, PermanentError, TransientError
from reconciler.model import Domain
from reconciler.model.fields import Ref

URI = "test:///default"


def _spec(name: str, **more: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"kind": "Domain", "name": name, "type": "test",
                            "os": {"type": "hvm"}, "memory": "128MiB",
                            "interfaces": [{"type": "bridge", "source": "br0"}]}
    spec.update(more)
    return spec


def _write(specs: Path, spec: dict[str, Any]) -> None:
    specs.mkdir(exist_ok=True)
    (specs / f"{spec['name']}.yaml").write_text(yaml.safe_dump(spec))


def _mac(conn: Any, name: str) -> str:
    found = re.search(r"<mac address='([^']+)'", conn.lookupByName(name).XMLDesc(0))
    assert found
    return found.group(1)


def test_observe_reports_foreign_objects_without_a_stamp(test_conn: Any, tmp_path: Path) -> None:
    driver = LibvirtDriver(tmp_path, uri=URI)
    try:
        seen = {o.ref: o for o in driver.observe()}
    finally:
        driver.close()
    test = seen[Ref("Domain", "test")]  # the test driver's own running domain
    assert test.state == "running" and test.stamp is None and not test.owned
    assert test.type == "test" and test.spec["memory"]
    assert seen[Ref("Network", "default")].type == "network"
    assert driver.types == {"test", "network"}


def test_redefine_keeps_uuid_and_macs_and_converges(test_conn: Any, prefix: str,
                                                    tmp_path: Path) -> None:
    name = f"{prefix}a"
    specs = tmp_path / "specs"
    cfg = config(tmp_path / "state", URI, prefix)
    _write(specs, _spec(name, state="stopped"))
    _, report = apply(specs, cfg)
    assert not errors(report)
    dom = test_conn.lookupByName(name)
    uuid, mac = dom.UUIDString(), _mac(test_conn, name)
    # a restart-class change: redefined in place, same identity
    _write(specs, _spec(name, state="stopped", memory="256MiB"))
    first, report = apply(specs, cfg)
    assert changes(first) == {f"domain/{name}": ["update", "memory: '128MiB' -> '256MiB'"]}
    assert test_conn.lookupByName(name).UUIDString() == uuid
    assert _mac(test_conn, name) == mac
    assert test_conn.lookupByName(name).info()[1] == 256 * 1024
    assert changes(plan(specs, cfg)) == {}


def test_live_memory_reaches_the_running_domain_and_its_config(test_conn: Any, lv: Any,
                                                               prefix: str,
                                                               tmp_path: Path) -> None:
    name = f"{prefix}b"
    specs = tmp_path / "specs"
    cfg = config(tmp_path / "state", URI, prefix)
    _write(specs, _spec(name))
    apply(specs, cfg)
    dom = test_conn.lookupByName(name)
    boot_id = dom.ID()
    _write(specs, _spec(name, current_memory="64MiB"))
    first, report = apply(specs, cfg)
    assert not errors(report)
    obj = next(o for o in first.objects if o.ref.name == name)
    assert (obj.action, obj.update) == ("update", "live")
    assert [s.kind for s in first.steps] == ["update"]
    assert dom.ID() == boot_id  # not restarted
    assert dom.info()[2] == 64 * 1024  # the running domain's current memory
    assert "<currentMemory unit='KiB'>65536<" in dom.XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE)
    assert changes(plan(specs, cfg)) == {}


def test_stamp_holds_the_last_applied_spec(test_conn: Any, prefix: str, tmp_path: Path) -> None:
    name = f"{prefix}c"
    specs = tmp_path / "specs"
    cfg = config(tmp_path / "state", URI, prefix)
    _write(specs, _spec(name, autostart=True, protect=True, hostname="web"))
    apply(specs, cfg)
    driver = LibvirtDriver(tmp_path / "state", uri=URI, match=f"{prefix}*")
    try:
        live = {o.ref.name: o for o in driver.observe()}[name]
    finally:
        driver.close()
    assert live.owned and live.protected
    assert live.stamp is not None and live.stamp.source == str(specs / f"{name}.yaml")
    assert live.last_applied == {k: v for k, v in _spec(name, autostart=True, protect=True,
                                                        hostname="web").items() if k != "kind"}
    assert live.spec["autostart"] is True and test_conn.lookupByName(name).autostart() == 1


def test_update_classes() -> None:
    driver = LibvirtDriver("/tmp/unused", uri=URI)
    dom, net = Ref("Domain", "a"), Ref("Network", "n")
    assert driver.update_class(dom, "test", "current_memory") == "live"
    assert driver.update_class(dom, "test", "memory") == "restart"
    assert driver.update_class(dom, "test", "uuid") == "recreate"
    assert driver.update_class(dom, "test", "protect") == "live"
    assert driver.update_class(dom, "test", "dns.nameservers") == "live"  # metadata only
    assert driver.update_class(net, "network", "autostart") == "live"
    assert driver.update_class(net, "network", "ips") == "restart"
    lxc = LibvirtDriver("/tmp/unused", uri="lxc:///")
    for field in ("cpu.shares", "memtune.hard_limit", "current_memory", "cpu.count"):
        assert lxc.update_class(dom, "lxc", field) == "live"
    qemu = LibvirtDriver("/tmp/unused", uri="qemu:///system")
    assert qemu.update_class(dom, "kvm", "cpu.count") == "restart"
    assert lxc.update_class(dom, "lxc", "memory") == "restart"
    assert lxc.update_class(dom, "lxc", "interfaces") == "restart"
    built = {"type": "template", "name": "busybox", "target": "/"}
    mount = {"source": "/srv/data", "target": "/data"}
    # another mount beside the same root: at the next start; another built root: a new guest
    assert lxc.update_class(dom, "lxc", "filesystems", [built], [built, mount]) == "restart"
    assert lxc.update_class(dom, "lxc", "filesystems", [built],
                            [{**built, "name": "empty"}]) == "recreate"
    assert lxc.update_class(dom, "lxc", "filesystems", [{"source": "/a", "target": "/"}],
                            [{"source": "/b", "target": "/"}]) == "restart"  # the user's dirs


def test_bad_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown hypervisor"):
        LibvirtDriver(tmp_path, uri="nope:///")
    with pytest.raises(ConfigError, match="seconds"):
        LibvirtDriver(tmp_path, uri=URI, stop_timeout="soon")


def test_import_writes_specs_without_host_defaults_and_adopts(test_conn: Any, prefix: str,
                                                               tmp_path: Path) -> None:
    name, other = f"{prefix}d", f"{prefix}d2"
    for each in (name, other):
        test_conn.defineXML(f"<domain type='test'><name>{each}</name><memory>65536</memory>"
                            "<os><type>hvm</type></os><devices><interface type='bridge'>"
                            "<source bridge='br0'/></interface></devices></domain>")
    driver = LibvirtDriver(tmp_path, uri=URI, match=f"{prefix}*")
    try:
        assert sorted(s["name"] for s in driver.import_specs(adopt=False).specs) == [name, other]
        assert all(not o.owned for o in driver.observe())  # adopt=False: nothing written
        specs = driver.import_specs(names=[name], out=str(tmp_path / "out"), format="xml").specs
        live = {o.ref.name: o for o in driver.observe()}
    finally:
        driver.close()
    assert [s["name"] for s in specs] == [name]
    spec = specs[0]
    Domain.model_validate(spec)
    assert spec["state"] == "stopped" and spec["autostart"] is False
    assert spec["memory"] == "64MiB" and "current_memory" not in spec and "arch" not in spec
    assert not any("clock" in p or "on_poweroff" in p for p in spec.get("xml", ()))
    assert "host_dev" not in spec["interfaces"][0]  # testnetN: generated
    assert spec["interfaces"][0]["mac"] == _mac(test_conn, name)  # identity: kept
    # adopted: stamped with exactly the spec returned, the file it goes to as the source
    assert live[name].owned and not live[other].owned
    assert live[name].stamp is not None
    assert live[name].stamp.source == str(tmp_path / "out" / f"{name}.xml")
    assert {"kind": "Domain", **live[name].stamp.spec} == spec


def test_events_name_changed_domains(test_conn: Any, prefix: str, tmp_path: Path) -> None:
    name = f"{prefix}e"
    dom = test_conn.defineXML(f"<domain type='test'><name>{name}</name><memory>65536</memory>"
                              "<os><type>hvm</type></os></domain>")
    dom.create()
    driver = LibvirtDriver(tmp_path, uri=URI, match=f"{prefix}*")
    stop = threading.Event()
    seen: list[tuple[float, Ref]] = []
    ready = threading.Event()

    def consume() -> None:
        for ref in driver.events(stop):
            seen.append((time.monotonic(), ref))
            ready.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    try:
        time.sleep(0.3)  # the watcher registers its callbacks
        other = test_conn.defineXML("<domain type='test'><name>zz-not-ours</name>"
                                    "<memory>65536</memory><os><type>hvm</type></os></domain>")
        other.undefine()
        started = time.monotonic()
        dom.destroy()
        assert ready.wait(1.0), "no event within a second"
        assert seen[0][1] == Ref("Domain", name) and seen[0][0] - started < 1.0
        assert all(ref.name.startswith(prefix) for _, ref in seen)  # match applies
    finally:
        stop.set()
        thread.join(2)
        driver.close()
    assert not thread.is_alive()


class _DyingConn:
    """A connection whose daemon went away after `calls` calls."""

    def __init__(self, lv: Any, calls: int) -> None:
        self.lv, self.calls, self.alive = lv, calls, True

    def listAllDomains(self, flags: int) -> list[Any]:
        if self.calls <= 0:
            self.alive = False
            raise self.lv.libvirtError("internal error: client socket is closed")
        self.calls -= 1
        return []

    def isAlive(self) -> int:
        return 1 if self.alive else 0

    def close(self) -> int:
        return 0


def test_connection_reconnects_once_the_daemon_is_back(lv: Any) -> None:
    opened: list[_DyingConn] = []
    down = {"until": 1}

    def opener(uri: str) -> _DyingConn:
        if down["until"] > 0:
            down["until"] -= 1
            raise lv.libvirtError("Failed to connect socket")
        conn = _DyingConn(lv, 1)
        opened.append(conn)
        return conn

    conn = Connection(URI, reconnect_timeout=5, opener=opener)
    with pytest.raises(TransientError, match="cannot connect"):
        conn.get()  # one attempt only when nothing was open: fail fast
    assert conn.call("list", lambda c: c.listAllDomains(0)) == []
    first = conn.generation
    # the daemon dies: the next call reconnects (backoff) and is tried once more
    assert conn.call("list", lambda c: c.listAllDomains(0)) == []
    assert conn.generation == first + 1 and conn.reconnects == 1 and len(opened) == 2

    down["until"] = 10**6  # and now it stays away: a TransientError after the timeout
    conn.reconnect_timeout = 0.3
    with pytest.raises(TransientError):
        conn.call("list", lambda c: c.listAllDomains(0))


def test_define_trusts_the_last_observe_but_never_takes_over_a_foreign_domain(
        test_conn: Any, prefix: str, tmp_path: Path) -> None:
    """The last observe says it is absent: define goes straight to defineXML. If it was
    defined meanwhile, libvirt's uuid check catches it: ours is continued, someone else's is
    left alone."""
    name, other, outside = f"{prefix}f", f"{prefix}g", f"zz{prefix}"
    driver = LibvirtDriver(tmp_path, uri=URI, match=f"{prefix}*")
    spec = {k: v for k, v in _spec(name).items() if k != "kind"}
    try:
        driver.observe()
        # someone else defines `other` between our observe and our define
        test_conn.defineXML(f"<domain type='test'><name>{other}</name><memory>65536</memory>"
                            "<os><type>hvm</type></os></domain>")
        with pytest.raises(PermanentError, match="not by reconciler"):
            driver.execute(Step("s", "define", Ref("Domain", other), "test",
                                spec={**spec, "name": other}))
        assert "urn:reconciler" not in test_conn.lookupByName(other).XMLDesc(0)
        # another driver of ours defines `name` meanwhile: continued, same uuid
        helper = LibvirtDriver(tmp_path, uri=URI, match=f"{prefix}*")
        helper.execute(Step("s", "define", Ref("Domain", name), "test", spec=spec))
        helper.close()
        uuid = test_conn.lookupByName(name).UUIDString()
        driver.execute(Step("s", "define", Ref("Domain", name), "test",
                            spec={**spec, "memory": "256MiB"}))
        assert test_conn.lookupByName(name).UUIDString() == uuid
        assert {o.ref.name: o for o in driver.observe()}[name].owned
        # a name outside the driver's scope is never touched
        with pytest.raises(PermanentError, match="outside this driver's scope"):
            driver.execute(Step("s", "define", Ref("Domain", outside), "test",
                                spec={**spec, "name": outside}))
    finally:
        driver.close()


VM_XML = """<domain type='test'>
  <name>{name}</name>
  <on_crash>restart</on_crash>
  <clock offset='localtime'/>
  <memory unit='MiB'>256</memory>
  <os><boot dev='hd'/><type>hvm</type></os>
  <features><acpi/><pae/></features>
  <devices>
    <disk type='file' device='disk'>
      <target dev='vda' bus='virtio'/>
      <source file='/var/lib/images/{name}.img'/>
    </disk>
    <interface type='bridge'><source bridge='br0'/><model type='virtio'/></interface>
  </devices>
</domain>
"""


def test_a_vm_spec_with_kept_xml_pieces_converges(test_conn: Any, prefix: str,
                                                  tmp_path: Path) -> None:
    """Elements the model keeps as XML (disk, features, clock), written out of libvirt's
    order, with a NIC libvirt gives a MAC: no perpetual diff, and drift of a kept piece
    still shows."""
    name = f"{prefix}vm"
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / f"{name}.xml").write_text(VM_XML.format(name=name))
    # the VM's kept <disk> hands it a host file: allowed here, as a VM host would
    cfg = config(tmp_path / "state", URI, prefix, policy={"host_devices": True})
    _, report = apply(specs, cfg)
    assert not errors(report), errors(report)
    assert changes(plan(specs, cfg)) == {}
    dom = test_conn.lookupByName(name)
    drifted = dom.XMLDesc(0).replace("<clock offset='localtime'/>", "<clock offset='utc'/>")
    test_conn.defineXML(drifted)  # someone edits the definition behind our back
    drift = plan(specs, cfg)
    obj = next(o for o in drift.objects if o.ref.name == name)
    assert [(c.field, c.origin) for c in obj.changes] == [("xml", "drift")]
    assert '<clock offset="utc"></clock>' in obj.changes[0].old
    assert '<clock offset="localtime"></clock>' in obj.changes[0].new


def test_only_a_template_root_gets_a_provision_step(test_conn: Any, prefix: str,
                                                    tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    cfg = config(tmp_path / "state", URI, prefix)
    plain, built = f"{prefix}p", f"{prefix}t"
    _write(specs, _spec(plain, state="stopped"))
    _write(specs, _spec(built, state="stopped", filesystems=[
        {"type": "template", "name": "empty", "source": str(tmp_path / "root"), "target": "/"}]))
    the_plan = plan(specs, cfg)
    kinds = {name: [s.kind for s in the_plan.steps if s.ref.name == name]
             for name in (plain, built)}
    assert kinds == {plain: ["define"], built: ["provision", "define"]}
    _, report = apply(specs, cfg)
    assert not errors(report)
    assert (tmp_path / "root").is_dir()
    assert {test_conn.lookupByName(n).name() for n in (plain, built)} == {plain, built}


def test_an_existing_directory_named_as_a_root_is_never_taken_or_purged(
        test_conn: Any, prefix: str, tmp_path: Path) -> None:
    """A spec names a directory it did not get built (the user's data, say) as its template
    root and asks for purge: the plan refuses it, nothing is defined, the data stays. A root
    the driver did build is erased by the purge, and the plan says so beforehand."""
    specs = tmp_path / "specs"
    cfg = config(tmp_path / "state", URI, prefix)
    precious = tmp_path / "srv" / "precious"
    precious.mkdir(parents=True)
    (precious / "data.txt").write_text("keep me")
    taken, built = f"{prefix}tk", f"{prefix}bt"
    _write(specs, _spec(taken, state="stopped", removal="purge", filesystems=[
        {"type": "template", "name": "empty", "source": str(precious), "target": "/"}]))
    _write(specs, _spec(built, state="stopped", removal="purge", filesystems=[
        {"type": "template", "name": "empty", "source": str(tmp_path / "built"),
         "target": "/"}]))
    first, report = apply(specs, cfg)
    assert not errors(report)
    actions = {o.ref.name: o.action for o in first.objects}
    assert actions == {taken: "refused", built: "create"}
    [obj] = [o for o in first.objects if o.ref.name == taken]
    assert obj.refusals[0].field == "filesystems.0.source"
    assert taken not in [d.name() for d in test_conn.listAllDomains(0)]

    _write(specs, _spec(built, state="absent", removal="purge", filesystems=[
        {"type": "template", "name": "empty", "source": str(tmp_path / "built"),
         "target": "/"}]))
    second, report = apply(specs, cfg)
    assert not errors(report)
    [gone] = [o for o in second.objects if o.ref.name == built]
    assert gone.action == "remove" and gone.erases == (str(tmp_path / "built"),)
    assert not (tmp_path / "built").exists()
    assert (precious / "data.txt").read_text() == "keep me"
