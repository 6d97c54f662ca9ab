"""vzctl create (reference §1.1, §1.5).

Legacy: copies `ve-<CONFIG>.conf-sample` (from `--config`, else CONFIGFILE of vz.conf) to
CTID.conf, refuses `--config` when CTID.conf exists and otherwise leaves an existing CTID.conf
in place instead of applying a sample, extracts `TEMPLATE/cache/<ostemplate>.tar[.gz|.bz2|.xz]`
into VE_PRIVATE and saves VE_ROOT, VE_PRIVATE, OSTEMPLATE, ORIGIN_SAMPLE (when the sample does
not set it), VE_LAYOUT (4.x) and the keys given on the command line.

O7: the config lives in `VE_PRIVATE/ve.conf` and CTID.conf becomes a symlink to it. With
`--config` an existing CTID.conf is replaced by the sample; without it, an existing CTID.conf
is used as the starting point (as libvzctl does) and then replaced by the symlink.

The simulator builds every private area as a plain directory (simfs); `--layout ploop` is
refused with the legacy "ploop unsupported" exit 99, and O7's layout option is accepted and
ignored.
"""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

from . import values
from .config import Conf, merged, read_conf, subst_veid, write_legacy, write_o7
from .console import Exit, err, fail, out
from .ct import Ct
from .names import names_of, set_name
from .options import BadOption, Opt, getopt
from .setopts import SetRequest
from .store import legacy_updates, o7_updates

_CREATE_OPTS = [
    Opt("ostemplate"), Opt("config"), Opt("private"), Opt("root"), Opt("ipadd"),
    Opt("hostname"), Opt("name"), Opt("description"), Opt("diskspace"), Opt("diskinodes"),
]
LEGACY_CREATE_OPTS = [*_CREATE_OPTS, Opt("local_uid"), Opt("local_gid")]
LEGACY4_CREATE_OPTS = [*LEGACY_CREATE_OPTS, Opt("layout"), Opt("ve_layout", key="layout"),
                       Opt("velayout", key="layout")]
O7_CREATE_OPTS = [*_CREATE_OPTS, Opt("layout"), Opt("ve_layout", key="layout"),
                  Opt("force", False), Opt("expanded", False), Opt("preallocated", False),
                  Opt("plain", False), Opt("uuid"), Opt("id", key="uuid")]
TARBALL_EXTS = ("", ".gz", ".bz2", ".xz")


def parse_args(ct: Ct, args: list[str]) -> dict[str, Any]:
    sim = ct.sim
    table = O7_CREATE_OPTS if not sim.legacy else (
        LEGACY_CREATE_OPTS if sim.v3 else LEGACY4_CREATE_OPTS)
    try:
        found, rest = getopt("vzctl", args, table)
    except BadOption:
        raise Exit(21) from None
    ctx = ct.ctx
    opts: dict[str, Any] = {}
    for opt, value in found:
        key = opt.id
        try:
            if key == "ipadd":
                opts.setdefault("ipadd", [])
                opts["ipadd"] += values.parse_ip_list(value, sim.legacy)
            elif key == "name":
                opts[key] = values.parse("name", "NAME", value, ctx)
            elif key in ("diskspace", "diskinodes"):
                opts[key] = values.parse(key, key.upper(), value, ctx)
            elif key in ("local_uid", "local_gid"):
                opts[key] = values.parse("ulong", key.upper(), value, ctx)
            elif key == "layout":
                opts[key] = values.parse("layout", "VE_LAYOUT", value, ctx)
            elif not opt.has_arg:
                opts[key] = True
            else:
                opts.setdefault(key, value)
        except values.Invalid:
            raise fail(21, f"Bad parameter for --{opt.name}: {value}") from None
    if rest:
        err("Invalid extra arguments: " + "".join(f"{w} " for w in rest))
        raise Exit(20)
    return opts


def _find_tarball(template: str, ostemplate: str) -> Path | None:
    for ext in TARBALL_EXTS:
        path = Path(template) / "cache" / f"{ostemplate}.tar{ext}"
        if path.is_file():
            return path
    return None


