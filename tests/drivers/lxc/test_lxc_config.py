"""The key = value parser/writer: LXC's reading rules, and rewrites that lose nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.drivers.lxc.config import LxcConfig, modernised, parse_line
from reconciler.errors import PermanentError

FIXTURES = Path(__file__).parent / "fixtures"


def test_round_trip_is_byte_exact() -> None:
    for name in ("busybox-template.config", "handmade.config", "legacy.config"):
        text = (FIXTURES / name).read_text()
        assert LxcConfig.parse(text).render() == text


def test_reading_follows_lxc_rules() -> None:
    cfg = LxcConfig.parse(
        "  lxc.uts.name   =   \"web 1\"  \n"
        "# lxc.arch = i686\n"
        "   # indented comment\n"
        "not.lxc = ignored\n"
        "lxc.tty.max = 1\n"
        "lxc.tty.max = '4'\n"
        "lxc.mount.entry = a\n"
        "lxc.mount.entry =\n"
        "lxc.mount.entry = b\n"
        "lxc.mount.entry = c\n")
    assert cfg.get("lxc.uts.name") == "web 1"       # trimmed, one pair of quotes removed
    assert cfg.get("lxc.arch") is None               # comment
    assert cfg.get("not.lxc") is None                # non-lxc line: ignored, kept
    assert cfg.get("lxc.tty.max") == "4"             # last one wins
    assert cfg.get_all("lxc.mount.entry") == ["b", "c"]  # empty value clears the list


def test_set_replaces_in_place_and_keeps_everything_else() -> None:
    text = "# head\nlxc.a.b = 1\nfoo bar\nlxc.c = x\nlxc.c = y\n\nlxc.z = 9\n"
    cfg = LxcConfig.parse(text)
    cfg.set("lxc.c", "new")
    cfg.set("lxc.added", "v")
    cfg.set("lxc.z", None)
    assert cfg.render() == "# head\nlxc.a.b = 1\nfoo bar\nlxc.c = new\n\nlxc.added = v\n"


def test_unchanged_value_keeps_the_original_spelling() -> None:
    cfg = LxcConfig.parse('lxc.uts.name = "c1"\n')
    cfg.set("lxc.uts.name", "c1")
    assert cfg.render() == 'lxc.uts.name = "c1"\n'


def test_set_all_for_list_keys() -> None:
    cfg = LxcConfig.parse("lxc.idmap = u 0 1 1\nlxc.keep = 1\nlxc.idmap = g 0 1 1\n")
    cfg.set_all("lxc.idmap", ["u 0 100000 65536", "g 0 100000 65536"])
    assert cfg.render() == ("lxc.idmap = u 0 100000 65536\nlxc.idmap = g 0 100000 65536\n"
                            "lxc.keep = 1\n")


def test_values_that_lxc_would_change_are_quoted() -> None:
    cfg = LxcConfig()
    cfg.set("lxc.environment", " padded ")
    cfg.set("lxc.uts.name", '"quoted"')
    again = LxcConfig.parse(cfg.render())
    assert again.get("lxc.environment") == " padded "
    assert again.get("lxc.uts.name") == '"quoted"'


@pytest.mark.parametrize("value", ["a\nlxc.hook.pre-start = /bin/evil", "a\rb", "a\x00b",
                                   "a\u2028lxc.hook.pre-start = /bin/evil", "a\x85b", "a\x0bb",
                                   "a\x0cb", "a\x1cb", "a\u2029b", "a\tb"])
def test_newlines_cannot_inject_keys(value: str) -> None:
    with pytest.raises(PermanentError, match="newline"):
        LxcConfig().set("lxc.environment", value)


def test_only_lxc_keys_are_written() -> None:
    with pytest.raises(PermanentError):
        LxcConfig().set("evil key", "x")


def test_parse_line_shapes() -> None:
    assert parse_line("lxc.a=b").key == "lxc.a"
    assert parse_line("lxc.a").key is None            # no '=': kept as text
    assert parse_line("#lxc.a = b").key is None


def test_modernised_renames_legacy_keys() -> None:
    cfg = modernised(LxcConfig.parse((FIXTURES / "legacy.config").read_text()))
    assert cfg.get("lxc.uts.name") == "oldbox"
    assert cfg.get("lxc.rootfs.path") == "/var/lib/lxc/oldbox/rootfs"
    assert cfg.get("lxc.net.0.type") == "veth"
    assert cfg.get_all("lxc.net.0.ipv4.address") == ["10.0.3.5/24"]
    assert cfg.get("lxc.net.1.type") == "empty"
    assert cfg.get_all("lxc.idmap") == ["u 0 100000 65536"]
    assert cfg.get("lxc.tty.max") == "2"
    assert not any(k.startswith("lxc.network.") for k in cfg.key_names())
