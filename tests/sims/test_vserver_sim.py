"""The util-vserver simulator (tests/sims/vserver) against native-formats.md §2.

Section numbers in the docstrings are those of /work/shared/reference/native-formats.md.
Most tests call the tools in-process (VsHost.call); a few run the executables from PATH.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.sims.vserver import live, numbers, tree
from tests.sims.vserver.host import VsHost, make_template
from tests.sims.vserver.vserver_stat import HEADER, row, shorten_mem, shorten_time

Result = subprocess.CompletedProcess[str]


@pytest.fixture
def host(tmp_path: Path) -> VsHost:
    return VsHost(tmp_path / "vs")


def build(host: VsHost, name: str = "g1", *opts: str, method: str = "template",
          method_args: tuple[str, ...] | None = None) -> Path:
    if method_args is None:
        method_args = ("-t", str(host.template)) if method == "template" else ()
    done = host.call("vserver", name, "build", "-m", method, *opts, "--", *method_args)
    assert done.returncode == 0, done.stderr
    return host.guest_dir(name)


def vs(host: VsHost, *args: str, stdin: str = "") -> Result:
    return host.call("vserver", *args, input=stdin)


def started(host: VsHost, name: str = "g1") -> dict:
    done = vs(host, name, "start")
    assert done.returncode == 0, done.stderr
    ctx = host.context_of(name)
    assert ctx is not None
    return ctx


def assert_failed_start(host: VsHost, done: Result, rc: int, name: str = "g1") -> None:
    assert done.returncode == rc, (done.returncode, done.stderr)
    assert f"Failed to start vserver '{name}'" in done.stderr
    assert host.context_of(name) is None
    assert not (host.run_dir / name).exists()
    assert host.state()["addresses"] == [] and host.state()["mounts"] == []


# §2.2 file-type conventions ---------------------------------------------------------------

@pytest.mark.parametrize(("data", "value", "ok"), [
    (b"abc\n", "abc", True),
    (b"abc", "abc", False),  # no newline: `read` fails but hands over the text
    (b"", "", False),  # empty file: `read` fails
    (b"\n", "", True),  # just a newline: empty value
    (b"  a  b \t\nsecond\n", "a  b", True),  # first line only, blanks trimmed
    (b"a\\\nb\n", "ab", True),  # a trailing backslash joins the next line
    (b"x\\ y\n", "x y", True),  # backslash escapes
])
def test_scalar_is_first_line_as_read_sees_it(tmp_path: Path, data: bytes, value: str,
                                              ok: bool) -> None:
    """§2.2 scalar: `read` without -r."""
    path = tmp_path / "f"
    path.write_bytes(data)
    assert tree.read_scalar(path) == tree.Scalar(value, ok)


def test_list_skips_comments_and_loses_unterminated_last_line(tmp_path: Path) -> None:
    """§2.2 list: blank and # lines skipped, a last line without newline is lost."""
    path = tmp_path / "bcapabilities"
    path.write_bytes(b"NET_ADMIN\n\n# comment\n  SYS_TIME  \nLOST")
    assert tree.read_list(path) == ["NET_ADMIN", "SYS_TIME"]


def test_array_keeps_hash_lines_blanks_and_last_line(tmp_path: Path) -> None:
    """§2.2 array: split on newlines only, # is data, unterminated last line kept."""
    path = tmp_path / "cmd.start"
    path.write_bytes(b"/bin/prog\n\n# not a comment\n--opt  x\nlast")
    assert tree.read_array(path) == ["/bin/prog", "# not a comment", "--opt  x", "last"]


UNGUARDED_READS = [  # §2.2: scalars whose missing newline fails a start (path, valid value)
    ("context", "40000"),
    ("ncontext", "40000"),
    ("tag", "40000"),
    ("badness", "5"),
    ("nice", "0"),
    ("ionice/class", "2"),
    ("ionice/priority", "4"),
    ("interfaces/bcast", "10.0.0.255"),
    ("interfaces/lback", "127.0.0.1"),
    ("apps/init/style", "sysv"),
    ("apps/init/runlevel", "3"),
    ("apps/init/runlevel.start", "3"),
    ("apps/init/runlevel.stop", "6"),
    ("cpuset/name", "cs1"),
    ("../.defaults/cgroup/mnt", "/sys/fs/cgroup"),
    ("../.defaults/cgroup/base", "vservers"),
]


def _write_with_cpuset(cfg: Path, rel: str, data: bytes) -> None:
    path = cfg / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if rel == "cpuset/name":
        (cfg / "cpuset/cpus").write_text("0-1\n")
        (cfg / "cpuset/mems").write_text("0\n")


@pytest.mark.parametrize(("rel", "value"), UNGUARDED_READS)
def test_scalar_without_trailing_newline_fails_start(host: VsHost, rel: str, value: str) -> None:
    """§2.2: set -e + unguarded read: no newline aborts the start with exit 1."""
    cfg = build(host)
    _write_with_cpuset(cfg, rel, value.encode())
    assert_failed_start(host, vs(host, "g1", "start"), 1)


@pytest.mark.parametrize(("rel", "value"), UNGUARDED_READS)
def test_empty_scalar_file_fails_start(host: VsHost, rel: str, value: str) -> None:
    """§2.2: an existing but empty (zero-byte) file makes read fail too."""
    cfg = build(host)
    _write_with_cpuset(cfg, rel, b"")
    assert_failed_start(host, vs(host, "g1", "start"), 1)


@pytest.mark.parametrize(("rel", "value"), UNGUARDED_READS)
def test_same_scalars_with_newline_start(host: VsHost, rel: str, value: str) -> None:
    """§2.2: with the trailing newline the same files are fine."""
    cfg = build(host)
    _write_with_cpuset(cfg, rel, f"{value}\n".encode())
    started(host)


def test_whole_file_readers_need_no_newline(host: VsHost) -> None:
    """§2.2: vuname --dir takes the whole uts file minus trailing newlines."""
    cfg = build(host, "g1", "--hostname", "web1")
    (cfg / "uts/domainname").write_text("example.org")
    ctx = started(host)
    assert ctx["uts"]["nodename"] == "web1"
    assert ctx["uts"]["domainname"] == "example.org"
    assert ctx["uts"]["context"] == str(cfg)


@pytest.mark.parametrize("value", ["1", "49152", "abc", "-5"])
def test_context_outside_static_range_fails_start(host: VsHost, value: str) -> None:
    """§2.3 context: a static XID is 2-49151; the context cannot be created otherwise."""
    build(host, "g1", "--context", value)
    assert_failed_start(host, vs(host, "g1", "start"), 255)


def test_ncontext_and_tag_fall_back_to_context(host: VsHost) -> None:
    """§2.3 ncontext, tag: each falls back to context when absent."""
    cfg = build(host, "g1", "--context", "700")
    ctx = started(host)
    assert (ctx["xid"], ctx["nid"], ctx["tag"]) == (700, 700, 700)
    vs(host, "g1", "stop")
    (cfg / "ncontext").write_text("701\n")
    ctx = started(host)
    assert (ctx["xid"], ctx["nid"], ctx["tag"]) == (700, 701, 700)


