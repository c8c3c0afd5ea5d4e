"""The client against the real emulator (and a canned loopback server for odd answers)."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import certifi
import pytest
import urllib3
from tls_server import tls_server

from runner.emulator import Emulator, EmulatorOptions, Fault
from runner.octopush import ERROR_MESSAGES, OctopushClient, OctopushError, SendOutcome, redacted

LOGIN, KEY = "acme", "k3y-that-must-stay-secret"
TICKET = re.compile(r"^voice_[0-9a-f]{13}$")


def payload(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "text": "Hello, maintenance starts Saturday at 10 PM.",
        "recipients": [{"phone_number": "+33612345678"}, {"phone_number": "+33698765432"}],
        "purpose": "alert",
        "voice_gender": "female",
        "voice_language": "en-GB",
        "request_id": "rn-0001",
    }
    body.update(changes)
    return body


class Sleeps(list[float]):
    """A sleep that records the delays instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def record(tmp_path: Path) -> Path:
    return tmp_path / "sends.jsonl"


def emulate(record: Path | None = None, **options: Any) -> Emulator:
    where = str(record) if record else None
    return Emulator(EmulatorOptions(login=LOGIN, key=KEY, record=where, **options)).start()


@pytest.fixture
def emulator(record: Path) -> Iterator[Emulator]:
    with emulate(record) as running:
        yield running


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def client_for(url: str, sleeps: Sleeps, key: str = KEY, **options: Any) -> OctopushClient:
    return OctopushClient(url, LOGIN, key, sleep=sleeps, **options)


def send(url: str, body: dict[str, Any], sleeps: Sleeps | None = None, **kw: Any) -> SendOutcome:
    with client_for(url, sleeps if sleeps is not None else Sleeps(), **kw) as client:
        return client.send(body)


def recorded_ids(record: Path) -> list[str]:
    return [json.loads(line)["request_id"] for line in record.read_text().splitlines()]


def test_a_send_is_sent(emulator: Emulator, record: Path) -> None:
    outcome = send(emulator.url + "/", payload())
    assert TICKET.match(outcome.ticket or "")
    assert outcome == SendOutcome(
        "sent", outcome.ticket, 2, 0.1, 999.9, None, "HTTP 201", attempts=1
    )
    assert recorded_ids(record) == ["rn-0001"]


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"text": "x" * 1225}, 102),
        ({"sender": "A"}, 106),
        ({"recipients": [{"phone_number": "12"}]}, 117),
        ({"voice_language": "xx"}, 442),
    ],
)
def test_validation_refusals_are_rejected_with_the_table_message(
    emulator: Emulator, changes: dict[str, Any], code: int, sleeps: Sleeps
) -> None:
    outcome = send(emulator.url, payload(**changes), sleeps)
    expected = f"{ERROR_MESSAGES[code]} (code {code})"
    assert (outcome.status, outcome.code, outcome.message) == ("rejected", code, expected)
    assert (outcome.attempts, sleeps, emulator.sends()) == (1, [], [])


def test_an_unlisted_code_keeps_the_server_message(emulator: Emulator) -> None:
    outcome = send(emulator.url, payload(voice_gender="robot"))
    assert (outcome.status, outcome.code, outcome.account) == ("rejected", 441, False)
    assert outcome.message == "Voice gender not supported. (code 441)"


def test_bad_credentials_are_rejected(emulator: Emulator) -> None:
    outcome = send(emulator.url, payload(), key="wrong")
    assert (outcome.status, outcome.code, outcome.account) == ("rejected", 101, True)
    assert outcome.message == f"{ERROR_MESSAGES[101]} (code 101)"


def test_out_of_credit_is_rejected(record: Path) -> None:
    with emulate(record, credit=0.05) as emulator:
        outcome = send(emulator.url, payload())
    assert (outcome.status, outcome.code, outcome.account) == ("rejected", 104, True)
    assert outcome.message.startswith(ERROR_MESSAGES[104])


