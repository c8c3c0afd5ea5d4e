"""What became of the calls: per campaign and message, the receipts' verdict on each recipient.

Each recipient counts once per message, by the latest receipt of their latest call: a person
busy at the first call and reached at the second is delivered; one whose latest call has no
receipt yet is awaiting. Durations add up every call's latest receipt (each call is charged).
Receipts whose ticket no send in the state holds are counted apart: another project's calls,
a forgotten campaign, or a state restored from before they were sent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from runner.errors import RunnerError
from runner.heard import Heard
from runner.receipts.model import STATUSES
from runner.state.model import DELIVERED, CampaignState, State


@dataclass(frozen=True)
class MessageStatus:
    fingerprint: str
    text: str
    called: int  # recipients called at least once
    calls: int  # calls made, calls again included
    statuses: dict[str, int]  # every status, by the latest receipt of each recipient's latest call
    awaiting: int  # recipients whose latest call has no receipt yet
    call_seconds: int
    charged_seconds: int
    cost: float  # what the provider charged for the accepted sends of this message


@dataclass(frozen=True)
class CampaignStatus:
    name: str
    messages: tuple[MessageStatus, ...]


@dataclass(frozen=True)
class Unknown:
    """Receipts whose ticket the state does not know."""

    tickets: int = 0
    receipts: int = 0
    statuses: dict[str, int] | None = None


@dataclass(frozen=True)
class StatusReport:
    campaigns: tuple[CampaignStatus, ...]
    unknown: Unknown


def status_of(state: State, heard: Heard, names: Sequence[str] = ()) -> StatusReport:
    missing = [n for n in names if n not in state.campaigns]
    if missing:
        raise RunnerError(
            f"the state has no campaign named {', '.join(missing)}; `runner state list` "
            "lists those it has"
        )
    chosen = names or sorted(state.campaigns)
    campaigns = tuple(
        CampaignStatus(name, _messages(name, state.campaigns[name], heard)) for name in chosen
    )
    unknown = heard.unknown.values()
    statuses = Counter(r.status for r in unknown)
    tickets = len({r.ticket for r in unknown})
    return StatusReport(campaigns, Unknown(tickets, len(heard.unknown), _every(statuses)))


def _messages(name: str, campaign: CampaignState, heard: Heard) -> tuple[MessageStatus, ...]:
    ordered = sorted(campaign.messages.items(), key=lambda item: item[1].last_time)
    return tuple(_message(name, fp, campaign, heard) for fp, _ in ordered)


def _message(name: str, fingerprint: str, campaign: CampaignState, heard: Heard) -> MessageStatus:
    message = campaign.messages[fingerprint]
    made = campaign.calls.get(fingerprint, {})
    statuses: Counter[str] = Counter()
    awaiting = 0
    for digest in message.delivered:
        receipt = heard.of_call(name, fingerprint, digest, made.get(digest, 1))
        if receipt is None:
            awaiting += 1
        else:
            statuses[receipt.status] += 1
    receipts = heard.by_message.get((name, fingerprint), {}).values()
    cost = sum(
        float(s.get("cost") or 0.0)
        for s in campaign.sends
        if s.get("fingerprint") == fingerprint and s.get("outcome") in DELIVERED
    )
    return MessageStatus(
        fingerprint,
        str(message.body.get("text", "")),
        len(message.delivered),
        len(message.delivered) + sum(n - 1 for n in made.values()),
        _every(statuses),
        awaiting,
        sum(r.call_duration or 0 for r in receipts),
        sum(r.charged_duration or 0 for r in receipts),
        round(cost, 6),
    )


def _every(counts: Counter[str]) -> dict[str, int]:
    """Every status, in the provider's order, zeros included: a stable shape for machines;
    then any newer word the provider used, as it came."""
    known = {status: counts.get(status, 0) for status in STATUSES}
    return known | {status: n for status, n in sorted(counts.items()) if status not in known}
