"""The conformance harness for `lxd`: real busybox containers on a real LXD daemon.

The daemon runs in namespaces of its own, started once for the session (tests/lxd/daemons.py)
with a local preseed (dir pool, a bridge on a private range, no image updates) and a busybox
image built here. Everything the suite checks is read from the host through the `lxc`
client, never through the driver: existence is the instance (one `undefine` kept, marked
undefined, no longer counts), run state its status, boots the lines its init appends to
/boots, data the instance and its volume. The driver gets `match: PREFIX*`, so nothing else
on the daemon is observed or touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.engine.config import Config
from tests.lxd import daemons, support

from .harness import Facts


class LxdHarness:
    name = "lxd"
    allocates_ids = False

    def __init__(self, daemon: daemons.Daemon) -> None:
        self.daemon = daemon
        self.prefix = support.prefix("cf")

    def config(self, state_dir: Path) -> Config:
        return support.config(state_dir, self.daemon, self.prefix)

    def spec(self, name: str, **overrides: Any) -> dict[str, Any]:
        return support.spec(name, **overrides)

    def live_change(self) -> tuple[dict[str, Any], str, Any]:
        return {"memory": "256MiB"}, "memory", "256MiB"

    def restart_change(self) -> tuple[dict[str, Any], str, Any]:
        # init's environment is fixed when it starts (LXD: environment.*)
        return {"init": {"env": {"GREETING": "hello"}}}, "init.env", {"GREETING": "hello"}

    def replace_change(self, spec: dict[str, Any]) -> dict[str, Any]:
        return {**spec, "filesystems": [{**support.BUSYBOX_ROOT, "name": "busybox-next"}]}

    def facts(self, name: str) -> Facts:
        found = support.instance(self.daemon, name)
        if found is None:
            return Facts(exists=False)
        config = found.get("config") or {}
        if config.get("user.reconciler.undefined"):
            return Facts(exists=False, data=True)
        return Facts(exists=True, running=found.get("status") == "Running",
                     boots=support.boots(self.daemon, name), data=True,
                     values={"memory": config.get("limits.memory"),
                             "environment": {k: v for k, v in config.items()
                                             if k.startswith("environment.")}})

    def tamper_stop(self, name: str) -> None:
        self.daemon.lxc("stop", name)

    def make_foreign(self, name: str) -> None:
        support.launch(self.daemon, name)

    def cleanup(self) -> None:
        support.cleanup(self.daemon, self.prefix)


def _factory(tmp: Path) -> LxdHarness | str:
    why = daemons.reason()
    if why:
        return why
    return LxdHarness(daemons.shared_single())


HARNESSES = [("lxd", _factory)]