def _extract(tarball: Path, private: str) -> None:
    """Unpack into `<private>.tmp`, then rename it into place, as vzctl does."""
    target = Path(private)
    tmp = Path(private + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    with tarfile.open(tarball, "r:*") as tar:
        try:
            tar.extractall(tmp, filter="data")
        except TypeError:  # pragma: no cover - Python without extraction filters
            tar.extractall(tmp)
    if target.is_dir():
        target.rmdir()  # an empty private dir may exist already
    os.replace(tmp, target)


def create(ct: Ct, opts: dict[str, Any]) -> int:
    return _create_legacy(ct, opts) if ct.sim.legacy else _create_o7(ct, opts)


def _create_legacy(ct: Ct, opts: dict[str, Any]) -> int:
    sim, conf_path = ct.sim, ct.conf_path
    cfg_exists = conf_path.is_file()
    sample: str | None = None
    copied = False
    named = False
    try:
        if "config" in opts:
            src = sim.sample_path(opts["config"])
            if not src.is_file():
                raise fail(82, f"Sample config {src} not found: No such file or directory")
            if cfg_exists:
                raise fail(82, f"Error: container config file {conf_path} already exists, "
                               "can not use --config option")
            sample = opts["config"]
        elif ct.gconf.get("CONFIGFILE"):
            src = sim.sample_path(ct.gconf.get("CONFIGFILE"))
            if not src.is_file():
                raise fail(82, f"Sample config {src} not found: No such file or directory",
                           f"Fix the value of CONFIGFILE in {sim.vz_conf}")
            if cfg_exists:
                out("Warning: CT config file already exists, not applying a default config "
                    "sample.")
                out("It might lead to incomplete CT configuration, you can use --applyconfig "
                    "to fix.")
            else:
                sample = ct.gconf.get("CONFIGFILE")
        base = ct.conf
        if sample is not None:
            src = sim.sample_path(sample)
            conf_path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, conf_path)
            copied = True
            base = read_conf(src, ct.ctx, verbose=ct.verbose)
            ct.reload()
        cmd = _cmd_values(opts)
        eff = merged(merged(ct.gconf, base), Conf(values=cmd)).values
        if not eff.get("TEMPLATE"):
            raise fail(24, "TEMPLATE is not set")
        if not eff.get("VE_PRIVATE"):
            raise fail(23, "VE_PRIVATE is not set")
        if not eff.get("VE_ROOT"):
            raise fail(22, "VE_ROOT is not set")
        private = subst_veid(eff["VE_PRIVATE"], ct.ctid, True) or ""
        if os.path.isdir(private) and os.listdir(private):
            raise fail(44, f"Private area already exists in {private}")
        layout = None if sim.v3 else opts.get("layout") or eff.get("VE_LAYOUT") or "ploop"
        if layout and layout.startswith("ploop"):
            raise fail(99, "Error: ploop is not supported by this host",
                       "Alternatively, if you can't or don't want to use ploop, please",
                       f"add --layout simfs option, or set VE_LAYOUT=simfs in {sim.vz_conf}")
        if "name" in opts:
            set_name(ct, opts["name"])
            named = True
        ostemplate = opts.get("ostemplate") or eff.get("OSTEMPLATE") or eff.get("DEF_OSTEMPLATE")
        if not ostemplate:
            raise fail(29, "OS template is not specified")
        tarball = _find_tarball(eff["TEMPLATE"], ostemplate)
        if tarball is None:
            raise fail(91, f"Cached OS template {eff['TEMPLATE']}/cache/{ostemplate}"
                           ".tar[.gz|.bz2|.xz] not found")
        out(f"Creating container private area ({ostemplate})")
        _extract(tarball, private)
        out("Performing postcreate actions")
        root = subst_veid(eff["VE_ROOT"], ct.ctid, True)
        if root:
            Path(root).mkdir(parents=True, exist_ok=True)
        for leftover in conf_path.parent.glob(f"{ct.ctid}.*.destroyed"):
            leftover.unlink()
        req = _request(opts, cmd)
        req.values.setdefault("VE_ROOT", eff["VE_ROOT"])
        req.values.setdefault("VE_PRIVATE", eff["VE_PRIVATE"])
        req.values["OSTEMPLATE"] = os.path.basename(ostemplate)
        if sample is not None and "ORIGIN_SAMPLE" not in base.values:
            req.values["ORIGIN_SAMPLE"] = sample
        if layout:
            req.values["VE_LAYOUT"] = layout
        write_legacy(conf_path, legacy_updates(ct, req, merged(ct.gconf, base)))
        out("Container private area was created")
        return 0
    except Exit:
        if named:
            for link in names_of(sim, ct.ctid):
                link.unlink()
        if copied:
            conf_path.unlink(missing_ok=True)
        err("Creation of container private area failed")
        raise


