"""The pure parts: config lines read as each vzctl version reads them (checked against the
reference's own table and against the simulator's independent parser), typed values and units,
the tools' output parsers and exit codes, and the mapping's normalisation. No host."""

from __future__ import annotations

import itertools

import pytest

from reconciler.drivers.openvz import conffile
from reconciler.drivers.openvz.mapping import read_spec, set_args, validated
from reconciler.drivers.openvz.native import LEGACY, O7, Invalid, parse_pair, subst_veid
from reconciler.drivers.openvz.tools import (
    error_for,
    parse_status_json,
    parse_status_line,
    parse_status_table,
    parse_version,
    template_names,
)
from reconciler.drivers.process import Result
from reconciler.errors import ConfigError, PermanentError, TransientError
from reconciler.rules.openvz import reads_back
from tests.sims.openvz.syntax import Parsed, parse_line

TABLE = [  # reference §1.2: line, legacy value, O7 value (None: skipped)
    ("NAMESERVER=inherit # copy from host", "inherit # copy from host", "inherit"),
    ("HOSTNAME='web1'", "'web1'", "web1"),
    ('HOSTNAME="web1', None, "web1"),
    ('DESCRIPTION="a" b', "a", 'a" b'),
    ('DESCRIPTION="a" # note', "a", "a"),
    ('DESCRIPTION="say \\"hi\\""', 'say "hi"', 'say "hi"'),
    (". . .", None, None),
]


@pytest.mark.parametrize(("line", "legacy", "o7"), TABLE)
def test_reference_table_rows(line: str, legacy: str | None, o7: str | None) -> None:
    for want, is_legacy in ((legacy, True), (o7, False)):
        got = conffile.parse_line(line, 1, is_legacy)
        assert (got.value if got and not got.skipped else None) == want, (line, is_legacy)


PIECES = ['KEY', '=', '"', "'", "#", " ", "\\", "a", "b#", "\t", '\\"', "x y", "="]


def test_line_parser_agrees_with_the_simulator_for_every_short_line() -> None:
    """Two parsers written apart from the same reference agree on every line built from the
    characters that matter (quotes, #, blanks, backslashes)."""
    checked = 0
    for n in range(1, 5):
        for parts in itertools.product(PIECES, repeat=n):
            line = "".join(parts)
            for legacy in (True, False):
                ours = conffile.parse_line(line, 1, legacy)
                theirs = parse_line(line, legacy)
                mine = (ours.key, ours.value) if ours and not ours.skipped else None
                sims = (theirs.key, theirs.value) if isinstance(theirs, Parsed) else None
                assert mine == sims, (line, legacy)
                checked += 1
    assert checked > 30000


@pytest.mark.parametrize("value", ['say "hi"', 'x" #y', "a #b", "it's", "#x", "a\\b", "'q'",
                                   'end"', ' lead', "tab\there", "", '"', "a# b", 'x"#y'])
def test_reads_back_is_what_the_parser_reads(value: str) -> None:
    """The rules' round-trip check (used to refuse values at plan time) agrees with the
    reader: `KEY="value"` as vzctl writes it reads back as `value` exactly when it says so."""
    for legacy in (True, False):
        got = conffile.parse_line(f'DESCRIPTION="{value}"', 1, legacy)
        same = got is not None and not got.skipped and got.value == value
        assert reads_back(value, legacy) == same, (value, legacy)


def test_duplicates_by_version() -> None:
    text = ('HOSTNAME="first"\nHOSTNAME="second"\nNUMPROC="10:10"\nNUMPROC="20:20"\n'
            'IP_ADDRESS="10.0.0.1"\nIP_ADDRESS="10.0.0.2 10.0.0.1"\nCPUUNITS="x"\n'
            'CPUUNITS="300"\n  ONBOOT="yes"\nONBOOT="no"\n')
    legacy = conffile.read(text, "101", LEGACY)
    assert legacy.get("HOSTNAME") == "first" and legacy.get("NUMPROC") == (20, 20)
    assert legacy.get("IP_ADDRESS") == ["10.0.0.1", "10.0.0.2"]
    assert legacy.get("CPUUNITS") == 300  # an invalid line does not count
    assert legacy.get("ONBOOT") is True  # the indented first line wins
    o7 = conffile.read(text, "101", O7)
    assert o7.get("HOSTNAME") == "second" and o7.get("IP_ADDRESS") == ["10.0.0.2", "10.0.0.1"]
    assert o7.get("ONBOOT") is False


def test_units_and_values() -> None:
    assert parse_pair("2G:2.2G", 1024, legacy=True) == (2097152, 2306867)  # DISKSPACE KiB
    assert parse_pair("0:256M", 4096, legacy=True) == (0, 65536)  # pages
    assert parse_pair("1P", 4096, legacy=True) == (1, 1)
    with pytest.raises(Invalid):
        parse_pair("1P", 4096, legacy=False)  # O7 has no P suffix
    with pytest.raises(Invalid):
        parse_pair("10G", 0, legacy=True)  # NUM* take no suffix
    assert parse_pair("unlimited", 1, legacy=True) == (2**63 - 1, 2**63 - 1)
    v = conffile.read('DISKSPACE="unlimited"\nIP_ADDRESS="0.0.0.0 2001:0db8::0001/64"\n',
                      "101", LEGACY)
    assert "DISKSPACE" not in v.values  # rejected from vzctl 4.4 on
    assert v.get("IP_ADDRESS") == ["2001:db8::1/64"]  # legacy canonicalises
    assert subst_veid("/vz/private/$VEID/", "101", True) == "/vz/private/101"
    assert subst_veid("/vz/private/$VEID/", "101", False) == "/vz/private/101/"
    assert subst_veid("/a/${VEID}/$VEID", "7", True) == "/a/${VEID}/7"


