"""Config injection on the real host: a value that a careless reader splits in two must never
become a line of its own in a container's config, and LXC must never run a command from it.

The configs are read back with LXC's own rule (a line ends at LF only) and the containers
restarted with the LXC tools, so a hook that got in would run and leave its marker.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxc_support import HostWorld

SEPARATORS = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\r"]


def hook_lines(config: str) -> list[str]:
    """Lines LXC would read as a hook key (LXC: split at LF, leading blanks and tabs skipped)."""
    return [line for line in config.split("\n") if line.lstrip(" \t").startswith("lxc.hook")]


def payload(marker: Path, separator: str) -> str:
    return f"x{separator}lxc.hook.pre-start = /bin/touch {marker}"


def restart(world: HostWorld, name: str) -> None:
    assert world.lxc("lxc-stop", name, "-k").returncode in (0, 2)
    started = world.lxc("lxc-start", name, "-d")
    assert started.returncode == 0, started.stderr
    assert world.lxc("lxc-wait", name, "-s", "RUNNING", "-t", "10").returncode == 0


def test_a_spec_carrying_a_separator_is_refused_and_nothing_reaches_the_config(
        world: HostWorld) -> None:
    name = world.name("inj")
    marker = world.lxcpath.parent / "ran-from-spec"
    world.write(name, world.spec(name))
    world.apply()
    before = world.config_text(name)
    for separator in SEPARATORS:
        world.write(name, world.spec(name, init={"cmd": "/boot/boot",
                                                 "env": {"A": payload(marker, separator)}}))
        plan = world.plan()
        held = {o.ref.name: o.action for o in plan.objects}
        assert held[name] == "held", (repr(separator), held)
        assert not plan.steps
    world.apply(ok=True)
    restart(world, name)
    assert world.config_text(name) == before
    assert hook_lines(world.config_text(name)) == []
    assert not marker.exists()


@pytest.mark.parametrize("separator", ["\u2028", "\x85", "\x0c"])
def test_a_hand_written_separator_stays_inside_its_line_through_a_rewrite(
        world: HostWorld, separator: str) -> None:
    """Someone (or an old version) left such a value in the config: reading and rewriting it
    for an unrelated change keeps it one line, so LXC still sees one environment value."""
    name = world.name("rw")
    marker = world.lxcpath.parent / "ran-from-config"
    world.write(name, world.spec(name))
    world.apply()
    config = world.lxcpath / name / "config"
    config.write_text(config.read_text() + f"lxc.environment = {payload(marker, separator)}\n")
    world.write(name, world.spec(name, memory="160MiB"))  # an update rewrites the config
    plan, _ = world.apply()
    assert any(s.kind == "update" and s.ref.name == name for s in plan.steps)
    text = world.config_text(name)
    assert "160" in text or "167772160" in text
    assert hook_lines(text) == []
    assert payload(marker, separator) in text  # kept, as one line, where it was
    restart(world, name)
    assert not marker.exists()


def test_dns_is_never_written_outside_a_root_the_driver_built(world: HostWorld) -> None:
    """A container whose root is a host directory (allowed here by the policy): dns would
    write that directory's etc/resolv.conf, which with `/` as the root is the host's own. The
    plan refuses it; without dns the same container applies, and the file stays as it was."""
    name = world.name("dns")
    hostroot = world.lxcpath.parent / "hostroot"
    (hostroot / "etc").mkdir(parents=True)
    (hostroot / "etc" / "resolv.conf").write_text("nameserver 192.0.2.53\n")
    spec = world.spec(name, state="stopped", dns={"nameservers": ["198.51.100.1"]})
    spec["filesystems"] = [{"type": "mount", "source": str(hostroot), "target": "/"}]
    world.options["stop_timeout"] = 0
    world.write(name, spec)
    allow = {"mount_roots": [str(world.lxcpath.parent)], "privileged": True, "host_root": True}
    world.policy = allow
    plan = world.plan()
    [obj] = [o for o in plan.objects if o.ref.name == name]
    assert obj.action == "refused" and [r.field for r in obj.refusals] == ["dns"]
    del spec["dns"]
    world.write(name, spec)
    world.apply()
    assert (world.lxcpath / name / "config").exists()
    assert (hostroot / "etc" / "resolv.conf").read_text() == "nameserver 192.0.2.53\n"
