"""vzctl start / stop / restart / mount / umount / destroy / status / exec (reference §1.5, §1.9,
§1.10).

Mounting is bookkeeping in the kernel state (plus the VE_ROOT mount point directory); starting
marks the CT running and pushes the effective config values into it; stopping clears them.

`mount` of an already mounted CT prints "Container is already mounted" and exits 0 in both
versions (as the tools' code does); 41 comes from `destroy` of a mounted legacy CT, 40 from
`umount` of an unmounted one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .config import write_legacy
from .console import Exit, err, fail, out, write
from .ct import Ct, runtime_params
from .keys import LEGACY_UBC_STORE_ORDER
from .names import names_of
from .units import INT_MAX, LONG_MAX

_ACTION_SCRIPTS = ("mount", "umount", "premount", "postumount", "start", "stop")


def check_ub(ct: Ct, eff: dict[str, Any]) -> None:
    """Legacy start-time UBC check: exit 28 for missing UBCs, 5 for vswap without kernel support."""
    phys = eff.get("PHYSPAGES")
    rc = 0
    if phys is not None and phys[1] not in (LONG_MAX, INT_MAX):
        for name in ("PHYSPAGES", "SWAPPAGES"):
            if name not in eff:
                err(f"Error: required UB parameter {name.lower()} not set")
                rc = 28
        if not ct.sim.kernel_has_vswap():
            err("Error: detected vswap CT config but kernel does not support vswap")
            err("This means either old kernel or bad config (physpages NOT set to 0:unlimited)")
            rc = 5
    else:
        for name in LEGACY_UBC_STORE_ORDER:
            if name not in ("SWAPPAGES", "AVNUMPROC") and name not in eff:
                err(f"Error: required UB parameter {name.lower()} not set")
                rc = 28
    if rc:
        raise Exit(rc)


def _mount_point(ct: Ct, eff: dict[str, Any]) -> None:
    root = ct.root(eff)
    if root:
        Path(root).mkdir(parents=True, exist_ok=True)


def start(ct: Ct, *, force: bool = False, wait: bool = False,
          eff: dict[str, Any] | None = None) -> int:
    eff = ct.eff if eff is None else eff
    legacy = ct.sim.legacy
    private = ct.private(eff)
    if not legacy and ct.running():
        raise fail(32, "Container is already running")
    if eff.get("DISABLED") is True and not force:
        raise fail(105, "Container start disabled")
    if not private:
        raise fail(23, "VE_PRIVATE is not set")
    if not os.path.exists(private):
        raise fail(43, f"Container private area {private} does not exist")
    if legacy and ct.running():
        raise fail(32, "Container is already running")
    if not ct.root(eff):
        raise fail(22, "VE_ROOT is not set")
    out("Starting container..." if legacy else "Starting Container ...")
    if legacy:
        check_ub(ct, eff)
    if legacy and ct.mounted():
        out("Container is unmounted")  # legacy remounts a mounted CT to clean its mount state
    _mount_point(ct, eff)
    out("Container is mounted")
    params = runtime_params(eff)
    if legacy:
        if params.get("IP_ADDRESS"):
            out(f"Adding IP address(es): {params['IP_ADDRESS']}")
        _cpu_messages(params)
    ct.kernel.update_ct(ct.ctid, mounted=True, running=True, started_at=time.time(),
                        params=params)
    ct.kernel.count_boot(ct.ctid)
    if wait:
        out("Container start in progress, waiting ...")
        out("Container started successfully" if legacy else "Container was started")
    else:
        out("Container start in progress...")
    if legacy and not ct.sim.v3 and "VE_LAYOUT" not in ct.conf.values and ct.conf.exists:
        # vzctl 4.x records the layout of a CT whose config does not name one
        out("Saving VE layout 'simfs' to the VE config file")
        write_legacy(ct.conf_path, [("VE_LAYOUT", "simfs")])
        ct.reload()
    return 0


def _cpu_messages(params: dict[str, str]) -> None:
    if "CPULIMIT" in params:
        out(f"Setting CPU limit: {params['CPULIMIT']}")
    if "CPUUNITS" in params:
        out(f"Setting CPU units: {params['CPUUNITS']}")
    if "CPUS" in params:
        out(f"Setting CPUs: {params['CPUS']}")


def stop(ct: Ct, *, fast: bool = False, skip_umount: bool = False) -> int:
    legacy = ct.sim.legacy
    if legacy and not ct.root():
        raise fail(22, "VE_ROOT is not set")
    if not ct.running():
        err("Unable to stop: container is not running" if legacy else
            "Container is not running")
        return 0
    if legacy:
        out("Killing container ..." if fast else "Stopping container ...")
    else:
        out("Stopping the Container ...")
    ct.kernel.update_ct(ct.ctid, running=False, params={}, started_at=None)
    out("Container was stopped")
    if not skip_umount:
        ct.kernel.update_ct(ct.ctid, mounted=False)
        out("Container is unmounted")
    return 0


def restart(ct: Ct, *, force: bool = False, wait: bool = False, fast: bool = False,
            eff: dict[str, Any] | None = None) -> int:
    out("Restarting container" if ct.sim.legacy else "Restart the Container")
    if ct.running():
        rc = stop(ct, fast=fast)
        if rc:
            return rc
    return start(ct, force=force, wait=wait, eff=eff)


def mount(ct: Ct) -> int:
    legacy = ct.sim.legacy
    root, private = ct.root(), ct.private()
    if not private:
        raise fail(23, "VE_PRIVATE is not set" if legacy else "Container private area is not set")
    if not root:
        raise fail(22, "VE_ROOT is not set")
    if ct.mounted():
        (err if legacy else out)("Container is already mounted")
        return 0
    if not os.path.exists(private):
        raise fail(43, f"Container private area {private} does not exist")
    _mount_point(ct, ct.eff)
    ct.kernel.update_ct(ct.ctid, mounted=True)
    out("Container is mounted")
    return 0


def umount(ct: Ct) -> int:
    if ct.sim.legacy:
        if not ct.mounted():
            raise fail(40, "CT is not mounted")
        if ct.running():
            raise fail(32, "Container is running -- stop it first")
    else:
        if ct.running():
            raise fail(32, "Unable to unmount running Container: stop it first")
        if not ct.mounted():
            raise fail(40, "Container is not mounted")
    ct.kernel.update_ct(ct.ctid, mounted=False)
    out("Container is unmounted")
    return 0


def status(ct: Ct) -> int:
    kernel = ct.kernel.ct(ct.ctid)
    word = "CTID" if ct.sim.legacy else "VEID"
    write(f"{word} {ct.ctid} {'exist' if ct.exists() else 'deleted'} "
          f"{'mounted' if kernel.get('mounted') else 'unmounted'} "
          f"{'running' if kernel.get('running') else 'down'}\n")
    return 0


def destroy(ct: Ct) -> int:
    legacy = ct.sim.legacy
    private, root = ct.private(), ct.root()
    if not private:
        raise fail(23, "VE_PRIVATE is not set")
    if legacy and not root:
        raise fail(22, "VE_ROOT is not set")
    if ct.running():
        if legacy:
            out("Container is currently running. Stop it first.")
            raise Exit(32)
        raise fail(32, "Container is currently running. Stop it before proceeding.")
    if ct.mounted():
        if legacy:
            out("Container is currently mounted (umount first)")
            raise Exit(41)
        umount(ct)
    if not legacy and os.path.basename(os.path.realpath(private)) != ct.ctid:
        raise fail(52, f"Container's private area ({private}) does not resemble a valid "
                       "container directory. Container removal is aborted to avoid "
                       "accidential data loss.")
    out(("Destroying container private area: " if legacy else
         "Destroying Container private area: ") + private)
    if not legacy:
        _remove_names(ct)
    shutil.rmtree(private, ignore_errors=True)
    _retire_config(ct)
    if root:
        try:
            os.rmdir(root)
        except OSError as exc:
            if legacy:
                err(f"Warning: failed to remove {root}: {exc.strerror}")
    out("Container private area was destroyed")
    if legacy:
        _remove_names(ct)
    return 0


def _retire_config(ct: Ct) -> None:
    """Legacy renames CTID.conf to .destroyed; O7 does so only for a regular file and
    unlinks a symlink. Per-CT action scripts are renamed too."""
    conf = ct.conf_path
    if ct.sim.legacy or (conf.is_file() and not conf.is_symlink()):
        if conf.exists() or conf.is_symlink():
            os.replace(conf, conf.with_name(conf.name + ".destroyed"))
    elif conf.is_symlink():
        conf.unlink()
    for suffix in _ACTION_SCRIPTS:
        script = ct.sim.conf_dir / f"{ct.ctid}.{suffix}"
        if script.exists():
            os.replace(script, script.with_name(script.name + ".destroyed"))


def _remove_names(ct: Ct) -> None:
    for link in names_of(ct.sim, ct.ctid):
        link.unlink()


def execute(ct: Ct, action: str, args: list[str]) -> int:
    """exec / exec2 / exec3. The command runs on the host, in the CT's VE_ROOT.

    exec and exec2 join argv with spaces and run it with `bash -c`; exec3 runs argv as is;
    `-` as the command reads the commands from stdin. exec maps a failure to exit 8.
    """
    if not args:
        raise fail(20, "No command to execute by vzctl exec" if not ct.sim.legacy else
                   "Not enough parameters")
    root = ct.root()
    if not root:
        raise fail(22, "VE_ROOT is not set")
    if not ct.running():
        raise fail(31, "Container is not running")
    cwd = root if os.path.isdir(root) else None
    env = {**os.environ, "VZSIM_CTID": ct.ctid}
    stdin = sys.stdin.read() if args == ["-"] else ""
    if action == "exec3":
        cmd = args
    elif args == ["-"]:
        cmd = ["bash"]
    else:
        cmd = ["bash", "-c", " ".join(args)]
    # output goes through sys.stdout/sys.stderr so in-process callers can capture it
    proc = subprocess.run(cmd, cwd=cwd, env=env, input=stdin, capture_output=True, text=True,
                          check=False)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    if action == "exec" and proc.returncode:
        return 8
    return proc.returncode
