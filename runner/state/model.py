"""What the state knows, and how each durable record changes it.

Every backend stores the same records; folding them in order gives the same State anywhere.
The state holds digests of numbers, never the numbers themselves.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import phonenumbers

from runner.state.bookings import (
    Booking,
    CancelIntent,
    CancelOutcome,
    booking_of,
    cancel_record,
    drop_past,
    keep_overlapping,
)
from runner.state.shape import check_entry
from runner.wire import HEX, spliced_json

STATE_VERSION = 1
REASON_LIMIT = 200  # characters of a provider's refusal kept in a send record
RESOLVE_WINDOW_SECONDS = 23 * 3600  # the provider dedups request_ids for 24 h; keep an hour spare


@dataclass(frozen=True)
class Intent:
    """Written, durably, before a request leaves: what is about to be sent."""

    request_id: str
    campaign: str
    fingerprint: str
    body: dict[str, Any]
    recipients: tuple[str, ...]  # digests
    time: float
    simulated: bool = False  # only in states of older runners: such an intent is dropped
    kind: str = "intent"
    attempts: int = 1  # requests made with this request_id, counted as intents are folded
    # An attempt of this request_id had an unknown fate (no outcome, or "unknown"): from then
    # on only a duplicate settles it; any other refusal says nothing of that attempt.
    uncertain: bool = False
    call: int = 1  # which call of the message this is for its recipients: 2 and on re-call them


@dataclass(frozen=True)
class Outcome:
    """Written after the answer: sent, duplicate (sent earlier), rejected or unknown."""

    request_id: str
    status: str
    time: float
    ticket: str | None = None
    contacts: int | None = None
    cost: float | None = None
    code: int | None = None
    message: str = ""
    kind: str = "outcome"


@dataclass(frozen=True)
class Accept:
    """Recipients recorded as delivered without sending (adopting campaigns sent elsewhere)."""

    campaign: str
    fingerprint: str
    body: dict[str, Any]
    recipients: tuple[str, ...]
    time: float
    kind: str = "accept"


@dataclass(frozen=True)
class Resolve:
    """A person's verdict on some of a campaign's pending sends (none named: all of them)."""

    campaign: str
    sent: bool
    time: float
    kind: str = "resolve"
    request_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Forget:
    campaign: str
    time: float
    kind: str = "forget"


@dataclass(frozen=True)
class Move:
    """A campaign renamed with `moved_from`: its history now belongs to the new name."""

    campaign: str  # the new name
    moved_from: str
    time: float
    kind: str = "move"


Entry = Intent | Outcome | Accept | Resolve | Forget | CancelIntent | CancelOutcome | Move
_KINDS: dict[str, type[Any]] = {
    "intent": Intent,
    "outcome": Outcome,
    "accept": Accept,
    "resolve": Resolve,
    "forget": Forget,
    "cancel": CancelIntent,
    "cancel-outcome": CancelOutcome,
    "move": Move,
}
DELIVERED = frozenset({"sent", "duplicate"})
SETTLING = DELIVERED | {"simulated"}  # outcomes that settle a batch, whatever came before


def body_for_state(body: Mapping[str, Any], numbers: Iterable[str]) -> dict[str, Any]:
    """The body as the state keeps it: no recipient's number, even one a template put in the text.

    The state only shows these bodies (old text in a diff); sends always use the files' body.
    """
    text = str(body.get("text", ""))
    if not _DIGIT_RUN.search(text):  # no number could be in it: the usual case, and quick
        return dict(body)
    for number in numbers:
        if number[-4:] in text:
            for form in (number, number[1:], _national(number)):
                text = text.replace(form, "[recipient]")
    return {**body, "text": text}


_DIGIT_RUN = re.compile(r"[0-9]{4}")


def _national(number: str) -> str:
    try:
        return str(phonenumbers.parse(number).national_number)
    except phonenumbers.NumberParseException:
        return number


# Fields added later, left out at their default: records read the same by older runners.
_LEFT_OUT_AT_DEFAULT = (("attempts", 1), ("request_ids", ()), ("call", 1))


def entry_to_dict(entry: Entry) -> dict[str, Any]:
    data = dict(vars(entry))  # shallow: dataclasses.asdict copies every digest, 10x slower
    for key, default in _LEFT_OUT_AT_DEFAULT:
        if data.get(key, default) == default:
            data.pop(key, None)
    return data


ENTRY_JSON: dict[str, Any] = {"sort_keys": True, "separators": (",", ":")}


def entry_json(entry: Entry) -> bytes:
    """A journal line: `json.dumps(entry_to_dict(entry), **ENTRY_JSON)`, its digests joined."""
    data = entry_to_dict(entry)
    digests = data.get("recipients")
    if digests:
        text = spliced_json(data, "recipients", digests, ('"', '"'), HEX, **ENTRY_JSON)
        if text is not None:
            return text.encode()
    return json.dumps(data, **ENTRY_JSON).encode()


def entry_from_dict(data: Any, where: str = "record") -> Entry:
    """The record a journal line, database row or pending entry holds; Malformed if it is not
    one (a ValueError)."""
    kind = check_entry(data, _KINDS, where)
    for key in ("recipients", "request_ids"):
        if key in data:
            data = {**data, key: tuple(data[key])}
    entry: Entry = kind(**data)
    return entry


@dataclass
class MessageState:
    body: dict[str, Any]
    # Digests as the keys of a dict: a set that keeps the order of delivery, so a state file
    # only grows at its end (a small diff in git), and writing it needs no sort.
    delivered: dict[str, None] = field(default_factory=dict)
    last_time: float = 0.0


@dataclass
class CampaignState:
    messages: dict[str, MessageState] = field(default_factory=dict)
    sends: list[dict[str, Any]] = field(default_factory=list)
    pending: dict[str, Intent] = field(default_factory=dict)
    # Recipients whose last send of a message was refused, by fingerprint, until delivered:
    # the next plan shows them as failed last time, not as added.
    failed: dict[str, dict[str, None]] = field(default_factory=dict)
    # Batches booked for a send_at still ahead when accepted, by request_id (runner/bookings.py).
    bookings: dict[str, Booking] = field(default_factory=dict)
    # Bookings cancelled, by fingerprint: part of the request_ids of that message from then on,
    # so that booking it again is not refused by the provider as a repeat of the cancelled one.
    rebooked: dict[str, int] = field(default_factory=dict)
    # Calls made of a message to a recipient, by fingerprint then digest, kept only past the
    # first: most recipients are called once, and a state without re-calls stays the same.
    calls: dict[str, dict[str, int]] = field(default_factory=dict)

    def deliver(
        self,
        fingerprint: str,
        body: dict[str, Any],
        digests: tuple[str, ...],
        when: float,
        call: int = 1,
    ) -> None:
        if call > 1:
            made = self.calls.setdefault(fingerprint, {})
            for digest in digests:
                made[digest] = max(made.get(digest, 1), call)
        message = self.messages.setdefault(fingerprint, MessageState(body))
        message.delivered.update(dict.fromkeys(digests))
        message.last_time = max(message.last_time, when)
        refused = self.failed.get(fingerprint)
        if refused:
            for digest in digests:
                refused.pop(digest, None)
            if not refused:
                del self.failed[fingerprint]

    def book(self, intent: Intent, ticket: str | None, when: float) -> None:
        """An accepted batch whose send_at is still ahead: keep it, to cancel it if need be."""
        drop_past(self.bookings, when)
        booking = booking_of(
            intent.request_id, intent.fingerprint, intent.body, intent.recipients, ticket, when
        )
        if booking is not None:
            self.bookings[intent.request_id] = booking

    def unbook(self, booking: Booking, outcome: CancelOutcome) -> None:
        """A confirmed cancel: its people were not called, and may be booked again."""
        del self.bookings[booking.request_id]
        message = self.messages.get(booking.fingerprint)
        if message is not None:
            for digest in booking.recipients:
                message.delivered.pop(digest, None)
        self.rebooked[booking.fingerprint] = self.rebooked.get(booking.fingerprint, 0) + 1
        self.sends.append(cancel_record(booking, outcome))

    def last_failure(self, fingerprint: str) -> dict[str, Any] | None:
        """The latest refused send of this message, with its code and reason."""
        return next(
            (
                s
                for s in reversed(self.sends)
                if s.get("fingerprint") == fingerprint and s.get("outcome") == "rejected"
            ),
            None,
        )

    def absorb(self, other: CampaignState) -> None:
        """Take `other`'s history as well (a rename), copying what it holds: deliveries,
        sends, pending intents (their request_ids unchanged), refusals, and any field added
        later (dicts merged, lists joined), so a field like bookings moves without a change."""
        for fingerprint, message in other.messages.items():
            mine = self.messages.setdefault(fingerprint, MessageState(dict(message.body)))
            mine.delivered.update(message.delivered)
            mine.last_time = max(mine.last_time, message.last_time)
        self.sends = [*self.sends, *other.sends]  # its own first: an older copy's stay a prefix
        self.pending.update(other.pending)
        for fingerprint, refused in other.failed.items():
            heard = self.messages.get(fingerprint, MessageState({})).delivered
            kept = {d: None for d in refused if d not in heard}
            if kept:
                self.failed.setdefault(fingerprint, {}).update(kept)
        for spec in fields(self):
            if spec.name in _ABSORBED:
                continue
            theirs, mine = getattr(other, spec.name), getattr(self, spec.name)
            if isinstance(mine, dict) and isinstance(theirs, dict):
                setattr(self, spec.name, {**theirs, **mine})
            elif isinstance(mine, list) and isinstance(theirs, list):
                setattr(self, spec.name, [*theirs, *mine])

    def delivered_anything(self, digest: str) -> str | None:
        """The most recent fingerprint this recipient heard in this campaign, if any."""
        best: tuple[float, str] | None = None
        for fingerprint, message in self.messages.items():
            if digest in message.delivered and (best is None or message.last_time > best[0]):
                best = (message.last_time, fingerprint)
        return best[1] if best else None


_ABSORBED = frozenset({"messages", "sends", "pending", "failed"})


@dataclass
class State:
    lineage: str
    serial: int = 0
    version: int = STATE_VERSION
    campaigns: dict[str, CampaignState] = field(default_factory=dict)
    # How many times each campaign was forgotten: part of its request_ids from then on, so
    # that the provider does not refuse the calls `state forget` promised as repeats.
    generations: dict[str, int] = field(default_factory=dict)

    @classmethod
    def new(cls) -> State:
        return cls(lineage=str(uuid.uuid4()))

    def fold(self, entry: Entry) -> None:
        """Apply one durable record. Each call is one write: the serial moves on."""
        self.serial += 1
        if isinstance(entry, Intent):
            self._fold_intent(entry)
        elif isinstance(entry, Outcome):
            self._fold_outcome(entry)
        elif isinstance(entry, Accept):
            campaign = self.campaigns.setdefault(entry.campaign, CampaignState())
            campaign.deliver(entry.fingerprint, entry.body, entry.recipients, entry.time)
            keep_overlapping(campaign.bookings, entry.fingerprint, entry.recipients)
        elif isinstance(entry, Resolve):
            self._fold_resolve(entry)
        elif isinstance(entry, Forget):
            self.campaigns.pop(entry.campaign, None)
            self.generations[entry.campaign] = self.generations.get(entry.campaign, 0) + 1
        elif isinstance(entry, CancelIntent | CancelOutcome):
            self._fold_cancel(entry)
        elif isinstance(entry, Move):
            self._fold_move(entry)

    def _fold_move(self, move: Move) -> None:
        """The old name's history joins the new name's; the old name's generation stays, so
        the request_ids its pending sends were made with can still be derived and checked."""
        old = self.campaigns.pop(move.moved_from, None)
        if old is not None and move.moved_from != move.campaign:
            self.campaigns.setdefault(move.campaign, CampaignState()).absorb(old)

    def _fold_intent(self, intent: Intent) -> None:
        if intent.simulated:  # older runners recorded simulations: they reached nobody
            return
        pending = self.campaigns.setdefault(intent.campaign, CampaignState()).pending
        earlier = pending.get(intent.request_id)
        if earlier is not None:
            # A re-send of a batch still pending: the provider's 24 h window runs from the
            # first request it may have accepted, so the age must too.
            # Its earlier attempt had no outcome, or an unknown one.
            intent = replace(
                intent,
                campaign=earlier.campaign,  # the name its request_id was made with (a rename)
                time=min(earlier.time, intent.time),
                attempts=earlier.attempts + 1,
                uncertain=True,
            )
        pending[intent.request_id] = intent

    def _fold_outcome(self, outcome: Outcome) -> None:
        for campaign in self.campaigns.values():
            intent = campaign.pending.get(outcome.request_id)
            if intent is None:
                continue
            if outcome.status in SETTLING or not (outcome.status == "unknown" or intent.uncertain):
                del campaign.pending[outcome.request_id]
            else:  # unknown, or refused after an attempt of unknown fate: still pending
                campaign.pending[outcome.request_id] = replace(intent, uncertain=True)
            if outcome.status in DELIVERED:
                campaign.deliver(
                    intent.fingerprint, intent.body, intent.recipients, outcome.time, intent.call
                )
                campaign.book(intent, outcome.ticket, outcome.time)
            elif outcome.status == "rejected" and not intent.uncertain:
                refused = campaign.failed.setdefault(intent.fingerprint, {})
                refused.update(dict.fromkeys(intent.recipients))
            campaign.sends.append(_send_record(intent, outcome))
            return

    def _fold_resolve(self, resolve: Resolve) -> None:
        campaign = self.campaigns.get(resolve.campaign)
        if campaign is None:
            return
        for booking in unsettled_cancels(campaign, resolve.request_ids):
            settle_cancel(campaign, booking, resolve.sent, resolve.time)
        chosen = resolve.request_ids or tuple(campaign.pending)
        for intent in [campaign.pending.pop(r) for r in chosen if r in campaign.pending]:
            if resolve.sent:
                campaign.deliver(
                    intent.fingerprint, intent.body, intent.recipients, resolve.time, intent.call
                )
                campaign.book(intent, None, resolve.time)
            outcome = Outcome(
                intent.request_id,
                "resolved-sent" if resolve.sent else "resolved-not-sent",
                resolve.time,
            )
            campaign.sends.append(_send_record(intent, outcome))

    def _fold_cancel(self, entry: CancelIntent | CancelOutcome) -> None:
        campaign = self.campaigns.get(entry.campaign)
        booking = campaign.bookings.get(entry.request_id) if campaign else None
        if campaign is None or booking is None:
            return
        if isinstance(entry, CancelIntent):  # until its answer is recorded, its fate is unknown
            booking.cancels += 1
            booking.uncertain = booking.uncertain or booking.cancels > 1
        elif entry.status == "cancelled":
            campaign.unbook(booking, entry)
        elif entry.status == "unknown":
            booking.uncertain = True
        else:  # the booking stands, and says why; after an unknown attempt only a person knows
            booking.cancels = booking.cancels if booking.uncertain else 0
            booking.refused = entry.message[:REASON_LIMIT] or "refused by the provider"


def unsettled_cancels(campaign: CampaignState, request_ids: tuple[str, ...] = ()) -> list[Booking]:
    """Bookings whose cancel had an unknown fate (those named, or all): a person settles them."""
    chosen = request_ids or tuple(campaign.bookings)
    return [b for r in chosen if (b := campaign.bookings.get(r)) is not None and b.uncertain]


def settle_cancel(campaign: CampaignState, booking: Booking, cancelled: bool, when: float) -> None:
    """A person's verdict: the cancel went through (nobody is called), or it did not."""
    if cancelled:
        campaign.unbook(booking, CancelOutcome("", booking.request_id, "cancelled", when))
    else:  # the booking stands: the next plan cancels it again, if it is still unwanted
        booking.uncertain, booking.cancels, booking.refused = False, 0, ""


def _send_record(intent: Intent, outcome: Outcome) -> dict[str, Any]:
    record = {
        "request_id": intent.request_id,
        "fingerprint": intent.fingerprint,
        "contacts": outcome.contacts or len(intent.recipients),
        "outcome": outcome.status,
        "time": round(outcome.time, 3),
        "ticket": outcome.ticket,
        "cost": outcome.cost,
        "code": outcome.code,
        "reason": outcome.message[:REASON_LIMIT] or None,
        "call": intent.call if intent.call > 1 else None,  # a re-call: its receipts tell
    }
    return {k: v for k, v in record.items() if v is not None}
