"""Crafted state files and journals: a pull request can commit `runner.state.json` and its
journal, so every wrong type or shape in them ends in one `runner:` line that names the file and
what is wrong, never a traceback or "internal error"; nothing is sent and no file changes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import figures
import pytest
from conftest import API_ENV, ProjectDir
from hostile import assert_clean, digest_files, run_in_process

from runner.emulator import Emulator, EmulatorOptions

DIGEST = "a" * 64
INTENT = {
    "kind": "intent",
    "request_id": "rn-1",
    "campaign": "hello",
    "fingerprint": "f" * 64,
    "body": {"text": "Hi"},
    "recipients": [DIGEST],
    "time": 1_700_000_000.0,
}
OUTCOME = {"kind": "outcome", "request_id": "rn-1", "status": "sent", "time": 1_700_000_001.0}
SEND = {
    "request_id": "rn-0",
    "fingerprint": "f" * 64,
    "contacts": 1,
    "outcome": "sent",
    "time": 1_700_000_000.0,
}


def state(**campaign: Any) -> dict[str, Any]:
    base = {"messages": {}, "pending": {}, "sends": [], **campaign}
    return {"version": 1, "lineage": "l-1", "serial": 3, "campaigns": {"hello": base}}


MESSAGE = {"body": {"text": "Hi"}, "delivered": [DIGEST], "last_time": 1.0}

# (what is crafted, the snapshot, what the one line must say)
SNAPSHOTS = [
    (
        "a pending entry of the wrong kind",
        state(pending={"rn-1": OUTCOME}),
        'campaigns."hello".pending."rn-1": not the intent of request "rn-1"',
    ),
    (
        "a pending time as a string",
        state(pending={"rn-1": {**INTENT, "time": "2026-12-01T10:00:00Z"}}),
        'campaigns."hello".pending."rn-1".time: must be a time in seconds since 1970',
    ),
    (
        "an infinite pending time",
        state(pending={"rn-1": {**INTENT, "time": math.inf}}),
        'campaigns."hello".pending."rn-1".time: must be a time in seconds since 1970',
    ),
    (
        "pending recipients that are not digests",
        state(pending={"rn-1": {**INTENT, "recipients": [1, 2]}}),
        'campaigns."hello".pending."rn-1".recipients: must be a list of digests',
    ),
    (
        "a pending entry with an unknown field",
        state(pending={"rn-1": {**INTENT, "extra": 1}}),
        'campaigns."hello".pending."rn-1": unknown field "extra"',
    ),
    (
        "sends that are not records",
        state(sends=[1, 2]),
        'campaigns."hello".sends[0]: not an object',
    ),
    (
        "a send without its outcome",
        state(sends=[{k: v for k, v in SEND.items() if k != "outcome"}]),
        'campaigns."hello".sends[0]: "outcome" is missing',
    ),
    (
        "a send's contacts as text",
        state(sends=[{**SEND, "contacts": "many"}]),
        'campaigns."hello".sends[0].contacts: must be a whole number or null',
    ),
    (
        "a message body that is a list",
        state(messages={"f" * 64: {**MESSAGE, "body": ["Hi"]}}),
        f'campaigns."hello".messages."{"f" * 35}...".body: must be an object',
    ),
    (
        "a message time as a string",
        state(messages={"f" * 64: {**MESSAGE, "last_time": "yesterday"}}),
        f'campaigns."hello".messages."{"f" * 35}...".last_time: must be a time in seconds '
        "since 1970",
    ),
    (
        "a campaign that is a list",
        {"version": 1, "lineage": "l-1", "serial": 3, "campaigns": {"hello": []}},
        'campaigns."hello": not an object',
    ),
    (
        "a lineage that is a number",
        {"version": 1, "lineage": 7, "serial": 3, "campaigns": {}},
        "lineage: must be a string",
    ),
]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(EmulatorOptions(credit=1e9)) as running:
        yield running


def crafted_project(project: ProjectDir, snapshot: bytes, journal: bytes | None = None) -> None:
    project.write(
        "campaigns/hello.yaml",
        'name: hello\ntext: "Hi"\nrecipients: ["+12025550143", "+12025550144"]\n',
    )
    (project.root / "runner.state.json").write_bytes(snapshot)
    if journal is not None:
        (project.root / "runner.state.json.journal").write_bytes(journal)


def assert_one_state_line(project: ProjectDir, emulator: Emulator, expected: str) -> None:
    """plan, apply and `state list` each end in the one line; nothing changes or is sent."""
    before = digest_files(project.root)
    sent = len(emulator.sends())
    root = str(project.root)
    for args in (
        ("plan",),
        ("apply", "--auto-approve", "--api-url", emulator.url),
        ("state", "list"),
    ):
        result = run_in_process("-C", root, *args, env=API_ENV, seconds=20)
        assert_clean(result)
        assert result.code == 1, result
        assert result.out == "", result
        assert result.err.splitlines() == [expected], result
    after = digest_files(project.root)
    after.pop("runner.state.json.lock", None)  # apply's flock needs a file; it stays, empty
    assert after == before
    assert len(emulator.sends()) == sent
    figures.add("crafted states refused")


@pytest.mark.parametrize(
    ("snapshot", "said"), [case[1:] for case in SNAPSHOTS], ids=[case[0] for case in SNAPSHOTS]
)
def test_a_crafted_state_is_one_line(
    project: ProjectDir, emulator: Emulator, snapshot: dict[str, Any], said: str
) -> None:
    crafted_project(project, json.dumps(snapshot).encode())
    where = project.root / "runner.state.json"
    expected = (
        f"runner: {where} is not a valid runner state ({said}); "
        f"restore it from {where}.backup or from git"
    )
    assert_one_state_line(project, emulator, expected)


JOURNALS = [
    ("an intent with a time as a string", {**INTENT, "time": "now"}, '"time": must be a time'),
    ("a record of an unknown kind", {**OUTCOME, "kind": "send"}, 'unknown kind "send"'),
    ("a record that is a list", [OUTCOME], "not an object"),
    ("a resolve whose verdict is text", {"kind": "resolve", "campaign": "hello", "sent": "yes",
                                         "time": 1.0}, '"sent": must be true or false'),
]  # fmt: skip


@pytest.mark.parametrize("last", [False, True], ids=["then a good record", "as the last line"])
@pytest.mark.parametrize(
    ("record", "said"), [case[1:] for case in JOURNALS], ids=[case[0] for case in JOURNALS]
)
def test_a_crafted_journal_record_is_one_line(
    project: ProjectDir, emulator: Emulator, record: Any, said: str, last: bool
) -> None:
    """A whole record of the wrong shape is no torn write: even as the last line it is refused,
    not skipped."""
    lines = [json.dumps(INTENT), json.dumps(record)] + ([] if last else [json.dumps(OUTCOME)])
    crafted_project(project, json.dumps(state()).encode(), "\n".join(lines).encode() + b"\n")
    journal = project.root / "runner.state.json.journal"
    result = run_in_process("-C", str(project.root), "plan", seconds=20)
    assert_clean(result)
    lines_out = result.err.splitlines()
    assert len(lines_out) == 1, result
    assert lines_out[0].startswith(f"runner: {journal}:2: corrupt journal record ("), result
    assert said.replace('"time"', "record.time").replace('"sent"', "record.sent") in lines_out[0]
    assert_one_state_line(project, emulator, lines_out[0])


def test_a_torn_last_line_is_still_skipped(project: ProjectDir, emulator: Emulator) -> None:
    """The writer died mid-append: the half line is dropped, the rest of the journal is used."""
    torn = json.dumps(OUTCOME)[:20].encode()
    crafted_project(
        project, json.dumps(state()).encode(), json.dumps(INTENT).encode() + b"\n" + torn
    )
    result = run_in_process("-C", str(project.root), "state", "list", seconds=20)
    assert result.code == 0, result
    assert "1 pending" in result.out, result


@pytest.mark.parametrize("project", ["postgresql"], indirect=True)
def test_a_crafted_database_record_is_one_line(project: ProjectDir) -> None:
    """Rows of runner_records go through the same checks as journal lines."""
    from backends import query

    crafted_project(project, b"")
    (project.root / "runner.state.json").unlink()
    assert project.run("state", "accept", "hello").code == 0
    record = json.dumps({**INTENT, "time": "now"})
    query(
        project,
        "INSERT INTO runner_records (project, kind, record) VALUES (%s, 'intent', %s)",
        record,
    )
    for command in (("plan",), ("state", "list")):
        result = project.run(*command)
        assert_clean(result)
        assert result.code == 1, result
        assert len(result.err.splitlines()) == 1, result
        assert "is corrupt (record.time: must be a time in seconds since 1970)" in result.err
    figures.add("crafted states refused")


@pytest.mark.parametrize("time_value", ["x", 1e300, None])
def test_a_crafted_lock_file_is_one_line(project: ProjectDir, time_value: Any) -> None:
    """A committed lock file whose holder's time cannot be shown: force-unlock says no, plainly."""
    crafted_project(project, json.dumps(state()).encode())
    lock = {"id": "a", "holder": "h", "host": "x", "pid": 1, "time": time_value, "operation": "o"}
    (project.root / "runner.state.json.lock").write_text(json.dumps(lock))
    before = digest_files(project.root)
    result = run_in_process("-C", str(project.root), "force-unlock", "b")
    assert_clean(result)
    assert result.code == 1, result
    assert result.err == "runner: lock b is not the current lock\n", result
    assert digest_files(project.root) == before
    figures.add("crafted states refused")
