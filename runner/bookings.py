"""Which booked calls the plan must cancel before it books their replacement, or cannot.

A booking still ahead whose message the files no longer give its people (the text, the time,
the voice... changed, a recipient left, or the campaign is gone) is cancelled first; the
people it would have called then count as not called, and the plan books what the files say.
When one of a campaign's bookings cannot be cancelled (too close to its time, no ticket), the
campaign is blocked: booking the new version on top would call those people twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from runner.counts import plural
from runner.render import Campaign
from runner.state.bookings import Booking
from runner.state.model import CampaignState, MessageState

# The provider cancels only more than 10 minutes before send_at; a minute spare for the
# clocks and the request's own time.
CANCEL_LEAD = 11 * 60.0
# How far off the provider's a machine clock may be (a CI runner's, hours ahead): a booking
# past by this machine's clock by less than this may still be ahead by the provider's.
CLOCK_MARGIN = 24 * 3600.0


@dataclass(frozen=True)
class Cancel:
    """One booked batch to cancel: its ticket, when it was due, how many it would call."""

    campaign: str
    request_id: str  # the booking's
    ticket: str
    fingerprint: str
    send_at: str
    due: float
    contacts: int
    retry: bool = False  # an earlier cancel of it had no answer, or was refused
    refused: str = ""  # the provider's refusal last time, if it refused


@dataclass(frozen=True)
class Cancels:
    """A campaign's cancels, or why they cannot all be made (then nothing is done for it)."""

    cancels: tuple[Cancel, ...] = ()
    blocked: str | None = None

    def view(self, known: CampaignState | None) -> CampaignState | None:
        """The campaign as the state will know it once these cancels are confirmed."""
        if known is None or not self.cancels:
            return known
        messages = dict(known.messages)
        rebooked = dict(known.rebooked)
        for cancel in self.cancels:
            message = messages.get(cancel.fingerprint)
            booking = known.bookings[cancel.request_id]
            if message is not None:
                gone = set(booking.recipients)
                kept = {d: None for d in message.delivered if d not in gone}
                messages[cancel.fingerprint] = MessageState(message.body, kept, message.last_time)
            rebooked[cancel.fingerprint] = rebooked.get(cancel.fingerprint, 0) + 1
        return replace(known, messages=messages, rebooked=rebooked)


def plan_cancels(
    name: str, campaign: Campaign | None, known: CampaignState | None, now: float
) -> Cancels:
    """The cancels of `name`'s unwanted bookings (`campaign` None: it left the files)."""
    if known is None or not known.bookings:
        return Cancels()
    unwanted = list(_unwanted(campaign, known, now))
    if not unwanted:
        return Cancels()
    problems = [p for b in unwanted if (p := _cannot_cancel(name, b, now))]
    if problems:
        return Cancels(blocked=f"{'; '.join(problems)}; {_remedy(name, campaign)}")
    return Cancels(tuple(cancel_of(name, b) for b in sorted(unwanted, key=lambda b: b.due)))


def _unwanted(campaign: Campaign | None, known: CampaignState, now: float) -> Iterator[Booking]:
    ahead = [b for b in known.bookings.values() if b.due > now]
    if not ahead:
        return
    wanted: Mapping[str, set[str]] = (
        {m.fingerprint: set(m.digests) for m in campaign.messages} if campaign else {}
    )
    kept = [b for b in ahead if b.kept]
    by_person = _messages_by_person(campaign, kept)
    for booking in ahead:
        if booking.kept:
            if not _adopted(booking, by_person, known):
                yield booking
            continue
        people = wanted.get(booking.fingerprint, set())
        if not all(d in people for d in booking.recipients):
            yield booking


def _messages_by_person(campaign: Campaign | None, kept: list[Booking]) -> dict[str, list[str]]:
    """The fingerprints the files give each person of the kept bookings."""
    people = {d for b in kept for d in b.recipients}
    found: dict[str, list[str]] = {}
    for message in campaign.messages if campaign and people else ():
        for digest in message.digests:
            if digest in people:
                found.setdefault(digest, []).append(message.fingerprint)
    return found


def _adopted(booking: Booking, by_person: Mapping[str, list[str]], known: CampaignState) -> bool:
    """A booking kept by `state accept` stands while its people have (by acceptance) every
    message the files give them; a further change, or removal, cancels it after all."""
    for digest in booking.recipients:
        theirs = by_person.get(digest, [])
        if not theirs or not all(
            fp in known.messages and digest in known.messages[fp].delivered for fp in theirs
        ):
            return False
    return True


def _cannot_cancel(name: str, booking: Booking, now: float) -> str | None:
    calls = f"{plural(len(booking.recipients), 'call')} booked for {booking.send_at}"
    if booking.ticket is None:
        return (
            f"{calls} (request {booking.request_id}) cannot be cancelled: the provider answered "
            "it as a repeat and gave no ticket"
        )
    if booking.uncertain and booking.refused:
        return (
            f"an earlier cancel of ticket {booking.ticket} ({calls}) had no answer, and the "
            f"provider now refuses it ({booking.refused}): ask the provider whether ticket "
            f"{booking.ticket} is cancelled, then run `runner state resolve {name} --request-id "
            f"{booking.request_id} --sent` if it is (nobody is called), `--not-sent` if not"
        )
    ahead = booking.due - now
    if ahead <= CANCEL_LEAD:
        return (
            f"{calls} (ticket {booking.ticket}), due in {ahead / 60:.0f} min, cannot be "
            "cancelled: the provider cancels only more than 10 minutes ahead"
        )
    return None


def _remedy(name: str, campaign: Campaign | None) -> str:
    if campaign is None:
        return (
            "those calls will happen; restore the campaign's file to keep planning it, or wait "
            "until they are due"
        )
    return (
        f"nothing is cancelled or booked for {name}: revert the change to {campaign.path}, or "
        f"run `runner state accept {name}` to keep the booked calls and adopt the new version "
        "without calling anyone"
    )


def cancel_of(name: str, booking: Booking) -> Cancel:
    assert booking.ticket is not None  # callers leave out the bookings without a ticket
    return Cancel(
        name,
        booking.request_id,
        booking.ticket,
        booking.fingerprint,
        booking.send_at,
        booking.due,
        len(booking.recipients),
        booking.cancels > 0 or bool(booking.refused),
        booking.refused,
    )


def booked_ahead(known: CampaignState, now: float) -> set[str]:
    """Recipients whose calls are booked and still to come: not yet called."""
    return {d for b in known.bookings.values() if b.due > now for d in b.recipients}


def due_text(due: float) -> str:
    return datetime.fromtimestamp(due, UTC).strftime("%Y-%m-%d %H:%M UTC")
