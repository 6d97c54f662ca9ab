"""Conformance harnesses for the `openvz` driver on the vzctl/vzlist simulators
(tests/sims/openvz): legacy vzctl 4.x and OpenVZ 7, one simulated host per test.

Everything the suite checks is read from the simulated host, never through the driver: which
CT a name is (the NAME of each `<conf_dir>/<CTID>.conf`, read with the simulator's own parser),
whether it runs (the simulated kernel's state.json), how often it booted (the kernel's `boots`
counter), its data (the private area), and values (CTID, PHYSPAGES, HOSTNAME). Disturbing the
host goes through the simulator's own vzctl.

The driver runs the simulator's executables by absolute path (`VzHost.tool`), so nothing of the
test process's environment is changed. Beyond the default host policy this harness needs
nothing.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from reconciler.engine.config import Config
from tests.sims.openvz.config import read_conf
from tests.sims.openvz.host import OSTEMPLATE, VzHost
from tests.sims.openvz.paths import Sim
from tests.sims.openvz.values import Ctx

from .harness import Facts

OTHER_TEMPLATE = "debian-11-x86_64"


def register() -> None:
    """Make `openvz` loadable by name for these tests (the lead registers it for real)."""
    from reconciler.drivers import BUILTIN
    from reconciler.drivers.openvz import OpenvzDriver

    BUILTIN.setdefault("openvz", lambda: OpenvzDriver)


class OpenvzHarness:
    allocates_ids = True

    def __init__(self, tmp: Path, version: str) -> None:
        self.name = f"openvz-{'legacy' if version != '7' else '7'}"
        self.prefix = f"cf{uuid.uuid4().hex[:6]}"
        self.host = VzHost(tmp / "vzhost", version)
        self.host.write_template(OTHER_TEMPLATE)
        self.sim = Sim(self.host.root, version)
        register()

    def config(self, state_dir: Path) -> Config:
        return Config(state_dir=str(state_dir), driver="openvz", driver_chosen=True,
                      drivers={"openvz": {"vzctl": self.host.tool("vzctl"),
                                          "vzlist": self.host.tool("vzlist"),
                                          "conf_dir": str(self.host.conf_dir),
                                          "vz_conf": str(self.host.vz_conf)}})

    def spec(self, name: str, **overrides: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "kind": "Domain", "name": name, "type": "openvz", "memory": "128MiB",
            "hostname": name,
            "filesystems": [{"type": "template", "name": OSTEMPLATE, "target": "/"}],
        }
        spec.update(overrides)
        return spec

    def live_change(self) -> tuple[dict[str, Any], str, Any]:
        return {"memory": "256MiB"}, "memory", "256MiB"

    def restart_change(self) -> tuple[dict[str, Any], str, Any]:
        # vzctl pushes nearly everything live; second-level quota on/off needs a restart
        return {"quota": {"ugid_limit": 100}}, "quota.ugid_limit", 100

    def replace_change(self, spec: dict[str, Any]) -> dict[str, Any]:
        return {**spec, "filesystems": [{"type": "template", "name": OTHER_TEMPLATE,
                                         "target": "/"}]}

    # ------------------------------------------------------------------ the host's view
    def _ctid(self, name: str) -> tuple[str, dict[str, Any]] | None:
        for path in sorted(self.host.conf_dir.glob("*.conf")):
            ctid = path.stem
            if not ctid.isdigit() or ctid == "0":
                continue
            conf = read_conf(path, Ctx(ctid, self.sim.legacy), warn=False)
            if conf.values.get("NAME") == name or (ctid == name and not conf.values.get("NAME")):
                return ctid, dict(conf.values)
        return None

    def facts(self, name: str) -> Facts:
        found = self._ctid(name)
        if found is None:
            kept = [p for p in (self.host.root / "vz" / "private").iterdir()
                    if (self.host.conf_dir / f"{p.name}.conf.undefined").exists()
                    and self._kept_name(p.name) == name]
            return Facts(exists=False, data=bool(kept))
        ctid, values = found
        state = self.host.state()
        kernel = state["cts"].get(ctid, {})
        phys = values.get("PHYSPAGES")
        return Facts(exists=True, running=bool(kernel.get("running")),
                     boots=int(state.get("boots", {}).get(ctid, 0)),
                     data=self.host.private(ctid).is_dir(),
                     values={"id": int(ctid), "hostname": values.get("HOSTNAME"),
                             "physpages": list(phys) if phys else None})

    def _kept_name(self, ctid: str) -> str | None:
        path = self.host.conf_dir / f"{ctid}.conf.undefined"
        conf = read_conf(path, Ctx(ctid, self.sim.legacy), warn=False)
        name = conf.values.get("NAME")
        return str(name) if name else None

    def tamper_stop(self, name: str) -> None:
        found = self._ctid(name)
        assert found is not None
        assert self.host.call("vzctl", "stop", found[0]).returncode == 0

    def make_foreign(self, name: str) -> None:
        """A container made by hand, as an admin would: no reconciler sidecar."""
        ctid = "555"
        self.host.create_ct(ctid, "--name", name)
        assert self.host.call("vzctl", "start", ctid).returncode == 0

    def cleanup(self) -> None:
        return None  # the host lives in the test's temp dir


HARNESSES = [
    ("openvz-legacy", lambda tmp: OpenvzHarness(tmp, "4")),
    ("openvz-7", lambda tmp: OpenvzHarness(tmp, "7")),
]
