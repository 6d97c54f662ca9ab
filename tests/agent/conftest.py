"""Run the real `reconciler watch` process on `sim`, and read what it did.

Every wait has a timeout; every process started is killed in the fixture's finalizer.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.engine.journal import read as read_journal

SPEC = """kind: Domain
name: {name}
type: lxc
memory: {memory}
filesystems: [{{type: template, name: busybox, target: /}}]
idmap: [{{kind: uid, start: 0, target: 100000, count: 65536}},
        {{kind: gid, start: 0, target: 100000, count: 65536}}]
"""


def spec_text(name: str, memory: str = "128MiB", **extra: str) -> str:
    text = SPEC.format(name=name, memory=memory)
    return text + "".join(f"{k}: {v}\n" for k, v in extra.items())


def write_atomic(path: Path, text: str) -> None:
    """As git, rsync and most editors save: a temp file in the same directory, renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def wait_for(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05,
             what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def sim_record(state: Path, name: str, kind: str = "Domain") -> dict[str, Any] | None:
    path = state / "sim" / "objects" / kind / f"{name}.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data


def journal(state: Path) -> list[dict[str, Any]]:
    return read_journal(state)


def plans(state: Path) -> list[dict[str, Any]]:
    return [r for r in journal(state) if r.get("event") == "plan"]


def steps_done(state: Path, step: str) -> bool:
    return any(r.get("event") == "step.succeeded" and r.get("step") == step
               for r in journal(state))


class AgentProcess:
    def __init__(self, args: list[str], workdir: Path, env: dict[str, str] | None = None
                 ) -> None:
        self.args = args
        self.err_path = workdir / f"agent-{time.monotonic_ns()}.log"
        self._err = open(self.err_path, "w")  # noqa: SIM115 - closed in stop()/kill()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "--log-format", "json", "watch", *args],
            stdout=subprocess.DEVNULL, stderr=self._err, stdin=subprocess.DEVNULL,
            env=env, cwd=workdir)

    def logs(self) -> list[dict[str, Any]]:
        out = []
        for line in self.err_path.read_text().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def text(self) -> str:
        return self.err_path.read_text()

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.logs() if r.get("event") == name]

    def wait_event(self, name: str, timeout: float = 15.0,
                   where: Callable[[dict[str, Any]], bool] | None = None,
                   after: int = 0) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited ({self.proc.returncode}) while waiting "
                                     f"for {name}:\n{self.text()[-3000:]}")
            found = [r for r in self.events(name) if where is None or where(r)]
            return found[after] if len(found) > after else None
        return wait_for(check, timeout, what=f"log event {name}")  # type: ignore[no-any-return]

    def passes(self) -> list[dict[str, Any]]:
        return self.events("pass.finished")

    def wait_idle(self, timeout: float = 15.0) -> None:
        """The startup pass is done."""
        self.wait_event("pass.finished", timeout)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"agent did not stop within {timeout} s") from None
        self._err.close()
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._err.close()


@pytest.fixture
def start_agent(tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:
    started: list[AgentProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> AgentProcess:
        agent = AgentProcess(list(args), tmp_path, env=env)
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.kill()


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    specs, state = tmp_path / "specs", tmp_path / "state"
    specs.mkdir()
    return specs, state


def git(*args: str, cwd: Path | None = None) -> str:
    """git as a test's author and committer, without the machine's git configuration."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
           "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True, timeout=30).stdout.strip()


def git_push(work: Path, bare: Path, message: str = "specs") -> str:
    """Commit everything in `work` and push it to `bare`'s main; returns the commit."""
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "--allow-empty", "-m", message, cwd=work)
    git("push", "--quiet", str(bare), "main", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


def git_repo(tmp_path: Path, *names: str) -> tuple[Path, Path]:
    """A bare repository (what an agent fetches) and a work tree that pushes to it, with a
    first commit holding hosts/NAME.yaml for each name."""
    bare, work = tmp_path / "specs.git", tmp_path / "work"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    git("init", "--quiet", "--initial-branch=main", str(work))
    for name in names:
        write_atomic(work / "hosts" / f"{name}.yaml", spec_text(name))
    git_push(work, bare)
    return bare, work


def base_args(specs: Path | str, state: Path, *extra: str) -> list[str]:
    return [str(specs), "--state-dir", str(state), "--driver", "sim", "--http", "off",
            "--resync", "0", *extra]
