"""The edges of exactly-once at send time (issue #13 items 1-3, 8; #16 items 9, 10).

Each test counts calls in the emulators' own records. Several emulators stand for ONE provider
at different moments: `--remember` gives a later one the request_ids an earlier one accepted,
and `--clock-offset` moves its clock (its Date header, and when it forgets an id: 24 h).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import figures
import pytest
from conftest import EmulatorProcess, ProjectDir, us_numbers, write_campaign
from delivery import (
    apply,
    assert_exactly_once,
    crash_after_the_provider_accepted,
    pairs_of,
    run_later,
)
from tls_server import tls_server

TEXT = "The water is off on Saturday from 9 AM."
HOUR = 3600.0


def with_pricing(project: ProjectDir, price: str) -> None:
    config = project.root / "runner.yaml"
    config.write_text(config.read_text() + f"pricing: {{default: {price}}}\n")


def later_provider(
    emulators: Callable[..., EmulatorProcess], first: EmulatorProcess, hours: float, *more: str
) -> EmulatorProcess:
    """The same provider as `first`, `hours` later by its own clock."""
    return emulators("--remember", str(first.record), "--clock-offset", str(hours * HOUR), *more)


@pytest.mark.parametrize(
    ("refusal", "says"),
    [
        (("--credit", "0.1"), "Not enough credit"),  # 104 at the re-send itself
        (("--key", "expired-key"), "Invalid credentials"),  # 101/401, met by the preflight
    ],
)
def test_a_refused_resend_leaves_the_batch_pending(
    project: ProjectDir,
    emulators: Callable[..., EmulatorProcess],
    refusal: tuple[str, ...],
    says: str,
) -> None:
    """#13.1: accepted, answer lost; the re-send is refused; a recipient is added: 4 calls."""
    project.write(
        "runner.yaml",
        project.root.joinpath("runner.yaml").read_text() + "pricing: {default: 0.01}\n",
    )
    numbers = us_numbers(4)
    write_campaign(project, "notice", TEXT, numbers[:3])
    first = crash_after_the_provider_accepted(project, emulators)
    refusing = emulators(*refusal)  # refuses before it looks at the request_id, as seen live
    result = run_later(project, 1, "apply", "--auto-approve", "--api-url", refusing.url)
    assert (result.code, says in result.output, refusing.sends()) == (1, True, []), result
    assert "Traceback" not in result.output
    assert "! notice  pending" in run_later(project, 1, "plan").out
    write_campaign(project, "notice", TEXT, numbers)  # one recipient added
    settling = later_provider(emulators, first, 2)
    result = run_later(project, 2, "apply", "--auto-approve", "--api-url", settling.url)
    assert result.code == 0, result
    assert_exactly_once(pairs_of([first.pairs(), settling.pairs()]), {(TEXT, n) for n in numbers})
    assert len(settling.sends()) == 1  # the added recipient alone; the re-send was a duplicate
    figures.add("refused re-sends kept pending")


