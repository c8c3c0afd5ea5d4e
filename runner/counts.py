"""Counts as people read them, the same way in every output: `2,000 batches`, `1 campaign`."""

from __future__ import annotations

_SIBILANT_ENDINGS = ("s", "x", "z", "ch", "sh")


def plural(count: int, word: str) -> str:
    """`count` with thousands separators and `word` in the number it needs."""
    if count == 1:
        return f"1 {word}"
    suffix = "es" if word.endswith(_SIBILANT_ENDINGS) else "s"
    return f"{count:,} {word}{suffix}"
