"""`sim` says what the real driver does: for every technology a real driver runs and every
field of the model, the update class `sim` gives (imitating that technology) is the real
driver's, and so is what each refuses. Both read reconciler/rules; this keeps it so."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest

from reconciler.drivers.base import Driver
from reconciler.drivers.lxc import LxcDriver
from reconciler.drivers.sim import SimDriver
from reconciler.model import Domain
from reconciler.model.fields import NESTED, Ref
from reconciler.rules.libvirt import SCHEME_TYPES


def _fields() -> list[str]:
    """Every field name a diff can carry: top-level fields, and nested settings flattened."""
    out = []
    for name, info in Domain.model_fields.items():
        if name in NESTED:
            model = next(a for a in typing.get_args(info.annotation) if a is not type(None))
            out += [f"{name}.{sub}" for sub in model.model_fields]
        else:
            out.append(name)
    return sorted(out)


FIELDS = _fields()
ROOT = {"type": "template", "name": "busybox", "target": "/"}
MOUNTS = [
    (None, None), ([ROOT], [ROOT, {"source": "/srv/a", "target": "/a"}]),
    ([ROOT], [{**ROOT, "name": "download"}]),
    ([{"source": "/srv/r", "target": "/"}], [{"source": "/srv/s", "target": "/"}]),
    ([{"source": "/srv/r", "target": "/"}], [ROOT]),
]
SAMPLES: list[dict[str, Any]] = [
    {"limits": {"numproc": [65, 65]}},
    {"uuid": "8dfd44b3-1e76-d8d3-3515-0a2d98211ea0"},
    {"interfaces": [{"type": "network", "source": "default"}]},
    {"filesystems": [{"type": "template", "name": "debian", "target": "/"}]},
    {"filesystems": [{**ROOT, "options": ["--rootfs=/etc"]}]},
    {"filesystems": [{"source": "/srv/r", "target": "/"}], "dns": {"nameservers": ["1.1.1.1"]}},
    {"init": {"cmd": "/bin/sh", "args": ["-c", "echo hi"]}},
    {"memory": "64MiB", "memtune": {"hard_limit": "128MiB"}},
    {"scheduler": {"fill_rate": 10}},
    {},
]


def _technologies(tmp: Path) -> list[tuple[str, str, Driver]]:
    """(technology, domain type, the real driver running it)."""
    templates = tmp / "templates"
    templates.mkdir(exist_ok=True)
    for name in ("busybox", "download"):
        script = templates / f"lxc-{name}"
        script.write_text("#!/bin/sh\n")
        script.chmod(0o755)
    out: list[tuple[str, str, Driver]] = [
        ("lxc", "lxc", LxcDriver(tmp / "state", lxcpath=str(tmp / "lxc"),
                                 template_dir=str(templates)))]
    try:
        from reconciler.drivers.libvirt import LibvirtDriver
    except ImportError:  # pragma: no cover - libvirt-python is a test dependency
        return out
    for scheme, types in sorted(SCHEME_TYPES.items()):
        out.append((f"libvirt-{scheme}", types[0],
                    LibvirtDriver(tmp / "state", uri=f"{scheme}:///system")))
    return out


@pytest.fixture
def pairs(tmp_path: Path) -> list[tuple[str, str, Driver, SimDriver]]:
    return [(tech, dtype, real, SimDriver(tmp_path / "sim", imitate={dtype: tech}))
            for tech, dtype, real in _technologies(tmp_path)]


def test_every_technology_and_field_has_one_update_class(pairs: Any) -> None:
    ref = Ref("Domain", "g")
    compared = 0
    for tech, dtype, real, sim in pairs:
        for field in FIELDS:
            for old, new in MOUNTS if field == "filesystems" else [(None, None)]:
                want = real.update_class(ref, dtype, field, old, new)
                assert sim.update_class(ref, dtype, field, old, new) == want, (tech, field)
                compared += 1
    assert compared == len(pairs) * (len(FIELDS) + len(MOUNTS) - 1)
    assert {tech for tech, *_ in pairs} >= {"lxc", "libvirt-lxc", "libvirt-qemu", "libvirt-test"}
    by = {tech: (real, dtype) for tech, dtype, real, _ in pairs}
    lxc, _ = by["lxc"]
    # the cases that drifted apart before sim read the drivers' own rules
    assert lxc.update_class(ref, "lxc", "cpu.count") == "live"
    assert lxc.update_class(ref, "lxc", "dns.nameservers") == "live"
    libvirt_lxc, _ = by["libvirt-lxc"]
    assert libvirt_lxc.update_class(ref, "lxc", "hostname") == "live"
    assert libvirt_lxc.update_class(ref, "lxc", "filesystems", [ROOT],
                                    [{**ROOT, "name": "empty"}]) == "recreate"


def test_sim_refuses_exactly_what_the_real_driver_refuses(pairs: Any) -> None:
    for tech, dtype, real, sim in pairs:
        for sample in SAMPLES:
            spec = {"name": "g", "type": dtype, "filesystems": [ROOT], **sample}
            if tech.startswith("libvirt") and dtype not in ("lxc", "openvz", "vz"):
                spec.setdefault("os", {"type": "hvm"})
            canon = Domain.model_validate(spec).model_dump(mode="json", exclude_defaults=True)
            assert sim.check("Domain", dtype, canon) == real.check("Domain", dtype, canon), \
                (tech, sample)
    lxc = next(real for tech, _, real, _ in pairs if tech == "lxc")
    refused = lxc.check("Domain", "lxc", {"name": "g", "type": "lxc", "filesystems": [ROOT],
                                          "limits": {"numproc": [65, 65]}})
    assert [(r.field, r.reason) for r in refused] == [("limits", "not an LXC setting")]
