"""Exit codes as Terraform's, and what a plan says when nothing could be planned: through the
CLI on `sim`, as a CI job runs it."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_cli

GOOD = "kind: Domain\nname: ok\ntype: kvm\nos: {type: hvm}\nmemory: 64MiB\n"
PRIVILEGED = ("kind: Domain\nname: priv\ntype: lxc\nmemory: 64MiB\n"
              "filesystems: [{type: template, name: busybox, target: /}]\n")


def plan(specs: Path | str, state: Path, *extra: str) -> tuple[int, str, str]:
    res = run_cli("plan", str(specs), "--state-dir", str(state), "--detailed-exitcode", *extra)
    return res.returncode, res.stdout, res.stderr


def test_only_failed_files_is_not_a_host_that_matches(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "broken.yaml").write_text("kind: Domain\nname: x\ntype: kvm\nmemory: [oops\n")
    code, out, err = plan(specs, tmp_path / "state")
    assert code == 1
    assert "host matches" not in out and "1 spec file failed to load" in out
    assert "broken.yaml:5:1: error: malformed YAML" in err


def test_errors_win_over_changes(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "ok.yaml").write_text(GOOD)
    (specs / "a.yaml").write_text("kind: Domain\nname: a\ntype: kvm\nmemory: lots\n")
    (specs / "b.yaml").write_text("kind: Domain\nname: b\n")
    assert plan(specs, tmp_path / "state")[0] == 1  # two invalid files, one change: 1, not 2
    (specs / "a.yaml").unlink()
    (specs / "b.yaml").unlink()
    assert plan(specs, tmp_path / "state")[0] == 2


def test_a_refused_object_exits_1_and_the_others_still_apply(tmp_path: Path) -> None:
    specs, state = tmp_path / "specs", tmp_path / "state"
    specs.mkdir()
    (specs / "ok.yaml").write_text(GOOD)
    (specs / "priv.yaml").write_text(PRIVILEGED)
    assert plan(specs, state)[0] == 1
    res = run_cli("apply", str(specs), "--state-dir", str(state), "--yes")
    assert res.returncode == 1
    assert (state / "sim" / "objects" / "Domain" / "ok.json").exists()
    assert not (state / "sim" / "objects" / "Domain" / "priv.json").exists()
    (specs / "ok.yaml").unlink()  # only the refused one left: still 1, never 0
    (specs / "gone.yaml").write_text(GOOD.replace("name: ok", "name: gone"))
    run_cli("apply", str(specs), "--state-dir", str(state), "--yes")
    (specs / "gone.yaml").unlink()
    (specs / "ok.yaml").write_text(GOOD)
    assert plan(specs, state)[0] == 1


def test_a_mistyped_path_is_an_error(tmp_path: Path) -> None:
    code, _, err = plan(tmp_path / "nope", tmp_path / "state")
    assert code == 1 and "nope: no such file or directory" in err
    res = run_cli("apply", str(tmp_path / "nope"), "--state-dir", str(tmp_path / "state"),
                  "--yes")
    assert res.returncode == 1
