"""`show`: the list, one object's spec as the host has it (read back as a spec, it means the
same), and a saved plan in each format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.model import canonical
from reconciler.specs.files import load_file
from tests.conftest import run_cli

VM = ("kind: Domain\nname: {name}\ntype: kvm\nos: {{type: hvm}}\nmemory: 64MiB\n"
      "init: {{cmd: /sbin/init, env: {{TOKEN: s3cr3t}}}}\n")
NET = "kind: Network\nname: {name}\nbridge: {{name: vb{name}}}\n"


def world(tmp_path: Path) -> tuple[Path, Path]:
    specs, state = tmp_path / "specs", tmp_path / "state"
    specs.mkdir()
    (specs / "vm.yaml").write_text(VM.format(name="web"))
    (specs / "net.yaml").write_text(NET.format(name="lan"))
    (specs / "twin.yaml").write_text(VM.format(name="lan2").replace("lan2", "twin"))
    res = run_cli("apply", str(specs), "--state-dir", str(state), "--yes")
    assert res.returncode == 0, res.stderr
    return specs, state


def show(state: Path, *args: str) -> tuple[int, str, str]:
    res = run_cli("show", *args, "--state-dir", str(state))
    return res.returncode, res.stdout, res.stderr


@pytest.mark.parametrize("fmt", ["yaml", "xml"])
def test_an_object_as_the_host_has_it_reads_back_as_the_same_spec(tmp_path: Path,
                                                                   fmt: str) -> None:
    specs, state = world(tmp_path)
    code, out, err = show(state, "web", "--format", fmt)
    assert code == 0, err
    assert "s3cr3t" not in out  # secret values as digests
    path = tmp_path / f"web.{fmt}"
    path.write_text(out)
    loaded = load_file(path)
    assert loaded.ok, loaded.errors
    [(obj, _)] = loaded.objects
    [(wanted, _)] = load_file(specs / "vm.yaml").objects
    got, want = canonical(obj), canonical(wanted)
    assert got["init"]["env"]["TOKEN"].startswith("sha256:")
    got["init"]["env"] = want["init"]["env"]
    assert got == want


def test_kind_slash_name_and_json(tmp_path: Path) -> None:
    _, state = world(tmp_path)
    code, out, _ = show(state, "network/lan", "--format", "json")
    assert code == 0
    assert json.loads(out) == {"kind": "Network", "name": "lan", "bridge": {"name": "vblan"}}


def test_unknown_object_and_wrong_format_are_errors(tmp_path: Path) -> None:
    _, state = world(tmp_path)
    code, _, err = show(state, "nope")
    assert code == 1 and "no object nope" in err
    code, _, err = show(state, "web", "--format", "markdown")
    assert code == 1 and "yaml or xml or json" in err
    code, _, err = show(state, "--format", "yaml")
    assert code == 1 and "text or json" in err


def test_a_saved_plan_whatever_its_name(tmp_path: Path) -> None:
    specs, state = world(tmp_path)
    (specs / "vm.yaml").write_text(VM.format(name="web").replace("64MiB", "128MiB"))
    saved = tmp_path / "review.bin"
    assert run_cli("plan", str(specs), "--state-dir", str(state), "--out",
                   str(saved)).returncode == 0
    code, out, _ = show(state, str(saved))
    assert code == 0 and "domain/web" in out and "memory" in out
    code, out, _ = show(state, str(saved), "--format", "json")
    assert code == 0 and json.loads(out)["plan_id"]
    assert "s3cr3t" not in out
    code, out, _ = show(state, str(saved), "--format", "markdown")
    assert code == 0 and "domain/web" in out