def test_flags_and_capability_lists(host: VsHost) -> None:
    """§2.3 cflags (old name flags): namespace dropped, fakeinit is the fake-init mode."""
    cfg = build(host)
    (cfg / "flags").write_text("lock\nnamespace\n# comment\nfakeinit\nhideinfo")
    (cfg / "bcapabilities").write_text("NET_ADMIN\n~CAP_SYS_TIME\n")
    ctx = started(host)
    assert ctx["flags"] == ["lock"]  # hideinfo had no newline: lost
    assert ctx["init"]["fakeinit"] is True
    assert ctx["bcaps"] == ["NET_ADMIN", "~CAP_SYS_TIME"]


def test_cpuset_without_cpus_only_warns(host: VsHost) -> None:
    """§2.3 cpuset: any failure only prints the WARNING and the start goes on."""
    build(host, "g1", "--cpuset", "cs1")
    done = vs(host, "g1", "start")
    assert done.returncode == 0
    assert 'WARNING: Failed to create or CPUSET "cs1" does not exist! Not using it!' \
        in done.stderr
    assert host.context_of("g1")["cpuset"] is None


# §2.3 interfaces ----------------------------------------------------------------------------

def _iface(cfg: Path, files: dict[str, str], name: str = "0") -> None:
    """Write interfaces/NAME/<file>; a key starting with "/" goes to interfaces/ itself."""
    for rel, text in files.items():
        base = cfg / "interfaces"
        path = base / rel[1:] if rel.startswith("/") else base / name / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_interface_without_ip_fails_start(host: VsHost) -> None:
    """§2.3 interfaces/<ID>/ip is required: "Can not read ip for ..."."""
    cfg = build(host)
    _iface(cfg, {"dev": "eth0\n"})
    done = vs(host, "g1", "start")
    assert f"Can not read ip for '{cfg}/interfaces/0'" in done.stderr
    assert_failed_start(host, done, 1)


def test_interface_without_dev_and_nodev_fails_start(host: VsHost) -> None:
    """§2.3: no dev (own or inherited) and no nodev: "No device specified for ..."."""
    cfg = build(host)
    _iface(cfg, {"ip": "10.0.0.5\n"})
    done = vs(host, "g1", "start")
    assert f"No device specified for '{cfg}/interfaces/0'" in done.stderr
    assert_failed_start(host, done, 1)


def test_nodev_interface_binds_without_host_address(host: VsHost) -> None:
    """§2.3 nodev: the address is only bound to the guest."""
    cfg = build(host)
    _iface(cfg, {"ip": "10.0.0.5\n", "prefix": "24\n", "nodev": ""})
    ctx = started(host)
    assert ctx["ips"] == ["10.0.0.5/24"]
    assert host.state()["addresses"] == []


def test_interface_inherits_dev_and_prefix_from_parent(host: VsHost) -> None:
    """§2.3: dev, prefix, mask, bcast, scope, extip are inherited from interfaces/."""
    cfg = build(host)
    _iface(cfg, {"/dev": "eth1\n", "/prefix": "16\n", "/bcast": "10.1.255.255\n",
                 "ip": "10.1.0.5\n"})
    started(host)
    [address] = host.state()["addresses"]
    assert (address["dev"], address["address"], address["broadcast"]) == \
        ("eth1", "10.1.0.5/16", "10.1.255.255")


def test_own_interface_file_wins_unless_its_read_fails(host: VsHost) -> None:
    """§2.3: the per-interface file first; if read fails on it, the parent's."""
    cfg = build(host)
    _iface(cfg, {"/dev": "eth1\n", "/prefix": "16\n", "ip": "10.1.0.5\n", "dev": "eth0\n",
                 "prefix": "24"})  # own prefix has no newline: the parent's 16 is used
    started(host)
    [address] = host.state()["addresses"]
    assert (address["dev"], address["address"]) == ("eth0", "10.1.0.5/16")


def test_ip_and_name_are_not_inherited(host: VsHost) -> None:
    """§2.3: ip, name, mac, peer are per interface only."""
    cfg = build(host)
    _iface(cfg, {"/ip": "10.9.9.9\n", "/name": "x\n", "dev": "eth0\n"})
    done = vs(host, "g1", "start")
    assert "Can not read ip" in done.stderr
    assert_failed_start(host, done, 1)


@pytest.mark.parametrize(("files", "address", "stderr"), [
    ({"prefix": "20\n", "mask": "255.255.255.0\n"}, "10.0.0.5/20", ""),  # prefix wins
    ({"mask": "255.255.255.0\n"}, "10.0.0.5/24", ""),
    ({"mask": "255.255.128.0\n"}, "10.0.0.5/17", ""),
    ({"mask": "255.255.255.300\n"}, "10.0.0.5/255", "Invalid mask specified"),
    ({"mask": "255.255.x.0\n"}, "10.0.0.5/255", "Invalid mask specified"),
    ({}, "10.0.0.5", ""),  # neither: a host address
])
def test_prefix_versus_mask(host: VsHost, files: dict[str, str], address: str,
                            stderr: str) -> None:
    """§2.3: prefix wins; mask2prefix's exit status is the prefix (invalid -> 255)."""
    cfg = build(host)
    _iface(cfg, {"ip": "10.0.0.5\n", "dev": "eth0\n", **files})
    ctx = started(host)
    assert host.state()["addresses"][0]["address"] == address
    assert ctx["ips"] == [address]
    assert stderr in vs(host, "g1", "restart").stderr


@pytest.mark.parametrize(("mask", "prefix"), [
    ("255.255.255.255", 32), ("255.255.255.0", 24), ("255.0.0.0", 8), ("0.0.0.0", 0),
    ("", 0), ("255.255.254.0", 23), ("256.0.0.0", 255), ("-1.0.0.0", 255), (" 255", 8),
    ("255 ", 255),
])
def test_mask2prefix(mask: str, prefix: int) -> None:
    """§2.3 mask2prefix: its exit status."""
    assert numbers.mask2prefix(mask) == prefix


def test_interface_label_disabled_and_ipv6(host: VsHost) -> None:
    """§2.3: name gives the dev:name label, disabled is skipped, IPv6 has no broadcast."""
    cfg = build(host)
    _iface(cfg, {"ip": "10.0.0.5\n", "dev": "eth0\n", "name": "web\n"}, "00")
    _iface(cfg, {"ip": "10.0.0.6\n", "dev": "eth0\n", "disabled": ""}, "01")
    _iface(cfg, {"ip": "2001:db8::5\n", "dev": "eth1\n", "prefix": "64\n"}, "02")
    ctx = started(host)
    first, second = host.state()["addresses"]
    assert first["label"] == "eth0:web" and first["broadcast"] == "+"
    assert second["address"] == "2001:db8::5/64" and "broadcast" not in second
    assert ctx["ips"] == ["10.0.0.5", "2001:db8::5/64"]


def test_stop_removes_the_addresses_and_mounts_start_made(host: VsHost) -> None:
    """§2.3: dev is added at start and removed at stop; fstab mounts likewise."""
    cfg = build(host)
    _iface(cfg, {"ip": "10.0.0.5\n", "dev": "eth0\n", "prefix": "24\n"})
    started(host)
    assert len(host.state()["addresses"]) == 1 and len(host.state()["mounts"]) == 3
    assert vs(host, "g1", "stop").returncode == 0
    assert host.state()["addresses"] == [] and host.state()["mounts"] == []
    assert host.state()["contexts"] == {}