def test_a_repeated_request_id_is_a_duplicate(emulator: Emulator, record: Path) -> None:
    first, second = send(emulator.url, payload()), send(emulator.url, payload())
    assert (first.status, second.status, second.code) == ("sent", "duplicate", 120)
    assert recorded_ids(record) == ["rn-0001"]


@pytest.mark.parametrize(("retry_after", "waited"), [(0, 0.0), (3, 3.0), (60, 60.0), (120, 120.0)])
def test_429_is_retried_after_the_asked_delay(
    record: Path, sleeps: Sleeps, retry_after: int, waited: float
) -> None:
    with emulate(record, retry_after=retry_after) as emulator:
        emulator.script_faults(Fault.TOO_MANY_REQUESTS)
        outcome = send(emulator.url, payload(), sleeps, max_backoff=10.0)
    assert (outcome.status, outcome.attempts, sleeps) == ("sent", 2, [waited])
    assert recorded_ids(record) == ["rn-0001"]


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        (Fault.ERROR_BEFORE, "sent"),
        (Fault.ERROR_AFTER, "duplicate"),
        (Fault.DROP_AFTER, "duplicate"),
    ],
)
def test_server_faults_are_retried_with_the_same_request_id(
    emulator: Emulator, record: Path, sleeps: Sleeps, fault: Fault, status: str
) -> None:
    emulator.script_faults(fault)
    outcome = send(emulator.url, payload(), sleeps, backoff=0.5)
    assert (outcome.status, outcome.attempts, len(sleeps)) == (status, 2, 1)
    assert 0.0 <= sleeps[0] <= 0.5
    assert recorded_ids(record) == ["rn-0001"]
    assert emulator.credit == 999.9


def test_a_retry_after_over_the_cap_ends_unknown_at_once(record: Path, sleeps: Sleeps) -> None:
    with emulate(record, retry_after=121) as emulator:
        emulator.script_faults(Fault.TOO_MANY_REQUESTS)
        outcome = send(emulator.url, payload(), sleeps)
    assert (outcome.status, outcome.attempts, sleeps) == ("unknown", 1, [])
    assert "Retry-After asks for more than 120 s" in outcome.message
    assert recorded_ids(record) == []


def test_exhausted_retries_leave_the_outcome_unknown(record: Path, sleeps: Sleeps) -> None:
    with emulate(record, rate_500_before=1.0) as emulator:
        outcome = send(emulator.url, payload(), sleeps, max_attempts=4, backoff=1.0, max_backoff=3)
    assert (outcome.status, outcome.attempts, outcome.code) == ("unknown", 4, None)
    assert "HTTP 500 after 4 attempt(s)" in outcome.message
    assert len(sleeps) == 3
    assert all(0 <= delay <= ceiling for delay, ceiling in zip(sleeps, [1, 2, 3], strict=True))
    assert emulator.sends() == []


def test_an_unreachable_server_is_unknown(sleeps: Sleeps) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    outcome = send(f"http://127.0.0.1:{port}/v1/public", payload(), sleeps, max_attempts=2)
    assert (outcome.status, outcome.attempts) == ("unknown", 2)
    assert "ConnectionError" in outcome.message


def test_a_timed_out_send_is_unknown_yet_may_be_accepted(record: Path) -> None:
    with emulate(record, latency=0.3) as emulator:
        outcome = send(emulator.url, payload(), timeout=(1.0, 0.05), max_attempts=2)
        deadline = time.monotonic() + 5
        while not emulator.sends() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [s.request_id for s in emulator.sends()] == ["rn-0001"]
    assert (outcome.status, outcome.attempts) == ("unknown", 2)
    assert "ReadTimeout" in outcome.message


