"""Bookings: batches accepted for a `send_at` still to come, and the cancels that undo them.

A booked batch is a call that has not happened yet: the provider holds it under a ticket until
its time. While it is ahead, a changed message or a removed campaign must cancel it before a
new version is booked, or its people would hear both. Once its time has passed it is simply a
delivery. A cancel is recorded like a send: an intent before the request, an outcome after.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runner.state.shape import is_time

REASON_LIMIT = 200


@dataclass
class Booking:
    request_id: str
    ticket: str | None  # None when the provider only answered a repeat: it cannot be cancelled
    fingerprint: str
    send_at: str  # as the body said it, with its offset
    due: float  # send_at in seconds since 1970
    recipients: tuple[str, ...]  # digests
    cancels: int = 0  # cancel requests made for it, none confirmed
    uncertain: bool = False  # a cancel request had an unknown fate: only a 204 settles it now
    refused: str = ""  # the provider's last refusal of a cancel
    kept: bool = False  # `state accept` adopted a new version: this booking stands


@dataclass(frozen=True)
class CancelIntent:
    """Written, durably, before a cancel request leaves."""

    campaign: str
    request_id: str  # the booking's
    ticket: str
    time: float
    kind: str = "cancel"


@dataclass(frozen=True)
class CancelOutcome:
    """The answer to a cancel: cancelled (204), refused, or unknown (no answer)."""

    campaign: str
    request_id: str
    status: str
    time: float
    code: int | None = None
    message: str = ""
    kind: str = "cancel-outcome"


def due_time(body: Mapping[str, Any]) -> float | None:
    """When a body's calls go out, or None for "now" (or a send_at no one can read)."""
    send_at = body.get("send_at")
    if not isinstance(send_at, str):
        return None
    try:
        moment = datetime.fromisoformat(send_at)
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo else None


def booking_of(
    request_id: str,
    fingerprint: str,
    body: Mapping[str, Any],
    recipients: tuple[str, ...],
    ticket: str | None,
    when: float,
) -> Booking | None:
    """The booking an accepted batch makes, or None when its calls go out now."""
    due = due_time(body)
    if due is None or due <= when:
        return None
    return Booking(request_id, ticket, fingerprint, str(body["send_at"]), due, recipients)


def booking_to_dict(booking: Booking) -> dict[str, Any]:
    data = dict(vars(booking))
    for key, default in (("cancels", 0), ("uncertain", False), ("refused", ""), ("kept", False)):
        if data[key] == default:
            del data[key]
    data["recipients"] = list(booking.recipients)
    return data


def booking_from_dict(data: Any, where: str) -> Booking:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: not an object")
    if not isinstance(data.get("recipients"), list):  # a string would be one digest a letter
        raise ValueError(f"{where}: recipients is not a list of digests")
    try:
        booking = Booking(**{**data, "recipients": tuple(data["recipients"])})
    except (TypeError, KeyError) as e:
        raise ValueError(f"{where}: not a booking ({e})") from e
    checks = (
        isinstance(booking.request_id, str),
        booking.ticket is None or isinstance(booking.ticket, str),
        isinstance(booking.fingerprint, str),
        isinstance(booking.send_at, str),
        is_time(booking.due),
        all(isinstance(d, str) for d in booking.recipients),
        type(booking.cancels) is int and isinstance(booking.refused, str),
        type(booking.uncertain) is bool and type(booking.kept) is bool,
    )
    if not all(checks):
        raise ValueError(f"{where}: a field of the booking has the wrong type")
    return booking


def keep_overlapping(
    bookings: Mapping[str, Booking], fingerprint: str, digests: Iterable[str]
) -> None:
    """`state accept` of a new version: the bookings of older ones to these people stand."""
    accepted = set(digests)
    for booking in bookings.values():
        if booking.fingerprint != fingerprint and accepted.intersection(booking.recipients):
            booking.kept = True


def drop_past(bookings: dict[str, Booking], when: float) -> None:
    """A booking whose time has passed is a delivery: nothing is left to cancel."""
    for request_id in [r for r, b in bookings.items() if b.due <= when]:
        del bookings[request_id]


def cancel_record(booking: Booking, outcome: CancelOutcome) -> dict[str, Any]:
    """The line `state show` lists among the sends."""
    record = {
        "request_id": booking.request_id,
        "fingerprint": booking.fingerprint,
        "contacts": len(booking.recipients),
        "outcome": "cancelled",
        "time": round(outcome.time, 3),
        "ticket": booking.ticket,
    }
    return {k: v for k, v in record.items() if v is not None}
