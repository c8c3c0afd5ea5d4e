"""The provider's 24 h duplicate window, measured at send time by the provider's clock.

A pending batch may be re-sent with its request_id only while the provider still remembers its
first attempt (DESIGN.md §4). The plan checks this when it is made, but a saved plan, an apply
left at its `yes` prompt or a long send phase can outlive that check, and the local clock may be
wrong: so the Sender asks here again, right before each re-send leaves, with the time the
provider's `Date` header gave at the start of apply.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from runner.octopush import Balance
from runner.state.model import RESOLVE_WINDOW_SECONDS, State

# A Date header counts whole seconds and the request takes some: this much disagreement is noise.
CLOCK_TOLERANCE = 5 * 60.0
SKEW_WORTH_SAYING = 60.0


@dataclass(frozen=True)
class ProviderClock:
    """time.time() corrected by the provider's Date header, read once at the start of apply."""

    offset: float = 0.0  # provider minus local, in seconds
    trusted: bool = False  # False when the provider gave no readable Date header

    @classmethod
    def of(cls, balance: Balance) -> ProviderClock:
        if balance.provider_time is None:
            return cls()
        # a Date header is truncated to the second: its moment is half a second on, on average
        return cls(balance.provider_time + 0.5 - balance.local_time, True)

    def now(self) -> float:
        return time.time() + self.offset

    def notice(self) -> str:
        """A line for the user when the local clock is off, or the provider gave no time."""
        if not self.trusted:
            return (
                "note: the provider's answer had no Date header; the 24 h window of re-sends "
                "is measured by this machine's clock"
            )
        if abs(self.offset) < SKEW_WORTH_SAYING:
            return ""
        way = "behind" if self.offset > 0 else "ahead of"
        return (
            f"note: this machine's clock is {_duration(abs(self.offset))} {way} the "
            "provider's; runner times its sends by the provider's clock"
        )


@dataclass(frozen=True)
class SendWindow:
    """Which batches are re-sends, and whether each may still leave."""

    clock: ProviderClock = ProviderClock()
    first_attempts: Mapping[str, float] = field(default_factory=dict)  # request_id -> time

    @classmethod
    def of(cls, state: State, clock: ProviderClock) -> SendWindow:
        first = {
            request_id: intent.time
            for campaign in state.campaigns.values()
            for request_id, intent in campaign.pending.items()
        }
        return cls(clock, first)

    def is_resend(self, request_id: str) -> bool:
        return request_id in self.first_attempts

    def refusal(self, campaign: str, request_id: str) -> str | None:
        """Why this re-send must not leave now, or None when it may (or is no re-send)."""
        first = self.first_attempts.get(request_id)
        if first is None:
            return None
        age = self.clock.now() - first
        if age < -CLOCK_TOLERANCE:
            why = (
                f"its first attempt is dated {_duration(-age)} in the future (a clock was "
                "wrong when it was recorded), so its age is unknown"
            )
        elif age > RESOLVE_WINDOW_SECONDS:
            why = (
                f"its first attempt was {_duration(age)} ago, past the provider's 24 h "
                f"duplicate check (runner keeps {_duration(24 * 3600 - RESOLVE_WINDOW_SECONDS)} "
                "spare)"
            )
        else:
            return None
        return (
            f"not re-sent: {why}; check the provider, then run "
            f"`runner state resolve {campaign} --request-id {request_id} --sent|--not-sent`"
        )


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