def test_simulation_is_not_recorded(emulator: Emulator, record: Path) -> None:
    outcome = send(emulator.url, payload(simulation_mode=True))
    assert outcome.status == "sent"
    assert (emulator.credit, record.read_text()) == (1000.0, "")


def test_balance(emulator: Emulator) -> None:
    with client_for(emulator.url, Sleeps()) as client:
        assert client.balance() == 1000.0
        client.send(payload())
        assert client.balance() == 999.9


def test_balance_refused_raises_without_the_key(emulator: Emulator) -> None:
    wrong = "wrong-secret-value"
    with client_for(emulator.url, Sleeps(), key=wrong) as client, pytest.raises(OctopushError) as e:
        client.balance()
    assert "101" in str(e.value)
    assert wrong not in str(e.value)


def test_the_key_never_reaches_logs_or_reprs(
    record: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with emulate(record, retry_after=0) as emulator:
        emulator.script_faults(Fault.TOO_MANY_REQUESTS, Fault.DROP_AFTER)
        with client_for(emulator.url, Sleeps()) as client:
            outcomes = [client.send(payload()), client.send(payload(voice_language="x"))]
            client.balance()
            shown = [repr(client), *map(repr, outcomes)]
    logged = [r for r in caplog.records if r.name == "runner.octopush"]
    assert len(logged) >= 8
    assert "'api-key': '***'" in caplog.text
    assert "'api-login': '***'" in caplog.text
    assert KEY not in caplog.text + "".join(shown)
    assert all(KEY not in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("key", [f"{KEY}\n", f" {KEY}", f"{KEY}\u2019"])
def test_a_malformed_key_is_refused_without_being_quoted(key: str) -> None:
    with pytest.raises(OctopushError, match="OCTOPUSH_API_KEY has spaces") as error:
        OctopushClient("http://127.0.0.1:1/v1/public", LOGIN, key)
    assert KEY not in str(error.value)


def test_redacted_hides_credentials_whatever_their_case() -> None:
    assert redacted({"API-Key": KEY, "Api-Login": LOGIN, "Accept": "*/*"}) == {
        "API-Key": "***",
        "Api-Login": "***",
        "Accept": "*/*",
    }


def test_concurrent_sends_with_faults_each_land_once(record: Path) -> None:
    rates = {"rate_429": 0.1, "rate_500_before": 0.1, "rate_500_after": 0.1}
    with emulate(record, seed=7, retry_after=0, rate_drop_after=0.1, **rates) as emulator:
        with client_for(emulator.url, Sleeps(), max_attempts=30) as client:
            ids = [f"rn-{thread}-{n}" for thread in range(8) for n in range(20)]
            with ThreadPoolExecutor(max_workers=8) as pool:
                outcomes = list(pool.map(lambda i: client.send(payload(request_id=i)), ids))
        assert len(emulator.sends()) == 160
    assert {o.status for o in outcomes} == {"sent", "duplicate"}
    assert Counter(recorded_ids(record)) == Counter(ids)


# --- answers the emulator never gives, from a canned loopback server -----------------------


Answer = tuple[int, bytes, dict[str, str]]
DROP: Answer = (0, b"", {})  # the connection is closed without an answer


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> Answer:
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return status, data, headers or {}


class Canned(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answers: list[Answer]) -> None:
        self.answers = answers
        self.requests: list[tuple[str, bytes]] = []
        self.headers: list[dict[str, str]] = []
        super().__init__(("127.0.0.1", 0), CannedHandler)


class CannedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Canned

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append((self.path, body))
        self.server.headers.append({k.lower(): v for k, v in self.headers.items()})
        status, data, headers = self.server.answers.pop(0)
        if status == 0:
            self.close_connection = True
            return
        self.send_response_only(status)  # no Date of its own: a test may give one
        for name, value in {"Content-Length": str(len(data)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@contextmanager
def canned(*answers: Answer) -> Iterator[Canned]:
    server = Canned(list(answers))
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def url_of(server: Canned) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/v1/public"


def answered(*answers: Answer, sleeps: Sleeps | None = None) -> SendOutcome:
    with canned(*answers) as server:
        return send(url_of(server), payload(), sleeps, max_attempts=len(answers))


def test_the_php_clients_ticket_name_is_accepted() -> None:
    outcome = answered(answer(200, {"vocal_ticket": "voice_abc", "total_cost": 0.1}))
    assert (outcome.status, outcome.ticket, outcome.cost, outcome.contacts) == (
        "sent",
        "voice_abc",
        0.1,
        2,
    )


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("<html>accepted</html>", "a body that is not the provider's receipt ('<html>"),
        ('{"ticket_number": "voice_1", "number_of_contacts": 1e999}', "number_of_contacts (inf)"),
        ('{"ticket_number": "voice_1", "number_of_contacts": 1.5}', "number_of_contacts (1.5)"),
        ('{"ticket_number": "voice_1", "total_cost": NaN}', "a malformed total_cost (nan)"),
    ],
)
def test_a_malformed_success_is_unknown(body: str, says: str) -> None:
    outcome = answered(answer(201, body))
    assert (outcome.status, outcome.attempts) == ("unknown", 1)
    assert says in outcome.message
    assert outcome.message.endswith("; the request may have been accepted")


def test_fewer_contacts_than_the_batch_are_recorded_and_told() -> None:
    outcome = answered(answer(201, {"ticket_number": "voice_1", "number_of_contacts": 1}))
    assert (outcome.status, outcome.contacts) == ("sent", 1)
    assert outcome.warning == "the provider counted 1 of the batch's 2 contacts"


@pytest.mark.parametrize(
    ("first", "status"),
    [(answer(503, "busy"), "unknown"), (DROP, "unknown"), (answer(429, "slow"), "rejected")],
)
def test_a_refusal_after_an_attempt_of_unknown_fate_is_unknown(first: Answer, status: str) -> None:
    refusal = answer(400, {"code": 104, "message": "Not enough credit."})
    outcome = answered(first, refusal)
    assert (outcome.status, outcome.code, outcome.attempts) == (status, 104, 2)
    if status == "unknown":
        assert outcome.message.endswith("refused after an attempt that may have been accepted")


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (
            {"code": 121, "message": "Mention STOP missing."},
            121,
            "Mention STOP missing. (code 121)",
        ),
        ({"code": "106", "message": "bad"}, 106, f"{ERROR_MESSAGES[106]} (code 106)"),
        (
            {"code": 400, "message": "Payload validation error.", "errors": [{"code": 119}]},
            119,
            f"{ERROR_MESSAGES[119]} (code 119)",
        ),
        (
            {"code": 400, "errs": [{"code": 9, "message": "a"}, {"code": 117, "message": "b"}]},
            117,
            f"a (code 9); {ERROR_MESSAGES[117]} (code 117)",
        ),
        ("<html>Bad Request</html>", None, "HTTP 400: <html>Bad Request</html>"),
        ([1, 2], None, "HTTP 400: [1, 2]"),
    ],
)
def test_refusal_shapes(body: Any, code: int | None, message: str) -> None:
    outcome = answered(answer(400, body))
    assert (outcome.status, outcome.code, outcome.message) == ("rejected", code, message)


