"""The `reconciler` command: one argparse tree, each command in the module named for it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from reconciler import __version__
from reconciler.cli import agent_commands, engine_commands, import_command, spec_commands

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reconciler",
        description="Keep a host's containers, VMs and networks equal to a directory of specs.")
    parser.add_argument("--version", action="version", version=f"reconciler {__version__}")
    parser.add_argument("--log-format", choices=("auto", "json", "console"), default="auto",
                        help="log lines on stderr: JSON or readable (auto: readable at a terminal)")
    parser.add_argument("--log-level", default="info")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    spec_commands.register(sub)
    engine_commands.register(sub)
    import_command.register(sub)
    agent_commands.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from reconciler import log

    log.configure(args.log_format, args.log_level)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
