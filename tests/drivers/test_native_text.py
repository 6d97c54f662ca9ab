"""Native lines and fields are split the way the tools split them: LF only, blanks and tabs."""

from __future__ import annotations

from reconciler.drivers.lxc.config import LxcConfig, parse_line
from reconciler.drivers.text import lines, unescape_octal, words


def test_lines_break_at_lf_only() -> None:
    text = "a\u2028b\x85c\x0cd\re\n" + "f\x1cg\n\nh"
    assert lines(text) == ["a\u2028b\x85c\x0cd\re", "f\x1cg", "", "h"]
    assert lines("") == [] and lines("\n") == [""]


def test_words_split_at_blanks_and_tabs_only() -> None:
    assert words(" a\tb  c\u2028d\x0be ") == ["a", "b", "c\u2028d\x0be"]
    assert words(" \t ") == []


def test_octal_escapes_of_mount_tables() -> None:
    assert unescape_octal(r"/srv/a\040b\011c\134d\012") == "/srv/a b\tc\\d\n"
    assert unescape_octal("/plain") == "/plain"


def test_lxc_trims_as_lxc_does() -> None:
    """LXC: blanks and tabs before the key; blanks, tabs, LF and NUL after a value; not CR,
    not Unicode spaces. A NUL ends the line (C strings)."""
    assert parse_line("\t lxc.a = b \t").value == "b"
    assert parse_line("lxc.a = b\r").value == "b\r"
    assert parse_line("lxc.a = b\u2028").value == "b\u2028"
    assert parse_line("lxc.a = b\x00lxc.c = d").value == "b"
    assert parse_line("\u2028lxc.a = b").key is None  # not a key line for LXC either


def test_a_config_keeps_every_line_and_byte_it_does_not_change() -> None:
    text = "# c\u2028omment\nlxc.uts.name = a\x85b\r\nlxc.arch = x86_64\n"
    cfg = LxcConfig.parse(text)
    assert [line.key for line in cfg.lines] == [None, "lxc.uts.name", "lxc.arch"]
    assert cfg.render() == text
