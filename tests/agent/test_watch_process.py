"""The real `reconciler watch` process on `sim`: files in, steps out."""

from __future__ import annotations

import os
import shutil
import time

from .conftest import (
    base_args,
    journal,
    plans,
    sim_record,
    spec_text,
    steps_done,
    wait_for,
    write_atomic,
)


def test_new_file_and_edit_are_applied(dirs, start_agent):
    specs, state = dirs
    write_atomic(specs / "web.yaml", spec_text("web"))
    agent = start_agent(*base_args(specs, state))
    agent.wait_idle()
    assert (sim_record(state, "web") or {}).get("running")

    write_atomic(specs / "sub" / "db.yaml", spec_text("db", "64MiB"))  # new file, new dir
    wait_for(lambda: steps_done(state, "domain/db:start"), what="db started")

    memory = sim_record(state, "web")["config"]["memory"]
    write_atomic(specs / "web.yaml", spec_text("web", "256MiB"))  # an edit
    wait_for(lambda: steps_done(state, "domain/web:update"), what="web updated")
    record = sim_record(state, "web")
    assert record is not None and record["running"]
    assert record["config"]["memory"] != memory
    # the edit was planned for the one object it touched
    last = plans(state)[-1]
    assert [o["object"] for o in last["objects"]] == ["domain/web"]
    assert last["context"]["trigger"] == "files" and last["context"]["scope"] == "partial"
    assert agent.stop() == 0


def test_half_written_file_is_never_applied(dirs, start_agent):
    """A slow writer pausing mid-file: the first half parses as a valid spec, and must still
    never be planned. Two writers: one holding the file open across a pause longer than the
    settle time, one closing between halves with a pause shorter than it."""
    specs, state = dirs
    agent = start_agent(*base_args(specs, state, "--settle", "1.0"))
    agent.wait_idle()
    first = spec_text("slow", "64MiB")
    rest = "hostname: finished\n"

    with open(specs / "slow.yaml", "w") as fh:  # held open across a 2.5 s pause
        fh.write(first)
        fh.flush()
        os.fsync(fh.fileno())
        time.sleep(2.5)
        fh.write(rest)

    with open(specs / "slow2.yaml", "w") as fh:  # closed, then appended 0.5 s later
        fh.write(spec_text("slow2", "64MiB"))
    time.sleep(0.5)
    with open(specs / "slow2.yaml", "a") as fh:
        fh.write(rest)

    wait_for(lambda: steps_done(state, "domain/slow:start") and
             steps_done(state, "domain/slow2:start"), what="both applied")
    seen = []
    for plan in plans(state):
        for step in plan["steps"]:
            if step["object"] in ("domain/slow", "domain/slow2") and step["spec"] is not None:
                seen.append(step["spec"].get("hostname"))
    assert seen and all(h == "finished" for h in seen), seen
    for name in ("slow", "slow2"):
        assert sim_record(state, name)["config"]["hostname"] == "finished"
    assert agent.stop() == 0


def test_editor_temp_and_backup_files_do_nothing(dirs, start_agent):
    specs, state = dirs
    write_atomic(specs / "a.yaml", spec_text("a"))
    agent = start_agent(*base_args(specs, state, "--settle", "0.4"))
    agent.wait_idle()
    before = len(plans(state))
    for junk in (".a.yaml.swp", "a.yaml~", "#a.yaml#", "a.yaml.bak", "a.yaml.orig",
                 "a.yaml.dpkg-new", "4913", "notes.txt", ".hidden.yaml"):
        (specs / junk).write_text(spec_text("junk" + str(abs(hash(junk)) % 1000)))
    (specs / ".git").mkdir()
    (specs / ".git" / "x.yaml").write_text(spec_text("gitjunk"))
    # vim's default save: rename the file to a backup, write a new one in place, drop backup
    os.rename(specs / "a.yaml", specs / "a.yaml~")
    with open(specs / "a.yaml", "w") as fh:
        fh.write(spec_text("a", "96MiB"))
    os.unlink(specs / "a.yaml~")
    wait_for(lambda: steps_done(state, "domain/a:update"), what="a updated")
    time.sleep(1.0)
    new = plans(state)[before:]
    objects = {o["object"] for p in new for o in p["objects"]}
    assert objects == {"domain/a"}, objects
    assert all(o["action"] == "update" for p in new for o in p["objects"])
    assert not list((state / "sim" / "objects" / "Domain").glob("junk*"))
    assert agent.stop() == 0


