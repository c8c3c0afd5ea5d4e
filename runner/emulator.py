"""A loopback HTTP server that behaves like the Octopush Voice SMS API (DESIGN.md §1, §6).

`_Backend` holds the state and answers requests as data (`Reply`); `Emulator` only runs the
HTTP server around it. Faults are drawn per send request, before validation.
"""

from __future__ import annotations

import contextlib
import enum
import importlib.resources
import json
import random
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import parse_qs

import jsonschema

from runner.webhook import DEFAULT_MIX, Webhook, WebhookOptions, parse_mix, parse_script

API_PREFIX = "/v1/public"
SEND_PATH = f"{API_PREFIX}/voice-campaign/send"
BALANCE_PATH = f"{API_PREFIX}/wallet/check-balance"
CANCEL_PATH = f"{API_PREFIX}/voice-campaign/cancel"
CANCEL_LEAD = 600.0  # the provider cancels only more than 10 minutes before send_at
DEDUP_WINDOW = 24 * 3600.0
AUTO_REMOVE_PRICE = 0.01
POLL_INTERVAL = 0.02  # how soon stop() is noticed; socketserver's 0.5 s made every test slow

# Every refusal the emulator can give: key -> (Octopush code, message). Validation keys are
# "field/keyword" or "field", "*" catches the rest. 101-120 and 442 are the provider's codes
# (100 "malformed" and 107 "text missing" from its legacy list); 441 and 443-448 are the
# emulator's own choice for fields the provider documents no code for.
CODES: dict[str, tuple[int, str]] = {
    "credentials": (101, "Invalid credentials."),
    "credit": (104, "Not enough credit."),
    "duplicate": (120, "A request with the same request_id was already sent."),
    "payload": (400, "Payload validation error."),
    "bad_json": (400, "Request body is not a JSON object."),
    "not_found": (404, "Not found."),
    "method": (405, "Method not allowed."),
    "too_many": (429, "Too many requests."),
    "server_error": (500, "Internal server error."),
    "text/maxLength": (102, "Text too long."),
    "text": (107, "Text missing, empty or outside the GSM 03.38 alphabet."),
    "sender": (106, "Invalid sender: 3 to 11 letters or digits."),
    "recipients": (117, "No valid number."),
    "voice_language": (442, "Voice language not supported."),
    "voice_gender": (441, "Voice gender not supported."),
    "purpose": (443, "Purpose must be alert or wholesale."),
    "send_at": (444, "send_at must be an ISO 8601 date-time with an offset."),
    "request_id": (445, "request_id must be a string of 1 to 64 characters."),
    "simulation_mode": (446, "simulation_mode must be a boolean."),
    "auto_remove_blacklisted_numbers": (447, "auto_remove_blacklisted_numbers must be a boolean."),
    "product_name": (448, "Unknown product_name: use vocal_sms."),
    "country_code": (449, "country_code is required with product_name."),
    "*": (100, "Unknown field or malformed body."),
    # cancel refusals: the provider documents none of their codes, these are the emulator's
    "ticket_unknown": (450, "Unknown ticket_number."),
    "not_scheduled": (451, "This campaign is not scheduled: sent or cancelled already."),
    "too_late": (452, "A campaign can only be cancelled more than 10 minutes before send_at."),
    "cancel_refused": (453, "Cancellation refused."),
}

_REQUIRED = re.compile(r"^'(?P<field>[^']+)' is a required property$")


class Fault(enum.Enum):
    NONE = "none"
    TOO_MANY_REQUESTS = "429"
    ERROR_BEFORE = "500-before"
    ERROR_AFTER = "500-after"
    DROP_AFTER = "drop-after"


