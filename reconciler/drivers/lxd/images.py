"""Pure: which image a template root names, kept local unless the spec names a remote.

`{type: template, name: busybox, target: /}` is the alias `busybox` on the LXD server (or a
fingerprint, or a unique prefix of one); `release` adds the alias's next part
(`name: debian, release: "12"` is `debian/12`). `name: REMOTE:ALIAS` fetches from an image
server, but only a remote the agent config lists under the driver's `image_remotes` (a spec
names a remote, never a URL). Nothing is fetched otherwise: an image the server does not
have is refused at plan time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.errors import ConfigError

FINGERPRINT = re.compile(r"[0-9a-f]{12,64}\Z")
PROTOCOLS = frozenset({"simplestreams", "lxd"})


@dataclass(frozen=True)
class ImageRemote:
    """An image server a spec may name (`image_remotes: {NAME: {server:, protocol:}}`)."""

    server: str
    protocol: str = "simplestreams"

    @classmethod
    def parse(cls, name: str, raw: Any) -> ImageRemote:
        if not isinstance(raw, dict) or not isinstance(raw.get("server"), str) or \
                not raw["server"].startswith("https://"):
            raise ConfigError(f"lxd: image_remotes.{name}: give server: https://... and "
                              "optionally protocol: simplestreams|lxd")
        protocol = str(raw.get("protocol", "simplestreams"))
        if protocol not in PROTOCOLS:
            raise ConfigError(f"lxd: image_remotes.{name}.protocol: {protocol!r}; valid: "
                              f"{', '.join(sorted(PROTOCOLS))}")
        return cls(raw["server"], protocol)


@dataclass(frozen=True)
class Images:
    """What the server holds: aliases (name -> fingerprint) and fingerprints."""

    aliases: Mapping[str, str]
    fingerprints: frozenset[str]

    @classmethod
    def from_listing(cls, images: Iterable[dict[str, Any]]) -> Images:
        aliases: dict[str, str] = {}
        prints = set()
        for image in images:
            fingerprint = str(image.get("fingerprint", ""))
            prints.add(fingerprint)
            for alias in image.get("aliases") or ():
                if isinstance(alias, dict) and alias.get("name"):
                    aliases[str(alias["name"])] = fingerprint
        return cls(aliases, frozenset(prints))

    def resolve(self, name: str) -> str | None:
        """The fingerprint an alias or (a prefix of a) fingerprint names here."""
        if name in self.aliases:
            return self.aliases[name]
        if FINGERPRINT.match(name):
            found = [f for f in self.fingerprints if f.startswith(name)]
            if len(found) == 1:
                return found[0]
        return None

    def name_of(self, fingerprint: str) -> str:
        """How an import names an instance's image: an alias of it (the first by name),
        else its fingerprint."""
        names = sorted(a for a, f in self.aliases.items() if f == fingerprint)
        return names[0] if names else fingerprint


def image_name(root: Mapping[str, Any]) -> str:
    name = str(root.get("name", ""))
    release = root.get("release")
    return f"{name}/{release}" if release else name


def source(root: Mapping[str, Any], remotes: Mapping[str, ImageRemote]) -> dict[str, Any]:
    """The `source` of an instance create for a template root."""
    name = image_name(root)
    remote, sep, alias = name.partition(":")
    if sep:
        found = remotes[remote]
        return {"type": "image", "mode": "pull", "server": found.server,
                "protocol": found.protocol, "alias": alias}
    if FINGERPRINT.match(name):
        return {"type": "image", "fingerprint": name}
    return {"type": "image", "alias": name}


def refusal(root: Mapping[str, Any], images: Images | None,
            remotes: Mapping[str, ImageRemote]) -> str | None:
    """Why an instance cannot be made from `root` here (None: it can, or we cannot tell)."""
    name = image_name(root)
    remote, sep, _ = name.partition(":")
    if sep:
        if remote not in remotes:
            listed = ", ".join(sorted(remotes)) or "none"
            return (f"image remote {remote!r} is not one the agent config lists under "
                    f"drivers.lxd.image_remotes ({listed}); the driver fetches images only "
                    "from those")
        return None
    if images is not None and images.resolve(name) is None:
        return (f"the LXD server has no image {name!r} (an alias or fingerprint); import it "
                "(lxc image import) or name a listed remote (REMOTE:ALIAS)")
    return None
