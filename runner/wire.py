"""JSON as the API and the journal get it: what json.dumps writes, byte for byte, but quickly."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

PAYLOAD_JSON: dict[str, Any] = {"ensure_ascii": False, "separators": (",", ":")}


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """A send's body: compact JSON in UTF-8."""
    return json.dumps(payload, **PAYLOAD_JSON).encode("utf-8")


_MARK = secrets.token_hex(16)  # no text can know it
HEX = b"0123456789abcdef"  # a digest's alphabet
E164 = b"+0123456789"


def only(strings: Iterable[str], alphabet: bytes) -> bool:
    """True if every character of `strings` is in `alphabet` (ASCII): JSON needs no escape."""
    try:
        joined = "".join(strings)
    except TypeError:  # not all strings: a crafted state's digests, say
        return False
    return joined.isascii() and not joined.encode().translate(None, alphabet)


def spliced_json(
    data: Mapping[str, Any],
    key: str,
    strings: Sequence[str],
    item: tuple[str, str],
    alphabet: bytes,
    **options: Any,
) -> str | None:
    """`json.dumps(data, **options)` where `data[key]` is the list of `item[0] + s + item[1]`
    for each of `strings`, byte for byte; None when a string holds more than `alphabet`.

    json's C encoder takes ~0.3 µs a list item; a send's payload has 500 numbers and its
    intent 500 digests, encoded at every send. Strings of a known alphabet need no escaping,
    so the list is written by one join and put in the place json left for it.
    """
    if not only(strings, alphabet):
        return None
    text = json.dumps({**data, key: _MARK}, **options)
    if text.count(_MARK) != 1:  # never, short of a text that holds this process's secret
        return None
    head, tail = item
    listed = f"[{head}" + f"{tail},{head}".join(strings) + f"{tail}]" if strings else "[]"
    return text.replace(f'"{_MARK}"', listed, 1)
