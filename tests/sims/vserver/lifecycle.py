"""start, stop, status, exec and delete of one guest against the simulated kernel (§2.4).

A start runs the scriptlets initialize, prepre-start and pre-start (scriptlets.py), reads the
tree the way vserver.start does (startplan.py), then runs what its command chain would run, in
order: exec-ulimit (`ulimits/`), context creation, vlimit (`rlimits/`), vsched (`sched/` or
`schedule`), vuname (`uts/`), the VSERVER_EXTRA_CMDS in-shell scriptlets added (naddress
only), the run file, and the init command; then the post-start scriptlets. Exit
statuses follow the step that failed: 1 for shell aborts and vsched, 255 for exec-ulimit, vlimit
and the context tool (254 when the XID is taken). Every failure ends with
"Failed to start vserver 'NAME'" on stderr.

A running context, state["contexts"]["<xid>"]:
    xid, nid, tag         ints (nid from `ncontext`, tag from `tag`, else the xid)
    name, cfgdir, vdir    config dir basename, config dir, physical guest root
    procs, initpid        process count (1) and the fake pid of its init
    started_at            epoch seconds; utime_ms, stime_ms, vm_pages, rss_pages for vserver-stat
    uts                   {"context": cfgdir, "nodename": ..., ...} from `uts/`
    sched                 {"cpus": {"0": {"fill-rate": N, ..., "idle-time": bool}}} (sched.py)
    rlimits, ulimits      {"nproc": {"min", "soft", "hard"}}, {"nofile": {"soft", "hard"}}
    flags, bcaps, ccaps, umask, nflags, ncaps    the list files as read
    ips, chbind, bcast, lback                    what the network context gets
    nice, ionice, badness                        scalars as read (None when absent)
    init                  {"style", "start", "stop", "start_sync", "stop_sync",
                           "runlevel_start", "runlevel_stop", "killseq", "env", "fakeinit"}
    addresses, mounts     what this start put on the host (also in state["addresses"/"mounts"]):
                          {"dev", "address" (ip[/prefix]), "broadcast", "label", "peer", "up",
                           "owner", "xid"} and {"source", "target", "host_target", "type",
                           "options", "fstab", "owner"}
    cpuset                {"name", "created", "files"} or None; rescue: bool

Decisions where the reference is silent:
* Nothing is left behind by a failed start: addresses, mounts and the context are all rolled
  back (the real script can leave a `/` mount from `fstab` behind).
* The init command is not run. It must exist and be executable in the guest (absolute, or found
  on the guest's PATH), else the start fails with 255, as the real context tool does when there is
  nothing to exec. A sysv guest without /etc/init.d/rc or /etc/rc.d/rc therefore fails to start.
* A running context has 1 process (its init), 4096 pages of address space and 1024 resident
  pages; tests can change them (VsHost.set_context).
* `stop` re-reads the tree under `set -e` like the real stop script: a tree that would fail a
  start now also fails the stop (exit 1, the guest keeps running). Otherwise stop always ends
  the context: kill sequences are recorded, not acted out.
* Capability and flag names (bcapabilities, ccapabilities, cflags, nflags...) are recorded as
  written; they are not checked against the kernel's names.
* Network: an address goes on a host device only if the device exists in the state's
  "devices" (else `Cannot find device`, and the start goes on, like `ip` under the script), and
  only once per device (else `File exists`, the start goes on). Stop removes what this guest
  added and, as the script does, the addresses its tree lists now (one added by `ip addr add`
  while it ran). VLAN devices, tun/tap, cgroups, disk limits, sysctls, namespaces and the stop
  scriptlets are not simulated.
* The scriptlets run before the tree is read (the real script reads it between initialize and
  prepre-start): only the VSERVER_EXTRA_CMDS and DONT_SKIP_DEFAULTS they set matter here.
* `exec` runs GUEST_ROOT/prog on the host with the guest root as working directory and
  VSSIM_GUEST_ROOT and VSSIM_XID in the environment (there is no chroot here).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import fstab, limits, nettools, options, sched, scriptlets, startplan, state, tree
from .guest import Guest, status
from .paths import Layout
from .startplan import Abort, Plan
from .state import State
from .toolrun import ToolExit, err, out

STATIC_XIDS = range(2, 49152)
UTS_FIELDS = ("context", "sysname", "nodename", "release", "version", "machine", "domainname")
START_VM_PAGES = 4096
START_RSS_PAGES = 1024


class ChainAbort(Abort):
    """A failure inside the start's command chain (after configuration)."""


