"""`runner status`: the emulator's receipts, through a running receiver, counted per message."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
import requests
from conftest import EmulatorProcess, ProjectDir, apply, both_backends, us_numbers, write_campaign
from receiver import ReceiverProcess
from receiving import settled_status, status, webhook_options

NUMBERS = us_numbers(6)
SCRIPTED = (
    "DELIVERED",
    "BUSY",
    "NOT_DELIVERED",
    "REFUSED",
    "BLACKLISTED_NUMBER",
    "NOT_DELIVERABLE",
)


@pytest.fixture
def receiver(project: ProjectDir) -> Iterator[ReceiverProcess]:
    started = ReceiverProcess(project.root)
    yield started
    started.stop()


@both_backends
def test_status_counts_each_recipient_by_its_receipt(
    project: ProjectDir, receiver: ReceiverProcess, emulators: Callable[..., EmulatorProcess]
) -> None:
    scripts = [f"{n}={s}" for n, s in zip(NUMBERS, SCRIPTED, strict=True)]
    emulator = emulators(*webhook_options(receiver, *scripts))
    write_campaign(project, "outage", "Outage in zone 3.", NUMBERS)
    write_campaign(project, "quiet", "Nobody answers.", us_numbers(2, start=50))
    assert apply(project, emulator).code == 0
    data = settled_status(project)
    assert [c["name"] for c in data["campaigns"]] == ["outage", "quiet"]
    outage = data["campaigns"][0]["messages"][0]
    assert (outage["called"], outage["calls"], outage["awaiting"]) == (6, 6, 0)
    assert {s: n for s, n in outage["statuses"].items() if n} == dict.fromkeys(SCRIPTED, 1)
    assert 8 <= outage["call_duration"] <= 75 and outage["charged_duration"] in (30, 60, 90)
    assert data["unknown_tickets"]["receipts"] == 0
    text = project.run("status", "outage")
    assert text.code == 0, text
    assert (
        "called 6 recipients (6 calls): delivered 1, busy 1, no answer 1, refused 1, " in text.out
    )
    assert "blacklisted 1, undeliverable 1, unknown 0, awaiting a receipt 0" in text.out
    assert "quiet" not in text.out
    markdown = project.run("status", "--format", "markdown").out
    assert "| `outage` |" in markdown and "| `quiet` |" in markdown
    for shown in (text.out, markdown, json.dumps(data)):
        assert not any(n[2:] in shown for n in NUMBERS)  # no phone number, in any form


def test_status_shows_calls_still_awaiting_their_receipt(
    project: ProjectDir, receiver: ReceiverProcess, emulators: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulators("--webhook", receiver.url, "--receipt-delay", "60")
    write_campaign(project, "outage", "Outage.", NUMBERS[:2])
    assert apply(project, emulator).code == 0
    message = status(project)["campaigns"][0]["messages"][0]
    assert (message["called"], message["awaiting"], sum(message["statuses"].values())) == (2, 2, 0)
    assert "awaiting a receipt 2" in project.run("status").out


def post(receiver: ReceiverProcess, ticket: str, number: str, status: str, when: str) -> None:
    body = {"message_id": ticket, "number": number, "status": status, "delivery_date": when}
    answer = requests.post(receiver.url, json=body, timeout=10)
    assert answer.status_code < 300, answer.text


def test_the_latest_receipt_counts_once_whatever_order_or_repeats(
    project: ProjectDir, receiver: ReceiverProcess, emulator: EmulatorProcess
) -> None:
    alice, bob = NUMBERS[:2]
    write_campaign(project, "outage", "Outage.", [alice, bob])
    assert apply(project, emulator).code == 0
    ticket = emulator.sends()[0]["ticket_number"]
    post(receiver, ticket, alice, "DELIVERED", "2026-12-02 10:00:05")
    post(receiver, ticket, alice, "BUSY", "2026-12-02 10:00:01")  # older, arriving later
    post(receiver, ticket, bob, "BUSY", "2026-12-02 10:00:02")
    post(receiver, ticket, bob, "BUSY", "2026-12-02 10:00:02")  # the provider's repeat
    post(receiver, "voice_0123456789abc", alice, "DELIVERED", "2026-12-02 10:00:03")
    post(receiver, "voice_0123456789abd", bob, "REFUSED", "2026-12-02 10:00:03")
    data = status(project)
    message = data["campaigns"][0]["messages"][0]
    assert {s: n for s, n in message["statuses"].items() if n} == {"DELIVERED": 1, "BUSY": 1}
    assert message["awaiting"] == 0
    unknown = data["unknown_tickets"]
    assert (unknown["tickets"], unknown["receipts"]) == (2, 2)
    assert (unknown["statuses"]["DELIVERED"], unknown["statuses"]["REFUSED"]) == (1, 1)
    assert "Receipts for tickets the state does not know: 2 (2 tickets)" in (
        project.run("status").out
    )


def test_status_of_an_unknown_campaign_is_one_clear_line(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    write_campaign(project, "outage", "Outage.", NUMBERS[:1])
    assert apply(project, emulator).code == 0
    result = project.run("status", "nope")
    assert result.code == 1
    assert result.err.strip().splitlines() == [
        "runner: the state has no campaign named nope; `runner state list` lists those it has"
    ]


def test_a_status_word_newer_than_runner_is_kept_and_counted_as_unknown(
    project: ProjectDir, receiver: ReceiverProcess, emulator: EmulatorProcess
) -> None:
    """Refusing it would make the provider post it forever and leave the call awaiting."""
    alice, bob = NUMBERS[:2]
    write_campaign(project, "outage", "Outage.", [alice, bob])
    assert apply(project, emulator).code == 0
    ticket = emulator.sends()[0]["ticket_number"]
    post(receiver, ticket, alice, "ack", "2026-12-02 10:00:05")
    post(receiver, ticket, bob, "DELIVERED", "2026-12-02 10:00:06")
    message = status(project)["campaigns"][0]["messages"][0]
    assert {s: n for s, n in message["statuses"].items() if n} == {"ACK": 1, "DELIVERED": 1}
    assert message["awaiting"] == 0
    assert "delivered 1, busy 0, no answer 0, refused 0, blacklisted 0, undeliverable 0, " in (
        text := project.run("status").out
    )
    assert "unknown 1, awaiting a receipt 0" in text