@pytest.mark.parametrize(
    "body",
    [
        {"code": 120, "message": "whatever"},
        {"code": 400, "details": [{"code": 120, "message": "x"}]},
        {"code": 400, "message": "This request_id was already used."},
        {"code": 400, "list": [{"code": 999, "message": "Repeated request ID"}]},
        {"code": 400, "message": "A request with the same request_id was already sent."},
        {"code": 400, "message": "Duplicate request_id."},
        {"code": 400, "message": "request_id already processed"},
    ],
)
def test_a_repeated_request_id_is_recognised_in_any_shape(body: Any) -> None:
    outcome = answered(answer(400, body))
    assert (outcome.status, outcome.code) == ("duplicate", 120)


@pytest.mark.parametrize(
    "message",
    [
        "A request_id may be used only once a day.",
        "The same request_id must not be used for another message.",
        "request_id: 64 characters at most; letters already used elsewhere are fine.",
        "This request_id has not already been used: send the body again.",
        "Use the same request_id when you retry.",
    ],
)
def test_a_refusal_that_merely_mentions_request_id_is_no_duplicate(message: str) -> None:
    outcome = answered(answer(400, {"code": 400, "message": message}))
    assert outcome.status == "rejected"


def test_non_json_server_errors_are_retried_then_unknown() -> None:
    sleeps = Sleeps()
    outcome = answered(answer(502, "Bad gateway"), answer(503, ""), sleeps=sleeps)
    assert (outcome.status, outcome.attempts) == ("unknown", 2)
    assert "HTTP 503 after 2 attempt(s)" in outcome.message
    assert len(sleeps) == 1
    assert 0 <= sleeps[0] <= 0.2