def failed_start(guest: Guest, in_chain: bool) -> None:
    if in_chain:
        err("\nThe startup sequence failed after the guest was configured; see the messages"
            " above.")
    err(f"\n\nFailed to start vserver '{guest.name}'")


def _sanity_warnings(cfg: Path) -> None:
    if (cfg / "fstab.local").exists():
        err("WARNING: 'fstab.local' is mounted like 'fstab' now; use 'fstab.remote' for mounts"
            " in the guest's network context")
    for old, new in (("hostname", "uts/nodename"), ("domainname", "uts/domainname")):
        if (cfg / old).exists() and not (cfg / old).is_symlink():
            err(f"WARNING: '{old}' is no longer read; use '{new}'")
    for only_ip in sorted((cfg / "interfaces").glob("*/only_ip")):
        err(f"WARNING: 'only_ip' of interface '{only_ip.parent.name}' is deprecated; use 'nodev'")


def _require_vdir(guest: Guest) -> None:
    if not (guest.path / "vdir").is_dir():
        err(f"pushd: {guest.dir}/vdir/: No such file or directory")
        raise Abort(1)


def _add_addresses(st: State, plan: Plan, owner: str) -> list[dict[str, Any]]:
    added = []
    for iface in plan.interfaces:
        if iface.nodev:
            continue
        entry = {**iface.host_address(), "owner": owner}
        if not iface.indirect and iface.dev not in st["devices"]:
            err(f'Cannot find device "{iface.dev}"')
            continue
        if any(a["dev"] == entry["dev"] and a["address"] == entry["address"]
               for a in st["addresses"]):
            err("RTNETLINK answers: File exists")
            continue
        st["addresses"].append(entry)
        added.append(entry)
    return added


def _cpuset(plan: Plan) -> dict[str, Any] | None:
    directory = plan.cfgdir / "cpuset"
    if not directory.is_dir() or not (directory / "name").exists():
        return None
    name = startplan.Reader(True).check(tree.shell_read((directory / "name").read_bytes()))
    files = {f: tree.whole(directory / f) for f in
             ("cpus", "mems", "cpu_exclusive", "mem_exclusive", "virtualized")
             if (directory / f).is_file()}
    create = not (directory / "nocreate").exists()
    if create and (not files.get("cpus") or not files.get("mems")):
        # the kernel refuses tasks in a cpuset without cpus or mems
        err(f'WARNING: Failed to create or CPUSET "{name}" does not exist! Not using it!')
        return None
    return {"name": name, "created": create, "files": files if create else {}}


def _context_xid(st: State, text: str) -> int:
    if text == "":
        xid = state.allocate_dynamic_xid(st)
        if xid is None:
            err("vcontext: vc_ctx_create(): No space left on device")
            raise ChainAbort(255)
        return xid
    if not text.isdigit() or int(text) not in STATIC_XIDS:
        err("vcontext: vc_ctx_create(): Invalid argument")
        raise ChainAbort(255)
    if text in st["contexts"] or str(int(text)) in st["contexts"]:
        err("vcontext: vc_ctx_create(): File exists")
        raise ChainAbort(254)
    return int(text)


def _uts(cfg: Path, key: str) -> dict[str, str]:
    uts = {}
    for name in UTS_FIELDS:
        value = tree.whole(cfg / "uts" / name)
        if value is not None:
            uts[name] = value
    uts["context"] = key  # set last, over any uts/context file
    return uts


def _guest_program(vdir: Path, program: str, path_env: str) -> Path | None:
    """Where execvp in the guest would find program, as a host path."""
    candidates = ([program] if "/" in program
                  else [f"{d or '.'}/{program}" for d in path_env.split(":")])
    for candidate in candidates:
        host = vdir / candidate.lstrip("/")
        if host.is_file() and os.access(host, os.X_OK):
            return host
    return None


def _env_path(env: list[str]) -> str:
    for item in env:
        if item.startswith("PATH="):
            return item[5:]
    return "/bin:/usr/bin"


def _sched(st: State, plan: Plan) -> sched.Sched:
    cpus = int(st["cpus"])
    try:
        if plan.sched_dir is not None:
            return sched.from_dir(plan.sched_dir, cpus)
        if plan.schedule is not None:
            return sched.from_schedule(plan.schedule, cpus)
    except sched.SchedError as exc:
        err(str(exc))
        raise ChainAbort(exc.rc) from None
    return sched.empty(cpus)


