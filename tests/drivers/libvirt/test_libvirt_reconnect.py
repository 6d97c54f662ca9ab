"""libvirtd restarted under a running driver: the driver reconnects and carries on, and its
event watcher reconnects and reports every object once (events may have been missed).

The test runs a libvirtd of its own, never the system one: in a private mount namespace
whose /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt
are directories of the test (so its state survives the restart and nothing of the host's
libvirt is seen or touched), answering on a socket in the test's directory. It is killed by
pid, and its directories are removed, pass or fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from libvirt_support import apply, changes, config, errors, plan

from reconciler.drivers.base import Step
from reconciler.drivers.libvirt import LibvirtDriver
from reconciler.model.fields import Ref
from tests.conformance.libvirt_harness import load_libvirt

_BOUND = {"etc": "/etc/libvirt", "run": "/run/libvirt", "lib": "/var/lib/libvirt",
          "cache": "/var/cache/libvirt", "log": "/var/log/libvirt"}


class PrivateLibvirtd:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.proc: subprocess.Popen[bytes] | None = None
        for sub in _BOUND:
            (base / sub).mkdir(parents=True, exist_ok=True)
        self.socket = base / "run" / "libvirt-sock"
        self.uri = f"lxc:///system?socket={self.socket}"

    def start(self) -> None:
        binds = "".join(f"mount --bind {self.base / sub} {target}\n"
                        for sub, target in _BOUND.items())
        script = (f"set -e\nmount --make-rprivate /\n{binds}"
                  f"exec libvirtd --pid-file {self.base / 'pid'}\n")
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        log = open(self.base / "libvirtd.log", "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c",
                                      script], stdout=log, stderr=log)
        log.close()
        lv = load_libvirt()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"private libvirtd exited: {self.log_tail()}")
            try:
                lv.open(self.uri).close()
                return
            except lv.libvirtError:
                time.sleep(0.05)
        raise RuntimeError(f"private libvirtd did not answer: {self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def log_tail(self) -> str:
        path = self.base / "libvirtd.log"
        return path.read_text(errors="replace")[-800:] if path.exists() else ""


@pytest.fixture
def private_libvirtd(lv: Any, tmp_path: Path) -> Iterator[PrivateLibvirtd]:
    if os.geteuid() != 0:
        pytest.skip("a private libvirtd needs root (mount namespace)")
    for tool in ("unshare", "libvirtd"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    daemon = PrivateLibvirtd(Path(f"/tmp/rc-lvd-{os.getpid()}-{tmp_path.name}"[:60]))
    try:
        daemon.start()
    except RuntimeError as exc:
        daemon.stop()
        shutil.rmtree(daemon.base, ignore_errors=True)
        pytest.skip(f"cannot run a private libvirtd here: {exc}")
    try:
        yield daemon
    finally:
        with contextlib.suppress(Exception):
            conn = lv.open(daemon.uri)
            for dom in conn.listAllDomains(0):
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
            conn.close()
        daemon.stop()
        shutil.rmtree(daemon.base, ignore_errors=True)


def _spec(name: str) -> dict[str, Any]:
    return {"kind": "Domain", "name": name, "type": "lxc", "memory": "64MiB",
            "state": "stopped", "init": {"cmd": "/bin/sh"},
            "filesystems": [{"type": "mount", "source": "/srv/none", "target": "/"}],
            "console": {"type": "pty"}}


def test_driver_and_events_survive_a_libvirtd_restart(private_libvirtd: PrivateLibvirtd,
                                                      lv: Any, prefix: str,
                                                      tmp_path: Path) -> None:
    daemon = private_libvirtd
    specs = tmp_path / "specs"
    specs.mkdir()
    a, b = f"{prefix}a", f"{prefix}b"
    (specs / f"{a}.yaml").write_text(yaml.safe_dump(_spec(a)))
    # the guests (never started) name the host's /srv/none as their root
    cfg = config(tmp_path / "state", daemon.uri, prefix, policy={
        "mount_roots": ["/srv/none"], "host_root": True, "privileged": True})
    _, report = apply(specs, cfg)
    assert not errors(report), errors(report)

    driver = LibvirtDriver(tmp_path / "state", uri=daemon.uri, match=f"{prefix}*",
                           reconnect_timeout=15)
    stop = threading.Event()
    seen: list[Ref] = []

    def consume() -> None:
        for ref in driver.events(stop):
            seen.append(ref)

    watcher = threading.Thread(target=consume, daemon=True)
    try:
        assert [o.ref.name for o in driver.observe()] == [a]
        generation = driver.conn.generation
        watcher.start()
        time.sleep(0.3)

        daemon.stop()  # libvirtd goes away under the running driver ...
        time.sleep(0.3)
        daemon.start()  # ... and comes back (a restart: same state directories)

        # the driver reconnects by itself and carries on
        live = driver.observe()
        assert [(o.ref.name, o.owned) for o in live] == [(a, True)]
        assert driver.conn.generation == generation + 1 and driver.conn.reconnects == 1
        spec = {k: v for k, v in _spec(b).items() if k != "kind"}
        driver.execute(Step("s", "define", Ref("Domain", b), "lxc", spec=spec))

        # the watcher reconnected: it reported what it may have missed, then new events
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Ref("Domain", b) not in seen:
            time.sleep(0.05)
        assert Ref("Domain", a) in seen  # the catch-up after reconnecting
        assert Ref("Domain", b) in seen  # a live event on the new connection
    finally:
        stop.set()
        watcher.join(5)
        driver.close()
    assert not watcher.is_alive()
    (specs / f"{b}.yaml").write_text(yaml.safe_dump(_spec(b)))
    assert changes(plan(specs, cfg)) == {}
