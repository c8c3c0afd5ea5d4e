"""A delivery receipt: what the provider says became of one call, parsed and checked.

The provider POSTs one receipt per number to the URL set in the account. Two shapes are
documented, and both arrive as JSON or as a form:

- the Voice SMS receipt: `message_id`, `number`, `status`, `delivery_date` ("Y-m-d H:i:s"),
  `call_duration`, `charged_duration` (the durations as strings in the example):
  https://dev.octopush.com/en/sms-gateway-api-documentation/webhook-sms-vocal-ar-acknowledge-receipt
- the newer common receipt adds `channel` ("voice_sms" for a call) and may carry the durations
  under `meta_data`: https://dev.octopush.com/en/sms-gateway-api-documentation/callbacks/acknowledge-receipt

A receipt keeps no phone number: the number is read into E.164 and kept as the same SHA-256
digest the state keys recipients by, so receipts and sends meet without either holding a number.
Problems are one line each and never repeat the number.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from runner.recipients import NumberParser, digest_number

STATUSES = (
    "DELIVERED",
    "NOT_DELIVERED",
    "NOT_DELIVERABLE",
    "BUSY",
    "REFUSED",
    "BLACKLISTED_NUMBER",
    "UNKNOWN_DELIVERY",
    "UNDEFINED",
)
NEVER_AGAIN = frozenset({"REFUSED", "BLACKLISTED_NUMBER", "NOT_DELIVERABLE"})
MAX_BODY = 16 * 1024  # a receipt is ~200 bytes; anything near this is not one
MAX_DURATION = 7 * 24 * 3600  # seconds: no call lasts a week
VOICE_CHANNEL = "voice_sms"

_TICKET = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
_STATUS = re.compile(r"[A-Z][A-Z0-9_]{0,39}")


@dataclass(frozen=True)
class Receipt:
    ticket: str  # the provider's message_id = the send's ticket
    digest: str  # SHA-256 hex of the E.164 number, as the state keys recipients
    status: str  # one of STATUSES, or a newer word of the provider's
    delivery_date: str | None  # as the provider sent it ("Y-m-d H:i:s")
    call_duration: int | None  # seconds
    charged_duration: int | None  # seconds
    received: float  # when the receiver stored it (epoch seconds)

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What makes two receipts the same one: a repeat of it changes nothing."""
        return (self.ticket, self.digest, self.status, self.delivery_date or "")


def parse_receipt(content_type: str, body: bytes, received: float | None = None) -> Receipt:
    """The receipt in a webhook body (JSON or form); ValueError with one clear line if not."""
    fields = _fields(content_type, body)
    channel = fields.get("channel")
    if channel is not None and channel != VOICE_CHANNEL:
        raise ValueError(f"channel: {_shown(channel)} is not {VOICE_CHANNEL}; send voice receipts")
    meta = fields.get("meta_data")
    meta = meta if isinstance(meta, Mapping) else {}
    return Receipt(
        ticket=_ticket(fields.get("message_id")),
        digest=_digest(fields.get("number")),
        status=_status(fields.get("status")),
        delivery_date=_date(fields.get("delivery_date")),
        call_duration=_duration("call_duration", meta, fields),
        charged_duration=_duration("charged_duration", meta, fields),
        received=time.time() if received is None else received,
    )


def _fields(content_type: str, body: bytes) -> Mapping[str, Any]:
    if len(body) > MAX_BODY:
        raise ValueError(f"body: larger than {MAX_BODY} bytes; send one receipt per request")
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        return _form(body)
    if kind in ("application/json", "") or kind.endswith("+json"):
        return _json(body)
    raise ValueError(f"Content-Type: {_shown(kind)} is not JSON or a form; send either")


def _json(body: bytes) -> Mapping[str, Any]:
    try:
        fields = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # nested past Python's limit too
        raise ValueError("body: not valid JSON; send a JSON object or a form") from None
    if not isinstance(fields, dict):
        raise ValueError("body: not a JSON object; send one receipt as an object")
    return fields


