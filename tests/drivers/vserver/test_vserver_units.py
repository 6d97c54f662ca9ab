"""The pure parts of the vserver driver, against native-formats §2: util-vserver's file rules,
its number parsing, the vserver-stat parser (from captured output), the tree <-> model
mapping, and the tree writer's promises."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from reconciler.drivers.process import Result
from reconciler.drivers.vserver import mapping, numbers
from reconciler.drivers.vserver.mapping import Context, edits, read_tree
from reconciler.drivers.vserver.tools import failure, parse_stat
from reconciler.drivers.vserver.tree import (
    TOUCH,
    Edit,
    Tree,
    apply_edits,
    array_items,
    line,
    list_items,
    scalar,
    snapshot,
)
from reconciler.errors import PermanentError, TransientError

DATA = Path(__file__).parent / "data"


def tree(files: dict[str, str | bytes], links: dict[str, str] | None = None) -> Tree:
    data = {k: v.encode() if isinstance(v, str) else v for k, v in files.items()}
    dirs = {"/".join(p.split("/")[:i]) for p in data for i in range(1, p.count("/") + 1)}
    return Tree("/etc/vservers/g", data, frozenset(dirs), links or {}, frozenset())


def read(files: dict[str, str | bytes], last: dict[str, Any] | None = None,
         **ctx: Any) -> mapping.Reading:
    return read_tree(tree(files), Context("g", last=last, **ctx))


# ---------------------------------------------------------------------------- §2.2 files

@pytest.mark.parametrize(("data", "value", "ok"), [
    (b"abc\n", "abc", True),
    (b"abc", "abc", False),  # no newline: `read` fails (a set -e start aborts)
    (b"", "", False),
    (b"\n", "", True),
    (b"  a  b \t\nsecond\n", "a  b", True),  # first line, blanks trimmed
    (b"a\\\nb\n", "ab", True),  # backslash-newline joins
    (b"x\\ y\n", "x y", True),
    (b"a\rb\n", "a\rb", True),  # only LF ends a line
    (b"a\xe2\x80\xa8b\n", "a\u2028b", True),
])
def test_scalar_is_what_read_gives(data: bytes, value: str, ok: bool) -> None:
    assert (scalar(data).value, scalar(data).ok) == (value, ok)


def test_list_and_array_rules() -> None:
    assert list_items(b"NET_ADMIN\n\n# c\n  SYS_TIME  \nLOST") == ["NET_ADMIN", "SYS_TIME"]
    assert array_items(b"/bin/prog\n\n# kept\n--opt  x\nlast") == [
        "/bin/prog", "# kept", "--opt  x", "last"]


def test_a_written_value_reads_back_as_one_line() -> None:
    assert line("eth0") == b"eth0\n"
    for bad in ("a\nb", "a\u2028b", " lead", "trail ", "back\\slash", "", "nel\x85"):
        with pytest.raises(PermanentError):
            line(bad)


# ---------------------------------------------------------------------------- numbers

@pytest.mark.parametrize(("data", "value"), [
    (b"100\n", 100), (b"010\n", 8), (b"0x10\n", 16), (b"  7\n", 7), (b"-3\n", -3),
    (b"5\nrest ignored", 5), (b"5 \n", None), (b"5\r\n", None), (b"", None), (b"1k\n", None)])
def test_sched_values_are_vsched_strict(data: bytes, value: int | None) -> None:
    assert numbers.sched_value(data) == value


@pytest.mark.parametrize(("data", "value"), [
    (b"inf\n", "inf"), (b"infinity", "inf"), (b"100\n", 100), (b"1K\n", 1024),
    (b"1k\n", 1000), (b"2M", 2 * 1024 * 1024), (b"0x10", 16), (b"10 \n", None),
    (b"abc", None)])
def test_limit_values(data: bytes, value: int | str | None) -> None:
    assert numbers.limit_value(data) == value


@pytest.mark.parametrize(("mask", "prefix"), [
    ("255.255.255.0", 24), ("255.255.0.0", 16), ("", 0), ("255.255.255.255", 32),
    ("255.0.255.0", 8), ("256.0.0.0", 255), ("a.b.c.d", 255)])
def test_mask2prefix(mask: str, prefix: int) -> None:
    assert numbers.mask2prefix(mask) == prefix


# ---------------------------------------------------------------------------- tools

def test_vserver_stat_is_parsed_by_its_columns() -> None:
    rows = parse_stat((DATA / "vserver-stat.txt").read_text())
    assert sorted(rows) == [2, 40000, 49152, 65535]
    assert (rows[2].procs, rows[2].name) == (3, "web1")
    assert rows[40000].name == "A guest with blanks "  # cut to 20, blanks kept
    assert (rows[49152].procs, rows[49152].name) == (0, "")
    assert rows[65535].name == "[legacy-guest-name]"
    assert parse_stat("CTX   PROC    VSZ    RSS  userTIME   sysTIME    UPTIME NAME\n") == {}


def test_exit_codes_map_to_transient_or_permanent() -> None:
    busy = failure(Result(("vserver", "g", "start"), 254, "", "vcontext: File exists\n"), "x")
    assert isinstance(busy, TransientError) and "File exists" in str(busy)
    for rc in (1, 2, 5, 255):
        error = failure(Result(("/usr/sbin/vserver", "g", "start"), rc, "",
                               "a\nFailed to start vserver 'g'\n"), "start g")
        assert isinstance(error, PermanentError)
        assert f"vserver exited {rc}: a | Failed to start vserver 'g'" in str(error)


# ---------------------------------------------------------------------------- reading

def test_interfaces_inherit_dev_and_prefix_and_read_masks() -> None:
    """§2.3: dev, prefix, mask inherited from interfaces/; a prefix (own or inherited) wins
    over a mask; nodev puts nothing on the host; a label shows as DEV:LABEL."""
    r = read({"interfaces/dev": "eth0\n", "interfaces/prefix": "16\n",
              "interfaces/0/ip": "10.0.0.1\n",
              "interfaces/1/ip": "10.0.0.2\n", "interfaces/1/mask": "255.255.255.0\n",
              "interfaces/2/ip": "10.0.0.3\n", "interfaces/2/dev": "eth1\n",
              "interfaces/2/name": "web\n", "interfaces/2/down": "",
              "interfaces/3/ip": "2001:db8::9\n", "interfaces/3/nodev": "",
              "interfaces/3/prefix": "128\n",
              "interfaces/4/ip": "10.9.9.9\n", "interfaces/4/disabled": ""})
    assert r.spec["interfaces"] == [
        {"type": "routed", "ip": ["10.0.0.1/16"], "host_dev": "eth0"},
        {"type": "routed", "ip": ["10.0.0.2/16"], "host_dev": "eth0"},
        {"type": "routed", "ip": ["10.0.0.3/16"], "host_dev": "eth1",
         "guest_dev": "eth1:web", "link": "down"},
        {"type": "routed", "ip": ["2001:db8::9"]}]  # a full-length prefix: a host address
    assert [n.path for n in r.notes] == ["interfaces/4/disabled", "interfaces/4/ip"]


def test_a_host_address_is_spelled_as_it_was_applied() -> None:
    files = {"interfaces/0/ip": "10.0.0.1\n", "interfaces/0/prefix": "32\n",
             "interfaces/0/nodev": ""}
    assert read(files).spec["interfaces"][0]["ip"] == ["10.0.0.1"]
    last = {"interfaces": [{"type": "routed", "ip": ["10.0.0.1/32"]}]}
    assert read(files, last).spec["interfaces"][0]["ip"] == ["10.0.0.1/32"]


def test_what_would_fail_a_start_is_a_problem() -> None:
    r = read({"context": "5", "interfaces/0/dev": "eth0\n", "sched/fill-rate": "1 \n",
              "fstab": "none /x\n"})
    assert {p.path for p in r.problems} == {"context", "interfaces/0", "sched/fill-rate",
                                            "fstab", "vdir"}  # no guest root either
    assert r.spec["id"] == 5  # the value is still read


def test_scheduler_per_cpu_and_buckets() -> None:
    r = read({"sched/fill-rate": "1\n", "sched/prio-bias": "2\n", "sched/idle-time": "",
              "sched/a/cpu-id": "1\n", "sched/a/interval": "010\n",
              "sched/b/bucket-id": "1\n", "sched/b/cpu-id": "0\n", "sched/b/tokens": "3\n",
              "sched/c/tokens": "4\n", "sched/junk": "x\n", "schedule": "1\n2\n3\n4\n5\n6\n"})
    assert r.spec["scheduler"] == {"fill_rate": 1, "priority_bias": 2, "idle_time": True,
                                   "cpus": {1: {"interval": 8}}}
    noted = {n.path for n in r.notes}
    assert {"sched/b/bucket-id", "sched/b/tokens", "sched/c/tokens", "sched/junk",
            "schedule"} <= noted


def test_the_deprecated_schedule_file_without_sched() -> None:
    r = read({"schedule": "10\n100\n5\n1\n50\n0\n"})
    assert r.spec["scheduler"] == {"fill_rate": 10, "interval": 100, "tokens": 5,
                                   "tokens_min": 1, "tokens_max": 50, "priority_bias": 0}


def test_rlimits_as_memory_and_beancounters() -> None:
    r = read({"rlimits/rss": "1024\n", "rlimits/rss.soft": "512\n", "rlimits/nproc": "50\n",
              "rlimits/nofile.hard": "inf\n", "rlimits/as.soft": "1M\n",
              "rlimits/as.hard": "2M\n", "rlimits/locks.min": "1\n", "rlimits/cpu": "9\n"},
             page_size=4096)
    assert r.spec["memory"] == f"{1024 * 4096}B"
    assert r.spec["memtune"] == {"soft_limit": f"{512 * 4096}B",
                                 "min_guarantee": f"{1024 * 4096}B"}
    assert r.spec["limits"] == {"numproc": [50, 50],
                                "privvmpages": [1024 * 1024, 2 * 1024 * 1024]}
    assert {"rlimits/nofile.hard", "rlimits/cpu", "rlimits/locks.min"} <= \
        {n.path for n in r.notes}


def test_init_styles() -> None:
    assert "init" not in read({}).spec  # no style: sysv, the default
    assert read({"apps/init/style": "plain\n", "apps/init/runlevel": "2\n",
                 "apps/init/runlevel.start": "3\n"}).spec["init"] == {
        "cmd": "/sbin/init", "args": ["3"]}
    assert read({"apps/init/cmd.start": "/bin/app\n--x  y\n",
                 "apps/init/environment": "A=1\nB=x=y\n"}).spec["init"] == {
        "cmd": "/bin/app", "args": ["--x  y"], "env": {"A": "1", "B": "x=y"}}
    r = read({"apps/init/style": "gentoo\n"})
    assert "init" not in r.spec and r.notes[0].path == "apps/init/style"


def test_fstab_lines() -> None:
    r = read({"fstab": "none\t/proc\t\tproc\tdefaults\t\t0 0\n"
                       "/srv/a /a none bind,ro 0 0\n"
                       "/dev/sdb1 /b ext4 ro 0 0\n"
                       "none /c tmpfs size=1g 0 0\n"
                       "nfs:/x /d nfs defaults 0 0\n"
                       "/srv/e /e none rbind 0 0\n"
                       "/dev/sdc1 / ext4 defaults 0 0\n",
              "fstab.local": "/srv/f\v/f none bind 0 0\n"})
    assert r.spec["filesystems"] == [
        {"source": "/srv/a", "target": "/a", "readonly": True},
        {"type": "block", "source": "/dev/sdb1", "target": "/b", "readonly": True},
        {"type": "ram", "target": "/c", "size": "1GiB"},
        {"source": "/srv/f", "target": "/f"}]  # secure-mount splits at VT too
    assert [(n.path, n.line) for n in r.notes if n.path.startswith("fstab")] == [
        ("fstab", 5), ("fstab", 6), ("fstab", 7)]  # the default /proc line is not named


def test_every_file_is_mapped_or_noted() -> None:
    files = {"context": "7\n", "name": "g\n", "uts/nodename": "g\n", "uts/sysname": "X\n",
             "bcapabilities": "NET_ADMIN\n", "cflags": "lock\n", "ncontext": "7\n",
             "tag": "8\n", "reconciler.json": "{}", "nice": "3\n", "apps/init/mark": "web\n"}
    r = read_tree(tree(files, {"vdir": "/vservers/g", "run": "/var/run/vservers/g",
                               "cache": "/var/cache/vservers/g"}), Context("g"))
    mapped = {"context", "name", "uts/nodename", "ncontext", "reconciler.json", "run", "cache"}
    assert {n.path for n in r.notes} == (set(files) | {"vdir"}) - mapped
    assert {n.path: n.value for n in r.notes}["apps/init/mark"] == "web"


# ---------------------------------------------------------------------------- writing

def test_edits_touch_only_managed_fields(tmp_path: Path) -> None:
    cfg = tmp_path / "g"
    for rel, text in {"context": "5\n", "uts/nodename": "old\n", "nice": "3\n",
                      "rlimits/rss": "100\n", "interfaces/dev": "eth0\n",
                      "interfaces/prefix": "24\n", "interfaces/0/ip": "10.0.0.1\n",
                      "interfaces/0/bcast": "10.0.0.255\n",
                      "interfaces/9/ip": "10.0.0.9\n"}.items():
        (cfg / rel).parent.mkdir(parents=True, exist_ok=True)
        (cfg / rel).write_text(text)
    spec = {"name": "g", "type": "vserver", "hostname": "new", "memory": "8KiB",
            "interfaces": [{"type": "routed", "ip": ["10.0.0.2"]},
                           {"type": "routed", "ranges": ["10.1.0.1-10.1.0.5"]},
                           {"type": "routed", "host_dev": "eth1", "ip": ["10.2.0.1/8"]}]}
    changed = apply_edits(cfg, edits(snapshot(cfg), spec, {"hostname", "memory", "interfaces"},
                                     Context("g", page_size=4096)))
    assert changed
    text = {str(p.relative_to(cfg)): p.read_text() for p in cfg.rglob("*") if p.is_file()}
    assert text["nice"] == "3\n" and text["context"] == "5\n"  # unmanaged, kept
    assert text["uts/nodename"] == "new\n"
    # the plain rss (min, soft, hard) is split: only hard is memory's, the rest is kept
    assert (text["rlimits/rss.hard"], text["rlimits/rss.min"], text["rlimits/rss.soft"]) == \
        ("2\n", "100\n", "100\n") and "rlimits/rss" not in text
    # positions kept (0, 9), a new one sorts after them; an inherited prefix is blocked
    assert (text["interfaces/0/ip"], text["interfaces/0/prefix"]) == ("10.0.0.2\n", "32\n")
    assert text["interfaces/0/bcast"] == "10.0.0.255\n" and "interfaces/0/nodev" in text
    assert text["interfaces/9/range"] == "10.1.0.1-10.1.0.5\n"
    assert "interfaces/9/disabled" in text and "interfaces/9/ip" not in text
    assert (text["interfaces/90/ip"], text["interfaces/90/dev"]) == ("10.2.0.1\n", "eth1\n")
    assert text[mapping.RANGES_SCRIPTLET] == mapping.RANGES_SCRIPT.decode()
    assert not os.access(cfg / mapping.RANGES_SCRIPTLET, os.X_OK)  # sourced, in the shell
    again = read_tree(snapshot(cfg), Context("g", page_size=4096, last=spec))
    assert again.spec["interfaces"] == spec["interfaces"]
    assert again.spec["hostname"] == "new" and again.spec["memory"] == "8192B"
    # nothing to do the second time: no file is rewritten
    assert not apply_edits(cfg, edits(snapshot(cfg), spec, {"hostname", "memory",
                                                            "interfaces"},
                                      Context("g", page_size=4096, last=spec)))


def test_the_writer_never_follows_a_symlink(tmp_path: Path) -> None:
    cfg, outside = tmp_path / "g", tmp_path / "outside"
    cfg.mkdir()
    outside.mkdir()
    (cfg / "vdir").symlink_to(outside)
    (cfg / "uts").symlink_to(outside)
    for rel in ("vdir/etc/x", "uts/nodename"):
        with pytest.raises(PermanentError, match="symlink"):
            apply_edits(cfg, [Edit(rel, b"x\n")])
    (cfg / "name").symlink_to(outside / "target")
    with pytest.raises(OSError):
        apply_edits(cfg, [Edit("name", b"g\n")])
    with pytest.raises(PermanentError):
        apply_edits(cfg, [Edit("../escape", TOUCH)])
    assert list(outside.iterdir()) == []


def test_snapshot_reads_without_following_or_blocking(tmp_path: Path) -> None:
    cfg = tmp_path / "g"
    (cfg / "uts").mkdir(parents=True)
    (cfg / "uts" / "nodename").write_text("g\n")
    (cfg / "vdir").symlink_to(tmp_path)
    os.mkfifo(cfg / "context")
    t = snapshot(cfg)
    assert t.files == {"uts/nodename": b"g\n"} and t.links == {"vdir": str(tmp_path)}
    assert t.unreadable == frozenset({"context"}) and t.dirs == frozenset({"uts"})


def test_fstab_rewrite_keeps_lines_that_already_say_a_wanted_mount(tmp_path: Path) -> None:
    """A new mount is appended; the admin's ext4 line for a wanted block device stays as it
    was (its filesystem type with it); `bind` and `mount` are one fstab bind mount."""
    cfg = tmp_path / "g"
    cfg.mkdir()
    (cfg / "fstab").write_text("none /proc proc defaults 0 0\n/dev/sdb1 /b ext4 ro 0 0\n"
                               "/srv/old /old none bind 0 0\n")
    spec = {"filesystems": [{"type": "block", "source": "/dev/sdb1", "target": "/b",
                             "readonly": True},
                            {"type": "bind", "source": "/srv/new", "target": "/new"}]}
    apply_edits(cfg, edits(snapshot(cfg), spec, {"filesystems"}, Context("g")))
    assert (cfg / "fstab").read_text() == ("none /proc proc defaults 0 0\n"
                                           "/dev/sdb1 /b ext4 ro 0 0\n"
                                           "/srv/new\t/new\tnone\tbind\t0 0\n")
    again = read_tree(snapshot(cfg), Context("g", last=spec))
    assert again.spec["filesystems"] == spec["filesystems"]
    assert edits(snapshot(cfg), spec, {"filesystems"}, Context("g", last=spec)) == []
