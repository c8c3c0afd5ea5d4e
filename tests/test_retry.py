"""Retry policies over several applies: calls counted per number at the emulator's record.

The emulator POSTs each call's receipt to a running `runner receipts serve`; statuses are
scripted per number (`--receipts-for`), so each test knows what every call will hear.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from backends import stored_state, unfolded, wait_until_released
from conftest import API_ENV, EmulatorProcess, ProjectDir, apply, both_backends, us_numbers
from expect import assert_refused
from receiver import ReceiverProcess
from receiving import calls_per_number, settled_status, webhook_options

ALICE, BOB, CAROL, DAVE = us_numbers(4)


def policy(when: str = "[BUSY, NOT_DELIVERED]", attempts: int = 3, after: str = "0s") -> str:
    return f"retry:\n  when: {when}\n  attempts: {attempts}\n  after: {after}\n"


def campaign(project: ProjectDir, numbers: list[str], retry: str, text: str = "Outage.") -> None:
    recipients = "".join(f'  - "{n}"\n' for n in numbers)
    body = f"name: outage\ntext: {json.dumps(text)}\nrecipients:\n{recipients}{retry}"
    project.write("campaigns/outage.yaml", body)


@pytest.fixture
def receiver(project: ProjectDir) -> Iterator[ReceiverProcess]:
    started = ReceiverProcess(project.root)
    yield started
    started.stop()


def apply_and_settle(project: ProjectDir, emulator: EmulatorProcess) -> None:
    result = apply(project, emulator)
    assert result.code == 0, result
    settled_status(project)


@both_backends
def test_busy_once_then_delivered_is_called_twice(
    project: ProjectDir, receiver: ReceiverProcess, emulators: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulators(*webhook_options(receiver, f"{ALICE}=BUSY,DELIVERED", f"{BOB}=DELIVERED"))
    campaign(project, [ALICE, BOB], policy())
    for _ in range(3):
        apply_and_settle(project, emulator)
    assert calls_per_number(emulator) == {ALICE: 2, BOB: 1}
    message = settled_status(project)["campaigns"][0]["messages"][0]
    assert (message["called"], message["calls"]) == (2, 3)
    assert message["statuses"]["DELIVERED"] == 2
    assert "No changes" in project.run("plan").out


def test_always_busy_is_called_exactly_attempts_times(
    project: ProjectDir, receiver: ReceiverProcess, emulators: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulators(*webhook_options(receiver, f"{ALICE}=BUSY", f"{BOB}=NOT_DELIVERED"))
    campaign(project, [ALICE, BOB], policy(attempts=3))
    plans = []
    for _ in range(5):
        plans.append(project.run("plan", "--format", "json").out)
        apply_and_settle(project, emulator)
    assert calls_per_number(emulator) == {ALICE: 3, BOB: 3}
    calls = stored_state(project)["campaigns"]["outage"]["calls"]  # past the first call only
    assert [sorted(made.values()) for made in calls.values()] == [[3, 3]]
    planned = [[b["call"] for c in json.loads(p)["campaigns"] for b in c["batches"]] for p in plans]
    assert planned == [[1], [2], [3], [], []]
    message = settled_status(project)["campaigns"][0]["messages"][0]
    assert message["statuses"]["BUSY"] == 1 and message["statuses"]["NOT_DELIVERED"] == 1


def test_refused_blacklisted_and_undeliverable_are_never_called_again(
    project: ProjectDir, receiver: ReceiverProcess, emulators: Callable[..., EmulatorProcess]
) -> None:
    scripts = (f"{ALICE}=REFUSED", f"{BOB}=BLACKLISTED_NUMBER", f"{CAROL}=NOT_DELIVERABLE")
    emulator = emulators(*webhook_options(receiver, *scripts, f"{DAVE}=DELIVERED"))
    campaign(project, [ALICE, BOB, CAROL, DAVE], policy(when="[BUSY, UNKNOWN_DELIVERY]"))
    for _ in range(3):
        apply_and_settle(project, emulator)
    assert calls_per_number(emulator) == {ALICE: 1, BOB: 1, CAROL: 1, DAVE: 1}
    # nobody called twice: the state reads as an older runner wrote it, no call counts in it
    assert '"call' not in (project.root / "runner.state.json").read_text()


def test_no_call_again_before_after_has_passed(
    project: ProjectDir, receiver: ReceiverProcess, emulators: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulators(*webhook_options(receiver, f"{ALICE}=BUSY"))
    campaign(project, [ALICE], policy(after="1h"))
    apply_and_settle(project, emulator)
    heard = time.monotonic()  # the receipt arrived by now
    apply_and_settle(project, emulator)
    assert calls_per_number(emulator) == {ALICE: 1}
    campaign(project, [ALICE], policy(after="10s"))
    assert "No changes" in project.run("plan").out
    assert time.monotonic() - heard < 9, "too slow a machine to tell 10 s apart"
    time.sleep(max(0.0, heard + 10.5 - time.monotonic()))
    assert "call again: 1 recipient not reached" in project.run("plan").out
    apply_and_settle(project, emulator)
    assert calls_per_number(emulator) == {ALICE: 2}


def test_a_changed_message_or_a_removed_recipient_is_not_called_again(
    project: ProjectDir, receiver: ReceiverProcess, emulators: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulators(*webhook_options(receiver, f"{ALICE}=BUSY", f"{BOB}=BUSY"))
    campaign(project, [ALICE, BOB], policy(attempts=2))
    apply_and_settle(project, emulator)
    campaign(project, [ALICE], policy(attempts=2), text="Outage, updated.")
    apply_and_settle(project, emulator)  # the new text: a first call, not a call again
    apply_and_settle(project, emulator)  # then its one call again
    texts = [(s["text"], n) for s in emulator.sends() for n in s["recipients"]]
    first, updated = [("Outage.", ALICE), ("Outage.", BOB)], [("Outage, updated.", ALICE)] * 2
    assert sorted(texts) == sorted(first + updated)


@both_backends
def test_a_call_again_killed_mid_send_is_made_exactly_once(
    project: ProjectDir, receiver: ReceiverProcess, emulators: Callable[..., EmulatorProcess]
) -> None:
    numbers = us_numbers(3)
    scripts = [f"{n}=BUSY,DELIVERED" for n in numbers]
    emulator = emulators(*webhook_options(receiver, *scripts), "--latency", "0.5")
    campaign(project, numbers, policy())
    apply_and_settle(project, emulator)
    command = [sys.executable, "-m", "runner", "-C", str(project.root), "apply"]
    with subprocess.Popen(
        [*command, "--auto-approve", "--api-url", emulator.url],
        env={**os.environ, **API_ENV},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as process:
        deadline = time.monotonic() + 30
        while not re.search(
            rb'"call": ?2', unfolded(project)
        ):  # the call again's intent is durable
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        process.send_signal(signal.SIGKILL)  # before the provider's answer (0.5 s latency)
    wait_until_released(project)
    plan = project.run("plan")
    assert "pending" in plan.out, plan
    for _ in range(3):  # the re-send is refused as a duplicate: recorded, never called twice
        assert apply(project, emulator).code == 0
    time.sleep(1)
    assert calls_per_number(emulator) == dict.fromkeys(numbers, 2)
    assert "No changes" in project.run("plan").out


def test_saved_plans_and_every_format_show_the_call_again(
    project: ProjectDir, receiver: ReceiverProcess, emulators: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulators(*webhook_options(receiver, f"{ALICE}=NOT_DELIVERED,DELIVERED"))
    campaign(project, [ALICE, BOB], policy())
    apply_and_settle(project, emulator)
    text = project.run("plan", "--out", "again.plan")
    assert "~ outage  call again" in text.out and "1 recipient in 1 batch" in text.out, text
    markdown = project.run("plan", "--format", "markdown").out
    assert "| `outage` | call again | 1 |" in markdown
    data = json.loads(project.run("plan", "--format", "json").out)["campaigns"][0]
    assert (data["called_again"], [b["call"] for b in data["batches"]]) == (1, [2])
    assert json.loads((project.root / "again.plan").read_text())["batches"][0]["call"] == 2
    result = project.run(
        "apply", "again.plan", "--auto-approve", "--api-url", emulator.url, env=API_ENV
    )
    assert result.code == 0 and "~ outage  call again" in result.out, result
    assert calls_per_number(emulator) == {ALICE: 2, BOB: 1}


def test_retry_policies_are_validated_at_their_line(project: ProjectDir) -> None:
    campaign(
        project, [ALICE], policy(when="[BUSY, REFUSED, DELIVERED]", attempts=11, after="15 min")
    )
    assert_refused(
        project.run("validate"),
        "campaigns/outage.yaml:7: retry.attempts: must be at most 10; lower it",
        "campaigns/outage.yaml:8: retry.after: '15 min' must be a whole number and a unit: "
        "90s, 15m, 2h or 1d",
    )
    campaign(project, [ALICE], policy(when="[BUSY, REFUSED, DELIVERED]"))
    assert_refused(
        project.run("validate"),
        "campaigns/outage.yaml:6: retry.when[1]: REFUSED is never called again (the number "
        "refuses, is blacklisted or cannot be reached); remove it",
        "campaigns/outage.yaml:6: retry.when[2]: DELIVERED means the call was heard; calling "
        "again would repeat it; remove it",
    )
    campaign(project, [ALICE], "")
    project.write(
        "runner.yaml",
        (project.root / "runner.yaml").read_text()
        + "  retry:\n    when: [BLACKLISTED_NUMBER]\n    attempts: 2\n",
    )
    assert_refused(
        project.run("validate"),
        "runner.yaml:7: defaults.retry.when[0]: BLACKLISTED_NUMBER is never called again (the "
        "number refuses, is blacklisted or cannot be reached); remove it",
    )


def test_a_policy_in_defaults_applies_to_every_campaign(
    project: ProjectDir, receiver: ReceiverProcess, emulators: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulators(*webhook_options(receiver, f"{ALICE}=BUSY"))
    project.write(
        "runner.yaml",
        (project.root / "runner.yaml").read_text()
        + "  retry:\n    when: [BUSY]\n    attempts: 2\n    after: 0s\n",
    )
    campaign(project, [ALICE], "")
    for _ in range(3):
        apply_and_settle(project, emulator)
    assert calls_per_number(emulator) == {ALICE: 2}


def test_a_scheduled_campaign_is_called_again_now_once_its_time_has_passed(
    project: ProjectDir, receiver: ReceiverProcess, emulators: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulators(*webhook_options(receiver, f"{ALICE}=BUSY,DELIVERED"))
    send_at = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    campaign(project, [ALICE], policy() + f"send_at: {send_at.isoformat()}\n")
    assert apply(project, emulator).code == 0
    settled_status(project)  # the receipt comes once the booked call is made
    assert time.time() >= send_at.timestamp()
    plan = project.run("plan", "--out", "again.plan")
    assert "call again: 1 recipient not reached" in plan.out and "blocked" not in plan.out, plan
    saved = project.run(
        "apply", "again.plan", "--auto-approve", "--api-url", emulator.url, env=API_ENV
    )
    assert saved.code == 0, saved
    assert [s["send_at"] for s in emulator.sends()] == [send_at.isoformat(), None]
    assert calls_per_number(emulator) == {ALICE: 2}
