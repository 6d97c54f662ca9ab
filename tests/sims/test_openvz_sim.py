"""Tests of the OpenVZ vzctl/vzlist simulator against /work/shared/reference/native-formats.md §1.

Each test names the reference section it checks. Most run the tools in-process
(`VzHost.call`); a few run the executables on PATH (`VzHost.run`) to prove they work as
programs. Versions: "3" and "4" are legacy vzctl 3.0.x / 4.x, "7" is OpenVZ 7.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.sims.openvz.host import OSTEMPLATE, VzHost

LONG_MAX = 2**63 - 1


def make(tmp_path: Path, version: str = "4", **kw: object) -> VzHost:
    return VzHost(tmp_path / f"host{version}", version, **kw)  # type: ignore[arg-type]


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result


def put_ct(host: VzHost, ctid: int, text: str, *, private: bool = True) -> Path:
    """A hand-written CTID.conf plus (by default) an existing private area."""
    path = host.conf(ctid)
    path.write_text(text)
    if private:
        host.private(ctid).mkdir(parents=True, exist_ok=True)
    return path


def listed(host: VzHost, *args: str) -> list[dict[str, object]]:
    result = ok(host.call("vzlist", "-j", *args))
    data: list[dict[str, object]] = json.loads(result.stdout)
    return data


def field(host: VzHost, ctid: int, name: str) -> str:
    """The raw JSON text vzlist prints for one field (strings are not escaped)."""
    out = ok(host.call("vzlist", "-j", "-o", name, str(ctid))).stdout
    prefix = f'    "{name}": '
    line = next(x for x in out.splitlines() if x.startswith(prefix))
    return line[len(prefix):]


# ============================================================ §1.2 parsing

PARSE_ROWS = [
    # (line, legacy JSON value, O7 JSON value, field)   -- reference §1.2 table
    ("NAMESERVER=inherit # copy from host", '["inherit", "#", "copy", "from", "host"]',
     '["inherit"]', "nameserver"),
    ("HOSTNAME='web1'", "\"'web1'\"", '"web1"', "hostname"),
    ('HOSTNAME="web1', "null", '"web1"', "hostname"),
    ('DESCRIPTION="a" b', '"a"', '"a" b"', "description"),
    ('DESCRIPTION="a" # note', '"a"', '"a"', "description"),
    ('DESCRIPTION="say \\"hi\\""', '"say "hi""', '"say "hi""', "description"),
]


@pytest.mark.parametrize(("line", "legacy", "o7", "name"), PARSE_ROWS)
@pytest.mark.parametrize("version", ["4", "7"])
def test_parse_table_rows(tmp_path: Path, version: str, line: str, legacy: str, o7: str,
                          name: str) -> None:
    """§1.2: each row of 'line in the file / legacy value / O7 value'."""
    host = make(tmp_path, version)
    put_ct(host, 101, line + "\n")
    assert field(host, 101, name) == (legacy if version == "4" else o7)


def test_parse_unmatched_quote_and_no_equals_warnings(tmp_path: Path) -> None:
    """§1.2: legacy warns about unmatched quotes and a missing '='; O7 skips silently."""
    for version in ("4", "7"):
        host = make(tmp_path, version)
        path = put_ct(host, 101, 'HOSTNAME="web1\n. . .\n')
        err = ok(host.call("vzlist", "-a")).stderr
        if version == "4":
            assert f"Warning: can't parse {path}:1 (unmatched quotes), skipping" in err
            assert f"Warning: can't parse {path}:2 ('=' not found), skipping" in err
        else:
            assert err == ""


@pytest.mark.parametrize("version", ["4", "7"])
def test_parse_backslashes_and_key_not_trimmed(tmp_path: Path, version: str) -> None:
    """§1.2: unescaped backslashes are deleted first; `KEY =v` has the key `KEY `."""
    host = make(tmp_path, version)
    put_ct(host, 101, 'HOSTNAME=a\\\\b\\c\nDESCRIPTION ="x"\n   ONBOOT="yes"\n')
    assert field(host, 101, "hostname") == '"a\\bc"'
    assert field(host, 101, "description") == "null"
    assert field(host, 101, "onboot") == "true"


def test_parse_o7_hash_inside_word_is_text(tmp_path: Path) -> None:
    """§1.2: O7 ends the line only at a `#` that begins a word outside quotes."""
    host = make(tmp_path, "7")
    put_ct(host, 101, "HOSTNAME=web#1\nDESCRIPTION='x # y' # z\n")
    assert field(host, 101, "hostname") == '"web#1"'
    assert field(host, 101, "description") == '"x # y"'


def test_legacy_unknown_key_warns_only_verbose(tmp_path: Path) -> None:
    """§1.2: legacy warns about unknown keys only at verbose level >= 1."""
    host = make(tmp_path)
    path = put_ct(host, 101, 'FOO="bar"\n')
    quiet = ok(host.call("vzctl", "mount", "101"))
    assert "unknown parameter" not in quiet.stdout + quiet.stderr
    loud = ok(host.call("vzctl", "--verbose", "umount", "101"))
    assert f'Warning at {path}:1: unknown parameter FOO ("bar"), ignored' in loud.stdout


# ------------------------------------------------------------ duplicate keys

def test_duplicates_first_wins_legacy_last_wins_o7(tmp_path: Path) -> None:
    """§1.2 duplicate keys: legacy string keys keep the first line and warn; O7 keeps the last."""
    text = 'HOSTNAME="a"\nHOSTNAME="b"\n'
    legacy = make(tmp_path, "4")
    path = put_ct(legacy, 101, text)
    out = legacy.call("vzlist", "-j", "-o", "hostname", "101")
    assert '"hostname": "a"' in out.stdout
    assert f'Warning at {path}:2: duplicate for HOSTNAME ("b"), ignored' in out.stderr
    o7 = make(tmp_path, "7")
    put_ct(o7, 101, text)
    out = o7.call("vzlist", "-j", "-o", "hostname", "101")
    assert '"hostname": "b"' in out.stdout and out.stderr == ""


def test_duplicates_legacy_classes(tmp_path: Path) -> None:
    """§1.2 legacy key classes: UBCs last wins silently, IP_ADDRESS/NAMESERVER accumulate
    (repeats dropped), FEATURES bits are OR-ed, a bad value does not count."""
    host = make(tmp_path)
    put_ct(host, 101, 'NUMPROC="100"\nNUMPROC="200:300"\n'
                      'IP_ADDRESS="10.0.0.1"\nIP_ADDRESS="10.0.0.2 10.0.0.1"\n'
                      'NAMESERVER="8.8.8.8"\nNAMESERVER="8.8.8.8 1.1.1.1"\n'
                      'FEATURES="nfs:on"\nFEATURES="nfs:off sit:off"\n'
                      'CPUUNITS="1"\nCPUUNITS="2000"\n')
    row = listed(host, "-o", "numproc,ip,nameserver,features,cpuunits", "101")[0]
    assert row["numproc"] == {"held": 0, "maxheld": 0, "barrier": 200, "limit": 300,
                              "failcnt": 0}
    assert row["ip"] == ["10.0.0.1", "10.0.0.2"]
    assert row["nameserver"] == ["8.8.8.8", "1.1.1.1"]
    assert row["features"] == {"nfs": True, "sit": False}
    assert row["cpuunits"] == 2000
    err = host.call("vzlist", "-a").stderr
    assert 'invalid value for CPUUNITS ("1"), skipped' in err
    assert "NUMPROC" not in err


def test_duplicates_o7_last_wins_everywhere(tmp_path: Path) -> None:
    """§1.2: O7 loads a name->string map, so the last line wins for every key."""
    host = make(tmp_path, "7")
    put_ct(host, 101, 'IP_ADDRESS="10.0.0.1"\nIP_ADDRESS="10.0.0.2"\nNUMPROC="100"\n'
                      'NUMPROC="200"\n')
    row = listed(host, "-o", "configured_ip,numproc", "101")[0]
    assert row["configured_ip"] == ["10.0.0.2"]
    assert row["numproc"]["barrier"] == 200  # type: ignore[index]


def test_legacy_bad_later_ioprio_resets(tmp_path: Path) -> None:
    """§1.2: an out-of-range later IOPRIO resets the earlier value to unset."""
    host = make(tmp_path)
    put_ct(host, 101, 'IOPRIO="3"\nIOPRIO="9"\n')
    assert field(host, 101, "ioprio") == "0"


@pytest.mark.parametrize(("value", "legacy", "o7"), [
    ("/p/$VEID/", "/p/101", "/p/101/"),
    ("/p/${VEID}", "/p/101", "/p/101"),
    ("/p/$VEID/$VEID", "/p/101/$VEID", "/p/101/$VEID"),
])
def test_veid_substitution(tmp_path: Path, value: str, legacy: str, o7: str) -> None:
    """§1.2 $VEID: `${VEID}` only without `$VEID`, first occurrence only; legacy drops a
    trailing '/', O7 keeps it."""
    for version, expected in (("4", legacy), ("7", o7)):
        host = make(tmp_path, version)
        put_ct(host, 101, f'VE_PRIVATE="{host.root}{value}"\n', private=False)
        Path(f"{host.root}{expected}").mkdir(parents=True)
        out = ok(host.call("vzlist", "-a", "-H", "-o", "private"))
        assert out.stdout == f"{host.root}{expected}\n"


# ============================================================ §1.2 --save rewriting

ORIGINAL = ('# comment\nHOSTNAME="old" # note\n  HOSTNAME="indented"\nHOSTNAME="dup"\n'
            'UNKNOWN_KEY=1\nDCACHE="100"\nno equals here\nLAST="x"')


def test_save_legacy_rewrites_first_column0_line_only(tmp_path: Path) -> None:
    """§1.2 legacy --save: only the first column-0 KEY= line is replaced, later duplicates and
    indented lines stay, other lines are byte for byte, a missing final newline is added, an
    alias line (DCACHE) is not matched so DCACHESIZE is appended."""
    host = make(tmp_path)
    path = put_ct(host, 101, ORIGINAL)
    res = ok(host.call("vzctl", "set", "101", "--hostname", "new", "--dcachesize", "200",
                       "--save"))
    assert f"CT configuration saved to {path}" in res.stdout
    assert path.read_text() == ('# comment\nHOSTNAME="new"\n  HOSTNAME="indented"\n'
                                'HOSTNAME="dup"\nUNKNOWN_KEY=1\nDCACHE="100"\nno equals here\n'
                                'LAST="x"\nDCACHESIZE="200"\n')
    assert not list(path.parent.glob("*.tmp"))


def test_save_o7_rewrites_every_matching_line(tmp_path: Path) -> None:
    """§1.2 O7 --save: every line with the key is replaced (comment lost, indented lines and
    duplicates too); other lines are copied byte for byte, so a last line without newline
    stays without one and the appended key follows it directly."""
    host = make(tmp_path, "7")
    path = put_ct(host, 101, ORIGINAL)
    res = ok(host.call("vzctl", "set", "101", "--hostname", "new", "--cpus", "2", "--save"))
    assert "Saved parameters for Container 101" in res.stdout
    assert path.read_text() == ('# comment\nHOSTNAME="new"\nHOSTNAME="new"\nHOSTNAME="new"\n'
                                'UNKNOWN_KEY=1\nDCACHE="100"\nno equals here\nLAST="x"'
                                'CPUS="2"\n')


def test_save_alias_written_under_canonical_name_o7(tmp_path: Path) -> None:
    """§1.2/§1.3 aliases: O7 writes --iptentries under the canonical NUMIPTENT and leaves an
    IPTENTRIES line alone."""
    host = make(tmp_path, "7")
    path = put_ct(host, 101, 'IPTENTRIES="10"\n')
    ok(host.call("vzctl", "set", "101", "--iptentries", "20", "--save"))
    assert path.read_text() == 'IPTENTRIES="10"\nNUMIPTENT="20:20"\n'


def test_save_legacy_indented_first_line_makes_new_line_ignored(tmp_path: Path) -> None:
    """§1.2 consequence: with an indented first HOSTNAME line, the appended line loses."""
    host = make(tmp_path)
    path = put_ct(host, 101, '  HOSTNAME="a"\n')
    ok(host.call("vzctl", "set", "101", "--hostname", "b", "--save"))
    assert path.read_text() == '  HOSTNAME="a"\nHOSTNAME="b"\n'
    assert field(host, 101, "hostname") == '"a"'


def test_save_legacy_no_changes(tmp_path: Path) -> None:
    """§1.2: legacy prints "No changes in CT configuration, not saving" (exit 0) when no
    savable option was given."""
    host = make(tmp_path)
    path = put_ct(host, 101, 'HOSTNAME="a"')
    res = ok(host.call("vzctl", "set", "101", "--save"))
    assert res.stdout == "No changes in CT configuration, not saving\n"
    assert path.read_text() == 'HOSTNAME="a"'


@pytest.mark.parametrize("version", ["4", "7"])
def test_save_missing_config_is_created(tmp_path: Path, version: str) -> None:
    """§1.2: a missing CTID.conf is created; legacy warns "WARNING: PATH not found" first."""
    host = make(tmp_path, version)
    res = ok(host.call("vzctl", "set", "150", "--hostname", "x", "--save"))
    path = host.conf(150)
    assert path.read_text() == 'HOSTNAME="x"\n'
    if version == "4":
        assert res.stderr == f"WARNING: {path} not found: No such file or directory\n"
    else:
        assert res.stderr == ""


def test_save_goes_through_symlinks(tmp_path: Path) -> None:
    """§1.1/§1.2: writes go to <realpath>.tmp and are renamed, so the O7 CTID.conf symlink to
    VE_PRIVATE/ve.conf and the version 3 /etc/vz/conf -> /etc/sysconfig/vz-scripts link stay."""
    o7 = make(tmp_path, "7")
    o7.create_ct(101)
    link = o7.conf(101)
    assert link.is_symlink() and os.readlink(link) == str(o7.private(101) / "ve.conf")
    ok(o7.call("vzctl", "set", "101", "--hostname", "h7", "--save"))
    assert link.is_symlink() and 'HOSTNAME="h7"' in (o7.private(101) / "ve.conf").read_text()
    v3 = make(tmp_path, "3")
    assert v3.conf_dir.is_symlink()
    v3.create_ct(101)
    ok(v3.call("vzctl", "set", "101", "--hostname", "h3", "--save"))
    real = v3.root / "etc" / "sysconfig" / "vz-scripts" / "101.conf"
    assert 'HOSTNAME="h3"' in real.read_text()


# ============================================================ §1.3 values

@pytest.mark.parametrize(("option", "value", "legacy", "o7"), [
    ("--numproc", "240:240", "240", "240:240"),
    ("--numproc", "240:unlimited", "240:unlimited", f"240:{LONG_MAX}"),
    ("--numproc", "unlimited", "unlimited", f"{LONG_MAX}:{LONG_MAX}"),
    ("--privvmpages", "1G", "262144", "262144:262144"),
    ("--privvmpages", "1000B", "0", "0:0"),
    ("--privvmpages", "2.5", "2", "2:2"),
    ("--kmemsize", "10M:11M", "10485760:11534336", "10485760:11534336"),
    ("--lockedpages", "3P", "3", None),
    ("--numproc", "10K", None, None),
    ("--privvmpages", "256X", None, None),
    ("--privvmpages", "10GB", None, None),
])
def test_ubc_units_suffixes_and_writeback(tmp_path: Path, option: str, value: str,
                                          legacy: str | None, o7: str | None) -> None:
    """§1.3: *PAGES in pages (suffix converts bytes, rounded down), bytes keys, NUM* counts
    (no suffix), P only in legacy, `unlimited`; written back as plain numbers with `b:b`
    collapsed (legacy) or always "%lu:%lu" (O7). Bad values: "Bad parameter", exit 21."""
    key = option[2:].upper()
    for version, expected in (("4", legacy), ("7", o7)):
        host = make(tmp_path, version)
        path = put_ct(host, 101, "")
        res = host.call("vzctl", "set", "101", option, value, "--save")
        if expected is None:
            assert res.returncode == 21
            assert res.stderr.endswith(f"Bad parameter for {option}: {value}\n")
        else:
            ok(res)
            assert path.read_text() == f'{key}="{expected}"\n'


@pytest.mark.parametrize(("version", "value", "expected"), [
    ("4", "1000", "0:1"), ("4", "1G", "0:262144"),
    ("7", "1000", "0:0"), ("7", "1G", "262144:262144"),
])
def test_ram_is_bytes(tmp_path: Path, version: str, value: str, expected: str) -> None:
    """§1.3 --ram: bytes; legacy rounds up to pages and sets 0:X, O7 rounds down."""
    host = make(tmp_path, version)
    path = put_ct(host, 101, "")
    ok(host.call("vzctl", "set", "101", "--ram", value, "--swap", "0", "--save"))
    assert f'PHYSPAGES="{expected}"' in path.read_text()


def test_diskspace_units_and_writeback(tmp_path: Path) -> None:
    """§1.3 DISKSPACE: plain numbers are KiB, G converted (2.2G -> 2306867), written as
    "%lu:%lu" in both versions."""
    for version in ("4", "7"):
        host = make(tmp_path, version)
        path = put_ct(host, 101, "")
        ok(host.call("vzctl", "set", "101", "--diskspace", "2G:2.2G", "--save"))
        assert path.read_text() == 'DISKSPACE="2097152:2306867"\n'


@pytest.mark.parametrize(("version", "accepted"), [("3", True), ("4", False), ("7", True)])
def test_diskspace_unlimited_per_version(tmp_path: Path, version: str, accepted: bool) -> None:
    """§1.3: DISKSPACE="unlimited" accepted up to 4.3 and by O7, rejected from 4.4 ("invalid
    value ... skipped" in a file, so the CT has no disk limit)."""
    host = make(tmp_path, version)
    path = put_ct(host, 101, 'DISKSPACE="unlimited"\n')
    res = ok(host.call("vzlist", "-a", "-H", "-o", "diskspace.h"))
    if accepted:
        assert res.stdout.strip() == str(LONG_MAX)
    else:
        assert res.stdout.strip() == "-"
        assert f'Warning at {path}:1: invalid value for DISKSPACE ("unlimited"), skipped' in (
            res.stderr)


@pytest.mark.parametrize(("version", "accepted"), [("3", False), ("4", True), ("7", True)])
def test_diskinodes_suffix_per_version(tmp_path: Path, version: str, accepted: bool) -> None:
    """§1.3: a suffix on DISKINODES is valid only from vzctl 4.7 (and in O7)."""
    host = make(tmp_path, version)
    put_ct(host, 101, "")
    res = host.call("vzctl", "set", "101", "--diskinodes", "1K", "--save")
    assert res.returncode == (0 if accepted else 21)


def test_cpuunits_range_and_cpulimit_percent(tmp_path: Path) -> None:
    """§1.3: CPUUNITS 8..500000; legacy `N%` is percent of the host (x CPUs), O7 stores N."""
    for version, limit in (("4", "200"), ("7", "50")):
        host = make(tmp_path, version, ncpus=4)
        path = put_ct(host, 101, "")
        assert host.call("vzctl", "set", "101", "--cpuunits", "7", "--save").returncode == 21
        ok(host.call("vzctl", "set", "101", "--cpuunits", "500000", "--cpulimit", "50%",
                     "--save"))
        assert f'CPULIMIT="{limit}"' in path.read_text()
        assert 'CPUUNITS="500000"' in path.read_text()


def test_o7_cpulimit_mhz_deletes_percent(tmp_path: Path) -> None:
    """§1.2 O7: setting CPULIMIT_MHZ (`--cpulimit Nm`) deletes CPULIMIT lines, and back."""
    host = make(tmp_path, "7")
    path = put_ct(host, 101, 'CPULIMIT="50"\n')
    ok(host.call("vzctl", "set", "101", "--cpulimit", "1000m", "--save"))
    assert path.read_text() == 'CPULIMIT_MHZ="1000"\n'
    ok(host.call("vzctl", "set", "101", "--cpulimit", "25", "--save"))
    assert path.read_text() == 'CPULIMIT="25"\n'


def test_ip_list_rules(tmp_path: Path) -> None:
    """§1.3 IP_ADDRESS: 0.0.0.0 skipped, legacy canonicalises IPv6, --ipadd adds,
    --ipdel removes, --ipdel all clears."""
    host = make(tmp_path)
    path = put_ct(host, 101, 'IP_ADDRESS="0.0.0.0 10.0.0.1"\n')
    ok(host.call("vzctl", "set", "101", "--ipadd", "2001:0db8::0001", "--ipadd", "10.0.0.2/24",
                 "--save"))
    assert path.read_text() == 'IP_ADDRESS="10.0.0.1 2001:db8::1 10.0.0.2/24"\n'
    ok(host.call("vzctl", "set", "101", "--ipdel", "10.0.0.1", "--save"))
    assert path.read_text() == 'IP_ADDRESS="2001:db8::1 10.0.0.2/24"\n'
    ok(host.call("vzctl", "set", "101", "--ipdel", "all", "--save"))
    assert path.read_text() == 'IP_ADDRESS=""\n'
    assert host.call("vzctl", "set", "101", "--ipadd", "10.0.0.300", "--save").returncode == 21


def test_nameserver_replaces_list(tmp_path: Path) -> None:
    """§1.3: each set of NAMESERVER replaces the whole list; --nameserver repeats."""
    for version in ("4", "7"):
        host = make(tmp_path, version)
        path = put_ct(host, 101, 'NAMESERVER="1.1.1.1"\n')
        ok(host.call("vzctl", "set", "101", "--nameserver", "8.8.8.8", "--nameserver",
                     "9.9.9.9", "--save"))
        assert path.read_text() == 'NAMESERVER="8.8.8.8 9.9.9.9"\n'


def test_netif_legacy_positional_and_grammar(tmp_path: Path) -> None:
    """§1.3 NETIF legacy: --netif_add ifname,mac,host_ifname,host_mac,bridge (empty fields
    generated); written ifname,bridge,mac,host_ifname,host_mac; --ifname edits a device;
    --netif_del removes."""
    host = make(tmp_path)
    path = put_ct(host, 101, "")
    ok(host.call("vzctl", "set", "101", "--netif_add",
                 "eth0,00:18:51:AA:BB:CC,,00:18:51:DD:EE:FF,vmbr0", "--save"))
    assert path.read_text() == ('NETIF="ifname=eth0,bridge=vmbr0,mac=00:18:51:AA:BB:CC,'
                                'host_ifname=veth101.0,host_mac=00:18:51:DD:EE:FF"\n')
    ok(host.call("vzctl", "set", "101", "--ifname", "eth0", "--mac_filter", "on", "--save"))
    assert "mac_filter=on" in path.read_text()
    res = host.call("vzctl", "set", "101", "--ifname", "eth9", "--mac_filter", "on", "--save")
    assert res.returncode == 20
    assert "veth device eth9 is not configured, use --netif_add option first" in res.stderr
    ok(host.call("vzctl", "set", "101", "--netif_del", "eth0", "--save"))
    assert path.read_text() == 'NETIF=""\n'


def test_netif_o7_has_no_bridge_field(tmp_path: Path) -> None:
    """§1.3/§1.6 O7: --netif_add takes four fields (no bridge); NETIF is written ifname, mac,
    host_mac, host_ifname."""
    host = make(tmp_path, "7")
    path = put_ct(host, 101, "")
    res = host.call("vzctl", "set", "101", "--netif_add", "eth0,,,,vmbr0", "--save")
    assert res.returncode == 21
    ok(host.call("vzctl", "set", "101", "--netif_add",
                 "eth0,00:18:51:AA:BB:CC,veth1,00:18:51:DD:EE:FF", "--save"))
    assert path.read_text() == ('NETIF="ifname=eth0,mac=00:18:51:AA:BB:CC,'
                                'host_mac=00:18:51:DD:EE:FF,host_ifname=veth1"\n')


def test_netif_legacy_reads_o7_record(tmp_path: Path) -> None:
    """§1.3: unknown keys in a record are ignored, so an O7 record reads in legacy."""
    host = make(tmp_path)
    put_ct(host, 101, 'NETIF="ifname=eth0,mac=00:18:51:AA:BB:CC,network=Bridged,'
                      'host_ifname=veth101.0"\n')
    path = host.conf(101)
    ok(host.call("vzctl", "set", "101", "--netif_add", "eth1,00:18:51:00:00:01", "--save"))
    assert path.read_text() == (
        'NETIF="ifname=eth0,mac=00:18:51:AA:BB:CC,host_ifname=veth101.0,'
        'host_mac=00:18:51:AA:BB:CC;ifname=eth1,mac=00:18:51:00:00:01,host_ifname=veth101.1,'
        'host_mac=00:18:51:00:00:01"\n')


def test_capability_and_features(tmp_path: Path) -> None:
    """§1.3/§1.6: legacy merges CAPABILITY and FEATURES with the file; O7 ignores
    --capability with a warning and writes only the given features."""
    legacy = make(tmp_path)
    path = put_ct(legacy, 101, 'CAPABILITY="NET_ADMIN:on"\nFEATURES="sysfs:on"\n')
    ok(legacy.call("vzctl", "set", "101", "--capability", "sys_time:on", "--features",
                   "nfs:on", "--save"))
    assert path.read_text() == ('CAPABILITY="NET_ADMIN:on SYS_TIME:on"\n'
                                'FEATURES="sysfs:on nfs:on"\n')
    o7 = make(tmp_path, "7")
    path = put_ct(o7, 101, 'FEATURES="sysfs:on"\n')
    res = ok(o7.call("vzctl", "set", "101", "--capability", "sys_time:on", "--features",
                     "nfs:on", "--save"))
    assert "Warning: The --capability option is deprecated" in res.stderr
    assert path.read_text() == 'FEATURES="nfs:on"\n'


def test_o7_deprecated_ubc_warns_and_is_not_saved(tmp_path: Path) -> None:
    """§1.3: O7 knows NUMTCPSOCK etc. but ignores them; `set` warns they are deprecated."""
    host = make(tmp_path, "7")
    path = put_ct(host, 101, "")
    res = ok(host.call("vzctl", "set", "101", "--numtcpsock", "10", "--save"))
    assert "Warning: NUMTCPSOCK parameter is deprecated" in res.stdout
    assert path.read_text() == ""


def test_iolimit_units(tmp_path: Path) -> None:
    """§1.3: legacy --iolimit without suffix is MB/s (stored in bytes/s); O7 takes bytes/s."""
    for version, expected in (("4", "10485760"), ("7", "10")):
        host = make(tmp_path, version)
        path = put_ct(host, 101, "")
        ok(host.call("vzctl", "set", "101", "--iolimit", "10", "--save"))
        assert path.read_text() == f'IOLIMIT="{expected}"\n'


def test_bad_option_values_and_messages(tmp_path: Path) -> None:
    """§1.6/§1.9: unknown options are getopt errors (exit 21 from `set`), bad values are
    "Bad parameter for --X: V" (21) after the tool's own explanation."""
    host = make(tmp_path)
    put_ct(host, 101, "")
    res = host.call("vzctl", "set", "101", "--bogus", "1")
    assert res.returncode == 21 and res.stderr == "vzctl: unrecognized option '--bogus'\n"
    res = host.call("vzctl", "set", "101", "--features", "warp:on", "--save")
    assert res.returncode == 21 and "Warning: Unknown feature: warp:on" in res.stdout
    assert res.stderr == "Bad parameter for --features: warp:on\n"
    res = host.call("vzctl", "set", "101", "--netfilter", "bogus", "--save")
    assert res.stderr == ("Incorrect netfilter value: bogus\n"
                          "Bad parameter for --netfilter: bogus\n")
    res = host.call("vzctl", "set", "101", "--capability", "warp:on", "--save")
    assert res.stderr.startswith("Capability warp is unknown\n")
    res = host.call("vzctl", "set", "101", "--onboot", "Yes", "--save")
    assert res.returncode == 21  # yes/no are lower-case only (§1.2)


# ============================================================ §1.4 samples / §1.5 create

@pytest.mark.parametrize("version", ["3", "4", "7"])
def test_create_from_default_sample(tmp_path: Path, version: str) -> None:
    """§1.4/§1.5: create copies the CONFIGFILE sample and records OSTEMPLATE, ORIGIN_SAMPLE,
    VE_ROOT/VE_PRIVATE (unexpanded) and, for 4.x, VE_LAYOUT; the template is extracted."""
    host = make(tmp_path, version)
    res = host.create_ct(101)
    text = host.conf(101).read_text()
    sample = {"3": "basic", "4": "vswap-256m", "7": "basic"}[version]
    assert f'ORIGIN_SAMPLE="{sample}"' in text
    assert f'OSTEMPLATE="{OSTEMPLATE}"' in text
    assert f'VE_PRIVATE="{host.root}/vz/private/$VEID"' in text
    assert ('VE_LAYOUT="simfs"' in text) == (version == "4")
    assert (host.private(101) / "sbin" / "init").is_file()
    if version == "4":
        assert text.startswith((host.conf_dir / "ve-vswap-256m.conf-sample").read_text())
        assert res.stdout.endswith(f"CT configuration saved to {host.conf(101)}\n"
                                   "Container private area was created\n")
    if version == "7":
        assert 'VERSION="2"' in text and 'NETFILTER="full"' in text


@pytest.mark.parametrize("version", ["4", "7"])
def test_create_missing_template(tmp_path: Path, version: str) -> None:
    """§1.5/§1.9: a missing OS template is exit 91; the copied config is removed again."""
    host = make(tmp_path, version)
    res = host.call("vzctl", "create", "101", "--ostemplate", "debian-99")
    assert res.returncode == 91
    if version == "4":
        assert (f"Cached OS template {host.template_dir}/cache/debian-99.tar[.gz|.bz2|.xz] "
                "not found") in res.stderr
        assert res.stderr.endswith("Creation of container private area failed\n")
    else:
        assert "Error: Unable to find ostemplate: debian-99" in res.stderr
    assert not host.conf(101).exists() and not host.private(101).exists()


@pytest.mark.parametrize("version", ["4", "7"])
def test_create_private_exists(tmp_path: Path, version: str) -> None:
    """§1.5: exit 44 when the private area already exists."""
    host = make(tmp_path, version)
    (host.private(101) / "etc").mkdir(parents=True)
    res = host.call("vzctl", "create", "101", "--ostemplate", OSTEMPLATE)
    assert res.returncode == 44


def test_create_existing_config_legacy(tmp_path: Path) -> None:
    """§1.5 legacy: --config is refused when CTID.conf exists; without it the sample is not
    applied (the existing lines stay as they were)."""
    host = make(tmp_path)
    path = host.conf(101)
    path.write_text('HOSTNAME="keep"\n')
    res = host.call("vzctl", "create", "101", "--ostemplate", OSTEMPLATE, "--config", "basic")
    assert res.returncode == 82
    assert ("Error: container config file " + str(path) + " already exists, can not use "
            "--config option") in res.stderr
    assert path.read_text() == 'HOSTNAME="keep"\n'
    res = ok(host.call("vzctl", "create", "101", "--ostemplate", OSTEMPLATE))
    assert "not applying a default config sample" in res.stdout
    text = path.read_text()
    assert text.startswith('HOSTNAME="keep"\n') and "PHYSPAGES" not in text


def test_create_existing_config_o7_replaced_by_sample(tmp_path: Path) -> None:
    """§1.5 O7: with --config an existing config file is removed (replaced by the sample)."""
    host = make(tmp_path, "7")
    host.conf(101).write_text('HOSTNAME="old"\n')
    ok(host.call("vzctl", "create", "101", "--ostemplate", OSTEMPLATE, "--config", "basic"))
    assert host.conf(101).is_symlink()
    text = host.conf(101).read_text()
    assert "old" not in text and 'ORIGIN_SAMPLE="basic"' in text


def test_create_name_conflict_and_v3_options(tmp_path: Path) -> None:
    """§1.1/§1.9: a name used by another CT is a name error (131); vzctl 3.0.x has no
    --layout (ploop came with 4.x), so getopt rejects it."""
    host = make(tmp_path)
    host.create_ct(101, "--name", "web")
    res = host.call("vzctl", "create", "102", "--ostemplate", OSTEMPLATE, "--name", "web")
    assert res.returncode == 131
    assert "Conflict: name web already used by container 101" in res.stderr
    assert not host.conf(102).exists()
    v3 = make(tmp_path, "3")
    res = v3.call("vzctl", "create", "101", "--ostemplate", OSTEMPLATE, "--layout", "simfs")
    assert res.returncode == 21 and "unrecognized option '--layout'" in res.stderr


def test_create_layout_ploop_unsupported(tmp_path: Path) -> None:
    """§1.5: the simulator has no ploop; legacy answers the "ploop unsupported" exit 99."""
    host = make(tmp_path)
    res = host.call("vzctl", "create", "101", "--ostemplate", OSTEMPLATE, "--layout", "ploop")
    assert res.returncode == 99
    assert host.call("vzctl", "create", "101", "--ostemplate", OSTEMPLATE, "--layout",
                     "simfs").returncode == 0


# ============================================================ §1.1 names / CT ids

@pytest.mark.parametrize("version", ["4", "7"])
def test_names_both_ways(tmp_path: Path, version: str) -> None:
    """§1.1/§1.6: --name creates /etc/vz/names/<name> -> CTID.conf; the name works in place
    of the CTID in vzctl and vzlist; renaming moves the link; --name needs --save."""
    host = make(tmp_path, version)
    host.create_ct(101, "--name", "web")
    link = host.names_dir / "web"
    assert link.is_symlink() and os.readlink(link) == str(host.conf(101))
    assert ok(host.call("vzctl", "status", "web")).stdout.split()[1] == "101"
    assert listed(host, "-o", "ctid,name", "web")[0]["name"] == "web"
    ok(host.call("vzctl", "set", "web", "--name", "db", "--save"))
    assert (host.names_dir / "db").is_symlink() and not link.exists()
    res = host.call("vzctl", "set", "101", "--name", "x")
    assert res.returncode == (131 if version == "4" else 137)
    assert (host.call("vzctl", "status", "nosuch").stderr.strip() ==
            ("Bad CT ID nosuch" if version == "4" else "Invalid ctid is specified: nosuch"))


def test_name_in_json_smart_name(tmp_path: Path) -> None:
    """§1.8: smart_name is the name, or the CTID as an integer without a name (legacy)."""
    host = make(tmp_path)
    host.create_ct(101, "--name", "web")
    host.create_ct(102)
    out = ok(host.call("vzlist", "-a", "-j", "-o", "ctid,smart_name")).stdout
    assert out == ('[\n  {\n    "ctid": 101,\n    "smart_name": "web"\n  },\n'
                   '  {\n    "ctid": 102,\n    "smart_name": 102\n  }\n]\n')


@pytest.mark.parametrize(("version", "args", "rc", "message"), [
    ("4", [], 20, None),
    ("4", ["frobnicate", "101"], 20, "Bad command: frobnicate"),
    ("4", ["start"], 21, "CT ID missing"),
    ("7", ["start"], 21, "ctid is not given"),
    ("4", ["start", "-5"], 21, "Bad CT ID -5"),
    ("4", ["start", "2147483645"], 21, "Bad CT ID 2147483645"),
    ("4", ["start", "0"], 21, "Only set actions are allowed for CT0"),
    ("4", ["start", "101"], 14, "Container config file does not exist"),
    ("7", ["start", "101"], 14, "Container configuration file does not exist"),
    ("4", ["mount", "101"], 14, "Container config file does not exist"),
])
def test_exit_codes_of_main(tmp_path: Path, version: str, args: list[str], rc: int,
                            message: str | None) -> None:
    """§1.9 "Which code a given situation returns"."""
    host = make(tmp_path, version)
    res = host.call("vzctl", *args)
    assert res.returncode == rc
    if message:
        assert res.stderr.strip().endswith(message)


# ============================================================ §1.5 lifecycle

@pytest.mark.parametrize("version", ["4", "7"])
def test_start_stop_status(tmp_path: Path, version: str) -> None:
    """§1.5/§1.9: start mounts and runs (state pushed), start on running is 32, stop on a
    stopped CT prints its message and exits 0, status has each version's one-line format."""
    host = make(tmp_path, version)
    host.create_ct(101, "--hostname", "web1")
    word = "CTID" if version == "4" else "VEID"
    assert ok(host.call("vzctl", "status", "101")).stdout == f"{word} 101 exist unmounted down\n"
    ok(host.call("vzctl", "start", "101"))
    ct = host.state()["cts"]["101"]
    assert ct["running"] and ct["mounted"] and ct["params"]["HOSTNAME"] == "web1"
    assert ok(host.call("vzctl", "status", "101")).stdout == f"{word} 101 exist mounted running\n"
    res = host.call("vzctl", "start", "101")
    assert res.returncode == 32 and res.stderr == "Container is already running\n"
    ok(host.call("vzctl", "stop", "101"))
    assert host.state()["cts"] == {}
    res = ok(host.call("vzctl", "stop", "101"))
    assert res.stderr == ("Unable to stop: container is not running\n" if version == "4"
                          else "Container is not running\n")


@pytest.mark.parametrize("version", ["4", "7"])
def test_status_without_config(tmp_path: Path, version: str) -> None:
    """§1.5: status works without CTID.conf and exits 0."""
    host = make(tmp_path, version)
    res = ok(host.call("vzctl", "status", "555"))
    assert res.stdout == ("CTID" if version == "4" else "VEID") + " 555 deleted unmounted down\n"


def test_o7_stop_allowed_without_config(tmp_path: Path) -> None:
    """§1.9: O7 allows stop without a config file; legacy answers 14."""
    assert make(tmp_path, "7").call("vzctl", "stop", "555").returncode == 0
    assert make(tmp_path, "4").call("vzctl", "stop", "555").returncode == 14


@pytest.mark.parametrize("version", ["4", "7"])
def test_start_disabled_and_private_missing(tmp_path: Path, version: str) -> None:
    """§1.5: DISABLED=yes is 105 unless --force; a missing private area is 43."""
    host = make(tmp_path, version)
    host.create_ct(101)
    ok(host.call("vzctl", "set", "101", "--disabled", "yes", "--save"))
    res = host.call("vzctl", "start", "101")
    assert res.returncode == 105 and res.stderr == "Container start disabled\n"
    ok(host.call("vzctl", "start", "101", "--force"))
    put_ct(host, 102, "", private=False)
    res = host.call("vzctl", "start", "102")
    assert res.returncode == 43
    assert res.stderr == f"Container private area {host.private(102)} does not exist\n"


def test_start_ubc_checks(tmp_path: Path) -> None:
    """§1.3 start-time UBC check: a vswap config on a kernel without vswap is exit 5; a
    non-vswap config missing UBCs is 28 ("required UB parameter ... not set")."""
    host = make(tmp_path, vswap=False)
    host.create_ct(101)  # vswap-256m sample
    res = host.call("vzctl", "start", "101")
    assert res.returncode == 5
    assert "Error: detected vswap CT config but kernel does not support vswap" in res.stderr
    host.create_ct(102, "--config", "basic")
    ok(host.call("vzctl", "start", "102"))
    put_ct(host, 103, 'PHYSPAGES="0:unlimited"\nKMEMSIZE="1M"\n')
    res = host.call("vzctl", "start", "103")
    assert res.returncode == 28
    assert "Error: required UB parameter lockedpages not set" in res.stderr
    assert "kmemsize" not in res.stderr


def test_legacy_start_records_layout(tmp_path: Path) -> None:
    """§1.3 VE_LAYOUT (not in the reference's tables; vzctl 4.x start()): a CT config that
    does not name a layout gets VE_LAYOUT="simfs" appended at start."""
    host = make(tmp_path)
    path = put_ct(host, 101, (host.conf_dir / "ve-basic.conf-sample").read_text())
    res = ok(host.call("vzctl", "start", "101"))
    assert "Saving VE layout 'simfs' to the VE config file" in res.stdout
    assert path.read_text().endswith('VE_LAYOUT="simfs"\n')


@pytest.mark.parametrize("version", ["4", "7"])
def test_busy_ct_lock(tmp_path: Path, version: str) -> None:
    """§1.9/§1.10: exit 9 while another process holds the CT lock; other CTs are not
    blocked."""
    host = make(tmp_path, version)
    host.create_ct(101)
    host.create_ct(102)
    with host.hold_lock(101):
        res = host.call("vzctl", "start", "101")
        assert res.returncode == 9
        assert res.stderr == ("Container already locked\n" if version == "4" else
                              "Cannot lock the Container\n")
        ok(host.call("vzctl", "start", "102"))
        ok(host.call("vzctl", "status", "101"))  # status takes no lock
    ok(host.call("vzctl", "start", "101"))


def test_destroy_legacy(tmp_path: Path) -> None:
    """§1.5/§1.10 legacy destroy: running 32, mounted 41, then the private area is erased and
    the config renamed to CTID.conf.destroyed; name links go."""
    host = make(tmp_path)
    host.create_ct(101, "--name", "web")
    ok(host.call("vzctl", "start", "101"))
    res = host.call("vzctl", "destroy", "101")
    assert res.returncode == 32
    ok(host.call("vzctl", "stop", "101", "--skip-umount"))
    res = host.call("vzctl", "destroy", "101")
    assert res.returncode == 41 and "Container is currently mounted (umount first)" in res.stdout
    ok(host.call("vzctl", "umount", "101"))
    res = ok(host.call("vzctl", "delete", "101"))
    assert res.stdout == (f"Destroying container private area: {host.private(101)}\n"
                          "Container private area was destroyed\n")
    assert not host.private(101).exists() and not host.conf(101).exists()
    assert host.conf_dir.joinpath("101.conf.destroyed").is_file()
    assert not (host.names_dir / "web").exists()


def test_destroy_o7(tmp_path: Path) -> None:
    """§1.1/§1.10 O7 destroy: the CTID.conf symlink is unlinked, a regular file renamed to
    .destroyed, a mounted CT unmounted first, and VE_PRIVATE not ending in /CTID refused."""
    host = make(tmp_path, "7")
    host.create_ct(101)
    ok(host.call("vzctl", "mount", "101"))
    ok(host.call("vzctl", "destroy", "101"))
    assert not host.conf(101).exists() and not host.conf(101).is_symlink()
    assert not host.conf_dir.joinpath("101.conf.destroyed").exists()
    put_ct(host, 102, "")
    ok(host.call("vzctl", "destroy", "102"))
    assert host.conf_dir.joinpath("102.conf.destroyed").is_file()
    odd = host.root / "vz" / "odd"
    odd.mkdir()
    put_ct(host, 103, f'VE_PRIVATE="{odd}"\n', private=False)
    res = host.call("vzctl", "destroy", "103")
    assert res.returncode == 52 and "does not resemble a valid container directory" in res.stderr
    assert odd.is_dir()


def test_mount_umount(tmp_path: Path) -> None:
    """§1.5/§1.9: umount of an unmounted CT is 40, of a running one 32."""
    for version in ("4", "7"):
        host = make(tmp_path, version)
        host.create_ct(101)
        assert host.call("vzctl", "umount", "101").returncode == 40
        ok(host.call("vzctl", "mount", "101"))
        assert host.state()["cts"]["101"]["mounted"] is True
        ok(host.call("vzctl", "start", "101"))
        assert host.call("vzctl", "umount", "101").returncode == 32


# ============================================================ §1.6/§1.7 set

def test_set_needs_save(tmp_path: Path) -> None:
    """§1.6 "Need --save": legacy refuses --ostemplate/--stop-timeout/--force/--setmode restart
    (20) and --name (131); O7 refuses --setmode restart (20) and --name (137) only."""
    legacy = make(tmp_path)
    legacy.create_ct(101)
    for args in (["--ostemplate", "x"], ["--stop-timeout", "10"], ["--force"],
                 ["--setmode", "restart"]):
        assert legacy.call("vzctl", "set", "101", *args).returncode == 20, args
    o7 = make(tmp_path, "7")
    o7.create_ct(101)
    assert o7.call("vzctl", "set", "101", "--ostemplate", "x").returncode == 0
    res = o7.call("vzctl", "set", "101", "--setmode", "restart")
    assert res.returncode == 20
    assert "It is not allowed to use restart mode without --save" in res.stderr


def test_o7_stop_timeout_and_force_not_refused(tmp_path: Path) -> None:
    """§1.6 "Need --save" table: O7 does not refuse --ostemplate, --stop-timeout or --force
    without --save."""
    host = make(tmp_path, "7")
    host.create_ct(101)
    for args in (["--ostemplate", "x"], ["--stop-timeout", "10"], ["--force"]):
        res = ok(host.call("vzctl", "set", "101", *args))
        assert "WARNING: Changes are not saved" in res.stdout


def test_set_option_rules(tmp_path: Path) -> None:
    """§1.6: --reset_ub is exclusive (20), --nodemask needs --cpumask (20), --cpumask auto
    needs --nodemask (20), a vswap config without SWAPPAGES is 28."""
    host = make(tmp_path)
    path = put_ct(host, 101, "")
    assert host.call("vzctl", "set", "101", "--reset_ub", "--save").returncode == 20
    assert host.call("vzctl", "set", "101", "--nodemask", "0", "--save").returncode == 20
    assert host.call("vzctl", "set", "101", "--cpumask", "auto", "--save").returncode == 20
    res = host.call("vzctl", "set", "101", "--physpages", "0:256M", "--save")
    assert res.returncode == 28 and "required UB parameter (swap) not set" in res.stderr
    ok(host.call("vzctl", "set", "101", "--cpumask", "0-2,5", "--save"))
    assert path.read_text() == 'CPUMASK="0-2,5"\n'


def test_ram_without_vswap_kernel(tmp_path: Path) -> None:
    """§1.3 VSwap: --ram fails on a kernel without vswap unless --force (with --save) comes
    first."""
    host = make(tmp_path, vswap=False)
    path = put_ct(host, 101, "")
    res = host.call("vzctl", "set", "101", "--ram", "1G", "--swap", "1G", "--save")
    assert res.returncode == 3
    assert ("Error: kernel does not support vswap, unable to use --ram/--swap parameters"
            in res.stderr)
    ok(host.call("vzctl", "set", "101", "--save", "--force", "--ram", "1G", "--swap", "1G"))
    assert path.read_text() == 'PHYSPAGES="0:262144"\nSWAPPAGES="0:262144"\n'


def test_set_running_applies_live(tmp_path: Path) -> None:
    """§1.7: on a running CT UBCs, hostname and IPs are pushed into the kernel; without
    --save the config stays and vzctl warns the change will be lost."""
    for version in ("4", "7"):
        host = make(tmp_path, version)
        host.create_ct(101)
        ok(host.call("vzctl", "start", "101"))
        before = host.conf(101).read_text()
        res = ok(host.call("vzctl", "set", "101", "--hostname", "live", "--numproc", "50",
                           "--ipadd", "10.1.1.1"))
        params = host.state()["cts"]["101"]["params"]
        assert params["HOSTNAME"] == "live" and params["NUMPROC"] == "50:50"
        assert params["IP_ADDRESS"] == "10.1.1.1"
        assert host.conf(101).read_text() == before
        if version == "4":
            assert ("WARNING: Settings were not saved to config and will be lost after CT "
                    "restart (use --save flag)") in res.stdout
            assert "Adding IP address(es): 10.1.1.1" in res.stdout
        else:
            assert "WARNING: Changes are not saved and will be dropped on the next start." in (
                res.stdout)


def test_set_stopped_with_save_applies_nothing(tmp_path: Path) -> None:
    """§1.7: on a stopped CT with --save nothing is applied, the values are stored; legacy
    without --save fails to apply UBCs (31)."""
    host = make(tmp_path)
    host.create_ct(101)
    ok(host.call("vzctl", "set", "101", "--numproc", "50", "--save"))
    assert host.state()["cts"] == {}
    res = host.call("vzctl", "set", "101", "--numproc", "60")
    assert res.returncode == 31
    assert res.stderr == "Unable to apply UBC parameters: container is not running\n"


def test_set_running_root_change_refused(tmp_path: Path) -> None:
    """§1.7: VE_ROOT/VE_PRIVATE can't be changed while running (exit 32)."""
    host = make(tmp_path)
    host.create_ct(101)
    ok(host.call("vzctl", "start", "101"))
    res = host.call("vzctl", "set", "101", "--root", "/elsewhere", "--save")
    assert res.returncode == 32
    assert res.stderr == "Unable to change VE_ROOT on a running container\n"


def test_setmode_legacy(tmp_path: Path) -> None:
    """§1.7 legacy: a restart-class change (netfilter) without --setmode warns and applies the
    rest (saved); --setmode ignore applies nothing, exits 32 and does not save; --setmode
    restart restarts the CT with the new values."""
    host = make(tmp_path)
    host.create_ct(101)
    ok(host.call("vzctl", "start", "101"))
    path = host.conf(101)
    res = ok(host.call("vzctl", "set", "101", "--netfilter", "full", "--hostname", "h1",
                       "--save"))
    assert "Unable to set iptables/netfilter on a running container" in res.stderr
    assert ("WARNING: Some of the parameters could not be applied to a running container.\n"
            "\tPlease consider using --setmode option") in res.stderr
    params = host.state()["cts"]["101"]["params"]
    assert params["HOSTNAME"] == "h1" and params["NETFILTER"] == "stateless"
    assert 'NETFILTER="full"' in path.read_text()
    before = path.read_text()
    res = host.call("vzctl", "set", "101", "--netfilter", "disabled", "--hostname", "h2",
                    "--setmode", "ignore", "--save")
    assert res.returncode == 32
    assert ("Error: failed to apply some parameters, not saving configuration file!"
            in res.stderr)
    assert path.read_text() == before
    assert host.state()["cts"]["101"]["params"]["HOSTNAME"] == "h1"
    res = ok(host.call("vzctl", "set", "101", "--netfilter", "disabled", "--setmode",
                       "restart", "--save"))
    assert "Restarting container" in res.stdout
    assert host.state()["cts"]["101"]["params"]["NETFILTER"] == "disabled"


def test_setmode_o7(tmp_path: Path) -> None:
    """§1.7 O7: without --setmode the other parameters are not applied either, exit 32, and
    --save still writes them; with --setmode ignore the rest is applied, exit 32."""
    host = make(tmp_path, "7")
    host.create_ct(101)
    ok(host.call("vzctl", "start", "101"))
    res = host.call("vzctl", "set", "101", "--netfilter", "disabled", "--hostname", "h1",
                    "--save")
    assert res.returncode == 32
    assert "Unable to set netfilter for the running Container" in res.stderr
    assert "HOSTNAME" not in host.state()["cts"]["101"]["params"]
    text = host.conf(101).read_text()
    assert 'HOSTNAME="h1"' in text and 'NETFILTER="disabled"' in text
    res = host.call("vzctl", "set", "101", "--features", "nfs:on", "--hostname", "h2",
                    "--setmode", "ignore")
    assert res.returncode == 32
    assert host.state()["cts"]["101"]["params"]["HOSTNAME"] == "h2"


def test_applyconfig(tmp_path: Path) -> None:
    """§1.6: --applyconfig takes the sample's values but keeps HOSTNAME etc.; a missing
    sample is exit 109 (legacy)."""
    host = make(tmp_path)
    host.create_ct(101, "--hostname", "keep")
    assert host.call("vzctl", "set", "101", "--applyconfig", "nosuch",
                     "--save").returncode == 109
    ok(host.call("vzctl", "set", "101", "--applyconfig", "basic", "--save"))
    text = host.conf(101).read_text()
    assert 'KMEMSIZE="14372700:14790164"' in text and 'HOSTNAME="keep"' in text
    assert 'ORIGIN_SAMPLE="basic"' in text


# ============================================================ §1.8 vzlist

def test_vzlist_default_table(tmp_path: Path) -> None:
    """§1.8 table output: default columns ctid,numproc,status,ip,hostname; `%10d` CTID, one
    space between columns, trailing blanks trimmed; running CTs from the kernel only."""
    host = make(tmp_path)
    host.create_ct(101, "--hostname", "web1", "--ipadd", "10.0.0.1/24")
    host.create_ct(102)
    ok(host.call("vzctl", "start", "101"))
    out = ok(host.call("vzlist")).stdout
    assert out == ("      CTID      NPROC STATUS    IP_ADDR         HOSTNAME\n"
                   "       101          0 running   10.0.0.1        web1\n")
    lines = ok(host.call("vzlist", "-a")).stdout.splitlines()
    assert lines[2] == "       102          - stopped   -               -"
    assert ok(host.call("vzlist", "-S", "-H", "-o", "ctid")).stdout == "       102\n"
    assert ok(host.call("vzlist", "-1")).stdout == "       101\n"


def test_vzlist_h_o_and_truncation(tmp_path: Path) -> None:
    """§1.8: -H -o; a string longer than its column is cut unless it is the last field or -t
    is given; lists show only their first entry unless last; smart_name is %10s."""
    host = make(tmp_path)
    long = "h" * 40
    host.create_ct(101, "--hostname", long, "--ipadd", "10.0.0.1 10.0.0.2", "--name",
                   "averyverylongname")
    out = ok(host.call("vzlist", "-a", "-H", "-o", "hostname,ctid")).stdout
    assert out == "h" * 32 + "        101\n"
    out = ok(host.call("vzlist", "-a", "-H", "-t", "-o", "hostname,ctid")).stdout
    assert out == long + "        101\n"
    out = ok(host.call("vzlist", "-a", "-H", "-o", "ip,ctid")).stdout
    assert out == "10.0.0.1               101\n"
    out = ok(host.call("vzlist", "-a", "-H", "-o", "ctid,ip")).stdout
    assert out == "       101 10.0.0.1 10.0.0.2\n"
    out = ok(host.call("vzlist", "-a", "-H", "-o", "smart_name,ctid")).stdout
    assert out == "averyveryl        101\n"
    out = ok(host.call("vzlist", "-a", "-H", "-o", "netfilter")).stdout
    assert out == "stateless\n"
    put_ct(host, 102, "")
    assert ok(host.call("vzlist", "-H", "-o", "netfilter", "102")).stdout == "(null)\n"


def test_vzlist_json_legacy_unnamed(tmp_path: Path) -> None:
    """§1.8 JSON (legacy): without -o every unsuffixed field in table order; ctid/veid/vpsid
    integers; UBC objects; stopped CTs show held/maxheld/failcnt 0; layout and bool forms."""
    host = make(tmp_path)
    host.create_ct(101)
    rows = listed(host, "-a")
    row = rows[0]
    assert list(row)[:16] == ["ctid", "veid", "vpsid", "private", "root", "mount_opts",
                              "origin_sample", "hostname", "name", "smart_name",
                              "description", "ostemplate", "ip", "nameserver",
                              "searchdomain", "status"]
    assert list(row)[-9:] == ["onboot", "bootorder", "layout", "features", "vswap",
                              "disabled", "vm_overcommit", "netfilter", "capability"]
    assert len(row) == 16 + 21 + 19
    assert row["ctid"] == row["veid"] == row["vpsid"] == row["smart_name"] == 101
    assert row["physpages"] == {"held": 0, "maxheld": 0, "barrier": 0, "limit": 65536,
                                "failcnt": 0}
    assert row["diskspace"] == {"usage": 0, "softlimit": 2097152, "hardlimit": 2306867}
    assert row["ip"] == [] and row["uptime"] == 0.0 and row["laverage"] is None
    assert row["vswap"] is True and row["onboot"] is None and row["layout"] == "simfs"
    assert row["cpus"] == 0 and row["cpuunits"] == 1000 and row["netfilter"] == "stateless"


def test_vzlist_json_o7_named(tmp_path: Path) -> None:
    """§1.8 O7 JSON: ctid is a string, the fixed default list has numproc twice and no veid,
    vpsid, vswap, vm_overcommit or capability."""
    host = make(tmp_path, "7")
    host.create_ct(101, "--name", "web")
    out = ok(host.call("vzlist", "-a", "-j")).stdout
    assert out.startswith('[\n  {\n    "ctid": "101",\n    "private": ')
    assert out.count('"numproc": {') == 2
    row = json.loads(out)[0]
    for absent in ("veid", "vpsid", "vswap", "vm_overcommit", "capability"):
        assert absent not in row
    assert row["smart_name"] == "web" and row["name"] == "web"
    assert out.endswith("\n  }\n]\n")


def test_vzlist_json_layout_exact(tmp_path: Path) -> None:
    """§1.8 layout: `[`, per CT `\\n  {`, fields `\\n    "name": value` joined by `,`,
    `\\n  }`, CTs joined by `,`, end `\\n]\\n`; strings are not escaped."""
    host = make(tmp_path)
    host.create_ct(101, "--description", 'say "hi"')
    host.create_ct(102)
    out = ok(host.call("vzlist", "-a", "-j", "-o", "ctid,description,status")).stdout
    assert out == ('[\n  {\n    "ctid": 101,\n    "description": "say "hi"",\n'
                   '    "status": "stopped"\n  },\n  {\n    "ctid": 102,\n'
                   '    "description": null,\n    "status": "stopped"\n  }\n]\n')


def test_vzlist_json_errors_and_versions(tmp_path: Path) -> None:
    """§1.8: legacy refuses suffixed fields with -j; O7 does not; vzlist 3.x has no -j (an
    unknown option, exit 1)."""
    legacy = make(tmp_path)
    res = legacy.call("vzlist", "-j", "-o", "numproc.b")
    assert res.returncode == 1
    assert res.stderr == "Field `numproc.b' is not available in JSON output\n"
    o7 = make(tmp_path, "7")
    o7.create_ct(101)
    assert '"numproc.b": ' in ok(o7.call("vzlist", "-a", "-j", "-o", "numproc.b")).stdout
    v3 = make(tmp_path, "3")
    res = v3.call("vzlist", "-j")
    assert res.returncode == 1 and res.stderr == "vzlist: invalid option -- 'j'\n"


def test_vzlist_capability_json_quirk(tmp_path: Path) -> None:
    """§1.8: capability names are lower-cased into a reused buffer: net_raw after net_admin
    prints `net_rawin`."""
    host = make(tmp_path)
    put_ct(host, 101, 'CAPABILITY="NET_ADMIN:on NET_RAW:off"\n')
    out = ok(host.call("vzlist", "-a", "-j", "-o", "capability")).stdout
    assert '      "net_admin": true,\n      "net_rawin": false\n    }' in out


def test_vzlist_not_found_and_errors(tmp_path: Path) -> None:
    """§1.8 errors: nothing found is "Container(s) not found" on stderr (legacy; `[]` with
    -j), exit 0 without CTIDs and 1 with; O7 "Container is not found"; bad CTID, unknown
    field and bad sort field are exit 1."""
    host = make(tmp_path)
    res = ok(host.call("vzlist"))
    assert res.stdout == "" and res.stderr == "Container(s) not found\n"
    assert ok(host.call("vzlist", "-j")).stdout == "[]\n"
    res = host.call("vzlist", "105")
    assert res.returncode == 1 and res.stderr == "Container(s) not found\n"
    assert host.call("vzlist", "abc").stderr == "CT ID abc is invalid.\n"
    assert host.call("vzlist", "-o", "bogus").stderr == "Unknown field: bogus\n"
    assert host.call("vzlist", "-s", "-bogus").stderr == "Invalid sort field name: -bogus\n"
    o7 = make(tmp_path, "7")
    res = o7.call("vzlist", "105")
    assert res.returncode == 1 and res.stderr == "Container is not found\n"
    res = ok(o7.call("vzlist", "-j"))
    assert res.stdout == "[\n]\n"


def test_vzlist_hidden_stopped_without_private_and_host_conf(tmp_path: Path) -> None:
    """§1.8: a stopped CT whose VE_PRIVATE does not exist is hidden (header only, exit 0);
    0.conf is not a CT."""
    host = make(tmp_path)
    put_ct(host, 101, "", private=False)
    res = ok(host.call("vzlist", "-a"))
    assert res.stdout == "      CTID      NPROC STATUS    IP_ADDR         HOSTNAME\n"
    assert ok(host.call("vzlist", "-a", "-j")).stdout == "[\n]\n"


def test_vzlist_sort_quirk(tmp_path: Path) -> None:
    """§1.8: `-s NAME.b` sorts by the limit and `-s NAME.l` by the barrier."""
    host = make(tmp_path)
    put_ct(host, 101, 'NUMPROC="10:90"\n')
    put_ct(host, 102, 'NUMPROC="20:80"\n')
    by_b = ok(host.call("vzlist", "-a", "-H", "-o", "ctid", "-s", "numproc.b")).stdout
    by_l = ok(host.call("vzlist", "-a", "-H", "-o", "ctid", "-s", "numproc.l")).stdout
    assert by_b.split() == ["102", "101"] and by_l.split() == ["101", "102"]
    rev = ok(host.call("vzlist", "-a", "-H", "-o", "ctid", "-s", "-ctid")).stdout
    assert rev.split() == ["102", "101"]


def test_vzlist_mounted_status_and_o7_table(tmp_path: Path) -> None:
    """§1.8 status values: mounted CTs show `mounted`; O7's default columns use
    configured_ip and a 36-wide CTID."""
    host = make(tmp_path, "7")
    host.create_ct(101, "--ipadd", "10.0.0.5/24", "--hostname", "h")
    ok(host.call("vzctl", "mount", "101"))
    out = ok(host.call("vzlist", "-a")).stdout.splitlines()
    assert out[0] == " " * 32 + "CTID      NPROC STATUS    CFG_IP_ADDR     HOSTNAME"
    assert out[1] == " " * 33 + "101          - mounted   10.0.0.5        h"
    assert host.call("vzlist", "-t").returncode == 1  # O7 has no -t


def test_vzlist_o7_interface_filter(tmp_path: Path) -> None:
    """§1.8 O7: -i filters by interface name (its default columns then show host_ifname)."""
    host = make(tmp_path, "7")
    host.create_ct(101)
    host.create_ct(102)
    ok(host.call("vzctl", "set", "101", "--netif_add", "eth0", "--save"))
    out = ok(host.call("vzlist", "-a", "-H", "-i", "veth101.0")).stdout
    assert out == " " * 33 + "101 stopped   veth101.0        -               -\n"


def test_vzlist_list_fields(tmp_path: Path) -> None:
    """§1.8: -L lists the field names with their headers (`%-15s %-15s`)."""
    out = ok(make(tmp_path).call("vzlist", "-L")).stdout.splitlines()
    assert out[0] == f"{'ctid':15} {'CTID':15}"
    assert f"{'numproc.b':15} {'NPROC.B':15}" in out
    assert f"{'diskspace.h':15} {'DSPACE.H':15}" in out


# ============================================================ interface: log, faults, bins

def test_call_log_records_every_call(tmp_path: Path) -> None:
    """Call log: one JSON line per invocation with tool, argv and rc (so a driver test can
    prove destroy was never called)."""
    host = make(tmp_path)
    host.create_ct(101)
    host.call("vzctl", "start", "999")
    host.call("vzlist", "-a")
    calls = host.calls()
    assert calls[1] == {"tool": "vzctl", "argv": ["start", "999"], "rc": 14}
    assert calls[2] == {"tool": "vzlist", "argv": ["-a"], "rc": 0}
    assert not any(c["argv"][:1] == ["destroy"] for c in calls)


def test_fault_injection(tmp_path: Path) -> None:
    """Faults: a matching call prints the message, exits with rc and does nothing; `times`
    counts down."""
    host = make(tmp_path)
    host.create_ct(101)
    host.add_fault(command="start", ctid="101", rc=7, message="Error: injected", times=1)
    res = host.call("vzctl", "start", "101")
    assert res.returncode == 7 and res.stderr == "Error: injected\n"
    assert host.state()["cts"] == {}
    ok(host.call("vzctl", "start", "101"))
    host.add_fault(command="stop", ctid="999", rc=4)  # another CT: no effect
    ok(host.call("vzctl", "stop", "101"))
    host.add_fault(tool="vzlist", command=None, rc=2, message="boom", times=None)
    assert host.call("vzlist").returncode == 2 and host.call("vzlist").returncode == 2


def test_executables_on_path(tmp_path: Path) -> None:
    """Interface: bin/vzctl and bin/vzlist are executables found first on the PATH env()
    builds; they need VZSIM_ROOT (exit 3 without it)."""
    host = make(tmp_path)
    env = host.env()
    assert shutil.which("vzctl", path=env["PATH"]) == str(
        Path(__file__).parent / "openvz" / "bin" / "vzctl")
    res = host.run("vzctl", "create", "101", "--ostemplate", OSTEMPLATE, "--hostname", "bin")
    assert res.returncode == 0, res.stderr
    ok(host.run("vzctl", "start", "101"))
    out = ok(host.run("vzlist", "-H", "-o", "ctid,hostname")).stdout
    assert out == "       101 bin\n"
    bare = {k: v for k, v in env.items() if k != "VZSIM_ROOT"}
    res = subprocess.run(["vzctl", "status", "101"], env=bare, capture_output=True, text=True,
                         check=False)
    assert res.returncode == 3 and "VZSIM_ROOT" in res.stderr


def test_executables_lock_and_json(tmp_path: Path) -> None:
    """§1.10 lock and §1.8 JSON through the real executables: a lock held by this process
    makes another process's vzctl exit 9; O7's vzlist -j prints the CTID as a string."""
    host = make(tmp_path, "7")
    host.create_ct(101)
    with host.hold_lock(101):
        res = host.run("vzctl", "set", "101", "--hostname", "x", "--save")
        assert res.returncode == 9 and res.stderr == "Cannot lock the Container\n"
    ok(host.run("vzctl", "start", "101"))
    rows = json.loads(ok(host.run("vzlist", "-j", "-o", "ctid,status")).stdout)
    assert rows == [{"ctid": "101", "status": "running"}]
    assert [c["rc"] for c in host.calls()] == [0, 9, 0, 0]


def test_exec_runs_in_ve_root(tmp_path: Path) -> None:
    """§1.5 exec/exec2: argv joined for `bash -c`; exec maps failure to 8, exec2 returns the
    command's code; a stopped CT is 31."""
    host = make(tmp_path)
    host.create_ct(101)
    assert host.call("vzctl", "exec", "101", "true").returncode == 31
    ok(host.call("vzctl", "start", "101"))
    res = ok(host.call("vzctl", "exec", "101", "echo", "$VZSIM_CTID"))
    assert res.stdout == "101\n"
    assert host.call("vzctl", "exec", "101", "exit 3").returncode == 8
    assert host.call("vzctl", "exec2", "101", "exit 3").returncode == 3


def test_host_wrappers_and_boot_counter(tmp_path: Path) -> None:
    """`VzHost.tool` runs this host's simulator whatever the caller's environment (no VZSIM_*
    needed), and the kernel state counts every start across stops (`boots`)."""
    host = make(tmp_path)
    host.create_ct(101)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VZSIM_")}
    for _ in range(2):
        for action in ("start", "stop"):
            result = subprocess.run([host.tool("vzctl"), action, "101"], env=env,
                                    capture_output=True, text=True, check=False)
            assert result.returncode == 0, result.stderr
    listed = subprocess.run([host.tool("vzlist"), "-a", "-H", "-o", "ctid,status"], env=env,
                            capture_output=True, text=True, check=False).stdout
    assert listed.split() == ["101", "stopped"]
    assert host.state()["boots"] == {"101": 2} and host.state()["cts"] == {}
