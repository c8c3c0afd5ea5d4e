"""Sends of unknown outcome, whatever became of their campaign.

A pending send is shown in every plan until a person settles it: under its own campaign, under
a campaign removed from the files, and under any other campaign that would send the same message
(same fingerprint) to some of the same people, which waits until it is settled.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from runner.render import Campaign
from runner.state.model import Intent, State


@dataclass(frozen=True)
class Pending:
    request_id: str
    contacts: int
    age_seconds: float
    blocked: str | None  # why it cannot be re-sent safely; None when it will be


def resolve_hint(name: str, request_id: str) -> str:
    return (
        f"check the provider, then run `runner state resolve {name} "
        f"--request-id {request_id} --sent|--not-sent`"
    )


PendingIndex = Mapping[str, list[tuple[str, Intent]]]


def pending_by_fingerprint(state: State) -> dict[str, list[tuple[str, Intent]]]:
    index: dict[str, list[tuple[str, Intent]]] = {}
    for name, campaign in sorted(state.campaigns.items()):
        for intent in campaign.pending.values():
            index.setdefault(intent.fingerprint, []).append((name, intent))
    return index


def pending_elsewhere(index: PendingIndex, campaign: Campaign, now: float) -> tuple[Pending, ...]:
    """Sends of this campaign's messages to its people, pending under another name."""
    if not index:
        return ()
    return tuple(_elsewhere(index, campaign, now))


def _elsewhere(index: PendingIndex, campaign: Campaign, now: float) -> Iterator[Pending]:
    for message in campaign.messages:
        others = [(n, i) for n, i in index.get(message.fingerprint, []) if n != campaign.name]
        wanted = set(message.digests) if others else set()
        for other, intent in others:
            overlap = sum(1 for d in intent.recipients if d in wanted)
            if overlap:
                why = (
                    f"the same message to {overlap:,} of these recipients is a send of unknown "
                    f"outcome under `{other}`; nothing is sent to them until it is settled: "
                    + resolve_hint(other, intent.request_id)
                )
                yield Pending(intent.request_id, overlap, now - intent.time, why)


def removed_pending(
    state: State, names: set[str], now: float
) -> Iterator[tuple[str, tuple[Pending, ...]]]:
    """Campaigns gone from the files whose sends still have no outcome."""
    for name, campaign in sorted(state.campaigns.items()):
        if name in names or not campaign.pending:
            continue
        intents = sorted(campaign.pending.values(), key=lambda i: i.time)
        yield (
            name,
            tuple(
                Pending(
                    i.request_id,
                    len(i.recipients),
                    now - i.time,
                    "campaign removed from the files, this send's outcome unknown: "
                    + resolve_hint(name, i.request_id),
                )
                for i in intents
            ),
        )
