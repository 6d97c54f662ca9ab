"""Conformance harnesses for the `libvirt` driver, reading the host through libvirt itself.

- `libvirt-test`: `test:///default`, libvirt's in-process test hypervisor. Its state lives in
  this process, shared by every connection while one stays open: the harness keeps one open
  for the whole test and uses a unique name prefix. Boots come from the host's own lifecycle
  events: each STARTED event carries the new domain id the test driver assigned.
- `libvirt-lxc`: `lxc:///` on a real libvirtd. Each guest runs a busybox root the harness
  makes (bin/busybox + applet links); its init appends a line to /boots at every boot, which
  the harness counts. Live values (memory, cpu shares) are read from the running domain.

Both hand the driver `match: PREFIX*`, so nothing else on the host is observed or touched.
The helpers here are shared with tests/drivers/libvirt.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from reconciler.engine.config import Config
from reconciler.engine.policy import Policy

from .harness import Facts

LXC_URI = "lxc:///"
TEST_URI = "test:///default"
# the guest's init: count the boot, stop cleanly on SIGTERM (libvirt's shutdown, signal mode)
INIT = "echo boot >> /boots; trap 'exit 0' TERM; sleep 100000 & wait"
def lxc_guest_spec(name: str, root: Path, init: str = INIT) -> dict[str, Any]:
    """A libvirt LXC guest on a busybox root the driver builds at `root` (so it owns it and
    purge erases it); `init` runs as its PID 1."""
    return {
        "kind": "Domain", "name": name, "type": "lxc", "memory": "128MiB",
        "init": {"cmd": "/bin/sh", "args": ["-c", init]},
        "filesystems": [{"type": "template", "name": "busybox", "source": str(root),
                         "target": "/"}],
        "console": {"type": "pty"},
    }


BUSYBOX = next((p for p in ("/bin/busybox", "/usr/bin/busybox") if os.path.isfile(p)), None)


def load_libvirt() -> Any:
    try:
        import libvirt
    except ImportError:
        return None
    libvirt.registerErrorHandler(lambda _c, _e: None, None)
    return libvirt


def lxc_reason(uri: str = LXC_URI) -> str | None:
    """Why libvirt LXC guests cannot run here, or None when they can."""
    lv = load_libvirt()
    if lv is None:
        return "libvirt-python is not installed (pip install '.[libvirt]' from the checkout)"
    if os.geteuid() != 0:
        return "libvirt LXC guests need root"
    if BUSYBOX is None:
        return "no busybox on the host (apt-get install busybox-static)"
    try:
        lv.open(uri).close()
    except lv.libvirtError as exc:
        return f"libvirtd is not reachable at {uri} ({str(exc).splitlines()[0]}); start it " \
               "as in host-backends.md section 2"
    controllers = Path("/sys/fs/cgroup/unified/cgroup.controllers")
    if controllers.exists() and controllers.read_text().strip():
        return ("libvirt LXC guests cannot start on this hybrid cgroup layout (cgroup2 holds "
                f"{controllers.read_text().strip()}); apply the cgroup fix of host-backends.md "
                "section 2")
    return None


def make_busybox_root(path: Path) -> Path:
    """A root filesystem that runs: bin/busybox and a link per applet the init uses."""
    assert BUSYBOX is not None
    (path / "bin").mkdir(parents=True, exist_ok=True)
    if not (path / "bin" / "busybox").exists():
        shutil.copy2(BUSYBOX, path / "bin" / "busybox")
    for applet in ("sh", "sleep", "echo", "cat", "ls", "true"):
        link = path / "bin" / applet
        if not link.is_symlink():
            link.symlink_to("busybox")
    return path


def remove_all(conn: Any, lv: Any, prefix: str) -> None:
    """Destroy and undefine every domain and network named PREFIX*."""
    for dom in conn.listAllDomains(0):
        if dom.name().startswith(prefix):
            try:
                if dom.isActive():
                    dom.destroy()
                if dom.isPersistent():
                    dom.undefine()
            except lv.libvirtError:
                continue
    for net in conn.listAllNetworks(0):
        if net.name().startswith(prefix):
            try:
                if net.isActive():
                    net.destroy()
                if net.isPersistent():
                    net.undefine()
            except lv.libvirtError:
                continue


def init_pid(controller: int) -> int | None:
    """The guest's init: the child of the libvirt_lxc controller (whose pid is the domain id)."""
    try:
        kids = Path(f"/proc/{controller}/task/{controller}/children").read_text().split()
    except OSError:
        return None
    return int(kids[0]) if kids else None


