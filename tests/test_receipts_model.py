"""Receipt bodies as the provider sends them: JSON and form, the Voice SMS and the newer shape."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from conftest import us_numbers

from runner.receipts.model import MAX_BODY, NEVER_AGAIN, STATUSES, parse_receipt
from runner.recipients import digest_number

NUMBER = us_numbers(1)[0]
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
OLD = {
    "message_id": "voice_5f44ebf9e47b7",
    "number": NUMBER,
    "status": "BUSY",
    "delivery_date": "2026-11-04 11:11:45",
    "call_duration": "12",
    "charged_duration": "30",
}
NEW = {
    "channel": "voice_sms",
    "message_id": "voice_5f44ebf9e47b7",
    "number": NUMBER,
    "status": "DELIVERED",
    "delivery_date": "2026-11-04 11:11:45",
    "meta_data": {"call_duration": 12, "charged_duration": 30},
}


def test_the_old_shape_as_json_and_as_a_form_give_one_receipt() -> None:
    from_json = parse_receipt(JSON, json.dumps(OLD).encode(), received=1.0)
    from_form = parse_receipt(FORM + "; charset=utf-8", urlencode(OLD).encode(), received=1.0)
    assert from_json == from_form
    assert from_json.ticket == "voice_5f44ebf9e47b7"
    assert from_json.digest == digest_number(NUMBER)
    assert (from_json.status, from_json.delivery_date) == ("BUSY", "2026-11-04 11:11:45")
    assert (from_json.call_duration, from_json.charged_duration) == (12, 30)


def test_the_new_shape_reads_durations_under_meta_data_in_json_and_form() -> None:
    receipt = parse_receipt(JSON, json.dumps(NEW).encode())
    assert (receipt.status, receipt.call_duration, receipt.charged_duration) == (
        "DELIVERED",
        12,
        30,
    )
    flat = {k: v for k, v in NEW.items() if k != "meta_data"}
    form = urlencode({**flat, "meta_data[call_duration]": 12, "meta_data[charged_duration]": 30})
    assert parse_receipt(FORM, form.encode()).call_duration == 12


def test_a_number_without_its_plus_has_the_same_digest() -> None:
    receipt = parse_receipt(JSON, json.dumps({**OLD, "number": NUMBER[1:]}).encode())
    assert receipt.digest == digest_number(NUMBER)


def test_durations_and_date_are_optional() -> None:
    bare = {k: OLD[k] for k in ("message_id", "number", "status")}
    receipt = parse_receipt(JSON, json.dumps(bare).encode())
    assert (receipt.delivery_date, receipt.call_duration, receipt.charged_duration) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"message_id": None}, "message_id: missing"),
        ({"message_id": "a b"}, "message_id: not a ticket"),
        ({"number": None}, "number: missing"),
        ({"number": "+1555"}, "number: not a valid phone number"),
        ({"number": "call " + NUMBER}, "number: not a valid phone number"),
        ({"status": "not a word"}, "status: 'not a word' is not a status word"),
        ({"status": 7}, "status: 'int' is not a status word"),
        ({"status": None}, "status: missing"),
        ({"delivery_date": "04/11/2026"}, "delivery_date: not a date as Y-m-d H:i:s"),
        ({"call_duration": -1}, "call_duration: not a whole number"),
        ({"charged_duration": "1.5"}, "charged_duration: not a whole number"),
        ({"channel": "sms"}, "channel: 'sms' is not voice_sms"),
    ],
)
def test_each_problem_is_one_line_without_the_number(
    change: dict[str, object], problem: str
) -> None:
    body = {k: v for k, v in {**OLD, **change}.items() if v is not None}
    with pytest.raises(ValueError) as raised:
        parse_receipt(JSON, json.dumps(body).encode())
    message = str(raised.value)
    assert message.startswith(problem) and "\n" not in message
    assert NUMBER[2:] not in message


@pytest.mark.parametrize(
    ("content_type", "body", "problem"),
    [
        (JSON, b"{not json", "body: not valid JSON"),
        (JSON, b"[1, 2]", "body: not a JSON object"),
        (JSON, b"\xff\xfe", "body: not valid JSON"),
        (FORM, b"a=%ZZ&&=", "body: not a valid form"),
        ("text/plain", b"x", "Content-Type: 'text/plain' is not JSON or a form"),
        (JSON, b" " * (MAX_BODY + 1), "body: larger than"),
    ],
)
def test_malformed_bodies_are_refused(content_type: str, body: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(")):
        parse_receipt(content_type, body)


def test_never_again_are_statuses() -> None:
    assert set(STATUSES) >= NEVER_AGAIN
