"""The GSM 03.38 alphabet: the only characters the Voice SMS API takes."""

from __future__ import annotations

BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENSION = "\f^{}\\[~]|€"
ALPHABET = frozenset(BASIC + EXTENSION) - {"\x1b"}


def first_non_gsm(text: str) -> tuple[int, str] | None:
    """(1-based position, character) of the first character outside GSM 03.38, if any."""
    if ALPHABET.issuperset(text):
        return None
    for position, char in enumerate(text, 1):
        if char not in ALPHABET:
            return position, char
    return None


def describe(char: str) -> str:
    return f"'{char}' (U+{ord(char):04X})" if char.isprintable() else f"U+{ord(char):04X}"