class LibvirtHarness:
    allocates_ids = False

    def __init__(self, tmp: Path, uri: str) -> None:
        self.lv = load_libvirt()
        self.uri = uri
        self.kind = "lxc" if uri.startswith("lxc") else "test"
        self.name = f"libvirt-{self.kind}"
        self.prefix = f"cf{uuid.uuid4().hex[:6]}"
        self.roots = tmp / "roots"
        self.roots.mkdir(parents=True, exist_ok=True)
        self._starts: dict[str, set[int]] = {}
        self._lock = threading.Lock()
        if self.kind == "test":
            # events reach callbacks of this process only through the registered loop
            from reconciler.drivers.libvirt.events import ensure_event_loop

            ensure_event_loop(self.lv)
        self.conn = self.lv.open(uri)  # kept open: test:///default state lives while one is
        if self.kind == "test":
            self.conn.domainEventRegisterAny(None, self.lv.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                             self._on_event, None)

    def _on_event(self, _conn: Any, dom: Any, event: int, _detail: int, _opaque: Any) -> None:
        if event == self.lv.VIR_DOMAIN_EVENT_STARTED and dom.name().startswith(self.prefix):
            with self._lock:
                self._starts.setdefault(dom.name(), set()).add(dom.ID())

    def config(self, state_dir: Path) -> Config:
        # beyond the default policy: guests are built under the harness's temp directory, and
        # libvirt LXC guests run without an id map (init writes into a root owned by root)
        allow = {"mount_roots": [str(self.roots)], "privileged": self.kind == "lxc"}
        return Config(state_dir=str(state_dir), driver="libvirt", driver_chosen=True,
                      drivers={"libvirt": {"uri": self.uri, "match": f"{self.prefix}*",
                                           "stop_timeout": 10}},
                      policy=Policy.from_config(allow, str(state_dir)))

    def root(self, name: str) -> Path:
        return self.roots / name

    def spec(self, name: str, **overrides: Any) -> dict[str, Any]:
        root = self.root(name)
        if self.kind == "lxc":
            spec = lxc_guest_spec(name, root)
        else:
            spec = {
                "kind": "Domain", "name": name, "type": "test", "os": {"type": "hvm"},
                "memory": "128MiB",
                "filesystems": [{"type": "template", "name": "empty", "source": str(root),
                                 "target": "/"}],
            }
        spec.update(overrides)
        return spec

    def live_change(self) -> tuple[dict[str, Any], str, Any]:
        if self.kind == "lxc":
            return {"cpu": {"shares": 512}}, "cpu.shares", 512
        return {"current_memory": "64MiB"}, "current_memory", "64MiB"

    def restart_change(self) -> tuple[dict[str, Any], str, Any]:
        return {"memory": "192MiB"}, "memory", "192MiB"

    def replace_change(self, spec: dict[str, Any]) -> dict[str, Any]:
        return {**spec, "uuid": str(uuid.uuid4())}

    # ------------------------------------------------------------------ reading the host
    def _lookup(self, name: str) -> Any:
        try:
            return self.conn.lookupByName(name)
        except self.lv.libvirtError as exc:
            if exc.get_error_code() == self.lv.VIR_ERR_NO_DOMAIN:
                return None
            raise

    def boots(self, name: str, dom: Any) -> int:
        running = bool(dom.isActive())
        if self.kind == "lxc":
            path = self.root(name) / "boots"
            if running:  # wait for init to be past its echo (it then starts `sleep`)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    pid = init_pid(dom.ID())
                    if pid is not None and init_pid(pid) is not None:
                        break
                    time.sleep(0.02)
            return len(path.read_text().splitlines()) if path.exists() else 0
        deadline = time.monotonic() + 2
        while running and time.monotonic() < deadline:  # the event for this boot arrived?
            with self._lock:
                if dom.ID() in self._starts.get(name, set()):
                    break
            time.sleep(0.01)
        with self._lock:
            return len(self._starts.get(name, set()))

    def values(self, dom: Any) -> dict[str, Any]:
        info = dom.info()
        values: dict[str, Any] = {"memory_kib": info[1]}
        xml = dom.XMLDesc(0)
        current = re.search(r"<currentMemory unit='KiB'>(\d+)<", xml)
        values["current_memory_kib"] = int(current.group(1)) if current else None
        if self.kind == "lxc" and dom.isActive():
            values["cpu_shares"] = dom.schedulerParameters()["cpu_shares"]
            values["hard_limit_kib"] = dom.memoryParameters(0).get("hard_limit")
        return values

    def facts(self, name: str) -> Facts:
        dom = self._lookup(name)
        data = self.root(name).is_dir()
        if dom is None:
            return Facts(exists=False, data=data)
        return Facts(exists=True, running=bool(dom.isActive()), boots=self.boots(name, dom),
                     data=data, values=self.values(dom))

    # ------------------------------------------------------------------ disturbing it
    def tamper_stop(self, name: str) -> None:
        self.conn.lookupByName(name).destroy()

    def make_foreign(self, name: str) -> None:
        """A guest someone else defined, with its own root directory (its data)."""
        root = make_busybox_root(self.root(name))
        if self.kind == "lxc":
            xml = (f"<domain type='lxc'><name>{name}</name><memory unit='MiB'>64</memory>"
                   "<os><type>exe</type><init>/bin/sh</init></os><devices>"
                   f"<filesystem type='mount'><source dir='{root}'/><target dir='/'/>"
                   "</filesystem><console type='pty'/></devices></domain>")
        else:
            xml = (f"<domain type='test'><name>{name}</name><memory>65536</memory>"
                   "<os><type>hvm</type></os></domain>")
        self.conn.defineXML(xml)

    def cleanup(self) -> None:
        try:
            remove_all(self.conn, self.lv, self.prefix)
        finally:
            self.conn.close()
            shutil.rmtree(self.roots, ignore_errors=True)


def _test_harness(tmp: Path) -> LibvirtHarness | str:
    if load_libvirt() is None:
        return "libvirt-python is not installed (pip install '.[libvirt]' from the checkout)"
    return LibvirtHarness(tmp, TEST_URI)


def _lxc_harness(tmp: Path) -> LibvirtHarness | str:
    reason = lxc_reason()
    if reason:
        return reason
    return LibvirtHarness(tmp, LXC_URI)


HARNESSES = [
    ("libvirt-test", _test_harness),
    ("libvirt-lxc", _lxc_harness),
]
