"""After a crash, some pending sends reached the provider and others never left: a person
settles each one by its request_id, and everyone is called exactly once.

The crash is a SIGKILL while the first batch's answer is lost: that batch was accepted, the
second was recorded ahead (write-ahead intents) but never sent. A day later the provider has
forgotten both request_ids, so only a person can say which is which.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable

import figures
from conftest import EmulatorProcess, ProjectDir, us_numbers, write_campaign
from delivery import assert_exactly_once, clock_command, pairs_of, run_later, start_quietly

TEXT = "The water is off on Saturday from 9 AM."
NUMBERS = us_numbers(900)  # two batches
WANTED = {(TEXT, n) for n in NUMBERS}


def crash_with_one_batch_sent(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> EmulatorProcess:
    provider = emulators("--rate-drop-after", "1", "--latency", "1.5")
    command = clock_command(
        project, 0, "apply", "--auto-approve", "--concurrency", "1", "--api-url", provider.url
    )
    process = start_quietly(command)
    while len(provider.sends()) < 1:
        assert process.poll() is None, "apply ended before the moment to kill it"
    process.send_signal(signal.SIGKILL)
    process.wait()
    return provider


def test_a_mix_of_sent_and_never_sent_is_resolved_per_request_id(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    write_campaign(project, "notice", TEXT, NUMBERS)
    first = crash_with_one_batch_sent(project, emulators)
    [accepted] = [s["request_id"] for s in first.sends()]
    plan = json.loads(run_later(project, 25, "plan", "--format", "json").out)
    pending = [p["request_id"] for p in plan["campaigns"][0]["pending"]]
    assert accepted in pending and len(pending) == 2, pending
    [never_left] = [r for r in pending if r != accepted]

    shown = run_later(project, 25, "state", "show", "notice").out
    for request_id in pending:
        [line] = [x for x in shown.splitlines() if f"pending {request_id}:" in x]
        assert "first attempt 20" in line and "1 attempt, 25.0 h old" in line, line
    assert "500 contacts" in shown and "400 contacts" in shown, shown

    campaign_wide = run_later(project, 25, "state", "resolve", "notice", "--sent")
    assert campaign_wide.code == 1
    assert "notice has 2 pending sends" in campaign_wide.err
    assert "--request-id ID --sent|--not-sent" in campaign_wide.err
    sent = run_later(project, 25, "state", "resolve", "notice", "--request-id", accepted, "--sent")
    assert sent.out.strip() == "notice: 1 pending send recorded as delivered", sent
    unsent = ("state", "resolve", "notice", "--request-id", never_left, "--not-sent")
    assert run_later(project, 25, *unsent).code == 0

    later = emulators()  # a day on, the provider has forgotten the request_ids
    applied = run_later(project, 25, "apply", "--auto-approve", "--api-url", later.url)
    assert applied.code == 0, applied
    assert_exactly_once(pairs_of([first.pairs(), later.pairs()]), WANTED)
    figures.add("crashes recovered past 24 h")


def rename(project: ProjectDir, old: str, new: str) -> None:
    (project.root / f"campaigns/{old}.yaml").unlink()
    (project.root / f"contacts/{old}.csv").unlink()
    write_campaign(project, new, TEXT, NUMBERS)


def test_a_renamed_campaign_calls_nobody_while_its_old_name_has_pending_sends(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    write_campaign(project, "notice", TEXT, NUMBERS)
    first = crash_with_one_batch_sent(project, emulators)
    rename(project, "notice", "water-notice")
    later = emulators()
    for _ in range(2):
        applied = run_later(project, 1, "apply", "--auto-approve", "--api-url", later.url)
        assert len(later.sends()) == 0  # before: 900 calls, 500 of them a second time
        assert applied.code == 1, applied
        assert "blocked: notice has sends of unknown outcome" in applied.out
        assert "blocked: water-notice" in applied.out
    plan = run_later(project, 1, "plan").out
    assert "! notice  campaign removed, blocked  (removed from the files)" in plan, plan
    assert "under `notice`; nothing is sent to them until it is settled" in plan
    assert "runner state resolve notice --request-id rn-" in plan
    accepted = first.sends()[0]["request_id"]
    assert run_later(project, 1, "state", "show", "notice").out.count("pending rn-") == 2
    settle = ("state", "resolve", "notice", "--request-id", accepted, "--sent")
    assert run_later(project, 1, *settle).code == 0
    still = run_later(project, 1, "apply", "--auto-approve", "--api-url", later.url)
    assert (still.code, later.sends()) == (1, []), still  # one send of unknown outcome left
    assert_exactly_once(pairs_of([first.pairs()]), {(TEXT, n) for n in NUMBERS[:500]})


def test_a_removed_campaign_shows_its_pending_sends_until_resolved(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    write_campaign(project, "notice", TEXT, NUMBERS)
    first = crash_with_one_batch_sent(project, emulators)
    (project.root / "campaigns/notice.yaml").unlink()
    plan = json.loads(run_later(project, 1, "plan", "--format", "json").out)
    [removed] = plan["campaigns"]
    assert removed["categories"] == ["campaign removed", "blocked"]
    assert sum(p["contacts"] for p in removed["pending"]) == 900
    assert plan["removed_campaigns"] == []
    resolved = run_later(project, 1, "state", "resolve", "notice", "--all", "--not-sent")
    assert resolved.out.strip().startswith("notice: 2 pending sends recorded as not sent")
    text = run_later(project, 1, "plan").out
    assert "- notice  campaign removed from the files: 0 recipients were called" in text, text
    assert len(first.sends()) == 1
