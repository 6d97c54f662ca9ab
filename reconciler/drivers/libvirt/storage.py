"""Storage a domain owns: what `provision` built for it, and nothing else, is what `purge`
erases.

A spec asks for storage to be built with a filesystem of `type: template`. Its `source` is the
host directory the root is built in (default: `<state_dir>/libvirt/roots/<domain>` for `/`,
`<domain>.<target>` for other targets). `provision` builds it when it is missing and records
it in the driver's ledger with the identity (device, inode) the directory had when built. An
existing directory the ledger does not hold is never taken over: provision refuses it, so a
spec cannot name `/srv/x` or `/root/.ssh` and have it erased later. `purge` erases exactly the
recorded directories that are still the ones built (same identity, not a symlink, not a
mount point, not a system directory) and nothing else. Every other filesystem (`mount`,
`bind`, `block`, `file`, `ram`) belongs to the user: undefine and purge leave it alone.

Identity is the directory's device and inode plus a random token written at build time into a
marker file inside it (`.reconciler-built`): an inode number can be reused by a directory made
later in the same place, a token cannot. A guest that deletes the marker from its own root only
keeps its data from being purged.

libvirt's LXC and QEMU drivers cannot build from templates, so the driver does (templates:
`busybox`, a static busybox with its applets linked, and `empty`, a bare directory) and
defines the result as a `mount`. OpenVZ builds from its own templates; nothing is built here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import stat
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.drivers.text import lines, unescape_octal
from reconciler.errors import PermanentError
from reconciler.fsio import private_dir, read_regular, write_atomic
from reconciler.rules.libvirt import BUILT_TEMPLATES

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
    """The directories `spec` asks to be built for it, in spec order."""
    out = []
    for fs in (spec or {}).get("filesystems", ()):
        if fs.get("type") == "template":
            out.append(fs.get("source") or default_source(roots, domain, fs["target"]))
    return out


MARKER = ".reconciler-built"


@dataclass(frozen=True)
class Built:
    path: str
    dev: int
    ino: int
    token: str

    def holds(self) -> bool:
        """Is the directory at `path` still the one that was built (same device and inode,
        not a symlink put in its place, our token in its marker)?"""
        try:
            st = os.lstat(self.path)
            if (st.st_dev, st.st_ino) != (self.dev, self.ino) or not stat.S_ISDIR(st.st_mode):
                return False
            marker = read_regular(os.path.join(self.path, MARKER), 64)
        except OSError:
            return False
        return hmac.compare_digest(marker.decode(errors="replace").strip(), self.token)


class Ledger:
    """What the driver built, per domain of one libvirt URI, in the state directory (one
    JSON file per domain, 0600). Kept in memory too: only this driver writes it."""

    def __init__(self, state_dir: str | Path, uri: str) -> None:
        key = hashlib.sha256(uri.encode()).hexdigest()[:12]
        self.base = Path(state_dir) / "libvirt" / "built" / key
        self._cache: dict[str, list[Built]] = {}
        self._lock = threading.Lock()

    def _file(self, domain: str) -> Path:
        return self.base / f"{domain}.json"

    def built(self, domain: str) -> list[Built]:
        with self._lock:
            found = self._cache.get(domain)
            if found is None:
                found = self._cache[domain] = self._load(domain)
            return list(found)

    def _load(self, domain: str) -> list[Built]:
        try:
            data = json.loads(read_regular(self._file(domain), 1 << 20))
            return [Built(str(e["path"]), int(e["dev"]), int(e["ino"]), str(e["token"]))
                    for e in data["built"]]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise PermanentError(f"the storage ledger {self._file(domain)} is unreadable "
                                 f"({exc}); nothing is erased until it is fixed") from None

    def _save(self, domain: str, entries: list[Built]) -> None:
        self._cache[domain] = entries
        if not entries:
            self._file(domain).unlink(missing_ok=True)
            return
        private_dir(self.base)
        body = {"domain": domain, "built": [{"path": e.path, "dev": e.dev, "ino": e.ino,
                                             "token": e.token} for e in entries]}
        write_atomic(self._file(domain), json.dumps(body, indent=1) + "\n")

    def record(self, domain: str, path: Path, token: str) -> None:
        st = os.lstat(path)
        entries = [e for e in self.built(domain) if e.path != str(path)]
        with self._lock:
            self._save(domain, [*entries, Built(str(path), st.st_dev, st.st_ino, token)])

    def forget(self, domain: str, paths: set[str] | None = None) -> None:
        kept = [] if paths is None else [e for e in self.built(domain) if e.path not in paths]
        with self._lock:
            self._save(domain, kept)

    def holds(self, domain: str, path: str) -> bool:
        return any(e.path == path and e.holds() for e in self.built(domain))

    def erasable(self, domain: str) -> list[str]:
        """The built directories a purge of `domain` erases: those still the ones built."""
        return [e.path for e in self.built(domain) if e.holds()]


def provision(spec: dict[str, Any], roots: Path, domain: str, ledger: Ledger) -> list[str]:
    """Build every directory the spec asks for that is missing; returns the ones built. One
    that exists must be one the ledger holds for this domain (built earlier, kept by an
    undefine); any other existing path is refused, never taken over."""
    built = []
    for fs in spec.get("filesystems", ()):
        if fs.get("type") != "template":
            continue
        path = Path(fs.get("source") or default_source(roots, domain, fs["target"]))
        if os.path.lexists(path):
            if ledger.holds(domain, str(path)):
                continue
            raise PermanentError(f"{path} already exists and was not built by reconciler for "
                                 f"{domain}; an existing directory is never taken over (move "
                                 "it away, or mount it with type: mount)")
        name = fs.get("name")
        if name not in BUILT_TEMPLATES:
            raise PermanentError(f"{path} is missing and template {name!r} is not one the libvirt "
                                 f"driver can build ({', '.join(sorted(BUILT_TEMPLATES))})")
        tmp = path.with_name(f".{path.name}.building")
        if os.path.lexists(tmp):  # left by a crash; erased only if we made it
            if not ledger.holds(domain, str(tmp)):
                raise PermanentError(f"{tmp} exists and was not made by reconciler; move it "
                                     "away")
            purge([str(tmp)])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
        token = secrets.token_hex(16)
        write_atomic(tmp / MARKER, token + "\n")
        ledger.record(domain, tmp, token)
        if name == "busybox":
            _busybox_root(tmp)
        os.replace(tmp, path)
        ledger.record(domain, path, token)
        ledger.forget(domain, {str(tmp)})
        built.append(str(path))
    return built


def purge_built(domain: str, ledger: Ledger) -> list[str]:
    """Erase what was built for `domain` and is still what was built; forget the rest (a
    directory replaced since is not ours any more). Returns the directories erased."""
    erased = purge(ledger.erasable(domain))
    ledger.forget(domain)
    return erased


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
    """Erase these directories, after checking every one of them could be a guest's own;
    returns those that existed."""
    for path in paths:
        check_removable(path)
    removed = []
    for path in paths:
        if os.path.lexists(path):
            shutil.rmtree(path)
            removed.append(path)
    return removed
