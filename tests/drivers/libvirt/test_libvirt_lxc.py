"""The driver on a real libvirtd (lxc:///): live tuning read back from the running guest, drift
reported by events, graceful stop, purge of owned storage only, and a virtual network with a
guest on it. Skipped with the reason when libvirtd or LXC guests are not available here."""

from __future__ import annotations

import contextlib
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from libvirt_support import apply, changes, config, errors, plan

from reconciler.drivers.libvirt import LibvirtDriver
from reconciler.model.fields import Ref
from tests.conformance.libvirt_harness import BUSYBOX, init_pid, lxc_guest_spec, make_busybox_root

URI = "lxc:///"
# like the conformance guest, and it notes the SIGTERM of a graceful stop
INIT = ("echo boot >> /boots; trap 'echo term >> /boots; exit 0' TERM; "
        "sleep 100000 & wait")


def _spec(name: str, root: Path, **more: Any) -> dict[str, Any]:
    spec = lxc_guest_spec(name, root, INIT)
    spec.update(more)
    return spec


def _write(specs: Path, spec: dict[str, Any]) -> None:
    specs.mkdir(exist_ok=True)
    (specs / f"{spec['name']}.yaml").write_text(yaml.safe_dump(spec))


def _booted(dom: Any, root: Path, count: int) -> list[str]:
    """The guest's /boots once init got past its first line `count` times."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        pid = init_pid(dom.ID())
        lines = (root / "boots").read_text().splitlines() if (root / "boots").exists() else []
        if pid and init_pid(pid) and lines.count("boot") >= count:
            return lines
        time.sleep(0.02)
    raise AssertionError("guest did not boot")


def test_live_changes_reach_the_running_guest_and_its_config(lxc_conn: Any, lv: Any,
                                                             prefix: str, tmp_path: Path) -> None:
    name, root = f"{prefix}live", tmp_path / "roots" / f"{prefix}live"
    specs, cfg = tmp_path / "specs", config(tmp_path / "state", URI, prefix)
    _write(specs, _spec(name, root))
    _, report = apply(specs, cfg)
    assert not errors(report), errors(report)
    dom = lxc_conn.lookupByName(name)
    _booted(dom, root, 1)
    pid = dom.ID()
    _write(specs, _spec(name, root, current_memory="64MiB", cpu={"shares": 512, "count": 2},
                        memtune={"hard_limit": "96MiB"}))
    first, report = apply(specs, cfg)
    assert not errors(report), errors(report)
    obj = next(o for o in first.objects if o.ref.name == name)
    assert (obj.action, obj.update) == ("update", "live")
    assert [s.kind for s in first.steps] == ["update"]
    # the running guest (same controller, not rebooted) has the new values ...
    assert dom.ID() == pid and (root / "boots").read_text().splitlines() == ["boot"]
    assert dom.schedulerParameters()["cpu_shares"] == 512
    assert dom.memoryParameters(0)["hard_limit"] == 96 * 1024
    live_xml = dom.XMLDesc(0)
    assert "<currentMemory unit='KiB'>65536</currentMemory>" in live_xml
    cgroup = Path(f"/sys/fs/cgroup/cpu/machine/{name}.libvirt-lxc/cpu.shares")
    if cgroup.exists():
        assert cgroup.read_text().strip() == "512"
    # ... and so does the definition it will boot from next time
    config_xml = dom.XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE)
    assert re.search(r"<cputune>\s*<shares>512</shares>", config_xml)
    assert "<hard_limit unit='KiB'>98304</hard_limit>" in config_xml
    assert "<currentMemory unit='KiB'>65536</currentMemory>" in config_xml
    assert "<vcpu placement='static'>2</vcpu>" in config_xml  # not enforced by LXC: config
    assert changes(plan(specs, cfg)) == {}


def test_drift_behind_the_driver_arrives_as_an_event(lxc_conn: Any, prefix: str,
                                                     tmp_path: Path) -> None:
    name, root = f"{prefix}ev", tmp_path / "roots" / f"{prefix}ev"
    specs, cfg = tmp_path / "specs", config(tmp_path / "state", URI, prefix)
    _write(specs, _spec(name, root))
    apply(specs, cfg)
    dom = lxc_conn.lookupByName(name)
    _booted(dom, root, 1)
    driver = LibvirtDriver(tmp_path / "state", uri=URI, match=f"{prefix}*")
    stop = threading.Event()
    seen: list[tuple[float, Ref]] = []
    got = threading.Event()

    def consume() -> None:
        for ref in driver.events(stop):
            seen.append((time.monotonic(), ref))
            got.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    try:
        time.sleep(0.3)  # callbacks registered
        started = time.monotonic()
        subprocess.run(["virsh", "-q", "-c", URI, "destroy", name], check=True,
                       capture_output=True, timeout=30)
        assert got.wait(1.0), "no event within a second of `virsh destroy`"
        assert seen[0][1] == Ref("Domain", name)
        assert seen[0][0] - started < 1.0
        # and the next pass puts it back: the drift is the run state
        first, report = apply(specs, cfg)
        assert not errors(report)
        assert changes(first) == {f"domain/{name}": ["update", "state: 'stopped' -> 'running'"]}
        got.clear()
        xml_file = tmp_path / "edited.xml"
        xml_file.write_text(dom.XMLDesc(0).replace("<memory unit='KiB'>131072</memory>",
                                                   "<memory unit='KiB'>100000</memory>"))
        subprocess.run(["virsh", "-q", "-c", URI, "define", str(xml_file)], check=True,
                       capture_output=True, timeout=30)
        assert got.wait(1.0), "no event within a second of `virsh define`"
        assert seen[-1][1] == Ref("Domain", name)
    finally:
        stop.set()
        thread.join(3)
        driver.close()
    assert not thread.is_alive()


def test_stop_is_a_graceful_shutdown(lxc_conn: Any, prefix: str, tmp_path: Path) -> None:
    name, root = f"{prefix}st", tmp_path / "roots" / f"{prefix}st"
    specs, cfg = tmp_path / "specs", config(tmp_path / "state", URI, prefix)
    _write(specs, _spec(name, root))
    apply(specs, cfg)
    dom = lxc_conn.lookupByName(name)
    _booted(dom, root, 1)
    _write(specs, _spec(name, root, state="stopped"))
    started = time.monotonic()
    first, report = apply(specs, cfg)
    assert not errors(report)
    assert [s.kind for s in first.steps] == ["stop"]
    assert not dom.isActive() and time.monotonic() - started < 5  # well under stop_timeout
    assert (root / "boots").read_text().splitlines() == ["boot", "term"]  # init got SIGTERM


def test_purge_erases_owned_storage_only(lxc_conn: Any, prefix: str, tmp_path: Path) -> None:
    name = f"{prefix}pg"
    owned, shared = tmp_path / "roots" / name, tmp_path / "shared"
    shared.mkdir()
    (shared / "keep.txt").write_text("the user's data")
    specs, cfg = tmp_path / "specs", config(tmp_path / "state", URI, prefix)
    extra = {"type": "mount", "source": str(shared), "target": "/shared"}
    spec = _spec(name, owned, removal="purge")
    spec["filesystems"].append(extra)
    _write(specs, spec)
    _, report = apply(specs, cfg)
    assert not errors(report)
    _booted(lxc_conn.lookupByName(name), owned, 1)
    _write(specs, {**spec, "state": "absent"})
    first, report = apply(specs, cfg)
    assert not errors(report)
    assert [s.kind for s in first.steps] == ["stop", "purge"]
    assert name not in [d.name() for d in lxc_conn.listAllDomains(0)]
    assert not owned.exists()
    assert (shared / "keep.txt").read_text() == "the user's data"


def test_undefine_keeps_data_and_a_spec_without_owned_storage_purges_nothing(
        lxc_conn: Any, prefix: str, tmp_path: Path) -> None:
    name = f"{prefix}mt"
    root = make_busybox_root(tmp_path / "mine")
    spec = _spec(name, tmp_path / "unused", removal="purge")
    spec["filesystems"] = [{"type": "mount", "source": str(root), "target": "/"}]
    specs, cfg = tmp_path / "specs", config(tmp_path / "state", URI, prefix)
    _write(specs, spec)
    apply(specs, cfg)
    _write(specs, {**spec, "state": "absent"})
    _, report = apply(specs, cfg)
    assert not errors(report)
    assert name not in [d.name() for d in lxc_conn.listAllDomains(0)]
    assert (root / "bin" / "busybox").exists()  # a mount is the user's: purge = undefine


@pytest.fixture
def dnsmasq_dir() -> Iterator[None]:
    """libvirt's network driver writes a guest's MAC list under /var/lib/libvirt/dnsmasq when
    the guest joins a network; packaging (libvirt-daemon-system) normally makes that
    directory. Made here when missing, and removed again if it was made here and is empty."""
    for tool in ("iptables", "dnsmasq"):  # libvirt's network driver runs them at start
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            pytest.skip(f"{tool} is not installed; libvirt cannot start a network here")
    path = Path("/var/lib/libvirt/dnsmasq")
    made = not path.exists()
    if made:
        path.mkdir(parents=True)
    yield
    if made:  # libvirt removes the network's files in there a moment after it stops
        deadline = time.monotonic() + 3
        while any(path.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        with contextlib.suppress(OSError):
            path.rmdir()


def test_network_lifecycle_with_a_guest_on_it(lxc_conn: Any, lv: Any, prefix: str,
                                              tmp_path: Path, dnsmasq_dir: None) -> None:
    net, name = f"{prefix}net", f"{prefix}nc"
    bridge = f"{prefix}br"[:15]
    subnet = f"10.123.{random.randint(100, 250)}"
    root = tmp_path / "roots" / name
    specs, cfg = tmp_path / "specs", config(tmp_path / "state", URI, prefix)
    # no STP: the guest's port forwards at once instead of after the kernel's minimum delay
    network = {"kind": "Network", "name": net, "autostart": True,
               "bridge": {"name": bridge, "stp": False}, "ips": [{"address": f"{subnet}.1/24"}],
               "xml": ['<dns enable="no"></dns>']}
    guest = _spec(name, root, interfaces=[{"type": "network", "source": net,
                                           "ip": [f"{subnet}.2/24"]}])
    _write(specs, network)
    _write(specs, guest)
    first, report = apply(specs, cfg)
    assert not errors(report), errors(report)
    order = [s.id for s in first.steps]
    assert order.index(f"network/{net}:start") < order.index(f"domain/{name}:start")
    handle = lxc_conn.networkLookupByName(net)
    assert handle.isActive() and handle.autostart()
    _booted(lxc_conn.lookupByName(name), root, 1)
    assert BUSYBOX is not None
    ping = subprocess.run([BUSYBOX, "ping", "-c3", "-W3", f"{subnet}.2"], capture_output=True,
                          text=True, timeout=15, check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr  # host -> guest over the bridge
    assert changes(plan(specs, cfg)) == {}
    # autostart is live; the same bridge name and MAC are kept across a redefine
    mac = re.search(r"<mac address='([^']+)'", handle.XMLDesc(0))
    _write(specs, {**network, "autostart": False})
    first, report = apply(specs, cfg)
    assert not errors(report)
    assert [s.kind for s in first.steps] == ["update"] and not handle.autostart()
    assert handle.isActive() and mac and mac.group(1) in handle.XMLDesc(0)
    assert changes(plan(specs, cfg)) == {}
    # everything gone from the specs: the guest goes first, then its network
    (specs / f"{net}.yaml").unlink()
    (specs / f"{name}.yaml").unlink()
    (specs / "placeholder.yaml").write_text("")
    first, report = apply(specs, cfg)
    assert not errors(report), errors(report)
    order = [s.id for s in first.steps]
    assert order.index(f"domain/{name}:undefine") < order.index(f"network/{net}:stop")
    assert net not in [n.name() for n in lxc_conn.listAllNetworks(0)]
    assert not Path(f"/sys/class/net/{bridge}").exists()


def test_import_adopts_and_the_next_plan_is_empty(lxc_conn: Any, lv: Any, prefix: str,
                                                  tmp_path: Path) -> None:
    """`reconciler import` (the CLI, as people run it) on a domain someone else defined and
    started: specs written, the domain adopted, and a plan over the files changes nothing."""
    name = f"{prefix}im"
    root = make_busybox_root(tmp_path / "roots" / name)
    lxc_conn.defineXML(
        f"<domain type='lxc'><name>{name}</name><memory unit='MiB'>96</memory>"
        "<os><type>exe</type><init>/bin/sh</init><initarg>-c</initarg>"
        f"<initarg>{INIT.replace('&', '&amp;')}</initarg></os>"
        "<devices><filesystem type='mount'>"
        f"<source dir='{root}'/><target dir='/'/></filesystem>"
        "<interface type='bridge'><source bridge='rcnobridge0'/></interface>"
        "<console type='pty'/></devices></domain>")
    out = tmp_path / "imported"
    done = subprocess.run([sys.executable, "-m", "reconciler", "import", "--driver", "libvirt",
                           "--uri", URI, "--state-dir", str(tmp_path / "state"), "--out",
                           str(out), "--name", name], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"{name}.yaml"]
    written = yaml.safe_load((out / f"{name}.yaml").read_text())
    assert written["state"] == "stopped" and written["memory"] == "96MiB"
    assert "urn:reconciler:state:1" in lxc_conn.lookupByName(name).XMLDesc(
        lv.VIR_DOMAIN_XML_INACTIVE)
    cfg = config(tmp_path / "state", URI, prefix)
    assert changes(plan(out, cfg)) == {}
