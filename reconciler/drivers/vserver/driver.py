"""`vserver`: Linux-VServer guests through util-vserver's tree (`<confdir>/<NAME>/`) and tools.

    observe   every `<confdir>/<NAME>/` tree (one snapshot each: mapping.read_tree) while one
              `vserver-stat` runs (started early by prepare_observe); a guest runs when the
              XID in its run file is listed with processes under its display name (§2.5). A
              tree that cannot be read is still reported (logged as object.unreadable, and
              without a stamp, so the plan leaves it alone), never hidden; what util-vserver
              would fail on is in `extra["problems"]`, what the spec lacks in `extra["notes"]`
    provision `vserver NAME build -m METHOD --context N [--rootdir D] -- ARGS` from the spec's
              template root, into a staging config directory, then our sidecar is written
              there and the tree renamed into place (a crash leaves nothing half-made); a tree
              set aside by an earlier removal is put back instead (its guest root was kept)
    define    the managed files of the tree (mapping.edits), then the sidecar
    update    the same; for a running guest, live fields are pushed first: vuname (uts),
              vlimit (rlimits), naddress and `ip addr` (addresses), then vsched --dir (which
              cannot unset: a token-bucket value dropped from the spec leaves the tree at
              once and the running context at its next start)
    start     `vserver NAME start` (nothing if `vserver NAME status` says it runs)
    stop      `vserver NAME stop`
    undefine  the configuration tree is set aside, `<confdir>/.reconciler/removed/<NAME>`,
              which util-vserver, its boot scripts and the systemd generator skip (hidden);
              the guest root (vdir) and the context number stay reserved
    purge     `vserver --silent NAME delete`: the guest root, the tree, its cache and run
              file; only for a guest whose root this driver built (recorded in the sidecar)

Contexts: the spec's `id`, else the lowest static context from 2 (`first_id`) that no tree
uses (trees in place, set aside or being built) and no spec the driver checked gives (so a
guest built first cannot take the context a spec built later in the same pass names); it is
written to `context` (util-vserver's own record) and noted in the sidecar.

The sidecar `<confdir>/<NAME>/reconciler.json` (0600, written atomically; util-vserver reads
only the files it knows, and a copy in another guest's tree is ignored: it names its guest)
holds the ownership stamp, the last-applied spec and how the root was built.

Options (agent config `drivers: {vserver: {...}}`): `confdir` (default /etc/vservers),
`template_dir` (tarballs a `method: template` root names: NAME.tar.gz, .tgz, .tar.xz,
.tar.bz2 or .tar; default /var/lib/vservers/templates), the programs `vserver`,
`vserver_stat`, `vuname`, `vsched`, `vlimit`, `naddress`, `ip` (default: found on PATH),
`tool_timeout` (seconds, any one call; default 120), `build_timeout` (default 3600),
`page_size` (bytes of a page, which rlimits count; default the host's).

The VServer kernel cannot run on our test machines: this driver is tested against simulators
of util-vserver's tools (tests/sims/vserver), built from reference native-formats §2.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from reconciler.drivers import observed
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
from reconciler.drivers.observed import importable
from reconciler.drivers.process import Running
from reconciler.drivers.vserver import mapping
from reconciler.drivers.vserver.mapping import Context
from reconciler.drivers.vserver.numbers import strtol
from reconciler.drivers.vserver.tools import TOOLS, Tools, check_name
from reconciler.drivers.vserver.tree import Tree, apply_edits, snapshot, whole
from reconciler.errors import ConfigError, DriverError, PermanentError
from reconciler.fsio import read_regular, write_atomic
from reconciler.log import get_logger
from reconciler.model.fields import Ref, root_of
from reconciler.model.names import NAME_RE
from reconciler.model.types import UNLIMITED
from reconciler.model.units import parse_size
from reconciler.rules import Refusal, Technology
from reconciler.rules.vserver import (
    BEANCOUNTER_RLIMITS,
    VSERVER,
    checker,
    distribution,
    method_of,
)
from reconciler.text import printable

SIDECAR = mapping.SIDECAR
OWN_DIR = ".reconciler"  # hidden: util-vserver's globs and the systemd generator skip it
TARBALLS = (".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".tar")
DEFAULT_CONFDIR = "/etc/vservers"
DEFAULT_TEMPLATE_DIR = "/var/lib/vservers/templates"
OPTIONS = ("confdir", "template_dir", *TOOLS, "tool_timeout", "build_timeout", "page_size")
LIVE_UTS = {"hostname": "nodename", "arch": "machine"}


@dataclass(frozen=True)
class _Seen:
    """What the last observe made of one tree, reused while the tree is byte-for-byte the
    same (reading is the floor of an observe; mapping and validating are not)."""

    tree: Tree
    live: LiveObject


class VserverDriver(Driver):
    name = "vserver"
    types = frozenset({"vserver"})
    capabilities = Capabilities(imports=True, prepares_observe=True)

    def __init__(self, state_dir: str | Path, confdir: str = DEFAULT_CONFDIR,
                 template_dir: str = DEFAULT_TEMPLATE_DIR, tool_timeout: float = 120.0,
                 build_timeout: float = 3600.0, page_size: int | None = None,
                 **options: Any) -> None:
        unknown = set(options) - set(TOOLS)
        if unknown:
            raise ConfigError(f"vserver: unknown driver options {sorted(unknown)}; valid: "
                              f"{', '.join(OPTIONS)}")
        for key, value in options.items():
            if not isinstance(value, str) or not value:
                raise ConfigError(f"vserver: {key} must name a program (a path, or a name "
                                  "found on PATH)")
        try:
            timeouts = float(tool_timeout), float(build_timeout)
            page = int(page_size) if page_size is not None else os.sysconf("SC_PAGE_SIZE")
        except (TypeError, ValueError):
            raise ConfigError("vserver: tool_timeout and build_timeout are seconds, page_size "
                              "bytes") from None
        if page <= 0 or page & (page - 1):
            raise ConfigError(f"vserver: page_size {page} is not a power of two")
        self.state_dir = Path(state_dir)
        self.confdir = os.path.abspath(confdir)
        self.template_dir = os.path.abspath(template_dir)
        self.page_size = page
        self.tools = Tools(options, timeout=timeouts[0], build_timeout=timeouts[1])
        self._stat: Running | None = None  # a vserver-stat started by prepare_observe
        self._seen: dict[str, _Seen] = {}
        self._name_locks = NameLocks()
        self._guard = threading.Lock()
        self._reserved: set[int] = set()  # contexts of guests being built right now
        self._claimed: set[int] = set()  # contexts the specs checked so far give

    # ================================================================= places
    def _dir(self, name: str) -> Path:
        return Path(self.confdir) / check_name(name)

    def _kept(self, name: str) -> Path:
        return Path(self.confdir) / OWN_DIR / "removed" / check_name(name)

    def _staging(self, name: str) -> Path:
        return Path(self.confdir) / OWN_DIR / "staging" / check_name(name)

    # ================================================================= reading
    def prepare_observe(self) -> None:
        """Start the next observe's `vserver-stat` now (it runs while the specs load)."""
        if self._stat is None and os.path.isdir(self.confdir):
            self._stat = self.tools.stat_soon()

    def observe(self) -> list[LiveObject]:
        if not os.path.isdir(self.confdir):
            return []
        running, self._stat = self._stat or self.tools.stat_soon(), None
        try:
            found = [self._observe_one(name) for name in self._guest_names()]
        finally:
            rows = self.tools.stat(running)
        out = []
        for obj in found:
            xid = obj.extra.get("xid")
            row = rows.get(xid) if isinstance(xid, int) else None
            runs = row is not None and row.procs > 0 and \
                row.name == str(obj.extra.get("display", ""))[:20]
            state: Literal["running", "stopped"] = "running" if runs else "stopped"
            out.append(obj if obj.state == state else replace(obj, state=state))
        return out

    def _guest_names(self) -> list[str]:
        names = []
        with os.scandir(self.confdir) as entries:
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                    continue
                if NAME_RE.match(entry.name) and ".." not in entry.name:
                    names.append(entry.name)
        return sorted(names)

    def _observe_one(self, name: str) -> LiveObject:
        """One guest. A tree that cannot be read or understood is still reported (logged, and
        without a stamp, so the plan leaves it alone), never hidden and never fatal to the
        observe of the others."""
        cdir = self._dir(name)
        try:
            tree = snapshot(cdir)
            seen = self._seen.get(name)
            xid = self._run_xid(cdir)
            data = os.path.isdir(cdir / "vdir")
            if seen is not None and seen.tree == tree and seen.live.extra.get("xid") == xid \
                    and seen.live.data == data:
                return seen.live
            live = self._live(name, tree, xid, cdir, data)
        except Exception as exc:
            self._seen.pop(name, None)
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            error = f"cannot read {cdir}: {why}"
            get_logger(driver=self.name).warning("object.unreadable", object=f"domain/{name}",
                                                 error=printable(error))
            return LiveObject(ref=Ref("Domain", name), type="vserver", state="stopped",
                              spec={"name": name, "type": "vserver"}, stamp=None,
                              data=os.path.isdir(cdir / "vdir"),
                              extra={"cfgdir": str(cdir), "error": error})
        self._seen[name] = _Seen(tree, live)
        return live

    def _live(self, name: str, tree: Tree, xid: int | None, cdir: Path,
              data: bool) -> LiveObject:
        sidecar = read_sidecar(tree, name)
        stamp = Stamp.from_json(sidecar) if sidecar is not None else None
        record = (sidecar or {}).get("vserver") or {}
        last = stamp.spec if stamp is not None and stamp.owner == OWNER else None
        ctx = Context(name, self.page_size, root=record.get("root"), last=last)
        reading = mapping.read_tree(tree, ctx)
        spec, dropped = validated(reading.spec)
        display = whole(tree.files["name"]) if "name" in tree.files else ""
        extra: dict[str, Any] = {"cfgdir": str(cdir), "xid": xid,
                                 "display": display or name, "built": bool(record.get("root"))}
        # the links as written (resolved only when a plan asks what a purge erases)
        extra["links"] = {k: os.path.join(cdir, os.path.dirname(k), v)
                          for k, v in tree.links.items()
                          if k in ("vdir", "cache", "apps/pkgmgmt/base")}
        if reading.problems:
            extra["problems"] = [f"{p.path}: {p.why}" for p in reading.problems]
        extra["notes"] = tuple(reading.notes)  # what import reports as not converted
        if dropped:
            extra["unreadable"] = sorted(dropped)
        return LiveObject(ref=Ref("Domain", name), type="vserver", state="stopped", spec=spec,
                          stamp=stamp, data=data, extra=extra)

    def boot_id(self, live: LiveObject) -> str | None:
        """The context and its run file's time: util-vserver writes the file at each start."""
        if live.state != "running":
            return None
        cdir = self._dir(live.ref.name)
        try:
            written = os.stat(cdir / "run").st_mtime_ns
        except OSError:
            return None
        return f"{self._run_xid(cdir)}@{written}"

    def run_in_guest(self, ref: Ref, argv: tuple[str, ...], timeout: float) -> int:
        """`vserver NAME exec argv...`: util-vserver passes argv on without a shell (§2.4);
        exit 1 alone is also what it says for a guest that does not run, so that is asked
        first."""
        if not self.tools.status(ref.name):
            raise PermanentError(f"{ref} is not running")
        return self.tools.run("vserver", [check_name(ref.name), "exec", *argv],
                              timeout=timeout).rc

    @staticmethod
    def _run_xid(cdir: Path) -> int | None:
        """The XID in the guest's run file (`run` links to /var/run/vservers/NAME), read as
        util-vserver's getCtxFromFile does: a base-10 number up to a newline."""
        try:
            data = read_regular(cdir / "run", 64, follow=True)
        except OSError:
            return None
        text = data.decode("latin-1")
        parsed = strtol(text, 10)
        if parsed.end == 0 or (text[parsed.end:] and not text[parsed.end:].startswith("\n")):
            return None
        return parsed.value

    # ================================================================= rules
    @cached_property
    def templates(self) -> dict[str, str]:
        """Tarballs a `method: template` root may name, by name: the template directory's
        regular files with a tarball suffix (the spec names one, never a path)."""
        found: dict[str, str] = {}
        with contextlib.suppress(OSError), os.scandir(self.template_dir) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                for suffix in TARBALLS:
                    stem = entry.name[:-len(suffix)]
                    if entry.name.endswith(suffix) and NAME_RE.match(stem) and \
                            entry.is_file() and stem not in found:
                        found[stem] = entry.path
        return found

    @cached_property
    def _technology(self) -> Technology:
        return replace(VSERVER, check=checker(self.page_size),
                       templates=frozenset(self.templates))

    def technology(self, kind: str, dtype: str) -> Technology:
        return self._technology

    def check(self, kind: str, dtype: str, spec: dict[str, Any]) -> list[Refusal]:
        if isinstance(spec.get("id"), int):
            with self._guard:  # a context a spec gives is never handed to another guest
                self._claimed.add(spec["id"])
        out = self._technology.refusals(spec)
        name = str(spec.get("name"))
        # only the host knows whether the guest exists: a new one is built from its root
        if root_of(spec.get("filesystems")) is None and NAME_RE.match(name) and \
                not self._dir(name).exists() and not self._kept(name).exists():
            out.append(Refusal("filesystems", "a new VServer guest is built by `vserver NAME "
                               "build` from a template root: {type: template, method: ..., "
                               "name: ..., target: /}"))
        return out

    def erases(self, live: LiveObject) -> tuple[str, ...]:
        """What `vserver NAME delete` removes: the guest root, the configuration tree, the
        package-management directory and the cache (§2.4)."""
        links = live.extra.get("links") or {}
        paths = [os.path.realpath(links["vdir"]) if "vdir" in links else None,
                 live.extra.get("cfgdir"),
                 *(os.path.realpath(links[k]) for k in ("apps/pkgmgmt/base", "cache")
                   if k in links)]
        return tuple(str(p) for p in paths if p)

    # ================================================================= writing
    def handlers(self) -> dict[tuple[str, StepKind], Handler]:
        run: dict[StepKind, Callable[[Step, str], None]] = {
            "provision": self._do_provision, "define": self._do_define,
            "update": self._do_update, "start": self._do_start, "stop": self._do_stop,
            "undefine": self._do_undefine, "purge": self._do_purge}
        return {("Domain", kind): self._name_locks.serialized(fn, check_name)
                for kind, fn in run.items()}

    def _lock(self, name: str) -> threading.Lock:
        return self._name_locks.lock(name)

    # ---- provision
    def _do_provision(self, step: Step, name: str) -> None:
        spec = _spec(step)
        cdir = self._dir(name)
        if cdir.exists():
            if not self._owned(cdir, name):
                raise PermanentError(f"{step.ref} already exists on the host and is not managed "
                                     "by reconciler; leaving it alone")
            return  # resumed after a crash: already built
        if self._restore_kept(name):
            return
        root = root_of(spec.get("filesystems"))
        if root is None or root.get("type") != "template":
            raise PermanentError(f"{step.ref}: a new VServer guest is built from a template "
                                 "root (filesystems: [{type: template, method: ..., name: ...,"
                                 " target: /}])")
        staging = self._staging(name)
        if staging.exists():
            self._finish_or_clear(staging, name)
            if cdir.exists():
                return
        context = self._allocate(spec.get("id"), name)
        try:
            staging.parent.mkdir(parents=True, exist_ok=True)
            self.tools.build(name, self._build_args(root, context, staging))
            record = {"name": name, "root": mapping.canonical_fs(root), "context": context,
                      "allocated": spec.get("id") is None}
            _write_sidecar(staging, {**step.stamp().to_json(), "vserver": record})
            os.rename(staging, cdir)
        finally:
            with self._guard:
                self._reserved.discard(context)

    def _build_args(self, root: dict[str, Any], context: int, staging: Path) -> list[str]:
        """`vserver NAME build` arguments for a template root (the plan refused the rest;
        a saved plan edited by hand meets the same refusals here)."""
        refused = self._technology.refusals({"name": staging.name, "type": "vserver",
                                             "filesystems": [root]})
        if refused:
            raise PermanentError(f"cannot build: {refused[0]}")
        method = method_of(root)
        args = ["-m", method, "--confdir", str(staging), "--context", str(context)]
        if root.get("source"):
            args += ["--rootdir", os.path.dirname(str(root["source"]).rstrip("/"))]
        args.append("--")
        if method == "template":
            args += ["-t", self.templates[str(root["name"])]]
        dist = distribution(root)
        if dist:
            args += ["-d", dist]
        options = [str(o) for o in root.get("options", ())]
        if options:
            args += ["--", *options]  # debootstrap's own (the only method taking any)
        return args

    def _finish_or_clear(self, staging: Path, name: str) -> None:
        """A staging tree left by a crash: finished (it holds our sidecar) it is moved into
        place; unfinished, the guest root its build made and the tree are removed (a build
        only makes a root that did not exist, so it is ours)."""
        if (staging / SIDECAR).exists():
            os.rename(staging, self._dir(name))
            return
        vdir = staging / "vdir"
        if vdir.is_symlink():
            real = os.path.realpath(vdir)
            if os.path.basename(real) == name and os.path.isdir(real):
                shutil.rmtree(real)
        shutil.rmtree(staging)

    def _restore_kept(self, name: str) -> bool:
        """A tree this driver set aside (removal: keep) goes back in place, with its root."""
        kept = self._kept(name)
        if not kept.is_dir() or not self._owned(kept, name):
            return False
        os.rename(kept, self._dir(name))
        return True

    def _allocate(self, wanted: int | None, name: str) -> int:
        """The spec's context, or the lowest free static one from `first_id`: never one a
        tree (in place, set aside or being built) names, nor one running."""
        with self._guard:
            used = self._used_contexts() | self._reserved
            if wanted is not None:
                if wanted in used:
                    raise PermanentError(f"context {wanted} is in use by another guest")
                context = int(wanted)
            else:
                context = VSERVER.first_id or 2
                while context in used or context in self._claimed:
                    context += 1
            self._reserved.add(context)
            return context

    def _used_contexts(self) -> set[int]:
        used = set()
        base = Path(self.confdir)
        dirs = [base / n for n in self._guest_names()]
        for sub in ("removed", "staging"):
            with contextlib.suppress(OSError):
                dirs += [p for p in (base / OWN_DIR / sub).iterdir() if p.is_dir()]
        for cdir in dirs:
            with contextlib.suppress(OSError):
                parsed = strtol(read_regular(cdir / "context", 64).decode("latin-1"), 10)
                if parsed.end:
                    used.add(parsed.value)
        return used

    # ---- define / update
    def _do_define(self, step: Step, name: str) -> None:
        cdir = self._dir(name)
        if not cdir.exists() and not self._restore_kept(name):
            raise PermanentError(f"{step.ref} is not built (no {cdir})")
        self._write(step, name)

    def _do_update(self, step: Step, name: str) -> None:
        cdir = self._dir(name)
        if not cdir.exists():
            raise PermanentError(f"{step.ref} is not defined (no {cdir})")
        running = step.live and self.tools.status(name)
        if running:
            self._push(step, name)
        self._write(step, name)
        if running and any(f.startswith("scheduler") for f in step.fields):
            xid = self._run_xid(cdir)
            if xid is not None:  # the same reading of sched/ as the start's vsched
                self.tools.checked("vsched", ["--xid", str(xid), "--force", "--dir",
                                              str(cdir / "sched"), "--missingok"],
                                   f"vsched {name}")

    def _write(self, step: Step, name: str) -> None:
        cdir = self._dir(name)
        tree = snapshot(cdir)
        sidecar = read_sidecar(tree, name)
        stamp = Stamp.from_json(sidecar) if sidecar is not None else None
        if stamp is None or stamp.owner != OWNER:
            raise PermanentError(f"{step.ref} is not managed by reconciler; leaving it alone")
        record = (sidecar or {}).get("vserver") or {}
        spec = _spec(step)
        ctx = Context(name, self.page_size, root=record.get("root"), last=stamp.spec)
        try:
            changes = mapping.edits(tree, spec, mapping.managed_fields(spec, stamp.spec), ctx)
        except ValueError as exc:
            raise PermanentError(f"{step.ref}: {exc}") from None
        apply_edits(cdir, changes)
        if spec.get("id") is not None:
            record = {**record, "context": spec["id"], "allocated": False}
        _write_sidecar(cdir, {**step.stamp().to_json(), "vserver": record})

    def _push(self, step: Step, name: str) -> None:
        """Live fields into the running context, before the files say them (if the kernel
        refuses, the tree keeps the old values and the next pass tries again)."""
        cdir = self._dir(name)
        xid = self._run_xid(cdir)
        if xid is None:
            return
        before = self._live(name, snapshot(cdir), xid, cdir, True).spec
        after = _spec(step)
        fields = set(step.fields)
        uts = [f"{LIVE_UTS[k]}={after.get(k) or _host_uts(LIVE_UTS[k])}"
               for k in LIVE_UTS if k in fields]
        if uts:
            args = ["--xid", str(xid), "-s"]
            for item in uts:
                args += ["-t", item]
            self.tools.checked("vuname", args, f"vuname {name}")
        if fields & {"memory", "limits"} or any(f.startswith("memtune") for f in fields):
            self._push_limits(name, xid, before, after)
        if "interfaces" in fields:
            self._push_addresses(name, cdir, xid, before, after)

    def _push_limits(self, name: str, xid: int, before: dict[str, Any],
                     after: dict[str, Any]) -> None:
        old = _rlimits(before, self.page_size)
        new = _rlimits(after, self.page_size)
        args = ["--xid", str(xid)]
        for (res, kind), value in sorted(new.items()):
            if old.get((res, kind)) != value:
                args += [{"min": "-M", "soft": "-S", "hard": "-H"}[kind], f"--{res}", value]
        for key in sorted(set(old) - set(new)):
            args += [{"min": "-M", "soft": "-S", "hard": "-H"}[key[1]], f"--{key[0]}", "inf"]
        if len(args) > 2:
            self.tools.checked("vlimit", args, f"vlimit {name}")

    def _push_addresses(self, name: str, cdir: Path, xid: int, before: dict[str, Any],
                        after: dict[str, Any]) -> None:
        old = mapping.addresses(before.get("interfaces") or ())
        new = mapping.addresses(after.get("interfaces") or ())
        nid = str(self._nid(cdir) or xid)
        for gone in [a for a in old if a not in new]:
            kind = "--range" if gone.is_range else "--ip"
            self.tools.checked("naddress", ["--silent", "--nid", nid, "--remove", kind,
                                            gone.text], f"naddress {name}")
            if gone.dev:
                self.tools.checked("ip", ["addr", "del", gone.text, "dev", gone.dev],
                                   f"ip addr del {gone.text}")
        for added in [a for a in new if a not in old]:
            if added.dev:  # as util-vserver's start puts it on the host (§2.3 interfaces)
                args = ["addr", "add", added.text]
                if ":" not in added.text:
                    args += ["broadcast", "+"]
                if added.label:
                    args += ["label", f"{added.dev}:{added.label}"]
                args += ["dev", added.dev]
                if added.peer:
                    args += ["peer", added.peer]
                self.tools.checked("ip", args, f"ip addr add {added.text}")
                if added.up:
                    self.tools.checked("ip", ["link", "set", added.dev, "up"],
                                       f"ip link set {added.dev} up")
            kind = "--range" if added.is_range else "--ip"
            self.tools.checked("naddress", ["--silent", "--nid", nid, "--add", kind,
                                            added.text], f"naddress {name}")

    @staticmethod
    def _nid(cdir: Path) -> int | None:
        """The network context: `ncontext`, else `context` (§2.3)."""
        for rel in ("ncontext", "context"):
            with contextlib.suppress(OSError):
                parsed = strtol(read_regular(cdir / rel, 64).decode("latin-1"), 10)
                if parsed.end:
                    return parsed.value
        return None

    # ---- run state
    def _do_start(self, step: Step, name: str) -> None:
        if not self._dir(name).exists():
            raise PermanentError(f"{step.ref} is not defined")
        if not self.tools.status(name):
            self.tools.start(name)

    def _do_stop(self, step: Step, name: str) -> None:
        if self._dir(name).exists() and self.tools.status(name):
            self.tools.stop(name)

    # ---- removal
    def _do_undefine(self, step: Step, name: str) -> None:
        cdir = self._dir(name)
        if not cdir.exists():
            return
        if not self._owned(cdir, name):
            raise PermanentError(f"{step.ref} is not managed by reconciler; leaving it alone")
        if self.tools.status(name):
            raise PermanentError(f"{step.ref} is running; stop it first")
        kept = self._kept(name)
        kept.parent.mkdir(parents=True, exist_ok=True)
        target, n = kept, 1
        while target.exists():  # an older kept tree of the same name stays as it is
            target, n = kept.with_name(f"{name}.{n}"), n + 1
        os.rename(cdir, target)
        self._seen.pop(name, None)

    def _do_purge(self, step: Step, name: str) -> None:
        cdir = self._dir(name)
        if not cdir.exists() and not self._restore_kept(name):
            return
        tree = snapshot(cdir)
        sidecar = read_sidecar(tree, name)
        stamp = Stamp.from_json(sidecar) if sidecar is not None else None
        if stamp is None or stamp.owner != OWNER:
            raise PermanentError(f"{step.ref} is not managed by reconciler; leaving it alone")
        if not ((sidecar or {}).get("vserver") or {}).get("root"):
            raise PermanentError(f"{step.ref}: purge refused: reconciler did not build this "
                                 f"guest's root (it was imported); `vserver {name} delete` "
                                 "by hand erases it")
        if self.tools.status(name):
            raise PermanentError(f"{step.ref} is running; stop it first")
        self.tools.delete(name)
        self._seen.pop(name, None)

    # ================================================================= import
    def import_specs(self, names: Iterable[str] | None = None, adopt: bool = True,
                     out: str | None = None, format: str = "yaml") -> ImportResult:
        """Specs for the guests on this host, for `reconciler import`. Like `terraform
        import`, importing adopts: a guest without a stamp gets one holding exactly the spec
        returned (so the next plan over the written files is empty); guests stamped by
        another owner, or whose tree cannot be read, are skipped with why. `out`/`format`
        name the file each spec is written to, recorded as the stamp's source."""
        wanted = set(names) if names else None
        found = ImportResult([])
        readable = []
        for obj in self.observe():
            if obj.extra.get("error") and (wanted is None or obj.ref.name in wanted):
                found.skipped.append((str(obj.ref), str(obj.extra["error"])))
            elif not obj.extra.get("error"):
                readable.append(obj)
        for obj, raw in importable(readable, wanted, found):
            spec, dropped = validated(raw)
            found.specs.append({"kind": "Domain", **spec})
            cdir = Path(str(obj.extra.get("cfgdir")))
            found.not_converted.extend(not_converted(cdir, n) for n in obj.extra.get("notes", ()))
            for field in sorted(dropped | set(obj.extra.get("unreadable", ()))):
                found.not_converted.append(NotConverted(
                    str(obj.extra.get("cfgdir")), 1, field, "", "the value read is not valid "
                    "in the model"))
            if adopt and not obj.owned:
                source = os.path.abspath(os.path.join(out, f"{obj.ref.name}.{format}")) \
                    if out else None
                self._adopt(obj.ref.name, spec, source)
        return found

    def _adopt(self, name: str, spec: dict[str, Any], source: str | None) -> None:
        with self._lock(name):
            cdir = self._dir(name)
            if (cdir / SIDECAR).exists():
                return
            record = {"name": name, "root": None, "context": spec.get("id"),
                      "allocated": False}
            _write_sidecar(cdir, {**Stamp(OWNER, source, spec).to_json(), "vserver": record})
            self._seen.pop(name, None)

    def close(self) -> None:
        running, self._stat = self._stat, None
        if running is not None:  # prepared, never used: reap it
            with contextlib.suppress(DriverError):
                running.result(self.tools.timeout)

    # ================================================================= helpers
    def _owned(self, cdir: Path, name: str) -> bool:
        try:
            data = json.loads(read_regular(cdir / SIDECAR, 1 << 20))
        except (OSError, ValueError):
            return False
        stamp = Stamp.from_json(data)
        return stamp is not None and stamp.owner == OWNER and \
            ((data.get("vserver") or {}).get("name") == name)


