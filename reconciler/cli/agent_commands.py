"""`watch` (the agent), `status` (what it last did) and `reconcile` (a pass now)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import Any

from reconciler.cli.exits import EXIT_ERROR, EXIT_NOT_RUNNING, EXIT_OK
from reconciler.engine.apply import DEFAULT_PARALLEL
from reconciler.engine.config import Config
from reconciler.errors import ConfigError, StateError

EXIT_UNHEALTHY = EXIT_ERROR  # `status`: as /healthz answering 503


def register(sub: Any) -> None:
    from reconciler.cli.engine_commands import _common

    p = sub.add_parser(
        "watch", help="the agent: keep the host equal to the specs as they change",
        description="Watch spec directories (or a git repository) and apply every change; "
                    "resync periodically to revert drift. SIGHUP reloads the config, SIGTERM "
                    "finishes the running step and exits 0.")
    p.add_argument("path", nargs="*", metavar="PATH",
                   help="spec directories (with --git: the directory inside the repository)")
    _common(p)
    p.add_argument("--parallel", type=int, default=None,
                   help=f"steps run at once ({DEFAULT_PARALLEL})")
    p.add_argument("--http", metavar="HOST:PORT",
                   help="serve /healthz and /metrics here (default 127.0.0.1:9137; "
                        "port 0 picks a free one; 'off' disables)")
    p.add_argument("--settle", type=float, metavar="SECONDS",
                   help="a file written in place is read once unchanged this long (1.0)")
    p.add_argument("--resync", type=float, metavar="SECONDS",
                   help="full resync interval, for drift (300; 0 disables)")
    p.add_argument("--git", metavar="URL", help="take specs from this git repository")
    p.add_argument("--branch", help="git branch to follow (default: the remote's HEAD)")
    p.add_argument("--interval", type=float, metavar="SECONDS",
                   help="how often to fetch from git (60)")
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("status", help="what the agent last did (from its status file)")
    p.add_argument("--state-dir", help="the agent's state directory")
    p.add_argument("--config", help="agent config file (YAML), to find the state directory")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser(
        "reconcile", help="ask the running agent for a full pass now, and wait for it",
        description="Ask the agent running on this host (the one holding the state "
                    "directory's lock) for a full pass now: with git, it fetches first; the "
                    "host is observed again and every object planned, as the periodic resync "
                    "does. Sends the agent SIGUSR1, so run it as the agent's user. Exits 0 "
                    "when the pass succeeded, 1 when it did not, when no agent runs, or when "
                    "no answer came within --timeout.")
    p.add_argument("--state-dir", help="the agent's state directory")
    p.add_argument("--config", help="agent config file (YAML), to find the state directory")
    p.add_argument("--no-wait", action="store_true",
                   help="only ask; do not wait for the pass to finish")
    p.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                   help="how long to wait for the pass (600; 0 waits as long as it takes)")
    p.set_defaults(func=cmd_reconcile)


def _error(message: str) -> int:
    print(f"reconciler: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def _load(args: argparse.Namespace) -> tuple[Config, Any]:
    from reconciler.agent import agent_settings
    from reconciler.cli.engine_commands import config_from

    config = config_from(args)
    settings = agent_settings(
        config.extra, settle=args.settle, resync=args.resync, listen=args.http,
        git_url=args.git, git_branch=args.branch, git_interval=args.interval)
    if settings.git is not None and args.path:  # PATH: the directory inside the repository
        settings = replace(settings, git=replace(settings.git, path=args.path[0]))
    return config, settings


def cmd_watch(args: argparse.Namespace) -> int:
    from reconciler.agent import Agent
    from reconciler.cli.engine_commands import _sim_notice

    try:
        config, settings = _load(args)
    except ConfigError as exc:
        return _error(str(exc))
    if settings.git is not None:
        if len(args.path) > 1:
            return _error("with --git, give at most one PATH: the directory inside the "
                          "repository")
        paths: list[str] = []
    else:
        paths = list(args.path)
        if not paths:
            return _error("give the spec directory to watch (PATH), or --git URL")
    _sim_notice(config)
    agent = Agent(config, settings, paths, reload=lambda: _load(args))
    return agent.run()


def cmd_status(args: argparse.Namespace) -> int:
    from reconciler.agent.status import read_status, render_text, status_path
    from reconciler.engine.config import load_config
    from reconciler.engine.lock import holder

    try:
        config = load_config(args.config, state_dir=args.state_dir)
    except ConfigError as exc:
        return _error(str(exc))
    try:
        data = read_status(config.state_dir)
    except StateError as exc:
        return _error(str(exc))
    held = holder(config.state_dir)  # an apply holding the lock is not a running agent
    pid = held.pid if held is not None and held.is_agent else None
    if data is None:
        if args.format == "json":
            json.dump({"running": pid is not None, "pid": pid, "status": None}, sys.stdout)
            print()
        else:
            print(f"No agent status in {status_path(config.state_dir)}"
                  + (f" (an agent with pid {pid} is starting)" if pid else
                     "; the agent has not run here"))
        return EXIT_NOT_RUNNING if pid is None else EXIT_UNHEALTHY
    data["running"] = pid is not None
    if args.format == "json":
        json.dump(data, sys.stdout, indent=2)
        print()
    else:
        sys.stdout.write(render_text(data, pid if pid and pid > 0 else None))
    if pid is None:
        return EXIT_NOT_RUNNING
    last = data.get("last_pass") or {}
    git = data.get("git") or {}
    if git.get("stale") or (git.get("refused") and git.get("last_error")):
        return EXIT_UNHEALTHY  # as /healthz: specs that may be old, or a commit refused
    return EXIT_OK if last.get("result") == "succeeded" else EXIT_UNHEALTHY


def cmd_reconcile(args: argparse.Namespace) -> int:
    from reconciler.agent.request import agent_pid, ask, wait_answer
    from reconciler.engine.config import load_config

    try:
        config = load_config(args.config, state_dir=args.state_dir)
        pid = agent_pid(config.state_dir)
        asked = ask(pid)
        if args.no_wait:
            print(f"asked the agent (pid {pid}) for a pass")
            return EXIT_OK
        answer = wait_answer(config.state_dir, pid, asked, args.timeout)
    except (ConfigError, StateError) as exc:
        return _error(str(exc))
    sys.stdout.write(render_answer(answer))
    return EXIT_OK if answer.get("result") == "succeeded" else EXIT_ERROR


def render_answer(answer: dict[str, Any]) -> str:
    from reconciler.text import printable

    steps = answer.get("steps") or {}
    commit = answer.get("commit")
    lines = [f"pass {answer.get('plan_id') or '-'}: {answer.get('result')} "
             f"({steps.get('succeeded', 0)} steps ok, {steps.get('failed', 0)} failed, "
             f"{steps.get('skipped', 0)} skipped)"
             + (f" at commit {printable(commit)[:12]}" if commit else "")]
    lines += [f"  note: {printable(note)}" for note in answer.get("notes") or []]
    return "\n".join(lines) + "\n"
