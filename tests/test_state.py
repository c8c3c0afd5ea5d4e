"""The state through the CLI: its file, its commands, its lock and its journal.

Tests marked `both_backends` run on the local file and on PostgreSQL alike.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from backends import (
    has_state,
    held_lock,
    latest_snapshot,
    stored_state,
    stored_text,
    unfolded,
    wait_until_released,
)
from conftest import (
    API_ENV,
    EmulatorProcess,
    ProjectDir,
    both_backends,
    us_numbers,
    write_campaign,
)
from silent_api import silent_api

from runner.recipients import digest_number
from runner.state.model import Accept, entry_to_dict

STATE = "runner.state.json"
ALWAYS_429 = ("--rate-429", "1", "--retry-after", "0")  # every attempt refused: outcome unknown


def state_path(project: ProjectDir) -> Path:
    return project.root / STATE


def read_state(project: ProjectDir) -> dict[str, object]:
    return stored_state(project)


def two_campaigns(project: ProjectDir) -> tuple[list[str], list[str]]:
    alpha, beta = us_numbers(3), us_numbers(2, start=3)
    write_campaign(project, "alpha", "Alpha calling.", alpha)
    write_campaign(project, "beta", "Beta calling.", beta)
    return alpha, beta


def leave_pending(project: ProjectDir, emulator: EmulatorProcess) -> None:
    """An apply whose every attempt gets 429: each send ends 'unknown' and stays pending."""
    result = project.run(
        "apply", "--auto-approve", "--api-url", emulator.url, env=API_ENV, stdin=""
    )
    assert result.code == 1, result
    assert "unknown" in result.out


@both_backends
def test_state_file_has_version_lineage_serial(project: ProjectDir) -> None:
    two_campaigns(project)
    assert project.run("state", "accept", "alpha").code == 0
    data = read_state(project)
    assert data["version"] == 1
    assert re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", str(data["lineage"]))
    assert data["serial"] == 1
    assert project.run("state", "accept", "beta").code == 0
    again = read_state(project)
    assert (again["lineage"], again["serial"]) == (data["lineage"], 2)


CALL_BACK = "We call you back at {{ recipient.phone_number }} ({{ recipient.phone_number[2:] }})."


@both_backends
def test_state_holds_no_phone_number(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    """Not in digests' place, not in send history, not even in a text a template filled in."""
    alpha, beta = us_numbers(3), us_numbers(2, start=3)
    write_campaign(project, "alpha", CALL_BACK, alpha)
    write_campaign(project, "beta", CALL_BACK, beta)
    assert project.run("state", "accept", "alpha").code == 0
    leave_pending(project, emulators(*ALWAYS_429))  # beta: intents, bodies and send history
    emulator = emulators()
    delivered = project.run("apply", "--auto-approve", "--api-url", emulator.url, env=API_ENV)
    assert delivered.code == 0, delivered
    assert f"We call you back at {beta[0]} ({beta[0][2:]})." in [
        s["text"] for s in emulator.sends()
    ]
    text = stored_text(project)  # with the local backend, the file and its backup
    for number in alpha + beta:
        digits = number.lstrip("+")
        for form in (number, digits, digits[1:], f"{digits[1:4]} {digits[4:7]} {digits[7:]}"):
            assert form not in text, form
    assert all(digest_number(n) in json.dumps(read_state(project)) for n in alpha + beta)
    assert "We call you back at [recipient] ([recipient])." in json.dumps(read_state(project))


@both_backends
def test_state_list_show_forget(project: ProjectDir) -> None:
    two_campaigns(project)
    for refused in (("forget", "alpha"), ("resolve", "alpha", "--sent")):
        assert project.run("state", *refused).code == 1
    assert not has_state(project)  # a refusal creates no state
    assert project.run("state", "list").out.strip() == (
        "The state is empty: nothing has been delivered yet."
    )
    assert project.run("state", "accept", "alpha").out.strip() == (
        "alpha: 3 recipients recorded as delivered (nothing was sent)"
    )
    project.run("state", "accept", "beta")
    listed = project.run("state", "list").out.splitlines()
    assert listed[1:] == [
        "alpha: 3 recipients reached, 1 message, 0 sends",
        "beta: 2 recipients reached, 1 message, 0 sends",
    ]
    shown = project.run("state", "show", "alpha")
    assert shown.code == 0
    assert "3 recipients" in shown.out and "| Alpha calling." in shown.out
    assert project.run("plan", "--detailed-exitcode").code == 0

    forgot = project.run("state", "forget", "alpha")
    assert forgot.out.strip() == (
        "alpha: forgotten; the next apply calls all of its recipients again "
        "(with new request_ids, which the provider does not refuse as repeats)"
    )
    assert "alpha" not in project.run("state", "list").out
    plan = project.run("plan", "--detailed-exitcode")
    assert plan.code == 2
    assert "+ alpha  new campaign" in plan.out

    for args in (("forget", "alpha"), ("show", "nobody"), ("accept", "nobody")):
        result = project.run("state", *args)
        assert result.code == 1, args
        assert result.err.startswith("runner: ") and "Traceback" not in result.err


