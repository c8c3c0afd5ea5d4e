"""The GSM 03.38 alphabet: the only characters the Voice SMS API takes."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator

from runner.counts import plural

BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENSION = "\f^{}\\[~]|€"
ALPHABET = frozenset(BASIC + EXTENSION) - {"\x1b"}
SHOWN = 10  # distinct characters described in one problem line; the rest are counted
SHOWN_POSITIONS = 5

# What word processors and phones put in place of plain characters, and the plain ones.
LOOKALIKES = {
    **dict.fromkeys("‘’‚‛′´`", "'"),
    **dict.fromkeys("“”„‟″«»", '"'),
    **dict.fromkeys("‐‑‒–—―−•", "-"),
    **dict.fromkeys("\u00a0\u2007\u2009\u200a\u202f\t", " "),
    "…": "...",
    "ç": "Ç",
    "œ": "oe",
    "Œ": "OE",
    **dict.fromkeys("\u200b\u200c\u200d\u2060\ufeff", ""),  # invisible: nothing to put back
}


def first_non_gsm(text: str) -> tuple[int, str] | None:
    """(1-based position, character) of the first character outside GSM 03.38, if any."""
    return next(non_gsm(text), None)


def non_gsm(text: str) -> Iterator[tuple[int, str]]:
    """(1-based position, character) of every character outside GSM 03.38, in order."""
    if ALPHABET.issuperset(text):
        return
    for position, char in enumerate(text, 1):
        if char not in ALPHABET:
            yield position, char


def describe(char: str) -> str:
    return f"'{char}' (U+{ord(char):04X})" if char.isprintable() else f"U+{ord(char):04X}"


def lookalike(char: str) -> str | None:
    """The usual GSM stand-in for a character, if there is one: a suggestion, never applied."""
    if char in LOOKALIKES:
        return LOOKALIKES[char]
    plain = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    return plain if plain and plain != char and ALPHABET.issuperset(plain) else None


def problem(text: str) -> str | None:
    """One line naming each character outside GSM 03.38, where it is, and its usual stand-in."""
    where: dict[str, list[int]] = {}
    for position, char in non_gsm(text):
        where.setdefault(char, []).append(position)
    if not where:
        return None
    count = sum(map(len, where.values()))
    hints = "; ".join(_hint(char, positions) for char, positions in list(where.items())[:SHOWN])
    if len(where) > SHOWN:
        hints += f"; and {plural(len(where) - SHOWN, 'other character')}"
    verb = "is" if count == 1 else "are"
    return (
        f"{plural(count, 'character')} of the rendered text {verb} not in the GSM 03.38 "
        f"alphabet (replace or remove {'it' if count == 1 else 'them'}): {hints}"
    )


def _hint(char: str, positions: list[int]) -> str:
    shown = ", ".join(map(str, positions[:SHOWN_POSITIONS]))
    if len(positions) > SHOWN_POSITIONS:
        shown += f" and {len(positions) - SHOWN_POSITIONS:,} more"
    plain = lookalike(char)
    if plain is None:
        advice = "no lookalike"
    elif not plain:
        advice = "invisible, remove it"
    else:
        advice = "use " + (f'"{plain}"' if "'" in plain else f"'{plain}'")
    label = "position" if len(positions) == 1 else "positions"
    return f"{describe(char)} at {label} {shown}, {advice}"