# §2.3 fstab -----------------------------------------------------------------------------------

def test_fstab_root_entries_first_then_fstab_then_local(host: VsHost) -> None:
    """§2.3 fstab: entries whose target is / first; fstab.local after fstab."""
    cfg = build(host)
    (cfg / "fstab").write_text("# comment\nnone /proc proc defaults 0 0\n"
                               "/dev/sda5 / ext4 defaults 0 0\n")
    (cfg / "fstab.local").write_text("/srv/data /data none bind 0 0\n")
    ctx = started(host)
    assert [(m["target"], m["fstab"]) for m in ctx["mounts"]] == [
        ("/", "fstab"), ("/proc", "fstab"), ("/data", "fstab.local")]
    assert ctx["mounts"][2]["host_target"] == str(host.vdir("g1") / "data")


# §2.3 init styles -----------------------------------------------------------------------------

def test_no_style_file_means_sysv(host: VsHost) -> None:
    """§2.3 apps/init/style: no file means sysv, runlevel 3 to start and 6 to stop."""
    build(host)
    ctx = started(host)
    assert ctx["init"]["style"] == "sysv"
    assert ctx["init"]["start"] == ["/etc/init.d/rc", "3"]
    assert ctx["init"]["stop"] == ["/etc/init.d/rc", "6"]


def test_unknown_init_style_fails_start(host: VsHost) -> None:
    """§2.3: any other value aborts with "Unknown init-style 'X'; aborting"."""
    build(host, "g1", "--initstyle", "upstart")
    done = vs(host, "g1", "start")
    assert "Unknown init-style 'upstart'; aborting" in done.stderr
    assert_failed_start(host, done, 1)


def test_plain_style_and_runlevel_start_override(host: VsHost) -> None:
    """§2.3: plain runs the guest's /sbin/init; runlevel.start overrides runlevel."""
    cfg = build(host, "g1", "--initstyle", "plain")
    (cfg / "apps/init/runlevel").write_text("2\n")
    (cfg / "apps/init/runlevel.start").write_text("4\n")
    ctx = started(host)
    assert ctx["init"]["start"] == ["/sbin/init", "4"]
    assert ctx["init"]["fakeinit"] is True


def test_style_with_empty_first_line_runs_no_style_command(host: VsHost) -> None:
    """§2.3: an empty first line means no init command unless cmd.start supplies one."""
    cfg = build(host)
    (cfg / "apps/init/style").write_text("\n")
    assert_failed_start(host, vs(host, "g1", "start"), 255)  # nothing to run in the context
    (cfg / "apps/init/cmd.start").write_text("/sbin/init\nfast\n")
    assert started(host)["init"]["start"] == ["/sbin/init", "fast"]


def test_killseq_is_one_token_per_line(host: VsHost) -> None:
    """§2.3 killseq: default 15 5 9; written on one line it is a single token."""
    cfg = build(host)
    assert started(host)["init"]["killseq"] == ["15", "5", "9"]
    vs(host, "g1", "stop")
    (cfg / "apps/init/killseq").write_text("15 5 9\n")
    assert started(host)["init"]["killseq"] == ["15 5 9"]


def test_sysv_guest_without_rc_script_cannot_start(host: VsHost) -> None:
    """§2.3 sysv needs /etc/init.d/rc or /etc/rc.d/rc in the guest (a skeleton has none)."""
    build(host, method="skeleton")
    assert_failed_start(host, vs(host, "g1", "start"), 255)


# §2.3 sched -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "value"), [
    (b"010\n", 8), (b"0x10\n", 16), (b"42\n", 42), (b"  42\n", 42), (b"-5\n", -5),
    (b"7\nthe rest is ignored", 7), (b"9", 9),
])
def test_sched_values_are_strtol_base_0(host: VsHost, data: bytes, value: int) -> None:
    """§2.3 sched/: strtol base 0, leading blanks allowed, ends at the first newline."""
    cfg = build(host)
    (cfg / "sched").mkdir()
    (cfg / "sched/fill-rate").write_bytes(data)
    ctx = started(host)
    assert [ctx["sched"]["cpus"][c]["fill-rate"] for c in ("0", "1")] == [value, value]


@pytest.mark.parametrize("data", [b"5 \n", b"5\r\n", b"5k\n", b"", b"abc\n", b"08\n", b"\n5\n"])
def test_sched_value_that_is_not_an_integer_fails_start(host: VsHost, data: bytes) -> None:
    """§2.3 sched/: a trailing blank, \\r, a suffix or an empty file: "is not an integer"."""
    cfg = build(host)
    (cfg / "sched").mkdir()
    (cfg / "sched/interval").write_bytes(data)
    done = vs(host, "g1", "start")
    assert "interval: is not an integer" in done.stderr
    assert_failed_start(host, done, 1)


def test_sched_per_cpu_subdirectories_and_idle_time(host: VsHost) -> None:
    """§2.3: globals go to all CPUs, then each subdir to its cpu-id; idle-time carries over."""
    cfg = build(host)
    (cfg / "sched/cpu1").mkdir(parents=True)
    for name, text in (("fill-rate", "10\n"), ("interval", "100\n"), ("prio-bias", "2\n"),
                       ("fill-rate2", "3\n"), ("unknown-file", "junk\n"),
                       ("cpu1/cpu-id", "1\n"), ("cpu1/fill-rate", "50\n")):
        (cfg / "sched" / name).write_text(text)
    cpus = started(host)["sched"]["cpus"]
    assert cpus["0"] == {"fill-rate": 10, "interval": 100, "priority-bias": 2,
                         "fill-rate2": 3, "idle-time": True}
    assert cpus["1"]["fill-rate"] == 50 and cpus["1"]["interval"] == 100
    assert cpus["1"]["idle-time"] is True


def test_schedule_file_used_only_without_sched_dir(host: VsHost) -> None:
    """§2.3 schedule: the deprecated 6-line form; fewer lines: "Bad content in ...". """
    cfg = build(host)
    (cfg / "schedule").write_text("1\n2\n3\n4\n5\n")
    done = vs(host, "g1", "start")
    assert f"Bad content in '{cfg}/schedule'" in done.stderr
    assert_failed_start(host, done, 1)
    (cfg / "schedule").write_text("1\n2\n3\n4\n5\n6\n")
    assert started(host)["sched"]["cpus"]["0"]["priority-bias"] == 6
    vs(host, "g1", "stop")
    (cfg / "sched").mkdir()
    # sched/ exists (empty): schedule is ignored; vsched only switches idle time off
    assert started(host)["sched"]["cpus"]["0"] == {"idle-time": False}


# §2.3 rlimits / ulimits -----------------------------------------------------------------------

@pytest.mark.parametrize(("data", "value"), [
    (b"100\n", 100), (b"4K\n", 4096), (b"2M\n", 2 * 1024 * 1024), (b"3k\n", 3000),
    (b"1m\n", 1_000_000), (b"inf\n", "inf"), (b"infinity", "inf"), (b"0x10\n", 16),
    (b"5", 5), (b" 7\n", 7),
])
def test_rlimit_values(host: VsHost, data: bytes, value: int | str) -> None:
    """§2.3 rlimits: inf, strtoll base 0, one suffix K/M (x1024) or k/m (x1000)."""
    cfg = build(host)
    (cfg / "rlimits").mkdir()
    (cfg / "rlimits/nproc").write_bytes(data)
    assert started(host)["rlimits"]["nproc"] == {"min": value, "soft": value, "hard": value}


