"""`runner state push` / `state pull`: the whole state moves between backends, nothing lost."""

from __future__ import annotations

import json
from collections.abc import Callable

from backends import held_lock
from conftest import API_ENV, EmulatorProcess, ProjectDir, us_numbers, write_campaign
from pg import DATABASE, PostgresServer

STATE = "runner.state.json"


def rich_state(project: ProjectDir, emulators: Callable[..., EmulatorProcess]) -> None:
    """Delivered sends, an accepted baseline and a pending send: every kind of record."""
    write_campaign(project, "alpha", "Alpha calling.", us_numbers(3))
    write_campaign(project, "beta", "Beta calling.", us_numbers(2, start=3))
    assert project.run("state", "accept", "alpha").code == 0
    refusing = emulators("--rate-429", "1", "--retry-after", "0")
    pending = project.run("apply", "--auto-approve", "--api-url", refusing.url, env=API_ENV)
    assert pending.code == 1, pending
    write_campaign(project, "gamma", "Gamma calling.", us_numbers(600, start=5))
    write_campaign(project, "beta", "Beta calling again.", us_numbers(2, start=3))


def plan_json(project: ProjectDir, *state: str) -> str:
    """The plan as JSON, but for the age of pending sends, which grows as the test runs."""
    result = project.run(*state, "plan", "--format", "json")
    assert result.code == 0, result
    data = json.loads(result.out)
    del data["target"]  # names the state location, which is what moves here
    for campaign in data["campaigns"]:
        for pending in campaign["pending"]:
            pending["age_seconds"] = "ignored"
    return json.dumps(data, indent=2)


def test_plan_is_identical_after_local_to_postgres_to_local(
    project: ProjectDir,
    emulators: Callable[..., EmulatorProcess],
    postgres_server: PostgresServer,
) -> None:
    project.write("runner.yaml", (project.root / "runner.yaml").read_text() + "project: moved\n")
    rich_state(project, emulators)
    before = plan_json(project)
    assert any(c["pending"] for c in json.loads(before)["campaigns"])  # pending sends travel too
    url = postgres_server.url(DATABASE)

    pushed = project.run("state", "push", url)
    assert pushed.code == 0, pushed
    lineage = json.loads(before)["lineage"]
    assert f"copied state {lineage} (serial " in pushed.out
    assert f"to postgresql://runner:***@127.0.0.1:{postgres_server.port}/runner" in pushed.out
    assert plan_json(project, "--state", url) == before

    pulled = project.run("--state", "back.json", "state", "pull", url)
    assert pulled.code == 0, pulled
    assert plan_json(project, "--state", "back.json") == before
    assert (project.root / "back.json").read_bytes() == (project.root / STATE).read_bytes()
    again = project.run("--state", "back.json", "state", "pull", url)
    serial = json.loads(before)["serial"]
    assert again.out.strip() == f"{project.root / 'back.json'} already holds this state ({serial=})"


def test_copy_refuses_another_lineage_or_a_newer_serial_without_force(
    project: ProjectDir,
) -> None:
    write_campaign(project, "alpha", "Alpha calling.", us_numbers(3))
    write_campaign(project, "beta", "Beta calling.", us_numbers(2, start=3))
    empty = project.run("state", "push", "copy.json")
    assert empty.code == 1
    assert "holds no state yet; there is nothing to copy" in empty.err
    assert project.run("state", "accept", "alpha").code == 0
    assert project.run("state", "push", "copy.json").code == 0  # serial 1 there
    assert project.run("state", "accept", "beta").code == 0  # serial 2 here
    assert project.run("--state", "copy.json", "state", "push", STATE).code == 1  # older
    ahead = project.run("state", "pull", "copy.json")
    assert ahead.code == 1
    assert "is ahead or has diverged (serial 2, source 1); nothing was copied: pass --force" in (
        ahead.err
    )
    assert project.run("state", "push", "copy.json").code == 0  # a newer copy of the same state

    assert project.run("--state", "other.json", "state", "accept", "beta").code == 0
    foreign = project.run("state", "push", "other.json")
    assert foreign.code == 1
    assert "holds another state (lineage " in foreign.err
    assert project.run("state", "push", "other.json", "--force").code == 0
    assert (project.root / "other.json").read_bytes() == (project.root / STATE).read_bytes()
    itself = project.run("state", "push", STATE)
    assert itself.code == 1
    assert "is both the source and the destination" in itself.err


def test_copy_holds_both_locks(project: ProjectDir, postgres_server: PostgresServer) -> None:
    write_campaign(project, "alpha", "Alpha calling.", us_numbers(3))
    assert project.run("state", "accept", "alpha").code == 0
    with held_lock(project) as (holder, lock_id):
        result = project.run("state", "push", "copy.json")
        holder.kill()
    assert result.code == 1
    assert f"(pid {holder.pid}, test holder)" in result.err and lock_id in result.err
    assert not (project.root / "copy.json").exists()
    no_key = project.run("state", "push", postgres_server.url(DATABASE))
    assert no_key.code == 1
    assert "set `project:` in runner.yaml" in no_key.err


def test_a_copy_that_diverged_is_refused_even_behind_its_source(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    write_campaign(project, "alpha", "Alpha calling.", us_numbers(3))
    write_campaign(project, "beta", "Beta calling.", us_numbers(2, start=3))
    assert project.run("state", "accept", "alpha").code == 0
    assert project.run("state", "push", "copy.json").code == 0  # one state, two copies
    apply = ("apply", "--auto-approve", "--api-url", emulator.url)
    called = project.run("--state", "copy.json", *apply, env=API_ENV, stdin="")
    assert called.code == 0, called  # beta is called through the copy (serial 3 there)
    write_campaign(project, "gamma", "Gamma calling.", us_numbers(2, start=5))
    for name in ("gamma", "alpha", "gamma"):  # the source moves on apart: serial 4 here
        assert project.run("state", "accept", name).code == 0
    for args in (("state", "push", "copy.json"), ("--state", "copy.json", "state", "pull", STATE)):
        refused = project.run(*args)
        assert refused.code == 1, refused
        assert "has diverged: it holds records the source lacks (campaign beta; serial 3, " in (
            refused.err
        )
    again = project.run("--state", "copy.json", *apply, env=API_ENV, stdin="")
    assert again.code == 0, again
    assert max(emulator.pairs().values()) == 1  # before: the push dropped beta's sends
    assert project.run("state", "push", "copy.json", "--force").code == 0
