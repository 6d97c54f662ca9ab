"""What the lxd tests, the conformance harness and the bench share: the driver made by name
(`reconciler.drivers` may not list it yet), a config pointing at one daemon, the host's own
view of an instance (through the `lxc` client, never the driver), and cleanup by prefix."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from reconciler import drivers
from reconciler.drivers.base import Driver
from reconciler.engine.config import Config
from reconciler.engine.plan import Plan
from reconciler.engine.policy import Policy
from tests.lxd.daemons import Daemon

BUSYBOX_ROOT = {"type": "template", "name": "busybox", "target": "/"}
# LXD's own default map on these hosts is larger; this one is what the conformance suite uses
UNPRIVILEGED = [{"kind": "uid", "start": 0, "target": 100000, "count": 65536},
                {"kind": "gid", "start": 0, "target": 100000, "count": 65536}]


def _lxd() -> type[Driver]:
    from reconciler.drivers.lxd import LxdDriver
    return LxdDriver


def register() -> None:
    """Make `--driver lxd` known to this process (a no-op once the project lists it)."""
    drivers.BUILTIN.setdefault("lxd", _lxd)


def prefix(tag: str = "t") -> str:
    """A name prefix unique to one test: LXD names start with a letter, no '_' or '.'."""
    return f"rc{tag}{uuid.uuid4().hex[:6]}"


def options(daemon: Daemon, name_prefix: str, **more: Any) -> dict[str, Any]:
    return {"remote": daemon.remote, "match": f"{name_prefix}*", **more}


def config(state_dir: Path, daemon: Daemon, name_prefix: str, *,
           policy: Policy | None = None, **more: Any) -> Config:
    register()
    return Config(state_dir=str(state_dir), driver="lxd", driver_chosen=True,
                  drivers={"lxd": options(daemon, name_prefix, **more)},
                  policy=policy or Policy(state_dir=str(state_dir)))


def spec(name: str, **overrides: Any) -> dict[str, Any]:
    """A container as the tests make them: busybox root, unprivileged, 128 MiB."""
    return {"kind": "Domain", "name": name, "type": "lxc", "memory": "128MiB",
            "idmap": UNPRIVILEGED, "filesystems": [BUSYBOX_ROOT], **overrides}


def instance(daemon: Daemon, name: str) -> dict[str, Any] | None:
    """The instance as LXD has it (None: no such instance)."""
    found = daemon.lxc("query", f"/1.0/instances/{name}", check=False)
    if found.returncode != 0:
        return None
    data = json.loads(found.stdout)
    return data if isinstance(data, dict) else None


def boots(daemon: Daemon, name: str) -> int:
    """How many times the busybox init started (a line in /boots per start)."""
    found = daemon.lxc("file", "pull", f"{name}/boots", "-", check=False)
    return len(found.stdout.split()) if found.returncode == 0 else 0


def names(daemon: Daemon, kind: str, name_prefix: str) -> list[str]:
    listed = daemon.query(f"/1.0/{kind}") or []
    return [url.rsplit("/", 1)[-1] for url in listed
            if url.rsplit("/", 1)[-1].startswith(name_prefix)]


def cleanup(daemon: Daemon, name_prefix: str) -> None:
    """Delete every instance and network named PREFIX*, whatever state they are in."""
    for name in names(daemon, "instances", name_prefix):
        daemon.lxc("delete", "--force", name, check=False)
    for name in names(daemon, "networks", name_prefix):
        daemon.lxc("network", "delete", name, check=False)


def launch(daemon: Daemon, name: str, *args: str) -> None:
    """An instance made by hand, as a person would (`lxc launch`)."""
    daemon.lxc("launch", "busybox", name, "--quiet", *args)


def actions(plan: Plan) -> dict[str, str]:
    return {o.ref.name: o.action for o in plan.objects if o.action != "noop"}


def kinds(plan: Plan, name: str) -> list[str]:
    return [s.kind for s in plan.steps if s.ref.name == name]


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The reconciler command line, with the lxd driver registered."""
    return subprocess.run([sys.executable, "-m", "tests.lxd.support", "--log-format", "json",
                           *args], capture_output=True, text=True, timeout=timeout,
                          check=False, cwd=Path(__file__).resolve().parents[2])


if __name__ == "__main__":
    register()
    from reconciler.cli import main

    sys.exit(main())