@pytest.mark.parametrize("data", [b"5 \n", b"5x\n", b"", b"K\n", b"4KB\n", b"abc\n"])
def test_invalid_rlimit_fails_start_with_255(host: VsHost, data: bytes) -> None:
    """§2.3 rlimits: "Invalid limit in 'FILE'" and exit 255."""
    cfg = build(host)
    (cfg / "rlimits").mkdir()
    (cfg / "rlimits/as.soft").write_bytes(data)
    done = vs(host, "g1", "start")
    assert f"Invalid limit in '{cfg}/rlimits/as.soft'" in done.stderr
    assert_failed_start(host, done, 255)


def test_rlimit_suffixed_files_override_the_plain_one(host: VsHost) -> None:
    """§2.3: <res> sets min, soft and hard; .min/.soft/.hard override one each."""
    cfg = build(host)
    (cfg / "rlimits").mkdir()
    (cfg / "rlimits/nofile").write_text("1000\n")
    (cfg / "rlimits/nofile.soft").write_text("500\n")
    (cfg / "rlimits/rss.hard").write_text("1M\n")
    limits = started(host)["rlimits"]
    assert limits["nofile"] == {"min": 1000, "soft": 500, "hard": 1000}
    assert limits["rss"] == {"hard": 1024 * 1024}


def test_ulimits_clamp_soft_to_hard_and_fail_with_255(host: VsHost) -> None:
    """§2.3 ulimits: soft above hard is lowered; no file: unlimited hard; errors exit 255."""
    cfg = build(host)
    (cfg / "ulimits").mkdir()
    (cfg / "ulimits/nofile.hard").write_text("1024\n")
    (cfg / "ulimits/nofile.soft").write_text("4096\n")
    (cfg / "ulimits/core").write_text("inf\n")
    ulimits = started(host)["ulimits"]
    assert ulimits["nofile"] == {"soft": 1024, "hard": 1024}
    assert ulimits["core"] == {"soft": "inf", "hard": "inf"}
    assert ulimits["stack"]["hard"] == "inf"
    vs(host, "g1", "stop")
    (cfg / "ulimits/nproc").write_text("12 \n")
    done = vs(host, "g1", "start")
    assert "Invalid limit in 'nproc'" in done.stderr
    assert_failed_start(host, done, 255)


# §2.4 build -----------------------------------------------------------------------------------

def test_skeleton_build_writes_the_tree(host: VsHost) -> None:
    """§2.3/§2.4: what build writes; every file ends with a newline; empty dirs exist."""
    cfg = build(host, "g1", "--hostname", "web1", "--interface", "eth0:10.0.0.5/24",
                "--flags", "lock,nproc", "--initstyle", "plain", method="skeleton")
    assert (cfg / "name").read_text() == "g1\n"
    assert (cfg / "context").read_text() == "40000\n"
    assert (host.defaults / "context.next").read_text() == "40001\n"
    assert (cfg / "uts/nodename").read_text() == "web1\n"
    assert (cfg / "cflags").read_text() == "lock\nnproc\n"
    assert (cfg / "apps/init/style").read_text() == "plain\n"
    assert {p.name: p.read_text() for p in (cfg / "interfaces/0").iterdir()} == \
        {"dev": "eth0\n", "ip": "10.0.0.5\n", "prefix": "24\n"}
    for sub in ("interfaces", "apps/init", "uts", "cpuset"):
        assert (cfg / sub).is_dir()
    assert list((cfg / "cpuset").iterdir()) == []
    assert os.readlink(cfg / "vdir") == str(host.defaults / "vdirbase/g1")
    assert (cfg / "vdir").resolve() == host.vdirbase / "g1"
    assert os.readlink(cfg / "run") == str(host.run_dir / "g1")
    assert os.readlink(cfg / "cache") == str(host.root / "var/cache/vservers/g1")
    assert (cfg / "fstab").read_text().split("\n")[0].split() == \
        ["none", "/proc", "proc", "defaults", "0", "0"]
    vdir = host.vdir("g1")
    assert (vdir / "dev/null").exists() and (vdir / "dev/pts").is_dir()
    assert (vdir / "proc").is_dir()
    assert (vdir / "etc/resolv.conf").read_text() == "nameserver 192.0.2.53\n"
    for path in cfg.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_size:
            assert path.read_bytes().endswith(b"\n"), path


def test_context_next_counts_up_unless_context_or_dynamic(host: VsHost) -> None:
    """§2.3 context: from .defaults/context.next, starting at 40000; --context; dynamic."""
    assert (build(host, "a") / "context").read_text() == "40000\n"
    assert (build(host, "b") / "context").read_text() == "40001\n"
    assert (build(host, "c", "--context", "1234") / "context").read_text() == "1234\n"
    assert (host.defaults / "context.next").read_text() == "40002\n"
    (host.defaults / "context.dynamic").touch()
    assert not (build(host, "d") / "context").exists()
    assert (host.defaults / "context.next").read_text() == "40002\n"
    assert started(host, "d")["xid"] == 49152  # dynamic XIDs


@pytest.mark.parametrize(("spec", "opts", "files", "stderr"), [
    ("eth0:10.0.0.5/24", (), {"dev": "eth0", "ip": "10.0.0.5", "prefix": "24"}, ""),
    ("web=eth0:10.0.0.5/255.255.255.0", (),
     {"name": "web", "dev": "eth0", "ip": "10.0.0.5", "mask": "255.255.255.0"}, ""),
    ("10.0.0.6", (), {"ip": "10.0.0.6", "nodev": None},
     "No device specified for interface '0'; setting 'nodev'"),
    ("nodev:10.0.0.7/8", (), {"ip": "10.0.0.7", "prefix": "8", "nodev": None}, ""),
    ("2001:db8::1/64", (), {"dev": "2001", "ip": "db8::1", "prefix": "64"}, ""),
    ("eth0:2001:db8::1/64", (), {"dev": "eth0", "ip": "2001:db8::1", "prefix": "64"}, ""),
    ("10.0.0.8", ("--netdev", "eth1"), {"ip": "10.0.0.8"}, ""),
])
def test_build_splits_interface(host: VsHost, spec: str, opts: tuple[str, ...],
                                files: dict[str, str | None], stderr: str) -> None:
    """§2.4 "How build splits --interface" (including the IPv6 mis-split)."""
    done = host.call("vserver", "g1", "build", "-m", "skeleton", *opts, "--interface", spec)
    assert done.returncode == 0 and stderr in done.stderr
    directory = host.guest_dir("g1") / "interfaces/0"
    written = {p.name: (p.read_text().rstrip("\n") if p.stat().st_size else None)
               for p in directory.iterdir()}
    assert written == files
    if opts:
        assert (host.guest_dir("g1") / "interfaces/dev").read_text() == "eth1\n"