def _chain(st: State, guest: Guest, plan: Plan) -> dict[str, Any]:
    """The command chain; returns the new context record (not yet stored)."""
    cfg = guest.path
    try:
        ulimits = limits.read_ulimits(cfg / "ulimits")
        xid = _context_xid(st, plan.context)
        rlimits = limits.read_rlimits(cfg / "rlimits")
    except limits.LimitError as exc:
        err(str(exc))
        raise ChainAbort(exc.rc) from None
    scheduler = _sched(st, plan)
    init = plan.init
    assert init is not None
    if not init.start:
        err("vcontext: no command to run in the new context")
        raise ChainAbort(255)
    if _guest_program(plan.vdir, init.start[0], _env_path(init.env)) is None:
        err(f"vcontext: execvp('{init.start[0]}'): No such file or directory")
        raise ChainAbort(255)
    return {
        "xid": xid,
        "nid": int(plan.n_context) if plan.n_context.isdigit() else xid,
        "tag": int(plan.tag) if plan.tag.isdigit() else xid,
        "name": guest.name,
        "cfgdir": guest.key,
        "vdir": os.path.realpath(plan.vdir),
        "procs": 1,
        "initpid": state.allocate_pid(st),
        "started_at": state.now(),
        "utime_ms": 0,
        "stime_ms": 0,
        "vm_pages": START_VM_PAGES,
        "rss_pages": START_RSS_PAGES,
        "uts": _uts(cfg, guest.key),
        "sched": scheduler,
        "rlimits": rlimits,
        "ulimits": ulimits,
        "flags": plan.flags,
        "bcaps": plan.bcaps,
        "ccaps": plan.ccaps,
        "umask": plan.umask,
        "ips": plan.ips if plan.chbind else [],
        "chbind": plan.chbind,
        "bcast": plan.bcast,
        "lback": plan.lback,
        "nflags": plan.nflags,
        "ncaps": plan.ncaps,
        "nice": plan.nice,
        "ionice": plan.ionice,
        "badness": plan.badness,
        "init": dataclasses.asdict(init),
    }


def _write_run_file(guest: Guest, xid: int) -> None:
    run = guest.path / "run"
    if not run.is_symlink():
        return  # no run link: nothing records the XID (and the guest will look stopped)
    target = Path(os.readlink(run))
    target = target if target.is_absolute() else run.parent / target
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f"{xid}\n")
    stamp = state.now()
    os.utime(target, (stamp, stamp))


def _parse_start_args(args: list[str]) -> list[str] | None:
    """vserver ... start [--rescue [--rescue-init] prog args]; returns the rescue argv."""
    rescue: list[str] | None = None
    rescue_cmd: list[str] | None = None
    while args:
        arg = args[0]
        if arg == "--rescue":
            rescue = []
        elif arg == "--rescue-cmd" and len(args) > 1:
            rescue_cmd = args[1].split()
            args = args[1:]
        elif arg == "--rescue-init":
            pass
        elif arg == "--":
            args = args[1:]
            break
        elif arg.startswith("-"):
            err(f"vserver ... start: unknown option '{arg}'")
            raise Abort(1)
        else:
            break
        args = args[1:]
    if rescue is None:
        return None
    return rescue_cmd if rescue_cmd is not None else list(args)


def start(layout: Layout, guest: Guest, args: list[str], force_sync: bool = False) -> int:
    with state.locked(layout):
        st = state.load(layout)
        running = status(st, guest, cleanup=True)
        if running.running:
            err(f"vserver '{guest.name}' is already running")
            return 0
        try:
            rescue = _parse_start_args(args)
        except Abort as exc:
            return exc.rc
        _sanity_warnings(guest.path)
    # scriptlets run outside the state lock: they may call the simulated tools themselves
    extra: list[str] = []
    for flavor in ("initialize", "prepre-start", "pre-start"):
        vdir = guest.path / "vdir"
        cwd = vdir if flavor == "pre-start" and vdir.is_dir() else guest.path
        done = scriptlets.run(layout, guest.path, guest.name, flavor, cwd, extra)
        if done.rc:
            failed_start(guest, False)
            return done.rc
        extra = done.extra_cmds
    with state.locked(layout):
        st = state.load(layout)
        if status(st, guest, cleanup=True).running:
            err(f"vserver '{guest.name}' is already running")
            return 0
        try:
            record = _start(layout, st, guest, rescue, force_sync, extra)
        except Abort as exc:
            failed_start(guest, isinstance(exc, ChainAbort))
            return exc.rc
        st["contexts"][str(record["xid"])] = record
        st["boots"][guest.key] = int(st["boots"].get(guest.key, 0)) + 1
        state.save(layout, st)
        _write_run_file(guest, int(record["xid"]))
    done = scriptlets.run(layout, guest.path, guest.name, "post-start", guest.path / "vdir", [])
    return done.rc  # a failing post-start fails the script; the guest keeps running


