"""The parts that make the agent tell on itself, without a process: the git staleness setting,
git's whole message, fetch health, a requested pass in the scheduler, the status text, and
finding and asking the running agent."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest

from reconciler.agent.backoff import Backoff
from reconciler.agent.gitsource import GitHealth, GitPoller, GitSource, tool_message
from reconciler.agent.request import agent_pid, wait_answer
from reconciler.agent.schedule import Scheduler, Work
from reconciler.agent.settings import GitSettings, WatchSettings, agent_settings
from reconciler.agent.status import render_git, write_status
from reconciler.agent.watch import ChangeTracker
from reconciler.engine.lock import StateLock
from reconciler.errors import ConfigError, StateError

GIT_SAYS = ("fatal: '/nowhere/specs.git' does not appear to be a git repository\n"
            "fatal: Could not read from remote repository.\n\n"
            "Please make sure you have the correct access rights\n"
            "and the repository exists.\n")


def test_git_stale_after_defaults_and_limits():
    def stale_after(**git: object) -> float:
        settings = agent_settings({"git": {"url": "https://x/y.git", **git}})
        assert settings.git is not None
        return settings.git.stale_after

    assert stale_after() == 900
    assert stale_after(interval=600) == 1800  # three intervals when that is longer
    assert stale_after(interval=60, stale_after=120) == 120
    for bad in ({"interval": 60, "stale_after": 100}, {"stale_after": -1},
                {"stale_after": "soon"}):
        with pytest.raises(ConfigError, match="stale_after"):
            stale_after(**bad)


def test_the_shipped_git_example_loads(tmp_path):
    """deploy/agent.yaml's commented git: block, uncommented, is a valid setting."""
    import yaml

    text = (Path(__file__).resolve().parents[2] / "deploy" / "agent.yaml").read_text()
    block = text[text.index("# git:"):].split("\n\n", 1)[0]
    raw = yaml.safe_load(re.sub(r"^# ?", "", block, flags=re.M))
    settings = agent_settings(raw)
    assert settings.git is not None and settings.git.stale_after == 900
    assert settings.git.url.startswith("https://") and settings.git.interval == 60


def test_tool_message_keeps_every_line_escaped_and_bounded():
    message = tool_message(GIT_SAYS)
    assert message.startswith("fatal: '/nowhere/specs.git' does not appear")
    assert message.endswith("and the repository exists.")
    assert message.count("\n") == 4  # the blank line inside stays, the trailing one goes
    hostile = tool_message("remote: \x1b[31mred\x1b[0m\r\nfatal: \u202eevil\n")
    assert "\x1b" not in hostile and "\\x1b[31mred" in hostile and "\\u202e" in hostile
    assert "\r" not in hostile
    long = tool_message("first line\n" + "x" * 10_000 + "\nlast line\n", limit=400)
    assert len(long) < 500 and long.startswith("first line") and long.endswith("last line")
    assert "characters left out" in long
    assert tool_message("\n \n") == ""


def test_git_health_counts_failures_in_a_row_and_a_success_clears_them():
    health = GitHealth().failed(10.0, "boom", refused=False)
    health = health.failed(20.0, "refused commit", refused=True).failed(30.0, "down", False)
    assert (health.failures, health.last_attempt, health.last_error) == (3, 30.0, "down")
    assert health.refused == "refused commit"  # the newest commit is still the refused one
    ok = health.succeeded(40.0, 41.0)
    assert ok == GitHealth(last_attempt=40.0, last_success=41.0)


def test_a_failed_fetch_keeps_git_whole_message_and_staleness_counts_from_the_start(tmp_path):
    settings = GitSettings(url=f"file://{tmp_path}/nowhere.git", interval=1, stale_after=5)
    results: list[GitHealth] = []
    poller = GitPoller(GitSource(settings, tmp_path / "state"), threading.Event(),
                       on_result=results.append)
    poller.poll()
    assert results == [poller.health] and poller.health.failures == 1
    error = poller.health.last_error or ""
    assert "does not appear to be a git repository" in error
    assert error.endswith("and the repository exists.")
    started = poller.started
    assert not poller.stale(started + 5) and poller.stale(started + 6)
    report = poller.report(started + 6)
    assert report["stale"] is True and report["since_success"] == 6.0
    assert report["stale_after"] == 5 and report["last_success"] is None


def test_a_requested_pass_is_full_and_waits_for_a_burst_in_progress():
    now = [100.0]
    tracker = ChangeTracker(settle=1.0, quiet=0.03, cap=0.2)
    scheduler = Scheduler(tracker, Backoff(), WatchSettings(resync=0), lambda: now[0])
    scheduler.schedule_resync()
    tracker.request_rescan("git commit", True, now[0])  # a fetch just brought a commit
    scheduler.request_pass(99.5)
    work, wait = scheduler.collect()
    assert work is None and wait == pytest.approx(0.03)  # the request waits for the rescan
    now[0] += 0.03
    work, _ = scheduler.collect()
    assert work is not None and work.requested == 99.5 and len(work.rescans) == 1
    assert work.trigger == "request" and work.full and work.recheck_all
    assert scheduler.collect()[0] is None  # answered once
    assert not Work().full and Work(requested=1.0)


def test_status_text_shows_git_whole_message_one_escaped_line_each():
    git = {"url": "file:///nowhere.git", "branch": "main", "last_attempt": 1_700_000_000.0,
           "last_success": None, "last_error": tool_message(GIT_SAYS + "\x1b[2Jgone\n"),
           "failures": 4, "refused": None, "since_success": 930.0, "stale_after": 900,
           "stale": True}
    lines = render_git(git)
    assert lines[0] == ("git: file:///nowhere.git (branch main): failing, 4 fetches in a row; "
                        "last success never")
    assert lines[1] == "  stale: no fetch worked for 930.0 s (git.stale_after: 900 s)"
    assert "    and the repository exists." in lines and "" in lines  # blank, not "    "
    assert "    \\x1b[2Jgone" in lines
    assert not any(line != line.rstrip() for line in lines)
    fine = render_git({"url": "u", "last_attempt": 1_700_000_000.0, "last_error": None})
    assert fine == ["git: u: ok, last fetch 2023-11-14T22:13:20.000+00:00"]


def test_finding_the_agent_to_ask(tmp_path):
    with pytest.raises(StateError, match="no agent runs"):
        agent_pid(tmp_path / "nothing")
    with StateLock(tmp_path, "apply"), pytest.raises(StateError,
                                                     match=r"reconciler apply \(pid \d+\)"):
        agent_pid(tmp_path)
    with StateLock(tmp_path, "agent"):
        assert agent_pid(tmp_path) == os.getpid()


def test_waiting_for_the_answer(tmp_path):
    with StateLock(tmp_path, "agent"):
        write_status(tmp_path, {"request": {"received": "2030-01-01T00:00:00.000+00:00",
                                            "result": "succeeded"}})
        assert wait_answer(tmp_path, os.getpid(), 1.0, 5)["result"] == "succeeded"
        with pytest.raises(StateError, match="no answer"):  # an answer to an older request
            wait_answer(tmp_path, os.getpid(), 2e9, 0.2)
    with pytest.raises(StateError, match="stopped before it ran the pass"):
        wait_answer(tmp_path, os.getpid(), 2e9, 5)