def test_build_network_defaults_and_cpuset(host: VsHost) -> None:
    """§2.4: interfaces/{dev,mask,prefix,bcast} and the cpuset files build writes."""
    cfg = build(host, "g1", "--netdev", "eth0", "--netmask", "255.255.0.0", "--netbcast",
                "10.1.255.255", "--cpuset", "cs1", "--cpusetcpus", "0-1:1", "--cpusetmems",
                "0", "--interface", "10.1.0.5")
    assert [(cfg / f"interfaces/{f}").read_text() for f in ("dev", "mask", "bcast")] == \
        ["eth0\n", "255.255.0.0\n", "10.1.255.255\n"]
    assert (cfg / "cpuset/cpus_exclusive").read_text() == "1\n"  # which start never reads
    ctx = started(host)
    assert host.state()["addresses"][0]["address"] == "10.1.0.5/16"
    assert ctx["cpuset"] == {"name": "cs1", "created": True,
                             "files": {"cpus": "0-1", "mems": "0"}}


def test_reference_example_debootstrap_build(host: VsHost) -> None:
    """§2.4 example: debootstrap --hostname web1 --interface eth0:10.0.0.5/24 -- -d etch."""
    cfg = build(host, "web1", "--hostname", "web1", "--interface", "eth0:10.0.0.5/24",
                method="debootstrap", method_args=("-d", "etch"))
    assert [(cfg / f"interfaces/0/{f}").read_text() for f in ("dev", "ip", "prefix")] == \
        ["eth0\n", "10.0.0.5\n", "24\n"]
    assert (cfg / "apps/pkgmgmt/internal").exists()
    vdir = host.vdir("web1")
    assert (vdir / "etc/apt/sources.list").read_text() == \
        "deb http://ftp.debian.org/debian etch main\n"
    assert (vdir / "etc/debian_version").read_text() == "4.0\n"
    assert (vdir / "dev/null").exists()
    assert started(host, "web1")["init"]["start"] == ["/etc/init.d/rc", "3"]


def test_debootstrap_mirror_and_missing_distribution(host: VsHost) -> None:
    """§2.4 debootstrap -- -d DIST [-m MIRROR]; without -d the distribution is unknown."""
    build(host, "g1", method="debootstrap", method_args=("-d", "bookworm", "-m",
                                                         "http://deb.example/debian"))
    assert (host.vdir("g1") / "etc/apt/sources.list").read_text() == \
        "deb http://deb.example/debian bookworm main\n"
    done = vs(host, "g2", "build", "-m", "debootstrap")
    assert done.returncode == 1 and "-d" in done.stderr
    assert not host.guest_dir("g2").exists()


def test_template_build_extracts_tarball(host: VsHost, tmp_path: Path) -> None:
    """§2.4 template -- -t tarball: the tarball becomes the guest root."""
    tarball = make_template(tmp_path / "t.tar.gz", {"etc/motd": "hello\n",
                                                     "etc/init.d/rc": "#!/bin/sh\n"})
    build(host, "g1", method="template", method_args=("-t", str(tarball)))
    assert (host.vdir("g1") / "etc/motd").read_text() == "hello\n"
    assert os.access(host.vdir("g1") / "etc/init.d/rc", os.X_OK)


def test_template_build_failure_leaves_nothing(host: VsHost, tmp_path: Path) -> None:
    """§2.4 template: a missing tarball fails the build; generated files are removed."""
    done = vs(host, "g1", "build", "-m", "template", "--", "-t", str(tmp_path / "nope.tgz"))
    assert done.returncode == 1
    assert not host.guest_dir("g1").exists() and not (host.vdirbase / "g1").exists()


def test_unknown_build_method_is_refused(host: VsHost) -> None:
    """§2.4 build methods: anything else is refused."""
    done = vs(host, "g1", "build", "-m", "nosuch")
    assert done.returncode == 1 and "Unknown build-method 'nosuch'" in done.stderr
    assert not host.guest_dir("g1").exists()


def test_existing_guest_needs_force(host: VsHost) -> None:
    """§2.4: an existing guest is refused without --force; --force moves it aside."""
    cfg = build(host)
    (host.vdir("g1") / "marker").write_text("old\n")
    done = vs(host, "g1", "build", "-m", "skeleton")
    assert done.returncode == 1 and "--force" in done.stderr
    assert (host.vdir("g1") / "marker").exists() and (cfg / "context").exists()
    assert (host.defaults / "context.next").read_text() == "40001\n"
    build(host, "g1", "--force", method="skeleton")
    assert not (host.vdir("g1") / "marker").exists()
    assert (cfg / "context").read_text() == "40001\n"
    assert len(list(host.config_root.glob("g1.~*~"))) == 1


# §2.4 commands ---------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["status", "start", "running", "nosuchcommand"])
def test_missing_config_dir_exits_5(host: VsHost, command: str) -> None:
    """§2.4 exit codes: "Can not find a vserver-setup at 'DIR/'." and 5, for every command."""
    done = vs(host, "ghost", command)
    assert done.returncode == 5
    assert f"Can not find a vserver-setup at '{host.guest_dir('ghost')}/'." in done.stderr


def test_bad_option_exits_1_and_unknown_command_2(host: VsHost) -> None:
    """§2.4: a bad option exits 1; an unknown command on a real guest prints usage, 2."""
    build(host)
    assert vs(host, "--bogus", "g1", "status").returncode == 1
    done = vs(host, "g1", "frobnicate")
    assert done.returncode == 2 and "Usage" in done.stderr


def test_start_twice_and_stop_when_stopped(host: VsHost) -> None:
    """§2.4: already running: warning, exit 0; stop when not running: warning, exit 0."""
    build(host)
    xid = started(host)["xid"]
    again = vs(host, "g1", "start")
    assert again.returncode == 0 and "already running" in again.stderr
    assert list(host.state()["contexts"]) == [str(xid)]
    assert vs(host, "g1", "stop").returncode == 0
    stopped = vs(host, "g1", "stop")
    assert stopped.returncode == 0 and "not running" in stopped.stderr


def test_status_exit_codes_and_silent(host: VsHost) -> None:
    """§2.4 status: running 0 with context, process count and uptime; stopped 3."""
    build(host)
    done = vs(host, "g1", "status")
    assert (done.returncode, done.stdout) == (3, "Vserver 'g1' is stopped\n")
    with host.frozen_clock(1_800_000_000):
        started(host)
    with host.frozen_clock(1_800_000_000 + 2 * 86400 + 3 * 3600 + 4 * 60):
        done = vs(host, "g1", "status")
    assert done.returncode == 0
    assert done.stdout.splitlines() == ["Vserver 'g1' is running at context '40000'",
                                        "Number of processes:  1",
                                        "Uptime:               2 days, 03:04"]
    silent = vs(host, "--silent", "g1", "status")
    assert (silent.returncode, silent.stdout) == (0, "")
    vs(host, "g1", "stop")
    assert vs(host, "--silent", "g1", "status").returncode == 3


def test_running_deletes_stale_run_file_status_does_not(host: VsHost) -> None:
    """§2.4 running: 0/1; a stale run file is deleted by running, never by status."""
    build(host)
    assert vs(host, "g1", "running").returncode == 1
    xid = started(host)["xid"]
    assert vs(host, "g1", "running").returncode == 0
    host.set_context(xid, procs=0)  # no processes left: stale
    run_file = host.run_dir / "g1"
    assert vs(host, "g1", "status").returncode == 3 and run_file.exists()
    done = vs(host, "g1", "running")
    assert (done.returncode, done.stdout, done.stderr) == (1, "", "")
    assert not run_file.exists()