def test_tool_parsers() -> None:
    assert parse_version("vzctl version 4.11.1\n").legacy
    assert not parse_version("vzctl version 3.0.30").json
    assert parse_version("vzctl version 7.0.263").family == "7"
    with pytest.raises(ConfigError):
        parse_version("vzctl: unknown option")
    assert parse_status_json('[\n  {\n    "ctid": 101,\n    "status": "running"\n  }\n]\n') \
        == {"101": "running"}
    assert parse_status_json('[\n  {\n    "ctid": "102",\n    "status": "stopped"\n  }\n]') \
        == {"102": "stopped"}
    assert parse_status_json("[]\n") == {}
    with pytest.raises(PermanentError):
        parse_status_json('[{"ctid": 1, "description": "a"b"}]')
    assert parse_status_table("       101 running\n       102 stopped\n") == {
        "101": "running", "102": "stopped"}
    assert parse_status_line("CTID 101 exist mounted running\n") == (True, True, "running")
    assert parse_status_line("VEID 101 exist unmounted paused\n")[2] == "paused"
    assert template_names(["centos-7.tar.gz", "deb.tar", "x.tar.zst", ".h.tar"]) == {
        "centos-7", "deb"}


def test_exit_codes() -> None:
    def fail(rc: int) -> Result:
        return Result(("vzctl", "start", "101"), rc, "", "Error: it broke\n")
    assert isinstance(error_for(fail(9), "start"), TransientError)
    assert isinstance(error_for(fail(15), "start"), TransientError)
    permanent = error_for(fail(43), "start")
    assert isinstance(permanent, PermanentError) and "it broke (exit 43)" in str(permanent)


def test_read_spec_normalises_what_openvz_fills_in() -> None:
    text = ('NAME="web"\nPHYSPAGES="0:256M"\nSWAPPAGES="0:512M"\nNUMPROC="240:240"\n'
            'DISKSPACE="2G:2.2G"\nIP_ADDRESS="2001:0db8::5 10.0.0.1"\n'
            'NETIF="ifname=eth0,mac=00:18:51:AA:BB:CC,host_ifname=veth101.0,'
            'host_mac=00:18:51:DD:EE:FF,bridge=br0"\nCPUS="2"\nCPUMASK="0-1"\n')
    conf = conffile.read(text, "101", LEGACY)
    last = {"limits": {"numproc": [240, 240]},
            "interfaces": [{"type": "bridge", "source": "br0", "guest_dev": "eth0"},
                           {"type": "routed", "ip": ["10.0.0.1", "2001:0db8::5"]}],
            "cpu": {"count": 2, "cpuset": "0,1"}}
    spec, dropped = validated(read_spec(conf, "101", LEGACY, last))
    assert not dropped
    assert spec["memory"] == "256MiB" and spec["limits"] == {"numproc": [240, 240]}
    assert spec["quota"]["space"] == ["2GiB", "2306867KiB"]
    assert spec["interfaces"] == last["interfaces"]  # order, spelling, no generated MACs
    assert spec["cpu"] == {"count": 2, "cpuset": "0,1"}
    imported, _ = validated(read_spec(conf, "101", LEGACY))
    assert imported["interfaces"][1]["mac"] == "00:18:51:aa:bb:cc"
    assert "physpages" not in imported["limits"]  # it is `memory`


def test_set_args_give_only_what_differs() -> None:
    conf = conffile.read('NAME="web"\nHOSTNAME="web"\nPHYSPAGES="0:32768"\nSWAPPAGES="0"\n'
                         'IP_ADDRESS="10.0.0.1 10.0.0.2/24"\nNETDEV="eth5"\n', "101", LEGACY)
    want = {"name": "web", "type": "openvz", "hostname": "web", "memory": "128MiB",
            "interfaces": [{"type": "routed", "ip": ["10.0.0.2/25", "10.0.0.3"]}]}
    args = set_args(want, conf, "101", LEGACY)
    assert args.main == ["--ipdel", "10.0.0.1", "--ipadd", "10.0.0.2/25", "--ipadd", "10.0.0.3",
                         "--netdev_del", "eth5"]
    assert not args.restart and not args.nics
    unchanged = {"name": "web", "type": "openvz", "hostname": "web", "memory": "128MiB"}
    assert set_args(unchanged, conf, "101", LEGACY).empty
    ugid = set_args({**unchanged, "quota": {"ugid_limit": 10}}, conf, "101", LEGACY)
    assert ugid.restart and ugid.main == ["--quotaugidlimit", "10"]
