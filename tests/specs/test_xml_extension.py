"""Fields libvirt has no element for travel in `<rc:spec>`: a spec with every engine field
(restart policy, window, health check, placement) is the same spec after XML and back."""

from __future__ import annotations

from pathlib import Path

from reconciler.model import Domain, canonical
from reconciler.specs.convert import to_xml_text
from reconciler.specs.files import load_file

SPEC = {"kind": "Domain", "name": "web", "type": "lxc", "memory": "64MiB",
        "restart": "defer", "window": "nightly", "target": "@ssd", "allow_move": True,
        "health": {"tcp": 8080, "address": "192.0.2.5", "timeout": 30},
        "filesystems": [{"type": "template", "name": "busybox", "target": "/"}]}


def test_engine_fields_survive_xml(tmp_path: Path) -> None:
    want = canonical(Domain.model_validate(SPEC))
    for health in (SPEC["health"], {"command": ["/bin/check", "--quick"]}):
        spec = canonical(Domain.model_validate({**SPEC, "health": health}))
        path = tmp_path / "web.xml"
        path.write_text(to_xml_text(Domain.model_validate(spec)))
        assert "<rc:restart>defer</rc:restart>" in path.read_text()
        loaded = load_file(path)
        assert loaded.ok, loaded.errors
        [(obj, _)] = loaded.objects
        assert canonical(obj) == spec
    assert want["health"] == {"tcp": 8080, "address": "192.0.2.5", "timeout": 30}