@dataclass(frozen=True)
class EmulatorOptions:
    host: str = "127.0.0.1"
    port: int = 0
    login: str | None = None
    key: str | None = field(default=None, repr=False)
    credit: float = 1000.0
    price_per_contact: float = 0.05
    latency: float = 0.0
    rate_429: float = 0.0
    rate_500_before: float = 0.0
    rate_500_after: float = 0.0
    rate_drop_after: float = 0.0
    retry_after: int = 1
    seed: int | None = None
    record: str | None = None
    clock_offset: float = 0.0  # seconds added to the clock: the provider's time, for tests
    remember: str | None = None  # a record file of request_ids accepted earlier (one provider)
    refuse_cancels: bool = False  # refuse every cancel (as the provider may: limits, sizes)
    drop_cancel_answers: bool = False  # make each cancel, then drop the connection unanswered
    webhook: str | None = None  # where delivery receipts are POSTed (runner.webhook)
    receipts: str = DEFAULT_MIX  # their status mix, e.g. DELIVERED=0.8,BUSY=0.2
    receipts_for: tuple[str, ...] = ()  # +NUMBER=STATUS,...: scripted statuses, for tests
    receipt_delay: float = 1.0  # seconds from an immediate call to its receipt
    receipt_shape: str = "mixed"  # json-old, json-new, form-old, form-new, or mixed


@dataclass(frozen=True)
class SendRecord:
    ticket_number: str
    request_id: str | None
    time: str
    text: str
    recipients: tuple[str, ...]
    sender: str | None
    send_at: str | None
    purpose: str
    voice_gender: str
    voice_language: str
    total_cost: float


@dataclass(frozen=True)
class Reply:
    status: int
    body: Mapping[str, Any] | None = None
    headers: tuple[tuple[str, str], ...] = ()
    drop: bool = False


def _error(status: int, key: str) -> Reply:
    code, message = CODES[key]
    return Reply(status, {"code": code, "message": message})


def _validation_error(problems: list[tuple[int, str]]) -> Reply:
    code, message = CODES["payload"]
    nested = [{"code": c, "message": m} for c, m in problems]
    return Reply(400, {"code": code, "message": message, "validation_errors": nested})


class PayloadChecker:
    """The voice-send schema, compiled once, with a fast path for big recipient lists.

    jsonschema spends ~12 µs per recipient; when every recipient is a well-formed
    `{"phone_number": ...}` (checked here with the schema's own pattern), validating the first
    one alone gives the same answer for a fraction of the cost.
    """

    def __init__(self) -> None:
        source = importlib.resources.files("runner.schemas").joinpath("voice-send.schema.json")
        schema = json.loads(source.read_text(encoding="utf-8"))
        self._validator = jsonschema.Draft202012Validator(schema)
        recipients = schema["properties"]["recipients"]
        self._max_recipients: int = recipients["maxItems"]
        self._number = re.compile(recipients["items"]["properties"]["phone_number"]["pattern"])

    def problems(self, payload: Any) -> list[tuple[int, str]]:
        """Every distinct (code, message) the payload breaks, sorted by code."""
        if self._uniform_recipients(payload):
            payload = {**payload, "recipients": payload["recipients"][:1]}
        return problems_in(self._validator, payload)

    def _uniform_recipients(self, payload: Any) -> bool:
        recipients = payload.get("recipients") if isinstance(payload, dict) else None
        if not isinstance(recipients, list) or not 1 < len(recipients) <= self._max_recipients:
            return False
        return all(self._is_plain_number(item) for item in recipients)

    def _is_plain_number(self, item: Any) -> bool:
        if not isinstance(item, dict) or len(item) != 1:
            return False
        number = item.get("phone_number")
        return isinstance(number, str) and self._number.search(number) is not None


def _field_of(error: Any) -> str:
    if error.absolute_path:
        return str(error.absolute_path[0])
    match = _REQUIRED.match(error.message) if error.validator == "required" else None
    return match["field"] if match else "*"


def problems_in(validator: Any, payload: Any) -> list[tuple[int, str]]:
    """Every distinct (code, message) the payload breaks under `validator`, sorted by code."""
    found: set[tuple[int, str]] = set()
    for error in validator.iter_errors(payload):
        name = _field_of(error)
        found.add(CODES.get(f"{name}/{error.validator}") or CODES.get(name) or CODES["*"])
    return sorted(found)


def _new_ticket() -> str:
    return f"voice_{uuid.uuid4().hex[:13]}"