def test_run_file_of_another_guest_is_stale(host: VsHost) -> None:
    """§2.4/§2.5: the run file's context must have been started from this config dir."""
    build(host, "g1")
    build(host, "g2")
    xid2 = started(host, "g2")["xid"]
    (host.run_dir / "g1").write_text(f"{xid2}\n")
    assert vs(host, "g1", "running").returncode == 1
    assert not (host.run_dir / "g1").exists() and (host.run_dir / "g2").exists()


def test_crashed_context_is_cleaned_up_by_stop(host: VsHost) -> None:
    """§2.4 stop: not running: warns, cleans up mounts and interfaces, exit 0."""
    cfg = build(host)
    _iface(cfg, {"ip": "10.0.0.5\n", "dev": "eth0\n"})
    xid = started(host)["xid"]
    host.kill_context(xid)
    assert host.state()["addresses"] and host.state()["mounts"]
    done = vs(host, "g1", "stop")
    assert done.returncode == 0 and "not running" in done.stderr
    assert host.state()["addresses"] == [] and host.state()["mounts"] == []


def test_exec_only_for_running_guests(host: VsHost) -> None:
    """§2.4 exec: argv passed through without a shell; running guests only, else exit 1."""
    build(host)
    assert vs(host, "g1", "exec", "/bin/true").returncode == 1
    started(host)
    done = vs(host, "g1", "exec", "/bin/echo-args", "a b", "$HOME")
    assert (done.returncode, done.stdout) == (0, "a b\n$HOME\n")
    assert vs(host, "g1", "exec", "/bin/false").returncode == 1
    assert vs(host, "g1", "exec", "/no/such/prog").returncode == 255


def test_delete_needs_confirmation_without_silent(host: VsHost) -> None:
    """§2.4 delete: prompts unless --silent; exit 2 if not confirmed."""
    cfg = build(host)
    for answer in ("", "n\n", "yes\n"):
        assert vs(host, "g1", "delete", stdin=answer).returncode == 2
        assert cfg.is_dir() and host.vdir("g1").is_dir()
    assert vs(host, "g1", "delete", stdin="y\n").returncode == 0
    assert not cfg.exists()


def test_silent_delete_of_running_guest_stops_it_first(host: VsHost) -> None:
    """§2.4 delete: stops the guest, then removes vdir, config dir, cache and run file."""
    cfg = build(host)
    _iface(cfg, {"ip": "10.0.0.5\n", "dev": "eth0\n"})
    cache = host.root / "var/cache/vservers/g1"
    cache.mkdir(parents=True)
    vdir = host.vdir("g1")
    started(host)
    done = vs(host, "--silent", "g1", "delete")
    assert done.returncode == 0, done.stderr
    assert host.state()["contexts"] == {} and host.state()["addresses"] == []
    for path in (cfg, vdir, cache, host.run_dir / "g1"):
        assert not path.exists(), path
    assert host.vdirbase.is_dir() and host.config_root.is_dir()


def test_restart_and_condrestart(host: VsHost) -> None:
    """§2.4 restart/condrestart: condrestart starts nothing when the guest is stopped."""
    build(host)
    assert vs(host, "g1", "condrestart").returncode == 0
    assert host.context_of("g1") is None
    first = started(host)["initpid"]
    assert vs(host, "g1", "restart").returncode == 0
    assert host.context_of("g1")["initpid"] != first
    assert vs(host, "g1", "condrestart").returncode == 0
    assert host.context_of("g1") is not None


def test_name_resolution(host: VsHost) -> None:
    """§2.4 "How NAME is resolved": trailing /, ./rel, /abs, XID lookup."""
    cfg = build(host)
    assert vs(host, "g1/", "status").stdout == "Vserver 'g1' is stopped\n"
    done = host.call("vserver", "./g1", "status", cwd=host.config_root)
    assert done.returncode == 3
    started(host)
    assert vs(host, str(cfg), "status").returncode == 0
    assert vs(host, str(cfg) + "/", "running").returncode == 0
    by_xid = vs(host, "40000", "status")
    assert by_xid.stdout.startswith("Vserver '40000' is running at context '40000'")


def test_legacy_conf_path_warns(host: VsHost) -> None:
    """§2.4: no dir but NAME.conf: "WARNING: can not find configuration, assuming legacy"."""
    (host.config_root / "old.conf").write_text("S_CONTEXT=10\n")
    done = vs(host, "old", "status")
    assert done.returncode != 0
    assert "WARNING: can not find configuration, assuming legacy method" in done.stderr


def test_static_context_in_use_by_a_path_named_guest(host: VsHost) -> None:
    """§2.3 context: two guests with one static XID cannot run together (254)."""
    build(host, "g1", "--context", "500")
    build(host, "g2", "--context", "500")
    started(host, "g1")
    done = vs(host, str(host.guest_dir("g2")), "start")
    assert "File exists" in done.stderr and "Failed to start vserver 'g2'" in done.stderr
    assert done.returncode == 254 and host.context_of("g2") is None


# §2.5 vserver-stat ------------------------------------------------------------------------------

def test_vserver_stat_without_guests_prints_the_header(host: VsHost) -> None:
    """§2.5: header exactly; nothing else when no context runs."""
    done = host.call("vserver-stat")
    assert (done.returncode, done.stdout) == (0, HEADER + "\n")


def test_vserver_stat_one_guest_columns(host: VsHost) -> None:
    """§2.5: fixed columns: PROC ends at 10, VSZ 17, RSS 24, times 34/44/54, NAME at 55."""
    build(host)
    with host.frozen_clock(1_800_000_000):
        xid = started(host)["xid"]
    host.set_context(xid, procs=12, vm_pages=384, rss_pages=1, utime_ms=303_215,
                     stime_ms=7_501_000)
    with host.frozen_clock(1_800_000_000 + 3 * 86400 + 4 * 3600 + 12 * 60 + 5):
        lines = host.call("vserver-stat").stdout.splitlines()
    assert lines == [HEADER,
                     "40000   12   1.5M     4K   5m03s21   2h05m01   3d04h12 g1"]
    line = lines[1]
    assert line[:10].endswith("12") and line[10:17].endswith("1.5M")
    assert line[44:54].endswith("3d04h12") and line[55:] == "g1"


def test_vserver_stat_several_guests_sorted_by_xid(host: VsHost) -> None:
    """§2.5: ascending XID; NAME from `name` (trailing newlines dropped), cut to 20."""
    build(host, "zeta", "--context", "300")
    build(host, "alpha", "--context", "200")
    build(host, "mid", "--context", "1000")
    (host.guest_dir("mid") / "name").write_text("a-very-long-display-name-indeed\n\n")
    for name in ("mid", "zeta", "alpha"):
        started(host, name)
    rows = host.call("vserver-stat").stdout.splitlines()[1:]
    assert [r.split()[0] for r in rows] == ["200", "300", "1000"]
    assert [r[55:] for r in rows] == ["alpha", "zeta", "a-very-long-display-"]


