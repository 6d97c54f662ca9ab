"""`completion bash|zsh` and `manpage`: both made from the argument parser itself, so they
can never list an option the command does not take or miss one it does.

    reconciler completion bash > /etc/bash_completion.d/reconciler
    reconciler completion zsh > "${fpath[1]}/_reconciler"
    reconciler manpage > /usr/local/share/man/man1/reconciler.1
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from reconciler import __version__
from reconciler.cli.exits import EXIT_OK, TABLE

ENVIRONMENT = (
    ("RECONCILER_STATE_DIR", "the state directory (journal, agent status, sim state) when "
                             "--state-dir is not given"),
    ("RECONCILER_CONFIG", "the agent config file when --config is not given"),
    ("NO_COLOR", "set and not empty: no colour anywhere (as --no-color)"),
    ("JOURNAL_STREAM", "set by systemd: when stderr is the journal, each log line carries its "
                       "syslog priority"),
)


def register(sub: Any) -> None:
    p = sub.add_parser("completion", help="print a shell completion script (bash or zsh)")
    p.add_argument("shell", choices=("bash", "zsh"))
    p.set_defaults(func=cmd_completion)
    p = sub.add_parser("manpage", help="print the manual page (roff; view with `man -l -`)")
    p.set_defaults(func=cmd_manpage)


def _parser() -> argparse.ArgumentParser:
    from reconciler.cli import build_parser

    return build_parser()


def cmd_completion(args: argparse.Namespace) -> int:
    sys.stdout.write(bash_completion(_parser()) if args.shell == "bash"
                     else zsh_completion(_parser()))
    return EXIT_OK


def cmd_manpage(args: argparse.Namespace) -> int:
    sys.stdout.write(manpage(_parser()))
    return EXIT_OK


# ------------------------------------------------------------------ the parser, as data
@dataclass(frozen=True)
class Option:
    flags: tuple[str, ...]
    takes_value: bool
    choices: tuple[str, ...]
    metavar: str
    help: str


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    usage: str
    description: str
    options: tuple[Option, ...]
    positionals: tuple[Option, ...]


def _option(action: argparse.Action) -> Option:
    choices = tuple(str(c) for c in action.choices) if action.choices else ()
    metavar = action.metavar if isinstance(action.metavar, str) else (
        action.dest.upper() if action.option_strings else action.dest)
    takes_value = action.nargs != 0
    return Option(tuple(action.option_strings), takes_value, choices, str(metavar),
                  _plain(action.help or ""))


def _plain(text: str) -> str:
    return text.replace("%%", "%")


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[Any]:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def global_options(parser: argparse.ArgumentParser) -> tuple[Option, ...]:
    return tuple(_option(a) for a in parser._actions
                 if a.option_strings and not isinstance(a, argparse._SubParsersAction))


def commands(parser: argparse.ArgumentParser) -> tuple[Command, ...]:
    sub = _subparsers(parser)
    helps = {a.dest: a.help or "" for a in sub._choices_actions}
    out = []
    for name, command in sub.choices.items():
        options = tuple(_option(a) for a in command._actions if a.option_strings)
        positionals = tuple(_option(a) for a in command._actions if not a.option_strings)
        usage = " ".join(command.format_usage().split())
        out.append(Command(name, _plain(helps.get(name, "")),
                           usage.removeprefix("usage: "), _plain(command.description or ""),
                           options, positionals))
    return tuple(out)


# ------------------------------------------------------------------ shells
def bash_completion(parser: argparse.ArgumentParser) -> str:
    """A bash completion function: commands, each command's options, the choices of an option
    or positional that has them, file names elsewhere."""
    cmds = commands(parser)
    lines = ["# bash completion for reconciler (made by `reconciler completion bash`)",
             "_reconciler() {",
             '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"',
             '    local cmd="" i',
             "    for ((i = 1; i < COMP_CWORD; i++)); do",
             '        case "${COMP_WORDS[i]}" in',
             f"            {'|'.join(c.name for c in cmds)}) "
             'cmd="${COMP_WORDS[i]}"; break ;;',
             "        esac",
             "    done",
             '    case "$cmd:$prev" in']
    value_options: set[str] = set()
    for scope, options in [("", global_options(parser))] + [(c.name, c.options) for c in cmds]:
        for opt in options:
            if not opt.takes_value:
                continue
            pattern = "|".join(f"{scope}:{flag}" for flag in opt.flags)
            value_options.update(opt.flags)
            words = shlex.quote(" ".join(opt.choices)) if opt.choices else None
            reply = (f'COMPREPLY=($(compgen -W {words} -- "$cur"))' if words
                     else 'COMPREPLY=($(compgen -f -- "$cur"))')
            lines.append(f"        {pattern}) {reply}; return ;;")
    lines += ["    esac",
              '    if [[ -z $cmd ]]; then',
              "        COMPREPLY=($(compgen -W "
              + shlex.quote(" ".join([f for o in global_options(parser) for f in o.flags]
                                     + [c.name for c in cmds])) + ' -- "$cur"))',
              "        return",
              "    fi",
              '    case "$cmd" in']
    for c in cmds:
        flags = " ".join(f for o in c.options for f in o.flags)
        choices = " ".join(ch for p in c.positionals for ch in p.choices)
        lines.append(f"        {c.name}) local opts={shlex.quote(flags)} "
                     f"words={shlex.quote(choices)} ;;")
    lines += ["    esac",
              '    if [[ $cur == -* ]]; then',
              '        COMPREPLY=($(compgen -W "$opts" -- "$cur"))',
              '    elif [[ -n $words ]]; then',
              '        COMPREPLY=($(compgen -W "$words" -- "$cur"))',
              "    else",
              '        COMPREPLY=($(compgen -f -- "$cur"))',
              "    fi",
              "}",
              "complete -o filenames -o bashdefault -F _reconciler reconciler",
              ""]
    return "\n".join(lines)


def zsh_completion(parser: argparse.ArgumentParser) -> str:
    """zsh runs the bash function through its bashcompinit layer."""
    return ("#compdef reconciler\n"
            "autoload -U +X bashcompinit && bashcompinit\n"
            + bash_completion(parser))


# ------------------------------------------------------------------ the manual
def _roff(text: str) -> str:
    """Text safe in a roff line: backslashes and hyphens escaped, no line may start a
    request."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\\&" + text if text.startswith((".", "'")) else text