class _Backend:
    """The API's state and rules, with no HTTP in sight. One lock guards all of it."""

    def __init__(self, options: EmulatorOptions, clock: Callable[[], float]) -> None:
        self.options = options
        self._real_clock = clock
        self._lock = threading.Lock()
        self._rng = random.Random(options.seed)
        self._scripted: deque[Fault] = deque()
        self._checker = PayloadChecker()
        self.credit = options.credit
        self._accepted_at: dict[str, float] = {}
        self._sends: list[SendRecord] = []
        self._booked: dict[str, tuple[float, float]] = {}  # ticket -> (send_at, cost), ahead
        self._cancelled: set[str] = set()
        self._record: BinaryIO | None = None
        self._webhook: Webhook | None = None
        if options.remember:
            self._accepted_at.update(_remembered(options.remember))

    def now(self) -> float:
        """The provider's clock: what its Date header says."""
        return self._real_clock() + self.options.clock_offset

    def open_record(self) -> None:
        if self.options.record and self._record is None:
            # Unbuffered: each record is one write() of one whole line, never split in two.
            self._record = open(self.options.record, "ab", buffering=0)  # noqa: SIM115
        if self.options.webhook and self._webhook is None:
            self._webhook = Webhook(_webhook_options(self.options), self._real_clock)

    def close_record(self) -> None:
        with self._lock:
            if self._record is not None:
                self._record.close()
                self._record = None
            webhook, self._webhook = self._webhook, None
        if webhook is not None:
            webhook.stop()

    def sends(self) -> list[SendRecord]:
        with self._lock:
            return list(self._sends)

    def script(self, faults: tuple[Fault, ...]) -> None:
        with self._lock:
            self._scripted.extend(faults)

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        if self.options.latency > 0:
            time.sleep(self.options.latency)
        path, _, query = target.partition("?")
        path = path.rstrip("/")
        if path not in (SEND_PATH, BALANCE_PATH, CANCEL_PATH):
            return _error(404, "not_found")
        if path == CANCEL_PATH:
            return self._cancel(headers, body) if method == "DELETE" else _error(405, "method")
        if path == SEND_PATH:
            return self._send(headers, body) if method == "POST" else _error(405, "method")
        return self._balance(headers, query) if method == "GET" else _error(405, "method")

    def _balance(self, headers: Mapping[str, str], query: str) -> Reply:
        if not self._authorized(headers):
            return _error(401, "credentials")
        asked = parse_qs(query)
        product = asked.get("product_name")
        if product is None:  # the account's credit, in euros
            with self._lock:
                return Reply(200, {"amount": self.credit, "unit": "euros"})
        if product != ["vocal_sms"]:
            return _validation_error([CODES["product_name"]])
        if not asked.get("country_code"):
            return _validation_error([CODES["country_code"]])
        with self._lock:  # counted in that product's units: calls the credit still pays for
            units = int(self.credit / self.options.price_per_contact + 1e-9)
        return Reply(200, {"amount": units, "unit": "units"})

    def _send(self, headers: Mapping[str, str], body: bytes) -> Reply:
        fault = self._draw_fault()
        if fault is Fault.TOO_MANY_REQUESTS:
            return self._too_many()
        if fault is Fault.ERROR_BEFORE:
            return _error(500, "server_error")
        if not self._authorized(headers):
            return _error(401, "credentials")
        payload = _parse_object(body)
        if payload is None:
            return _error(400, "bad_json")
        problems = self._checker.problems(payload)
        if problems:
            return _validation_error(problems)
        reply, committed = self._accept(payload)
        return _after_fault(reply, fault) if committed else reply

    def _cancel(self, headers: Mapping[str, str], body: bytes) -> Reply:
        """DELETE voice-campaign/cancel: 204 for a booking still more than 10 minutes ahead."""
        if not self._authorized(headers):
            return _error(401, "credentials")
        ticket = str((_parse_object(body) or {}).get("ticket_number") or "")
        with self._lock:
            booked = self._booked.get(ticket)
            if self.options.refuse_cancels:
                return _validation_error([CODES["cancel_refused"]])
            if booked is None:
                known = ticket in self._cancelled or any(
                    s.ticket_number == ticket for s in self._sends
                )
                return _validation_error([CODES["not_scheduled" if known else "ticket_unknown"]])
            due, cost = booked
            if due - self.now() <= CANCEL_LEAD:
                return _validation_error(
                    [CODES["not_scheduled" if due <= self.now() else "too_late"]]
                )
            del self._booked[ticket]
            self._cancelled.add(ticket)
            if self._webhook is not None:
                self._webhook.cancelled(ticket)
            self.credit = round(self.credit + cost, 6)
            self._write_record({"cancelled": ticket, "time": _iso(self.now())})
        return Reply(0, drop=True) if self.options.drop_cancel_answers else Reply(204)

    def _too_many(self) -> Reply:
        code, message = CODES["too_many"]
        header = ("Retry-After", str(self.options.retry_after))
        return Reply(429, {"code": code, "message": message}, (header,))

    def _draw_fault(self) -> Fault:
        opts = self.options
        with self._lock:
            if self._scripted:
                return self._scripted.popleft()
            draw = self._rng.random()
        shares = (
            (opts.rate_429, Fault.TOO_MANY_REQUESTS),
            (opts.rate_500_before, Fault.ERROR_BEFORE),
            (opts.rate_500_after, Fault.ERROR_AFTER),
            (opts.rate_drop_after, Fault.DROP_AFTER),
        )
        for share, fault in shares:
            if draw < share:
                return fault
            draw -= share
        return Fault.NONE

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        return _matches(headers.get("api-login"), self.options.login) and _matches(
            headers.get("api-key"), self.options.key
        )

    def _cost(self, payload: Mapping[str, Any]) -> float:
        extra = AUTO_REMOVE_PRICE if payload.get("auto_remove_blacklisted_numbers") else 0.0
        return round(len(payload["recipients"]) * self.options.price_per_contact + extra, 6)

    def _accept(self, payload: Mapping[str, Any]) -> tuple[Reply, bool]:
        """Refuse, simulate or commit a valid payload; True when it was committed."""
        cost = self._cost(payload)
        request_id = payload.get("request_id")
        simulated = bool(payload.get("simulation_mode"))
        with self._lock:
            now = self.now()
            if not simulated and self._already_sent(request_id, now):
                return _validation_error([CODES["duplicate"]]), False
            if cost > self.credit + 1e-9:
                return _error(400, "credit"), False
            ticket = _new_ticket()
            if not simulated:
                self._commit(payload, ticket, cost, now)
            credit = self.credit
        return Reply(201, _receipt(ticket, len(payload["recipients"]), cost, credit)), not simulated

    def _already_sent(self, request_id: str | None, now: float) -> bool:
        accepted = self._accepted_at.get(request_id) if request_id else None
        return accepted is not None and now - accepted < DEDUP_WINDOW

    def _commit(self, payload: Mapping[str, Any], ticket: str, cost: float, now: float) -> None:
        self.credit = round(self.credit - cost, 6)
        request_id = payload.get("request_id")
        if request_id:
            self._accepted_at[request_id] = now
        record = _record_of(payload, ticket, cost, now)
        self._sends.append(record)
        due = _due(record.send_at)
        if due is not None and due > now:
            self._booked[ticket] = (due, cost)
        self._write_record(asdict(record))
        if self._webhook is not None:
            due = _send_time(payload.get("send_at"), now) - self.options.clock_offset
            self._webhook.call_made(ticket, request_id, record.recipients, due)

    def _write_record(self, data: Mapping[str, Any]) -> None:
        """One line of the record: a send, or `{"cancelled": ticket}` (its calls never happen)."""
        if self._record is not None:
            line = json.dumps(data, ensure_ascii=False) + "\n"
            self._record.write(line.encode("utf-8"))


