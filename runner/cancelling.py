"""Apply's first step: cancel the booked calls the plan replaces, before anything is booked.

Each cancel is an intent made durable before the request and an outcome after it, like a send:
a crash in between leaves the booking marked, and the next plan cancels it again. A campaign
whose cancels are not all confirmed books nothing: its people would hear both versions.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from runner.bookings import CANCEL_LEAD, CLOCK_MARGIN, Cancel, cancel_of
from runner.errors import StateError
from runner.octopush import OctopushClient
from runner.state import Backend, State
from runner.state.bookings import Booking, CancelIntent, CancelOutcome
from runner.window import ProviderClock


@dataclass(frozen=True)
class CancelResult:
    cancel: Cancel
    status: str  # cancelled, rejected, unknown, blocked (not tried), skipped (stopped)
    error: str = ""
    code: int | None = None

    @property
    def done(self) -> bool:
        return self.status == "cancelled"


@dataclass
class Canceller:
    backend: Backend
    client: OctopushClient
    clock: ProviderClock
    stopped: Callable[[], str | None]  # why no new request may start, or None
    state_error: str | None = None
    account_error: str | None = None  # the provider refused the account: nothing more starts

    def cancel_all(self, cancels: Sequence[Cancel]) -> list[CancelResult]:
        return [self._cancel(c) for c in cancels]

    def _cancel(self, cancel: Cancel) -> CancelResult:
        reason = self.stopped() or self.state_error or self.account_error
        if reason:
            return CancelResult(cancel, "skipped", f"not cancelled: {reason}")
        ahead = cancel.due - self.clock.now()
        if ahead <= CANCEL_LEAD:  # by the provider's clock, which decides
            when = (
                f"go out in {ahead / 60:.0f} min" if ahead >= 60 else "are due now or already made"
            )
            why = (
                f"its calls {when} by the provider's clock, and it cancels only more than 10 "
                "minutes ahead"
            )
            return CancelResult(cancel, "blocked", why)
        if not self._record(
            CancelIntent(cancel.campaign, cancel.request_id, cancel.ticket, self.clock.now())
        ):
            return CancelResult(cancel, "skipped", f"not cancelled: {self.state_error}")
        outcome = self.client.cancel(cancel.ticket)
        if outcome.account:
            self.account_error = outcome.message
        status = outcome.status if outcome.status in ("cancelled", "unknown") else "rejected"
        record = CancelOutcome(
            cancel.campaign,
            cancel.request_id,
            "refused" if status == "rejected" else status,
            self.clock.now(),
            outcome.code,
            outcome.message,
        )
        if not self._record(record) and status == "cancelled":
            return CancelResult(
                cancel, "unknown", f"cancelled, but not recorded: {self.state_error}"
            )
        return CancelResult(
            cancel, status, "" if status == "cancelled" else outcome.message, outcome.code
        )

    def _record(self, entry: CancelIntent | CancelOutcome) -> bool:
        try:
            self.backend.record(entry)
        except StateError as e:
            self.state_error = self.state_error or str(e)
            return False
        return True


def unconfirmed(results: Sequence[CancelResult]) -> dict[str, str]:
    """Campaigns with a cancel not confirmed, and why: none of their batches may be booked."""
    why: dict[str, str] = {}
    for result in results:
        if not result.done and result.cancel.campaign not in why:
            why[result.cancel.campaign] = (
                f"not booked: the booked calls of ticket {result.cancel.ticket} "
                f"({result.cancel.send_at}) could not be cancelled ({result.error}); booking "
                "this version too would call those people twice"
            )
    return why


def taken_as_made(
    state: State, campaigns: Iterable[str], cancels: Sequence[Cancel], clock: ProviderClock
) -> dict[str, str]:
    """Campaigns with booked calls the plan took as made (their time past by this machine's
    clock) that are still to come by the provider's: booking anew could call people twice."""
    planned = {c.request_id for c in cancels}
    local, provider = time.time(), clock.now()
    why: dict[str, str] = {}
    for name in sorted(set(campaigns)):
        known = state.campaigns.get(name)
        for booking in known.bookings.values() if known else ():
            if booking.request_id not in planned and provider < booking.due <= local:
                why[name] = (
                    f"not booked: the booked calls of ticket {booking.ticket} "
                    f"({booking.send_at}) are still to come by the provider's clock, but this "
                    "machine's clock is ahead of it and the plan took them as made; set this "
                    "machine's clock right and plan again"
                )
                break
    return why


def taken_as_past(
    state: State, removed: Iterable[str], cancels: Sequence[Cancel], now: float
) -> list[tuple[str, Booking]]:
    """Bookings of removed campaigns the plan took as made (their time past by this machine's
    clock, lately) and does not cancel: apply checks them again by the provider's clock."""
    planned = {c.request_id for c in cancels}
    return [
        (name, booking)
        for name in sorted(set(removed))
        if (known := state.campaigns.get(name))
        for booking in known.bookings.values()
        if booking.request_id not in planned and now - CLOCK_MARGIN < booking.due <= now
    ]


def still_ahead(
    late: Sequence[tuple[str, Booking]], clock: ProviderClock
) -> tuple[list[Cancel], list[str]]:
    """The cancels of those still to come by the provider's clock; a line for each it cannot
    cancel (no ticket): the campaign is gone, but those calls will happen."""
    now = clock.now()
    cancels, lines = [], []
    for name, booking in late:
        if booking.due <= now:
            continue
        if booking.ticket is not None:
            cancels.append(cancel_of(name, booking))
            continue
        lines.append(
            f"not cancelled: {name} request {booking.request_id}: its calls ({booking.send_at}) "
            "are still to come by the provider's clock, but the provider answered it as a "
            "repeat and gave no ticket; they will happen"
        )
    return cancels, lines