@pytest.mark.parametrize(
    ("retry_after", "waited"),
    [
        ("Wed, 21 Oct 2026 07:28:30 GMT", 30.0),  # against the server's own Date header
        ("Wed, 21 Oct 2026 07:27:00 GMT", 0.0),  # already past
        ("soon", None),  # unreadable: our own backoff
    ],
)
def test_retry_after_as_an_http_date(retry_after: str, waited: float | None) -> None:
    sleeps = Sleeps()
    dated = {"Retry-After": retry_after, "Date": "Wed, 21 Oct 2026 07:28:00 GMT"}
    ok = answer(201, {"ticket_number": "voice_1"})
    outcome = answered(answer(503, "", dated), ok, sleeps=sleeps)
    assert outcome.status == "sent"
    if waited is None:
        assert 0 <= sleeps[0] <= 0.2
    else:
        assert sleeps == [waited]


def test_a_success_after_a_bad_gateway() -> None:
    outcome = answered(answer(502, "<html>oops</html>"), answer(201, {"ticket_number": "voice_1"}))
    assert (outcome.status, outcome.ticket, outcome.attempts) == ("sent", "voice_1", 2)


def test_a_connection_closed_without_answer_is_retried_then_unknown() -> None:
    sleeps = Sleeps()
    with canned(DROP, DROP, DROP) as server:
        outcome = send(url_of(server), payload(), sleeps, max_attempts=3)
    assert (outcome.status, outcome.attempts, len(sleeps)) == ("unknown", 3, 2)
    assert "ProtocolError" in outcome.message
    assert outcome.message.endswith("; the request may have been accepted")
    sent = json.dumps(payload(), separators=(",", ":")).encode()
    assert server.requests == [("/v1/public/voice-campaign/send", sent)] * 3


def test_an_answer_cut_short_is_retried() -> None:
    short = {"Content-Length": "500", "Connection": "close"}  # fewer bytes come, then the end
    cut = answer(201, {"ticket_number": "voice_1"}, short)
    outcome = answered(cut, answer(400, {"code": 120, "message": "Repeated request_id"}))
    assert (outcome.status, outcome.attempts) == ("duplicate", 2)


def test_a_redirect_is_not_followed() -> None:
    elsewhere = "http://127.0.0.1:9/v1/public"
    with canned(answer(307, "", {"Location": elsewhere})) as server:
        outcome = send(url_of(server), payload(), max_attempts=3)
    assert (outcome.status, outcome.code, outcome.attempts) == ("rejected", None, 1)
    assert outcome.message == f"HTTP 307: the API URL moved to {elsewhere}; use that one"
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "url", ["api.octopush.com/v1/public", "ftp://api.octopush.com/v1", "https://", "http://[::1"]
)
def test_a_bad_api_url_is_refused_before_any_request(url: str) -> None:
    with pytest.raises(
        OctopushError, match=re.escape("write it like https://api.octopush.com/v1/public")
    ):
        OctopushClient(url, LOGIN, KEY)


