"""Names and paths are checked here before any driver or command line sees them."""

from __future__ import annotations

import re

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DEVICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,31}$")
_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def check_name(value: str, what: str = "name") -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise ValueError(
            f"{value!r} is not a valid {what}: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    if value in {".", ".."} or ".." in value:
        raise ValueError(f"{value!r} is not a valid {what}: '..' is not allowed")
    return value


def check_device(value: str) -> str:
    if not _DEVICE_RE.match(value):
        raise ValueError(
            f"device name {value!r} is not valid: use up to 32 letters, digits, '_', '.', ':', "
            "'@' or '-'"
        )
    return value


def check_abs_path(value: str) -> str:
    """An absolute path without '..', NUL or newlines (it will reach mount tables)."""
    if not isinstance(value, str) or not value.startswith("/"):
        raise ValueError(f"path {value!r} must be absolute (start with '/')")
    if "\x00" in value or "\n" in value or len(value) > 4096:
        raise ValueError(f"path {value!r} contains a NUL or newline, or is too long")
    if ".." in value and ".." in value.split("/"):
        raise ValueError(f"path {value!r} must not contain '..'")
    return value


def check_mac(value: str) -> str:
    if not _MAC_RE.match(value):
        raise ValueError(f"MAC address {value!r} is not valid; write six hex pairs like "
                         "52:54:00:12:34:56")
    return value.lower()
