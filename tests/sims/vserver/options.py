"""Option parsing the way the GNU getopt family behaves for these tools.

`getopt(1)` with a leading `+` and C `getopt_long("+...")` stop at the first non-option;
vserver-info's plain getopt_long permutes. Long options may be abbreviated when unambiguous.
"""

from __future__ import annotations

import getopt as _getopt


class OptionError(Exception):
    """A bad option; the message is what GNU getopt prints."""


def parse(prog: str, args: list[str], short: str, long: list[str],
          permute: bool = False) -> tuple[list[tuple[str, str]], list[str]]:
    try:
        if permute:
            return _getopt.gnu_getopt(args, short, long)
        return _getopt.getopt(args, short, long)
    except _getopt.GetoptError as exc:
        raise OptionError(_gnu_message(prog, exc)) from None


def _gnu_message(prog: str, exc: _getopt.GetoptError) -> str:
    opt = exc.opt
    long_opt = len(opt) > 1
    if "requires argument" in exc.msg:
        if long_opt:
            return f"{prog}: option '--{opt}' requires an argument"
        return f"{prog}: option requires an argument -- '{opt}'"
    if "not a unique prefix" in exc.msg:
        return f"{prog}: option '--{opt}' is ambiguous"
    if "must not have an argument" in exc.msg:
        return f"{prog}: option '--{opt}' doesn't allow an argument"
    if long_opt:
        return f"{prog}: unrecognized option '--{opt}'"
    return f"{prog}: invalid option -- '{opt}'"
