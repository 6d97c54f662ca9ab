"""The real-host test world for the lxc driver: a private lxcpath, a private bridge on
10.123.N.0/24, unique name prefixes, and cleanup that runs even when a test fails (the
fixtures in conftest.py hand these out; tests import the classes from here).

Everything is created under the test's temp dir (`-P` on every tool), so /var/lib/lxc and
other people's containers are never looked at. Network traffic goes only to our own bridge.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from reconciler.drivers.lxc import LxcDriver
from reconciler.engine.config import Config
from reconciler.engine.policy import Policy
from tests.conformance.harness import SpecPasses

BOOT_SCRIPT = """#!/bin/sh
echo boot >> /boots
exec /sbin/init
"""


def lxc_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root: LXC containers are created with lxc-create"
    for tool in ("lxc-create", "lxc-start", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt install lxc iproute2)"
    if shutil.which("busybox") is None:
        return "busybox is not installed (apt install busybox-static)"
    return None


def run(*argv: str, timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                            check=False, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise AssertionError(f"{argv}: {result.stderr}")
    return result


class Bridge:
    def __init__(self, name: str, net: int) -> None:
        self.name = name
        self.net = net
        self.gateway = f"10.123.{net}.1"

    def ip(self, host: int) -> str:
        return f"10.123.{self.net}.{host}"


def free_net() -> int:
    used = run("ip", "-4", "-o", "addr").stdout
    candidates = [n for n in range(100, 250) if f"10.123.{n}." not in used]
    return random.choice(candidates)


class HostWorld(SpecPasses):
    """A spec directory, a state directory and a private lxcpath, driven through the engine."""

    def __init__(self, tmp: Path, prefix: str) -> None:
        self.prefix = prefix
        self.lxcpath = tmp / "lxc"
        self.specs = tmp / "specs"
        self.state = tmp / "state"
        self.bootdir = tmp / "boot"
        for d in (self.lxcpath, self.specs, self.state, self.bootdir):
            d.mkdir()
        (self.bootdir / "boot").write_text(BOOT_SCRIPT)
        (self.bootdir / "boot").chmod(0o755)
        self.options: dict[str, Any] = {"stop_timeout": 0}
        self.policy: dict[str, Any] | None = None  # a test's own policy, when it needs more

    # ------------------------------------------------------------------ specs and engine
    def name(self, suffix: str) -> str:
        return f"{self.prefix}{suffix}"

    def spec(self, name: str, **overrides: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "kind": "Domain", "name": name, "type": "lxc", "memory": "128MiB",
            "init": {"cmd": "/boot/boot"},
            "filesystems": [{"type": "template", "name": "busybox", "target": "/"},
                            {"source": str(self.bootdir), "target": "/boot",
                             "readonly": True}],
        }
        spec.update(overrides)
        return spec

    def config(self) -> Config:
        # Beyond the default policy: host directories under the test's temp dir are mounted
        # into the containers (the boot script, shared data), and they run without an id map
        # (their init writes /boots as the host's root)
        allow = self.policy or {"mount_roots": [str(self.lxcpath.parent)], "privileged": True}
        return Config(state_dir=str(self.state), driver="lxc", driver_chosen=True,
                      drivers={"lxc": {"lxcpath": str(self.lxcpath), **self.options}},
                      policy=Policy.from_config(allow, str(self.state)))

    def driver(self) -> LxcDriver:
        return LxcDriver(state_dir=str(self.state), lxcpath=str(self.lxcpath), **self.options)

    # ------------------------------------------------------------------ the host's own view
    def lxc(self, tool: str, name: str, *args: str, timeout: float = 60
            ) -> subprocess.CompletedProcess[str]:
        return run(tool, "-P", str(self.lxcpath), "-n", name, *args, timeout=timeout)

    def state_of(self, name: str) -> str:
        return self.lxc("lxc-info", name, "-sH").stdout.strip()

    def attach(self, name: str, *argv: str) -> str:
        result = self.lxc("lxc-attach", name, "--", *argv)
        assert result.returncode == 0, result.stderr
        return result.stdout

    def pid(self, name: str) -> str:
        return self.lxc("lxc-info", name, "-pH").stdout.strip()

    def boots(self, name: str) -> int:
        self.settle(name)
        path = self.lxcpath / name / "rootfs" / "boots"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def settle(self, name: str) -> None:
        """Until the boot script has exec'd busybox init (its /boots line is written)."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and self.state_of(name) == "RUNNING":
            try:
                comm = Path(f"/proc/{self.pid(name)}/comm").read_text().strip()
            except OSError:
                comm = ""
            if comm and comm != "sh":
                return
            time.sleep(0.02)

    def config_text(self, name: str) -> str:
        return (self.lxcpath / name / "config").read_text()

    def cgroup(self, name: str, file: str) -> str:
        controller = file.split(".")[0]
        return (Path("/sys/fs/cgroup") / controller / f"lxc.payload.{name}" / file
                ).read_text().strip()

    def make_foreign(self, name: str, config: str = "", start: bool = True) -> None:
        conf = self.lxcpath.parent / f"{name}.conf"
        conf.write_text(config)
        made = self.lxc("lxc-create", name, "-t", "busybox", "-f", str(conf))
        assert made.returncode == 0, made.stderr
        rcs = self.lxcpath / name / "rootfs" / "etc" / "init.d" / "rcS"
        rcs.write_text("".join(line for line in rcs.read_text().splitlines(keepends=True)
                               if "udhcpc" not in line))
        if start:
            started = self.lxc("lxc-start", name, "-d")
            assert started.returncode == 0, started.stderr

    def cleanup(self) -> None:
        """Kill and destroy everything with our prefix, then leftover cgroups."""
        if self.lxcpath.is_dir():
            for entry in sorted(self.lxcpath.iterdir()):
                if entry.is_dir() and entry.name.startswith(self.prefix):
                    self.lxc("lxc-stop", entry.name, "-k")
                    self.lxc("lxc-destroy", entry.name, "-f")
            shutil.rmtree(self.lxcpath, ignore_errors=True)
        for leftover in Path("/sys/fs/cgroup").glob(f"*/lxc.*.{self.prefix}*"):
            with contextlib.suppress(OSError):
                leftover.rmdir()
