"""VsHost: a fresh simulated VServer host for one test.

    host = VsHost(tmp_path / "vs")             # lays out the host below that directory
    host.run("vserver", "g1", "build", "-m", "template", "--", "-t", str(host.template))
    host.run("vserver", "g1", "start")         # real executables, env=host.env()
    host.call("vserver", "g1", "status")       # same, in-process (fast)
    host.state()["contexts"]                   # the kernel state, see state.py
    host.calls()                               # the call log, one dict per invocation

Layout made below `root` (the simulated `/`):
    etc/vservers/                      config root (`config_root`)
    etc/vservers/.defaults/vdirbase -> <root>/vservers   (guest roots, `vdirbase`)
    vservers/.pkg/                     package-management base (needed by delete)
    var/run/vservers/                  run files; var/cache/vservers/ cache base
    etc/resolv.conf                    copied into new guests by build
    proc/virtual/state.json            the kernel state: `cpus` CPUs, `devices` NICs
    var/lib/vssim/templates/minimal.tar.gz   `template`, for `-m template -- -t FILE`
The template holds a bootable minimal guest: /etc/init.d/rc and /sbin/init (no-op scripts, so
sysv and plain starts work), /bin/true, /bin/false, /bin/echo-args (prints its arguments one
per line) and /etc/hostname. Nothing else needs preparing: `skeleton` and `debootstrap` work as
they are (debootstrap is simulated, see build.py). Note that a skeleton guest has no init
script, so (as with the real tools) it only starts with `apps/init/cmd.start` or a rescue
command that exists in it.

Interfaces for driver tests:
* Executables: `tool(name)` is `<root>/usr/sbin/NAME`, a wrapper that sets VSSIM_ROOT and runs
  the simulator's NAME (vserver, vserver-stat, vserver-info, vuname, vsched, vlimit, naddress,
  ip), so a driver is pointed at this host by its tool paths alone.
* Environment: VSSIM_ROOT (required) is the simulated `/`; VSSIM_NOW (optional, epoch seconds)
  freezes the clock used for start times, uptimes and run-file ages.
* Kernel state: `state()` / proc/virtual/state.json, described in state.py; each running
  context records what its start applied (lifecycle.py lists the fields).
* Call log: `calls()` / var/log/vssim.jsonl, one `{"tool", "argv", "rc"}` per invocation.
* Faults: `set_faults([...])` / etc/vssim-faults.json, described in toolrun.py.
* Live changes to a running context: the vuname, vsched, vlimit (ctxtools.py), naddress and ip
  (nettools.py) commands, and plain functions in live.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import subprocess
import sys
import tarfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from unittest import mock

from . import ctxtools, nettools, state, vserver, vserver_info, vserver_stat
from .paths import ENV_ROOT, Layout

BIN = Path(__file__).resolve().parent / "bin"
TOOLS = {"vserver": vserver.main, "vserver-stat": vserver_stat.main,
         "vserver-info": vserver_info.main, "vuname": ctxtools.vuname,
         "vsched": ctxtools.vsched, "vlimit": ctxtools.vlimit, "naddress": nettools.naddress,
         "ip": nettools.ip}
NOOP = "#!/bin/sh\nexit 0\n"
TEMPLATE_MTIME = 1_700_000_000  # fixed, so tarballs are reproducible
MINIMAL_GUEST = {
    "etc/init.d/rc": NOOP,
    "sbin/init": NOOP,
    "bin/true": NOOP,
    "bin/false": "#!/bin/sh\nexit 1\n",
    "bin/echo-args": '#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n',
    "etc/hostname": "localhost\n",
}


def make_template(path: Path, files: Mapping[str, str | bytes],
                  executable: tuple[str, ...] = ("bin/", "sbin/", "etc/init.d/")) -> Path:
    """A gzip tarball of files (relative path -> content); paths under `executable` get 0755."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        dirs = sorted({str(Path(name).parent) for name in files} - {"."})
        for directory in dirs:
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, TEMPLATE_MTIME
            archive.addfile(info)
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.startswith(executable) else 0o644
            info.mtime = TEMPLATE_MTIME
            archive.addfile(info, io.BytesIO(data))
    return path


