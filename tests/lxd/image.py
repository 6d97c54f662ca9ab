"""A busybox container image built here, from the host's static busybox: no image server.

A unified LXD image tarball: `metadata.yaml` and `rootfs/`. Its init is a shell script that
counts boots (a line appended to /boots per start, read back through LXD's file API) and
exits at once on SIGPWR, the signal LXD stops a container with, so stops take no time.
"""

from __future__ import annotations

import io
import os
import platform
import subprocess
import tarfile
import time
from pathlib import Path

BUSYBOX = next((p for p in ("/bin/busybox", "/usr/bin/busybox") if os.path.isfile(p)), None)
ALIAS = "busybox"
INIT = b"""#!/bin/sh
echo boot >> /boots
trap 'exit 0' PWR TERM INT
while :; do sleep 100000 & wait $!; done
"""
_DIRS = ("bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "run", "root", "var", "usr",
         "usr/bin", "usr/sbin")
# LXD's architecture names for what `uname -m` says
_ARCH = {"x86_64": "x86_64", "aarch64": "aarch64", "armv7l": "armv7l", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64"}


def _entry(tar: tarfile.TarFile, name: str, data: bytes | None = None, mode: int = 0o644,
           link: str | None = None) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = int(time.time())
    info.mode = mode
    if link is not None:
        info.type = tarfile.SYMTYPE
        info.linkname = link
        tar.addfile(info)
    elif data is None:
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def build(path: Path) -> Path:
    """Write the image tarball to `path` (once; it is reused)."""
    if path.exists():
        return path
    assert BUSYBOX is not None, "no static busybox (apt-get install busybox-static)"
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True,
                             timeout=30).stdout.split()
    arch = _ARCH.get(platform.machine(), platform.machine())
    meta = (f"architecture: {arch}\ncreation_date: {int(time.time())}\nproperties:\n"
            "  description: busybox (built for tests)\n  os: busybox\n  release: static\n"
            "templates: {}\n").encode()
    partial = path.with_suffix(".partial")
    with tarfile.open(partial, "w:gz") as tar:
        _entry(tar, "metadata.yaml", meta)
        _entry(tar, "rootfs", mode=0o755)
        for folder in _DIRS:
            _entry(tar, f"rootfs/{folder}", mode=0o1777 if folder == "tmp" else 0o755)
        _entry(tar, "rootfs/bin/busybox", Path(BUSYBOX).read_bytes(), 0o755)
        for applet in applets:
            if applet != "busybox":
                _entry(tar, f"rootfs/bin/{applet}", link="busybox")
        _entry(tar, "rootfs/sbin/init", INIT, 0o755)
        _entry(tar, "rootfs/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        _entry(tar, "rootfs/etc/group", b"root:x:0:\n")
        _entry(tar, "rootfs/etc/hostname", b"busybox\n")
    partial.rename(path)
    return path
