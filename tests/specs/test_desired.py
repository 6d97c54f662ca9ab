"""desired/: the example specs validate, and each converts to the other form and back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from specs_support import DESIRED, REPO, SCHEMAS, run_cli

from reconciler.model import Domain, Network
from reconciler.specs.convert import to_xml_text, to_yaml
from reconciler.specs.files import Loaded, load_bytes, load_file
from reconciler.specs.loader import load_paths

FILES = sorted(p for p in DESIRED.iterdir() if p.suffix in (".xml", ".yaml", ".yml"))


def the_object(path: Path) -> Domain | Network:
    loaded = load_file(path)
    assert loaded.ok, loaded.errors
    [(obj, _line)] = loaded.objects
    assert isinstance(obj, Domain | Network)
    return obj


def test_both_forms_are_present() -> None:
    suffixes = {p.suffix for p in FILES}
    assert ".xml" in suffixes and ".yaml" in suffixes
    assert len(FILES) >= 4


def test_validate_exits_zero() -> None:
    done = run_cli("validate", "desired/")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(FILES)} files, {len(FILES)} objects: valid" in done.stdout


def test_validate_with_libvirt_schema_exits_zero() -> None:
    done = run_cli("validate", "--schema", str(SCHEMAS), "desired/")
    assert done.returncode == 0, done.stdout + done.stderr


def test_validate_json_report() -> None:
    done = run_cli("validate", "--format", "json", "desired/")
    assert done.returncode == 0
    report = json.loads(done.stdout)
    assert report == {"valid": True, "files": len(FILES), "objects": len(FILES), "errors": []}


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_other_form_and_back_is_lossless(path: Path) -> None:
    obj = the_object(path)
    if path.suffix == ".xml":
        other = load_bytes(to_yaml([obj]).encode(), "other.yaml")
    else:
        other = load_bytes(to_xml_text(obj).encode(), "other.xml")
    assert other.ok, other.errors
    converted = other.objects[0][0]
    assert converted == obj
    # and back into the original form
    back_text = to_xml_text(converted) if path.suffix == ".xml" else to_yaml([converted])
    back = load_bytes(back_text.encode(), f"back{path.suffix}")
    assert back.ok and back.objects[0][0] == obj


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
@pytest.mark.parametrize("to", ["yaml", "xml"])
def test_convert_command(path: Path, to: str, tmp_path: Path) -> None:
    done = run_cli("convert", str(path), "--to", to)
    assert done.returncode == 0, done.stderr
    out = tmp_path / f"{path.stem}.{to}"
    out.write_text(done.stdout)
    assert the_object(out) == the_object(path)


def test_convert_refuses_a_broken_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Domain\nname: x\ntype: lxc\nmemory: lots\n")
    done = run_cli("convert", str(bad), "--to", "xml")
    assert done.returncode == 1
    assert f"{bad}:4:" in done.stderr and "memory" in done.stderr
    assert done.stdout == ""


def test_convert_several_objects_to_xml_is_refused(tmp_path: Path) -> None:
    two = tmp_path / "two.yaml"
    two.write_text("name: a\ntype: lxc\n---\nname: b\ntype: lxc\n")
    assert run_cli("convert", str(two), "--to", "yaml").returncode == 0
    done = run_cli("convert", str(two), "--to", "xml")
    assert done.returncode == 1 and "2 objects" in done.stderr


def test_the_examples_say_what_the_proposals_said() -> None:
    specs = load_paths([DESIRED])
    assert not specs.errors
    by_name = {e.spec.name: e.spec for e in specs.objects.values()}

    vserver = by_name["testvm"]
    assert isinstance(vserver, Domain) and vserver.type == "vserver" and vserver.id == 2000
    assert vserver.scheduler is not None and vserver.scheduler.cpus[1].fill_rate2 == 250
    assert vserver.root is not None and vserver.root.method == "debootstrap"
    assert vserver.arch == "i586" and vserver.hostname == "testvm"
    assert [(r.start, r.end) for nic in vserver.interfaces for r in nic.ranges] == \
        [("198.51.100.16", "198.51.100.31")]
    assert [nic.host_dev for nic in vserver.interfaces if nic.ip] == ["eth0", None]

    openvz = by_name["test_vm"]
    assert isinstance(openvz, Domain) and openvz.type == "openvz" and openvz.id == 105
    assert openvz.hostname == "fedora105" and openvz.profile == "vps.basic"
    assert openvz.root is not None and openvz.root.name == "gentoo-20060317-i686-stage3"
    assert openvz.quota is not None and openvz.quota.space == (10 * 1024**3, 10 * 1024**3)
    bridged = next(n for n in openvz.interfaces if n.type == "bridge")
    assert (bridged.guest_dev, bridged.mac, bridged.host_dev, bridged.host_mac) == \
        ("eth15", "00:11:00:00:00:11", "node_eth15", "22:11:00:00:00:11")

    lxc = by_name["Container123"]
    assert isinstance(lxc, Domain) and lxc.memory == 64 * 1024**2
    assert lxc.cpu is not None and lxc.cpu.shares == 40
    assert lxc.init is not None and lxc.init.cmd == "/usr/sbin/container_init"
    assert lxc.interfaces[0].source in {n.name for n in specs.networks()}

    # the profile is merged in for OpenVZ: the domain's own quota wins, vps.basic limits fill in
    resolved = {s.name: s for s in specs.resolved(host="any")}
    merged = resolved["test_vm"]
    assert isinstance(merged, Domain) and merged.limits["numproc"] == (65, 65)
    assert merged.quota == openvz.quota


def test_schema_command_prints_json_schema() -> None:
    done = run_cli("schema")
    assert done.returncode == 0
    schema = json.loads(done.stdout)
    assert {"Domain", "Network", "Profile"} <= set(schema["$defs"])
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert "name" in schema["$defs"]["Domain"]["required"]
    assert "scheduler" in schema["$defs"]["Domain"]["properties"]


def test_load_bench_runs(tmp_path: Path) -> None:
    """bench/load.py works end to end on a few files (no timing is asserted)."""
    done = subprocess.run([sys.executable, str(REPO / "bench" / "load.py"), "30"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.strip().startswith("30 ")]
    assert [row[1] for row in rows] == ["yaml", "xml"]
    assert all(float(row[-1]) > 0 for row in rows)


def test_a_directory_loads_as_its_files_do_alone(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """load_paths reads, parses and validates a batch of files at a time: whatever the batch
    boundaries, each file gives what load_file gives it alone, broken files included."""
    monkeypatch.setattr("reconciler.specs.files.BATCH_FILES", 4)
    for n in range(3):
        for path in FILES:
            (tmp_path / f"{n}-{path.name}").write_bytes(path.read_bytes())
    (tmp_path / "empty.yaml").write_bytes(b"")
    (tmp_path / "binary.xml").write_bytes(b"<domain>\x00</domain>")
    (tmp_path / "broken.xml").write_bytes(b"<domain type='lxc'><name>x</name>")

    def shown(loaded: Loaded) -> tuple[object, ...]:
        return (loaded.path, loaded.digest, [(repr(o), line) for o, line in loaded.objects],
                [str(e) for e in loaded.errors])

    result = load_paths([tmp_path])
    alone = [load_file(Path(name), name) for name in result.files]
    assert [shown(loaded) for loaded in result.files.values()] == [shown(a) for a in alone]
    assert len(alone) == 3 * len(FILES) + 3 and sum(not a.ok for a in alone) == 3
