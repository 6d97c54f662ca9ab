"""A small GNU getopt_long: what vzctl and vzlist use to read their options.

Long options may be given as `--name value` or `--name=value` and abbreviated to a unique
prefix; non-option words are moved behind the options (GNU permutation), and `--` ends the
options. Errors print glibc's messages on stderr with the program name and raise `BadOption`;
each tool decides the exit status.
"""

from __future__ import annotations

from dataclasses import dataclass

from .console import err


@dataclass(frozen=True)
class Opt:
    name: str
    has_arg: bool = True
    key: str = ""  # what the option means; defaults to its name (aliases share a key)
    short: str = ""

    @property
    def id(self) -> str:
        return self.key or self.name


class BadOption(Exception):
    """getopt returned '?': the message is already printed."""


def getopt(prog: str, args: list[str], opts: list[Opt]) -> tuple[list[tuple[Opt, str]], list[str]]:
    """Parse `args`; return ([(option, value)], [non-option words])."""
    found: list[tuple[Opt, str]] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            rest += args[i:]
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            opt = _match_long(prog, name, opts)
            if opt.has_arg:
                if not eq:
                    if i >= len(args):
                        err(f"{prog}: option '--{opt.name}' requires an argument")
                        raise BadOption(arg)
                    value = args[i]
                    i += 1
                found.append((opt, value))
            else:
                if eq:
                    err(f"{prog}: option '--{opt.name}' doesn't allow an argument")
                    raise BadOption(arg)
                found.append((opt, ""))
        elif arg.startswith("-") and arg != "-":
            j = 1
            while j < len(arg):
                ch = arg[j]
                opt_s = next((o for o in opts if o.short == ch), None)
                if opt_s is None:
                    err(f"{prog}: invalid option -- '{ch}'")
                    raise BadOption(arg)
                if not opt_s.has_arg:
                    found.append((opt_s, ""))
                    j += 1
                    continue
                if j + 1 < len(arg):
                    found.append((opt_s, arg[j + 1:]))
                elif i < len(args):
                    found.append((opt_s, args[i]))
                    i += 1
                else:
                    err(f"{prog}: option requires an argument -- '{ch}'")
                    raise BadOption(arg)
                break
        else:
            rest.append(arg)
    return found, rest


def _match_long(prog: str, name: str, opts: list[Opt]) -> Opt:
    exact = [o for o in opts if o.name == name]
    if exact:
        return exact[0]
    matches = [o for o in opts if o.name.startswith(name)] if name else []
    if len({o.id for o in matches}) > 1:
        names = " ".join(f"'--{o.name}'" for o in matches)
        err(f"{prog}: option '--{name}' is ambiguous; possibilities: {names}")
        raise BadOption(name)
    if not matches:
        err(f"{prog}: unrecognized option '--{name}'")
        raise BadOption(name)
    return matches[0]
