"""`reconciler convert FILE --from lxc --to yaml|xml`: one LXC config as a spec."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reconciler.cli.native import convert_native
from reconciler.errors import SpecError
from reconciler.model import Spec, canonical
from reconciler.specs.files import load_file

FIXTURES = Path(__file__).parent / "fixtures"


def load_lxc_config(path: Path) -> list[Spec]:
    return convert_native("lxc", path).objects


def convert(path: Path, to: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler", "convert", str(path),
                           "--from", "lxc", "--to", to], capture_output=True, text=True,
                          timeout=60, check=False)


def test_busybox_config_names_its_template() -> None:
    [dom] = load_lxc_config(FIXTURES / "busybox-template.config")
    spec = canonical(dom)
    assert spec["name"] == "c1" and spec["type"] == "lxc"
    assert spec["filesystems"][0] == {"type": "template", "name": "busybox", "target": "/"}


def test_name_comes_from_the_container_directory(tmp_path: Path) -> None:
    cdir = tmp_path / "lxc" / "box7"
    cdir.mkdir(parents=True)
    (cdir / "config").write_text("lxc.uts.name = other\nlxc.rootfs.path = dir:"
                                 f"{cdir}/rootfs\n")
    [dom] = load_lxc_config(cdir / "config")
    assert dom.name == "box7" and dom.hostname == "other"


def test_legacy_keys_convert() -> None:
    [dom] = load_lxc_config(FIXTURES / "legacy.config")
    spec = canonical(dom)
    assert spec["name"] == "oldbox"
    assert spec["interfaces"] == [{"type": "bridge", "source": "lxcbr0",
                                   "mac": "00:16:3e:aa:bb:cc", "ip": ["10.0.3.5/24"]}]
    assert spec["memory"] == "256MiB"


def test_unreadable_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError):
        load_lxc_config(tmp_path / "missing.config")
    bad = tmp_path / "x y.conf"   # no usable name anywhere
    bad.write_text("lxc.tty.max = 1\n")
    with pytest.raises(SpecError, match="no container name"):
        load_lxc_config(bad)


@pytest.mark.parametrize("fixture", ["busybox-template.config", "handmade.config",
                                     "legacy.config"])
def test_cli_yaml_and_xml_mean_the_same(fixture: str, tmp_path: Path) -> None:
    expected = canonical(load_lxc_config(FIXTURES / fixture)[0])
    as_yaml = convert(FIXTURES / fixture, "yaml")
    assert as_yaml.returncode == 0, as_yaml.stderr
    assert yaml.safe_load(as_yaml.stdout)["name"] == expected["name"]
    as_xml = convert(FIXTURES / fixture, "xml")
    assert as_xml.returncode == 0, as_xml.stderr
    for suffix, text in ((".yaml", as_yaml.stdout), (".xml", as_xml.stdout)):
        path = tmp_path / f"out{suffix}"
        path.write_text(text)
        loaded = load_file(path)
        assert loaded.ok, loaded.errors
        [(obj, _)] = loaded.objects
        assert canonical(obj) == expected