def _webhook_options(options: EmulatorOptions) -> WebhookOptions:
    assert options.webhook is not None
    return WebhookOptions(
        options.webhook,
        parse_mix(options.receipts),
        options.seed,
        options.receipt_delay,
        options.receipt_shape,
        parse_script(options.receipts_for),
    )


def _send_time(send_at: str | None, now: float) -> float:
    """When the provider makes the call, by its clock: send_at, or now for an immediate one."""
    if not send_at:
        return now
    try:
        return max(now, datetime.fromisoformat(send_at).timestamp())
    except ValueError:  # the schema accepts forms fromisoformat may not: call at once
        return now


def _due(send_at: str | None) -> float | None:
    try:
        return datetime.fromisoformat(send_at).timestamp() if send_at else None
    except ValueError:
        return None


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat()


def _remembered(path: str) -> dict[str, float]:
    """request_id -> time accepted, from another emulator's record: the same provider, later."""
    accepted: dict[str, float] = {}
    with contextlib.suppress(FileNotFoundError), open(path, encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line) if line.strip() else {}
            if record.get("request_id"):
                accepted[record["request_id"]] = datetime.fromisoformat(record["time"]).timestamp()
    return accepted


def _matches(given: str | None, expected: str | None) -> bool:
    return bool(given) if expected is None else given == expected


