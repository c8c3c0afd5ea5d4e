"""SIGKILL apply between the cancel of a booking and the booking of its replacement.

The verdict comes from the emulator's record: bookings it accepted and did not cancel are the
calls that will happen. After any crash and re-run, each person has exactly one call booked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import figures
from conftest import EmulatorProcess, ProjectDir, us_numbers
from delivery import apply, apply_until_success, kill_when, start_apply

NUMBERS = us_numbers(4)
TEXT = "The office is closed on Monday"


def book(project: ProjectDir, hours: float) -> str:
    when = (datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0).isoformat()
    recipients = "".join(f'  - "{n}"\n' for n in NUMBERS)
    project.write(
        "campaigns/closed.yaml",
        f'name: closed\ntext: "{TEXT}"\nsend_at: "{when}"\nrecipients:\n{recipients}',
    )
    return when


def journal_has(project: ProjectDir, kind: str) -> bool:
    journal = project.root / "runner.state.json.journal"
    return journal.exists() and f'"kind":"{kind}"' in journal.read_text(errors="replace")


def booked(emulator: EmulatorProcess) -> set[str]:
    gone = emulator.cancelled()
    return {s["send_at"] for s in emulator.sends() if s["ticket_number"] not in gone}


def test_sigkill_after_the_cancel_then_rerun_books_once(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulators("--latency", "0.5")  # the replacement's booking is slow to answer
    book(project, 24)
    assert apply(project, emulator.url).code == 0
    later = book(project, 48)
    process = start_apply(project, emulator.url)
    kill_when(process, lambda: journal_has(project, "cancel-outcome"))
    assert len(emulator.cancelled()) == 1
    runs = apply_until_success(project, emulator.url)
    assert emulator.calls() == Counter({(TEXT, n): 1 for n in NUMBERS})
    assert booked(emulator) == {later}
    assert "No changes" in project.run("plan").out
    figures.add("crash re-runs", len(runs))


def test_sigkill_during_the_cancel_blocks_until_a_person_resolves(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    # the provider makes the cancel and its answer is lost: apply dies retrying
    emulator = emulators("--latency", "0.5", "--drop-cancel-answers")
    book(project, 24)
    assert apply(project, emulator.url).code == 0
    [first] = emulator.sends()
    later = book(project, 48)
    process = start_apply(project, emulator.url)
    kill_when(process, lambda: bool(emulator.cancelled()))
    assert not journal_has(project, "cancel-outcome")
    # runner never heard: its retry is refused, and it cannot tell a cancel made from one
    # refused, so it books nothing on top of it
    rerun = apply(project, emulator.url)
    assert rerun.code == 1, rerun
    assert "not cancelled: closed ticket" in rerun.out
    assert len(emulator.sends()) == 1
    plan = project.run("plan")
    assert f"runner state resolve closed --request-id {first['request_id']} --sent" in plan.out
    resolved = project.run(
        "state", "resolve", "closed", "--request-id", first["request_id"], "--sent"
    )
    assert resolved.code == 0, resolved
    assert apply(project, emulator.url).code == 0
    assert emulator.calls() == Counter({(TEXT, n): 1 for n in NUMBERS})
    assert booked(emulator) == {later}


def test_cancel_whose_answer_is_lost_books_nothing(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulators("--drop-cancel-answers")
    book(project, 24)
    assert apply(project, emulator.url).code == 0
    book(project, 48)
    lost = apply(project, emulator.url)
    assert lost.code == 1, lost
    assert "not cancelled: closed ticket" in lost.out and "may have cancelled it" in lost.out
    assert len(emulator.sends()) == 1 and len(emulator.cancelled()) == 1
    assert emulator.calls() == Counter()  # cancelled, and nothing booked: nobody twice
    again = apply(project, emulator.url)
    assert again.code == 1 and len(emulator.sends()) == 1, again
    assert "runner state resolve closed --request-id" in project.run("plan").out
