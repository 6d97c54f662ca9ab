"""Parsers of the lxc-* tools' output, from captured fixtures; how the tools are called."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from reconciler.drivers.lxc.tools import (
    Tools,
    check_name,
    parse_cgroup_layout,
    parse_info_state,
    parse_names,
    parse_template_comment,
)
from reconciler.errors import PermanentError, TransientError

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_parse_names() -> None:
    names = parse_names(fixture("lxc-ls-active-1.txt"))
    assert len(names) == 29 and "b01" in names and "b02" not in names  # b02 was stopped
    assert parse_names("") == set()   # an empty lxcpath prints nothing at all


def test_parse_info_state() -> None:
    assert parse_info_state(fixture("lxc-info-sH-running.txt")) == "RUNNING"
    assert parse_info_state(fixture("lxc-info-sH-stopped.txt")) == "STOPPED"
    assert parse_info_state(fixture("lxc-info-default.txt")) == "RUNNING"
    assert parse_info_state("") is None


def test_cgroup_layout_hybrid() -> None:
    layout = parse_cgroup_layout(fixture("proc-mounts-hybrid.txt"),
                                 fixture("cgroup2-controllers-hybrid.txt"))
    assert layout.version("memory") == 1 and layout.version("cpu") == 1
    assert layout.version("cpuset") == 1
    # this host has since bound hugetlb to v1 too; either way it is never v2 and v1 at once
    assert not layout.v1 & layout.v2


def test_cgroup_layout_pure_v2() -> None:
    layout = parse_cgroup_layout(fixture("proc-mounts-v2.txt"),
                                 fixture("cgroup2-controllers-v2.txt"))
    assert layout.version("memory") == 2 and layout.version("cpu") == 2
    assert not layout.v1


def test_template_comment() -> None:
    assert parse_template_comment(fixture("busybox-template.config")) == ("busybox", ())
    text = ("# Template used to create this container: /usr/share/lxc/templates/lxc-download\n"
            "# Parameters passed to the template: -d debian -r bookworm -a amd64\n")
    assert parse_template_comment(text) == ("download", ("-d", "debian", "-r", "bookworm",
                                                         "-a", "amd64"))
    assert parse_template_comment(fixture("handmade.config")) == (None, ())


@pytest.mark.parametrize("name", ["../etc", "a b", "-n", "", "x" * 65, "a/b", "a..b"])
def test_bad_names_never_reach_a_command(name: str) -> None:
    with pytest.raises(PermanentError):
        check_name(name)


class Recorder:
    def __init__(self, rc: int = 0, out: str = "", exc: Exception | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.rc, self.out, self.exc = rc, out, exc

    def __call__(self, argv: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append({"argv": argv, **kwargs})
        if self.exc:
            raise self.exc
        return subprocess.CompletedProcess(argv, self.rc, self.out, "boom\n")


def test_tools_use_argument_lists_and_the_lxcpath(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(out="RUNNING\n")
    monkeypatch.setattr(subprocess, "run", rec)
    tools = Tools("/srv/lxc")
    assert tools.state("c1") == "RUNNING"
    tools.stop("c1", 0)
    tools.stop("c1", 5)
    tools.create("c1", "download", "/tmp/x.conf", ["-d", "debian"])
    argvs = [c["argv"] for c in rec.calls]
    assert argvs == [
        ["lxc-info", "-P", "/srv/lxc", "-n", "c1", "-sH"],
        ["lxc-stop", "-P", "/srv/lxc", "-n", "c1", "-k"],
        ["lxc-stop", "-P", "/srv/lxc", "-n", "c1", "-t", "5"],
        ["lxc-create", "-P", "/srv/lxc", "-n", "c1", "-t", "download", "-f", "/tmp/x.conf",
         "--", "-d", "debian"]]
    assert all("shell" not in c for c in rec.calls)
    assert all(c["stdin"] == subprocess.DEVNULL for c in rec.calls)


def test_tool_errors_are_mapped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess, "run", Recorder(exc=FileNotFoundError()))
    with pytest.raises(PermanentError, match="not found"):
        Tools("/srv/lxc").active()
    monkeypatch.setattr(subprocess, "run",
                        Recorder(exc=subprocess.TimeoutExpired(["lxc-ls"], 1)))
    with pytest.raises(TransientError):
        Tools("/srv/lxc").active()
    monkeypatch.setattr(subprocess, "run", Recorder(rc=1))
    with pytest.raises(PermanentError, match="boom"):
        Tools("/srv/lxc").start("c1")


def test_a_spawned_tool_is_waited_for_later_with_the_same_errors(tmp_path: Path) -> None:
    tools = Tools(str(tmp_path))
    with pytest.raises(PermanentError, match="not found"):
        tools.spawn("lxc-no-such-tool", None)
    # `sleep -P DIR 5` fails at once (no such option): the failure comes with `finish`
    failing = tools.spawn("sleep", None, ["5"])
    with pytest.raises(PermanentError, match="sleep  failed"):
        tools.finish(failing)
    assert tools.finish(failing, check=False).rc != 0


def test_a_spawned_tool_that_hangs_is_killed_at_its_timeout(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    tool = tmp_path / "bin" / "lxc-slow"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\nexec sleep 30\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tool.parent}:{os.environ['PATH']}")
    running = Tools(str(tmp_path)).spawn("lxc-slow", None)
    with pytest.raises(TransientError, match="did not finish"):
        running.result(0.2)
    assert running.proc.returncode is not None  # killed and reaped, not left behind
