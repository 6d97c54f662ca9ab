"""A plan's header: the host, the drivers and the spec commit. The CLI's commit is the HEAD
of the git work tree holding the specs, read from `.git` without running git (engine/commit.py);
git itself, run here on real repositories, says what the right answer is."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from reconciler.drivers.sim import SimDriver
from reconciler.engine import commit, render
from reconciler.engine.hosts import Hosts
from reconciler.engine.passes import compute_plan
from reconciler.engine.plan import Settings
from tests.conformance.harness import UNPRIVILEGED

GIT_ENV = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}


def git(repo: Path, *args: str) -> str:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          env=GIT_ENV, timeout=60, check=True)
    return done.stdout.strip()


def repo_with_specs(root: Path) -> Path:
    """A repository with a commit holding `specs/a.yaml`; returns the specs directory."""
    specs = root / "specs"
    specs.mkdir(parents=True)
    (specs / "a.yaml").write_text(yaml.safe_dump(
        {"kind": "Domain", "name": "a", "type": "lxc", "memory": "64MiB",
         "filesystems": [{"type": "template", "name": "busybox", "target": "/"}],
         "idmap": UNPRIVILEGED}))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "specs")
    return specs


def test_the_work_trees_head_as_git_says_it(tmp_path: Path) -> None:
    specs = repo_with_specs(tmp_path / "repo")
    repo = specs.parent
    head = git(repo, "rev-parse", "HEAD")
    assert commit.work_tree_commit([str(specs)]) == head  # a branch, as a loose ref
    assert commit.work_tree_commit([str(specs / "a.yaml")]) == head  # a file as the root
    git(repo, "commit", "-q", "--allow-empty", "-m", "two")
    git(repo, "pack-refs", "--all")  # the branch only in packed-refs now
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    assert commit.work_tree_commit([str(specs)]) == git(repo, "rev-parse", "HEAD") != head
    git(repo, "checkout", "-q", "--detach", head)  # as CI checks out a pull request
    assert commit.work_tree_commit([str(specs)]) == head
    other = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", "-b", "side", str(other), "main")
    git(other, "commit", "-q", "--allow-empty", "-m", "side")
    assert commit.work_tree_commit([str(other / "specs")]) == git(other, "rev-parse", "HEAD")
    assert commit.context_for([str(specs)]) == {"commit": head, "commit_of": "work tree HEAD"}


def test_no_commit_unless_one_work_tree_of_ours_holds_every_path(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert commit.work_tree_commit([str(plain)]) is None
    assert commit.context_for([str(plain)]) == {}
    one, two = repo_with_specs(tmp_path / "one"), repo_with_specs(tmp_path / "two")
    git(two.parent, "commit", "-q", "--allow-empty", "-m", "two")
    assert commit.work_tree_commit([str(one), str(two)]) is None
    assert commit.work_tree_commit([str(one), str(tmp_path / "missing")]) is None
    (one.parent / ".git" / "HEAD").write_text("ref: refs/heads/../../../../etc/passwd\n")
    assert commit.work_tree_commit([str(one)]) is None
    if os.geteuid() != 0:
        return
    # a .git someone else owns above a directory of ours names nothing (a planted /tmp/.git)
    os.chown(two.parent / ".git", 65534, 65534)
    assert commit.work_tree_commit([str(two)]) is None


def _plan_with(tmp_path: Path, context: dict[str, object]) -> dict[str, str]:
    specs = repo_with_specs(tmp_path / "repo")
    hosts = Hosts({"sim": SimDriver(tmp_path / "state")}, "sim")
    context = {"drivers": sorted(hosts.names()), **context, **commit.context_for([str(specs)])}
    plan = compute_plan([str(specs)], hosts, Settings(), context=context).plan
    return {fmt: render.render(plan, fmt) for fmt in render.FORMATS}


def test_every_format_names_host_drivers_and_the_work_trees_commit(tmp_path: Path) -> None:
    shown = _plan_with(tmp_path, {})
    head = git(tmp_path / "repo", "rev-parse", "HEAD")
    host = socket.gethostname()
    assert f"  host: {host}  drivers: sim  specs: {tmp_path / 'repo' / 'specs'}  " \
        f"commit: {head} (work tree HEAD)\n" in shown["text"]
    assert f"host `{host}` · drivers `sim` · specs `{tmp_path / 'repo' / 'specs'}` · " \
        f"commit `{head} (work tree HEAD)`\n" in shown["markdown"]
    data = json.loads(shown["json"])
    assert data["host"] == host and data["context"]["commit"] == head
    assert data["context"]["commit_of"] == "work tree HEAD"


def test_an_agents_commit_is_named_as_it_is() -> None:
    from reconciler.engine.plan import Plan

    plan = Plan(id="p", created="now", spec_hash="0", roots=("/srv/specs",), objects=(),
                steps=(), notes=("removal refused: test",), host="web-3",
                context={"drivers": ["libvirt", "lxc"], "commit": "0" * 40, "agent": True})
    md = render.markdown(plan)
    assert f"host `web-3` · drivers `libvirt, lxc` · specs `/srv/specs` · commit `{'0' * 40}`\n" \
        in md
    assert f"commit: {'0' * 40}\n" in render.text(plan)
