"""`openvz`: OpenVZ containers through vzctl/vzlist and `CTID.conf`, legacy 3.x/4.x and
OpenVZ 7. Its tests run against simulators of the tools (tests/sims/openvz): an OpenVZ kernel
cannot run on our machines.

    observe    one `vzlist -a -j -o ctid,status` (`-H -t -o` on vzctl 3.x, which has no JSON),
               started while the spec files load, plus each `<conf_dir>/<number>.conf` (not
               0.conf, `*.destroyed` or anything else) read by the version's rules over vz.conf,
               and our sidecar `<conf_dir>/<CTID>.reconciler.json` (stamp and last-applied
               spec), which vzctl and vzlist never look at
    provision  `vzctl create CTID [--ostemplate T] [--config SAMPLE] [--name NAME]`, after a
               claim sidecar is written (so a crash leaves a container we own, and the CTID is
               taken before the tool runs)
    define     `vzctl set CTID ... --save` with every mapped setting that differs from the
    update     file (mapping.set_args), one more call per modified veth; `--setmode restart`
               only when the CT runs and a restart-class setting changes (the plan stops the
               CT first for those, so this is the rare drift case); then the file is read back
               and every managed value checked (legacy rewrites only the first unindented
               `KEY=` line, so a hand-edited file can keep a value vzctl "saved")
    start/stop `vzctl start` (32, already running, is success) / `vzctl stop` (0 for a stopped
               CT in both versions); a stop that outlasts `stop_timeout` is `stop --fast`
    undefine   the config is set aside as `CTID.conf.undefined` (vzlist lists only
               `<number>.conf`; vzctl answers 14 for it), private area and sidecar kept; its
               CTID is never allocated again while any of them exists, and a spec of the same
               name and template takes it back
    purge      `vzctl destroy` (only ever planned for an object that opted in): the private area
               is erased, vzctl keeps `CTID.conf.destroyed`; our sidecar goes too

Identity: the spec's `name` is NAME (a container without NAME is named by its CTID); `id` is the
CTID: given by the spec, or the name when it is a number, or allocated from 101, skipping every
CTID with a config, a set-aside config, a sidecar, a private area or a running container. The
allocated CTID is recorded by the container itself (file name, sidecar record); the stamp keeps
the spec as applied, so a spec without `id` never shows `id` as a change.

Options (agent config `drivers: {openvz: {...}}`): `vzctl`, `vzlist` (paths; default: found on
PATH), `conf_dir` (default /etc/vz/conf; /etc/sysconfig/vz-scripts for old RH layouts),
`vz_conf` (default /etc/vz/vz.conf), `version` (`auto`, default: from `vzctl --version`;
`legacy` = 4.x, `3` = vzctl 3.x without vzlist JSON, `7` = OpenVZ 7), `stop_timeout` (seconds a
clean stop may take before `stop --fast`, default 150: vzctl's own 120 s plus margin),
`tool_timeout` (any other vzctl/vzlist call, default 120; create gets at least 600).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from reconciler.drivers.base import (
    OWNER,
    Capabilities,
    Driver,
    Handler,
    ImportResult,
    LiveObject,
    NameLocks,
    Stamp,
    Step,
    StepKind,
)
from reconciler.drivers.observed import importable
from reconciler.drivers.openvz import conffile
from reconciler.drivers.openvz.conffile import Conf
from reconciler.drivers.openvz.convert import convert_conf
from reconciler.drivers.openvz.mapping import read_spec, set_args, spec_name, validated
from reconciler.drivers.openvz.native import O7, Version, subst_veid
from reconciler.drivers.openvz.tools import (
    ALREADY_RUNNING,
    NOT_RUNNING,
    RUNNING,
    TRANSIENT_CODES,
    Tools,
    error_for,
    parse_status_line,
    parse_uptime,
    template_names,
)
from reconciler.drivers.process import Running
from reconciler.errors import ConfigError, PermanentError, TransientError
from reconciler.fsio import read_regular, write_atomic
from reconciler.model.fields import POLICY_FIELDS, Ref, flatten, root_of
from reconciler.rules import Refusal, Technology
from reconciler.rules.openvz import FIRST_ID, MAX_ID, OPENVZ, OPENVZ7

SIDECAR = ".reconciler.json"  # <CTID>.reconciler.json
UNDEFINED = ".conf.undefined"  # <CTID>.conf.undefined
_CONF = re.compile(r"([0-9]+)\.conf\Z")
_SIDECAR = re.compile(r"([0-9]+)\.reconciler\.json\Z")
_UNDEF = re.compile(r"([0-9]+)\.conf\.undefined\Z")
OPTIONS = ("vzctl", "vzlist", "conf_dir", "vz_conf", "version", "stop_timeout",
           "tool_timeout")
_VERSIONS: dict[tuple[str, int], Version] = {}  # vzctl (path, mtime) -> version, per process
_VERSIONS_LOCK = threading.Lock()
# `vzctl set` options that need a restart of a running container (§1.7), with their value
RESTART_OPTIONS = frozenset({"--quotaugidlimit"})
# OpenVZ 7 `vzctl set --save` on a running CT when a restart-class setting changes: saved,
# nothing applied (32), or the quota error of turning second-level quota on live (67)
O7_NOT_APPLIED = frozenset({ALREADY_RUNNING, 67})
BOOT_SLACK = 3.0  # seconds: uptime is read to the second, a moment after the clock
# fields compared after a write: everything a set can change (policy fields live in the stamp)
_NOT_NATIVE = frozenset({"name", "type", "uuid", "state"}) | POLICY_FIELDS


@dataclass(frozen=True)
class Found:
    """A container of this host by CTID: whether its config is in place (not set aside or only
    claimed), and our sidecar."""

    ctid: str
    defined: bool
    sidecar: dict[str, Any] | None

    @property
    def stamp(self) -> Stamp | None:
        return Stamp.from_json(self.sidecar)

    @property
    def owned(self) -> bool:
        stamp = self.stamp
        return stamp is not None and stamp.owner == OWNER


class OpenvzDriver(Driver):
    name = "openvz"
    types = frozenset({"openvz"})
    capabilities = Capabilities(imports=True, prepares_observe=True)

    def __init__(self, state_dir: str | Path, vzctl: str = "vzctl", vzlist: str = "vzlist",
                 conf_dir: str = "/etc/vz/conf", vz_conf: str = "/etc/vz/vz.conf",
                 version: str = "auto", stop_timeout: float = 150.0,
                 tool_timeout: float = 120.0, **unknown: Any) -> None:
        if unknown:
            raise ConfigError(f"openvz: unknown driver options {sorted(unknown)}; valid: "
                              f"{', '.join(OPTIONS)}")
        for option, value in (("vzctl", vzctl), ("vzlist", vzlist)):
            if not isinstance(value, str) or not value or (
                    "/" in value and not value.startswith("/")):
                raise ConfigError(f"openvz: {option} is a program name or an absolute path, "
                                  f"not {value!r}")
        for option, value in (("conf_dir", conf_dir), ("vz_conf", vz_conf)):
            if not isinstance(value, str) or not value.startswith("/"):
                raise ConfigError(f"openvz: {option} must be an absolute path, not {value!r}")
        try:
            self.stop_timeout = float(stop_timeout)
            timeout = float(tool_timeout)
        except (TypeError, ValueError):
            raise ConfigError("openvz: stop_timeout and tool_timeout are seconds") from None
        if str(version) not in ("auto", "legacy", "3", "4", "7"):
            raise ConfigError(f"openvz: version is auto, legacy (4.x), 3 or 7, not {version!r}")
        self.state_dir = Path(state_dir)
        self.conf_dir = Path(conf_dir)
        self.vz_conf = Path(vz_conf)
        self.tools = Tools(vzctl, vzlist, timeout)
        self._version_option = str(version)
        self._listing: Running | None = None
        self._name_locks = NameLocks()
        self._guard = threading.Lock()
        self._alloc = threading.Lock()
        self._cache: dict[str, tuple[tuple[Any, ...], LiveObject]] = {}
        self._gconf: tuple[tuple[Any, ...], Conf] | None = None
        self._taken: dict[int, str] = {}  # CTID -> name, from the last observe (check())
        self._names: dict[str, str] = {}  # name -> CTID, a hint for finding a step's CT
        self._running_objs: dict[str, tuple[LiveObject, LiveObject]] = {}
        self.unreadable: dict[str, str] = {}  # CTID -> why its config was not read

    # ================================================================= version
    @cached_property
    def version(self) -> Version:
        option = self._version_option
        if option == "legacy" or option == "4":
            return Version("legacy", 4)
        if option == "3":
            return Version("legacy", 3)
        if option == "7":
            return O7
        return self._detect()

    def _detect(self) -> Version:
        """`vzctl --version`, once per vzctl binary and process."""
        path = self.tools.vzctl
        try:
            found = shutil.which(path) or path
            key = (found, os.stat(found).st_mtime_ns)
        except OSError:
            raise PermanentError(f"{path} not found: is vzctl installed?") from None
        with _VERSIONS_LOCK:
            if key not in _VERSIONS:
                _VERSIONS[key] = self.tools.version()
            return _VERSIONS[key]

    # ================================================================= reading
    def prepare_observe(self) -> None:
        """Start the next observe's vzlist now (it runs while the engine loads specs)."""
        if self._listing is None and self.conf_dir.is_dir():
            self._listing = self.tools.listing_soon(self.version)

    def observe(self) -> list[LiveObject]:
        version = self.version
        listing, self._listing = self._listing or self.tools.listing_soon(version), None
        # the configs are read and parsed while vzlist runs: it is a process to wait for
        try:
            found, aside = self._scan()
            gconf = self._global()
            read = {ctid: self._live(ctid, found[ctid], gconf, False)
                    for ctid in sorted(found, key=int)}
        finally:
            statuses = self.tools.statuses(listing.result(self.tools.timeout), version)
        out: dict[str, LiveObject] = {}
        taken: dict[int, str] = {}
        names: dict[str, str] = {}
        for ctid, obj in read.items():
            if obj is None:
                continue
            if statuses.get(ctid) == RUNNING:
                obj = self._running_copy(ctid, obj)
            taken[int(ctid)] = obj.ref.name
            if obj.ref.name in out:  # two configs with one NAME: the lowest CTID is it
                continue
            out[obj.ref.name] = obj
            names[obj.ref.name] = ctid
        for ctid in aside:  # set aside or only claimed: their CTIDs stay taken
            record = (self._sidecar(ctid) or {}).get("openvz") or {}
            taken.setdefault(int(ctid), str(record.get("name", "")))
        self._taken = taken
        with self._guard:
            self._names = names
        return list(out.values())

    def boot_id(self, live: LiveObject) -> str | None:
        """When the container started (now - vzlist's uptime), to the second."""
        if live.state != "running" or "id" not in live.extra:
            return None
        result = self.tools.run(self.tools.vzlist, ["-H", "-o", "uptime", str(live.extra["id"])])
        seconds = parse_uptime(result.out) if result.rc == 0 else None
        return None if seconds is None else f"{time.time() - seconds:.0f}"

    def booted_since(self, live: LiveObject, boot: str) -> bool:
        now = self.boot_id(live)
        # uptime is read to the second, and a little after the clock: allow for both
        return now is not None and abs(float(now) - float(boot)) > BOOT_SLACK

    def run_in_guest(self, ref: Ref, argv: tuple[str, ...], timeout: float) -> int:
        """`vzctl exec3 CTID argv...`: the argv as it is (exec and exec2 would join it into a
        bash command line), its own exit status."""
        found = self._find(ref.name)
        if found is None or not found.defined:
            raise PermanentError(f"{ref} is not defined")
        result = self.tools.vz("exec3", found.ctid, *argv, timeout=timeout)
        if result.rc in TRANSIENT_CODES or result.rc == NOT_RUNNING:
            raise error_for(result, f"vzctl exec3 {found.ctid}")
        return result.rc

    def _running_copy(self, ctid: str, obj: LiveObject) -> LiveObject:
        """The object as running, made once per state change (a cached object stays the same
        object pass after pass, so its flattened forms are not worked out again)."""
        cached = self._running_objs.get(ctid)
        if cached is not None and cached[0] is obj:
            return cached[1]
        running = replace(obj, state="running")
        self._running_objs[ctid] = (obj, running)
        return running

    def _scan(self) -> tuple[dict[str, tuple[Any, ...]], list[str]]:
        """`<number>.conf` files (not 0.conf) with the stat keys that tell a change, and the
        CTIDs that only have a set-aside config or a sidecar."""
        out: dict[str, tuple[Any, ...]] = {}
        try:
            entries = list(os.scandir(self.conf_dir))
        except FileNotFoundError:
            return out, []
        sidecars: dict[str, tuple[Any, ...]] = {}
        undefined: set[str] = set()
        for entry in entries:
            match = _SIDECAR.match(entry.name)
            if match:
                with contextlib.suppress(OSError):
                    st = entry.stat(follow_symlinks=False)
                    sidecars[match.group(1)] = (st.st_ino, st.st_size, st.st_mtime_ns)
            elif _UNDEF.match(entry.name):
                undefined.add(entry.name.split(".", 1)[0])
        for entry in entries:
            match = _CONF.match(entry.name)
            if not match or int(match.group(1)) == 0 or int(match.group(1)) > MAX_ID:
                continue
            ctid = str(int(match.group(1)))
            key: tuple[int, int, int] | None
            try:
                st = entry.stat()  # through O7's symlink to VE_PRIVATE/ve.conf
                key = (st.st_ino, st.st_size, st.st_mtime_ns)
            except OSError:
                key = None
            out[ctid] = (entry.name, key, sidecars.get(ctid))
        aside = sorted((undefined | set(sidecars)) - set(out), key=int)
        return out, aside

    def _global(self) -> Conf:
        """vz.conf, parsed again only when it changed."""
        try:
            st = os.stat(self.vz_conf)
        except FileNotFoundError:
            raise PermanentError(f"{self.vz_conf} not found: is vzctl installed (set vz_conf "
                                 "if it lives elsewhere)?") from None
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if self._gconf is None or self._gconf[0] != key:
            text = self._read(self.vz_conf, follow=True) or ""
            self._gconf = (key, conffile.read(text, "0", self.version))
        return self._gconf[1]

    def _live(self, ctid: str, key: tuple[Any, ...], gconf: Conf, running: bool
              ) -> LiveObject | None:
        cached = self._cache.get(ctid)
        state: Literal["running", "stopped"] = "running" if running else "stopped"
        key = (key, self._gconf[0] if self._gconf else None, self.version)
        if cached is not None and cached[0] == key:
            obj = cached[1]
            data = os.path.lexists(obj.extra["private"])
            if obj.state == state and obj.data == data:
                return obj
            obj = replace(obj, state=state, data=data)
            self._cache[ctid] = (key, obj)
            return obj
        conf = self._conf(ctid, gconf)
        if conf is None:
            return None
        sidecar = self._sidecar(ctid)
        stamp = Stamp.from_json(sidecar)
        last = stamp.spec if stamp is not None else None
        raw = read_spec(conf, ctid, self.version, last, (last or {}).get("uuid"))
        spec, dropped = validated(raw)
        private = self._path("VE_PRIVATE", conf, ctid)
        extra: dict[str, Any] = {"id": int(ctid), "private": private,
                                 "root": self._path("VE_ROOT", conf, ctid)}
        if dropped:
            extra["unreadable"] = sorted(dropped)
        obj = LiveObject(ref=Ref("Domain", str(spec["name"])), type="openvz", state=state,
                         spec=spec, stamp=stamp, data=os.path.lexists(private), extra=extra)
        self._cache[ctid] = (key, obj)
        return obj

    def _conf(self, ctid: str, gconf: Conf | None = None) -> Conf | None:
        """The container's effective config (vz.conf under CTID.conf), or None."""
        text = self._read_conf(ctid)
        if text is None:
            return None
        return conffile.merged(gconf if gconf is not None else self._global(),
                               conffile.read(text, ctid, self.version))

    def _read_conf(self, ctid: str, name: str | None = None) -> str | None:
        """CTID.conf. On OpenVZ 7 it is vzctl's symlink to VE_PRIVATE/ve.conf: that one link is
        followed, nothing past it (the private area is the guest's side), and only a regular
        file is read."""
        path = self.conf_dir / (name or f"{ctid}.conf")
        try:
            if path.is_symlink():
                target = Path(os.readlink(path))
                path = target if target.is_absolute() else path.parent / target
            return self._read(path, follow=False)
        except OSError as exc:
            self.unreadable[ctid] = f"{path}: {exc.strerror or exc}"
            return None

    @staticmethod
    def _read(path: Path, follow: bool) -> str | None:
        try:
            data = read_regular(path, conffile.MAX_BYTES, follow=follow)
        except FileNotFoundError:
            return None
        if len(data) > conffile.MAX_BYTES:
            raise PermanentError(f"{path} is larger than {conffile.MAX_BYTES} bytes")
        return data.decode("utf-8", errors="replace")

    def _path(self, key: str, conf: Conf, ctid: str) -> str:
        value = subst_veid(conf.get(key), ctid, self.version.legacy)
        return value or ""

    def _sidecar(self, ctid: str) -> dict[str, Any] | None:
        text = self._read_sidecar_text(ctid)
        if text is None:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _read_sidecar_text(self, ctid: str) -> str | None:
        try:
            return self._read(self.conf_dir / f"{ctid}{SIDECAR}", follow=False)
        except OSError:
            return None

    # ================================================================= rules
    @cached_property
    def _technology(self) -> Technology:
        """The version's rules, with the OS templates this host has cached."""
        base = OPENVZ if self.version.legacy else OPENVZ7
        template = self._global().get("TEMPLATE") or "/vz/template"
        try:
            files = os.listdir(os.path.join(template, "cache"))
        except OSError:
            files = []
        return replace(base, templates=template_names(files))

    def technology(self, kind: str, dtype: str) -> Technology:
        return self._technology

    def check(self, kind: str, dtype: str, spec: dict[str, Any]) -> list[Refusal]:
        """The technology's refusals, and a CTID that another container holds."""
        out = self.technology(kind, dtype).refusals(spec)
        ctid = spec.get("id")
        if ctid is None and str(spec.get("name", "")).isdigit():
            ctid = int(spec["name"])
        holder = self._taken.get(ctid) if ctid is not None else None
        if holder is not None and holder != spec.get("name"):
            out.append(Refusal("id", f"CTID {ctid} belongs to container {holder!r} on this "
                               "host"))
        return out

    def erases(self, live: LiveObject) -> tuple[str, ...]:
        """vzctl destroy erases the private area (on OpenVZ 7 the config inside it too)."""
        private = str(live.extra.get("private") or "")
        return (private,) if private else ()

    # ================================================================= writing
    def handlers(self) -> dict[tuple[str, StepKind], Handler]:
        run: dict[StepKind, Callable[[Step], None]] = {
            "provision": self._do_provision, "define": self._do_define,
            "update": self._do_update, "start": self._do_start, "stop": self._do_stop,
            "undefine": self._do_undefine, "purge": self._do_purge}
        return {("Domain", kind): self._name_locks.serialized(_by_step(fn))
                for kind, fn in run.items()}

    def _do_provision(self, step: Step) -> None:
        spec = _spec(step)
        name = step.ref.name
        root = root_of(spec.get("filesystems")) or {}
        template = root.get("name")
        with self._alloc:
            found = self._find(name)
            if found is not None and found.defined:
                if not found.owned:
                    raise PermanentError(f"{step.ref} exists on the host (CTID {found.ctid}) "
                                         "and is not managed by reconciler; leaving it alone")
                return  # resumed after a crash: already provisioned
            if found is not None and self._takes_back(found, spec, template):
                os.rename(self.conf_dir / f"{found.ctid}{UNDEFINED}",
                          self.conf_dir / f"{found.ctid}.conf")
                self._write_sidecar(found.ctid, name, step.stamp())
                return
            ctid = self._new_ctid(spec, name)
            self._write_sidecar(ctid, name, step.stamp(), state="provisioning")
            with self._guard:
                self._names[name] = ctid
        args = ["create", ctid]
        if template:
            args += ["--ostemplate", str(template)]
        sample = spec.get("profile")  # kept by the engine only if it ever passes it on
        if sample and (self.conf_dir / f"ve-{sample}.conf-sample").is_file():
            args += ["--config", str(sample)]
        if name != ctid:
            args += ["--name", name]
        result = self.tools.vz(*args, timeout=max(self.tools.timeout, 600))
        if result.rc != 0:
            if not (self.conf_dir / f"{ctid}.conf").exists():
                _unlink(self.conf_dir / f"{ctid}{SIDECAR}")  # the claim: nothing was made
            raise error_for(result, f"vzctl create {ctid}")

    def _takes_back(self, found: Found, spec: dict[str, Any], template: Any) -> bool:
        """A container we set aside earlier under this name is taken back by a spec of the
        same CTID (if it gives one) and template: its data is that spec's data."""
        if not found.owned or not (self.conf_dir / f"{found.ctid}{UNDEFINED}").exists():
            return False
        if spec.get("id") is not None and str(spec["id"]) != found.ctid:
            return False
        text = self._read_conf(found.ctid, f"{found.ctid}{UNDEFINED}") or ""
        kept = conffile.read(text, found.ctid, self.version).get("OSTEMPLATE")
        return template is None or kept == template

    def _new_ctid(self, spec: dict[str, Any], name: str) -> str:
        """The spec's CTID (or its numeric name), checked free; else the lowest free one."""
        wanted = spec.get("id")
        if wanted is None and name.isdigit():
            wanted = int(name)
        if wanted is not None:
            ctid = str(wanted)
            why = self._used(ctid)
            if why:
                raise PermanentError(f"domain/{name}: CTID {ctid} is taken: {why}")
            return ctid
        candidate = FIRST_ID
        while candidate <= MAX_ID:
            if not self._used(str(candidate)):
                return str(candidate)
            candidate += 1
        raise PermanentError("no free CTID left")  # pragma: no cover

    def _used(self, ctid: str) -> str:
        """Why a CTID cannot be given to a new container ('' when it can)."""
        for suffix, what in ((".conf", "it has a config"), (UNDEFINED, "its config is set "
                             "aside with the data kept"), (SIDECAR, "reconciler holds it")):
            if os.path.lexists(self.conf_dir / f"{ctid}{suffix}"):
                return what
        private = subst_veid(self._global().get("VE_PRIVATE"), ctid, self.version.legacy)
        if private and os.path.lexists(private):
            return f"its private area {private} exists"
        if int(ctid) in self._taken:
            return "a container holds it"
        return ""

    def _do_define(self, step: Step) -> None:
        self._configure(step, define=True)

    def _do_update(self, step: Step) -> None:
        self._configure(step, define=False)

    def _configure(self, step: Step, define: bool) -> None:
        spec = _spec(step)
        found = self._require(step)
        ctid = found.ctid
        conf = self._conf(ctid)
        if conf is None:
            raise PermanentError(f"{step.ref}: {ctid}.conf cannot be read")
        stamp = found.stamp
        last = stamp.spec if stamp is not None and not define else None
        args = set_args(spec, conf, ctid, self.version, last)
        if not args.empty:
            main = list(args.main)
            if main and args.restart and step.deferred and self._running(ctid):
                self._set_deferred(ctid, main)
            elif main:
                if args.restart and not step.live and self._running(ctid):
                    main += ["--setmode", "restart"]  # the plan said restart
                self.tools.checked("set", ctid, *main, "--save")
            for call in args.nics:
                self.tools.checked("set", ctid, *call, "--save")
            self._verify(step, ctid, spec)
        self._write_sidecar(ctid, step.ref.name, step.stamp())

    def _set_deferred(self, ctid: str, main: list[str]) -> None:
        """Save a restart-class setting without restarting (restart: defer). Without
        --setmode, legacy vzctl applies the rest and saves it all (exit 0); OpenVZ 7 saves it
        all but applies nothing (exit 32, or 67 when second-level quota cannot be turned on
        live), so there the rest is set again, without the restart-class option, to apply it
        (§1.7). The file read back afterwards (`_verify`) shows that everything was saved."""
        result = self.tools.vz("set", ctid, *main, "--save")
        if result.rc == 0:
            return
        if result.rc not in O7_NOT_APPLIED or self.version.legacy:
            raise error_for(result, "vzctl set")
        rest = _without(main, RESTART_OPTIONS)
        if rest:
            self.tools.checked("set", ctid, *rest, "--save")

    def _verify(self, step: Step, ctid: str, spec: dict[str, Any]) -> None:
        """Every managed value reads back as set: legacy `--save` rewrites only the first
        unindented `KEY=` line, so a hand-edited file can keep an old value in force."""
        conf = self._conf(ctid)
        if conf is None:
            raise PermanentError(f"{step.ref}: {ctid}.conf is gone after vzctl set")
        live, _ = validated(read_spec(conf, ctid, self.version, spec))
        want, have = flatten(spec), flatten(live)
        wrong = sorted(f for f in want if f not in _NOT_NATIVE and f != "id"
                       and want[f] != have.get(f))
        if wrong:
            raise PermanentError(
                f"{step.ref}: vzctl saved {', '.join(wrong)} but {ctid}.conf reads back "
                + "; ".join(f"{f}={have.get(f)!r}" for f in wrong)
                + " (a duplicate or indented line vzctl does not rewrite; fix the file by hand)")

    def _do_start(self, step: Step) -> None:
        found = self._require(step)
        result = self.tools.vz("start", found.ctid)
        if result.rc not in (0, ALREADY_RUNNING):
            raise error_for(result, f"vzctl start {found.ctid}")

    def _do_stop(self, step: Step) -> None:
        found = self._find(step.ref.name)
        if found is None or not found.defined:
            return
        try:  # a stopped CT: exit 0 in both versions
            self.tools.checked("stop", found.ctid,
                               timeout=self.stop_timeout + self.tools.timeout)
        except TransientError:
            self.tools.checked("stop", found.ctid, "--fast")

    def _do_undefine(self, step: Step) -> None:
        found = self._find(step.ref.name)
        if found is None or not found.defined:
            return
        if not found.owned:
            raise PermanentError(f"{step.ref} is not managed by reconciler; leaving it alone")
        if self._running(found.ctid):
            raise PermanentError(f"{step.ref} is running; stop it first")
        os.rename(self.conf_dir / f"{found.ctid}.conf",
                  self.conf_dir / f"{found.ctid}{UNDEFINED}")
        self._forget(found.ctid, step.ref.name)

    def _do_purge(self, step: Step) -> None:
        found = self._find(step.ref.name)
        if found is None:
            return
        if not found.owned:
            raise PermanentError(f"{step.ref} is not managed by reconciler; leaving it alone")
        ctid = found.ctid
        if not found.defined:  # set aside earlier: vzctl needs the config back to destroy
            os.rename(self.conf_dir / f"{ctid}{UNDEFINED}", self.conf_dir / f"{ctid}.conf")
        status = parse_status_line(self.tools.checked("status", ctid).out)
        if status[2] == RUNNING:
            raise PermanentError(f"{step.ref} is running; stop it first")
        if status[1] and self.version.legacy:  # legacy destroy refuses a mounted CT (41)
            self.tools.checked("umount", ctid)
        self.tools.checked("destroy", ctid, timeout=max(self.tools.timeout, 600))
        _unlink(self.conf_dir / f"{ctid}{SIDECAR}")
        self._forget(ctid, step.ref.name)

    # ================================================================= import
    def import_specs(self, names: Iterable[str] | None = None, adopt: bool = True,
                     out: str | None = None, format: str = "yaml") -> ImportResult:
        """Specs for the containers on this host, for `reconciler import`.

        Like `terraform import`, importing adopts: each container without a stamp gets one
        holding exactly the spec returned, so the next plan over the written files is empty.
        Containers stamped by another owner, and specs this driver would refuse to apply
        (a hand-written value OpenVZ stores but the model cannot say), are skipped with why.
        The spec pins the CTID (`id`)."""
        wanted = set(names) if names else None
        found = ImportResult([])
        for obj, raw in importable(self.observe(), wanted, found):
            spec, _ = validated(raw)
            refused = self.technology("Domain", "openvz").refusals(spec)
            if refused:
                found.skipped.append((str(obj.ref), "; ".join(map(str, refused))))
                continue
            found.specs.append({"kind": "Domain", **spec})
            ctid = str(obj.extra["id"])
            text = self._read_conf(ctid)
            if text is not None:  # every key of CTID.conf is mapped or said not to be
                found.not_converted.extend(convert_conf(
                    text, ctid, self.version, str(self.conf_dir / f"{ctid}.conf")
                ).not_converted)
            if adopt and not obj.owned:
                source = os.path.abspath(os.path.join(out, f"{obj.ref.name}.{format}")) \
                    if out else None
                with self._lock(obj.ref.name):
                    if self._sidecar(ctid) is None:
                        self._write_sidecar(ctid, obj.ref.name, Stamp(OWNER, source, spec))
        return found

    def close(self) -> None:
        listing, self._listing = self._listing, None
        if listing is not None:  # prepared, never used: reap it
            with contextlib.suppress(TransientError):
                listing.result(self.tools.timeout)

    # ================================================================= helpers
    def _find(self, name: str) -> Found | None:
        """The container named `name`: defined (NAME, or a CTID equal to the name), else one
        we set aside or claimed under that name."""
        hint = self._names.get(name)
        if hint is not None and os.path.lexists(self.conf_dir / f"{hint}.conf"):
            conf = self._conf(hint)
            if conf is not None and spec_name(conf, hint) == name:
                return Found(hint, True, self._sidecar(hint))
        defined: list[str] = []
        aside: list[str] = []
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.conf_dir):
                match = _CONF.match(entry.name)
                if match and int(match.group(1)) != 0:
                    defined.append(str(int(match.group(1))))
                    continue
                match = _UNDEF.match(entry.name) or _SIDECAR.match(entry.name)
                if match:
                    aside.append(match.group(1))
        known = {ctid: obj.ref.name for ctid, (_, obj) in self._cache.items()}
        with self._guard:
            known.update({ctid: known_name for known_name, ctid in self._names.items()})
        for ctid in sorted(defined, key=int):
            if ctid in known and known[ctid] != name and ctid != name:
                continue  # a cheap no: its name was read or given in this process
            conf = self._conf(ctid)
            if conf is not None and spec_name(conf, ctid) == name:
                return Found(ctid, True, self._sidecar(ctid))
        for ctid in sorted(set(aside) - set(defined), key=int):
            sidecar = self._sidecar(ctid)
            if ((sidecar or {}).get("openvz") or {}).get("name") == name:
                return Found(ctid, False, sidecar)
        return None

    def _require(self, step: Step) -> Found:
        found = self._find(step.ref.name)
        if found is None or not found.defined:
            raise PermanentError(f"{step.ref} is not defined on this host")
        if not found.owned:
            raise PermanentError(f"{step.ref} is not managed by reconciler; leaving it alone")
        return found

    def _running(self, ctid: str) -> bool:
        return parse_status_line(self.tools.checked("status", ctid).out)[2] == RUNNING

    def _write_sidecar(self, ctid: str, name: str, stamp: Stamp, state: str = "") -> None:
        data = stamp.to_json()
        data["openvz"] = {"ctid": int(ctid), "name": name, **({"state": state} if state else {})}
        try:
            write_atomic(self.conf_dir / f"{ctid}{SIDECAR}",
                         json.dumps(data, indent=1, sort_keys=True) + "\n", 0o600)
        except OSError as exc:
            raise PermanentError(f"cannot write {self.conf_dir}/{ctid}{SIDECAR}: "
                                 f"{exc.strerror}") from None

    def _forget(self, ctid: str, name: str) -> None:
        self._cache.pop(ctid, None)
        with self._guard:
            if self._names.get(name) == ctid:
                del self._names[name]

    def _lock(self, name: str) -> threading.Lock:
        return self._name_locks.lock(name)


def _by_step(run: Callable[[Step], None]) -> Callable[[Step, str], None]:
    return lambda step, name: run(step)


def _spec(step: Step) -> dict[str, Any]:
    if step.spec is None:
        raise PermanentError(f"{step.id}: step has no spec")
    spec = dict(step.spec)
    spec.pop("kind", None)
    spec.setdefault("name", step.ref.name)
    return spec


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _without(args: list[str], options: frozenset[str]) -> list[str]:
    """`args` (option, value pairs) without the named options and their values."""
    out: list[str] = []
    pairs = iter(args)
    for option in pairs:
        value = next(pairs, None)
        if option not in options:
            out += [option] if value is None else [option, value]
    return out
