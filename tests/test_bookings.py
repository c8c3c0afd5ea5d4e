"""Scheduled campaigns are bookings: a change cancels the booked calls before booking anew.

Each test counts the calls that will really happen at the emulator: bookings it accepted and
did not cancel. Nobody may get both the old and the new call.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import API_ENV, EmulatorProcess, ProjectDir, apply, both_backends, us_numbers

NUMBERS = us_numbers(3)
TEXT = "Maintenance on Saturday"


def send_at(minutes: float) -> str:
    moment = datetime.now(UTC) + timedelta(minutes=minutes)
    return moment.replace(microsecond=0).isoformat()


def book(project: ProjectDir, when: str, text: str = TEXT, numbers: list[str] = NUMBERS) -> None:
    recipients = "".join(f'  - "{n}"\n' for n in numbers)
    project.write(
        "campaigns/maintenance.yaml",
        f'name: maintenance\ntext: "{text}"\nsend_at: "{when}"\nrecipients:\n{recipients}',
    )


def once_each(text: str, numbers: list[str] = NUMBERS) -> Counter[tuple[str, str]]:
    return Counter({(text, n): 1 for n in numbers})


def send_times(emulator: EmulatorProcess) -> set[str]:
    gone = emulator.cancelled()
    return {s["send_at"] for s in emulator.sends() if s["ticket_number"] not in gone}


@both_backends
def test_moving_send_at_a_day_later_cancels_then_books_once(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    book(project, send_at(24 * 60))
    assert apply(project, emulator).code == 0
    later = send_at(48 * 60)
    book(project, later)
    plan = project.run("plan")
    assert plan.code == 0, plan
    cancel, batch = plan.out.index("cancel voice_"), plan.out.index("1 batch")
    assert cancel < batch, plan.out  # cancels are shown before the new bookings
    assert "3 booked calls due" in plan.out
    assert "Cancelled first: 1 booked batch (3 calls)." in plan.out
    result = apply(project, emulator)
    assert result.code == 0, result
    assert "cancelled: maintenance ticket voice_" in result.out
    assert emulator.calls() == once_each(TEXT)  # 1 call per person, not 2
    assert send_times(emulator) == {later}
    assert "No changes" in project.run("plan").out


def test_text_change_of_a_booking_cancels_the_old_text(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    when = send_at(24 * 60)
    book(project, when)
    assert apply(project, emulator).code == 0
    book(project, when, text="Maintenance moved to Sunday")
    result = apply(project, emulator)
    assert result.code == 0, result
    assert emulator.calls() == once_each("Maintenance moved to Sunday")
    assert len(emulator.sends()) == 2 and len(emulator.cancelled()) == 1


def test_removing_a_booked_campaign_cancels_its_calls(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    book(project, send_at(30 * 24 * 60))
    assert apply(project, emulator).code == 0
    (project.root / "campaigns/maintenance.yaml").unlink()
    plan = project.run("plan")
    assert "were called" not in plan.out  # the calls are a month away: nobody was called yet
    assert "campaign removed, booked calls cancelled" in plan.out
    data = json.loads(project.run("plan", "--format", "json").out)
    assert data["summary"]["cancels"] == 1 and data["summary"]["cancelled_calls"] == 3
    [change] = data["campaigns"]
    assert [c["contacts"] for c in change["cancels"]] == [3]
    assert change["cancels"][0]["ticket"].startswith("voice_")
    markdown = project.run("plan", "--format", "markdown").out
    assert "booked calls cancelled" in markdown and "cancel voice_" in markdown
    result = apply(project, emulator)
    assert result.code == 0, result
    assert emulator.calls() == Counter()
    after = project.run("plan")
    assert "were called" not in after.out and "No changes" in after.out, after


def test_refused_cancel_blocks_the_campaign_and_books_nothing(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulators("--refuse-cancels")
    book(project, send_at(24 * 60))
    assert apply(project, emulator).code == 0
    book(project, send_at(48 * 60))
    result = apply(project, emulator)
    assert result.code == 1, result
    assert "not cancelled: maintenance ticket voice_" in result.out
    assert "blocked: maintenance" in result.out and "call those people twice" in result.out
    assert len(emulator.sends()) == 1  # 0 extra bookings
    assert emulator.calls() == once_each(TEXT)
    plan = project.run("plan")
    assert "refused last time" in plan.out, plan


def test_change_within_10_minutes_of_send_at_is_blocked(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    book(project, send_at(8))
    assert apply(project, emulator).code == 0
    book(project, send_at(8), text="Maintenance cancelled")
    plan = project.run("plan", "--detailed-exitcode")
    assert plan.code == 2, plan
    assert "cancels only more than 10 minutes ahead" in plan.out
    assert "runner state accept maintenance" in plan.out
    data = json.loads(project.run("plan", "--format", "json").out)
    assert data["summary"]["blocked"] == ["maintenance"]
    assert "10 minutes" in data["campaigns"][0]["cancel_blocked"]
    result = apply(project, emulator)
    assert result.code == 1, result
    assert len(emulator.sends()) == 1 and not emulator.cancelled()
    assert emulator.calls() == once_each(TEXT)
    # a person adopts the new version without calling: the booked calls stand, nothing more
    assert project.run("state", "accept", "maintenance").code == 0
    assert "No changes" in project.run("plan").out
    assert emulator.calls() == once_each(TEXT)


def test_cancel_too_close_by_the_providers_clock_is_not_sent(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulators("--clock-offset", "300")  # the provider is 5 minutes ahead of us
    book(project, send_at(14))
    assert apply(project, emulator).code == 0
    book(project, send_at(14), text="Maintenance cancelled")
    assert "cancel voice_" in project.run("plan").out  # by our clock, 14 minutes ahead
    result = apply(project, emulator)
    assert result.code == 1, result
    assert "by the provider's clock" in result.out
    assert len(emulator.sends()) == 1 and not emulator.cancelled()


@both_backends
def test_moving_send_at_back_to_a_cancelled_time_books_with_a_new_request_id(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    first, second = send_at(24 * 60), send_at(48 * 60)
    book(project, first)
    assert apply(project, emulator).code == 0
    book(project, second)
    assert apply(project, emulator).code == 0
    book(project, first)  # back, within 24 h of the first booking
    result = apply(project, emulator)
    assert result.code == 0, result
    assert emulator.calls() == once_each(TEXT)  # not zero: the provider took a new booking
    assert send_times(emulator) == {first}
    ids = [s["request_id"] for s in emulator.sends()]
    assert len(ids) == len(set(ids)) == 3


def test_saved_plan_carries_its_cancels(project: ProjectDir, emulator: EmulatorProcess) -> None:
    book(project, send_at(24 * 60))
    assert apply(project, emulator).code == 0
    book(project, send_at(36 * 60))
    assert project.run("plan", "--out", "plan.json").code == 0
    saved = json.loads((project.root / "plan.json").read_text())
    assert [len(c.get("cancels", [])) for c in saved["changes"]] == [1]
    result = project.run(
        "apply", "plan.json", "--auto-approve", "--api-url", emulator.url, env=API_ENV
    )
    assert result.code == 0, result
    assert "cancel voice_" in result.out  # shown before it asks, as plan showed it
    assert emulator.calls() == once_each(TEXT)
    assert len(emulator.cancelled()) == 1


def test_state_keeps_the_booking_and_refuses_a_crafted_one(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    when = send_at(24 * 60)
    book(project, when)
    assert apply(project, emulator).code == 0
    [sent] = emulator.sends()
    shown = project.run("state", "show", "maintenance")
    assert f"booked {sent['request_id']}: 3 contacts, ticket {sent['ticket_number']}" in shown.out
    path = project.root / "runner.state.json"
    state = json.loads(path.read_text())
    [booking] = state["campaigns"]["maintenance"]["bookings"].values()
    assert (booking["ticket"], booking["send_at"], len(booking["recipients"])) == (
        sent["ticket_number"],
        when,
        3,
    )
    booking["due"] = "tomorrow"
    path.write_text(json.dumps(state))
    result = project.run("plan")
    assert result.code == 1 and len(result.err.strip().splitlines()) == 1, result
    assert "bookings" in result.err and "Traceback" not in result.err


def test_a_person_removed_from_a_booking_is_not_called(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    when = send_at(24 * 60)
    book(project, when)
    assert apply(project, emulator).code == 0
    book(project, when, numbers=NUMBERS[1:])
    plan = project.run("plan")
    assert "cancel voice_" in plan.out and "hear a changed message" not in plan.out, plan
    assert apply(project, emulator).code == 0
    assert emulator.calls() == once_each(TEXT, NUMBERS[1:])
    assert "No changes" in project.run("plan").out


def test_forget_refuses_a_campaign_with_calls_still_booked(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    book(project, send_at(24 * 60))
    assert apply(project, emulator).code == 0
    result = project.run("state", "forget", "maintenance")
    assert result.code == 1 and "still to come" in result.err, result
    assert apply(project, emulator).code == 0
    assert emulator.calls() == once_each(TEXT)


def test_a_booking_kept_by_accept_is_cancelled_by_a_further_change(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulators("--refuse-cancels")
    when = send_at(24 * 60)
    book(project, when)
    assert apply(project, emulator).code == 0
    book(project, when, text="Maintenance moved to Sunday")
    assert apply(project, emulator).code == 1  # refused: blocked
    assert project.run("state", "accept", "maintenance").code == 0
    assert "No changes" in project.run("plan").out  # the booked calls stand, adopted
    book(project, when, text="Maintenance cancelled")
    plan = project.run("plan")
    assert "cancel voice_" in plan.out, plan  # the kept booking is not what they need now
    assert apply(project, emulator).code == 1
    assert emulator.calls() == once_each(TEXT)


def clock_ahead(tmp_path: Path, hours: float) -> dict[str, str]:
    """The environment of a runner whose machine clock is `hours` ahead (a CI runner's)."""
    site = tmp_path / "clock_ahead"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(
        f"import time\n_real = time.time\ntime.time = lambda: _real() + {hours * 3600}\n"
    )
    return {**API_ENV, "PYTHONPATH": f"{site}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def test_a_clock_hours_ahead_never_books_a_second_call(
    project: ProjectDir, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    book(project, send_at(60))  # booked from a machine whose clock is right
    assert apply(project, emulator).code == 0
    book(project, send_at(24 * 60))  # moved by a CI whose clock is 2 hours ahead
    result = project.run(
        "apply", "--auto-approve", "--api-url", emulator.url, env=clock_ahead(tmp_path, 2), stdin=""
    )
    assert emulator.calls() == once_each(TEXT), result  # the first booking still stands
    assert "set this machine's clock right" in result.output, result


def test_a_booking_filed_under_another_request_id_is_one_clear_line(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    book(project, send_at(24 * 60))
    assert apply(project, emulator).code == 0
    path = project.root / "runner.state.json"
    state = json.loads(path.read_text())
    bookings = state["campaigns"]["maintenance"]["bookings"]
    [(request_id, booking)] = bookings.items()
    bookings[request_id] = {**booking, "request_id": "rn-someone-else"}
    path.write_text(json.dumps(state))
    book(project, send_at(48 * 60))
    result = project.run("plan")
    assert result.code == 1 and len(result.err.strip().splitlines()) == 1, result
    assert "bookings" in result.err and "Traceback" not in result.err
    assert len(emulator.sends()) == 1 and not emulator.cancelled()


def test_a_send_at_beyond_what_the_state_holds_is_refused_before_anything_is_sent(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    for when in ("9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+01:00"):
        book(project, when)
        result = apply(project, emulator)
        assert result.code != 0 and "Traceback" not in result.output, result
        assert "maintenance.yaml:3: send_at:" in result.err, result
        assert not emulator.sends() and not (project.root / "runner.state.json").exists()
    book(project, send_at(60))
    assert apply(project, emulator).code == 0
    assert "No changes" in project.run("plan").out  # the state it wrote reads back


def test_a_booking_of_the_wrong_shape_is_refused_in_one_line(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    book(project, send_at(24 * 60))
    assert apply(project, emulator).code == 0
    path = project.root / "runner.state.json"
    good = path.read_text()
    for field, value in (("kept", "yes"), ("uncertain", 1), ("recipients", "abc")):
        state = json.loads(good)
        [booking] = state["campaigns"]["maintenance"]["bookings"].values()
        booking[field] = value
        path.write_text(json.dumps(state))
        result = project.run("plan")
        assert result.code == 1 and len(result.err.strip().splitlines()) == 1, (field, result)
        assert "bookings" in result.err and "Traceback" not in result.err
    assert emulator.calls() == once_each(TEXT)


def test_a_cancel_blocked_past_its_time_by_the_providers_clock_says_so(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    book(project, send_at(60))
    assert apply(project, emulators()).code == 0
    ahead = emulators("--clock-offset", str(2 * 3600))  # this machine is 2 hours behind it
    book(project, send_at(60), text="Maintenance cancelled")
    result = apply(project, ahead)
    assert result.code == 1, result
    assert "are due now or already made by the provider's clock" in result.out, result
    assert "in -" not in result.out
    assert not ahead.sends() and not ahead.cancelled()


def test_a_clock_hours_ahead_still_cancels_a_removed_campaigns_booking(
    project: ProjectDir, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    book(project, send_at(60))  # booked from a machine whose clock is right
    assert apply(project, emulator).code == 0
    (project.root / "campaigns/maintenance.yaml").unlink()  # removed from a CI 2 hours ahead
    result = project.run(
        "apply", "--auto-approve", "--api-url", emulator.url, env=clock_ahead(tmp_path, 2), stdin=""
    )
    assert result.code == 0, result
    assert "cancelled: maintenance ticket voice_" in result.out, result
    assert emulator.calls() == Counter()  # nobody is called: the campaign is gone


def test_forget_refuses_while_a_booking_may_still_be_ahead_by_a_clock_hours_off(
    project: ProjectDir, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    book(project, send_at(60))
    assert apply(project, emulator).code == 0
    result = project.run("state", "forget", "maintenance", env=clock_ahead(tmp_path, 2))
    assert result.code == 1 and "nothing was forgotten" in result.err, result
    assert "clock" in result.err
    assert "maintenance" in project.run("state", "show", "maintenance").out