def test_proxy_settings_are_read_from_the_environment_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    with OctopushClient("https://api.octopush.com/v1/public", "login", "key") as client:
        pool = client._pool
        assert isinstance(pool, urllib3.ProxyManager)
        assert pool.proxy is not None and pool.proxy.url == "http://proxy.example:3128"
        assert pool.proxy_headers == {}
        assert pool.connection_pool_kw["ca_certs"] == str(bundle)
        assert pool.connection_pool_kw["cert_reqs"] == "CERT_REQUIRED"
    with OctopushClient("http://127.0.0.1:8080/v1/public", "login", "key") as client:
        assert not isinstance(client._pool, urllib3.ProxyManager)  # NO_PROXY: loopback goes direct


def test_the_environment_is_not_read_again_at_each_request(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with client_for(emulator.url, Sleeps(), max_attempts=1) as client:
        monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
        assert client.send(payload()).status == "sent"


def test_tls_is_verified_with_certifi_unless_the_environment_names_a_bundle(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    with OctopushClient("https://api.octopush.com/v1/public", "login", "key") as client:
        options = client._pool.connection_pool_kw
        assert (options["cert_reqs"], options["ca_certs"]) == ("CERT_REQUIRED", certifi.where())
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tmp_path))
    with OctopushClient("https://api.octopush.com/v1/public", "login", "key") as client:
        assert client._pool.connection_pool_kw["ca_cert_dir"] == str(tmp_path)
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(OctopushError, match=r"missing\.pem .* does not exist"):
        OctopushClient("https://api.octopush.com/v1/public", "login", "key")


def test_a_proxy_from_the_environment_is_used_with_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with canned(answer(201, {"ticket_number": "voice_1"})) as proxy:
        where = f"me:s%40cret@127.0.0.1:{proxy.server_address[1]}"  # no scheme: http
        monkeypatch.setenv("http_proxy", where)
        outcome = send("http://api.example/v1/public", payload())
    assert (outcome.status, outcome.ticket) == ("sent", "voice_1")
    assert proxy.requests[0][0] == "http://api.example/v1/public/voice-campaign/send"
    auth = urllib3.make_headers(proxy_basic_auth="me:s@cret")["proxy-authorization"]
    assert proxy.headers[0]["proxy-authorization"] == auth
    assert proxy.headers[0]["api-key"] == KEY


@pytest.mark.parametrize(
    ("proxy", "says"),
    [
        ("socks5://me:s3cret@proxy.example:1080", "SOCKS is not supported"),
        (
            "http://me:s3cr\u20act@proxy.example:3128",
            "outside Latin-1",
        ),  # Basic auth cannot carry €
    ],
)
def test_a_proxy_runner_cannot_use_is_refused_without_quoting_its_password(
    monkeypatch: pytest.MonkeyPatch, proxy: str, says: str
) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("https_proxy", proxy)
    with pytest.raises(OctopushError, match=says) as error:
        OctopushClient("https://api.octopush.com/v1/public", "login", "key")
    assert "s3cr" not in str(error.value)


def test_a_certificate_that_fails_verification_stops_at_once(
    tmp_path: Path, sleeps: Sleeps
) -> None:
    with tls_server(tmp_path) as server:
        outcome = send(server.url, payload(), sleeps)
        with client_for(server.url, sleeps) as client, pytest.raises(OctopushError) as error:
            client.check_balance()
    assert (outcome.status, outcome.attempts, outcome.account, sleeps) == ("not-sent", 1, True, [])
    assert outcome.message.startswith("the TLS certificate of 127.0.0.1 failed verification (")
    assert "nothing was sent" in outcome.message
    assert str(error.value) == outcome.message
    assert server.connections == 2  # one each: never retried