def _form(body: bytes) -> Mapping[str, Any]:
    """A form's fields; `meta_data[call_duration]=12` (PHP's nesting) becomes meta_data."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("body: not a valid form; send application/x-www-form-urlencoded") from None
    fields: dict[str, Any] = {}
    meta: dict[str, str] = {}
    for name, value in pairs:
        if name.startswith("meta_data[") and name.endswith("]"):
            meta[name[len("meta_data[") : -1]] = value
        else:
            fields[name] = value
    if meta:
        fields["meta_data"] = meta
    return fields


def _ticket(value: Any) -> str:
    if value is None or value == "":
        raise ValueError("message_id: missing; it must be the ticket of the call")
    if not isinstance(value, str) or not _TICKET.fullmatch(value):
        raise ValueError("message_id: not a ticket (1-128 letters, digits, _ . : -)")
    return value


def _digest(value: Any) -> str:
    if value is None or value == "":
        raise ValueError("number: missing; it must be the number that was called")
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError("number: not a phone number; send it as a string in E.164")
    text = str(value).strip()
    if text.isascii() and text.isdigit():  # some payloads drop the leading +
        text = "+" + text
    number = _numbers.e164(text)
    if number is None:
        raise ValueError("number: not a valid phone number in E.164 (not shown)")
    return digest_number(number)


class _Numbers:
    """A shared parser: a number in E.164 is checked once per shape (runner.e164), not once
    per receipt. Renewed now and then, so a long-lived receiver's caches stay bounded."""

    RENEW_AFTER = 100_000

    def __init__(self) -> None:
        self.parser, self.uses = NumberParser(None), 0

    def e164(self, text: str) -> str | None:
        self.uses += 1
        if self.uses > self.RENEW_AFTER:
            self.parser, self.uses = NumberParser(None), 0
        return self.parser.e164(text)


_numbers = _Numbers()


def _status(value: Any) -> str:
    """A status the provider names: one of STATUSES, or a newer word in the same form.

    A newer word is kept, not refused: refused, the provider would post it again and again,
    and the call it reports would look unanswered forever. It never makes anyone called again
    (`retry: when:` lists known statuses only) and `status` counts it as unknown.
    """
    if value is None or value == "":
        raise ValueError(f"status: missing; it must be one of {', '.join(STATUSES)}")
    if not isinstance(value, str) or not _STATUS.fullmatch(value.upper()):
        raise ValueError(f"status: {_shown(value)} is not a status word (e.g. DELIVERED, BUSY)")
    return value.upper()


def _date(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise ValueError("delivery_date: not a date as Y-m-d H:i:s (e.g. 2020-11-04 11:11:45)")
    return value


def _duration(name: str, meta: Mapping[str, Any], fields: Mapping[str, Any]) -> int | None:
    value = meta.get(name, fields.get(name))
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_DURATION:
        raise ValueError(f"{name}: not a whole number of seconds from 0 to {MAX_DURATION}")
    return value


def _shown(value: Any) -> str:
    """A short, escaped rendering of a value that is not a number: safe in any log line."""
    text = value if isinstance(value, str) else type(value).__name__
    return ascii(text[:40] + ("..." if len(text) > 40 else ""))


RECORD_FIELDS = (
    "ticket",
    "digest",
    "status",
    "delivery_date",
    "call_duration",
    "charged_duration",
    "received",
)


def receipt_json(receipt: Receipt) -> bytes:
    """One stored line: compact JSON, the fields in a fixed order."""
    values = [getattr(receipt, name) for name in RECORD_FIELDS]
    return json.dumps(dict(zip(RECORD_FIELDS, values, strict=True)), separators=(",", ":")).encode()


def receipt_from_dict(data: Any) -> Receipt:
    """A stored receipt read back; ValueError if it is not one (a corrupt or crafted store)."""
    if not isinstance(data, dict) or set(data) != set(RECORD_FIELDS):
        raise ValueError(f"not a receipt (fields {', '.join(RECORD_FIELDS)})")
    ok = (
        isinstance(data["ticket"], str)
        and _TICKET.fullmatch(data["ticket"])
        and isinstance(data["digest"], str)
        and re.fullmatch(r"[0-9a-f]{64}", data["digest"])
        and isinstance(data["status"], str)
        and _STATUS.fullmatch(data["status"])
        and (data["delivery_date"] is None or _date_text(data["delivery_date"]))
        and all(_stored_int(data[n]) for n in ("call_duration", "charged_duration"))
        and _stored_time(data["received"])
    )
    if not ok:
        raise ValueError("a receipt field has a value no receiver writes")
    return Receipt(**data)


def _stored_time(value: Any) -> bool:
    """A receiver writes time.time(): a finite number, never a bool (JSON true is an int here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _stored_int(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)


def _date_text(value: Any) -> bool:
    return isinstance(value, str) and _DATE.fullmatch(value) is not None
