"""plan through the real CLI: categories in every format, exit codes, saved plans, golden ids."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    API_ENV,
    BASIC_CONFIG,
    EmulatorProcess,
    ProjectDir,
    Result,
    us_numbers,
    write_campaign,
)

from runner.plan import derive_request_id
from runner.render import fingerprint_message

GOLDEN = Path(__file__).parent / "golden" / "request_ids.json"
PRICED_CONFIG = """
default_region: US
defaults:
  purpose: alert
  voice_gender: female
  voice_language: en-US
pricing:
  default: 0.07
  "1": 0.04
  AU: 0.1
"""
AUSTRALIAN = "+61491570156"  # an ACMA number reserved for fiction


@pytest.fixture
def priced(project: ProjectDir) -> ProjectDir:
    project.write("runner.yaml", PRICED_CONFIG)
    return project


def plan(project: ProjectDir, *args: str) -> Result:
    result = project.run("plan", *args)
    assert result.code == 0, result
    return result


def plan_data(project: ProjectDir, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(plan(project, "--format", "json", *args).out)
    return data


def apply(project: ProjectDir, url: str, *args: str) -> Result:
    return project.run("apply", "--auto-approve", "--api-url", url, *args, env=API_ENV, stdin="")


# categories ----------------------------------------------------------------------------------


def test_new_campaign_in_every_format(priced: ProjectDir) -> None:
    write_campaign(priced, "launch", "The launch is at noon.", [*us_numbers(2), AUSTRALIAN])
    assert plan(priced).out == (
        "+ launch  new campaign  (campaigns/launch.yaml:1)\n"
        "    3 recipients in 1 batch, estimated 0.18 €\n"
        "    calls go out now; sender (the provider's default); voice female en-US; purpose alert\n"
        "    | The launch is at noon.\n"
        "\n"
        "Plan: 1 campaign, 3 calls in 1 batch, estimated cost 0.18 €.\n"
    )
    data = plan_data(priced)
    assert data["format_version"] == 1
    assert (data["lineage"], data["serial"], data["has_changes"]) == (None, 0, True)
    assert data["summary"] == {
        "campaigns": 1,
        "batches": 1,
        "recipients": 3,
        "estimated_cost": 0.18,
        "blocked": [],
        "cancels": 0,
        "cancelled_calls": 0,
        "moves": 0,
    }
    [campaign] = data["campaigns"]
    assert campaign["categories"] == ["new campaign"]
    assert campaign["texts"] == ["The launch is at noon."]
    markdown = plan(priced, "--format", "markdown").out
    assert markdown.startswith("### runner plan\n\n**3 calls** in 1 batch, estimated **0.18 €**.")
    assert "| `launch` | new campaign | 3 | 1 | 0.18 € |" in markdown
    assert "<details><summary><code>launch</code>: new campaign</summary>" in markdown


def test_batches_counts_and_cost(priced: ProjectDir) -> None:
    numbers = us_numbers(1201)
    write_campaign(priced, "outage", "Power is off.", [*numbers, AUSTRALIAN])
    data = plan_data(priced, "--show-recipients")
    [campaign] = data["campaigns"]
    batches = campaign["batches"]
    assert [b["recipients"] for b in batches] == [500, 500, 202]
    everyone = [n for b in batches for n in b["numbers"]]
    assert everyone == sorted([*numbers, AUSTRALIAN])  # grouped, sorted, cut
    assert data["summary"]["estimated_cost"] == round(1201 * 0.04 + 0.1, 4)
    assert [b["estimated_cost"] for b in batches] == [20.0, 20.0, round(201 * 0.04 + 0.1, 4)]
    assert "1,202 recipients in 3 batches, estimated 48.14 €" in plan(priced).out


def test_message_changed_shows_old_and_new_text(project: ProjectDir) -> None:
    numbers = us_numbers(3)
    write_campaign(project, "notice", "The office opens at 9.", numbers)
    project.run("state", "accept", "notice")
    write_campaign(project, "notice", "The office opens at 10.", numbers)
    assert plan(project).out.startswith(
        "~ notice  message changed  (campaigns/notice.yaml:1)\n"
        "    3 recipients in 1 batch, estimated 0.15 € (3 recipients hear a changed message)\n"
        "    calls go out now; sender (the provider's default); voice female en-US; purpose alert\n"
        "    - The office opens at 9.\n"
        "    + The office opens at 10.\n"
    )
    [campaign] = plan_data(project)["campaigns"]
    assert (campaign["categories"], campaign["changed"]) == (["message changed"], 3)
    [diff] = campaign["diffs"]
    assert (diff["old"]["text"], diff["new"]["text"]) == (
        "The office opens at 9.",
        "The office opens at 10.",
    )
    markdown = plan(project, "--format", "markdown").out
    assert "| `notice` | message changed | 3 | 1 | 0.15 € |" in markdown
    assert "```diff\n" in markdown
    assert "    - The office opens at 9.\n    + The office opens at 10.\n" in markdown


def test_recipients_added_alone_are_planned(project: ProjectDir) -> None:
    first, added = us_numbers(3), us_numbers(2, start=3)
    write_campaign(project, "notice", "Hello.", first)
    project.run("state", "accept", "notice")
    write_campaign(project, "notice", "Hello.", first + added)
    assert (
        "    2 recipients in 1 batch, estimated 0.10 € (2 recipients added)\n" in plan(project).out
    )
    [campaign] = plan_data(project, "--show-recipients")["campaigns"]
    assert campaign["categories"] == ["recipients added"]
    assert campaign["added"] == 2
    assert [b["numbers"] for b in campaign["batches"]] == [added]
    markdown = plan(project, "--format", "markdown").out
    assert "| `notice` | recipients added | 2 | 1 | 0.10 € |" in markdown


def test_removed_recipients_and_campaigns_are_informational(project: ProjectDir) -> None:
    numbers = us_numbers(4)
    write_campaign(project, "notice", "Hello.", numbers)
    write_campaign(project, "old", "Old news.", us_numbers(2, start=10))
    project.run("state", "accept", "notice")
    project.run("state", "accept", "old")
    write_campaign(project, "notice", "Hello.", numbers[:3])
    (project.root / "campaigns" / "old.yaml").unlink()
    assert plan(project).out == (
        "~ notice  recipients removed  (campaigns/notice.yaml:1)\n"
        "    1 delivered recipient no longer in the files (nobody is called for this)\n"
        "\n"
        "- old  campaign removed from the files: 2 recipients were called; nothing is sent\n"
        "\n"
        "No changes: every recipient has heard the current version of every message.\n"
    )
    assert project.run("plan", "--detailed-exitcode").code == 0
    data = plan_data(project)
    assert data["has_changes"] is False
    assert [(c["name"], c["categories"], c["removed"]) for c in data["campaigns"]] == [
        ("notice", ["recipients removed"], 1)
    ]
    assert data["removed_campaigns"] == [{"name": "old", "delivered": 2}]
    markdown = plan(project, "--format", "markdown").out
    assert "No changes: nothing would be sent." in markdown
    assert "| `notice` | recipients removed | 0 | 0 | 0.00 € |" in markdown
    assert "| `old` | campaign removed (nothing sent) | 0 | 0 | 0.00 € |" in markdown


def test_pending_sends_are_shown_first_and_resent_with_the_same_id(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    numbers = us_numbers(3)
    write_campaign(project, "notice", "Hello.", numbers)
    failing = emulators("--rate-500-before", "1")  # answers the balance, never a send
    failed = apply(project, failing.url)
    assert failed.code == 1
    assert "unknown HTTP 500 after 6 attempt(s)" in failed.out
    [intent] = plan_data(project)["campaigns"][0]["pending"]
    request_id = intent["request_id"]
    assert intent["contacts"] == 3 and intent["blocked"] is None

    text = plan(project).out
    assert text.startswith("! notice  pending  (campaigns/notice.yaml:1)\n")
    assert f"    pending {request_id}, 3 contacts, 0.0 h old: will be re-sent" in text
    [campaign] = plan_data(project)["campaigns"]
    assert campaign["categories"] == ["pending"]
    assert [(b["request_id"], b["resend"]) for b in campaign["batches"]] == [(request_id, True)]
    markdown = plan(project, "--format", "markdown").out
    assert "| `notice` | pending | 3 | 1 | 0.15 € |" in markdown
    assert f"pending {request_id}" in markdown
    assert project.run("plan", "--detailed-exitcode").code == 2

    emulator = emulators()
    assert apply(project, emulator.url).code == 0
    [sent] = emulator.sends()
    assert sent["request_id"] == request_id
    assert sorted(sent["recipients"]) == numbers
    assert project.run("plan", "--detailed-exitcode").code == 0


def make_pending(project: ProjectDir, emulators: Callable[..., EmulatorProcess]) -> str:
    """An apply whose every attempt gets 429 leaves its batch pending; returns its request_id."""
    refusing = emulators("--rate-429", "1", "--retry-after", "0")
    assert apply(project, refusing.url).code == 1
    [pending] = plan_data(project)["campaigns"][0]["pending"]
    request_id: str = pending["request_id"]
    return request_id


def test_a_pending_send_older_than_the_dedup_window_blocks_its_campaign(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    write_campaign(project, "notice", "Hello.", us_numbers(3))
    request_id = make_pending(project, emulators)
    state_file = project.root / "runner.state.json"
    state = json.loads(state_file.read_text(encoding="utf-8"))
    state["campaigns"]["notice"]["pending"][request_id]["time"] -= 24 * 3600  # a day passes
    state_file.write_text(json.dumps(state), encoding="utf-8")

    text = plan(project).out
    assert text.startswith("! notice  blocked  (campaigns/notice.yaml:1)\n")
    assert (
        f"    pending {request_id}, 3 contacts, 24.0 h old: older than 23 h, past the provider's "
        "duplicate check; check the provider, then run "
        f"`runner state resolve notice --request-id {request_id} --sent|--not-sent`"
    ) in text
    assert text.endswith("Blocked until resolved: notice.\n")
    data = plan_data(project)
    assert data["summary"]["blocked"] == ["notice"]
    assert data["campaigns"][0]["batches"] == []
    assert project.run("plan", "--detailed-exitcode").code == 2
    assert "| `notice` | blocked | 0 | 0 | 0.00 € |" in plan(project, "--format", "markdown").out

    emulator = emulators()
    blocked = apply(project, emulator.url)
    assert blocked.code == 1
    assert "blocked: notice has sends of unknown outcome" in blocked.out
    assert emulator.sends() == []
    assert project.run("state", "resolve", "notice", "--not-sent").code == 0
    assert apply(project, emulator.url).code == 0
    assert len(emulator.sends()) == 1


def test_a_pending_send_the_files_no_longer_produce_blocks(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    numbers = us_numbers(3)
    write_campaign(project, "notice", "Hello.", numbers)
    request_id = make_pending(project, emulators)
    write_campaign(project, "notice", "Hello, edited while unsure.", numbers)
    text = plan(project).out
    assert f"pending {request_id}, 3 contacts, 0.0 h old: the files no longer produce" in text
    assert project.run("plan", "--detailed-exitcode").code == 2
    write_campaign(project, "notice", "Hello.", [*numbers, *us_numbers(1, start=50)])
    [campaign] = plan_data(project)["campaigns"]  # an added recipient keeps the batch intact
    assert [b["request_id"] for b in campaign["batches"]][:1] == [request_id]
    assert [b["recipients"] for b in campaign["batches"]] == [3, 1]


# formats and exit codes ------------------------------------------------------------------------


def test_markdown_stays_under_the_comment_limit(project: ProjectDir) -> None:
    numbers = us_numbers(1200)
    documents = [
        f'name: campaign-with-a-long-name-{i:04d}\ntext: "Hello number {i}."\nrecipients: ["{n}"]\n'
        for i, n in enumerate(numbers)
    ]
    project.write("campaigns/many.yaml", "---\n".join(documents))
    markdown = plan(project, "--format", "markdown").out
    assert len(markdown) < 60_000
    assert "more campaigns not shown: the comment is kept under 60,000 characters" in markdown
    assert "more_ | not shown: see `runner plan`" in markdown
    assert "**1,200 calls** in 1,200 batches" in markdown


def test_json_is_stable_whatever_the_file_order(project: ProjectDir) -> None:
    numbers = us_numbers(700)
    write_campaign(project, "notice", "Hello.", numbers)
    first = plan(project, "--format", "json", "--show-recipients").out
    assert plan(project, "--format", "json", "--show-recipients").out == first
    shuffled = numbers[:]
    random.Random(5).shuffle(shuffled)
    write_campaign(project, "notice", "Hello.", shuffled)
    assert plan(project, "--format", "json", "--show-recipients").out == first
    data = json.loads(first)
    assert list(data) == [
        "format_version",
        "lineage",
        "serial",
        "has_changes",
        "target",
        "summary",
        "campaigns",
        "removed_campaigns",
        "moves",
        "rename_hints",
    ]


def test_detailed_exitcode(project: ProjectDir) -> None:
    assert project.run("plan", "--detailed-exitcode").code == 0  # nothing at all
    write_campaign(project, "notice", "Hello.", us_numbers(2))
    assert project.run("plan", "--detailed-exitcode").code == 2
    for fmt in ("json", "markdown"):
        assert project.run("plan", "--detailed-exitcode", "--format", fmt).code == 2
    project.run("state", "accept", "notice")
    assert project.run("plan", "--detailed-exitcode").code == 0
    for wrong in (("--bogus",), ("--format", "xml"), ("--var", "novalue")):
        result = project.run("plan", "--detailed-exitcode", *wrong)
        assert result.code == 1, wrong
        assert "Traceback" not in result.err
    project.write("campaigns/broken.yaml", "name: [unclosed\n")
    broken = project.run("plan", "--detailed-exitcode")
    assert broken.code == 1
    assert "campaigns/broken.yaml:" in broken.err


def test_usage_errors_never_exit_2(project: ProjectDir) -> None:
    for args in (("--nope",), ("plann",), ("plan", "extra-arg"), ("apply", "--concurrency", "0")):
        result = project.run(*args, "--detailed-exitcode")
        assert result.code == 1, (args, result)


# plan never writes ---------------------------------------------------------------------------


def test_plan_never_writes_the_state(project: ProjectDir, tmp_path: Path) -> None:
    write_campaign(project, "notice", "Hello.", us_numbers(3))
    plan(project)
    plan(project, "--out", str(tmp_path / "saved.json"))
    assert sorted(p.name for p in project.root.iterdir()) == ["campaigns", "runner.yaml"]
    project.run("state", "accept", "notice")
    write_campaign(project, "notice", "Hello again.", us_numbers(3))
    state = project.root / "runner.state.json"
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in project.root.glob("runner.*")}
    for fmt in ("text", "json", "markdown"):
        project.run("plan", "--format", fmt, "--detailed-exitcode")
    plan(project, "--out", str(tmp_path / "saved.json"))
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in project.root.glob("runner.*")}
    assert after == before
    assert state.name in after
    assert not (project.root / "runner.state.json.journal").exists()


# saved plans ---------------------------------------------------------------------------------


def saved_payloads(path: Path) -> list[dict[str, Any]]:
    return [b["payload"] for b in json.loads(path.read_text(encoding="utf-8"))["batches"]]


def test_saved_plan_applies_exactly_its_payloads(
    project: ProjectDir, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    write_campaign(project, "notice", "Hello.", us_numbers(600))
    write_campaign(project, "drill", "Drill at noon.", us_numbers(2, start=900))
    saved = tmp_path / "plan.json"
    plan(project, "--out", str(saved))
    payloads = saved_payloads(saved)
    assert len(payloads) == 3
    write_campaign(project, "notice", "The files changed since.", us_numbers(600))
    result = apply(project, emulator.url, str(saved))
    assert result.code == 0, result
    assert "Plan: 2 campaigns, 602 calls in 3 batches" in result.out  # the saved plan, shown
    assert "| Hello." in result.out and "changed since" not in result.out
    sends = sorted(emulator.sends(), key=lambda s: s["request_id"])
    assert [
        (s["request_id"], s["text"], s["recipients"], s["purpose"], s["voice_language"])
        for s in sends
    ] == [
        (
            p["request_id"],
            p["text"],
            [r["phone_number"] for r in p["recipients"]],
            p["purpose"],
            p["voice_language"],
        )
        for p in sorted(payloads, key=lambda p: p["request_id"])
    ]
    again = apply(project, emulator.url, str(saved))  # the state moved on: stale now
    assert again.code == 1
    assert "is stale" in again.err
    assert len(emulator.sends()) == 3


def test_simulated_sends_never_carry_the_real_request_id(
    project: ProjectDir, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    numbers = us_numbers(2)
    write_campaign(project, "notice", "Hello.", numbers)
    body = {
        "text": "Hello.",
        "purpose": "alert",
        "voice_gender": "female",
        "voice_language": "en-US",
    }  # the message as BASIC_CONFIG's defaults make it
    real_id = derive_request_id("notice", fingerprint_message(body), tuple(numbers))
    project.write(
        "campaigns/notice.yaml",
        (project.root / "campaigns/notice.yaml").read_text() + "simulation_mode: true\n",
    )
    saved = tmp_path / "plan.json"
    plan(project, "--out", str(saved))
    [payload] = saved_payloads(saved)
    assert payload["simulation_mode"] is True
    assert payload["request_id"] == "rs-" + real_id.removeprefix("rn-")
    result = apply(project, emulator.url, str(saved))
    assert result.code == 0, result
    assert emulator.sends() == []  # simulated: nothing recorded by the provider
    assert "The state is empty" in project.run("state", "list").out


def test_stale_plan_is_refused(
    project: ProjectDir, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    write_campaign(project, "notice", "Hello.", us_numbers(3))
    write_campaign(project, "other", "Other.", us_numbers(2, start=3))
    project.run("state", "accept", "other")
    saved = tmp_path / "plan.json"
    plan(project, "--out", str(saved))
    project.run("state", "forget", "other")
    result = apply(project, emulator.url, str(saved))
    assert result.code == 1
    assert "is stale: the state changed since it was made (serial 1, now 2); plan again" in (
        result.err
    )
    assert emulator.sends() == []


def test_foreign_plan_is_refused(
    project: ProjectDir, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    write_campaign(project, "notice", "Hello.", us_numbers(3))
    project.run("state", "accept", "notice")
    (tmp_path / "other").mkdir()
    other = ProjectDir(tmp_path / "other")
    other.write("runner.yaml", BASIC_CONFIG)
    write_campaign(other, "notice", "Hello.", us_numbers(3))
    write_campaign(other, "elsewhere", "Elsewhere.", us_numbers(2, start=5))
    other.run("state", "accept", "notice")
    saved = tmp_path / "foreign.json"
    plan(other, "--out", str(saved))
    result = apply(project, emulator.url, str(saved))
    assert result.code == 1
    assert "was made for another state" in result.err
    assert emulator.sends() == []


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["batches"][0]["payload"].update(text="Edited."), "does not match its payload"),
        (
            lambda d: d["batches"][0]["payload"]["recipients"].append(
                {"phone_number": "+12015550199"}
            ),
            "does not match its payload",
        ),
        (lambda d: d["batches"][0]["payload"].update(request_id="rn-0"), "does not match"),
        (lambda d: d["batches"][0].pop("payload"), "batch 1 of the saved plan is malformed"),
        (lambda d: d.pop("lineage"), "is stale"),
        (lambda d: d.update(serial=5), "is stale: the state changed since it was made (serial 5"),
        (lambda d: d.update(format_version=99), "has plan format 99"),
        (lambda d: d.update(kind="something"), "is not a runner plan"),
    ],
)
def test_edited_plan_is_refused(
    project: ProjectDir,
    emulator: EmulatorProcess,
    tmp_path: Path,
    edit: Callable[[dict[str, Any]], None],
    message: str,
) -> None:
    write_campaign(project, "notice", "Hello.", us_numbers(3))
    saved = tmp_path / "plan.json"
    plan(project, "--out", str(saved))
    data = json.loads(saved.read_text(encoding="utf-8"))
    edit(data)
    saved.write_text(json.dumps(data), encoding="utf-8")
    result = apply(project, emulator.url, str(saved))
    assert result.code == 1
    assert message in result.err
    assert "Traceback" not in result.err
    assert emulator.sends() == []


def test_saved_plan_holds_no_credentials(project: ProjectDir, tmp_path: Path) -> None:
    write_campaign(project, "notice", "Hello.", us_numbers(2))
    saved = tmp_path / "plan.json"
    result = project.run("plan", "--out", str(saved), env=API_ENV)
    assert result.code == 0
    text = saved.read_text(encoding="utf-8")
    assert API_ENV["OCTOPUSH_API_KEY"] not in text
    assert API_ENV["OCTOPUSH_API_LOGIN"] not in text
    assert not any(p.name.startswith(".plan.json") for p in tmp_path.iterdir())


# golden identities -----------------------------------------------------------------------------


def golden() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(GOLDEN.read_text(encoding="utf-8"))
    return data


def test_golden_fingerprints() -> None:
    for vector in golden()["fingerprints"]:
        assert fingerprint_message(vector["body"]) == vector["fingerprint"]
        reordered = dict(reversed(list(vector["body"].items())))
        assert fingerprint_message(reordered) == vector["fingerprint"]


def test_golden_request_ids() -> None:
    ids = set()
    for vector in golden()["request_ids"]:
        numbers, call = tuple(vector["numbers"]), vector.get("call", 1)  # call 2+: a call again
        expected = vector["request_id"]
        ids.add(expected)
        assert derive_request_id(vector["campaign"], vector["fingerprint"], numbers, call=call) == (
            expected
        )
        backwards = tuple(reversed(numbers))
        assert derive_request_id(
            vector["campaign"], vector["fingerprint"], backwards, call=call
        ) == (expected)
    assert len(ids) == len(golden()["request_ids"])  # each call of a batch has its own id


def test_golden_ids_through_the_cli(project: ProjectDir) -> None:
    """The whole pipeline, files to plan, lands on the golden vector."""
    vector = golden()["request_ids"][0]
    assert vector["campaign"] == "golden-check"
    assert vector["fingerprint"] == golden()["fingerprints"][0]["fingerprint"]
    write_campaign(project, "golden-check", "Hello.", list(reversed(vector["numbers"])))
    [batch] = plan_data(project)["campaigns"][0]["batches"]
    assert (batch["fingerprint"], batch["request_id"]) == (
        vector["fingerprint"],
        vector["request_id"],
    )


def test_markdown_shows_a_sample_of_a_campaign_with_thousands_of_texts(project: ProjectDir) -> None:
    numbers = us_numbers(2000)
    rows = "".join(f"{n},Person {i:04d}\n" for i, n in enumerate(numbers))
    project.write("contacts/all.csv", "phone_number,first_name\n" + rows)
    project.write(
        "campaigns/personal.yaml",
        "name: personal\n"
        'text: "Hello {{ recipient.first_name }}, your meter will be read on Monday morning, '
        'between nine and noon. Thank you."\n'
        "recipients:\n  - file: contacts/all.csv\n",
    )
    markdown = plan(project, "--format", "markdown").out
    assert len(markdown) < 60_000
    assert "not shown" not in markdown
    assert "**2,000 calls** in 2,000 batches, estimated **100.00 €**." in markdown
    assert "| `personal` | new campaign | 2,000 | 2,000 | 100.00 € |" in markdown
    text = "Hello Person {:04d}, your meter will be read on Monday morning, between nine and noon."
    assert (
        "```diff\n"
        "+ personal  new campaign  (campaigns/personal.yaml:1)\n"
        "    2,000 recipients in 2,000 batches, estimated 100.00 €\n"
        "    calls go out now; sender (the provider's default); voice female en-US; purpose alert\n"
        f"    | {text.format(0)} Thank you.\n"
        f"    | {text.format(1)} Thank you.\n"
        f"    | {text.format(2)} Thank you.\n"
        "    ... and 1,997 more messages (2,000 messages in all); `runner plan` shows every text\n"
        "```\n"
    ) in markdown


def test_a_plan_nested_past_pythons_limit_is_refused_in_one_line(
    project: ProjectDir, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    write_campaign(project, "notice", "Hello.", us_numbers(3))
    saved = tmp_path / "plan.json"
    saved.write_text('{"cancels": ' + "[" * 100_000 + "\n", encoding="utf-8")
    result = apply(project, emulator.url, str(saved))
    assert result.code == 1 and "is not a runner plan (invalid JSON" in result.err, result
    assert emulator.sends() == []
