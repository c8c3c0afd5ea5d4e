"""The emulator over real loopback HTTP, driven with plain requests."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from runner.emulator import (
    CODES,
    DEDUP_WINDOW,
    Emulator,
    EmulatorOptions,
    Fault,
    PayloadChecker,
    problems_in,
)

LOGIN, KEY = "acme", "k3y-that-must-stay-secret"
HEADERS = {"api-login": LOGIN, "api-key": KEY}
TICKET = re.compile(r"^voice_[0-9a-f]{13}$")
RECORD_FIELDS = {
    *("ticket_number", "request_id", "time", "text", "recipients", "sender", "send_at"),
    *("purpose", "voice_gender", "voice_language", "total_cost"),
}


def payload(**changes: Any) -> dict[str, Any]:
    """A valid body with two recipients; a change to None removes the field."""
    body: dict[str, Any] = {
        "text": "Hello, maintenance starts Saturday at 10 PM.",
        "recipients": [{"phone_number": "+33612345678"}, {"phone_number": "+33698765432"}],
        "sender": "ACME",
        "send_at": "2026-12-04T09:00:00+01:00",
        "purpose": "alert",
        "voice_gender": "female",
        "voice_language": "en-GB",
        "request_id": "rn-0001",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def record(tmp_path: Path) -> Path:
    return tmp_path / "sends.jsonl"


@pytest.fixture
def emulator(record: Path) -> Iterator[Emulator]:
    with Emulator(EmulatorOptions(login=LOGIN, key=KEY, record=str(record))) as running:
        yield running


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers.update(HEADERS)
        yield session


def send(http: requests.Session, emulator: Emulator, body: Any) -> requests.Response:
    return http.post(f"{emulator.url}/voice-campaign/send", json=body)


def start(**options: Any) -> Emulator:
    return Emulator(EmulatorOptions(**options)).start()


def test_accepts_a_valid_send_and_records_it(
    emulator: Emulator, http: requests.Session, record: Path
) -> None:
    response = send(http, emulator, payload())
    assert response.status_code == 201
    answer = response.json()
    assert TICKET.match(answer.pop("ticket_number"))
    assert answer == {
        "number_of_contacts": 2,
        "total_cost": 0.1,
        "estimated_duration": 30,
        "residual_credit": 999.9,
    }
    assert emulator.credit == 999.9
    [line] = record.read_text(encoding="utf-8").splitlines()
    recorded = json.loads(line)
    assert set(recorded) == RECORD_FIELDS
    assert recorded["recipients"] == ["+33612345678", "+33698765432"]
    assert recorded["request_id"] == "rn-0001"
    assert [s.request_id for s in emulator.sends()] == ["rn-0001"]


def test_speaks_http_1_1_with_keep_alive(emulator: Emulator, http: requests.Session) -> None:
    first = send(http, emulator, payload(request_id="a"))
    second = send(http, emulator, payload(request_id="b"))
    assert first.raw.version == second.raw.version == 11
    assert "close" not in second.headers.get("Connection", "")


TOO_LONG = "x" * 1225
BAD_NUMBER = [{"phone_number": "0612345678"}]


@pytest.mark.parametrize(
    ("changes", "codes"),
    [
        ({"text": TOO_LONG}, [102]),
        ({"text": ""}, [107]),
        ({"text": "Café ☕"}, [107]),
        ({"text": None}, [107]),
        ({"sender": "AB"}, [106]),
        ({"sender": "ACME-LTD"}, [106]),
        ({"recipients": []}, [117]),
        ({"recipients": BAD_NUMBER}, [117]),
        ({"recipients": [{"phone_number": "+33612345678", "name": "Ana"}]}, [117]),
        ({"recipients": [{"phone_number": f"+336{i:08d}"} for i in range(501)]}, [117]),
        ({"recipients": None}, [117]),
        ({"voice_language": "tlh-KX"}, [442]),
        ({"voice_gender": "robot"}, [441]),
        ({"voice_language": "sv-SE", "voice_gender": "male"}, [441]),
        ({"purpose": "spam"}, [443]),
        ({"send_at": "tomorrow"}, [444]),
        ({"request_id": ""}, [445]),
        ({"simulation_mode": "yes"}, [446]),
        ({"auto_remove_blacklisted_numbers": 1}, [447]),
        ({"colour": "red"}, [100]),
        ({"text": TOO_LONG, "voice_language": "xx"}, [102, 442]),
    ],
)
def test_validation_problems_map_to_octopush_codes(
    emulator: Emulator, http: requests.Session, changes: dict[str, Any], codes: list[int]
) -> None:
    response = send(http, emulator, payload(**changes))
    assert response.status_code == 400
    answer = response.json()
    assert (answer["code"], answer["message"]) == (400, "Payload validation error.")
    assert [problem["code"] for problem in answer["validation_errors"]] == codes
    assert emulator.sends() == []
    assert emulator.credit == 1000.0


def test_keeps_the_documented_messages(emulator: Emulator, http: requests.Session) -> None:
    answer = send(http, emulator, payload(voice_language="xx")).json()
    assert answer["validation_errors"] == [
        {"code": 442, "message": "Voice language not supported."}
    ]
    assert CODES["text/maxLength"] == (102, "Text too long.")
    assert CODES["recipients"] == (117, "No valid number.")


SCHEMA_FILE = files("runner.schemas").joinpath("voice-send.schema.json")
FULL_SCHEMA = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))
CHECKER = PayloadChecker()
PHONE = st.one_of(
    st.from_regex(r"\A\+[1-9][0-9]{6,14}\Z"),
    st.text(max_size=16),
)
RECIPIENT = st.one_of(
    st.fixed_dictionaries({"phone_number": PHONE}),
    st.fixed_dictionaries({"phone_number": PHONE, "name": st.text(max_size=3)}),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.integers(),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(RECIPIENT, max_size=6), st.sampled_from(["en-GB", "xx"]))
def test_fast_path_answers_like_the_full_schema(recipients: list[Any], language: str) -> None:
    body = payload(recipients=recipients, voice_language=language)
    assert CHECKER.problems(body) == problems_in(FULL_SCHEMA, body)


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b""])
def test_refuses_a_body_that_is_not_a_json_object(
    emulator: Emulator, http: requests.Session, body: bytes
) -> None:
    response = http.post(f"{emulator.url}/voice-campaign/send", data=body)
    assert response.status_code == 400
    assert response.json()["code"] == 400


@pytest.mark.parametrize(
    "headers",
    [
        {"api-login": LOGIN, "api-key": "wrong"},
        {"api-login": "other", "api-key": KEY},
        {"api-login": LOGIN},
        {},
    ],
)
def test_refuses_bad_credentials(emulator: Emulator, headers: dict[str, str]) -> None:
    with requests.Session() as session:
        response = session.post(
            f"{emulator.url}/voice-campaign/send", json=payload(), headers=headers
        )
    assert response.status_code == 401
    assert response.json() == {"code": 101, "message": "Invalid credentials."}
    assert emulator.sends() == []


def test_without_configured_credentials_any_non_empty_pair_passes() -> None:
    with Emulator() as open_emulator, requests.Session() as session:
        url = f"{open_emulator.url}/voice-campaign/send"
        ok = session.post(url, json=payload(), headers={"api-login": "x", "api-key": "y"})
        empty = session.post(url, json=payload(), headers={"api-login": "x", "api-key": ""})
    assert (ok.status_code, empty.status_code) == (201, 401)


def test_refuses_a_repeated_request_id_for_24_hours(http: requests.Session) -> None:
    clock = Clock()
    with Emulator(EmulatorOptions(), clock=clock) as emulator:
        assert send(http, emulator, payload()).status_code == 201
        clock.now += DEDUP_WINDOW - 1
        repeated = send(http, emulator, payload())
        clock.now += 2
        later = send(http, emulator, payload())
        assert emulator.credit == pytest.approx(999.8)
    assert repeated.status_code == 400
    assert repeated.json()["validation_errors"] == [
        {"code": 120, "message": "A request with the same request_id was already sent."}
    ]
    assert later.status_code == 201


def test_sends_without_request_id_are_never_duplicates(
    emulator: Emulator, http: requests.Session
) -> None:
    statuses = [send(http, emulator, payload(request_id=None)).status_code for _ in range(2)]
    assert statuses == [201, 201]


def test_refuses_a_send_it_cannot_pay(http: requests.Session) -> None:
    with start(credit=0.12) as emulator:
        response = send(http, emulator, payload(recipients=[{"phone_number": "+33612345678"}] * 3))
        assert emulator.sends() == []
        assert emulator.credit == 0.12
    assert response.status_code == 400
    assert response.json() == {"code": 104, "message": "Not enough credit."}


def test_auto_remove_costs_one_cent_more(emulator: Emulator, http: requests.Session) -> None:
    answer = send(http, emulator, payload(auto_remove_blacklisted_numbers=True)).json()
    assert answer["total_cost"] == pytest.approx(0.11)


def test_simulation_spends_nothing_and_records_nothing(
    emulator: Emulator, http: requests.Session, record: Path
) -> None:
    simulated = send(http, emulator, payload(simulation_mode=True))
    assert simulated.status_code == 201
    assert TICKET.match(simulated.json()["ticket_number"])
    assert (emulator.credit, emulator.sends(), record.read_text()) == (1000.0, [], "")
    assert send(http, emulator, payload()).status_code == 201  # no dedup entry was left


def test_serves_the_balance(emulator: Emulator, http: requests.Session) -> None:
    url = f"{emulator.url}/wallet/check-balance"
    assert http.get(url).json() == {"amount": 1000.0, "unit": "euros"}
    send(http, emulator, payload())
    assert http.get(url).json() == {"amount": 999.9, "unit": "euros"}
    assert requests.get(url, headers={"api-login": LOGIN, "api-key": "x"}).status_code == 401


def test_a_product_balance_needs_a_country_and_counts_units(
    emulator: Emulator, http: requests.Session
) -> None:
    url = f"{emulator.url}/wallet/check-balance?product_name=vocal_sms"
    assert http.get(url).json()["validation_errors"][0]["code"] == 449
    assert http.get(url + "&country_code=FR").json() == {"amount": 20000, "unit": "units"}
    assert http.get(url.replace("vocal_sms", "sms") + "&country_code=FR").status_code == 400


def test_the_date_header_follows_the_emulated_clock(http: requests.Session) -> None:
    with start(clock_offset=7200.0) as emulator:
        date = http.get(f"{emulator.url}/wallet/check-balance").headers["Date"]
    ahead = parsedate_to_datetime(date).timestamp() - time.time()
    assert 7198 <= ahead <= 7201


def test_a_remembered_record_refuses_its_request_ids(
    tmp_path: Path, http: requests.Session
) -> None:
    first = tmp_path / "first.jsonl"
    with start(record=str(first)) as emulator:
        assert send(http, emulator, payload()).status_code == 201
    with start(remember=str(first)) as later:
        assert send(http, later, payload()).json()["validation_errors"][0]["code"] == 120
    with start(remember=str(first), clock_offset=25 * 3600.0) as much_later:
        assert send(http, much_later, payload()).status_code == 201  # past 24 h: forgotten


def test_unknown_paths_and_methods(emulator: Emulator, http: requests.Session) -> None:
    missing = http.get(f"{emulator.url}/sms-campaign/send")
    assert (missing.status_code, missing.json()["code"]) == (404, 404)
    assert http.get(f"{emulator.url}/voice-campaign/send").status_code == 405


def test_429_carries_retry_after_and_processes_nothing(http: requests.Session) -> None:
    with start(rate_429=1.0, retry_after=7) as emulator:
        response = send(http, emulator, payload())
        assert emulator.sends() == []
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"


def test_500_before_processes_nothing(http: requests.Session) -> None:
    with start(rate_500_before=1.0) as emulator:
        assert send(http, emulator, payload()).status_code == 500
        assert (emulator.sends(), emulator.credit) == ([], 1000.0)


def test_500_after_has_accepted_the_send(http: requests.Session) -> None:
    with start(rate_500_after=1.0) as emulator:
        assert send(http, emulator, payload()).status_code == 500
        assert [s.request_id for s in emulator.sends()] == ["rn-0001"]
        assert emulator.credit == 999.9


def test_drop_after_accepts_then_closes_without_answer(http: requests.Session) -> None:
    with start(rate_drop_after=1.0) as emulator:
        with pytest.raises(requests.ConnectionError):
            send(http, emulator, payload())
        assert [s.request_id for s in emulator.sends()] == ["rn-0001"]


def test_after_faults_spare_refused_sends(http: requests.Session) -> None:
    with start(rate_500_after=1.0, rate_drop_after=0.0) as emulator:
        assert send(http, emulator, payload(voice_language="xx")).status_code == 400


def test_scripted_faults_come_first_in_order(emulator: Emulator, http: requests.Session) -> None:
    emulator.script_faults(Fault.TOO_MANY_REQUESTS, Fault.ERROR_BEFORE)
    statuses = [send(http, emulator, payload()).status_code for _ in range(3)]
    assert statuses == [429, 500, 201]


def test_seeded_faults_repeat(http: requests.Session) -> None:
    def statuses() -> list[int]:
        with start(rate_429=0.5, seed=42) as emulator:
            return [send(http, emulator, payload(request_id=str(i))).status_code for i in range(20)]

    first = statuses()
    assert first == statuses()
    assert {429, 201} <= set(first)


def test_latency_delays_every_answer(http: requests.Session) -> None:
    with start(latency=0.1) as emulator:
        began = time.monotonic()
        http.get(f"{emulator.url}/wallet/check-balance")
        assert time.monotonic() - began >= 0.1


def test_url_needs_a_bound_socket() -> None:
    emulator = Emulator()
    with pytest.raises(RuntimeError, match="not bound"):
        _ = emulator.url
    emulator.stop()  # harmless before start


def test_serve_forever_stops_from_another_thread(http: requests.Session) -> None:
    emulator = Emulator().bind()
    server = threading.Thread(target=emulator.serve_forever)
    server.start()
    assert send(http, emulator, payload()).status_code == 201
    emulator.stop()
    server.join(timeout=5)
    assert not server.is_alive()


def test_concurrent_sends_are_recorded_once(record: Path) -> None:
    with start(record=str(record)) as emulator:

        def worker(n: int) -> None:
            with requests.Session() as session:
                session.headers.update(HEADERS)
                for i in range(10):
                    send(session, emulator, payload(request_id=f"{i % 5}"))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert emulator.credit == pytest.approx(1000 - 5 * 0.1)
    ids = [json.loads(line)["request_id"] for line in record.read_text().splitlines()]
    assert sorted(ids) == ["0", "1", "2", "3", "4"]


# cancel ----------------------------------------------------------------------------------------


def cancel(http: requests.Session, emulator: Emulator, ticket: Any) -> requests.Response:
    return http.delete(f"{emulator.url}/voice-campaign/cancel", json={"ticket_number": ticket})


def test_cancel_follows_the_documented_rules(record: Path, http: requests.Session) -> None:
    clock = Clock()  # 2027-01-15 08:00 UTC
    options = EmulatorOptions(login=LOGIN, key=KEY, record=str(record))
    with Emulator(options, clock=clock) as emulator:
        now = send(http, emulator, payload(request_id="now", send_at=None)).json()
        soon = send(http, emulator, payload(request_id="soon", send_at="2027-01-15T08:10:00+00:00"))
        later = send(
            http, emulator, payload(request_id="later", send_at="2027-01-15T09:00:00+01:00")
        )
        ahead = send(http, emulator, payload(request_id="ahead", send_at="2027-01-15T09:00:00Z"))
        assert emulator.credit == pytest.approx(1000 - 4 * 0.1)
        codes = {
            name: cancel(http, emulator, ticket).json()["validation_errors"][0]["code"]
            for name, ticket in (
                ("unknown", "voice_0000000000000"),
                ("sent", now["ticket_number"]),
                ("within 10 minutes", soon.json()["ticket_number"]),
                ("at its time", later.json()["ticket_number"]),
            )
        }
        assert codes == {"unknown": 450, "sent": 451, "within 10 minutes": 452, "at its time": 451}
        made = cancel(http, emulator, ahead.json()["ticket_number"])
        assert (made.status_code, made.content) == (204, b"")
        assert emulator.credit == pytest.approx(1000 - 3 * 0.1)  # refunded
        again = cancel(http, emulator, ahead.json()["ticket_number"])
        assert again.json()["validation_errors"][0]["code"] == 451
        assert (
            http.delete(
                f"{emulator.url}/voice-campaign/cancel",
                json={"ticket_number": ahead.json()["ticket_number"]},
                headers={"api-key": "wrong"},
            ).status_code
            == 401
        )
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert lines[-1] == {"cancelled": ahead.json()["ticket_number"], "time": lines[-1]["time"]}


def test_refuse_cancels_refuses_every_cancel(http: requests.Session) -> None:
    with Emulator(EmulatorOptions(login=LOGIN, key=KEY, refuse_cancels=True)) as emulator:
        booked = send(http, emulator, payload(send_at="2099-01-01T00:00:00+00:00")).json()
        refused = cancel(http, emulator, booked["ticket_number"])
        assert refused.status_code == 400
        assert refused.json()["validation_errors"] == [
            {"code": 453, "message": CODES["cancel_refused"][1]}
        ]