def _extra_commands(record: dict[str, Any], extra: list[str]) -> None:
    """VSERVER_EXTRA_CMDS, run in the new context: `naddress ... --` commands change its
    addresses; any other program is not simulated and fails the start."""
    segments: list[list[str]] = [[]]
    for token in extra:
        if token == "--":
            segments.append([])
        else:
            segments[-1].append(token)
    for command in (s for s in segments if s):
        if os.path.basename(command[0]) != "naddress":
            err(f"vssim: {command[0]} in VSERVER_EXTRA_CMDS is not simulated")
            raise ChainAbort(1)
        long = ["silent", "add", "remove", "set", "nid=", "ip=", "mask=", "range=", "bcast=",
                "lback="]
        try:
            parsed, rest = options.parse("naddress", command[1:], "", long)
            ops = [opt for opt, _ in parsed if opt in ("--add", "--remove", "--set")]
            if len(ops) != 1 or rest:
                raise ToolExit(255, "naddress: exactly one of --add, --remove, --set")
            nettools.add_to_context(record, ops[0], nettools.parse_entries(parsed))
        except options.OptionError as exc:
            err(str(exc))
            raise ChainAbort(255) from None
        except ToolExit as exc:
            err(exc.message or "")
            raise ChainAbort(exc.rc) from None


def _start(layout: Layout, st: State, guest: Guest, rescue: list[str] | None,
           force_sync: bool, extra: list[str] | None = None) -> dict[str, Any]:
    cfg, key = guest.path, guest.key
    mounts = []
    try:
        if (cfg / "fstab").exists():
            _require_vdir(guest)
            mounts += fstab.root_entries(cfg)
        plan = startplan.generate(layout, cfg, strict=True, rescue=rescue,
                                  force_sync=force_sync)
        if fstab.any_fstab(cfg):
            _require_vdir(guest)
            mounts += fstab.other_entries(cfg)
    except fstab.FstabError as exc:
        err(str(exc))  # secure-mount fails, and the start under set -e with it
        raise Abort(1) from None
    addresses = _add_addresses(st, plan, key)
    vdir = Path(os.path.realpath(cfg / "vdir"))
    mount_records = [m.record(vdir, key) for m in mounts]
    st["mounts"] += mount_records
    cpuset = _cpuset(plan)
    _require_vdir(guest)
    record = _chain(st, guest, plan)
    _extra_commands(record, extra or [])
    for entry in addresses:
        entry["xid"] = record["xid"]
    record.update(addresses=addresses, mounts=mount_records, cpuset=cpuset,
                  rescue=rescue is not None)
    return record


def release_host(st: State, key: str, plan: Plan | None = None) -> None:
    """Remove addresses and mounts this guest put on the host; like the stop script, also
    the addresses its tree lists now (one added while it ran, by `ip addr add`, has no
    owner)."""
    listed = set()
    for iface in plan.interfaces if plan is not None else ():
        if not iface.nodev:
            entry = iface.host_address()
            listed.add((entry["dev"], entry["address"]))
    st["addresses"] = [a for a in st["addresses"] if a.get("owner") != key and not (
        a.get("owner") is None and (a["dev"], a["address"]) in listed)]
    st["mounts"] = [m for m in st["mounts"] if m.get("owner") != key]


def stop(layout: Layout, guest: Guest, args: list[str]) -> int:
    with state.locked(layout):
        st = state.load(layout)
        current = status(st, guest, cleanup=True)
        if not current.running:
            err(f"vserver '{guest.name}' is not running")
            try:
                listed: Plan | None = startplan.generate(layout, guest.path, strict=False)
            except Abort:
                listed = None
            release_host(st, guest.key, listed)  # like the script, clean up mounts, addresses
            state.save(layout, st)
            return 0
        for arg in args:
            if arg.startswith("-") and arg not in ("--rescue-init", "--"):
                err(f"vserver ... stop: unknown option '{arg}'")
                return 1
        try:
            plan = startplan.generate(layout, guest.path, strict=True, force_sync=True)
        except Abort as exc:
            return exc.rc  # the stop script reads the config under set -e too
        del st["contexts"][str(current.xid)]
        release_host(st, guest.key, plan)
        state.save(layout, st)
        status(st, guest, cleanup=True)  # the context is gone: this removes the run file
    return 0


def is_running(layout: Layout, guest: Guest) -> bool:
    with state.locked(layout):
        return status(state.load(layout), guest, cleanup=True).running


