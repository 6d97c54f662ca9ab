"""Shell completion and the man page are made from the parser: run them in a real bash, zsh
and groff, and check they cover every command and option the parser has."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli import build_parser
from reconciler.cli.docs import commands, global_options
from reconciler.cli.exits import TABLE
from tests.conftest import REPO


def cli(*args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "reconciler", *args], capture_output=True,
                         text=True, timeout=60, check=True)
    return res.stdout


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("completion") / "reconciler.bash"
    path.write_text(cli("completion", "bash"))
    return path


def complete(script: Path, *words: str) -> list[str]:
    """What bash offers for the last of `words` (the line typed so far)."""
    line = " ".join(f"'{w}'" for w in words)
    program = (f"source {script}; COMP_WORDS=(reconciler {line}); "
               f"COMP_CWORD={len(words)}; _reconciler; printf '%s\\n' \"${{COMPREPLY[@]}}\"")
    res = subprocess.run(["bash", "--norc", "-c", program], capture_output=True, text=True,
                         timeout=30, check=True, cwd=script.parent)
    return [w for w in res.stdout.split("\n") if w]


def test_bash_offers_commands_options_and_choices(bash_script: Path) -> None:
    assert complete(bash_script, "pl") == ["plan"]
    assert "--detailed-exitcode" in complete(bash_script, "plan", "--")
    assert complete(bash_script, "plan", "--format", "") == ["text", "json", "markdown"]
    assert set(complete(bash_script, "show", "--format", "")) == {"text", "json", "markdown",
                                                                   "yaml", "xml"}
    assert complete(bash_script, "completion", "") == ["bash", "zsh"]
    assert complete(bash_script, "--log-format", "") == ["auto", "json", "console"]
    # global options after the command, as the parser takes them
    assert "--no-color" in complete(bash_script, "apply", "--no")
    assert complete(bash_script, "plan", "reconciler.b") == ["reconciler.bash"]  # a file


def test_bash_knows_every_option_of_every_command(bash_script: Path) -> None:
    for command in commands(build_parser()):
        offered = set(complete(bash_script, command.name, "-"))
        flags = {f for opt in command.options for f in opt.flags}
        assert flags <= offered, (command.name, flags - offered)


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (CI installs it)")
def test_zsh_script_loads() -> None:
    script = cli("completion", "zsh")
    res = subprocess.run(["zsh", "-f", "-c", f"{script}\nwhence -w _reconciler"],
                         capture_output=True, text=True, timeout=30, check=False)
    assert res.returncode == 0, res.stderr
    assert "_reconciler: function" in res.stdout


def test_the_man_page_is_clean_roff_and_covers_the_parser(tmp_path: Path) -> None:
    page = tmp_path / "reconciler.1"
    page.write_text(cli("manpage"))
    lint = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", str(page)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert lint.returncode == 0 and lint.stderr == ""
    shown = subprocess.run(["groff", "-man", "-Tascii", "-P-c", str(page)],
                           capture_output=True, text=True, timeout=60, check=True).stdout
    shown = re.sub(r".\x08", "", shown)  # overstrike bold
    for command in commands(build_parser()):
        assert re.search(rf"^\s+{command.name}$", shown, re.M), command.name
    for opt in global_options(build_parser()):
        assert opt.flags[-1] in shown or opt.flags[-1] == "--help"
    section = shown.split("EXIT STATUS", 1)[1]
    for code, _ in TABLE:
        assert re.search(rf"^\s+{code}\s", section, re.M), code


def test_the_readme_exit_code_table_is_the_cli_table() -> None:
    readme = (REPO / "README.md").read_text()
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", readme, re.M)
    assert [(int(code), meaning) for code, meaning in rows] == list(TABLE)
