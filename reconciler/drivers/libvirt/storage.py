"""Storage a domain's spec declares as its own: what `provision` builds and `purge` erases.

A spec owns storage by asking for it to be built: a filesystem of `type: template`. Its
`source` is the host directory the root is built in (default: `<state_dir>/libvirt/roots/
<domain>` for `/`, `<domain>.<target>` for other targets). `provision` builds it when it is
missing (an existing directory is taken as already built); `purge` removes exactly these
directories and nothing else. Every other filesystem (`mount`, `bind`, `block`, `file`, `ram`)
belongs to the user: undefine and purge leave it alone. A spec without a template filesystem
owns nothing, so purging it is the same as undefining it.

libvirt's LXC and QEMU drivers cannot build from templates, so the driver does (templates:
`busybox`, a static busybox with its applets linked, and `empty`, a bare directory) and
defines the result as a `mount`. OpenVZ builds from its own templates; nothing is built here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from reconciler.drivers.text import lines, unescape_octal
from reconciler.errors import PermanentError

TEMPLATES = ("busybox", "empty")
# directories that are never a guest's private root, however a spec names them
_PROTECTED = frozenset({"/", *(f"/{d}" for d in (
    "bin", "boot", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "media", "mnt", "opt",
    "proc", "root", "run", "sbin", "srv", "sys", "tmp", "usr", "usr/local", "var", "var/lib",
    "var/log", "var/tmp"))})
_BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")


def default_source(roots: Path, domain: str, target: str) -> str:
    suffix = "" if target == "/" else "." + target.strip("/").replace("/", "_")
    return str(roots / f"{domain}{suffix}")


def owned_sources(spec: dict[str, Any] | None, roots: Path, domain: str) -> list[str]:
    """The directories `spec` owns, in spec order."""
    out = []
    for fs in (spec or {}).get("filesystems", ()):
        if fs.get("type") == "template":
            out.append(fs.get("source") or default_source(roots, domain, fs["target"]))
    return out


def provision(spec: dict[str, Any], roots: Path, domain: str) -> list[str]:
    """Build every owned directory that is missing; returns the ones built."""
    built = []
    for fs in spec.get("filesystems", ()):
        if fs.get("type") != "template":
            continue
        path = Path(fs.get("source") or default_source(roots, domain, fs["target"]))
        if path.exists():
            continue
        name = fs.get("name")
        if name not in TEMPLATES:
            raise PermanentError(f"{path} is missing and template {name!r} is not one the libvirt "
                                 f"driver can build ({', '.join(TEMPLATES)}); build the "
                                 "directory yourself (the spec still owns it: purge removes it)")
        tmp = path.with_name(f".{path.name}.building")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        if name == "busybox":
            _busybox_root(tmp)
        os.replace(tmp, path)
        built.append(str(path))
    return built


def _busybox_root(root: Path) -> None:
    """A root that runs: a static busybox in bin/ with every applet linked to it."""
    binary = next((p for p in _BUSYBOX_CANDIDATES if Path(p).is_file()), None)
    if binary is None:
        raise PermanentError("template busybox needs a static busybox on the host "
                             "(apt-get install busybox-static)")
    (root / "bin").mkdir()
    shutil.copy2(binary, root / "bin" / "busybox")
    listed = subprocess.run([binary, "--list"], capture_output=True, text=True, timeout=10,
                            check=False)
    applets = listed.stdout.split() if listed.returncode == 0 else ["sh"]
    for applet in applets:
        if applet != "busybox" and "/" not in applet:
            (root / "bin" / applet).symlink_to("busybox")
    for sub in ("proc", "sys", "dev", "tmp", "etc"):
        (root / sub).mkdir()


def _mount_points() -> list[str]:
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return []
    out = []
    for line in lines(text):
        fields = line.split(" ")
        if len(fields) > 4:
            out.append(unescape_octal(fields[4]))
    return out


def check_removable(path: str) -> None:
    """Refuse to erase anything that cannot be a guest's own directory."""
    norm = os.path.normpath(path)
    if not os.path.isabs(path) or norm != path.rstrip("/") or norm in _PROTECTED:
        raise PermanentError(f"refusing to purge {path!r}: not a guest's own directory")
    if len(Path(norm).parts) < 3:  # "/", "srv", "x": at least two levels below /
        raise PermanentError(f"refusing to purge {path!r}: too close to / to be a guest's own "
                             "directory")
    if os.path.islink(norm):
        raise PermanentError(f"refusing to purge {path!r}: it is a symbolic link")
    inside = [m for m in _mount_points() if m == norm or m.startswith(norm + "/")]
    if inside:
        raise PermanentError(f"refusing to purge {path!r}: {inside[0]} is mounted there "
                             "(is the guest still running?)")


def purge(paths: list[str]) -> list[str]:
    """Erase the owned directories; returns those that existed."""
    for path in paths:
        check_removable(path)
    removed = []
    for path in paths:
        if os.path.lexists(path):
            shutil.rmtree(path)
            removed.append(path)
    return removed
