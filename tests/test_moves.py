"""Renames (#15 item 5) and what every plan shows of when and how calls go out (#15 item 1).

Through the real CLI and the real emulator over loopback; calls are counted in the emulator's
own record of accepted sends.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from conftest import (
    EmulatorProcess,
    ProjectDir,
    Result,
    both_backends,
    us_numbers,
    write_campaign,
)
from conftest import apply as apply_cli

TEXT = "The water is off on Saturday from 9 AM."
HINT = (
    "note: water-saturday looks like a rename of water (3 of its recipients already heard this "
    "message); add `moved_from: [water]` to carry its history"
)


def apply(project: ProjectDir, emulator: EmulatorProcess, *args: str) -> Result:
    result = apply_cli(project, emulator, *args)
    assert "Traceback" not in result.output, result
    return result


def renamed(project: ProjectDir, old: str, new: str, numbers: list[str], text: str = TEXT) -> None:
    """The campaign file of `old` becomes `new`, with `moved_from: [old]`."""
    (project.root / "campaigns" / f"{old}.yaml").unlink()
    write_campaign(project, new, text, numbers)
    path = project.root / "campaigns" / f"{new}.yaml"
    path.write_text(path.read_text() + f"moved_from: [{old}]\n")


@both_backends
def test_a_rename_with_moved_from_calls_nobody_and_an_added_recipient_alone(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    numbers = us_numbers(4)
    write_campaign(project, "water", TEXT, numbers[:3])
    assert apply(project, emulator).code == 0
    assert len(emulator.pairs()) == 3

    renamed(project, "water", "water-saturday", numbers[:3])
    plan = project.run("plan")
    assert plan.code == 0, plan
    assert "~ moved: water → water-saturday (the history of 3 recipients moves with it" in plan.out
    assert "new campaign" not in plan.out and "campaign removed" not in plan.out
    assert "Plan: 0 campaigns, 0 calls in 0 batches, estimated cost 0.00 €; 1 rename" in plan.out
    applied = apply(project, emulator)
    assert applied.code == 0, applied
    assert "Moved: water -> water-saturday" in applied.out
    assert sum(emulator.pairs().values()) == 3  # the rename called nobody
    assert "No changes" in project.run("plan").out  # the move is in the state: a no-op now
    listed = project.run("state", "list").out.split()
    assert "water-saturday:" in listed and "water:" not in listed, listed

    renamed_again = project.root / "campaigns" / "water-saturday.yaml"
    write_campaign(project, "water-saturday", TEXT, numbers)  # one recipient added
    renamed_again.write_text(renamed_again.read_text() + "moved_from: [water]\n")
    assert apply(project, emulator).code == 0
    counts = emulator.pairs()
    assert counts == {(TEXT, n): 1 for n in numbers}  # only the new one was called


def test_a_renamed_campaign_with_a_changed_text_calls_everyone_once_with_it(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    numbers = us_numbers(3)
    write_campaign(project, "water", TEXT, numbers)
    assert apply(project, emulator).code == 0
    renamed(project, "water", "water-saturday", numbers, text="The water is off on Sunday.")
    plan = project.run("plan")
    assert "~ water-saturday  message changed" in plan.out, plan  # not "new campaign"
    assert "3 recipients hear a changed message" in plan.out
    assert apply(project, emulator).code == 0
    assert apply(project, emulator).code == 0  # nothing more
    expected = {(t, n): 1 for t in (TEXT, "The water is off on Sunday.") for n in numbers}
    assert emulator.pairs() == expected


def test_a_rename_from_a_saved_plan_then_undone(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    numbers = us_numbers(3)
    write_campaign(project, "water", TEXT, numbers)
    assert apply(project, emulator).code == 0
    renamed(project, "water", "water-saturday", numbers)
    saved = str(project.root / "rename.plan")
    assert project.run("plan", "--out", saved).code == 0
    applied = apply(project, emulator, saved)
    assert applied.code == 0, applied
    assert "~ moved: water → water-saturday" in applied.out  # what apply FILE shows
    assert "No changes" in project.run("plan").out
    renamed(project, "water-saturday", "water", numbers)  # undone, with its own moved_from
    assert "~ moved: water-saturday → water" in project.run("plan").out
    assert apply(project, emulator).code == 0
    assert "No changes" in project.run("plan").out
    assert sum(emulator.pairs().values()) == 3


def test_a_rename_without_moved_from_is_a_new_campaign_and_the_plan_says_so(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    numbers = us_numbers(4)
    write_campaign(project, "water", TEXT, numbers[:3])
    assert apply(project, emulator).code == 0
    (project.root / "campaigns" / "water.yaml").unlink()
    write_campaign(project, "water-saturday", TEXT, numbers)

    assert HINT in project.run("plan").out
    data = json.loads(project.run("plan", "--format", "json").out)
    assert data["rename_hints"] == [
        {
            "campaign": "water-saturday",
            "looks_like": "water",
            "heard": 3,
            "message": HINT.removeprefix("note: "),
        }
    ]
    markdown = project.run("plan", "--format", "markdown").out
    assert (
        "- note: `water-saturday` looks like a rename of `water` (3 of its recipients already "
        "heard this message); add `moved_from: [water]` to carry its history"
    ) in markdown
    assert apply(project, emulator).code == 0  # documented: a new campaign calls everyone
    assert sum(emulator.pairs().values()) == 3 + 4


def test_moved_from_problems_are_one_line_each_at_their_place(project: ProjectDir) -> None:
    one = ["+12025550143"]
    write_campaign(project, "a", TEXT, one)
    write_campaign(project, "b", TEXT, one)
    write_campaign(project, "c", TEXT, one)
    write_campaign(project, "d", TEXT, one)
    write_campaign(project, "e", TEXT, one)
    for name, olds in (("a", "[b]"), ("b", "[a]"), ("c", "[a-old, d]"), ("e", "[a-old]")):
        path = project.root / "campaigns" / f"{name}.yaml"
        path.write_text(path.read_text() + f"moved_from: {olds}\n")
    result = project.run("validate")
    assert result.code == 1
    lines = sorted(line for line in result.err.splitlines() if "moved_from" in line)
    assert lines == [
        "campaigns/a.yaml:5: moved_from[0]: a -> b -> a is a cycle of renames; a campaign "
        "moves one way only: remove the moved_from that points back",
        "campaigns/b.yaml:5: moved_from[0]: b -> a -> b is a cycle of renames; a campaign "
        "moves one way only: remove the moved_from that points back",
        "campaigns/c.yaml:5: moved_from[0]: 'a-old' is also claimed by 'e' (campaigns/e.yaml:1); "
        "a former name moves to one campaign only: keep it in one moved_from",
        "campaigns/c.yaml:5: moved_from[1]: 'd' is also a campaign in the files "
        "(campaigns/d.yaml:1); its history cannot move while it is in use: remove that "
        "campaign, or remove it from moved_from",
        "campaigns/e.yaml:5: moved_from[0]: 'a-old' is also claimed by 'c' (campaigns/c.yaml:1); "
        "a former name moves to one campaign only: keep it in one moved_from",
    ], result.err
    assert "Traceback" not in result.output


def test_a_former_name_the_state_does_not_know_is_noted(project: ProjectDir) -> None:
    write_campaign(project, "water", TEXT, ["+12025550143"])
    path = project.root / "campaigns" / "water.yaml"
    path.write_text(path.read_text() + "moved_from: [watr]\n")
    plan = project.run("plan")
    assert plan.code == 0, plan
    assert (
        "note: moved_from watr (in water): the state knows no campaign watr, so there is no "
        "history to carry"
    ) in plan.out
    data = json.loads(project.run("plan", "--format", "json").out)
    assert data["moves"] == [{"from": "watr", "to": "water", "known": False, "recipients": 0}]


SCHEDULED = """\
name: drill
text: "Fire drill at ten."
send_at: "2031-01-06T09:00:00+01:00"
sender: ACME
voice_gender: male
voice_language: fr-FR
purpose: wholesale
recipients: ["+12025550143", "+12025550187"]
"""


def test_every_plan_format_says_when_and_how_the_calls_go_out(project: ProjectDir) -> None:
    project.write("campaigns/drill.yaml", SCHEDULED)
    write_campaign(project, "now", TEXT, ["+12025550143"])
    text = project.run("plan").out
    assert (
        "calls go out at 2031-01-06T09:00:00+01:00 (2031-01-06T08:00:00Z UTC); sender ACME; "
        "voice male fr-FR; purpose wholesale"
    ) in text
    assert (
        "calls go out now; sender (the provider's default); voice female en-US; purpose alert"
    ) in text

    data = json.loads(project.run("plan", "--format", "json").out)
    assert data["format_version"] == 1  # fields were added, none changed
    by_name = {c["name"]: c for c in data["campaigns"]}
    fields = ("send_at", "send_at_utc", "sender", "voice_gender", "voice_language", "purpose")
    assert {k: by_name["drill"][k] for k in fields} == {
        "send_at": "2031-01-06T09:00:00+01:00",
        "send_at_utc": "2031-01-06T08:00:00Z",
        "sender": "ACME",
        "voice_gender": "male",
        "voice_language": "fr-FR",
        "purpose": "wholesale",
    }
    assert by_name["now"]["send_at"] is None and by_name["now"]["send_now"] is True
    assert by_name["now"]["sender"] is None
    assert by_name["drill"]["call_settings"][0]["recipients"] == 2

    markdown_it = pytest.importorskip("markdown_it")
    markdown = project.run("plan", "--format", "markdown").out
    tokens = markdown_it.MarkdownIt("commonmark").enable("table").parse(markdown)
    cells = [t.children[0].content for t in tokens if t.type == "inline" and t.children]
    assert "2031-01-06T08:00:00Z" in cells and "now" in cells  # the table's time column
    fenced = "\n".join(t.content for t in tokens if t.type == "fence")
    assert "sender ACME; voice male fr-FR; purpose wholesale" in fenced


def test_an_older_copy_is_updated_after_a_rename_without_force(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    """The copy holds the old name the source no longer has: moved, not lost."""
    numbers = us_numbers(2)
    write_campaign(project, "water", TEXT, numbers)
    assert apply(project, emulator).code == 0
    assert project.run("state", "push", "copy.json").code == 0
    renamed(project, "water", "water-saturday", numbers)
    assert apply(project, emulator).code == 0
    pushed = project.run("state", "push", "copy.json")
    assert pushed.code == 0, pushed
    assert "No changes" in project.run("--state", "copy.json", "plan").out


@both_backends
def test_a_renamed_booking_stays_booked_and_a_later_change_cancels_it(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    """Bookings move with the history: the rename cancels nothing and books nothing; a text
    change under the new name cancels the booking made under the old one, then books anew."""
    numbers = us_numbers(3)
    when = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0).isoformat()
    project.write("campaigns/water.yaml", booked("water", TEXT, when, numbers))
    assert apply(project, emulator).code == 0
    (project.root / "campaigns" / "water.yaml").unlink()
    moved = booked("water-saturday", TEXT, when, numbers) + "moved_from: [water]\n"
    project.write("campaigns/water-saturday.yaml", moved)
    plan = project.run("plan")
    assert "~ moved: water → water-saturday" in plan.out and "cancel" not in plan.out, plan
    assert apply(project, emulator).code == 0
    assert (len(emulator.sends()), emulator.cancelled()) == (1, set())
    changed = booked("water-saturday", "The water is off on Sunday.", when, numbers)
    project.write("campaigns/water-saturday.yaml", changed + "moved_from: [water]\n")
    result = apply(project, emulator)
    assert result.code == 0, result
    assert emulator.calls() == {("The water is off on Sunday.", n): 1 for n in numbers}


def booked(name: str, text: str, when: str, numbers: list[str]) -> str:
    recipients = "".join(f'  - "{n}"\n' for n in numbers)
    return f'name: {name}\ntext: "{text}"\nsend_at: "{when}"\nrecipients:\n{recipients}'
