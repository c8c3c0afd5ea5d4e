"""A crash between a request and its outcome record, met again after the provider's 24 h window.

The clock is simulated by running the CLI with time.time() moved forward (delivery.CLOCK), and
the provider's forgetting by a fresh emulator: past 24 h it would accept the same request_id
again, so re-sending would call everyone twice. apply must refuse the campaign until a person
says what happened, and each verdict must lead to exactly one call per recipient.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import figures
import pytest
from conftest import EmulatorProcess, ProjectDir, us_numbers, write_campaign
from delivery import (
    assert_exactly_once,
    crash_after_the_provider_accepted,
    kill_when,
    pairs_of,
    run_later,
    start_apply,
)
from silent_api import silent_api

TEXT = "The water is off on Saturday from 9 AM."
NUMBERS = us_numbers(40)
WANTED = {(TEXT, n) for n in NUMBERS}
BLOCKED = "blocked: notice has sends of unknown outcome; see `runner plan`"


@pytest.fixture
def black_hole() -> Iterator[str]:
    """An API URL that answers the balance and never a send: sends reach no one."""
    with silent_api() as url:
        yield url


def apply_later(project: ProjectDir, hours: float, url: str) -> tuple[int, str]:
    result = run_later(project, hours, "apply", "--auto-approve", "--api-url", url)
    assert "Traceback" not in result.output, result
    return result.code, result.out


def assert_blocked(project: ProjectDir, hours: float, provider: EmulatorProcess) -> None:
    plan = run_later(project, hours, "plan")
    assert "older than 23 h, past the provider's duplicate check" in plan.out, plan
    assert "runner state resolve notice --request-id rn-" in plan.out
    code, out = apply_later(project, hours, provider.url)
    assert (code, BLOCKED in out) == (1, True), out
    assert provider.sends() == []


def test_accepted_then_crash_past_24h_is_refused_until_resolved_sent(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    write_campaign(project, "notice", TEXT, NUMBERS)
    first = crash_after_the_provider_accepted(project, emulators)
    later = emulators()  # a day on, the provider has forgotten the request_id
    assert_blocked(project, 25, later)
    resolved = run_later(project, 25, "state", "resolve", "notice", "--sent")
    assert resolved.out.strip() == "notice: 1 pending send recorded as delivered", resolved
    code, out = apply_later(project, 25, later.url)
    assert (code, "No changes" in out) == (0, True), out
    assert_exactly_once(pairs_of([first.pairs(), later.pairs()]), WANTED)
    figures.add("crashes recovered past 24 h")


def test_unsent_then_crash_past_24h_is_refused_until_resolved_not_sent(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess], black_hole: str
) -> None:
    write_campaign(project, "notice", TEXT, NUMBERS)
    process = start_apply(project, black_hole)
    journal = project.root / "runner.state.json.journal"
    kill_when(process, lambda: journal.exists() and journal.stat().st_size > 0)
    provider = emulators()
    assert_blocked(project, 25, provider)
    resolved = run_later(project, 25, "state", "resolve", "notice", "--not-sent")
    assert "recorded as not sent (the next apply sends them)" in resolved.out, resolved
    code, out = apply_later(project, 25, provider.url)
    assert code == 0, out
    assert_exactly_once(provider.pairs(), WANTED)
    figures.add("crashes recovered past 24 h")


def test_a_resent_pending_batch_keeps_the_age_of_its_first_request(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    """The provider's 24 h run from the first request it accepted, not from a later retry."""
    write_campaign(project, "notice", TEXT, NUMBERS)
    first = crash_after_the_provider_accepted(project, emulators)
    busy = emulators("--rate-429", "1", "--retry-after", "0")  # 22 h on: re-sent, no answer
    code, out = apply_later(project, 22, busy.url)
    assert (code, "failed: notice rn-" in out, BLOCKED in out) == (1, True, False), out
    assert busy.sends() == []
    later = emulators()  # 25 h after the first request, the provider has forgotten it
    assert_blocked(project, 25, later)
    assert_exactly_once(pairs_of([first.pairs(), busy.pairs(), later.pairs()]), WANTED)
