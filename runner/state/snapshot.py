"""The state as one JSON document: stable key order, one digest per line, easy to diff in git."""

from __future__ import annotations

import json
from typing import Any

from runner.errors import StateError
from runner.state.model import (
    STATE_VERSION,
    CampaignState,
    Intent,
    MessageState,
    State,
    entry_from_dict,
    entry_to_dict,
)


def dump_state(state: State) -> bytes:
    data = {
        "version": state.version,
        "lineage": state.lineage,
        "serial": state.serial,
        "campaigns": {name: _dump_campaign(c) for name, c in state.campaigns.items()},
    }
    return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def _dump_campaign(campaign: CampaignState) -> dict[str, Any]:
    return {
        "messages": {
            fp: {"body": m.body, "last_time": m.last_time, "delivered": sorted(m.delivered)}
            for fp, m in campaign.messages.items()
        },
        "pending": {rid: entry_to_dict(i) for rid, i in campaign.pending.items()},
        "sends": campaign.sends,
    }


def check_version(version: Any, where: str) -> None:
    if not isinstance(version, int) or version > STATE_VERSION:
        raise StateError(
            f"{where} was written by a newer runner (state version {version}; "
            f"this runner reads up to {STATE_VERSION}); upgrade runner to use it"
        )


def load_state(raw: bytes, where: str) -> State:
    try:
        data = json.loads(raw)
        check_version(data.get("version"), where)
        state = State(lineage=data["lineage"], serial=data["serial"], version=data["version"])
        for name, campaign in data.get("campaigns", {}).items():
            state.campaigns[name] = _load_campaign(campaign)
    except StateError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise StateError(
            f"{where} is not a valid runner state ({e}); restore it from {where}.backup or from git"
        ) from e
    return state


def _load_campaign(data: dict[str, Any]) -> CampaignState:
    campaign = CampaignState()
    for fp, message in data.get("messages", {}).items():
        campaign.messages[fp] = MessageState(
            message["body"], set(message["delivered"]), message.get("last_time", 0.0)
        )
    for rid, intent in data.get("pending", {}).items():
        loaded = entry_from_dict(intent)
        assert isinstance(loaded, Intent)
        campaign.pending[rid] = loaded
    campaign.sends = list(data.get("sends", []))
    return campaign
