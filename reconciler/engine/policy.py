"""The host policy: what a spec may give a guest of the host, deny by default.

A spec is written by whoever can merge into the spec directory; the host's administrator
decides, in the agent config, what of the host such a spec may reach:

    policy:
      mount_roots: [/srv/shared]  # host directories a spec may name paths inside: bind-mount
                                  # sources, image files, where a template root is built
      host_root: false            # a host directory or device as a guest's root (and, for
                                  # libvirt LXC, no root at all: the guest then sees the host's)
      privileged: false           # an LXC container without an id map (root in it is root
                                  # on the host)
      host_nics: false            # a host NIC moved into a guest, a network handing out host NICs,
                                  # a guest in the host's network namespace (a `none` NIC)
      host_devices: false         # host block devices, and kept libvirt XML that hands a guest
                                  # host resources (disks, host devices, host files or sockets,
                                  # emulators, kernels, scripts, hypervisor pass-through)

Some directories are never reached through a broader root: `/` itself, `/etc`, `/root`,
`/proc`, `/sys`, `/dev`, `/boot`, `/run` and the state directory. `mount_roots: [/]` does not
allow `/etc/ssh`; `mount_roots: [/etc/ssl]` allows `/etc/ssl/certs`, because the administrator
named a directory inside `/etc` on purpose.

An object the policy refuses is shown refused in the plan, each refusal naming the policy key
that would allow it; nothing of it is applied.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from reconciler.errors import ConfigError
from reconciler.model.fields import root_of
from reconciler.rules import Refusal

SENSITIVE = ("/etc", "/root", "/proc", "/sys", "/dev", "/boot", "/run", "/var/run")
KEYS = ("mount_roots", "host_root", "privileged", "host_nics", "host_devices")

# kept libvirt device elements that hand a guest nothing of the host (graphics, consoles on a
# pty, controllers ...); any other kept device (disk, hostdev, emulator, filesystem, interface,
# redirdev, smartcard, tpm, shmem, memory ...) needs host_devices
_SAFE_DEVICES = frozenset({"controller", "graphics", "video", "sound", "audio", "memballoon",
                           "watchdog", "panic", "iommu", "vsock", "input", "console", "serial",
                           "channel", "parallel", "rng"})
_SAFE_CHAR_TYPES = frozenset({"pty", "vc", "null", "spicevmc", "qemu-vdagent"})
_SAFE_RNG = frozenset({"/dev/random", "/dev/urandom"})
# kept `<os>` children naming host files the hypervisor reads or writes
_HOST_OS_FILES = frozenset({"kernel", "initrd", "loader", "nvram", "dtb", "acpi"})
# kept children of a NIC that run a host program
_HOST_NIC_PARTS = frozenset({"script", "downscript", "backenddomain"})
_PASSTHROUGH_FORWARD = frozenset({"hostdev", "passthrough"})


@dataclass(frozen=True)
class Policy:
    mount_roots: tuple[str, ...] = ()
    host_root: bool = False
    privileged: bool = False
    host_nics: bool = False
    host_devices: bool = False
    state_dir: str = ""  # never reachable by a spec, whatever the roots say

    @classmethod
    def from_config(cls, raw: Any, state_dir: str) -> Policy:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError("policy: must be a mapping of " + ", ".join(KEYS))
        unknown = set(raw) - set(KEYS)
        if unknown:
            raise ConfigError(f"policy: unknown keys {sorted(unknown)}; valid: {', '.join(KEYS)}")
        roots = raw.get("mount_roots") or []
        if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
            raise ConfigError("policy.mount_roots must be a list of absolute directories")
        for root in roots:
            if not root.startswith("/") or ".." in root.split("/"):
                raise ConfigError(f"policy.mount_roots: {root!r} is not an absolute directory")
        flags = {}
        for key in KEYS[1:]:
            value = raw.get(key, False)
            if not isinstance(value, bool):
                raise ConfigError(f"policy.{key} must be true or false, not {value!r}")
            flags[key] = value
        return cls(mount_roots=tuple(os.path.normpath(r) for r in roots),
                   state_dir=os.path.abspath(state_dir), **flags)

    # ------------------------------------------------------------------ paths
    def path_refusal(self, path: str) -> str | None:
        """Why a spec may not name host path `path` (None: it may)."""
        norm = os.path.normpath(path)
        covering = [r for r in self.mount_roots if _inside(norm, r)]
        if not covering:
            return (f"{path} is not inside a directory the host policy lets specs name "
                    f"({', '.join(self.mount_roots) or 'none yet'})")
        guarded = [s for s in (*SENSITIVE, self.state_dir) if s and _inside(norm, s)]
        if norm == "/":
            guarded.append("/")
        for sensitive in guarded:
            if not any(_inside(r, sensitive) for r in covering):
                return (f"{path} is inside {sensitive}, which a broader root never opens; name "
                        f"{sensitive} or a directory inside it in mount_roots to allow it")
        return None

    # ------------------------------------------------------------------ objects
    def refusals(self, kind: str, dtype: str, spec: dict[str, Any]) -> list[Refusal]:
        if kind == "Network":
            forward = (spec.get("forward") or {}).get("mode")
            if forward in _PASSTHROUGH_FORWARD and not self.host_nics:
                return [_refuse("forward.mode", f"a {forward} network hands host NICs to "
                                "guests", "host_nics")]
            return []
        out: list[Refusal] = []
        out += self._filesystems(dtype, spec)
        if dtype == "lxc" and not spec.get("idmap") and not self.privileged:
            out.append(_refuse("idmap", "a container without an id map is privileged: root in "
                               "it is root on the host; map its ids (idmap) or allow it",
                               "privileged"))
        for index, nic in enumerate(spec.get("interfaces", ())):
            if nic.get("type") == "hostdev" and not self.host_nics:
                out.append(_refuse(f"interfaces.{index}", f"moves the host NIC "
                                   f"{nic.get('source')} into the guest", "host_nics"))
            elif nic.get("type") == "none" and not self.host_nics:
                out.append(_refuse(f"interfaces.{index}", "gives the guest the host's network "
                                   "namespace, every host NIC in it", "host_nics"))
            for piece in nic.get("xml", ()):
                if _tag(piece) in _HOST_NIC_PARTS and not self.host_devices:
                    out.append(_refuse(f"interfaces.{index}.xml", f"<{_tag(piece)}> runs a "
                                       "host program", "host_devices"))
        if not self.host_devices:
            out += _kept_xml(spec)
        return out

    def _filesystems(self, dtype: str, spec: dict[str, Any]) -> list[Refusal]:
        out = []
        filesystems = spec.get("filesystems", ())
        if dtype == "lxc" and root_of(filesystems) is None and not self.host_root:
            out.append(_refuse("filesystems", "a container without a root filesystem runs on "
                               "the host's own root", "host_root"))
        for index, fs in enumerate(filesystems):
            kind, source = fs.get("type", "mount"), fs.get("source")
            where = f"filesystems.{index}"
            if fs.get("target") == "/" and kind in ("mount", "bind", "block", "file") and \
                    not self.host_root:
                out.append(_refuse(where, f"the guest's root would be the host's {source}",
                                   "host_root"))
            if kind == "block" and not self.host_devices:
                out.append(_refuse(f"{where}.source", f"hands the host device {source} to the "
                                   "guest", "host_devices"))
            elif kind in ("mount", "bind", "file", "template") and source:
                why = self.path_refusal(str(source))
                if why:
                    out.append(_refuse(f"{where}.source", why, "mount_roots"))
        return out


def _inside(path: str, root: str) -> bool:
    return path == root or root == "/" or path.startswith(root.rstrip("/") + "/")


def _refuse(field: str, reason: str, key: str) -> Refusal:
    return Refusal(field, reason, cause="policy", allow=f"policy.{key}")


def _tag(piece: str) -> str:
    el = _parsed(piece)
    return _name(el)[1] if el is not None else ""


def _name(el: Any) -> tuple[str, str]:
    """(namespace, local name) of an element's `{ns}local` tag."""
    tag = str(el.tag)
    if tag.startswith("{"):
        namespace, local = tag[1:].split("}", 1)
        return namespace, local
    return "", tag


