"""The fast JSON of a send and of a journal line is what json.dumps writes, byte for byte."""

from __future__ import annotations

import json

import pytest
from conftest import us_numbers

from runner.plan import Batch
from runner.recipients import digest_number
from runner.state.model import Accept, Intent, Outcome, entry_json, entry_to_dict

BODY = {
    "purpose": "alert",
    "sender": "ACME",
    "text": 'Bonjour, "recipients": [] é € \\ \u2028 {{ x }}',
    "voice_gender": "female",
    "voice_language": "fr-FR",
}


@pytest.mark.parametrize("simulate", [False, True])
@pytest.mark.parametrize(
    "numbers",
    [
        tuple(us_numbers(500)),
        ("+33612345678",),
        ("+1 202 555 0143", '+1"2025550143'),  # a hand-edited saved plan: escaped as json does
        ("+12025550143", "+1202555\\0143", "+1202555\x010143"),
    ],
)
def test_a_payload_is_sent_as_json_dumps_writes_it(
    numbers: tuple[str, ...], simulate: bool
) -> None:
    batch = Batch("c", "f" * 64, "rn-" + "a" * 32, BODY, numbers, simulate=simulate)
    expected = json.dumps(batch.payload(), ensure_ascii=False, separators=(",", ":"))
    assert batch.payload_json() == expected.encode()
    assert json.loads(batch.payload_json())["recipients"][0] == {"phone_number": numbers[0]}


@pytest.mark.parametrize(
    "digests",
    [
        tuple(digest_number(n) for n in us_numbers(500)),
        ("not hex", 'a "quoted" one', "é"),  # a hand-edited state: escaped as json does
    ],
)
def test_a_journal_line_is_what_json_dumps_writes(digests: tuple[str, ...]) -> None:
    entries = [
        Intent("rn-1", "camp", "f" * 64, BODY, digests, 1.5),
        Accept("camp", "f" * 64, BODY, digests, 2.5),
        Outcome("rn-1", "sent", 3.5, "ticket", 500, 25.0),
    ]
    for entry in entries:
        expected = json.dumps(entry_to_dict(entry), sort_keys=True, separators=(",", ":"))
        assert entry_json(entry) == expected.encode()