def test_emptied_spec_directory_trips_the_breaker(dirs, start_agent):
    specs, state = dirs
    for name in ("one", "two", "three"):
        write_atomic(specs / f"{name}.yaml", spec_text(name))
    agent = start_agent(*base_args(specs, state, "--settle", "0.3"))
    agent.wait_idle()
    shutil.rmtree(specs)
    agent.wait_event("removal.refused", timeout=10)
    time.sleep(0.5)
    for name in ("one", "two", "three"):
        record = sim_record(state, name)
        assert record is not None and record["running"], name
    assert not any(r.get("event") == "step.started" and ":undefine" in r.get("step", "")
                   for r in journal(state))
    last = agent.events("pass.finished")[-1]
    assert last["result"] == "refused"
    # the directory comes back: the agent watches it again and applies what it holds
    specs.mkdir()
    write_atomic(specs / "four.yaml", spec_text("four"))
    for name in ("one", "two", "three"):
        write_atomic(specs / f"{name}.yaml", spec_text(name))
    wait_for(lambda: steps_done(state, "domain/four:start"), what="four started")
    assert agent.stop() == 0


def test_symlink_swap_is_one_change(tmp_path, start_agent):
    trees, state = tmp_path / "trees", tmp_path / "state"
    v1 = trees / "v1"
    for name in ("a", "b"):
        write_atomic(v1 / f"{name}.yaml", spec_text(name))
    link = tmp_path / "specs"
    os.symlink(v1, link)
    agent = start_agent(*base_args(link, state, "--settle", "0.3"))
    agent.wait_idle()
    before = len(plans(state))

    v2 = trees / "v2"
    write_atomic(v2 / "a.yaml", spec_text("a", "512MiB"))
    write_atomic(v2 / "b.yaml", spec_text("b"))
    write_atomic(v2 / "c.yaml", spec_text("c"))
    write_atomic(v2 / "d" / "d.yaml", spec_text("d"))
    tmp_link = tmp_path / ".specs.new"
    os.symlink(v2, tmp_link)
    os.replace(tmp_link, link)  # git-sync: one rename swaps the whole tree
    shutil.rmtree(v1)           # ... and the old tree goes away

    wait_for(lambda: steps_done(state, "domain/d:start") and
             steps_done(state, "domain/a:update"), what="v2 applied")
    time.sleep(1.0)
    new = [p for p in plans(state)[before:] if p["steps"]]
    assert len(new) == 1, [[o["object"] for o in p["objects"]] for p in new]
    changed = {o["object"]: o["action"] for o in new[0]["objects"]}
    assert changed == {"domain/a": "update", "domain/c": "create", "domain/d": "create"}
    assert sim_record(state, "b")["running"]  # removing v1 removed nothing
    # sources keep the symlink's name, so the next swap compares like with like
    assert sim_record(state, "c")["stamp"]["source"] == str(link / "c.yaml")
    assert agent.stop() == 0


