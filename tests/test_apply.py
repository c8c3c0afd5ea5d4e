"""apply through the real CLI, against the real emulator in its own process over loopback.

Exactly-once is checked from the emulator's JSON-lines record of accepted sends: every
(text, recipient) pair the files ask for appears there once, through faults, re-runs and kills.
Tests marked `both_backends` run on the local state file and on PostgreSQL alike.
"""

from __future__ import annotations

import json
import os
import pty
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from backends import held_lock, unfolded, wait_until_released
from conftest import (
    API_ENV,
    EmulatorProcess,
    ProjectDir,
    apply,
    both_backends,
    us_numbers,
    write_campaign,
)

from runner.apply import Sender
from runner.errors import StateError
from runner.octopush import OctopushClient
from runner.plan import Batch
from runner.state.local import LocalState
from runner.state.model import Entry

NO_CREDENTIALS = {"OCTOPUSH_API_LOGIN": "", "OCTOPUSH_API_KEY": ""}
FAULTS = ("--rate-500-after", "0.3", "--rate-drop-after", "0.2", "--rate-429", "0.2")


def expect_once(emulator: EmulatorProcess, wanted: set[tuple[str, str]]) -> None:
    counts = emulator.pairs()
    assert set(counts) == wanted
    assert {pair: n for pair, n in counts.items() if n != 1} == {}


def state_files(project: ProjectDir) -> list[str]:
    return sorted(p.name for p in project.root.iterdir() if p.name.startswith("runner.state"))