def _cmd_values(opts: dict[str, Any]) -> dict[str, Any]:
    mapping = {"private": "VE_PRIVATE", "root": "VE_ROOT", "hostname": "HOSTNAME",
               "description": "DESCRIPTION", "diskspace": "DISKSPACE",
               "diskinodes": "DISKINODES", "name": "NAME", "local_uid": "LOCAL_UID",
               "local_gid": "LOCAL_GID"}
    return {key: opts[opt] for opt, key in mapping.items() if opt in opts}


def _request(opts: dict[str, Any], cmd: dict[str, Any]) -> SetRequest:
    req = SetRequest(values=dict(cmd), save=True)
    req.ip_add = list(opts.get("ipadd", []))
    return req


def _create_o7(ct: Ct, opts: dict[str, Any]) -> int:
    sim, conf_path = ct.sim, ct.conf_path
    private_now = ct.private()
    if conf_path.exists() and private_now and os.path.exists(private_now):
        raise fail(44, f"Container {ct.ctid} already exists")
    origin: str | None = None
    if "config" in opts:
        src: Path | None = sim.sample_path(opts["config"])
        if src is None or not src.is_file():
            raise fail(82, f"Sample config file {src} not found")
        origin = opts["config"]
    elif conf_path.is_file():
        src = conf_path
    else:
        src = sim.sample_path(ct.gconf.get("CONFIGFILE") or "")
        if ct.gconf.get("CONFIGFILE") and src.is_file():
            origin = ct.gconf.get("CONFIGFILE")
        else:
            src = None
    base = read_conf(src, ct.ctx) if src is not None else Conf()
    cmd = _cmd_values(opts)
    eff = merged(merged(ct.gconf, base), Conf(values=cmd)).values
    if not eff.get("VE_PRIVATE"):
        raise fail(21, "VE_PRIVATE is not specified")
    private = subst_veid(eff["VE_PRIVATE"], ct.ctid, False) or ""
    if os.path.exists(private):
        raise fail(44, f"Private area {private} already exists")
    if not eff.get("VE_ROOT"):
        raise fail(22, "VE_ROOT is not set")
    ostemplate = opts.get("ostemplate") or eff.get("OSTEMPLATE") or eff.get("DEF_OSTEMPLATE")
    if not ostemplate:
        raise fail(211, "The ostemplate is not specified")
    try:
        if "name" in opts:
            set_name(ct, opts["name"])
        tarball = _find_tarball(eff.get("TEMPLATE") or "", ostemplate)
        if tarball is None:
            raise fail(91, f"Error: Unable to find ostemplate: {ostemplate}")
        out(f"Creating Container private area ({ostemplate})")
        _extract(tarball, private)
        ve_conf = Path(private) / "ve.conf"
        if src is not None:
            shutil.copyfile(src, ve_conf)
        req = _request(opts, cmd)
        req.values.setdefault("VE_ROOT", eff["VE_ROOT"])
        req.values.setdefault("VE_PRIVATE", eff["VE_PRIVATE"])
        req.values["OSTEMPLATE"] = ostemplate
        if origin is not None:
            req.values["ORIGIN_SAMPLE"] = origin
        write_o7(ve_conf, o7_updates(ct, req, base))
        root = subst_veid(eff["VE_ROOT"], ct.ctid, False)
        if root:
            Path(root).mkdir(parents=True, exist_ok=True)
        conf_path.parent.mkdir(parents=True, exist_ok=True)
        if conf_path.exists() or conf_path.is_symlink():
            conf_path.unlink()
        conf_path.symlink_to(ve_conf)
    except Exit:
        for link in names_of(sim, ct.ctid):
            link.unlink()
        err("Creation of Container private area failed")
        raise
    out(f"Container private area {private} created")
    return 0
