"""Renames in the plan: `moved_from` carries a campaign's history to its new name.

The plan is made against the state as it will be once the moves are recorded (a view: the
state itself is never changed here), so a pure rename sends nothing, and apply records each
move in the journal before it sends. Without `moved_from`, a rename is a new campaign: the plan
then says which campaign gone from the files delivered the same message to the same people.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import NamedTuple

from runner.render import Campaign
from runner.state.model import CampaignState, State


class Moved(NamedTuple):
    """One former name of a campaign, and what the state knows under it."""

    old: str
    new: str
    known: bool  # the state holds a campaign by the old name: its history moves
    recipients: int = 0  # recipients the state says heard something under the old name


class RenameHint(NamedTuple):
    """A new campaign that looks like a campaign gone from the files, renamed."""

    new: str
    old: str
    heard: int  # of the new campaign's recipients, those the old one delivered the same message


def planned_moves(campaigns: Sequence[Campaign], state: State) -> tuple[Moved, ...]:
    moves = []
    for campaign in campaigns:
        for old in campaign.moved_from:
            known = state.campaigns.get(old)
            heard = _heard(known) if known is not None else 0
            moves.append(Moved(old, campaign.name, known is not None, heard))
    return tuple(moves)


def _heard(campaign: CampaignState) -> int:
    messages = list(campaign.messages.values())
    if len(messages) == 1:
        return len(messages[0].delivered)
    return len(set().union(*(m.delivered for m in messages)))


def moved_state(state: State, moves: Iterable[Moved]) -> State:
    """The state as it will be once the moves are folded, as State.fold folds them."""
    carried = [m for m in moves if m.known and m.old in state.campaigns]
    if not carried:
        return state
    campaigns = dict(state.campaigns)
    for move in carried:
        merged = CampaignState()
        if move.new in campaigns:
            merged.absorb(campaigns[move.new])
        merged.absorb(campaigns.pop(move.old))
        campaigns[move.new] = merged
    return replace(state, campaigns=campaigns)


def rename_hints(
    campaigns: Sequence[Campaign], state: State, new_names: Iterable[str]
) -> tuple[RenameHint, ...]:
    """For each campaign new to the state, the campaigns gone from the files that delivered
    one of its messages to some of its recipients. Only the messages whose fingerprint such a
    campaign knows are looked at: fast whatever the size of the lists."""
    names = {c.name for c in campaigns}
    gone: dict[str, list[tuple[str, dict[str, None]]]] = {}
    for name, known in sorted(state.campaigns.items()):
        if name not in names:
            for fingerprint, message in known.messages.items():
                gone.setdefault(fingerprint, []).append((name, message.delivered))
    if not gone:
        return ()
    wanted = set(new_names)
    hints = []
    for campaign in campaigns:
        if campaign.name in wanted:
            hints += _hints_for(campaign, gone)
    return tuple(hints)


def _hints_for(
    campaign: Campaign, gone: dict[str, list[tuple[str, dict[str, None]]]]
) -> list[RenameHint]:
    heard: dict[str, int] = {}
    for message in campaign.messages:
        for old, delivered in gone.get(message.fingerprint, ()):
            count = sum(1 for d in message.digests if d in delivered)
            if count:
                heard[old] = heard.get(old, 0) + count
    return [RenameHint(campaign.name, old, count) for old, count in sorted(heard.items())]
