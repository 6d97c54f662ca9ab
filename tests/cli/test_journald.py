"""Under systemd, with stderr connected to the journal, every log line carries its syslog
priority (journald's SyslogLevelPrefix), so `journalctl -p warning` finds the failures."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GOOD = "kind: Domain\nname: ok\ntype: kvm\nos: {type: hvm}\nmemory: 64MiB\n"


def run_with_stderr_file(tmp_path: Path, journal: bool) -> list[str]:
    specs = tmp_path / "specs"
    specs.mkdir(exist_ok=True)
    (specs / "ok.yaml").write_text(GOOD)
    (specs / "bad.yaml").write_text("kind: Domain\nname: bad\n")  # spec.invalid: a warning
    err = tmp_path / "stderr.txt"
    with err.open("w") as sink:
        st = os.fstat(sink.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}" if journal else ""}
        subprocess.run([sys.executable, "-m", "reconciler", "--log-format", "json", "plan",
                        str(specs), "--state-dir", str(tmp_path / "state")],
                       stdout=subprocess.DEVNULL, stderr=sink, env=env, timeout=60, check=False)
    return [line for line in err.read_text().split("\n") if '"event"' in line]


def test_priorities_follow_the_level_when_stderr_is_the_journal(tmp_path: Path) -> None:
    lines = run_with_stderr_file(tmp_path, journal=True)
    assert any(line.startswith('<4>{') and '"spec.invalid"' in line for line in lines)
    assert any(line.startswith('<6>{') and '"plan.computed"' in line for line in lines)
    assert all(line[:3] in ("<3>", "<4>", "<6>", "<7>") for line in lines)


def test_no_prefix_elsewhere(tmp_path: Path) -> None:
    lines = run_with_stderr_file(tmp_path, journal=False)
    assert lines and all(line.startswith("{") for line in lines)