def not_converted(cdir: Path, note: mapping.Note) -> NotConverted:
    """A note of the reading as the contract reports what a native file's spec lacks."""
    return NotConverted(str(cdir / note.path) if note.path else str(cdir), note.line,
                        note.path or ".", note.value, note.why)


def _spec(step: Step) -> dict[str, Any]:
    if step.spec is None:
        raise PermanentError(f"{step.id}: step has no spec")
    spec = dict(step.spec)
    spec.pop("kind", None)
    return spec


def read_sidecar(tree: Tree, name: str) -> dict[str, Any] | None:
    """Our sidecar in this tree, if it is one and names this guest (a tree copied from
    another guest carries that guest's sidecar, which is not this one's stamp)."""
    data = tree.get(SIDECAR)
    if data is None:
        return None
    try:
        value = json.loads(data)
    except ValueError:
        return None
    if not isinstance(value, dict) or (value.get("vserver") or {}).get("name") != name:
        return None
    return value


def _write_sidecar(cdir: Path, data: dict[str, Any]) -> None:
    write_atomic(cdir / SIDECAR, json.dumps(data, indent=1, sort_keys=True) + "\n", 0o600)


def _host_uts(field: str) -> str:
    """What a context gets when its tree has no uts file: the host's own value."""
    uname = os.uname()
    return str({"nodename": uname.nodename, "machine": uname.machine}[field])


def _rlimits(spec: dict[str, Any], page_size: int) -> dict[tuple[str, str], str]:
    """(resource, min|soft|hard) -> value, as vlimit takes them, for a canonical spec."""
    out: dict[tuple[str, str], str] = {}
    memtune = spec.get("memtune") or {}
    for kind, size in (("hard", spec.get("memory")), ("soft", memtune.get("soft_limit")),
                       ("min", memtune.get("min_guarantee"))):
        if size is not None:
            out[("rss", kind)] = str(parse_size(size) // page_size)
    for counter, pair in (spec.get("limits") or {}).items():
        res = BEANCOUNTER_RLIMITS.get(counter)
        if res is not None:
            for kind, value in zip(("soft", "hard"), pair, strict=True):
                out[(res, kind)] = "inf" if value >= UNLIMITED else str(value)
    return out


# dropped first when a rule over the whole object fails and names no field
CULPRITS = ("filesystems", "memory", "memtune", "init")


def validated(raw: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    """The canonical form of an observed spec and the fields the model refused
    (`drivers.observed.validated`)."""
    spec, refused = observed.validated(raw, CULPRITS)
    return spec, set(refused)


__all__ = ["VserverDriver", "not_converted", "read_sidecar", "validated"]
