"""The state as one JSON document: stable key order, one digest per line, easy to diff in git.

Digests keep the order they were delivered in, so each apply adds lines at the end of a list.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

from runner.errors import StateError
from runner.state.bookings import booking_from_dict, booking_to_dict
from runner.state.model import (
    STATE_VERSION,
    CampaignState,
    Intent,
    MessageState,
    State,
    entry_from_dict,
    entry_to_dict,
)
from runner.state.shape import Malformed, check_snapshot
from runner.state.shape import name as quoted
from runner.wire import HEX, only


def dump_state(state: State) -> bytes:
    """`json.dumps(indent=1, sort_keys=True)` of the state, byte for byte, but fast.

    json's indenting encoder is pure Python: a million digests took 1.2 s. Each list of
    digests is left out as a marker and joined in afterwards, one digest per line.
    """
    lists: list[dict[str, None]] = []
    marker = uuid.uuid4().hex  # no text of the state can hold it

    def aside(digests: dict[str, None]) -> str:
        lists.append(digests)
        return f"{marker}{len(lists) - 1}"

    data = {
        "version": state.version,
        "lineage": state.lineage,
        "serial": state.serial,
        "campaigns": {name: _dump_campaign(c, aside) for name, c in state.campaigns.items()},
    }
    if state.generations:  # only once a campaign was forgotten: older states stay the same
        data["generations"] = state.generations
    text = json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False)
    pieces = re.split(f'(?m)^( *"delivered": )"{marker}([0-9]+)"', text)
    for at in range(1, len(pieces), 3):  # pieces: text, key, list index, text, key, ...
        pieces[at + 1] = _listed(pieces[at], lists[int(pieces[at + 1])])
    pieces.append("\n")
    return "".join(pieces).encode()


def _dump_campaign(
    campaign: CampaignState, aside: Callable[[dict[str, None]], str]
) -> dict[str, Any]:
    data = {
        "messages": {
            fp: {"body": m.body, "last_time": m.last_time, "delivered": aside(m.delivered)}
            for fp, m in campaign.messages.items()
        },
        "pending": {rid: entry_to_dict(i) for rid, i in campaign.pending.items()},
        "sends": campaign.sends,
    }
    if campaign.failed:  # only when there is any: older states stay byte for byte the same
        data["failed"] = {fp: list(digests) for fp, digests in campaign.failed.items()}
    if campaign.bookings:  # only while some are kept: older states stay the same
        data["bookings"] = {rid: booking_to_dict(b) for rid, b in campaign.bookings.items()}
    if campaign.rebooked:
        data["rebooked"] = dict(campaign.rebooked)
    if campaign.calls:  # only once someone was called again: older states stay the same
        data["calls"] = campaign.calls
    return data


def _listed(key: str, digests: dict[str, None]) -> str:
    """The list as json's indent=1 writes it: an item per line, one space deeper."""
    if not digests:
        return "[]"
    indent = key[: len(key) - len(key.lstrip())]
    if only(digests, HEX):
        return f'[\n{indent} "' + f'",\n{indent} "'.join(digests) + f'"\n{indent}]'
    items = (json.dumps(d, ensure_ascii=False) for d in digests)  # not hex: escape as json does
    return f"[\n{indent} " + f",\n{indent} ".join(items) + f"\n{indent}]"


def check_version(version: Any, where: str) -> None:
    if not isinstance(version, int) or version > STATE_VERSION:
        raise StateError(
            f"{where} was written by a newer runner (state version {version}; "
            f"this runner reads up to {STATE_VERSION}); upgrade runner to use it"
        )


def load_state(raw: bytes, where: str) -> State:
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise Malformed("the document: not an object")
        check_version(data.get("version"), where)
        check_snapshot(data)
        state = State(lineage=data["lineage"], serial=data["serial"], version=data["version"])
        for name, campaign in data.get("campaigns", {}).items():
            state.campaigns[name] = _load_campaign(campaign, f"campaigns.{quoted(name)}")
        state.generations = {str(k): int(v) for k, v in data.get("generations", {}).items()}
    except StateError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
        raise StateError(
            f"{where} is not a valid runner state ({e}); restore it from {where}.backup or from git"
        ) from e
    return state


def _load_campaign(data: dict[str, Any], where: str) -> CampaignState:
    campaign = CampaignState()
    for fp, message in data.get("messages", {}).items():
        campaign.messages[fp] = MessageState(
            message["body"], dict.fromkeys(message["delivered"]), message.get("last_time", 0.0)
        )
    for rid, intent in data.get("pending", {}).items():
        at = f"{where}.pending.{quoted(rid)}"
        loaded = entry_from_dict(intent, at)
        if not isinstance(loaded, Intent) or loaded.request_id != rid:
            raise Malformed(f"{at}: not the intent of request {quoted(rid)}")
        if not loaded.simulated:  # older runners kept simulations pending: they reached nobody
            campaign.pending[rid] = loaded
    campaign.sends = list(data.get("sends", []))
    for fp, digests in data.get("failed", {}).items():
        campaign.failed[fp] = dict.fromkeys(digests)
    for rid, booking in data.get("bookings", {}).items():
        at = f"{where}.bookings.{quoted(rid)}"
        booked = booking_from_dict(booking, at)
        if booked.request_id != rid:  # cancels find a booking by its request_id
            raise Malformed(f"{at}: not the booking of request {quoted(rid)}")
        campaign.bookings[str(rid)] = booked
    campaign.rebooked = {str(fp): int(n) for fp, n in data.get("rebooked", {}).items()}
    for fp, made in data.get("calls", {}).items():
        campaign.calls[fp] = dict(made)
    return campaign