def test_vserver_stat_context_without_config_has_empty_name(host: VsHost) -> None:
    """§2.5: a context with no config gets an empty NAME, the line padded to column 55."""
    build(host)
    started(host)
    host.set_context(40000, uts={"context": str(host.root / "gone")})
    line = host.call("vserver-stat").stdout.splitlines()[1]
    assert len(line) == 55 and line.endswith(" ")


@pytest.mark.parametrize(("value", "text"), [
    (1536, "1.5K"), (1024, "1K"), (512, "512 "), (999, "999 "), (1000, "0.9K"),
    (5 * 1024**3, "5G"), (10**20, "86.7+"),
])
def test_vserver_stat_memory_format(value: int, text: str) -> None:
    """§2.5 shortenMem: divide by 1024 until below 1000, one truncated decimal, unit."""
    assert shorten_mem(value) == text


@pytest.mark.parametrize(("msec", "text"), [
    (5 * 60_000 + 3_215, "5m03s21"), (2 * 3_600_000 + 5 * 60_000 + 1_000, "2h05m01"),
    ((3 * 86400 + 4 * 3600 + 12 * 60) * 1000, "3d04h12"),
    ((1215 * 86400 + 5 * 3600) * 1000, "3y12d05"),  # 120 days keep only "12"
    ((999 * 86400) * 1000, "999d00h00"), ((485 * 86400 + 5 * 3600) * 1000, "485d05h00"),
    (0, "0m00s00"), (1_000_000 * 86400 * 1000, "INVALID"),
])
def test_vserver_stat_time_format(msec: int, text: str) -> None:
    """§2.5 shortenTime, with the two-digit parts cut to their first two digits."""
    assert shorten_time(msec) == text


def test_vserver_stat_row_right_alignment() -> None:
    """§2.5: PROC right-aligned ending at column 10, VSZ/RSS 7-char fields."""
    line = row(7, 3, 1024, 2048, 0, 0, 0, "n")
    assert line == "7        3     1K     2K   0m00s00   0m00s00   0m00s00 n"


def test_vserver_stat_options(host: VsHost) -> None:
    """§2.5: -O/--sort ARG ignored; a bad option or a stray argument exits 1."""
    assert host.call("vserver-stat", "-O", "ctx").returncode == 0
    assert host.call("vserver-stat", "--sort=ctx").returncode == 0
    bad = host.call("vserver-stat", "--bogus")
    assert bad.returncode == 1 and "Try 'vserver-stat --help' for more information." in bad.stderr
    stray = host.call("vserver-stat", "extra")
    assert stray.returncode == 1
    assert "Unknown parameter, use '--help' for more information" in stray.stderr


# §2.5 vserver-info ------------------------------------------------------------------------------

def test_vserver_info_probes(host: VsHost) -> None:
    """§2.5: RUNNING prints 1 or fails silently; CONTEXT, VDIR, CFGDIR, NAME, UTS."""
    cfg = build(host, "g1", "--hostname", "web1")

    def info(*args: str) -> Result:
        return host.call("vserver-info", *args)

    stopped = info("g1", "RUNNING")
    assert (stopped.returncode, stopped.stdout, stopped.stderr) == (1, "", "")
    assert info("g1", "CONTEXT").stdout == "40000\n"  # the static context
    assert info("g1", "CONTEXT", "0").returncode == 1  # only a running one
    assert info("g1", "VDIR").stdout == f"{cfg}/vdir\n"
    assert info("g1", "VDIR", "1").stdout == f"{host.vdirbase / 'g1'}\n"
    assert info("g1", "CFGDIR").stdout == f"{cfg}\n"
    (cfg / "name").write_text("Web One\n")
    assert info("g1", "NAME").stdout == "Web One\n"
    started(host)
    assert info("g1", "RUNNING").stdout == "1\n"
    assert info("40000", "RUNNING").stdout == "1\n"
    assert info("g1", "CONTEXT", "0").stdout == "40000\n"
    assert info("40000", "UTS", "nodename").stdout == "web1\n"
    assert info("40000", "XIDTYPE").stdout == "static\n"
    assert info("-", "FEATURE", "vstat").returncode == 0
    assert info("nosuch", "VDIR").returncode == 1


# call log, faults, executables, live changes ----------------------------------------------------

def test_call_log_records_every_invocation(host: VsHost) -> None:
    """Call log: one JSON line per call, with argv and rc."""
    build(host)
    vs(host, "g1", "status")
    host.call("vserver-stat")
    assert [(c["tool"], c["argv"][1:2], c["rc"]) for c in host.calls()] == [
        ("vserver", ["build"], 0), ("vserver", ["status"], 3), ("vserver-stat", [], 0)]
    assert not any("delete" in c["argv"] for c in host.calls())


def test_faults_are_injected_and_counted(host: VsHost) -> None:
    """Fault injection: a matching call prints the message and exits rc, doing nothing."""
    build(host)
    host.set_faults([{"tool": "vserver", "command": "start", "name": "g1", "rc": 7,
                      "message": "injected failure", "times": 1}])
    done = vs(host, "g1", "start")
    assert (done.returncode, done.stderr) == (7, "injected failure\n")
    assert host.context_of("g1") is None
    assert json.loads(host.faults_file.read_text())[0]["times"] == 0
    started(host)
    assert [c["rc"] for c in host.calls()][-2:] == [7, 0]


def test_executables_on_path(host: VsHost) -> None:
    """The bin scripts work as executables with tests/sims/vserver/bin first on PATH."""
    for tool in ("vserver", "vserver-stat", "vserver-info"):
        assert os.access(host.bin_dir / tool, os.X_OK)
    built = host.run("vserver", "g1", "build", "-m", "template", "--", "-t", str(host.template))
    assert built.returncode == 0, built.stderr
    assert host.run("vserver", "g1", "start").returncode == 0
    assert host.run("vserver-info", "g1", "RUNNING").stdout == "1\n"
    assert host.run("vserver-stat").stdout.splitlines()[1].startswith("40000")
    assert host.run("vserver", "g1", "exec", "/bin/echo-args", "x").stdout == "x\n"
    assert host.run("vserver", "g1", "delete").returncode == 2  # stdin is not a "y"
    assert [c["tool"] for c in host.calls()] == ["vserver", "vserver", "vserver-info",
                                                 "vserver-stat", "vserver", "vserver"]


def test_missing_vssim_root_is_an_error(host: VsHost) -> None:
    """VSSIM_ROOT is required."""
    env = host.env()
    del env["VSSIM_ROOT"]
    done = subprocess.run(["vserver-stat"], capture_output=True, text=True, env=env, check=False)
    assert done.returncode != 0 and "VSSIM_ROOT" in done.stderr


def test_live_changes_touch_only_the_kernel_state(host: VsHost) -> None:
    """§2.6: vuname/vsched-like changes to a running context; files stay as they are."""
    cfg = build(host, "g1", "--hostname", "web1")
    xid = started(host)["xid"]
    live.set_uts(host.layout, xid, nodename="web2")
    live.set_sched(host.layout, xid, {"fill-rate": 5, "interval": 10}, cpu_id=1)
    ctx = host.context_of("g1")
    assert ctx["uts"]["nodename"] == "web2" and (cfg / "uts/nodename").read_text() == "web1\n"
    assert ctx["sched"]["cpus"]["1"] == {"fill-rate": 5, "interval": 10, "idle-time": False}
    assert ctx["sched"]["cpus"]["0"] == {}
    with pytest.raises(LookupError):
        live.set_uts(host.layout, 4242, nodename="x")


