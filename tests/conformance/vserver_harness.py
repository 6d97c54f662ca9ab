"""The conformance harness for `vserver`: guests on a simulated util-vserver host (vssim,
tests/sims/vserver), as the VServer kernel cannot run here.

Everything the suite checks is read from the simulated host's own files and state, never
through the driver: existence is the configuration directory `/etc/vservers/NAME`, run state
the simulated kernel's running context for that directory, boots its count of successful
starts (state.json `boots`), data the guest root (`vservers/NAME`), the id the `context` file.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from reconciler import drivers
from reconciler.drivers.base import Driver
from reconciler.engine.config import Config
from tests.sims.vserver.host import VsHost

from .harness import Facts

TOOLS = {"vserver": "vserver", "vserver_stat": "vserver-stat", "vuname": "vuname",
         "vsched": "vsched", "vlimit": "vlimit", "naddress": "naddress", "ip": "ip"}


def _vserver() -> type[Driver]:
    from reconciler.drivers.vserver import VserverDriver
    return VserverDriver


def driver_options(host: VsHost) -> dict[str, Any]:
    """The driver pointed at the simulated host: its config root, templates and tools."""
    return {"confdir": str(host.config_root), "template_dir": str(host.template_dir),
            **{option: str(host.tool(tool)) for option, tool in TOOLS.items()}}


class VserverHarness:
    name = "vserver"
    allocates_ids = True

    def __init__(self, tmp: Path) -> None:
        self.prefix = f"cf{uuid.uuid4().hex[:6]}"
        self.host = VsHost(tmp / "vshost")

    def config(self, state_dir: Path) -> Config:
        # no policy beyond the default: the guests use only their own roots and no host path
        return Config(state_dir=str(state_dir), driver="vserver", driver_chosen=True,
                      drivers={"vserver": driver_options(self.host)})

    def spec(self, name: str, **overrides: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "kind": "Domain", "name": name, "type": "vserver", "hostname": name,
            "filesystems": [{"type": "template", "method": "template", "name": "minimal",
                             "target": "/"}],
        }
        spec.update(overrides)
        return spec

    def live_change(self) -> tuple[dict[str, Any], str, Any]:
        return {"hostname": "renamed"}, "hostname", "renamed"  # vuname, into the running guest

    def restart_change(self) -> tuple[dict[str, Any], str, Any]:
        # util-vserver reads apps/init only at start
        return {"init": {"cmd": "/sbin/init"}}, "init.cmd", "/sbin/init"

    def replace_change(self, spec: dict[str, Any]) -> dict[str, Any]:
        other = {"type": "template", "method": "debootstrap", "name": "bookworm", "target": "/"}
        return {**spec, "filesystems": [other]}

    # ------------------------------------------------------------------ the host's view
    def facts(self, name: str) -> Facts:
        cfg = self.host.guest_dir(name)
        data = (self.host.vdirbase / name).is_dir()
        if not cfg.is_dir():
            return Facts(exists=False, data=data)
        ctx = self.host.context_of(name)
        boots = int(self.host.state()["boots"].get(str(cfg), 0))
        values: dict[str, Any] = {}
        context = cfg / "context"
        if context.is_file():
            values["id"] = int(context.read_text().strip())
        nodename = cfg / "uts" / "nodename"
        if nodename.is_file():
            values["hostname"] = nodename.read_text().rstrip("\n")
        if ctx is not None:
            values["running_hostname"] = ctx["uts"].get("nodename")
        return Facts(exists=True, running=ctx is not None and ctx["procs"] > 0, boots=boots,
                     data=data, values=values)

    def tamper_stop(self, name: str) -> None:
        done = self.host.call("vserver", name, "stop")
        assert done.returncode == 0, done.stderr

    def make_foreign(self, name: str) -> None:
        """A guest an admin built and started by hand: no reconciler sidecar."""
        built = self.host.call("vserver", name, "build", "-m", "template", "--", "-t",
                               str(self.host.template))
        assert built.returncode == 0, built.stderr
        started = self.host.call("vserver", name, "start")
        assert started.returncode == 0, started.stderr

    def cleanup(self) -> None:
        return None  # everything lives under the test's temp dir


def _factory(tmp: Path) -> VserverHarness:
    # the CLI registers the driver by name; until it does, the suite finds it here
    drivers.BUILTIN.setdefault("vserver", _vserver)
    return VserverHarness(tmp)


HARNESSES = [("vserver-sim", _factory)]