@both_backends
def test_resolve_sent_and_not_sent(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    two_campaigns(project)
    refusing = emulators(*ALWAYS_429)
    leave_pending(project, refusing)
    leave_pending(project, refusing)  # the same request_ids again: attempts are counted
    assert (
        ", 2 attempts, 0.0 h old, no outcome recorded" in project.run("state", "show", "alpha").out
    )
    listed = project.run("state", "list").out
    assert "alpha: 0 recipients reached, 0 messages, 2 sends, 1 pending" in listed
    refused = project.run("state", "forget", "alpha")
    assert refused.code == 1
    assert "run `runner state resolve alpha --request-id ID --sent|--not-sent` first" in (
        refused.err
    )
    assert project.run("state", "resolve", "alpha").code == 1  # the verdict is required

    sent = project.run("state", "resolve", "alpha", "--sent")
    assert sent.out.strip() == "alpha: 1 pending send recorded as delivered"
    not_sent = project.run("state", "resolve", "beta", "--not-sent")
    assert not_sent.out.strip() == (
        "beta: 1 pending send recorded as not sent (the next apply sends them)"
    )
    plan = json.loads(project.run("plan", "--format", "json").out)
    assert [(c["name"], c["recipients"]) for c in plan["campaigns"]] == [("beta", 2)]
    again = project.run("state", "resolve", "alpha", "--sent")
    assert again.code == 1
    assert "alpha has no pending sends to resolve" in again.err


def test_newer_state_version_is_refused_and_untouched(project: ProjectDir) -> None:
    two_campaigns(project)
    newer = {"version": 2, "lineage": "x", "serial": 7, "campaigns": {}, "future": True}
    path = state_path(project)
    path.write_text(json.dumps(newer))
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    commands = [
        ("plan",),
        ("state", "list"),
        ("state", "forget", "alpha"),
        ("state", "accept", "alpha"),
        ("apply", "--auto-approve", "--api-url", "http://127.0.0.1:9/v1/public"),
    ]
    for command in commands:
        result = project.run(*command, env=API_ENV, stdin="")
        assert result.code == 1, command
        assert "was written by a newer runner (state version 2; this runner reads up to 1)" in (
            result.err
        ), command
        assert "Traceback" not in result.err
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert not path.with_name(STATE + ".journal").exists()
    assert not path.with_name(STATE + ".backup").exists()


def test_an_unreadable_state_names_its_backup(project: ProjectDir) -> None:
    two_campaigns(project)
    state_path(project).write_text("{not json")
    result = project.run("plan")
    assert result.code == 1
    assert "is not a valid runner state" in result.err
    assert "restore it from" in result.err and ".backup" in result.err


def test_each_write_replaces_the_file_and_keeps_a_backup(project: ProjectDir) -> None:
    two_campaigns(project)
    project.run("state", "accept", "alpha")
    first = state_path(project).read_bytes()
    project.run("state", "accept", "beta")
    assert (project.root / (STATE + ".backup")).read_bytes() == first
    assert state_path(project).read_bytes() != first
    leftovers = [p.name for p in project.root.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    assert not (project.root / (STATE + ".journal")).exists()


def test_added_recipients_are_added_at_the_end_of_the_list(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    """A reviewer of the state file in git sees the new deliveries as one added block."""
    numbers = us_numbers(6)

    def delivered() -> list[str]:
        (message,) = read_state(project)["campaigns"]["alpha"]["messages"].values()  # type: ignore[index]
        return list(message["delivered"])

    write_campaign(project, "alpha", "Alpha calling.", numbers[3:])
    emulator = emulators()
    apply = ("apply", "--auto-approve", "--api-url", emulator.url)
    assert project.run(*apply, env=API_ENV).code == 0
    first = delivered()
    assert sorted(first) == sorted(digest_number(n) for n in numbers[3:])
    write_campaign(project, "alpha", "Alpha calling.", numbers)  # three more, sorted before
    assert project.run(*apply, env=API_ENV).code == 0
    assert delivered()[:3] == first
    assert sorted(delivered()[3:]) == sorted(digest_number(n) for n in numbers[:3])


SEND = {"request_id": "rn-1", "fingerprint": "f1", "contacts": 1, "outcome": "sent", "time": 2.5}


def test_the_state_file_is_what_json_writes_with_indent_1(tmp_path: Path) -> None:
    """The fast writer keeps json's layout byte for byte, strange hand-edited digests too."""
    from runner.state.model import CampaignState, MessageState, State
    from runner.state.snapshot import dump_state, load_state

    state = State.new()
    odd = dict.fromkeys(['quote " here', "back\\slash", "é", "\x01", "tab\t"])
    hexes = dict.fromkeys(digest_number(n) for n in us_numbers(50))
    campaign = state.campaigns["a"] = CampaignState(sends=[SEND])
    campaign.messages["f1"] = MessageState({"text": 'Hé "you"'}, hexes, 2.5)
    campaign.messages["f2"] = MessageState({"text": "delivered"}, {}, 1.0)
    campaign.messages["f3"] = MessageState({"text": "x"}, odd, 1.0)
    state.campaigns["b"] = CampaignState()
    expected = {
        "version": state.version,
        "lineage": state.lineage,
        "serial": state.serial,
        "campaigns": {
            name: {
                "messages": {
                    fp: {"body": m.body, "last_time": m.last_time, "delivered": list(m.delivered)}
                    for fp, m in c.messages.items()
                },
                "pending": {},
                "sends": c.sends,
            }
            for name, c in state.campaigns.items()
        },
    }
    written = dump_state(state)
    assert (
        written
        == json.dumps(expected, indent=1, sort_keys=True, ensure_ascii=False).encode() + b"\n"
    )
    assert dump_state(load_state(written, "test")) == written


def test_a_snapshot_left_half_written_by_a_killed_writer_is_removed(project: ProjectDir) -> None:
    two_campaigns(project)
    project.run("state", "accept", "alpha")
    stale = project.root / f".{STATE}.4242.tmp"
    stale.write_text('{"campaigns": {"alp')
    assert project.run("plan").code == 0
    assert stale.exists()  # plan never writes, nor cleans
    assert project.run("state", "accept", "beta").code == 0
    assert not stale.exists()


@both_backends
def test_lock_contention_names_the_holder(project: ProjectDir) -> None:
    two_campaigns(project)
    project.run("state", "accept", "alpha")
    with held_lock(project) as (holder, lock_id):
        for command in (
            ("state", "forget", "alpha"),
            ("apply", "--auto-approve", "--api-url", "http://127.0.0.1:9/v1/public"),
        ):
            started = time.monotonic()
            result = project.run(*command, env=API_ENV, stdin="")
            assert time.monotonic() - started < 5
            assert result.code == 1, command
            assert "the state is locked: held by " in result.err
            assert f"@{socket.gethostname()} (pid {holder.pid}, test holder)" in result.err
            assert f"`runner force-unlock {lock_id}`" in result.err
        live = project.run("force-unlock", lock_id)
        assert live.code == 1
        assert f"lock {lock_id} is held by a live process" in live.err
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        wait_until_released(project)
        freed = project.run("state", "forget", "alpha")  # the lock ended with its holder
        assert freed.code == 0, freed


@both_backends
def test_force_unlock_a_dead_holder(project: ProjectDir) -> None:
    two_campaigns(project)
    with held_lock(project) as (holder, lock_id):
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        wait_until_released(project)
        assert project.run("force-unlock", "not-the-id").code == 1
        result = project.run("force-unlock", lock_id)
        assert result.code == 0, result
        assert result.out.strip() == f"lock {lock_id} removed (its holder had exited)"
        assert project.run("force-unlock", lock_id).code == 1
        assert project.run("state", "accept", "alpha").code == 0


def journal_line(campaign: str, numbers: list[str]) -> str:
    entry = Accept(
        campaign, "f" * 64, {"text": "Adopted."}, tuple(map(digest_number, numbers)), 1.0
    )
    return json.dumps(entry_to_dict(entry)) + "\n"


def test_a_torn_last_journal_line_is_ignored(project: ProjectDir) -> None:
    _, beta = two_campaigns(project)
    project.run("state", "accept", "alpha")
    journal = project.root / (STATE + ".journal")
    journal.write_text(journal_line("beta", beta) + '{"kind": "intent", "campaign": "be')
    listed = project.run("state", "list")
    assert listed.code == 0, listed
    assert "beta: 2 recipients reached" in listed.out
    plan = project.run("plan", "--format", "json")
    assert plan.code == 0, plan
    assert [c["name"] for c in json.loads(plan.out)["campaigns"]] == ["beta"]  # message changed
    # the next writer must not glue its record to the torn line
    assert project.run("state", "forget", "beta").code == 0
    assert not journal.exists()
    assert "beta" not in project.run("state", "list").out


def test_a_corrupt_journal_line_before_the_end_is_an_error(project: ProjectDir) -> None:
    _, beta = two_campaigns(project)
    project.run("state", "accept", "alpha")
    journal = project.root / (STATE + ".journal")
    journal.write_text("garbage\n" + journal_line("beta", beta))
    result = project.run("plan")
    assert result.code == 1
    assert f"{journal}:1: corrupt journal record" in result.err


@both_backends
def test_a_killed_apply_leaves_a_journal_the_next_command_replays(project: ProjectDir) -> None:
    two_campaigns(project)
    project.run("state", "accept", "alpha")
    snapshot = latest_snapshot(project)
    with silent_api() as url:  # answers the balance, never a send
        command = [sys.executable, "-m", "runner", "-C", str(project.root), "apply"]
        with subprocess.Popen(
            [*command, "--auto-approve", "--api-url", url],
            env={**os.environ, **API_ENV},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ) as apply:
            deadline = time.monotonic() + 20
            while b"intent" not in unfolded(project):
                assert time.monotonic() < deadline and apply.poll() is None
                time.sleep(0.01)
            apply.send_signal(signal.SIGKILL)
    assert latest_snapshot(project) == snapshot  # only the journal (or records) know
    assert "beta: 0 recipients reached, 0 messages, 0 sends, 1 pending" in (
        project.run("state", "list").out
    )
    plan = project.run("plan")
    assert "! beta  pending" in plan.out
    assert unfolded(project)  # plan replays, never writes
    assert project.run("state", "resolve", "beta", "--not-sent").code == 0
    assert not unfolded(project)
    assert "beta: 0 recipients reached, 0 messages, 1 send" in project.run("state", "list").out


def test_a_journal_without_its_snapshot_is_kept(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    _, beta = two_campaigns(project)
    journal = project.root / (STATE + ".journal")
    journal.write_text(journal_line("beta", beta))  # the snapshot was lost, its journal was not
    emulator = emulators()
    result = project.run("apply", "--auto-approve", "--api-url", emulator.url, env=API_ENV)
    assert result.code == 0, result
    listed = project.run("state", "list").out
    assert "beta: 2 recipients reached, 2 messages" in listed
    assert "alpha: 3 recipients reached" in listed
    assert read_state(project)["lineage"]


def test_a_commit_folds_its_own_records_as_a_reader_of_the_files_would(tmp_path: Path) -> None:
    """The end of an apply reads nothing back: the state it kept must be the files'."""
    from runner.state.local import LocalState
    from runner.state.model import Intent, Outcome
    from runner.state.snapshot import dump_state

    backend = LocalState(tmp_path / STATE)
    digests = tuple(digest_number(n) for n in us_numbers(6))
    with backend.locked("test"):
        backend.ensure_created()
        backend.record(Accept("alpha", "f" * 64, {"text": "a"}, digests[:2], 1.0))
        intents = [
            Intent(f"rn-{i}", "beta", "e" * 64, {"text": "b"}, digests[2 * i : 2 * i + 2], 2.0)
            for i in range(3)
        ]
        backend.record_all(intents)
        backend.record(Outcome("rn-0", "sent", 3.0, "ticket", 2, 0.1))
        backend.record(Outcome("rn-1", "unknown", 3.0))
        backend.record_all([intents[1]])  # a re-send of the unknown one
        backend.record(Outcome("rn-1", "duplicate", 4.0))
        from_files = dump_state(LocalState(backend.path).read())
        committed = backend.commit()
    assert dump_state(committed) == from_files
    assert backend.path.read_bytes() == from_files
    assert "rn-2" in json.loads(from_files)["campaigns"]["beta"]["pending"]


def test_a_commit_after_letting_the_lock_go_reads_what_others_wrote(tmp_path: Path) -> None:
    """What a process appended describes the journal only while it holds the lock."""
    from runner.state.local import LocalState

    path = tmp_path / STATE
    first, other = LocalState(path), LocalState(path)
    digests = [digest_number(n) for n in us_numbers(2)]
    with first.locked("apply"):
        first.ensure_created()
        first.record(Accept("alpha", "f" * 64, {"text": "a"}, (digests[0],), 1.0))
    with other.locked("state accept"):  # folds the journal first left, then adds to it
        other.commit()
        other.record(Accept("alpha", "f" * 64, {"text": "a"}, (digests[1],), 2.0))
    with first.locked("apply"):
        state = first.commit()
    assert list(state.campaigns["alpha"].messages["f" * 64].delivered) == digests
    assert state.serial == 2


@both_backends
def test_forget_within_the_dedup_window_calls_everyone_again_as_it_promises(
    project: ProjectDir, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    numbers = us_numbers(3)
    write_campaign(project, "notice", "Hello.", numbers)
    apply = ("apply", "--auto-approve", "--api-url", emulator.url)
    assert project.run(*apply, env=API_ENV, stdin="").code == 0
    assert "calls all of its recipients again" in project.run("state", "forget", "notice").out
    saved = tmp_path / "plan.json"
    assert project.run("plan", "--out", str(saved)).code == 0  # a saved plan checks its ids
    again = project.run(*apply, str(saved), env=API_ENV, stdin="")
    assert again.code == 0, again
    # the provider remembers the first request_ids for 24 h: new ones, or nobody is called
    assert emulator.pairs() == {("Hello.", n): 2 for n in numbers}


def test_only_a_duplicate_settles_a_send_whose_first_attempt_had_an_unknown_fate() -> None:
    """The fold's rule, whatever the Sender wrote: after an unknown fate, a refusal settles
    nothing; a refusal of a first attempt does; a duplicate settles as delivered."""
    from runner.state.model import Intent, Outcome, State

    def intent(rid: str, at: float) -> Intent:
        return Intent(rid, "notice", "f" * 64, {"text": "Hi"}, ("d1", "d2"), at)

    state = State.new()
    state.fold(intent("rn-a", 100.0))
    state.fold(Outcome("rn-a", "unknown", 101.0))
    state.fold(intent("rn-a", 200.0))  # the re-send
    state.fold(Outcome("rn-a", "rejected", 201.0, code=104))
    state.fold(intent("rn-b", 100.0))  # killed before its outcome, then re-sent
    state.fold(intent("rn-b", 300.0))
    state.fold(Outcome("rn-b", "skipped", 301.0))
    state.fold(intent("rn-c", 100.0))  # a first attempt, cleanly refused
    state.fold(Outcome("rn-c", "rejected", 101.0, code=117))
    pending = state.campaigns["notice"].pending
    assert {rid: (i.time, i.uncertain) for rid, i in pending.items()} == {
        "rn-a": (100.0, True),
        "rn-b": (100.0, True),
    }
    state.fold(Outcome("rn-a", "duplicate", 400.0))
    assert list(pending) == ["rn-b"]
    assert state.campaigns["notice"].messages["f" * 64].delivered == {"d1": None, "d2": None}


def test_a_state_or_journal_nested_past_pythons_limit_is_one_clear_line(
    project: ProjectDir,
) -> None:
    two_campaigns(project)
    deep = "[" * 100_000 + "\n"
    state_path(project).write_text(deep)
    result = project.run("plan")
    assert result.code == 1 and "is not a valid runner state" in result.err, result
    state_path(project).unlink()
    journal = project.root / (STATE + ".journal")
    journal.write_text(deep + "\n")
    result = project.run("plan")
    assert result.code == 1 and f"{journal}:1: corrupt journal record" in result.err, result
