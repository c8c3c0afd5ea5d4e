"""The emulator's delivery receipts: one webhook POST per number of each accepted call (§1, §6).

The send path only queues; a background thread posts each receipt once it is due (the call's
send_at, or a short delay for an immediate call) and retries a failed POST with a doubling
delay, as a provider does. Statuses and body shapes are drawn from the seed, per request_id and
number, so the same sends give the same receipts whatever order their requests arrived in.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from runner.receipts.model import STATUSES

SHAPES = ("json-old", "json-new", "form-old", "form-new")
DEFAULT_MIX = "DELIVERED=1"
POST_TIMEOUT = 5.0
FIRST_RETRY = 0.5  # seconds before the first retry of a failed POST, doubling after each
LAST_RETRY = 30.0
MAX_POSTS = 12  # a receipt still refused after this many POSTs is dropped, as providers do


def parse_mix(text: str) -> tuple[tuple[str, float], ...]:
    """`DELIVERED=0.8,BUSY=0.2` as (status, share) pairs; ValueError with one clear line."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        status, _, share = part.partition("=")
        status = status.strip().upper()
        if status not in STATUSES:
            known = ", ".join(STATUSES)
            raise ValueError(f"{status or part!r} is not a receipt status; use one of {known}")
        try:
            mix[status] = float(share)
        except ValueError:
            raise ValueError(f"{part!r}: the share must be a number, e.g. {status}=0.1") from None
        if not 0 <= mix[status] <= 1:
            raise ValueError(f"{part!r}: a share is between 0 and 1")
    if not mix or abs(sum(mix.values()) - 1) > 1e-6:
        raise ValueError(f"the shares add up to {sum(mix.values()):g}; make them add up to 1")
    return tuple(mix.items())


def parse_script(items: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """`+15550001=BUSY,DELIVERED`: that number's calls get these statuses in turn (tests)."""
    script = {}
    for item in items:
        number, _, statuses = item.partition("=")
        chosen = tuple(s.strip().upper() for s in statuses.split(",") if s.strip())
        unknown = [s for s in chosen if s not in STATUSES]
        if not number.startswith("+") or not chosen or unknown:
            raise ValueError(f"{item!r}: write +NUMBER=STATUS[,STATUS...] with known statuses")
        script[number.strip()] = chosen
    return script


@dataclass(frozen=True)
class WebhookOptions:
    url: str
    mix: tuple[tuple[str, float], ...] = (("DELIVERED", 1.0),)
    seed: int | None = None
    delay: float = 1.0  # seconds after an immediate call before its receipt is posted
    shape: str = "mixed"  # one of SHAPES, or mixed: drawn per receipt
    script: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(order=True)
class _Due:
    at: float  # by the local clock
    order: int
    body: bytes = field(compare=False)
    content_type: str = field(compare=False)
    posts: int = field(default=0, compare=False)
    ticket: str = field(default="", compare=False)
    number: str = field(default="", compare=False)


class Webhook:
    """Queues receipts as calls are accepted; a daemon thread posts them when due."""

    def __init__(self, options: WebhookOptions, clock: Callable[[], float] = time.time) -> None:
        self.options = options
        self._clock = clock
        self._queue: list[_Due] = []
        self._count = 0
        self._calls: dict[str, int] = {}  # calls per number, for scripted statuses
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="receipts-webhook", daemon=True)
        self._thread.start()

    def call_made(
        self, ticket: str, request_id: str | None, numbers: Iterable[str], due: float
    ) -> None:
        """Queue one receipt per number; called with the backend's lock held, so it is quick."""
        due = max(due, self._clock() + self.options.delay)
        with self._wake:
            for number in numbers:
                call = self._calls[number] = self._calls.get(number, 0) + 1
                draw = _draws(self.options.seed, request_id or ticket, number)
                status = self._status(number, call, draw)
                shape = _shape(self.options.shape, draw)
                body, kind = receipt_body(ticket, number, status, due, shape, draw)
                self._count += 1
                heapq.heappush(self._queue, _Due(due, self._count, body, kind, 0, ticket, number))
            self._wake.notify()

    def cancelled(self, ticket: str) -> None:
        """A booking cancelled before its time: its calls never happen, nor their receipts."""
        with self._wake:
            gone = [d for d in self._queue if d.ticket == ticket]
            for due in gone:
                self._calls[due.number] -= 1
            self._queue = [d for d in self._queue if d.ticket != ticket]
            heapq.heapify(self._queue)

    def _status(self, number: str, call: int, draw: random.Random) -> str:
        scripted = self.options.script.get(number)
        if scripted:
            return scripted[min(call, len(scripted)) - 1]
        return _drawn_status(self.options.mix, draw.random())

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and not self._ready():
                    wait = self._queue[0].at - self._clock() if self._queue else None
                    self._wake.wait(timeout=wait)
                if self._stopped:
                    return
                due = heapq.heappop(self._queue)
            if not self._post(due) and due.posts < MAX_POSTS:
                due.at = self._clock() + min(LAST_RETRY, FIRST_RETRY * 2 ** (due.posts - 1))
                with self._wake:
                    heapq.heappush(self._queue, due)

    def _ready(self) -> bool:
        return bool(self._queue) and self._queue[0].at <= self._clock()

    def _post(self, due: _Due) -> bool:
        due.posts += 1
        request = urllib.request.Request(
            self.options.url, due.body, {"Content-Type": due.content_type}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=POST_TIMEOUT) as answer:
                return 200 <= int(answer.status) < 300
        except (urllib.error.URLError, OSError, ValueError):
            return False


def _draws(seed: int | None, request_id: str, number: str) -> random.Random:
    material = f"{seed}\n{request_id}\n{number}".encode()
    return random.Random(int.from_bytes(hashlib.sha256(material).digest()[:8], "big"))


def _drawn_status(mix: tuple[tuple[str, float], ...], draw: float) -> str:
    for status, share in mix:
        if draw < share:
            return status
        draw -= share
    return mix[-1][0]


def _shape(option: str, draw: random.Random) -> str:
    return draw.choice(SHAPES) if option == "mixed" else option


def receipt_body(
    ticket: str, number: str, status: str, when: float, shape: str, draw: random.Random
) -> tuple[bytes, str]:
    """The POST body and its content type, in the old or new shape, as JSON or a form."""
    # An answered call lasts as long as the text takes to read; charged by started 30 s.
    seconds = draw.randint(8, 75) if status == "DELIVERED" else 0
    charged = -(-seconds // 30) * 30
    fields: dict[str, Any] = {
        "message_id": ticket,
        "number": number,
        "status": status,
        "delivery_date": datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M:%S"),
    }
    durations = {"call_duration": seconds, "charged_duration": charged}
    if shape.endswith("-new"):
        fields |= {"channel": "voice_sms", "meta_data": durations}
    else:
        fields |= durations
    if shape.startswith("json"):
        return json.dumps(fields).encode(), "application/json"
    return _form(fields).encode(), "application/x-www-form-urlencoded"


def _form(fields: Mapping[str, Any]) -> str:
    """A form as PHP writes nested fields: meta_data[call_duration]=12."""
    flat: list[tuple[str, str]] = []
    for key, value in fields.items():
        if isinstance(value, Mapping):
            flat += [(f"{key}[{k}]", str(v)) for k, v in value.items()]
        else:
            flat.append((key, str(value)))
    return urlencode(flat)