def test_a_runner_two_hours_fast_then_a_correct_one_a_day_later(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    """#13.3: the window is measured by the provider's clock, not each machine's."""
    numbers = us_numbers(3)
    write_campaign(project, "notice", TEXT, numbers)
    first = crash_after_the_provider_accepted(project, emulators, hours=2)  # a runner 2 h fast
    later = later_provider(emulators, first, 24.5)  # it forgot the request_id: 24.5 h on
    result = run_later(project, 24.5, "apply", "--auto-approve", "--api-url", later.url)
    assert (result.code, later.sends()) == (1, []), result
    assert "older than 23 h" in result.out or "past the provider's 24 h" in result.out, result
    resolved = run_later(project, 24.5, "state", "resolve", "notice", "--sent")
    assert resolved.code == 0, resolved
    result = run_later(project, 24.5, "apply", "--auto-approve", "--api-url", later.url)
    assert (result.code, "No changes" in result.out) == (0, True), result
    assert_exactly_once(pairs_of([first.pairs(), later.pairs()]), {(TEXT, n) for n in numbers})
    figures.add("clock-skew trials")


def test_an_intent_dated_in_the_future_is_not_resent(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    write_campaign(project, "notice", TEXT, us_numbers(3))
    first = crash_after_the_provider_accepted(project, emulators, "--clock-offset", str(5 * HOUR))
    behind = later_provider(emulators, first, 0)  # the provider's clock went 5 h back
    result = run_later(project, 0, "apply", "--auto-approve", "--api-url", behind.url)
    assert (result.code, behind.sends()) == (1, []), result
    assert re.search(r"its first attempt is dated 5\.0 h in the future", result.out), result
    assert re.search(
        r"runner state resolve notice --request-id rn-[0-9a-f]{32} --sent\|--not-sent", result.out
    )
    figures.add("clock-skew trials")


def test_a_saved_plan_checks_the_window_when_it_sends(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess], tmp_path: Path
) -> None:
    """#13.2: saved at +22.9 h (re-send allowed then), applied at +25 h: nothing re-sent."""
    numbers = us_numbers(3)
    write_campaign(project, "notice", TEXT, numbers)
    first = crash_after_the_provider_accepted(project, emulators)
    saved = tmp_path / "plan.json"
    planned = run_later(project, 22.9, "plan", "--out", str(saved))
    assert (planned.code, saved.exists()) == (0, True), planned
    later = later_provider(emulators, first, 25)
    result = run_later(project, 25, "apply", "--auto-approve", "--api-url", later.url, str(saved))
    assert (result.code, later.sends()) == (1, []), result
    assert "not re-sent: its first attempt was 25.0 h ago" in result.out, result
    assert "! notice  blocked" in run_later(project, 25, "plan").out  # still pending: a person says
    assert_exactly_once(pairs_of([first.pairs(), later.pairs()]), {(TEXT, n) for n in numbers})
    figures.add("re-sends stopped at send time")


def test_an_account_refusal_stops_the_apply_and_says_so_once(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    """#13.8: out of credit after 3 batches: no new batch starts, one line says why."""
    project.write(
        "runner.yaml", project.root.joinpath("runner.yaml").read_text() + "pricing: {default: 0}\n"
    )
    wanted = set()
    for i in range(40):
        text = f"{TEXT} Zone {i}."
        number = us_numbers(1, start=i)
        write_campaign(project, f"zone-{i:02d}", text, number)
        wanted.add((text, number[0]))
    poor = emulators("--credit", "0.15")  # 3 calls at 0.05
    result = apply(project, poor.url, "--concurrency", "2", verbose=True)
    posts = len(re.findall(r"POST \S+ attempt 1/", result.err))
    assert (result.code, len(poor.sends())) == (1, 3), result
    assert posts <= 3 + 2 * 2, posts  # those in flight when the refusal came, no more
    stopped = [line for line in result.out.splitlines() if line.startswith("stopped: ")]
    assert len(stopped) == 1 and "Not enough credit" in stopped[0], result.out
    assert "failed:" not in result.out, result.out
    rich = emulators("--remember", str(poor.record))
    assert apply(project, rich.url).code == 0
    assert_exactly_once(pairs_of([poor.pairs(), rich.pairs()]), wanted)
    figures.add("requests saved by stopping", 40 - posts)


def test_a_balance_below_the_estimate_refuses_before_sending(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    """#16.9: the estimate and the balance side by side; nothing sent."""
    write_campaign(project, "notice", TEXT, us_numbers(3))
    poor = emulators("--credit", "0.1")
    result = apply(project, poor.url)
    assert result.code == 1, result
    assert "the estimated cost 0.15 € is over the account's balance 0.10 €" in result.err
    assert "top up the Octopush account" in result.err
    assert poor.sends() == []


def test_a_certificate_failure_is_immediate_and_leaves_nothing_pending(
    project: ProjectDir, tmp_path: Path
) -> None:
    """#16.10: nothing left the machine, so nothing is pending, and no retry is made."""
    write_campaign(project, "notice", TEXT, us_numbers(3))
    with tls_server(tmp_path) as server:
        result = apply(project, server.url)
    assert result.code == 1, result
    assert "the TLS certificate of 127.0.0.1 failed verification" in result.err, result
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert server.connections == 1
    assert "pending" not in project.run("plan").out
