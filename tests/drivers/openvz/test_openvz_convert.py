"""Converting native OpenVZ files: libvirt's own test config (corpus) value by value under both
versions' rules, the `vps.basic` sample of the original threads into the built-in profile, and
every line either converted or reported."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reconciler.drivers.openvz import convert_conf, convert_file, convert_sample
from reconciler.errors import SpecError
from reconciler.model import Domain, Profile
from tests.conftest import CORPUS, REPO, SHARED
from tests.sims.openvz.host import LEGACY_BASIC_SAMPLE, O7_BASIC_SAMPLE

CONF = CORPUS / "tests" / "openvzutilstest.conf"  # read in place, never copied

UBCS = {  # the file's beancounters, barrier:limit in their own units
    "numproc": [8000, 8000], "avnumproc": [2257, 2257], "numtcpsock": [8000, 8000],
    "numothersock": [8000, 8000], "vmguarpages": [360000, 360000],
    "kmemsize": [184953241, 203448565], "tcpsndbuf": [28883080, 61651080],
    "tcprcvbuf": [28883080, 61651080], "othersockbuf": [14441540, 47209540],
    "dgramrcvbuf": [14441540, 14441540], "oomguarpages": [360000, 360000],
    "privvmpages": [360000, 360000], "lockedpages": [9030, 9030], "shmpages": [15506, 15506],
    "physpages": [0, 2147483647], "numfile": [72224, 72224], "numflock": [1000, 1100],
    "numpty": [512, 512], "numsiginfo": [1024, 1024], "dcachesize": [40389343, 41601024],
    "numiptent": [200, 200]}
O7_IGNORED = {"numtcpsock", "numothersock", "tcpsndbuf", "tcprcvbuf", "othersockbuf",
              "dgramrcvbuf", "oomguarpages", "dcachesize"}


def _lines(path: Path) -> dict[str, int]:
    return {line.split("=", 1)[0]: n for n, line in enumerate(path.read_text().split("\n"), 1)
            if "=" in line and not line.startswith("#")}


def test_libvirt_openvz_config_with_legacy_rules() -> None:
    """Legacy vzctl: the first DISKSPACE/DISKINODES line wins (the empty ones later are
    duplicates), and the NETIF line lacks its closing quote, so vzctl skips it: the spec says
    what vzctl would do, and the skipped line is reported."""
    done = convert_conf(CONF.read_text(), 105)  # libvirt's test reads it as CT 105's
    spec = done.spec
    Domain.model_validate(spec)
    assert (spec["kind"], spec["name"], spec["id"], spec["type"]) == (
        "Domain", "105", 105, "openvz")
    assert spec["limits"] == UBCS
    assert spec["quota"] == {"space": ["107733379KiB", "118506717KiB"],
                             "inodes": [55287781, 60816560]}
    assert spec["filesystems"] == [{"type": "template", "target": "/", "name": "rhel-5-lystor"}]
    assert spec["interfaces"] == [{"type": "routed", "ip": ["194.44.18.88"]}]
    assert spec["autostart"] is True and spec["cpu"] == {"shares": 150550}
    notes = {(n.line, n.key): n.reason for n in done.not_converted}
    assert "unmatched quotes" in notes[(42, "NETIF")]
    assert notes[(39, "DISK_QUOTA")] == "no model field for it"
    assert {k for _, k in notes} == {"DISKSPACE", "DISKINODES", "QUOTATIME", "DISK_QUOTA",
                                     "NETIF"}


def test_libvirt_openvz_config_with_openvz7_rules() -> None:
    """OpenVZ 7: the last line of a key wins (the empty DISKSPACE/DISKINODES, which do not
    parse), a quote at the end is optional, so NETIF is read; the beancounters OpenVZ 7 no
    longer applies are reported, not converted."""
    done = convert_conf(CONF.read_text(), 105, "7")
    spec = done.spec
    assert spec["limits"] == {k: v for k, v in UBCS.items() if k not in O7_IGNORED}
    assert "quota" not in spec
    assert spec["interfaces"] == [
        {"type": "routed", "ip": ["194.44.18.88"]},
        {"type": "routed", "guest_dev": "eth10", "mac": "00:18:51:c1:05:ee",
         "host_dev": "veth105.10", "host_mac": "00:18:51:8f:d9:f3"}]
    notes = {(n.line, n.key): n.reason for n in done.not_converted}
    lines = _lines(CONF)
    for key in O7_IGNORED:
        assert notes[(lines[key.upper()], key.upper())] == "OpenVZ 7 ignores it"
    assert "overridden" in notes[(31, "DISKSPACE")]


def test_every_line_is_converted_or_reported() -> None:
    done = convert_conf(CONF.read_text(), 105)
    reported = {n.line for n in done.not_converted}
    converted = {n for key, n in _lines(CONF).items() if key not in
                 {"DISKSPACE", "DISKINODES", "QUOTATIME", "DISK_QUOTA", "NETIF"}}
    assert reported.isdisjoint(converted)
    assert reported | converted >= set(_lines(CONF).values())


def test_vps_basic_sample_of_the_threads_is_the_builtin_profile() -> None:
    """seeds/004: the vps.basic sample as mailed; converted, it is reconciler's built-in
    vps.basic profile (beancounters, disk quota, CPU units, ONBOOT)."""
    mail = (SHARED / "seeds" / "004_515d5b6e327dfdda.txt").read_text().split("\n")
    start = next(i for i, line in enumerate(mail) if line.startswith('> ONBOOT="no"'))
    end = next(i for i, line in enumerate(mail) if line.startswith('> CPUUNITS='))
    sample = "\n".join(line[2:] for line in mail[start:end + 1]) + "\n"
    done = convert_sample(sample, "vps.basic")
    builtin = yaml.safe_load((REPO / "reconciler" / "profiles" / "vps.basic.yaml").read_text())
    expected = Profile.model_validate(builtin).model_dump(mode="json", exclude_defaults=True,
                                                          exclude={"description"})
    assert done.kind == "Profile"
    assert {k: v for k, v in done.spec.items() if k not in ("description", "kind")} == expected
    assert done.not_converted == ()


@pytest.mark.parametrize(("version", "text", "reported"), [
    ("legacy", LEGACY_BASIC_SAMPLE, {"NETFILTER"}),
    ("7", O7_BASIC_SAMPLE, {"VERSION", "NETFILTER", "QUOTATIME", "IP_ADDRESS", "PLATFORM",
                            "NUMMEMORYSUBGROUPS"})])
def test_shipped_samples_convert_to_profiles(version: str, text: str,
                                             reported: set[str]) -> None:
    done = convert_sample(text, "basic", version)
    Profile.model_validate(done.spec)
    assert {n.key for n in done.not_converted} == reported
    if version == "7":  # PHYSPAGES 65536:65536 is 256 MiB of RAM
        assert done.spec["memory"] == "256MiB" and done.spec["autostart"] is True
    else:
        assert done.spec["limits"]["numproc"] == [240, 240]
        assert done.spec["quota"]["space"] == ["2GiB", "2306867KiB"]


def test_file_names(tmp_path: Path) -> None:
    (tmp_path / "ve-small.conf-sample").write_text('NUMPROC="10:20"\n')
    (tmp_path / "123.conf").write_text('NAME="web1"\nHOSTNAME="web1"\n')
    (tmp_path / "x.conf").write_text("")
    assert convert_file(tmp_path / "ve-small.conf-sample") == (
        {"kind": "Profile", "name": "small", "limits": {"numproc": [10, 20]}}, [])
    spec, notes = convert_file(tmp_path / "123.conf")
    assert spec == {"kind": "Domain", "name": "web1", "type": "openvz", "id": 123,
                    "hostname": "web1"}
    with pytest.raises(SpecError, match=r"CTID\.conf"):
        convert_file(tmp_path / "x.conf")
    (tmp_path / "124.conf").write_text('NAME="a"\nVE_ROOT="/vz/root/$VEID"\nFOO="bar"\n')
    _, notes = convert_file(tmp_path / "124.conf")
    assert [n.report() for n in notes] == [
        f"{tmp_path}/124.conf:2: warning: not converted: VE_ROOT = /vz/root/$VEID (no model "
        "field for it)",
        f"{tmp_path}/124.conf:3: warning: not converted: FOO = bar (no model field for it)"]


def test_cli_warns_per_line_and_strict_fails(tmp_path: Path) -> None:
    """`reconciler convert --from openvz`: the spec on stdout, one warning per line left out
    (with its line), `--strict` an error and nothing written."""
    import subprocess
    import sys

    conf = tmp_path / "101.conf"
    conf.write_bytes(CONF.read_bytes())  # the CTID comes from the file's name
    lines = _lines(conf)

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reconciler", "convert", str(conf),
                               "--from", "openvz", "--to", "yaml", *extra],
                              capture_output=True, text=True, timeout=60, check=False)

    legacy = run()
    assert legacy.returncode == 0, legacy.stderr
    assert yaml.safe_load(legacy.stdout)["id"] == 101
    assert f"{conf}:{lines['NETIF']}: warning: not converted: NETIF = " in legacy.stderr
    o7 = run("--openvz-version", "7")
    assert o7.returncode == 0
    assert f"{conf}:{lines['DCACHESIZE']}: warning: not converted: DCACHESIZE" in o7.stderr
    strict = run("--strict")
    assert strict.returncode == 1 and strict.stdout == ""
    assert f"{conf}:{lines['NETIF']}: error: not converted: NETIF" in strict.stderr
