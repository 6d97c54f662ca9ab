"""`VzHost`: a fresh simulated OpenVZ host for a test, and ways to run vzctl/vzlist on it.

Usage::

    host = VzHost(tmp_path, version="4")           # "3", "4" (default) or "7"
    r = host.call("vzctl", "create", "101", "--ostemplate", "centos-7-x86_64")  # in-process
    r = host.run("vzlist", "-a", "-j")             # the real executables on PATH
    assert r.returncode == 0 and host.state()["cts"] == {}
    subprocess.run(["vzctl", "start", "101"], env=host.env())   # how a driver runs them

What the constructor lays out below `root` (paths the real tools have compiled in are
re-rooted there; paths from config values are absolute host paths below `root` too):

* `etc/vz/vz.conf`: LOCKDIR, DUMPDIR, TEMPLATE, VE_ROOT=`<root>/vz/root/$VEID`,
  VE_PRIVATE=`<root>/vz/private/$VEID`, CONFIGFILE (`vswap-256m` for 4, `basic` for 3 and 7),
  DEF_OSTEMPLATE=`centos-7-x86_64`, VE_LAYOUT=simfs, DISK_QUOTA=yes, IPV6=yes.
* `etc/vz/conf/` with `0.conf`, the legacy samples `ve-basic.conf-sample` and
  `ve-vswap-256m.conf-sample` (versions 3, 4) or the O7 `ve-basic.conf-sample` (version 7).
  For version 3 the real directory is `etc/sysconfig/vz-scripts` and `etc/vz/conf` is a
  symlink to it, as the vzctl RPM made it.
* `etc/vz/names/` (CT name symlinks), `vz/template/cache/centos-7-x86_64.tar.gz` (a small
  tarball with `sbin/init` and `etc/`), `vz/private`, `vz/root`, `vz/lock`.
* `proc/vz/vswap` when `vswap=True` (the kernel supports vswap), `proc/vz/state.json` (the
  kernel state, see state.py), `var/log/vzsim.jsonl` (the call log, see calllog.py).

`env()` gives PATH (with the simulator's bin first), VZSIM_ROOT, VZSIM_VERSION and
VZSIM_NCPUS. `calls()` reads the call log, `state()` the kernel state, `add_fault()` writes a
fault for the next matching call, `hold_lock(ctid)` holds a CT's vzctl lock as another process
would.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.sims.openvz.paths import Sim

BIN_DIR = Path(__file__).resolve().parent / "bin"
OSTEMPLATE = "centos-7-x86_64"

# Values from the vzctl 4.x etc/conf samples (reference §1.4); the comments are ours.
LEGACY_BASIC_SAMPLE = """\
# Sample CT config: every UBC set in barrier:limit form (pre-vswap kernels).

# UBC parameters (barrier:limit)
KMEMSIZE="14372700:14790164"
LOCKEDPAGES="2048:2048"
PRIVVMPAGES="65536:69632"
SHMPAGES="21504:21504"
NUMPROC="240:240"
PHYSPAGES="0:unlimited"
VMGUARPAGES="33792:unlimited"
OOMGUARPAGES="26112:unlimited"
NUMTCPSOCK="360:360"
NUMFLOCK="188:206"
NUMPTY="16:16"
NUMSIGINFO="256:256"
TCPSNDBUF="1720320:2703360"
TCPRCVBUF="1720320:2703360"
OTHERSOCKBUF="1126080:2097152"
DGRAMRCVBUF="262144:262144"
NUMOTHERSOCK="360:360"
DCACHESIZE="3409920:3624960"
NUMFILE="9312:9312"
AVNUMPROC="180:180"
NUMIPTENT="128:128"

# Disk quota (softlimit:hardlimit)
DISKSPACE="2G:2.2G"
DISKINODES="131072:144179"
QUOTATIME="0"

# CPU fair scheduler weight
CPUUNITS="1000"

NETFILTER="stateless"
"""

LEGACY_VSWAP_256M_SAMPLE = """\
# Sample CT config for VSwap kernels (042stab042 or later): 256 MiB RAM, 512 MiB swap.

# RAM
PHYSPAGES="0:256M"

# Swap
SWAPPAGES="0:512M"

# Disk quota (softlimit:hardlimit)
DISKSPACE="2G:2.2G"
DISKINODES="131072:144179"
QUOTATIME="0"

# CPU fair scheduler weight
CPUUNITS="1000"

NETFILTER="stateless"
"""

# Values from the OpenVZ 7 etc/ve-basic.conf-sample (reference §1.4).
O7_BASIC_SAMPLE = """\
# Sample config of a basic Container (OpenVZ 7).

VERSION="2"

ONBOOT="yes"

PHYSPAGES="65536:65536"
SWAPPAGES="65536"

CPUUNITS="1000"

NETFILTER="full"

DISKSPACE="10485760:10485760"
DISKINODES="655360:655360"