@both_backends
def test_exactly_once_through_faults_then_nothing_more(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulators(*FAULTS, "--retry-after", "0", seed=11)
    outage = us_numbers(1100)
    write_campaign(project, "outage", "Power is off on Saturday from 9 AM.", outage)
    names = ["Ana", "Ben", "Chloe"]
    crew = us_numbers(30, start=1100)
    contacts = "".join(
        f'  - {{phone_number: "{n}", first_name: {names[i % 3]}}}\n' for i, n in enumerate(crew)
    )
    project.write(
        "campaigns/crew.yaml",
        'name: crew\ntext: "Hello {{ recipient.first_name }}, the drill is at 9."\n'
        "recipients:\n" + contacts,
    )
    codes = []
    for _ in range(15):
        codes.append(apply(project, emulator).code)
        if codes[-1] == 0:
            break
    assert codes[-1] == 0, codes
    wanted = {("Power is off on Saturday from 9 AM.", n) for n in outage}
    wanted |= {(f"Hello {names[i % 3]}, the drill is at 9.", n) for i, n in enumerate(crew)}
    expect_once(emulator, wanted)
    history = project.run("state", "show", "outage").out + project.run("state", "show", "crew").out
    assert ": duplicate" in history  # accepted sends whose answer was lost were re-sent

    sent = len(emulator.sends())
    again = apply(project, emulator)
    assert again.code == 0, again
    assert "No changes" in again.out
    assert len(emulator.sends()) == sent


@both_backends
def test_changed_text_reaches_everyone_once_more(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    numbers = us_numbers(4)
    write_campaign(project, "notice", "First version.", numbers)
    assert apply(project, emulator).code == 0
    write_campaign(project, "notice", "Second version.", numbers)
    result = apply(project, emulator)
    assert result.code == 0, result
    assert "message changed" in result.out
    expect_once(emulator, {(t, n) for t in ("First version.", "Second version.") for n in numbers})


@both_backends
def test_added_recipients_alone_hear_the_message(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    first, added = us_numbers(3), us_numbers(2, start=3)
    write_campaign(project, "notice", "Hello.", first)
    assert apply(project, emulator).code == 0
    write_campaign(project, "notice", "Hello.", first + added)
    result = apply(project, emulator)
    assert result.code == 0, result
    sends = emulator.sends()
    assert len(sends) == 2
    assert sorted(sends[1]["recipients"]) == sorted(added)
    expect_once(emulator, {("Hello.", n) for n in first + added})


def test_max_cost_refuses_before_sending(project: ProjectDir, emulator: EmulatorProcess) -> None:
    write_campaign(project, "notice", "Hello.", us_numbers(3))  # 3 x 0.05 € by default
    result = apply(project, emulator, "--max-cost", "0.10")
    assert result.code == 1
    assert "estimated cost 0.15 € is over --max-cost 0.10 €; nothing was sent" in result.err
    assert emulator.sends() == []
    assert "runner.state.json" not in state_files(project)
    assert apply(project, emulator, "--max-cost", "0.15").code == 0
    assert len(emulator.sends()) == 1


def test_no_terminal_and_no_auto_approve_refuses(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    write_campaign(project, "notice", "Hello.", us_numbers(2))
    result = project.run("apply", "--api-url", emulator.url, env=API_ENV, stdin="yes\n")
    assert result.code == 1
    assert "no terminal to ask for confirmation; pass --auto-approve" in result.err
    assert "Traceback" not in result.output
    assert emulator.sends() == []
    assert state_files(project) == []


def run_on_terminal(project: ProjectDir, url: str, answer: str) -> tuple[int, str]:
    """apply with a pseudo-terminal as stdin, answering the confirmation prompt."""
    main, child = pty.openpty()
    command = [sys.executable, "-m", "runner", "-C", str(project.root), "apply", "--api-url", url]
    env = {**os.environ, "NO_COLOR": "1", **API_ENV}
    process = subprocess.Popen(
        command, stdin=child, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    os.close(child)
    os.write(main, answer.encode() + b"\n")
    out, err = process.communicate(timeout=60)
    os.close(main)
    return process.returncode, (out + err).decode()


def test_confirmation_on_a_terminal(project: ProjectDir, emulator: EmulatorProcess) -> None:
    write_campaign(project, "notice", "Hello.", us_numbers(2))
    code, output = run_on_terminal(project, emulator.url, "y")
    assert code == 1
    assert "apply cancelled; nothing was sent" in output
    assert emulator.sends() == []
    code, output = run_on_terminal(project, emulator.url, "yes")
    assert code == 0, output
    expect_once(emulator, {("Hello.", n) for n in us_numbers(2)})


@both_backends
def test_a_held_lock_refuses_apply_at_once(project: ProjectDir, emulator: EmulatorProcess) -> None:
    write_campaign(project, "notice", "Hello.", us_numbers(2))
    with held_lock(project) as (holder, _):
        started = time.monotonic()
        result = apply(project, emulator)
        assert time.monotonic() - started < 5
        holder.kill()
        holder.wait()
    wait_until_released(project)
    assert result.code == 1
    assert f"pid {holder.pid}, test holder" in result.err
    assert socket.gethostname() in result.err
    assert emulator.sends() == []
    assert apply(project, emulator).code == 0  # the lock died with its holder
    assert len(emulator.sends()) == 1


@both_backends
def test_crash_loop_delivers_exactly_once(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    """SIGKILL apply at a seeded random moment of its sending, re-run to success, 5 times."""
    emulator = emulators("--latency", "0.01", seed=3)
    numbers = us_numbers(3000)
    rng = random.Random(20261205)
    command = [sys.executable, "-m", "runner", "-C", str(project.root), "apply"]
    command += ["--auto-approve", "--concurrency", "4", "--api-url", emulator.url]
    killed_mid_send = 0
    for trial in range(5):
        write_campaign(project, "crash", f"Crash trial {trial}.", numbers)
        process = subprocess.Popen(
            command,
            env={**os.environ, **API_ENV},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not unfolded(project) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(rng.uniform(0.0, 0.08))
        if process.poll() is None:
            killed_mid_send += bool(unfolded(project))
            process.send_signal(signal.SIGKILL)
        process.wait()
        wait_until_released(project)
        codes = [apply(project, emulator).code]
        while codes[-1] != 0 and len(codes) < 5:
            codes.append(apply(project, emulator).code)
        assert codes[-1] == 0, codes
        assert not unfolded(project)
    assert killed_mid_send >= 3
    expect_once(emulator, {(f"Crash trial {t}.", n) for t in range(5) for n in numbers})


def test_emulator_needs_no_credentials_and_leaves_no_state(project: ProjectDir) -> None:
    write_campaign(project, "notice", "Hello.", us_numbers(3))
    for _ in range(2):  # a throwaway state each time: the same plan, sent again
        result = project.run("apply", "--emulator", "--auto-approve", env=NO_CREDENTIALS, stdin="")
        assert result.code == 0, result
        assert "Applied: 1 campaign, 1 batch, 3 contacts, total cost 0.15 €" in result.out
    assert state_files(project) == []


def test_credentials_are_required_without_the_emulator(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    write_campaign(project, "notice", "Hello.", us_numbers(2))
    result = project.run(
        "apply", "--auto-approve", "--api-url", emulator.url, env=NO_CREDENTIALS, stdin=""
    )
    assert result.code == 1
    assert "set OCTOPUSH_API_LOGIN and OCTOPUSH_API_KEY" in result.err
    assert emulator.sends() == []


def plan_json(project: ProjectDir) -> dict[str, Any]:
    result = project.run("plan", "--format", "json")
    assert result.code == 0, result
    data: dict[str, Any] = json.loads(result.out)
    return data


@both_backends
def test_simulate_records_nothing_as_delivered(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    numbers = us_numbers(3)
    write_campaign(project, "notice", "Hello.", numbers)
    before = plan_json(project)["summary"]
    result = apply(project, emulator, "--simulate")
    assert result.code == 0, result
    assert emulator.sends() == []  # the emulator records only real sends
    assert plan_json(project)["summary"] == before
    assert "The state is empty" in project.run("state", "list").out
    assert apply(project, emulator).code == 0
    expect_once(emulator, {("Hello.", n) for n in numbers})


@both_backends
def test_simulate_never_settles_a_real_send_of_unknown_outcome(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    numbers = us_numbers(2)
    write_campaign(project, "notice", "Hello.", numbers)
    refusing = emulators("--rate-429", "1", "--retry-after", "0")  # outcome unknown
    assert apply(project, refusing).code == 1
    [pending] = plan_json(project)["campaigns"][0]["pending"]
    emulator = emulators()
    simulated = apply(project, emulator, "--simulate")
    assert simulated.code == 1
    assert "a real send of unknown outcome: run apply without --simulate first" in simulated.out
    assert "notice: 0 recipients reached, 0 messages, 1 send, 1 pending" in (
        project.run("state", "list").out
    )
    assert apply(project, emulator).code == 0
    [sent] = emulator.sends()
    assert sent["request_id"] == pending["request_id"]
    expect_once(emulator, {("Hello.", n) for n in numbers})


@both_backends
def test_json_summary(project: ProjectDir, emulator: EmulatorProcess) -> None:
    write_campaign(project, "notice", "Hello.", us_numbers(501))
    result = apply(project, emulator, "--format", "json")
    assert result.code == 0, result
    summary = json.loads(result.out)
    assert summary["format_version"] == 1
    assert summary["ok"] is True
    assert summary["batches"] == 2
    assert summary["contacts"] == 501
    assert summary["total_cost"] == round(sum(s["total_cost"] for s in emulator.sends()), 4)
    assert summary["failures"] == []
    nothing = json.loads(apply(project, emulator, "--format", "json").out)
    assert (nothing["contacts"], nothing["total_cost"]) == (0, 0)


class _DiskFullsAfter(LocalState):
    """A local state on a disk that fills up after `room` records (a seam no server reaches)."""

    def __init__(self, path: Path, room: int) -> None:
        super().__init__(path)
        self.room = room

    def record_all(self, entries: Sequence[Entry]) -> None:
        self.room -= len(entries)
        if self.room < 0:
            raise StateError(f"cannot write {self.journal}: the disk is full; free some space")
        super().record_all(entries)


def test_a_state_that_stops_recording_stops_the_sends(
    tmp_path: Path, emulator: EmulatorProcess
) -> None:
    numbers = us_numbers(40)
    body = {"text": "Hi.", "purpose": "alert", "voice_gender": "female", "voice_language": "en-US"}
    batches = [
        Batch("c", "f" * 64, f"rn-{i:032x}", body, tuple(numbers[2 * i : 2 * i + 2]))
        for i in range(20)
    ]
    backend = _DiskFullsAfter(tmp_path / "state.json", room=2)  # two intents, then nothing
    with backend.locked("test"), OctopushClient(emulator.url, *API_ENV.values()) as client:
        backend.ensure_created()
        sender = Sender(backend, client, concurrency=1)  # a window of 2: intents run ahead
        results = sender.send_all(batches)
    # the first batch is sent but its outcome cannot be written; the second was recorded
    # ahead and is not sent; no intent was written for the rest
    assert [r.status for r in results[:2]] == ["unknown", "skipped"], results[:2]
    assert {r.status for r in results[2:]} == {"skipped"}
    deadline = time.monotonic() + 5
    while not emulator.sends() and time.monotonic() < deadline:
        time.sleep(0.05)  # the emulator writes its record as it answers
    time.sleep(0.3)
    assert len(emulator.sends()) == 1
    assert sender.state_error and "the disk is full" in sender.state_error


# saved plans and the options of apply ----------------------------------------------------------


def test_a_saved_plan_refuses_options_that_would_change_its_payloads(
    project: ProjectDir, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    numbers = us_numbers(3)
    write_campaign(project, "notice", "Hello {{ who | default('all') }}.", numbers)
    saved = tmp_path / "plan.json"
    assert project.run("plan", "--out", str(saved)).code == 0
    (tmp_path / "vars.yaml").write_text("who: you\n")
    for option in (
        ("--simulate",),
        ("--var", "who=them"),
        ("--var-file", str(tmp_path / "vars.yaml")),
    ):
        result = apply(project, emulator, str(saved), *option)
        assert result.code == 1, (option, result)
        [line] = result.err.splitlines()
        assert "cannot change a saved plan's payloads" in line and "nothing was sent" in line
    assert emulator.sends() == []
    assert state_files(project) == []
    project.write("campaigns/broken.yaml", "name: [unclosed\n")  # the files are not read again
    assert apply(project, emulator, str(saved), "--concurrency", "2").code == 0
    expect_once(emulator, {("Hello all.", n) for n in numbers})


@both_backends
def test_a_saved_plan_gives_the_verdict_of_a_plain_apply_on_a_blocked_campaign(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess], tmp_path: Path
) -> None:
    write_campaign(project, "notice", "Hello.", us_numbers(2))
    refusing = emulators("--rate-429", "1", "--retry-after", "0")  # outcome unknown
    assert apply(project, refusing).code == 1
    write_campaign(project, "notice", "Hello again.", us_numbers(2))  # that batch is gone
    write_campaign(project, "drill", "Drill at noon.", us_numbers(2, start=10))
    saved = tmp_path / "plan.json"
    assert project.run("plan", "--out", str(saved)).code == 0
    emulator = emulators()
    result = apply(project, emulator, str(saved), "--format", "json")
    summary = json.loads(result.out)
    assert (result.code, summary["ok"], summary["blocked"]) == (1, False, ["notice"]), result
    assert {n for s in emulator.sends() for n in s["recipients"]} == set(us_numbers(2, start=10))
    text = apply(project, emulator)  # a plain apply now: the same verdict
    assert (text.code, text.out.splitlines()[-1]) == (
        1,
        "blocked: notice has sends of unknown outcome; see `runner plan`",
    ), text


@both_backends
def test_simulate_writes_nothing_durable_and_says_so(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess], tmp_path: Path
) -> None:
    numbers = us_numbers(3)
    write_campaign(project, "notice", "Hello.", numbers)
    emulator = emulators()
    assert apply(project, emulator).code == 0
    write_campaign(project, "notice", "Hello again.", numbers)
    saved = tmp_path / "plan.json"
    assert project.run("plan", "--out", str(saved)).code == 0
    serial = plan_json(project)["serial"]
    lost = emulators("--rate-429", "1", "--retry-after", "0")  # every simulated answer lost
    assert apply(project, lost, "--simulate").code == 1
    simulated = apply(project, emulator, "--simulate")
    assert simulated.code == 0, simulated
    assert "Applied" not in simulated.out
    assert simulated.out.splitlines()[-2:] == [
        "3 calls of these: SIMULATED (simulation_mode: nobody is called, nothing recorded).",
        "SIMULATED (simulation_mode: nobody was called, nothing recorded): 1 campaign, "
        "1 batch, 3 contacts, total cost 0.15 €.",
    ], simulated.out
    summary = json.loads(apply(project, emulator, "--simulate", "--format", "json").out)
    assert (summary["contacts"], summary["simulated"]["contacts"]) == (0, 3)
    assert plan_json(project)["serial"] == serial  # nothing durable: no intent, no outcome
    assert apply(project, emulator, str(saved)).code == 0  # the saved plan is still fresh
    assert project.run("state", "forget", "notice").code == 0  # no simulated send blocks it
    expect_once(emulator, {(t, n) for t in ("Hello.", "Hello again.") for n in numbers})


@both_backends
def test_a_refused_batch_shows_as_failed_last_time_not_as_added(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    numbers = us_numbers(5)
    write_campaign(project, "notice", "Hello.", numbers[:3])
    emulator = emulators()
    assert apply(project, emulator).code == 0
    write_campaign(project, "notice", "Hello.", numbers)
    # the estimate (0.02 €) passes the balance check (0.05 €); the provider's price does not
    config = project.root / "runner.yaml"
    config.write_text(config.read_text() + "pricing: {default: 0.01}\n")
    poor = emulators("--credit", "0.05")
    assert apply(project, poor).code == 1
    assert poor.sends() == []
    text = project.run("plan").out
    assert "\n~ notice  failed last time  (campaigns/notice.yaml:1)\n" in "\n" + text, text
    why = "Not enough credit on the Octopush account: top it up, then apply again. (code 104)"
    assert f"2 recipients failed last time ({why})" in text
    assert "added" not in text
    data = plan_json(project)["campaigns"][0]
    assert (data["added"], data["failed_last_time"], data["failures"]) == (
        0,
        2,
        [why],
    )
    assert "code 104" in project.run("state", "show", "notice").out
    assert apply(project, emulator).code == 0
    assert "failed" not in project.run("plan").out
    expect_once(emulator, {("Hello.", n) for n in numbers})