def _parse_object(body: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _after_fault(reply: Reply, fault: Fault) -> Reply:
    if fault is Fault.ERROR_AFTER:
        return _error(500, "server_error")
    if fault is Fault.DROP_AFTER:
        return Reply(0, drop=True)
    return reply


def _receipt(ticket: str, contacts: int, cost: float, credit: float) -> dict[str, Any]:
    return {
        "ticket_number": ticket,
        "number_of_contacts": contacts,
        "total_cost": cost,
        "estimated_duration": 30,
        "residual_credit": credit,
    }


def _record_of(payload: Mapping[str, Any], ticket: str, cost: float, now: float) -> SendRecord:
    return SendRecord(
        ticket_number=ticket,
        request_id=payload.get("request_id"),
        time=datetime.fromtimestamp(now, UTC).isoformat(),
        text=payload["text"],
        recipients=tuple(r["phone_number"] for r in payload["recipients"]),
        sender=payload.get("sender"),
        send_at=payload.get("send_at"),
        purpose=payload["purpose"],
        voice_gender=payload["voice_gender"],
        voice_language=payload["voice_language"],
        total_cost=cost,
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], backend: _Backend) -> None:
        self.backend = backend
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up mid-answer are normal here (timeouts, fault tests)."""

    def close_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.connections)
        for connection in connections:
            _shutdown_quietly(connection)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the emulator serves benchmarks and tests."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header, by the emulated provider's clock (which tests may move)."""
        moment = self.server.backend.now() if timestamp is None else timestamp
        return formatdate(moment, usegmt=True)

    def _dispatch(self) -> None:
        body = self.rfile.read(_content_length(self.headers.get("Content-Length")))
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.backend.handle(self.command, self.path, headers, body)
        if reply.drop:
            self.close_connection = True
            _shutdown_quietly(self.connection)
        else:
            self._write(reply)

    def _write(self, reply: Reply) -> None:
        data = b"" if reply.body is None else json.dumps(reply.body).encode("utf-8")
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def _content_length(value: str | None) -> int:
    try:
        return max(0, int(value or 0))
    except ValueError:
        return 0


def _shutdown_quietly(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already gone
        connection.shutdown(socket.SHUT_RDWR)


class Emulator:
    """The emulator's lifecycle: `start()` in the background or `serve_forever()` in front."""

    def __init__(
        self, options: EmulatorOptions | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.options = options or EmulatorOptions()
        self._backend = _Backend(self.options, clock)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._serving = False
        self._close_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Emulator(url={self.url if self._server else None!r})"

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL of the API, e.g. http://127.0.0.1:8099/v1/public."""
        if self._server is None:
            raise RuntimeError("the emulator is not bound yet: call bind() or start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{API_PREFIX}"

    @property
    def credit(self) -> float:
        return self._backend.credit

    def sends(self) -> list[SendRecord]:
        """Every accepted (not simulated) send, oldest first."""
        return self._backend.sends()

    def script_faults(self, *faults: Fault) -> None:
        """Force the faults of the next send requests, before any random draw (for tests)."""
        self._backend.script(faults)

    def bind(self) -> Emulator:
        """Open the listening socket and the record file, so that `url` is known."""
        if self._server is None:
            address = (self.options.host, self.options.port)
            self._server = _Server(address, self._backend)
            self._backend.open_record()
        return self

    def start(self) -> Emulator:
        """Serve in a background daemon thread."""
        server = self.bind()._server
        assert server is not None
        if self._thread is None:
            self._serving = True
            self._thread = threading.Thread(
                target=server.serve_forever,
                args=(POLL_INTERVAL,),
                name="octopush-emulator",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until `stop()` from another thread or an interrupt."""
        server = self.bind()._server
        assert server is not None
        self._serving = True
        try:
            server.serve_forever(POLL_INTERVAL)
        finally:
            self._serving = False
            self._close()

    def stop(self) -> None:
        server = self._server
        if server is not None and self._serving:
            server.shutdown()  # returns once the serving loop has left
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._serving = False
        self._close()

    def _close(self) -> None:
        with self._close_lock:
            if self._server is not None:
                self._server.close_connections()
                self._server.server_close()
                self._server = None
        self._backend.close_record()
