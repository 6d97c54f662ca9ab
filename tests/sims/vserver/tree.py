"""Reading a guest's config tree by util-vserver's file-type rules (native-formats.md §2.2).

The kind of a file is decided by the code that reads it:

* scalar: the shell `read` builtin (no `-r`) on the first line. Backslashes escape the next
  character and a trailing backslash joins the next line; blanks around the value are trimmed.
  `read` fails when it meets the end of the file before a newline (an empty file, or a last line
  without a newline) but still hands over what it read. Under the start script's `set -e` that
  failure aborts the start; elsewhere it is ignored.
* list: `while read` over the lines: blank and `#` lines skipped, a last line without a
  newline lost.
* array: `$(< file)` split on newlines: empty lines vanish, `#` is data, a last line without a
  newline is kept. The shell would also glob-expand each line; the simulator does not (a choice:
  expanding against the real host's `/` would make results depend on the machine).
* boolean: existence (`test -e`, so a dangling symlink is false).
* whole: the C readers (vuname, the display name) take the whole file minus trailing newlines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

_IFS_BLANKS = " \t\n"


@dataclass(frozen=True)
class Scalar:
    value: str
    ok: bool  # False: `read` hit the end of the file before a newline


def decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def shell_read(data: bytes) -> Scalar:
    """What `read var < file` leaves in var, and whether it succeeded."""
    text = decode(data)
    chars: list[tuple[str, bool]] = []  # (character, escaped)
    i, ok = 0, False
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 < len(text):
                if text[i + 1] != "\n":  # backslash-newline joins lines; anything else is literal
                    chars.append((text[i + 1], True))
                i += 2
                continue
            i += 1
            continue
        if ch == "\n":
            ok = True
            break
        chars.append((ch, False))
        i += 1
    start, end = 0, len(chars)
    while start < end and not chars[start][1] and chars[start][0] in _IFS_BLANKS:
        start += 1
    while end > start and not chars[end - 1][1] and chars[end - 1][0] in _IFS_BLANKS:
        end -= 1
    return Scalar("".join(ch for ch, _ in chars[start:end]), ok)


def read_scalar(path: Path) -> Scalar | None:
    """`read var < path`; None when the redirection itself fails (missing, a directory)."""
    if not path.is_file():
        return None
    return shell_read(path.read_bytes())


def find_file(*paths: Path) -> Path | None:
    """util-vserver's findFile: the first candidate that is a regular file."""
    for path in paths:
        if path.is_file():
            return path
    return None


def get_file_value(*paths: Path) -> Scalar | None:
    """getFileValue: `read` from the first existing file; None (success, no value) if none."""
    found = find_file(*paths)
    return None if found is None else shell_read(found.read_bytes())


def read_list(path: Path) -> list[str]:
    """A `while read` list file: blank and `#` lines skipped, an unterminated last line lost."""
    if not path.is_file():
        return []
    items = []
    rest = path.read_bytes()
    while rest:
        line_end = _logical_line_end(rest)
        if line_end is None:
            break  # no newline: `read` fails and the loop ends without using the value
        value = shell_read(rest[:line_end + 1]).value
        rest = rest[line_end + 1:]
        if value and not value.startswith("#"):
            items.append(value)
    return items


def _logical_line_end(data: bytes) -> int | None:
    """Index of the newline ending the first logical line (backslash-newline continues it)."""
    i = 0
    while i < len(data):
        if data[i:i + 1] == b"\\":
            i += 2
            continue
        if data[i:i + 1] == b"\n":
            return i
        i += 1
    return None


def read_array(path: Path) -> list[str] | None:
    """getFileArray: the non-empty lines as they are; None when the file is missing."""
    if not path.is_file():
        return None
    return [line for line in decode(path.read_bytes()).split("\n") if line]


def flag(path: Path) -> bool:
    return path.exists()


def whole(path: Path) -> str | None:
    """The C readers' view: the whole file with trailing newlines dropped."""
    if not path.is_file():
        return None
    return decode(path.read_bytes()).rstrip("\n")
