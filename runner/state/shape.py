"""The shape of a state document and of its records, checked once, where they are read.

A state file arrives in pull requests too, and journal records and database rows are files
and rows anyone with write access can craft: a pending entry of the wrong kind, a time written
as a string or `sends` that are not records must end in one line that says where and what,
never in a traceback deep in plan or apply. Lists of digests are checked as a whole (one pass
over their types) or not at all (a message's delivered digests), so a state with a million
digests reads as fast as before.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

MAX_TIME = 1e11  # seconds since 1970: the year 5138; beyond, dates cannot even be shown


class Malformed(ValueError):
    """What is wrong, and where in the document: `campaigns."x".pending: not an object`."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_time(value: Any) -> bool:
    return _is_number(value) and 0 <= value < MAX_TIME


def _strings(value: Any) -> bool:
    return isinstance(value, list) and set(map(type, value)) <= {str}


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


def _is(kind: type) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, kind) and not (kind is int and isinstance(value, bool))


# What each field of a record must hold, by name, with the words a message uses for it.
_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "request_id": (_is(str), "a string"),
    "campaign": (_is(str), "a string"),
    "moved_from": (_is(str), "a string"),
    "fingerprint": (_is(str), "a string"),
    "body": (_is(dict), "an object"),
    "recipients": (_strings, "a list of digests"),
    "request_ids": (_strings, "a list of request ids"),
    "time": (is_time, "a time in seconds since 1970"),
    "simulated": (_is(bool), "true or false"),
    "sent": (_is(bool), "true or false"),
    "kind": (_is(str), "a string"),
    "status": (_is(str), "a string"),
    "outcome": (_is(str), "a string"),
    "message": (_is(str), "a string"),
    "ticket": (_optional(_is(str)), "a string or null"),
    "contacts": (_optional(_is(int)), "a whole number or null"),
    "code": (_optional(_is(int)), "a whole number or null"),
    "cost": (_optional(_is_number), "a number or null"),
    "attempts": (_is(int), "a whole number"),
    "call": (_is(int), "a whole number"),
}
_SEND_REQUIRED = ("request_id", "fingerprint", "contacts", "outcome", "time")


def name(key: Any) -> str:
    """A key of the document as a message shows it: quoted, escaped, and not too long."""
    text = json.dumps(key, ensure_ascii=True)
    return text if len(text) <= 40 else text[:36] + '..."'


def check_fields(data: Any, where: str, required: tuple[str, ...], known: set[str]) -> None:
    """`data` is an object holding `required`, nothing outside `known` unless `known` is
    empty, and each field it holds has the type its name calls for."""
    if not isinstance(data, dict):
        raise Malformed(f"{where}: not an object")
    missing = [key for key in required if key not in data]
    if missing:
        raise Malformed(f"{where}: {name(missing[0])} is missing")
    for key, value in data.items():
        if known and key not in known:
            raise Malformed(f"{where}: unknown field {name(key)}")
        check, words = _FIELDS.get(key, (_any, ""))
        if not check(value):
            raise Malformed(f"{where}.{key}: must be {words}")


def _any(value: Any) -> bool:
    return True


def check_entry(data: Any, kinds: Mapping[str, type[Any]], where: str = "record") -> type[Any]:
    """The record class of a journal line or database row, once its fields are right."""
    if not isinstance(data, dict):
        raise Malformed(f"{where}: not an object")
    kind = kinds.get(data["kind"]) if isinstance(data.get("kind"), str) else None
    if kind is None:
        raise Malformed(f"{where}: unknown kind {name(data.get('kind'))}")
    fields = dataclasses.fields(kind)
    required = tuple(f.name for f in fields if f.default is dataclasses.MISSING)
    check_fields(data, where, required, {f.name for f in fields})
    return kind


def check_snapshot(data: Any) -> None:
    """Everything but the digests' own text, which only has to be strings."""
    check_fields(data, "the document", ("lineage", "serial", "version"), set())
    if not isinstance(data["lineage"], str):
        raise Malformed("lineage: must be a string")
    for key in ("serial", "version"):
        if not _is(int)(data[key]):
            raise Malformed(f"{key}: must be a whole number")
    campaigns = data.get("campaigns", {})
    if not isinstance(campaigns, dict):
        raise Malformed("campaigns: not an object")
    for campaign_name, campaign in campaigns.items():
        _check_campaign(campaign, f"campaigns.{name(campaign_name)}")


def _check_campaign(campaign: Any, where: str) -> None:
    if not isinstance(campaign, dict):
        raise Malformed(f"{where}: not an object")
    for key, kind in (("messages", dict), ("pending", dict), ("sends", list), ("calls", dict)):
        if not isinstance(campaign.get(key, kind()), kind):
            raise Malformed(f"{where}.{key}: must be {'a list' if kind is list else 'an object'}")
    for fingerprint, message in campaign.get("messages", {}).items():
        at = f"{where}.messages.{name(fingerprint)}"
        check_fields(message, at, ("body", "delivered"), set())
        # A list, its items unchecked: a type check of a million digests took 4 % of reading
        # the state. An item that is no string matches no recipient, and is written back as
        # json writes it (wire.only); one that is not hashable fails dict.fromkeys, here.
        if not isinstance(message["delivered"], list):
            raise Malformed(f"{at}.delivered: must be a list of digests")
        if not is_time(message.get("last_time", 0.0)):
            raise Malformed(f"{at}.last_time: must be a time in seconds since 1970")
    for fingerprint, made in campaign.get("calls", {}).items():
        at = f"{where}.calls.{name(fingerprint)}"
        if not isinstance(made, dict) or not all(map(_is(int), made.values())):
            raise Malformed(f"{at}: must map digests to whole numbers of calls")
    for number, send in enumerate(campaign.get("sends", [])):
        check_fields(send, f"{where}.sends[{number}]", _SEND_REQUIRED, set())