def show_status(layout: Layout, guest: Guest, silent: bool) -> int:
    st = state.load(layout)
    current = status(st, guest, cleanup=False)
    if not current.running:
        if not silent:
            out(f"Vserver '{guest.arg}' is stopped")
        return 3
    if not silent:
        out(f"Vserver '{guest.arg}' is running at context '{current.xid}'")
        out(f"Number of processes:  {current.procs}")
        out(f"Uptime:               {_file_age(guest.path / 'run')}")
    return 0


def _file_age(path: Path) -> str:
    since = max(0, int(state.now() - path.stat().st_mtime))
    days, rest = divmod(since, 86400)
    text = f"{days} days, " if days else ""
    return text + f"{rest // 3600:02d}:{rest % 3600 // 60:02d}"


def exec_in(layout: Layout, guest: Guest, argv: list[str]) -> int:
    with state.locked(layout):
        st = state.load(layout)
        current = status(st, guest, cleanup=True)
    if not current.running:
        err(f"vserver '{guest.name}' is not running; exec works on running guests only")
        return 1
    try:
        startplan.generate(layout, guest.path, strict=False)
    except Abort as exc:
        return exc.rc
    if not argv:
        err("vcontext: no command to run in the context")
        return 255
    vdir = Path(os.path.realpath(guest.path / "vdir"))
    program = _guest_program(vdir, argv[0], os.environ.get("PATH", "/bin:/usr/bin"))
    if program is None:
        err(f"vcontext: execvp('{argv[0]}'): No such file or directory")
        return 255
    env = {**os.environ, "VSSIM_GUEST_ROOT": str(vdir), "VSSIM_XID": str(current.xid)}
    return _run_passthrough([str(program), *argv[1:]], vdir, env)


def _run_passthrough(cmd: list[str], cwd: Path, env: dict[str, str]) -> int:
    """Run with our stdio; when it is not a real file (tests in-process), copy the output."""
    if _has_fd(sys.stdout) and _has_fd(sys.stderr):
        sys.stdout.flush()
        sys.stderr.flush()
        return subprocess.run(cmd, cwd=cwd, env=env, check=False).returncode
    stdin_data = None if _has_fd(sys.stdin) else sys.stdin.read()
    done = subprocess.run(cmd, cwd=cwd, env=env, check=False, capture_output=True,
                          input=stdin_data.encode() if stdin_data is not None else None)
    sys.stdout.write(done.stdout.decode("utf-8", "replace"))
    sys.stderr.write(done.stderr.decode("utf-8", "replace"))
    return done.returncode


def _has_fd(stream: Any) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


def _pkg_base(layout: Layout) -> Path | None:
    rootdir = (layout.defaults / "vdirbase" if (layout.defaults / "vdirbase").is_dir()
               else layout.default_vserverdir)
    for candidate in (layout.defaults / "apps/pkgmgmt/base", rootdir / ".pkg",
                      layout.default_pkgdir):
        if candidate.is_dir():
            return candidate
    return None


def _link_target(link: Path) -> Path | None:
    if not link.is_symlink():
        return None
    target = Path(os.readlink(link))
    return target if target.is_absolute() else link.parent / target


def _remove(layout: Layout, path: Path | None) -> None:
    """rm -rf, but never outside the simulated root."""
    if path is None:
        return
    real = Path(os.path.realpath(path))
    if real != layout.root and layout.root.resolve() not in real.parents:
        return
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def delete(layout: Layout, guest: Guest, silent: bool) -> int:
    if not silent:
        if sys.stdin.isatty():
            sys.stderr.write(f"Are you sure you want to delete vserver '{guest.arg}'? (y/N) ")
            sys.stderr.flush()
        answer = tree.shell_read(sys.stdin.readline().encode()).value
        if answer not in ("y", "Y"):
            return 2
    if is_running(layout, guest):
        stop(layout, guest, [])
    if not (layout.defaults / "vdirbase").is_dir() and not layout.default_vserverdir.is_dir():
        err(f"vserver: the guest root base '{layout.default_vserverdir}' is missing")
        return 1
    base = _pkg_base(layout)
    if base is None:
        err(f"vserver: the package-management base '{layout.default_pkgdir}' is missing")
        return 1
    vdir = guest.path / "vdir"
    physical = Path(os.path.realpath(vdir)) if vdir.is_dir() else None
    cache, run = _link_target(guest.path / "cache"), _link_target(guest.path / "run")
    for path in (physical, guest.path, base / guest.name, cache, run):
        _remove(layout, path)
    return 0