# the low-level tools on a running context (§2.6) ------------------------------------------

def test_vuname_vsched_vlimit_change_the_running_context(host: VsHost) -> None:
    """§2.6: vuname -s -t, vsched (options or --dir), vlimit -M/-S/-H; files untouched."""
    cfg = build(host, "g1", "--hostname", "web1")
    xid = str(started(host)["xid"])
    assert host.call("vuname", "--xid", xid, "-s", "-t", "nodename=web2",
                     "-t", "machine=i586").returncode == 0
    assert host.call("vuname", "--xid", "g1", "-g", "nodename").stdout == "web2\n"
    assert host.call("vsched", "--xid", xid, "--fill-rate", "7", "--interval", "0x10",
                     "--cpu-id", "1", "--idle-time").returncode == 0
    (cfg / "sched").mkdir()
    (cfg / "sched/fill-rate").write_text("3\n")
    assert host.call("vsched", "--xid", xid, "--force", "--dir", str(cfg / "sched"),
                     "--missingok").returncode == 0
    assert host.call("vlimit", "--xid", xid, "-H", "--rss", "100", "-S", "--rss", "50",
                     "--nproc", "9").returncode == 0
    ctx = host.context_of("g1")
    assert ctx["uts"]["nodename"] == "web2" and ctx["uts"]["machine"] == "i586"
    assert ctx["sched"]["cpus"]["1"] == {"fill-rate": 3, "interval": 16, "idle-time": False}
    assert ctx["rlimits"] == {"rss": {"hard": 100, "soft": 50}, "nproc": {"hard": 9}}
    assert (cfg / "uts/nodename").read_text() == "web1\n"
    assert host.call("vsched", "--xid", xid, "--fill-rate", "x").returncode == 255
    assert host.call("vlimit", "--xid", xid, "--rss", "1 ").returncode == 255
    assert host.call("vuname", "--xid", "4242", "-s", "-t", "nodename=x").returncode == 1


def test_naddress_and_ip_change_addresses(host: VsHost) -> None:
    """naddress on the network context (by nid), `ip addr` on the host's devices; stop
    removes what the tree lists, also an address added by hand while it ran."""
    cfg = build(host, "g1", "--interface", "eth0:10.0.0.5/24")
    nid = str(started(host)["nid"])
    assert host.call("naddress", "--silent", "--nid", nid, "--add", "--ip",
                     "10.0.0.6/24", "--range", "10.1.0.1-10.1.0.9/24").returncode == 0
    assert host.call("naddress", "--nid", nid, "--remove", "--ip", "10.0.0.5/24").stdout == \
        "Removing 10.0.0.5/24\n"
    assert host.context_of("g1")["ips"] == ["10.0.0.6/24", "10.1.0.1-10.1.0.9/24"]
    assert host.call("naddress", "--nid", nid, "--add", "--ip", "nonsense").returncode == 255
    assert host.call("naddress", "--nid", "4242", "--add", "--ip", "1.2.3.4").returncode == 255
    assert host.call("ip", "addr", "add", "10.0.0.6/24", "broadcast", "+", "label",
                     "eth0:x", "dev", "eth0").returncode == 0
    assert host.call("ip", "addr", "add", "10.0.0.6/24", "dev", "eth0").returncode == 2
    assert host.call("ip", "addr", "add", "10.0.0.7/24", "dev", "eth9").returncode == 1
    assert host.call("ip", "link", "set", "eth0", "up").returncode == 0
    assert len(host.state()["addresses"]) == 2
    (cfg / "interfaces/0/ip").write_text("10.0.0.6\n")  # the tree now lists the new one
    assert vs(host, "g1", "stop").returncode == 0
    assert host.state()["addresses"] == []


def test_in_shell_scriptlets_add_chain_commands_and_keep_defaults(host: VsHost) -> None:
    """Scriptlets: a sourced one may add `naddress --add` to VSERVER_EXTRA_CMDS (run in the new
    context) and set DONT_SKIP_DEFAULTS; otherwise .defaults/scripts is skipped once the
    guest has its own; a failing one fails the start."""
    cfg = build(host)
    marker = host.root / "defaults-ran"
    (host.defaults / "scripts").mkdir()
    default = host.defaults / "scripts/prepre-start"
    default.write_text(f"#!/bin/sh\necho \"$1 $2\" > {marker}\n")
    default.chmod(0o755)
    own = cfg / "scripts/prepre-start.d/ranges"
    own.parent.mkdir(parents=True)
    own.write_text('VSERVER_EXTRA_CMDS=( "${VSERVER_EXTRA_CMDS[@]}" "$_NADDRESS" --add '
                   '--range 10.9.0.1-10.9.0.3 -- )\n')
    assert started(host)["ips"] == ["10.9.0.1-10.9.0.3"]
    assert not marker.exists()  # the guest has its own: the defaults are skipped
    assert vs(host, "g1", "stop").returncode == 0
    own.write_text(own.read_text() + "DONT_SKIP_DEFAULTS=1\n")
    started(host)
    assert marker.read_text() == "prepre-start g1\n"
    assert vs(host, "g1", "stop").returncode == 0
    own.write_text('VSERVER_EXTRA_CMDS=( /bin/true -- )\n')
    assert_failed_start(host, vs(host, "g1", "start"), 1)
    own.write_text("false\n")
    done = vs(host, "g1", "start")
    assert done.returncode == 1 and host.context_of("g1") is None


def test_fstab_is_split_as_secure_mount_does(host: VsHost) -> None:
    """secure-mount: lines at LF, fields at C isspace (VT, CR included), no unescaping; fewer
    than four fields is a syntax error that fails the start."""
    cfg = build(host)
    (cfg / "fstab").write_text("/srv/a\v/a none bind 0 0\n/srv/b\\040c /b none bind 0 0\n")
    ctx = started(host)
    assert [(m["source"], m["target"]) for m in ctx["mounts"]] == [
        ("/srv/a", "/a"), ("/srv/b\\040c", "/b")]
    assert vs(host, "g1", "stop").returncode == 0
    (cfg / "fstab").write_text("none /x tmpfs\n")
    done = vs(host, "g1", "start")
    assert_failed_start(host, done, 1)
    assert "fstab:1:" in done.stderr and "syntax error" in done.stderr


def test_boots_count_every_start(host: VsHost) -> None:
    build(host)
    started(host)
    vs(host, "g1", "start")  # already running: not a boot
    assert vs(host, "g1", "restart").returncode == 0
    assert host.state()["boots"] == {str(host.guest_dir("g1")): 2}


def test_per_host_tool_wrappers(host: VsHost) -> None:
    """VsHost.tool(NAME) runs the simulator for this host without VSSIM_ROOT in the env."""
    env = {k: v for k, v in os.environ.items() if k != "VSSIM_ROOT"}
    done = subprocess.run([str(host.tool("vserver-stat"))], capture_output=True, text=True,
                          env=env, check=False)
    assert done.returncode == 0 and done.stdout == HEADER + "\n"