def test_sigterm_during_a_slow_step_exits_cleanly_and_resumes(dirs, start_agent):
    specs, state = dirs
    (state / "sim").mkdir(parents=True)
    (state / "sim" / "faults.json").write_text(
        '[{"step": "provision", "object": "first", "mode": "hang", "seconds": 2.5, '
        '"times": 1}]')
    write_atomic(specs / "first.yaml", spec_text("first"))
    write_atomic(specs / "second.yaml", spec_text("second", depends_on="[first]"))
    agent = start_agent(*base_args(specs, state, "--parallel", "1"))
    wait_for(lambda: any(r.get("event") == "step.started" and
                         r.get("step") == "domain/first:provision" for r in journal(state)),
             what="the slow step to start")
    started = time.monotonic()
    assert agent.stop(timeout=20) == 0
    assert time.monotonic() - started >= 1.5  # it waited for the running step
    records = journal(state)
    assert any(r.get("event") == "step.succeeded" and r.get("step") == "domain/first:provision"
               for r in records)  # the running step finished
    assert not steps_done(state, "domain/second:start")
    assert any(r.get("event") == "apply.finished" and r.get("interrupted") for r in records)

    again = start_agent(*base_args(specs, state))
    again.wait_idle()
    for name in ("first", "second"):
        assert (sim_record(state, name) or {}).get("running"), name
    assert not [r for r in journal(state) if r.get("event") == "step.failed"]
    assert again.stop() == 0


def test_second_agent_on_the_same_state_directory_refuses(dirs, start_agent):
    specs, state = dirs
    write_atomic(specs / "a.yaml", spec_text("a"))
    first = start_agent(*base_args(specs, state))
    first.wait_idle()
    second = start_agent(*base_args(specs, state))
    rc = second.proc.wait(timeout=20)
    assert rc == 1
    assert "already running" in second.text() and str(first.proc.pid) in second.text()
    assert first.proc.poll() is None
    assert first.stop() == 0


def test_drift_is_reverted_by_the_periodic_resync(dirs, start_agent):
    from reconciler.drivers.sim import SimDriver
    from reconciler.model.fields import Ref

    specs, state = dirs
    write_atomic(specs / "a.yaml", spec_text("a", "128MiB"))
    args = base_args(specs, state)
    args[args.index("--resync") + 1] = "1"
    agent = start_agent(*args)
    agent.wait_idle()
    memory = sim_record(state, "a")["config"]["memory"]
    SimDriver(state).tamper(Ref("Domain", "a"), running=False, memory=999)
    wait_for(lambda: (sim_record(state, "a") or {}).get("running") and
             sim_record(state, "a")["config"]["memory"] == memory, timeout=10,
             what="drift reverted")

    def resyncs() -> list[dict]:
        return [p for p in agent.passes() if p["trigger"] == "resync" and p["steps"]]

    # the pass is recorded once its apply has finished, a moment after the guest changed
    wait_for(resyncs, timeout=10, what="resync pass recorded")
    assert resyncs()[-1]["result"] == "succeeded"
    assert agent.stop() == 0


def test_failing_object_backs_off_while_others_proceed(dirs, start_agent):
    specs, state = dirs
    (state / "sim").mkdir(parents=True)
    (state / "sim" / "faults.json").write_text(
        '[{"step": "define", "object": "bad", "mode": "fail", "times": 2}]')
    write_atomic(specs / "bad.yaml", spec_text("bad"))
    write_atomic(specs / "good.yaml", spec_text("good"))
    agent = start_agent(*base_args(specs, state))
    agent.wait_idle()
    assert (sim_record(state, "good") or {}).get("running")
    first = agent.wait_event("object.backoff")
    assert first["object"] == "domain/bad" and first["failures"] == 1
    write_atomic(specs / "other.yaml", spec_text("other"))  # others go on meanwhile
    wait_for(lambda: steps_done(state, "domain/other:start"), what="other started")
    second = agent.wait_event("object.backoff", after=1, timeout=10)
    assert second["failures"] == 2 and second["retry_in"] > first["retry_in"] * 1.2
    wait_for(lambda: steps_done(state, "domain/bad:start"), timeout=15, what="bad retried")
    # the pass is logged as finished just after its steps are journaled: wait for it
    wait_for(lambda: len([p for p in agent.passes() if p["trigger"] == "retry"]) >= 2,
             what="two retry passes")
    assert agent.stop() == 0
