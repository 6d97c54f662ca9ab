"""`lxc`: LXC 4/5 containers through the lxc-* tools and `<lxcpath>/<NAME>/config`.

    observe   one `lxc-ls --active -1`, while reading each `<lxcpath>/*/config` and our sidecar
              `<lxcpath>/<NAME>/reconciler.json` (ownership stamp + last-applied spec, plus
              what the template wrote at provision time)
    provision lxc-create -t TEMPLATE (the root filesystem `{type: template, name: ...}`,
              template arguments from its `options`) in a staging lxcpath; for busybox,
              delete the rcS `udhcpc` line (see `_fix_busybox`); write the whole config and
              the sidecar there, then rename the directory into place (crash-safe)
    define    rewrite the config atomically; keys we do not model are kept, in place
    update    the same, plus lxc-cgroup for cgroup limits when the container runs
    start     lxc-start -d, then lxc-wait RUNNING
    stop      lxc-stop -t TIMEOUT (clean halt, LXC kills after the timeout), -k as last resort
    undefine  config moved to `config.undefined`; rootfs and sidecar stay (data kept)
    purge     lxc-destroy, or removal of the kept rootfs when the config is already gone

Update classes follow LXC itself (reference native-formats §3.6): LXC reads the config only
at start, so everything needs a restart (capabilities and NICs included) except cgroup limits
(lxc-cgroup, live: memory, CPU, block I/O weights and throttles), autostart and start order
(only lxc-autostart reads them) and DNS (a file in the rootfs). The root filesystem and idmap
mean a new guest (recreate).

`import_specs` reports what it skips and why, and every config line a spec leaves out, as
`convert` does (`reading.read_config`, one reading for both).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

from reconciler.drivers.base import (
    OWNER,
    Capabilities,
    Driver,
    Handler,
    ImportResult,
    LiveObject,
    NameLocks,
    NotConverted,
    Stamp,
    Step,
    StepKind,
)
from reconciler.drivers.lxc import blkio, rootfs
from reconciler.drivers.lxc.config import LxcConfig
from reconciler.drivers.lxc.mapping import (
    CgroupLayout,
    Context,
    cgroup_live,
    managed_fields,
    read_spec,
    resolv_conf_text,
    unsupported,
    write_spec,
)
from reconciler.drivers.lxc.reading import read_config, validated
from reconciler.drivers.lxc.tools import (
    RUNNING_STATES,
    Tools,
    check_name,
    parse_cgroup_layout,
    parse_names,
    parse_template_comment,
)
from reconciler.drivers.observed import importable
from reconciler.drivers.process import Running
from reconciler.drivers.text import lines, words
from reconciler.errors import ConfigError, PermanentError, TransientError
from reconciler.fsio import write_atomic
from reconciler.model.fields import Ref, flatten, root_of
from reconciler.rules import Technology
from reconciler.rules.lxc import LXC, READS_HOST_INPUT, template_option_refusal

SIDECAR = "reconciler.json"
UNDEFINED = "config.undefined"
START_LOG = "reconciler-start.log"
STAGING = ".reconciler-staging"  # not a valid container name, so observe never lists it
DEFAULT_LXCPATH = "/var/lib/lxc"
COMMON_CONF = "/usr/share/lxc/config/common.conf"
TEMPLATE_DIR = "/usr/share/lxc/templates"


class LxcDriver(Driver):
    name = "lxc"
    types = frozenset({"lxc"})
    capabilities = Capabilities(imports=True, prepares_observe=True)

    def __init__(self, state_dir: str | Path, lxcpath: str | None = None,
                 stop_timeout: float = 30.0, start_timeout: float = 30.0,
                 tool_timeout: float = 120.0, template_dir: str = TEMPLATE_DIR,
                 **unknown: Any) -> None:
        """Options (agent config `drivers: {lxc: {...}}`): `lxcpath` (default /var/lib/lxc),
        `stop_timeout` (seconds of clean halt before lxc-stop kills; 0 kills at once),
        `start_timeout` (seconds to reach RUNNING), `tool_timeout` (any one lxc-* call),
        `template_dir` (where lxc-create finds `lxc-NAME` templates; a spec names one of
        them, never a path)."""
        if unknown:
            raise ConfigError(f"lxc: unknown driver options {sorted(unknown)}; valid: lxcpath, "
                              "stop_timeout, start_timeout, tool_timeout, template_dir")
        self.template_dir = template_dir
        self.state_dir = Path(state_dir)
        self.lxcpath = os.path.abspath(lxcpath or DEFAULT_LXCPATH)
        try:
            self.stop_timeout = float(stop_timeout)
            self.start_timeout = float(start_timeout)
        except (TypeError, ValueError):
            raise ConfigError("lxc: stop_timeout and start_timeout are seconds") from None
        self.tools = Tools(self.lxcpath, timeout=float(tool_timeout))
        self._layout: CgroupLayout | None = None
        self._name_locks = NameLocks()
        self._listing: Running | None = None  # an lxc-ls started by prepare_observe

    # ================================================================= reading
    def observe(self) -> list[LiveObject]:
        if not os.path.isdir(self.lxcpath):
            return []
        # lxc-ls runs while the configs are read: it is a process to wait for, they are Python
        listing, self._listing = self._listing or self.tools.active_soon(), None
        try:
            found = []
            for entry in sorted(os.scandir(self.lxcpath), key=lambda e: e.name):
                if not entry.is_dir(follow_symlinks=False):
                    continue
                try:
                    check_name(entry.name)
                except PermanentError:
                    continue
                text = self._read_text(Path(entry.path) / "config")
                if text is not None:
                    found.append(self._live(entry.name, text))
        finally:
            active = parse_names(self.tools.finish(listing).out)
        return [replace(obj, state="running") if obj.ref.name in active else obj
                for obj in found]

    def prepare_observe(self) -> None:
        """Start the next observe's `lxc-ls` now (it runs while the engine loads specs)."""
        if self._listing is None and os.path.isdir(self.lxcpath):
            self._listing = self.tools.active_soon()

    def _live(self, name: str, text: str) -> LiveObject:
        sidecar = self._read_sidecar(name)
        stamp = Stamp.from_json(sidecar)
        last = stamp.spec if stamp is not None else None
        cfg = LxcConfig.parse(text)
        ctx = self._context(name, text, sidecar)
        resolv = None
        if last and "dns" in last:
            resolv = rootfs.read_file(self._rootfs(cfg, name), "etc/resolv.conf") or ""
        spec, dropped = validated(read_spec(cfg, ctx, last, resolv))
        extra: dict[str, Any] = {"lxcpath": self.lxcpath, "rootfs": self._rootfs(cfg, name)}
        if dropped:
            extra["unreadable"] = sorted(dropped)
        return LiveObject(ref=Ref("Domain", name), type="lxc",
                          state="stopped",  # observe marks the ones lxc-ls lists running
                          spec=spec, stamp=stamp, data=os.path.isdir(self._rootfs(cfg, name)),
                          extra=extra)

    # ================================================================= rules
    @cached_property
    def _technology(self) -> Technology:
        """LXC's rules with the templates this host offers: every executable `lxc-NAME` in
        the template directory, less those that build from host files a spec would name."""
        found = set()
        with contextlib.suppress(OSError):
            for entry in os.scandir(self.template_dir):
                if entry.name.startswith("lxc-") and entry.is_file() and \
                        os.access(entry.path, os.X_OK):
                    found.add(entry.name[4:])
        return replace(LXC, templates=frozenset(found) - READS_HOST_INPUT)

    def technology(self, kind: str, dtype: str) -> Technology:
        return self._technology

    def erases(self, live: LiveObject) -> tuple[str, ...]:
        """lxc-destroy erases the rootfs when it is inside the container's directory (the
        driver made it; a host root gets lxc.rootfs.managed = 0), and the directory."""
        cdir = self._dir(live.ref.name)
        rootfs = str(live.extra.get("rootfs") or "")
        inside = rootfs.startswith(str(cdir) + os.sep)
        return (rootfs, str(cdir)) if inside else (str(cdir),)

    def boot_id(self, live: LiveObject) -> str | None:
        """The container's init: its pid (`lxc-info -pH`) and its start time in the host's
        /proc (a pid can come back; the pair cannot)."""
        if live.state != "running":
            return None
        result = self.tools.run("lxc-info", live.ref.name, ["-pH"], check=False)
        pid = result.out.strip() if result.rc == 0 else ""
        if not pid.isdigit():
            return None
        stat = self._read_text(Path(f"/proc/{pid}/stat")) or ""
        # the command name may hold blanks and parentheses: fields count after its last ")"
        fields = stat.rpartition(")")[2].split()
        return f"{pid}@{fields[19]}" if len(fields) > 19 else None

    def run_in_guest(self, ref: Ref, argv: tuple[str, ...], timeout: float) -> int:
        """`lxc-attach --clear-env -- argv...`: no shell, and none of the agent's environment
        taken into the guest."""
        if self.tools.state(ref.name) not in RUNNING_STATES:
            raise PermanentError(f"{ref} is not running")
        return self.tools.attach(ref.name, ["--clear-env", "--", *argv], timeout=timeout).rc

    # ================================================================= writing
    def handlers(self) -> dict[tuple[str, StepKind], Handler]:
        run: dict[StepKind, Callable[[Step, str], None]] = {
            "provision": self._do_provision, "define": self._do_define,
            "update": self._do_update, "start": self._do_start, "stop": self._do_stop,
            "undefine": self._do_undefine, "purge": self._do_purge}
        return {("Domain", kind): self._name_locks.serialized(fn, check_name)
                for kind, fn in run.items()}

    def _do_provision(self, step: Step, name: str) -> None:
        """Build the container in a staging lxcpath, write its whole config and our sidecar
        there, then rename it into place: a crash at any point leaves either nothing (the
        next pass provisions again) or a complete container we own, never a half-made one
        that would look foreign or need a replace."""
        spec = self._spec(step)
        problems = unsupported(spec)
        if problems:
            raise PermanentError(f"{step.ref}: cannot express on LXC: " + "; ".join(problems))
        cdir = self._dir(name)
        if (cdir / "config").exists():
            if not self._owned(name):
                raise PermanentError(f"{step.ref} already exists on the host and is not managed "
                                     "by reconciler; leaving it alone")
            return  # resumed after a crash: already provisioned
        if (cdir / UNDEFINED).exists():
            self._redefine_kept(step, name, spec)
            return
        if cdir.exists():
            raise PermanentError(f"{cdir} exists but holds no LXC config; move it away first")
        root = root_of(spec.get("filesystems"))
        if root is None:
            raise PermanentError(f"{step.ref}: an LXC container needs a root filesystem "
                                 "(filesystems: [{target: /, type: template, name: busybox}])")
        staging = Path(self.lxcpath) / STAGING
        sdir = staging / name
        if sdir.exists():
            shutil.rmtree(sdir)  # left by a crash during an earlier provision
        staging.mkdir(parents=True, exist_ok=True)
        if root.get("type") == "template":
            record = self._create_from_template(staging, name, root)
        else:
            sdir.mkdir(mode=0o770)
            base = f"lxc.include = {COMMON_CONF}\n" if os.path.exists(COMMON_CONF) else ""
            (sdir / "config").write_text("# LXC container made by reconciler\n" + base)
            record = {"template": None}
        text = self._read_text(sdir / "config") or ""
        cfg = LxcConfig.parse(text)
        ctx = self._context(name, text, {"lxc": record})
        write_spec(cfg, spec, managed_fields(spec, None), ctx)  # paths: the final place
        self._write_atomic(sdir / "config", cfg.render(), 0o640)
        data = {**step.stamp().to_json(), "lxc": record}
        self._write_atomic(sdir / SIDECAR, json.dumps(data, indent=1, sort_keys=True) + "\n",
                           0o600)
        os.rename(sdir, cdir)

    def _redefine_kept(self, step: Step, name: str, spec: dict[str, Any]) -> None:
        """Undefined earlier with its data kept: the same rootfs, the new spec."""
        cdir = self._dir(name)
        text = self._read_text(cdir / UNDEFINED) or ""
        sidecar = self._read_sidecar(name)
        stamp = Stamp.from_json(sidecar)
        cfg = LxcConfig.parse(text)
        last = stamp.spec if stamp is not None and stamp.owner == OWNER else None
        write_spec(cfg, spec, managed_fields(spec, last), self._context(name, text, sidecar))
        self._write_stamp(name, step.stamp(), (sidecar or {}).get("lxc"))
        self._write_atomic(cdir / "config", cfg.render(), 0o640)
        _unlink(cdir / UNDEFINED)

    def _create_from_template(self, staging: Path, name: str,
                              root: dict[str, Any]) -> dict[str, Any]:
        template = str(root["name"])
        options = [str(o) for o in root.get("options", ())]
        # the plan refused these already; a saved plan edited by hand meets them here
        offered = self._technology.templates or frozenset()
        if template not in offered:
            raise PermanentError(f"template {template!r} is not one this host offers")
        for option in options:
            why = template_option_refusal(option)
            if why:
                raise PermanentError(f"template option refused: {why}")
        # -f replaces /etc/lxc/default.conf, whose lxcbr0 network would not exist here
        with tempfile.NamedTemporaryFile("w", prefix="reconciler-lxc-", suffix=".conf") as fh:
            fh.write("# network and limits come from the spec\n")
            fh.flush()
            Tools(str(staging), self.tools.timeout).create(name, template, fh.name, options)
        cfg = LxcConfig.parse(self._read_text(staging / name / "config") or "")
        if template == "busybox":
            self._fix_busybox(str(staging / name / "rootfs"))
        return {"template": template, "options": options,
                "template_mounts": cfg.get_all("lxc.mount.entry")}

    @staticmethod
    def _fix_busybox(root: str) -> None:
        """Delete the busybox template's `/bin/udhcpc` line from /etc/init.d/rcS.

        Without a DHCP server on the bridge udhcpc runs in the foreground forever, so busybox
        init never finishes sysinit and ignores lxc.signal.halt (SIGUSR1): every `lxc-stop`
        then waits its whole timeout (60 s by default) and kills. Its deconfig script also
        flushes the static address LXC put on eth0. Addresses come from the spec instead."""
        text = rootfs.read_file(root, "etc/init.d/rcS")
        if text is None:
            return
        kept = [line for line in lines(text) if "udhcpc" not in line]
        if len(kept) != len(lines(text)):
            rootfs.write_file(root, "etc/init.d/rcS", "\n".join(kept) + "\n")

    def _do_define(self, step: Step, name: str) -> None:
        cdir = self._dir(name)
        sidecar = self._read_sidecar(name)
        stamp = Stamp.from_json(sidecar)
        path = cdir / "config"
        text = self._read_text(path)
        if text is not None and (stamp is None or stamp.owner != OWNER):
            raise PermanentError(f"{step.ref} exists on the host and is not managed by "
                                 "reconciler; leaving it alone")
        if text is None:
            text = self._read_text(cdir / UNDEFINED)
        if text is None:
            raise PermanentError(f"{step.ref} is not provisioned (no {path})")
        self._write_config(step, name, text, sidecar, stamp)

    def _do_update(self, step: Step, name: str) -> None:
        spec = self._spec(step)
        sidecar = self._read_sidecar(name)
        stamp = Stamp.from_json(sidecar)
        text = self._read_text(self._dir(name) / "config")
        if text is None:
            raise PermanentError(f"{step.ref} is not defined")
        if stamp is None or stamp.owner != OWNER:
            raise PermanentError(f"{step.ref} is not managed by reconciler; leaving it alone")
        problems = unsupported(spec)  # before lxc-cgroup sees a value (the plan refused these)
        if problems:
            raise PermanentError(f"{step.ref}: cannot express on LXC: " + "; ".join(problems))
        if step.live and self.tools.state(name) in RUNNING_STATES:
            # the running cgroup first: if it refuses (a limit below current use), the config
            # keeps the old value, so the next pass sees the difference and tries again
            managed = managed_fields(spec, stamp.spec)
            touched = {f for f in managed
                       if f in step.fields or f.split(".")[0] in step.fields} or managed
            online = (self._read_text(Path("/sys/devices/system/cpu/online")) or "0").strip()
            layout = self._cgroups()
            values = cgroup_live(flatten(spec), touched, layout, online)
            if "blkiotune" in touched:
                values += blkio.live(spec.get("blkiotune"), (stamp.spec or {}).get("blkiotune"),
                                     *layout.blkio)
            self._push_cgroups(name, values)
        self._write_config(step, name, text, sidecar, stamp)

    def _push_cgroups(self, name: str, values: list[tuple[str, str]]) -> None:
        """lxc-cgroup each file; a failed one is retried once after the others (memory and
        memory+swap limits must be raised or lowered in a particular order)."""
        failed = []
        for file, value in values:
            if self.tools.cgroup_set(name, file, value).rc != 0:
                failed.append((file, value))
        for file, value in failed:
            result = self.tools.cgroup_set(name, file, value)
            if result.rc != 0:
                raise PermanentError(f"lxc-cgroup {name} {file} {value} failed: {result.why()}")

    def _write_config(self, step: Step, name: str, text: str, sidecar: dict[str, Any] | None,
                      stamp: Stamp | None) -> LxcConfig:
        spec = self._spec(step)
        cfg = LxcConfig.parse(text)
        ctx = self._context(name, text, sidecar)
        last = stamp.spec if stamp is not None and stamp.owner == OWNER else None
        managed = managed_fields(spec, last)
        write_spec(cfg, spec, managed, ctx)
        cdir = self._dir(name)
        new = cfg.render()
        if new != text or not (cdir / "config").exists():
            self._write_atomic(cdir / "config", new, 0o640)
        if any(f.startswith("dns.") or f == "dns" for f in managed):
            self._write_dns(self._rootfs(cfg, name), spec.get("dns"), cdir)
        self._write_stamp(name, step.stamp(), (sidecar or {}).get("lxc"))
        _unlink(cdir / UNDEFINED)
        return cfg

    @staticmethod
    def _write_dns(root: str, dns: dict[str, Any] | None, cdir: Path) -> None:
        """etc/resolv.conf in a root the driver built (inside the container's directory);
        a host directory used as a root is never written (the plan refuses dns there)."""
        if not dns or not os.path.isdir(root):
            return
        if not os.path.realpath(root).startswith(os.path.realpath(cdir) + os.sep):
            raise PermanentError(f"refusing to write DNS into {root}: not a root the driver "
                                 "built")
        rootfs.write_file(root, "etc/resolv.conf", resolv_conf_text(dns))

    def _do_start(self, step: Step, name: str) -> None:
        cdir = self._dir(name)
        text = self._read_text(cdir / "config")
        if text is None:
            raise PermanentError(f"{step.ref} is not defined")
        if self.tools.state(name) in RUNNING_STATES:
            return
        cfg = LxcConfig.parse(text)
        if not os.path.isdir(self._rootfs(cfg, name)):
            raise PermanentError(f"{step.ref} has no root filesystem at "
                                 f"{self._rootfs(cfg, name)} (not provisioned)")
        log = cdir / START_LOG
        _unlink(log)
        result = self.tools.run("lxc-start", name, ["-d", "-o", str(log), "-l", "ERROR"],
                                check=False)
        if result.rc != 0:
            detail = lines((self._read_text(log) or result.err or "").strip())[-3:]
            raise PermanentError(f"lxc-start {name} failed: " + " | ".join(detail))
        if not self.tools.wait(name, "RUNNING", self.start_timeout):
            raise TransientError(f"{step.ref} did not reach RUNNING in "
                                 f"{self.start_timeout:.0f} s", delay=2.0)

    def _do_stop(self, step: Step, name: str) -> None:
        if not (self._dir(name) / "config").exists():
            return
        if self.tools.state(name) not in RUNNING_STATES:
            return
        result = self.tools.stop(name, self.stop_timeout)
        if result.rc not in (0, 2):
            self.tools.stop(name, 0)
        if not self.tools.wait(name, "STOPPED", 15):
            raise TransientError(f"{step.ref} did not stop: {result.why()}", delay=2.0)

    def _do_undefine(self, step: Step, name: str) -> None:
        cdir = self._dir(name)
        if not (cdir / "config").exists():
            return
        if not self._owned(name):
            raise PermanentError(f"{step.ref} is not managed by reconciler; leaving it alone")
        if self.tools.state(name) in RUNNING_STATES:
            raise PermanentError(f"{step.ref} is running; stop it first")
        os.replace(cdir / "config", cdir / UNDEFINED)

    def _do_purge(self, step: Step, name: str) -> None:
        cdir = self._dir(name)
        if not cdir.is_dir() or cdir.is_symlink():
            return
        if not self._owned(name):
            raise PermanentError(f"{step.ref} is not managed by reconciler; leaving it alone")
        if (cdir / "config").exists():
            if self.tools.state(name) in RUNNING_STATES:
                raise PermanentError(f"{step.ref} is running; stop it first")
            result = self.tools.destroy(name)
            if result.rc != 0:
                raise PermanentError(f"lxc-destroy {name} failed: {result.why()}")
        else:
            # undefined earlier (config moved aside): erase the kept rootfs ourselves, but
            # only storage inside the container's directory, never a user's host directory
            text = self._read_text(cdir / UNDEFINED) or ""
            root = self._rootfs(LxcConfig.parse(text), name)
            if os.path.realpath(root).startswith(os.path.realpath(cdir) + os.sep):
                try:
                    shutil.rmtree(root)
                except OSError as exc:
                    raise PermanentError(f"cannot erase {root}: {exc}") from None
        if cdir.is_dir():  # lxc-destroy keeps the directory when lxc.rootfs.managed = 0
            for leftover in (SIDECAR, UNDEFINED, START_LOG, "config"):
                _unlink(cdir / leftover)
            try:
                cdir.rmdir()
            except OSError as exc:
                raise PermanentError(f"{cdir} still holds files after purge: "
                                     f"{exc.strerror}") from None

    # ================================================================= import
    def import_specs(self, names: Iterable[str] | None = None, adopt: bool = True,
                     out: str | None = None, format: str = "yaml") -> ImportResult:
        """Specs for the containers on this host, for `reconciler import`.

        Like `terraform import`, importing adopts: each container without a stamp gets one
        holding exactly the spec returned, so the next plan over the written files is empty
        and the containers are managed from then on. Containers stamped by another owner, and
        directories whose name is not a valid spec name, are skipped with the reason; each
        config line a spec leaves out is reported with its line (`not_converted`), as
        `convert` reports it. `out`/`format` name the file each spec is written to, recorded
        as the stamp's source (so a broken file holds the object instead of removing it)."""
        wanted = set(names) if names else None
        found = ImportResult([], skipped=self._unnamed(wanted))
        for obj, raw in importable(self.observe(), wanted, found):
            spec, _ = validated(raw)
            found.specs.append({"kind": "Domain", **spec})
            found.not_converted.extend(self._left_out(obj))
            if adopt and not obj.owned:
                source = os.path.abspath(os.path.join(out, f"{obj.ref.name}.{format}")) \
                    if out else None
                self._adopt(obj.ref.name, spec, source)
        return found

    def _left_out(self, obj: LiveObject) -> list[NotConverted]:
        """The lines of a container's config its spec does not carry."""
        name = obj.ref.name
        path = self._dir(name) / "config"
        text = self._read_text(path) or ""
        sidecar = self._read_sidecar(name) if obj.owned else None
        reading = read_config(text, self._context(name, text, sidecar), obj.last_applied)
        return reading.notes(str(path))

    def _unnamed(self, wanted: set[str] | None) -> list[tuple[str, str]]:
        """Container directories observe passes over: their name is not one a spec can have."""
        out = []
        with contextlib.suppress(OSError):
            for entry in sorted(os.scandir(self.lxcpath), key=lambda e: e.name):
                if entry.name == STAGING or (wanted is not None and entry.name not in wanted):
                    continue
                try:
                    check_name(entry.name)
                except PermanentError:
                    if os.path.isfile(os.path.join(entry.path, "config")):
                        out.append((f"domain/{entry.name}", "its name is not one a spec can "
                                    "have (1-64 letters, digits, '_', '.' or '-', no '..')"))
        return out

    def _adopt(self, name: str, spec: dict[str, Any], source: str | None) -> None:
        with self._lock(name):
            if self._read_sidecar(name) is not None:
                return
            text = self._read_text(self._dir(name) / "config") or ""
            template, options = parse_template_comment(text)
            self._write_stamp(name, Stamp(OWNER, source, spec),
                              {"template": template, "options": list(options),
                               "template_mounts": []})

    def close(self) -> None:
        listing, self._listing = self._listing, None
        if listing is not None:  # prepared, never used: reap it
            self.tools.finish(listing, check=False)

    # ================================================================= helpers
    def _spec(self, step: Step) -> dict[str, Any]:
        if step.spec is None:
            raise PermanentError(f"{step.id}: step has no spec")
        spec = dict(step.spec)
        spec.pop("kind", None)
        return spec

    def _dir(self, name: str) -> Path:
        return Path(self.lxcpath) / check_name(name)

    def _rootfs(self, cfg: LxcConfig, name: str) -> str:
        value = cfg.get("lxc.rootfs.path")
        if value and value.startswith("dir:"):
            value = value[4:]
        if value and value.startswith("/") and not value.startswith("/dev/"):
            return value
        return str(self._dir(name) / "rootfs")

    def _context(self, name: str, text: str, sidecar: dict[str, Any] | None) -> Context:
        record = (sidecar or {}).get("lxc")
        if isinstance(record, dict) and "template" in record:
            template = record.get("template")
            options = tuple(str(o) for o in record.get("options") or ())
            mounts = frozenset(str(m) for m in record.get("template_mounts") or ())
        else:
            template, options = parse_template_comment(text)
            mounts = frozenset()
        return Context(name=name, lxcpath=self.lxcpath, layout=self._cgroups(),
                       template=template, template_options=options, template_mounts=mounts,
                       is_file=os.path.isfile)

    def _cgroups(self) -> CgroupLayout:
        if self._layout is None:
            mounts = self._read_text(Path("/proc/self/mounts")) or ""
            unified: str | None = None
            cfq = False
            for line in lines(mounts):
                parts = words(line)
                if len(parts) > 3 and parts[2] == "cgroup2" and unified is None:
                    unified = self._read_text(Path(parts[1]) / "cgroup.controllers") or ""
                elif len(parts) > 3 and parts[2] == "cgroup" and \
                        "blkio" in parts[3].split(","):
                    cfq = os.path.exists(os.path.join(parts[1], "blkio.weight"))
            self._layout = replace(parse_cgroup_layout(mounts, unified or ""), cfq=cfq)
        return self._layout

    def _lock(self, name: str) -> threading.Lock:
        return self._name_locks.lock(name)

    def _owned(self, name: str) -> bool:
        stamp = Stamp.from_json(self._read_sidecar(name))
        return stamp is not None and stamp.owner == OWNER

    def _read_sidecar(self, name: str) -> dict[str, Any] | None:
        text = self._read_text(self._dir(name) / SIDECAR)
        if text is None:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _write_stamp(self, name: str, stamp: Stamp, record: Any = None) -> None:
        data = stamp.to_json()
        if record is None:
            record = (self._read_sidecar(name) or {}).get("lxc")
        if record is not None:
            data["lxc"] = record
        self._write_atomic(self._dir(name) / SIDECAR,
                           json.dumps(data, indent=1, sort_keys=True) + "\n", 0o600)

    @staticmethod
    def _read_text(path: Path) -> str | None:
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                return fh.read(1 << 20)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise TransientError(f"cannot read {path}: {exc.strerror}") from None

    @staticmethod
    def _write_atomic(path: Path, text: str, mode: int) -> None:
        try:
            write_atomic(path, text, mode)
        except OSError as exc:
            raise PermanentError(f"cannot write {path}: {exc.strerror}") from None


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
