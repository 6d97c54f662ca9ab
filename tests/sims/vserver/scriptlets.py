"""Scriptlets of a start: `scripts/<flavor>` and `scripts/<flavor>.d/*` (execScriptlets).

For each flavor util-vserver looks in the guest's `scripts/`, then in `.defaults/scripts/`;
once the guest's own directory had a scriptlet, the defaults are skipped unless an in-shell
scriptlet set DONT_SKIP_DEFAULTS (doc/configuration.xml, vserver.functions execScriptlets).
An executable scriptlet runs as a program with the arguments FLAVOR NAME; any other readable
regular file is sourced by the start script's shell (`_sourceWrap`, `. FILE FLAVOR NAME`).

Simulation: in-shell scriptlets are sourced by bash, given VSERVER_DIR, VSERVER_NAME and
_NADDRESS (=naddress) and the VSERVER_EXTRA_CMDS array so far; of what they set the simulator
keeps DONT_SKIP_DEFAULTS and VSERVER_EXTRA_CMDS (the commands the start chain runs in the new
context; lifecycle.py runs naddress ones and fails the start on any other program, as not
simulated). Their output goes to stderr. A scriptlet failing (exit status, or a sourced one
returning non-zero) fails the start, as `set -e` does. The start flavors initialize,
prepre-start and pre-start run before the context is made and post-start after it; the stop
flavors are not simulated.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .paths import ENV_ROOT, Layout

SOURCE = r"""
set -e
VSERVER_DIR=$1; VSERVER_NAME=$2; _NADDRESS=$3; script=$4; flavor=$5; shift 5
VSERVER_EXTRA_CMDS=( "$@" )
DONT_SKIP_DEFAULTS=
_sourceWrap() { local vdir name flavor start i already_handled base; . "$@"; }
_sourceWrap "$script" "$flavor" "$VSERVER_NAME" >&2
printf '%s\0' "$DONT_SKIP_DEFAULTS" "${VSERVER_EXTRA_CMDS[@]}"
"""


@dataclass
class Outcome:
    rc: int = 0
    extra_cmds: list[str] = field(default_factory=list)


def _candidates(base: Path, flavor: str) -> list[Path]:
    found = [base / flavor]
    directory = base / f"{flavor}.d"
    if directory.is_dir():
        found += sorted(directory.iterdir(), key=lambda p: p.name.encode())
    return [p for p in found if p.is_file() and not p.is_symlink() and os.access(p, os.R_OK)]


def run(layout: Layout, cfgdir: Path, name: str, flavor: str, cwd: Path,
        extra_cmds: list[str]) -> Outcome:
    """execScriptlets CFGDIR NAME FLAVOR, from `cwd`; extra_cmds is VSERVER_EXTRA_CMDS so far."""
    outcome = Outcome(0, list(extra_cmds))
    env = {**os.environ, ENV_ROOT: str(layout.root)}
    for base in (cfgdir / "scripts", layout.defaults / "scripts"):
        handled, dont_skip = False, False
        for script in _candidates(base, flavor):
            handled = True
            if os.access(script, os.X_OK):
                done = subprocess.run([str(script), flavor, name], cwd=cwd, env=env,
                                      capture_output=True, text=True, check=False)
                sys.stderr.write(done.stdout + done.stderr)
                if done.returncode != 0:
                    outcome.rc = done.returncode
                    return outcome
                continue
            done = subprocess.run(["bash", "-c", SOURCE, "bash", str(cfgdir), name, "naddress",
                                   str(script), flavor, *outcome.extra_cmds], cwd=cwd, env=env,
                                  capture_output=True, check=False)
            sys.stderr.write(done.stderr.decode("utf-8", "replace"))
            if done.returncode != 0:
                outcome.rc = done.returncode
                return outcome
            values = done.stdout.decode("utf-8", "surrogateescape").split("\0")[:-1]
            dont_skip = dont_skip or bool(values[0])
            outcome.extra_cmds = values[1:]
        if handled and not dont_skip:
            break
    return outcome
