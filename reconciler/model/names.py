"""Names, paths and text values are checked here before any driver or command line sees them.

The one value rule: a value is one line of printable text. Every character that some reader
treats as a line break (all of `str.splitlines`' separators: LF, CR, VT, FF, FS, GS, RS, NEL,
U+2028, U+2029) and every C0/C1 control character (NUL included) is refused, whatever the field.
Native configs are line-based (LXC's config, OpenVZ's CTID.conf, util-vserver's tree, fstab,
resolv.conf): a value that a later reader splits in two becomes a second, attacker-chosen line.
Patterns end in `\\Z`, never `$`, which also matches before a final newline.
"""

from __future__ import annotations

import re
import unicodedata

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
_DEVICE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,31}\Z")
_MAC_RE = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}\Z")
_TOKEN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+:@~-]{0,127}\Z")
# C0 and C1 controls (TAB, LF, VT, FF, CR, FS, GS, RS, NEL among them), DEL, and the two
# Unicode separators: together every character `str.splitlines` breaks at, and the rest of
# what no config value should hold
BAD_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# canonical XML writes a line break or tab inside an attribute value as a character reference
_BAD_XML_REFS = re.compile(r"&#x(?:9|A|D);")
MAX_TEXT = 4096


def describe_char(char: str) -> str:
    """`U+2028 (LINE SEPARATOR)`: how an error names a character it refuses."""
    name = unicodedata.name(char, "") or {
        "\n": "LINE FEED", "\r": "CARRIAGE RETURN", "\t": "TAB", "\x00": "NUL",
        "\x0b": "LINE TABULATION", "\x0c": "FORM FEED", "\x85": "NEXT LINE"}.get(char, "control")
    return f"U+{ord(char):04X} ({name})"


def check_text(value: str) -> str:
    """One line of printable text: no line break of any kind, no control character."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text")
    found = BAD_CHARS.search(value)
    if found is not None:
        raise ValueError(f"{_short(value)} contains {describe_char(found.group())} at position "
                         f"{found.start()}; a value must be one line of printable text (no line "
                         "breaks, tabs or control characters)")
    if len(value) > MAX_TEXT:
        raise ValueError(f"{_short(value)} is {len(value)} characters long; the limit is "
                         f"{MAX_TEXT}")
    return value


def check_xml_text(value: str) -> str:
    """A piece of libvirt XML kept as canonical text: no value inside it may hold a line break
    or a control character either (they would reach the host through libvirt)."""
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text")
    found = BAD_CHARS.search(value)
    ref = _BAD_XML_REFS.search(value)
    if found is not None or ref is not None:
        what = describe_char(found.group()) if found is not None else "an escaped line break or tab"
        raise ValueError(f"XML {_short(value)} contains {what}; values inside kept XML must be "
                         "one line of printable text")
    return value


def _short(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def check_name(value: str, what: str = "name") -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid {what}: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    if value in {".", ".."} or ".." in value:
        raise ValueError(f"{value!r} is not a valid {what}: '..' is not allowed")
    return value


def check_token(value: str) -> str:
    """A word that reaches a command line or a file name as one argument: a template, a build
    method, a release. Never a path, never an option (it cannot start with '-')."""
    if not isinstance(value, str) or not _TOKEN_RE.match(value) or ".." in value:
        raise ValueError(f"{value!r} is not a valid name here: use up to 128 letters, digits and "
                         "'_.+:@~-', starting with a letter or digit (a name, not a path)")
    return value


def check_device(value: str) -> str:
    if not isinstance(value, str) or not _DEVICE_RE.match(value):
        raise ValueError(
            f"device name {value!r} is not valid: use up to 32 letters, digits, '_', '.', ':', "
            "'@' or '-'"
        )
    return value


def check_abs_path(value: str) -> str:
    """An absolute path of printable text without '..' (it will reach mount tables)."""
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValueError(f"path {value!r} must be absolute (start with '/')")
    check_text(value)
    if ".." in value and ".." in value.split("/"):
        raise ValueError(f"path {value!r} must not contain '..'")
    return value


def check_mac(value: str) -> str:
    if not isinstance(value, str) or not _MAC_RE.match(value):
        raise ValueError(f"MAC address {value!r} is not valid; write six hex pairs like "
                         "52:54:00:12:34:56")
    return value.lower()