def _flags(opt: Option) -> str:
    names = ", ".join(f"\\fB{_roff(flag)}\\fR" for flag in opt.flags)
    if opt.takes_value:
        value = "{" + ",".join(opt.choices) + "}" if opt.choices else opt.metavar
        names += f" \\fI{_roff(value)}\\fR"
    return names


def _options(options: tuple[Option, ...]) -> list[str]:
    out = []
    for opt in options:
        if opt.flags == ("-h", "--help"):
            continue
        out += [".TP", _flags(opt), _roff(opt.help or "")]
    return out


def manpage(parser: argparse.ArgumentParser) -> str:
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    lines = [f'.TH RECONCILER 1 "{date}" "reconciler {__version__}" "User Commands"',
             ".SH NAME",
             "reconciler \\- keep a host's containers, VMs and networks equal to a directory "
             "of specs",
             ".SH SYNOPSIS",
             "\\fBreconciler\\fR [\\fIglobal options\\fR] \\fICOMMAND\\fR [\\fIoptions\\fR] "
             "[\\fIglobal options\\fR]",
             ".SH DESCRIPTION",
             _roff(parser.description or ""),
             "Global options are taken before or after the command.",
             ".SH GLOBAL OPTIONS", *_options(global_options(parser)),
             ".SH COMMANDS"]
    for c in commands(parser):
        lines += [f".SS {_roff(c.name)}", _roff(c.help)]
        if c.description:
            lines += [".PP", _roff(c.description)]
        lines += [".PP", f"\\fBusage:\\fR {_roff(c.usage)}"]
        positionals = [p for p in c.positionals if p.help]
        lines += _options(tuple(positionals) + c.options)
    lines.append(".SH EXIT STATUS")
    for code, meaning in TABLE:
        lines += [".TP", f"\\fB{code}\\fR", _roff(meaning)]
    lines.append(".SH ENVIRONMENT")
    for name, meaning in ENVIRONMENT:
        lines += [".TP", f"\\fB{_roff(name)}\\fR", _roff(meaning)]
    lines += [".SH FILES", ".TP", "\\fI/var/lib/reconciler\\fR",
              _roff("the state directory when run as root (journal, agent status and lock)"),
              ".SH SEE ALSO", "\\fBvirsh\\fR(1), \\fBlxc\\-create\\fR(1), \\fBvzctl\\fR(8), "
              "\\fBvserver\\fR(8)", ""]
    return "\n".join(lines)
