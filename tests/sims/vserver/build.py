"""`vserver NAME build` (vserver-build) and its methods skeleton, template and debootstrap.

native-formats.md §2.3-§2.4. Every config file is written the way `echo value > file` writes it,
so it ends with a newline. The tree gets `name`, `context` (from `--context`, else from
`.defaults/context.next`, which starts at 40000 and is advanced; none when
`.defaults/context.dynamic` exists), `uts/nodename`, `interfaces/{dev,mask,prefix,bcast}`, one
`interfaces/N/` per `--interface`, `apps/init/style`, `cflags`, the cpuset files, the `vdir`,
`cache` and `run` links and `fstab`; `interfaces/`, `apps/init/`, `uts/` and `cpuset/` are
created even when empty. The `vdir` link points at `<root base>/NAME`, by default
`$VSSIM_ROOT/etc/vservers/.defaults/vdirbase/NAME` (vdirbase itself links to
`$VSSIM_ROOT/vservers`), as the real tool writes it.

Simulation choices:
* Device nodes from the distribution's device list become empty regular files with the node's
  mode (mknod needs root); the symlinks (fd, stdin, ...) are real.
* `debootstrap` cannot run here. The method does everything around it as vserver-build does
  (`apps/pkgmgmt/internal`, the mirror lookup) and then writes a small Debian-like tree instead:
  /etc/debian_version, /etc/apt/sources.list (`deb MIRROR DIST main`), /etc/init.d/rc and
  /sbin/init (no-op scripts, so the guest can start), a few no-op tools and the usual top-level
  directories. Its `-s script` and extra debootstrap options are accepted and ignored.
* `template` extracts each tarball with Python's tarfile (plain, gzip, bzip2 or xz); a missing
  file or an unknown format fails the build.
* Only skeleton, template and debootstrap are simulated; the other real methods (legacy,
  apt-rpm, yum, rpm, urpmi, fai, rsync, clone) are refused with a "not simulated" message.
* Distribution files and hooks (initpre/initpost) are not simulated.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import options, state, tree
from .paths import Layout
from .toolrun import ToolExit, err, out

CONTEXT_START = "40000"
DEFAULT_FSTAB = ("none\t/proc\t\tproc\tdefaults\t\t0 0\n"
                 "none\t/tmp\t\ttmpfs\tsize=16m,mode=1777\t0 0\n"
                 "none\t/dev/pts\tdevpts\tgid=5,mode=620\t\t0 0\n")
DEFAULT_MIRROR = "http://ftp.debian.org/debian"
# name, kind, major/minor or link target, mode: the usual minimal /dev of a guest
DEVICES = (
    ("null", "c", "1 3", "666"), ("zero", "c", "1 5", "666"), ("full", "c", "1 7", "666"),
    ("random", "c", "1 8", "644"), ("urandom", "c", "1 9", "644"), ("tty", "c", "5 0", "666"),
    ("ptmx", "c", "5 2", "666"), ("fd", "l", "/proc/self/fd", ""), ("stdin", "l", "fd/0", ""),
    ("stdout", "l", "fd/1", ""), ("stderr", "l", "fd/2", ""),
)
SIMULATED = ("skeleton", "template", "debootstrap")
REAL_ONLY = ("legacy", "apt-rpm", "copy", "yum", "rpm", "fai", "rsync", "clone", "urpmi")
SETUP_LONG = ["confdir=", "lockfile=", "hostname=", "netdev=", "netmask=", "netprefix=",
              "netbcast=", "interface=", "flags=", "context=", "initstyle=", "cpuset=",
              "cpusetcpus=", "cpusetmems=", "cpusetvirt"]
DEBIAN_VERSIONS = {"etch": "4.0", "lenny": "5.0", "squeeze": "6.0", "wheezy": "7.0",
                   "jessie": "8.0", "stretch": "9.0", "buster": "10.0", "bullseye": "11.0",
                   "bookworm": "12.0", "trixie": "13.0"}
NOOP_SCRIPT = "#!/bin/sh\n# vssim: stands in for the real program\nexit 0\n"


@dataclass
class Setup:
    """The cfg-options (vserver-setup.functions)."""

    name: str = ""
    confdir: str = ""
    lockfile: str = ""
    hostname: str = ""
    netdev: str = ""
    netmask: str = ""
    netprefix: str = ""
    netbcast: str = ""
    context: str = ""
    initstyle: str = ""
    cpuset: str = ""
    cpusetcpus: str = ""
    cpusetcpus_excl: str = ""
    cpusetmems: str = ""
    cpusetmems_excl: str = ""
    cpusetvirt: str = ""
    interfaces: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


@dataclass
class Build:
    layout: Layout
    setup: Setup
    method: str = ""
    force: bool = False
    keep: bool = False
    semiforce: bool = False
    rootdir: str = ""
    generated: list[Path] = field(default_factory=list)

    @property
    def cfgdir(self) -> Path:
        return Path(self.setup.confdir)


def _split_colon(value: str) -> tuple[str, str]:
    first, _, rest = value.partition(":")
    return first, rest.split(":", 1)[0]


def _set_option(setup: Setup, opt: str, value: str) -> None:
    key = opt.lstrip("-")
    if key == "interface":
        setup.interfaces.append(value)
    elif key == "flags":
        parts = value.split(",")
        if parts and parts[-1] == "":
            parts.pop()  # a trailing comma adds no empty word in the shell
        setup.flags += parts
    elif key == "cpusetcpus":
        setup.cpusetcpus, setup.cpusetcpus_excl = _split_colon(value)
    elif key == "cpusetmems":
        setup.cpusetmems, setup.cpusetmems_excl = _split_colon(value)
    elif key == "cpusetvirt":
        setup.cpusetvirt = "1"
    else:
        setattr(setup, key, value)


def _echo(value: str, path: Path) -> None:
    """`test -z value || echo value > path`."""
    if value:
        path.write_text(value + "\n")


def _write_interface(build: Build, index: int, spec: str) -> None:
    """Split [label=][dev:]ip[/mask|prefix] the way the shell patterns in vserver-build do."""
    label, sep, rest = spec.partition("=")
    if not sep:
        label, rest = "", spec
    dev, sep, after = rest.partition(":")
    if not sep:
        dev, after = "", rest
    nodev_given = dev == "nodev"
    if nodev_given:
        dev = ""
    ip, slash, mask = after.rpartition("/")
    if not slash:
        ip, mask = after, ""
    prefix = ""
    if "." not in mask:
        prefix, mask = mask, ""
    directory = build.cfgdir / "interfaces" / str(index)
    directory.mkdir()
    for value, name in ((label, "name"), (dev, "dev"), (ip, "ip"), (mask, "mask"),
                        (prefix, "prefix")):
        _echo(value, directory / name)
    if not dev and not build.setup.netdev:
        if not nodev_given:
            err(f"No device specified for interface '{index}'; setting 'nodev'")
        (directory / "nodev").touch()


def _next_context(build: Build) -> str:
    """The context for a new guest; advances .defaults/context.next (under the state lock)."""
    defaults = build.layout.defaults
    if build.setup.context or (defaults / "context.dynamic").exists():
        return build.setup.context
    with state.locked(build.layout):
        next_file = defaults / "context.next"
        current = (next_file.read_text().rstrip("\n") if next_file.exists() else CONTEXT_START)
        if not re.fullmatch(r"-?[0-9]+", current):
            raise ToolExit(2, "expr: non-integer argument")
        next_file.parent.mkdir(parents=True, exist_ok=True)
        next_file.write_text(f"{int(current) + 1}\n")
    return current


def _write_config(build: Build) -> None:
    """setup_writeOption plus the initial fstab."""
    setup, cfg = build.setup, build.cfgdir
    for sub in ("interfaces", "apps/init", "uts", "cpuset"):
        (cfg / sub).mkdir(parents=True, exist_ok=True)
    context = _next_context(build)
    for value, rel in ((setup.name, "name"), (context, "context"),
                       (setup.hostname, "uts/nodename"), (setup.netdev, "interfaces/dev"),
                       (setup.netmask, "interfaces/mask"), (setup.netprefix, "interfaces/prefix"),
                       (setup.netbcast, "interfaces/bcast"), (setup.initstyle, "apps/init/style"),
                       (setup.cpuset, "cpuset/name"), (setup.cpusetcpus, "cpuset/cpus"),
                       (setup.cpusetcpus_excl, "cpuset/cpus_exclusive"),
                       (setup.cpusetmems, "cpuset/mems"),
                       (setup.cpusetmems_excl, "cpuset/mem_exclusive"),
                       (setup.cpusetvirt, "cpuset/virtualized")):
        _echo(value, cfg / rel)
    for index, spec in enumerate(setup.interfaces):
        _write_interface(build, index, spec)
    if setup.flags and setup.flags[0]:
        (cfg / "cflags").write_text("".join(f"{flag}\n" for flag in setup.flags))
    (cfg / "run").symlink_to(setup.lockfile)
    source = tree.find_file(build.layout.defaults / "fstab")
    (cfg / "fstab").write_bytes(source.read_bytes() if source else DEFAULT_FSTAB.encode())


def _base_dir(layout: Layout, explicit: str, link: str, fallback: Path, what: str) -> Path:
    if explicit:
        return Path(explicit)  # --rootdir is taken as given; mkdir -p creates it
    candidate = layout.defaults / link
    base = candidate if candidate.is_dir() else fallback
    if not base.is_dir():
        raise ToolExit(1, f"vserver-build: {what} '{base}' is missing or not a directory")
    return base


def _is_empty_dir(path: Path) -> bool:
    return not path.exists() or (path.is_dir() and all(
        p.name == "lost+found" for p in path.iterdir()))


def _move_aside(path: Path) -> None:
    if path.exists() and not (path.is_dir() and not any(path.iterdir())):
        aside = Path(f"{path}.~{int(time.time())}~")
        path.rename(aside)
        out(f"Moved '{path}' aside to '{aside}'")


def _populate_dev(vdir: Path) -> None:
    dev = vdir / "dev"
    dev.mkdir(mode=0o755, parents=True, exist_ok=True)
    (dev / "pts").mkdir(mode=0o755)
    for name, kind, arg, mode in DEVICES:
        if kind == "l":
            (dev / name).symlink_to(arg)
        else:
            (dev / name).touch()
            (dev / name).chmod(int(mode, 8))


def _copy_if_empty(dst: Path, *sources: Path) -> None:
    """findAndCopy: fill dst (unless it has content) from the first existing source."""
    if dst.is_file() and dst.stat().st_size > 0:
        return
    found = tree.find_file(*sources)
    if found is not None and found.stat().st_size > 0:
        shutil.copy2(found, dst)


def _init_filesystem(build: Build, vdir: Path, cachedir: Path) -> None:
    cfg, layout = build.cfgdir, build.layout
    if build.force:
        for path in (vdir, cfg):
            _move_aside(path)
    if not ((build.semiforce or _is_empty_dir(vdir)) and not cfg.exists()):
        raise ToolExit(1, f"vserver-build: '{vdir}' and/or '{cfg}' exist already; use "
                          "'--force', or remove them first")
    vdir.mkdir(mode=0o755, parents=True, exist_ok=True)
    build.generated.append(vdir)
    (cfg / "apps").mkdir(mode=0o755, parents=True, exist_ok=True)
    (vdir / "etc").mkdir(mode=0o755, parents=True, exist_ok=True)
    build.generated.append(cfg)
    (cfg / "vdir").symlink_to(vdir)
    (cfg / "cache").symlink_to(cachedir / build.setup.name)
    _populate_dev(vdir)
    (vdir / "proc").mkdir(exist_ok=True)
    files = layout.defaults / "files"
    _copy_if_empty(vdir / "etc/hosts", files / "hosts")
    for name in ("nsswitch.conf", "krb5.conf", "krb.conf", "krb.realms", "ldap.conf",
                 "localtime"):
        _copy_if_empty(vdir / "etc" / name, files / name)
    _copy_if_empty(vdir / "etc/resolv.conf", files / "resolv.conf",
                   layout.host_etc / "resolv.conf")


def _pkgmgmt(build: Build, vdir_base: Path) -> None:
    """--pkgmgmt: a package-management dir outside the guest, linked from apps/pkgmgmt/base."""
    layout = build.layout
    bases = [layout.defaults / "apps/pkgmgmt/base", vdir_base / ".pkg", layout.default_pkgdir]
    base = next((b for b in bases if b.is_dir()), None)
    if base is None:
        raise ToolExit(1, f"vserver-build: the package-management base '{bases[-1]}' is missing")
    pkgdir = base / build.setup.name
    if build.force and pkgdir.exists():
        _move_aside(pkgdir)
    if pkgdir.is_dir():
        raise ToolExit(1, f"vserver-build: '{pkgdir}' exists already; use '--force'")
    pkgdir.mkdir(parents=True)
    build.generated.append(pkgdir)
    (build.cfgdir / "apps/pkgmgmt").mkdir(parents=True, exist_ok=True)
    (build.cfgdir / "apps/pkgmgmt/base").symlink_to(pkgdir)


def _extract(tarball: str, vdir: Path) -> None:
    path = Path(tarball)
    if not path.is_file():
        raise ToolExit(1, f"vserver-build.template: {tarball}: No such file")
    try:
        with tarfile.open(path, "r:*") as archive:
            archive.errorlevel = 0  # device nodes and owners cannot be set without root
            archive.extractall(vdir, filter="tar")
    except tarfile.ReadError:
        raise ToolExit(1, f"vserver-build.template: {tarball}: Unknown format") from None


def _debootstrap_tree(vdir: Path, dist: str, mirror: str) -> None:
    for sub in ("bin", "boot", "etc/apt", "etc/init.d", "home", "lib", "media", "mnt", "opt",
                "root", "run", "sbin", "srv", "usr/bin", "usr/lib", "usr/sbin", "usr/share",
                "var/cache/apt", "var/lib/dpkg", "var/log", "var/tmp", "tmp"):
        (vdir / sub).mkdir(parents=True, exist_ok=True)
    (vdir / "tmp").chmod(0o1777)
    (vdir / "etc/debian_version").write_text(DEBIAN_VERSIONS.get(dist, f"{dist}/sid") + "\n")
    (vdir / "etc/apt/sources.list").write_text(f"deb {mirror} {dist} main\n")
    (vdir / "etc/os-release").write_text(f'ID=debian\nVERSION_CODENAME={dist}\n')
    (vdir / "var/lib/dpkg/status").write_text(
        "Package: base-files\nStatus: install ok installed\n\n"
        "Package: sysvinit-core\nStatus: install ok installed\n")
    for script in ("etc/init.d/rc", "sbin/init", "bin/true", "usr/bin/true"):
        (vdir / script).write_text(NOOP_SCRIPT)
        (vdir / script).chmod(0o755)
    (vdir / "bin/false").write_text("#!/bin/sh\nexit 1\n")
    (vdir / "bin/false").chmod(0o755)


def _distribution(layout: Layout, given: str) -> str:
    """getDistribution: -d, else the host's release file (only Debian's is looked at here)."""
    if given:
        return given
    release = layout.host_etc / "debian_version"
    if release.is_file():
        words = release.read_text().split()
        return f"deb{words[0] if words else ''}"
    raise ToolExit(1, "vserver-build: can not tell the distribution; give it with '-d'")


def _mirror(layout: Layout, dist: str, given: str) -> str:
    if given:
        return given
    found = tree.find_file(layout.distributions / dist / "debootstrap.mirror",
                           layout.defaults / "apps/debootstrap/mirror")
    if found is None:
        return DEFAULT_MIRROR
    result = tree.shell_read(found.read_bytes())
    if not result.ok:
        raise ToolExit(1)  # unguarded `read` under set -e
    return result.value


def _method_args(prog: str, args: list[str], short: str,
                 long: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    try:
        parsed, rest = options.parse(prog, args, short, long)
    except options.OptionError as exc:
        raise ToolExit(1, str(exc)) from None
    found: dict[str, list[str]] = {}
    for opt, value in parsed:
        key = opt.lstrip("-")
        found.setdefault("t" if key == "template" else key, []).append(value)
    return found, rest


def _clear_dir(directory: Path) -> None:
    for entry in directory.iterdir() if directory.is_dir() else []:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _run_method(build: Build, args: list[str]) -> None:
    layout, setup, method = build.layout, build.setup, build.method
    if method == "skeleton":
        found, rest = _method_args("vserver-build.skeleton", args, "d:", ["debug", "pkgmgmt"])
    elif method == "template":
        found, rest = _method_args("vserver-build.template", args, "d:t:",
                                   ["debug", "pkgmgmt", "template=", "nodevsanity"])
    else:
        found, rest = _method_args("vserver-build.debootstrap", args, "d:m:s:", ["debug"])
    dist = (found.get("d") or [""])[-1]
    if method == "debootstrap":
        dist = _distribution(layout, dist)
    templates = [t if t.startswith("/") else f"{os.getcwd()}/{t}"
                 for t in found.get("t", [])]
    if setup.context.isdigit() and str(int(setup.context)) in state.load(layout)["contexts"]:
        raise ToolExit(1, f"vserver-build: context {setup.context} is in use; choose another one")
    vdir_base = _base_dir(layout, build.rootdir, "vdirbase", layout.default_vserverdir,
                          "root directory")
    cachedir = _base_dir(layout, "", "cachebase", layout.pkgcachedir, "cache directory")
    vdir = vdir_base / setup.name
    mirror = _mirror(layout, dist, (found.get("m") or [""])[-1]) if method == "debootstrap" \
        else ""
    try:
        _init_filesystem(build, vdir, cachedir)
        if "pkgmgmt" in found:
            _pkgmgmt(build, vdir_base)
        if method == "debootstrap":
            (build.cfgdir / "apps/pkgmgmt").mkdir(parents=True, exist_ok=True)
            (build.cfgdir / "apps/pkgmgmt/internal").touch()
        _write_config(build)
        if method == "template":
            for tarball in templates:
                _extract(tarball, vdir)
            if "nodevsanity" not in found:
                _clear_dir(vdir / "dev")
                _populate_dev(vdir)
        elif method == "debootstrap":
            (vdir / "dev").rename(vdir / "dev.X")
            _debootstrap_tree(vdir, dist, mirror)
            shutil.rmtree(vdir / "dev", ignore_errors=True)
            (vdir / "dev.X").rename(vdir / "dev")
        elif rest:
            done = subprocess.run(rest, check=False)
            if done.returncode != 0:
                raise ToolExit(done.returncode)
    except BaseException:
        if not build.keep:
            for path in reversed(build.generated):
                if path.is_symlink() or path.is_file():
                    path.unlink()
                elif path.is_dir():
                    shutil.rmtree(path)
        raise


def build(layout: Layout, args: list[str]) -> int:
    """vserver-build [opts] -- method-args; `vserver NAME build` passes `-n NAME` first."""
    defaults = tree.read_array(layout.defaults / "apps/build/options") or []
    if os.environ.get("NO_DEFAULT_OPTS"):
        defaults = []
    try:
        parsed, rest = options.parse(
            "vserver-build", defaults + args, "m:n:",
            ["keep", "force", "i-know-its-there", "debug", "help", "version", "rootdir=",
             "pkgbase=", *SETUP_LONG])
    except options.OptionError as exc:
        raise ToolExit(1, str(exc)) from None
    setup = Setup()
    result = Build(layout, setup)
    for opt, value in parsed:
        if opt == "--help":
            out("Usage: vserver-build -m <method> -n <name> [--force] [--keep] [--rootdir <dir>]"
                " <cfg-options>* [--] <method-args>*\n"
                f"Simulated methods: {', '.join(SIMULATED)}")
            return 0
        if opt == "--version":
            out("vserver-build (vssim, the util-vserver test simulator)")
            return 0
        if opt == "-m":
            result.method = value
        elif opt == "-n":
            setup.name = value
        elif opt == "--force":
            result.force = True
        elif opt == "--keep":
            result.keep = True
        elif opt == "--i-know-its-there":
            result.semiforce = True
        elif opt == "--rootdir":
            result.rootdir = value
        elif opt in ("--debug", "--pkgbase"):
            pass
        else:
            _set_option(setup, opt, value)
    if not setup.name:
        raise ToolExit(1, "vserver-build: no vserver name given")
    setup.confdir = setup.confdir or str(layout.confdir / setup.name)
    setup.lockfile = setup.lockfile or str(layout.rundir / setup.name)
    if not result.method:
        raise ToolExit(1, "vserver-build: no build method given; use -m")
    if result.method in REAL_ONLY:
        raise ToolExit(1, f"vserver-build: the '{result.method}' build method is not simulated"
                          f" (simulated: {', '.join(SIMULATED)})")
    if result.method not in SIMULATED:
        raise ToolExit(1, f"Unknown build-method '{result.method}'")
    _run_method(result, rest)
    return 0