class VsHost:
    """A simulated util-vserver host below `root`; see the module docstring."""

    def __init__(self, root: Path, *, cpus: int = 2,
                 devices: tuple[str, ...] = ("lo", "eth0", "eth1")) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self.layout = Layout(self.root)
        lay = self.layout
        for directory in (lay.defaults, lay.default_vserverdir, lay.default_pkgdir, lay.rundir,
                          lay.pkgcachedir, lay.call_log.parent, lay.statedir, lay.lockdir):
            directory.mkdir(parents=True, exist_ok=True)
        if not self.vdirbase_link.is_symlink():
            self.vdirbase_link.symlink_to(lay.default_vserverdir)
        (lay.host_etc / "resolv.conf").write_text("nameserver 192.0.2.53\n")
        initial = state.default_state()
        initial.update(cpus=cpus, devices=list(devices))
        state.save(lay, initial)
        self.template = make_template(self.root / "var/lib/vssim/templates/minimal.tar.gz",
                                      MINIMAL_GUEST)
        self.sbin = self.root / "usr/sbin"
        self.sbin.mkdir(parents=True, exist_ok=True)
        # executables that know their host (no VSSIM_ROOT needed), run by this interpreter
        # (not whatever `python3` PATH finds first: a version manager's shim costs a lot)
        python = shlex.quote(sys.executable)
        for tool in TOOLS:
            wrapper = self.sbin / tool
            wrapper.write_text(f"#!/bin/sh\nVSSIM_ROOT={shlex.quote(str(self.root))}\n"
                               f"export VSSIM_ROOT\nexec {python} "
                               f'{shlex.quote(str(BIN / tool))} "$@"\n')
            wrapper.chmod(0o755)

    # places
    @property
    def config_root(self) -> Path:
        return self.layout.confdir

    @property
    def defaults(self) -> Path:
        return self.layout.defaults

    @property
    def vdirbase_link(self) -> Path:
        return self.layout.defaults / "vdirbase"

    @property
    def vdirbase(self) -> Path:
        return self.layout.default_vserverdir

    @property
    def run_dir(self) -> Path:
        return self.layout.rundir

    @property
    def state_file(self) -> Path:
        return self.layout.state_file

    @property
    def log_file(self) -> Path:
        return self.layout.call_log

    @property
    def faults_file(self) -> Path:
        return self.layout.faults_file

    @property
    def bin_dir(self) -> Path:
        return BIN

    @property
    def template_dir(self) -> Path:
        return self.template.parent

    def tool(self, name: str) -> Path:
        """The executable `name` of this host (a wrapper setting VSSIM_ROOT), for drivers."""
        return self.sbin / name

    def guest_dir(self, name: str) -> Path:
        return self.layout.confdir / name

    def vdir(self, name: str) -> Path:
        """The guest root, following the `vdir` link."""
        return (self.guest_dir(name) / "vdir").resolve()

    # running the tools
    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """os.environ with the simulator's bin first on PATH and VSSIM_ROOT set."""
        env = dict(os.environ)
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        env[ENV_ROOT] = str(self.root)
        env.update(extra or {})
        return env

    def run(self, tool: str, *args: str, input: str | None = None, cwd: Path | None = None,
            env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run the executable `tool` from PATH (as a driver would); stdin is empty by default."""
        return subprocess.run([tool, *args], capture_output=True, text=True, input=input or "",
                              cwd=cwd, env=self.env(env), check=False, timeout=60)

    def call(self, tool: str, *args: str, input: str = "",
             cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """The same as run(), in this process: much faster, for the simulator's own tests."""
        stdout, stderr = io.StringIO(), io.StringIO()
        with contextlib.ExitStack() as stack:
            stack.enter_context(mock.patch.dict(os.environ, {ENV_ROOT: str(self.root)}))
            stack.enter_context(mock.patch.object(sys, "stdin", io.StringIO(input)))
            stack.enter_context(contextlib.redirect_stdout(stdout))
            stack.enter_context(contextlib.redirect_stderr(stderr))
            if cwd is not None:
                stack.enter_context(contextlib.chdir(cwd))
            rc = TOOLS[tool](list(args))
        return subprocess.CompletedProcess([tool, *args], rc, stdout.getvalue(),
                                           stderr.getvalue())

    # what happened
    def calls(self) -> list[dict[str, Any]]:
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines() if line]

    def state(self) -> dict[str, Any]:
        return state.load(self.layout)

    def context_of(self, name: str) -> dict[str, Any] | None:
        """The running context started from guest `name`'s config dir, if any."""
        key = str(self.guest_dir(name))
        for ctx in self.state()["contexts"].values():
            if ctx["cfgdir"] == key:
                return dict(ctx)
        return None

    # shaping the simulated world
    def set_faults(self, faults: list[dict[str, Any]]) -> None:
        self.faults_file.write_text(json.dumps(faults, indent=2) + "\n")

    def set_context(self, xid: int, **fields: Any) -> None:
        """Change a running context, e.g. procs=0 (a stale context) or utime_ms=1234."""
        with state.transaction(self.layout) as st:
            st["contexts"][str(xid)].update(fields)

    def kill_context(self, xid: int) -> None:
        """The context vanishes (a crash): run file, addresses and mounts stay behind."""
        with state.transaction(self.layout) as st:
            del st["contexts"][str(xid)]

    @contextlib.contextmanager
    def frozen_clock(self, when: float) -> Iterator[None]:
        """VSSIM_NOW for in-process calls (pass env={"VSSIM_NOW": ...} to run())."""
        with mock.patch.dict(os.environ, {"VSSIM_NOW": repr(when)}):
            yield
