"""The conformance harness for `lxc`: real busybox containers under a private lxcpath.

Everything the suite checks is read from the host, never through the driver: existence is the
config file, run state is `lxc-info -sH`, boots are lines the container's own init appends to
`/boots` in its rootfs at each start (the init is a script bind-mounted from the test's temp
dir, which then execs busybox init), data is the rootfs directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from reconciler.engine.config import Config
from reconciler.engine.policy import Policy

from .harness import Facts

BOOT_SCRIPT = """#!/bin/sh
# conformance harness: count boots from inside the container, then become busybox init
echo boot >> /boots
exec /sbin/init
"""


def lxc_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "the lxc driver needs root (containers are created with lxc-create)"
    if shutil.which("lxc-create") is None:
        return "lxc-create is not installed (apt install lxc)"
    if shutil.which("busybox") is None and not Path("/bin/busybox").exists():
        return "busybox is not installed (apt install busybox-static)"
    return None


def _run(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          check=False, stdin=subprocess.DEVNULL)


class LxcHarness:
    name = "lxc"
    allocates_ids = False

    def __init__(self, tmp: Path) -> None:
        self.prefix = f"cf{uuid.uuid4().hex[:6]}"
        self.lxcpath = tmp / "lxc"
        self.lxcpath.mkdir(parents=True, exist_ok=True)
        self.bootdir = tmp / "harness-boot"
        self.bootdir.mkdir(exist_ok=True)
        script = self.bootdir / "boot"
        script.write_text(BOOT_SCRIPT)
        script.chmod(0o755)

    def config(self, state_dir: Path) -> Config:
        # stop_timeout 0: lxc-stop -k; the clean halt is checked in tests/drivers/lxc.
        # Beyond the default policy: the boot script is bind-mounted from the harness's temp
        # directory, and the containers run without an id map (it writes /boots as root)
        allow = {"mount_roots": [str(self.bootdir)], "privileged": True}
        return Config(state_dir=str(state_dir), driver="lxc", driver_chosen=True,
                      drivers={"lxc": {"lxcpath": str(self.lxcpath), "stop_timeout": 0}},
                      policy=Policy.from_config(allow, str(state_dir)))

    def spec(self, name: str, **overrides: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "kind": "Domain", "name": name, "type": "lxc", "memory": "128MiB",
            "hostname": name, "init": {"cmd": "/harness/boot"},
            "filesystems": [{"type": "template", "name": "busybox", "target": "/"},
                            {"type": "mount", "source": str(self.bootdir),
                             "target": "/harness", "readonly": True}],
        }
        spec.update(overrides)
        return spec

    def live_change(self) -> tuple[dict[str, Any], str, Any]:
        return {"memory": "256MiB"}, "memory", "256MiB"

    def restart_change(self) -> tuple[dict[str, Any], str, Any]:
        return {"hostname": "renamed"}, "hostname", "renamed"

    def replace_change(self, spec: dict[str, Any]) -> dict[str, Any]:
        fss = [dict(fs) for fs in spec["filesystems"]]
        fss[0] = {"type": "template", "name": "download", "target": "/",
                  "options": ["-d", "alpine"]}
        return {**spec, "filesystems": fss}

    # ------------------------------------------------------------------ the host's view
    def _lxc(self, tool: str, name: str, *args: str) -> subprocess.CompletedProcess[str]:
        return _run(tool, "-P", str(self.lxcpath), "-n", name, *args)

    def _state(self, name: str) -> str:
        return self._lxc("lxc-info", name, "-sH").stdout.strip()

    def _settle(self, name: str) -> None:
        """Wait until the boot script has exec'd busybox init (so /boots is written)."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            pid = self._lxc("lxc-info", name, "-pH").stdout.strip()
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip() if pid else ""
            except OSError:
                comm = ""
            if comm and comm != "sh":
                return
            time.sleep(0.02)

    def facts(self, name: str) -> Facts:
        cdir = self.lxcpath / name
        rootfs = cdir / "rootfs"
        data = rootfs.is_dir()
        config = cdir / "config"
        if not config.exists():
            return Facts(exists=False, data=data)
        running = self._state(name) == "RUNNING"
        values: dict[str, Any] = {}
        if running:
            self._settle(name)
            values["memory"] = self._lxc("lxc-cgroup", name,
                                         "memory.limit_in_bytes").stdout.strip()
        for line in config.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() == "lxc.uts.name":
                values["hostname"] = value.strip().strip('"')
        boots_file = rootfs / "boots"
        boots = len(boots_file.read_text().splitlines()) if boots_file.exists() else 0
        return Facts(exists=True, running=running, boots=boots, data=data, values=values)

    def tamper_stop(self, name: str) -> None:
        self._lxc("lxc-stop", name, "-k")

    def make_foreign(self, name: str) -> None:
        """A container made by hand, as an admin would: no reconciler sidecar."""
        empty = self.lxcpath.parent / "foreign.conf"
        empty.write_text("")
        made = _run("lxc-create", "-P", str(self.lxcpath), "-n", name, "-t", "busybox",
                    "-f", str(empty))
        assert made.returncode == 0, made.stderr
        rcs = self.lxcpath / name / "rootfs" / "etc" / "init.d" / "rcS"
        rcs.write_text("".join(line for line in rcs.read_text().splitlines(keepends=True)
                               if "udhcpc" not in line))
        started = self._lxc("lxc-start", name, "-d")
        assert started.returncode == 0, started.stderr

    def cleanup(self) -> None:
        if not self.lxcpath.is_dir():
            return
        for entry in sorted(self.lxcpath.iterdir()):
            if entry.is_dir() and entry.name.startswith(self.prefix):
                self._lxc("lxc-stop", entry.name, "-k")
                self._lxc("lxc-destroy", entry.name, "-f")
        shutil.rmtree(self.lxcpath, ignore_errors=True)


def _factory(tmp: Path) -> LxcHarness | str:
    reason = lxc_unavailable()
    return reason if reason else LxcHarness(tmp)


HARNESSES = [("lxc", _factory)]