QUOTATIME="0"
IP_ADDRESS="0.0.0.0"

PLATFORM="linux"
NUMMEMORYSUBGROUPS="512"
"""

HOST_CONF = """\
# Host (CT 0) settings; not a container.
ONBOOT="no"

# UBC parameters (barrier:limit)
OOMGUARPAGES="unlimited:unlimited"
"""

INIT_SCRIPT = "#!/bin/sh\nexec sleep infinity\n"


class VzHost:
    """A simulated OpenVZ host under `root` (see the module docstring for the layout)."""

    def __init__(self, root: Path, version: str = "4", *, vswap: bool = True,
                 ncpus: int = 4) -> None:
        if version not in ("3", "4", "7"):
            raise ValueError(f"version must be '3', '4' or '7', not {version!r}")
        self.root = Path(root).resolve()
        self.version = version
        self.ncpus = ncpus
        self._layout(vswap)

    # ------------------------------------------------------------ paths
    # the layout is the simulator's own (paths.Sim): one home for where things are

    @property
    def sim(self) -> Sim:
        return Sim(self.root, self.version, self.ncpus)

    @property
    def etc_vz(self) -> Path:
        return self.sim.etc_vz

    @property
    def vz_conf(self) -> Path:
        return self.sim.vz_conf

    @property
    def conf_dir(self) -> Path:
        """`etc/vz/conf` (a symlink to `etc/sysconfig/vz-scripts` for version 3)."""
        return self.sim.conf_dir

    @property
    def names_dir(self) -> Path:
        return self.sim.names_dir

    @property
    def template_dir(self) -> Path:
        return self.root / "vz" / "template"

    @property
    def lockdir(self) -> Path:
        return self.sim.default_lockdir

    @property
    def state_file(self) -> Path:
        return self.sim.state_file

    @property
    def log_file(self) -> Path:
        return self.sim.log_file

    @property
    def faults_file(self) -> Path:
        return self.sim.faults_file

    def conf(self, ctid: str | int) -> Path:
        return self.conf_dir / f"{ctid}.conf"

    def private(self, ctid: str | int) -> Path:
        return self.root / "vz" / "private" / str(ctid)

    def ve_root(self, ctid: str | int) -> Path:
        return self.root / "vz" / "root" / str(ctid)

    # ------------------------------------------------------------ layout

    def _layout(self, vswap: bool) -> None:
        legacy = self.version != "7"
        if self.version == "3":
            real = self.root / "etc" / "sysconfig" / "vz-scripts"
            real.mkdir(parents=True, exist_ok=True)
            self.etc_vz.mkdir(parents=True, exist_ok=True)
            if not self.conf_dir.is_symlink():
                self.conf_dir.symlink_to("../sysconfig/vz-scripts")
        else:
            self.conf_dir.mkdir(parents=True, exist_ok=True)
        self.names_dir.mkdir(parents=True, exist_ok=True)
        for sub in ("private", "root", "lock", "dump", "template/cache"):
            (self.root / "vz" / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "proc" / "vz").mkdir(parents=True, exist_ok=True)
        (self.root / "var" / "log").mkdir(parents=True, exist_ok=True)
        configfile = "vswap-256m" if self.version == "4" else "basic"
        root = self.root
        self.vz_conf.write_text(
            "## Global parameters (simulated host)\n"
            "VIRTUOZZO=yes\n"
            f"LOCKDIR={root}/vz/lock\n"
            f"DUMPDIR={root}/vz/dump\n"
            "VE0CPUUNITS=1000\n"
            "\n## Disk quota parameters\n"
            "DISK_QUOTA=yes\n"
            "\n## Template parameters\n"
            f"TEMPLATE={root}/vz/template\n"
            "\n## Defaults for containers\n"
            f"VE_ROOT={root}/vz/root/$VEID\n"
            f"VE_PRIVATE={root}/vz/private/$VEID\n"
            f'CONFIGFILE="{configfile}"\n'
            f'DEF_OSTEMPLATE="{OSTEMPLATE}"\n'
            "VE_LAYOUT=simfs\n"
            'IPV6="yes"\n')
        (self.conf_dir / "0.conf").write_text(HOST_CONF)
        if legacy:
            (self.conf_dir / "ve-basic.conf-sample").write_text(LEGACY_BASIC_SAMPLE)
            (self.conf_dir / "ve-vswap-256m.conf-sample").write_text(LEGACY_VSWAP_256M_SAMPLE)
        else:
            (self.conf_dir / "ve-basic.conf-sample").write_text(O7_BASIC_SAMPLE)
        self.write_template(OSTEMPLATE)
        self.write_wrappers()
        flag = self.root / "proc" / "vz" / "vswap"
        if vswap:
            flag.touch()
        elif flag.exists():
            flag.unlink()

    def write_template(self, name: str) -> Path:
        """A small OS template tarball in TEMPLATE/cache."""
        path = self.template_dir / "cache" / f"{name}.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            for member, text, mode in (
                ("sbin/init", INIT_SCRIPT, 0o755),
                ("etc/redhat-release", "CentOS Linux release 7.9.2009 (Core)\n", 0o644),
                ("etc/hostname", "localhost\n", 0o644),
                ("etc/resolv.conf", "", 0o644),
            ):
                data = text.encode()
                info = tarfile.TarInfo(member)
                info.size, info.mode = len(data), mode
                tar.addfile(info, io.BytesIO(data))
            for directory in ("root", "tmp", "var"):
                info = tarfile.TarInfo(directory)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
        return path

    # ------------------------------------------------------------ running the tools

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env["PATH"] = f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}"
        env["VZSIM_ROOT"] = str(self.root)
        env["VZSIM_VERSION"] = self.version
        env["VZSIM_NCPUS"] = str(self.ncpus)
        return env

    @property
    def bin_dir(self) -> Path:
        """`<root>/usr/sbin`: `vzctl` and `vzlist` wrappers bound to this host (see
        `write_wrappers`), so a program can run them by path or PATH without VZSIM_* in its
        environment, and several hosts can be used from one process."""
        return self.root / "usr" / "sbin"

    def tool(self, name: str) -> str:
        """The absolute path of this host's `vzctl` or `vzlist` wrapper."""
        return str(self.bin_dir / name)

    def write_wrappers(self) -> None:
        """Executables that run the simulator for this host, whatever the caller's
        environment: they set VZSIM_ROOT/VZSIM_VERSION/VZSIM_NCPUS themselves."""
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        repo = BIN_DIR.parents[3]
        for tool in ("vzctl", "vzlist"):
            path = self.bin_dir / tool
            path.write_text(
                f"#!{sys.executable}\n"
                "import os, sys\n"
                f"sys.path.insert(0, {str(repo)!r})\n"
                f"os.environ.update(VZSIM_ROOT={str(self.root)!r}, "
                f"VZSIM_VERSION={self.version!r}, VZSIM_NCPUS={str(self.ncpus)!r})\n"
                f"from tests.sims.openvz.{tool} import main\n"
                "sys.exit(main())\n")
            path.chmod(0o755)

    def run(self, tool: str, *args: str, input: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run the executable `tool` (vzctl or vzlist) found first on the simulator's PATH."""
        return subprocess.run([tool, *args], env=self.env(), input=input, capture_output=True,
                              text=True, timeout=timeout, check=False)

    def call(self, tool: str, *args: str, input: str = "") -> subprocess.CompletedProcess[str]:
        """Like run(), but in this process (fast); same result shape."""
        from . import vzctl, vzlist

        mains = {"vzctl": vzctl.main, "vzlist": vzlist.main}
        stdout, stderr = io.StringIO(), io.StringIO()
        saved_stdin = sys.stdin
        sys.stdin = io.StringIO(input)
        try:
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                rc = mains[tool](list(args), self.env())
        finally:
            sys.stdin = saved_stdin
        return subprocess.CompletedProcess([tool, *args], rc, stdout.getvalue(),
                                           stderr.getvalue())

    def create_ct(self, ctid: str | int, *args: str) -> subprocess.CompletedProcess[str]:
        """`vzctl create CTID --ostemplate centos-7-x86_64 [args]`, asserting success."""
        result = self.call("vzctl", "create", str(ctid), "--ostemplate", OSTEMPLATE, *args)
        if result.returncode != 0:
            raise AssertionError(f"create {ctid} failed: {result.stderr}")
        return result

    # ------------------------------------------------------------ inspecting

    def calls(self) -> list[dict[str, Any]]:
        """The call log: [{"tool", "argv", "rc"}, ...] in call order."""
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines() if line]

    def state(self) -> dict[str, Any]:
        """The kernel state ({"cts": {ctid: {"mounted", "running", "params", ...}}})."""
        if not self.state_file.exists():
            return {"cts": {}}
        data: dict[str, Any] = json.loads(self.state_file.read_text())
        return data

    def add_fault(self, *, command: str | None, rc: int, message: str = "",
                  ctid: str | None = None, times: int | None = 1,
                  tool: str = "vzctl") -> None:
        """Make the next matching call print `message` and exit `rc` (see calllog.py)."""
        faults = json.loads(self.faults_file.read_text()) if self.faults_file.exists() else []
        faults.append({"tool": tool, "command": command, "ctid": ctid, "rc": rc,
                       "message": message, "times": times})
        self.faults_file.write_text(json.dumps(faults, indent=2) + "\n")

    @contextlib.contextmanager
    def hold_lock(self, ctid: str | int) -> Iterator[None]:
        """Hold the CT's vzctl lock (flock on LOCKDIR/CTID.lck) while the block runs."""
        self.lockdir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lockdir / f"{ctid}.lck", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
