"""The `reconciler` command: one argparse tree, each command in the module named for it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from reconciler import __version__
from reconciler.cli import (
    agent_commands,
    docs,
    engine_commands,
    history_commands,
    import_command,
    spec_commands,
)
from reconciler.cli.exits import EXIT_ERROR

_LOG_IS_OUTPUT = frozenset({"watch"})


def _global_options(parser: argparse.ArgumentParser, after_command: bool) -> None:
    """The options every command takes, before or after its name (after it, a default must
    not undo what was given before it)."""
    def default(value: object) -> object:
        return argparse.SUPPRESS if after_command else value

    parser.add_argument("--log-format", choices=("auto", "json", "console"),
                        default=default("auto"),
                        help="log lines on stderr: JSON or readable (auto: readable at a terminal)")
    parser.add_argument("--log-level", default=default(None),
                        help="debug, info, warning, error (default: warning at a terminal, "
                        "info otherwise)")
    parser.add_argument("--no-color", action="store_true", default=default(False),
                        help="no colour anywhere (so does a non-empty NO_COLOR)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reconciler",
        description="Keep a host's containers, VMs and networks equal to a directory of specs.")
    parser.add_argument("--version", action="version", version=f"reconciler {__version__}")
    _global_options(parser, after_command=False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    spec_commands.register(sub)
    engine_commands.register(sub)
    import_command.register(sub)
    agent_commands.register(sub)
    history_commands.register(sub)
    docs.register(sub)
    for command in sub.choices.values():
        _global_options(command, after_command=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from reconciler import log

    # at a terminal a command's own output is the point, and its log lines only say what
    # went wrong; the agent's log is its output
    quiet = sys.stderr.isatty() and args.command not in _LOG_IS_OUTPUT
    level = args.log_level or ("warning" if quiet else "info")
    log.configure(args.log_format, level, color=False if args.no_color else None)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
