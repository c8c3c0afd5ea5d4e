"""The emulator's delivery receipts (--webhook), caught by a plain loopback server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from conftest import run_cli, us_numbers

from runner.emulator import Emulator, EmulatorOptions
from runner.receipts.model import parse_receipt
from runner.recipients import digest_number

HEADERS = {"api-login": "a", "api-key": "b"}


class Catcher(ThreadingHTTPServer):
    """Answers `failures` POSTs with 503, then keeps every body it is sent."""

    daemon_threads = True

    def __init__(self, failures: int = 0) -> None:
        self.bodies: list[tuple[str, bytes, float]] = []
        self.failures = failures
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Catch)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/receipts/t"

    def wait_for(self, count: int, timeout: float = 15) -> list[tuple[str, bytes, float]]:
        deadline = time.monotonic() + timeout
        while len(self.bodies) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.bodies)


class _Catch(BaseHTTPRequestHandler):
    server: Catcher

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            failed = self.server.failures > 0
            self.server.failures -= failed
            if not failed:
                self.server.bodies.append((self.headers["Content-Type"], body, time.time()))
        self.send_response(503 if failed else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def catcher() -> Iterator[Catcher]:
    server = Catcher()
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def send(emulator: Emulator, numbers: list[str], request_id: str, **extra: Any) -> float:
    """One accepted call; the seconds the emulator took to answer it."""
    body = {
        "text": "Outage.",
        "recipients": [{"phone_number": n} for n in numbers],
        "purpose": "alert",
        "voice_gender": "female",
        "voice_language": "en-US",
        "request_id": request_id,
        **extra,
    }
    started = time.monotonic()
    answer = requests.post(f"{emulator.url}/voice-campaign/send", json=body, headers=HEADERS)
    assert answer.status_code == 201, answer.text
    return time.monotonic() - started


def options(url: str, **changes: Any) -> EmulatorOptions:
    return EmulatorOptions(webhook=url, receipt_delay=0.01, seed=5, **changes)


def test_receipts_follow_the_seeded_mix_in_every_shape(catcher: Catcher) -> None:
    numbers = us_numbers(60)
    mix = "DELIVERED=0.5,BUSY=0.3,NOT_DELIVERED=0.2"
    with Emulator(options(catcher.url, receipts=mix)) as emulator:
        send(emulator, numbers, "rn-mix")
        caught = catcher.wait_for(60)
    receipts = [parse_receipt(kind, body) for kind, body, _ in caught]
    assert sorted(r.digest for r in receipts) == sorted(map(digest_number, numbers))
    statuses = {r.status for r in receipts}
    assert statuses == {"DELIVERED", "BUSY", "NOT_DELIVERED"}
    shapes = {(kind, b"meta_data" in body) for kind, body, _ in caught}
    assert len(shapes) == 4  # JSON and form, old and new shape
    for r in receipts:
        heard = r.status == "DELIVERED"
        assert (r.call_duration or 0) > 0 if heard else r.call_duration == 0
        assert r.charged_duration is not None and r.charged_duration % 30 == 0
        assert (r.charged_duration >= (r.call_duration or 0)) and (r.charged_duration > 0) == heard


def test_the_same_seed_gives_the_same_statuses(catcher: Catcher) -> None:
    numbers = us_numbers(20)
    runs = []
    for _ in range(2):
        catcher.bodies.clear()
        with Emulator(options(catcher.url, receipts="DELIVERED=0.5,BUSY=0.5")) as emulator:
            send(emulator, numbers, "rn-same")
            received = [parse_receipt(k, b) for k, b, _ in catcher.wait_for(20)]
        runs.append(sorted((r.digest, r.status) for r in received))
    assert runs[0] == runs[1]


def test_a_refused_post_is_retried_until_it_lands() -> None:
    catcher = Catcher(failures=4)
    threading.Thread(target=catcher.serve_forever, args=(0.02,), daemon=True).start()
    try:
        with Emulator(options(catcher.url)) as emulator:
            send(emulator, us_numbers(2), "rn-retried")
            caught = catcher.wait_for(2, timeout=20)
    finally:
        catcher.shutdown()
        catcher.server_close()
    assert len(caught) == 2 and catcher.failures == 0


def test_a_scheduled_call_is_reported_after_its_send_at(catcher: Catcher) -> None:
    send_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    with Emulator(options(catcher.url)) as emulator:
        send(emulator, us_numbers(1), "rn-later", send_at=send_at.isoformat())
        caught = catcher.wait_for(1)
    assert caught and caught[0][2] >= send_at.timestamp()


def test_a_receiver_that_never_answers_does_not_slow_the_sends() -> None:
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(100)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/receipts/t"
        with Emulator(options(url)) as emulator:
            took = [send(emulator, us_numbers(50, start=i * 50), f"rn-{i}") for i in range(5)]
    assert max(took) < 1.0


def test_a_wrong_receipt_mix_is_refused_in_one_line() -> None:
    for mix, words in (
        ("DELIVERED=0.5,BUSY=0.2", "the shares add up to 0.7; make them add up to 1"),
        ("DELIVERED=0.5,HEARD=0.5", "'HEARD' is not a receipt status"),
        ("DELIVERED=half", "the share must be a number"),
    ):
        result = run_cli("emulator", "--webhook", "http://127.0.0.1:9/r", "--receipts", mix)
        assert result.code == 1 and words in result.err, result
        assert "Traceback" not in result.err


def test_a_cancelled_booking_posts_no_receipt(catcher: Catcher) -> None:
    shift = [0.0]  # the emulator's clock, moved on past the bookings' time below

    def clock() -> float:
        return time.time() + shift[0]

    with Emulator(options(catcher.url), clock=clock) as emulator:
        send_at = datetime.fromtimestamp(clock() + 660, UTC).replace(microsecond=0)
        for request_id in ("rn-kept", "rn-cancelled"):  # more than 10 minutes ahead
            send(emulator, us_numbers(1), request_id, send_at=send_at.isoformat())
        tickets = {s.request_id: s.ticket_number for s in emulator.sends()}
        answer = requests.delete(
            f"{emulator.url}/voice-campaign/cancel",
            json={"ticket_number": tickets["rn-cancelled"]},
            headers=HEADERS,
        )
        assert answer.status_code == 204, answer.text
        shift[0] = 700.0
        send(emulator, us_numbers(1, start=5), "rn-now")  # wakes the sender on the new time
        tickets["rn-now"] = emulator.sends()[-1].ticket_number
        caught = catcher.wait_for(3, timeout=5)
    received = sorted(parse_receipt(k, b).ticket for k, b, _ in caught)
    assert received == sorted([tickets["rn-kept"], tickets["rn-now"]])
