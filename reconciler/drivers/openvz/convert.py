"""Native OpenVZ files -> specs, pure: a `CTID.conf` becomes a Domain (the CTID from the file
name), a `ve-NAME.conf-sample` a Profile named NAME.

The file is read by the rules of the chosen vzctl version (default legacy; `conffile`), so the
spec says what vzctl would do with the file, not what it seems to say: with legacy rules a line
without its closing quote is skipped, the first of two DISKSPACE lines wins; with OpenVZ 7's the
last wins. Every line is either converted or reported in `not_converted` with its number, key,
value and why (no model field, skipped by vzctl, a duplicate vzctl ignores, a value the model
does not accept). For `reconciler convert FILE --from openvz` the CLI prints them as
`FILE:LINE: warning: not converted: KEY`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from reconciler.drivers.base import NotConverted
from reconciler.drivers.openvz import conffile
from reconciler.drivers.openvz.conffile import Conf
from reconciler.drivers.openvz.mapping import read_spec, validated
from reconciler.drivers.openvz.native import (
    LEGACY,
    O7,
    O7_IGNORED,
    UBC_NAMES,
    Version,
    canonical_key,
)
from reconciler.errors import ConfigError, Location, SpecError
from reconciler.fsio import read_regular
from reconciler.model import Profile, canonical

# model field -> the keys it is read from (to report the lines of a field the model refused)
_FIELD_KEYS: dict[str, tuple[str, ...]] = {
    "description": ("DESCRIPTION",), "hostname": ("HOSTNAME",), "autostart": ("ONBOOT",),
    "filesystems": ("OSTEMPLATE",), "memory": ("PHYSPAGES",), "limits": UBC_NAMES,
    "quota": ("DISKSPACE", "DISKINODES", "QUOTATIME", "QUOTAUGIDLIMIT"),
    "cpu": ("CPUUNITS", "CPULIMIT", "CPUS", "CPUMASK"),
    "dns": ("NAMESERVER", "SEARCHDOMAIN"), "interfaces": ("IP_ADDRESS", "NETIF", "NETDEV"),
}
_DOMAIN_KEYS = frozenset({"NAME", *(k for keys in _FIELD_KEYS.values() for k in keys)})
_PROFILE_FIELDS = ("description", "autostart", "memory", "limits", "quota", "cpu", "dns")


@dataclass(frozen=True)
class Converted:
    kind: str  # "Domain" | "Profile"
    spec: dict[str, Any]  # canonical, with "kind"
    not_converted: tuple[NotConverted, ...]


def version_of(version: Version | str) -> Version:
    if isinstance(version, Version):
        return version
    if version in ("legacy", "4"):
        return LEGACY
    if version == "3":
        return Version("legacy", 3)
    if version == "7":
        return O7
    raise ConfigError(f"openvz version is legacy, 3 or 7, not {version!r}")


def convert_conf(text: str, ctid: int | str, version: Version | str = LEGACY,
                 file: str = "") -> Converted:
    """A CTID.conf as a Domain spec (the container's own file, without vz.conf: paths and
    defaults of the host are not part of it)."""
    ver = version_of(version)
    ctid = str(int(ctid))
    conf = conffile.read(text, ctid, ver)
    spec, dropped = validated(read_spec(conf, ctid, ver))
    mapped = set(_DOMAIN_KEYS)
    if not ver.legacy:
        mapped -= O7_IGNORED | {"QUOTATIME"}
    if "count" not in spec.get("cpu", {}):
        mapped.discard("CPUMASK")  # the model's cpuset needs cpu.count
    notes = _notes(conf, mapped, dropped, ver, file)
    return Converted("Domain", {"kind": "Domain", **spec}, notes)


def convert_sample(text: str, name: str, version: Version | str = LEGACY,
                   file: str = "") -> Converted:
    """A `ve-NAME.conf-sample` as the Profile NAME."""
    ver = version_of(version)
    conf = conffile.read(text, "0", ver)
    raw = read_spec(conf, "0", ver)
    body: dict[str, Any] = {"kind": "Profile", "name": name,
                            **{k: raw[k] for k in _PROFILE_FIELDS if k in raw}}
    cpu = body.get("cpu")
    if isinstance(cpu, dict):
        body["cpu"] = {k: v for k, v in cpu.items() if k != "cpuset"}
    dropped: set[str] = set()
    while True:
        try:
            spec = {"kind": "Profile", **canonical(Profile.model_validate(body))}
            break
        except ValidationError as exc:
            fields = {str(e["loc"][0]) for e in exc.errors() if e.get("loc")} - {"kind"}
            if "name" in fields:
                raise ConfigError(f"the sample's name {name!r} is not a valid profile name"
                                  ) from None
            if not fields or not fields & set(body):
                raise ConfigError(f"cannot convert sample {name}: {exc}") from None
            for f in fields:
                body.pop(f, None)
            dropped |= fields
    mapped = {k for f in _PROFILE_FIELDS for k in _FIELD_KEYS.get(f, ())} - {"CPUMASK"}
    if not ver.legacy:
        mapped -= O7_IGNORED | {"QUOTATIME"}
    return Converted("Profile", spec, _notes(conf, mapped, dropped, ver, file))


def convert_file(path: str | Path, version: Version | str = LEGACY
                 ) -> tuple[dict[str, Any], list[NotConverted]]:
    """`CTID.conf` or `ve-NAME.conf-sample`, told apart by the file name: the spec (with
    `kind`) and the lines it does not carry. SpecError when the file cannot be one."""
    path = str(path)
    where = Location(path, 1, 1)
    base = os.path.basename(path)
    conf = re.fullmatch(r"([0-9]+)\.conf", base)
    sample = re.fullmatch(r"ve-(.+)\.conf-sample", base)
    if not conf and not sample:
        raise SpecError("an OpenVZ file is named CTID.conf (a container) or "
                        "ve-NAME.conf-sample (a profile)", where)
    try:
        data = read_regular(path, conffile.MAX_BYTES, follow=True)  # a path the user typed
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror or exc}", where) from None
    if len(data) > conffile.MAX_BYTES:
        raise SpecError(f"file is larger than {conffile.MAX_BYTES} bytes", where)
    text = data.decode("utf-8", errors="replace")
    try:
        done = convert_conf(text, conf.group(1), version, path) if conf else \
            convert_sample(text, sample.group(1) if sample else "", version, path)
    except ConfigError as exc:
        raise SpecError(str(exc), where) from None
    return done.spec, list(done.not_converted)


def _notes(conf: Conf, mapped: set[str], dropped: set[str], version: Version, file: str
           ) -> tuple[NotConverted, ...]:
    out: dict[tuple[int, str], NotConverted] = {}
    refused = {k for f in dropped for k in _FIELD_KEYS.get(f, ())}
    for note in conf.notes:
        out[(note.number, note.key)] = NotConverted(file, note.number, note.key, note.value,
                                                    f"vzctl does not use it: {note.why}")
    for line in conf.lines:
        if line.skipped or (line.number, line.key) in out:
            continue
        key = canonical_key(line.key, version)
        if key not in mapped:
            why = "OpenVZ 7 ignores it" if key in O7_IGNORED and not version.legacy else \
                "no model field for it"
            out[(line.number, line.key)] = NotConverted(file, line.number, line.key, line.value,
                                                        why)
        elif key in refused:
            out[(line.number, line.key)] = NotConverted(file, line.number, line.key, line.value,
                                                        "the model does not accept the value")
    return tuple(sorted(out.values(), key=lambda n: n.line))
