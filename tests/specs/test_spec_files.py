"""What the loader reads: regular files inside the spec directory, at a bounded cost, and
nothing else. Through the CLI, as people run it."""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.conftest import run_cli

SECRET = "root:$6$NotARealHashButSecret$abcdefghijklmnop:19000:0:99999:7:::"
GOOD = "kind: Domain\nname: ok\ntype: kvm\nos: {type: hvm}\n"


def test_a_link_to_a_secret_outside_the_directory_is_never_read(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (tmp_path / "shadow").write_text(SECRET + "\n")
    (specs / "leak.yaml").symlink_to(tmp_path / "shadow")
    (specs / "ok.yaml").write_text(GOOD)
    (specs / ".target.yaml").write_text(GOOD.replace("name: ok", "name: linked"))
    (specs / "inside.yaml").symlink_to(".target.yaml")  # a link inside the directory is read
    for command in ("validate", "plan"):
        args = [command, str(specs)] + (["--state-dir", str(tmp_path / "s")]
                                         if command == "plan" else [])
        res = run_cli(*args)
        said = res.stdout + res.stderr
        assert res.returncode == 1
        assert "NotARealHash" not in said
        assert "leak.yaml:1:1: error: is a symbolic link to a file outside the spec " \
               "directory" in said
        assert "inside.yaml:" not in said  # no error for a link inside the directory
    plan = run_cli("plan", str(specs), "--state-dir", str(tmp_path / "s")).stdout
    assert "domain/linked" in plan and "domain/ok" in plan


def test_fifo_and_device_links_are_errors_not_stalls(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    os.mkfifo(specs / "pipe.yaml")
    (specs / "zero.yaml").symlink_to("/dev/zero")
    started = time.monotonic()
    res = run_cli("validate", str(specs), timeout=30)
    assert time.monotonic() - started < 20
    assert res.returncode == 1
    assert "pipe.yaml:1:1: error: is not a regular file" in res.stdout
    assert "zero.yaml:1:1: error: is a symbolic link to a file outside" in res.stdout


def test_six_hundred_thousand_empty_documents_are_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "many.yaml"
    path.write_text("---\n" * 600_000)
    started = time.monotonic()
    res = run_cli("validate", str(path))
    elapsed = time.monotonic() - started
    assert res.returncode == 1 and "more than 1000 YAML documents" in res.stdout
    assert elapsed < 20  # the limit is what makes it quick; the bench measures speed