def _kept_xml(spec: dict[str, Any]) -> list[Refusal]:
    """Kept libvirt XML that hands a guest host resources."""
    out = []
    for index, piece in enumerate(spec.get("devices_xml", ())):
        why = _device_reaches_host(piece)
        if why:
            out.append(_refuse(f"devices_xml.{index}", why, "host_devices"))
    for index, piece in enumerate(spec.get("xml", ())):
        el = _parsed(piece)
        if el is not None and _name(el)[0]:
            out.append(_refuse(f"xml.{index}", f"<{_name(el)[1]}> passes "
                               "settings straight to the hypervisor", "host_devices"))
    for index, piece in enumerate((spec.get("os") or {}).get("xml", ())):
        if _tag(piece) in _HOST_OS_FILES:
            out.append(_refuse(f"os.xml.{index}", f"<{_tag(piece)}> names a host file",
                               "host_devices"))
    return out


def _parsed(piece: str) -> Any:
    """The element of a kept XML piece, None if it cannot be read. (lxml loads here: most
    specs keep no XML, and commands that read no spec never need it.)"""
    from lxml import etree

    from reconciler.specs.xmlsafe import element_from_text

    try:
        return element_from_text(piece)
    except (etree.XMLSyntaxError, ValueError):
        return None


def _device_reaches_host(piece: str) -> str | None:
    el = _parsed(piece)
    if el is None:
        return "kept XML that cannot be read"
    tag = _name(el)[1]
    if tag not in _SAFE_DEVICES:
        return f"<{tag}> hands the guest a host resource"
    if tag in ("console", "serial", "channel", "parallel") and \
            el.get("type", "pty") not in _SAFE_CHAR_TYPES:
        return f"<{tag} type='{el.get('type')}'> connects the guest to a host file or socket"
    if tag == "input" and el.get("type") in ("passthrough", "evdev"):
        return f"<input type='{el.get('type')}'> passes a host input device through"
    if tag == "rng":
        backend = el.find("backend")
        if backend is not None and backend.get("model") == "random" and \
                (backend.text or "").strip() not in _SAFE_RNG:
            return "<rng> reads a host device other than /dev/random or /dev/urandom"
    return None
