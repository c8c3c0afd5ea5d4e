"""Colour for people at a terminal: the identity when colour is off, decided once by the CLI."""

from __future__ import annotations

import os
from typing import NamedTuple, TextIO

import click


def colour_wanted(no_color: bool, stream: TextIO) -> bool:
    """Colour only on a terminal, never with --no-color or NO_COLOR (https://no-color.org)."""
    if no_color or os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Style(NamedTuple):
    """Terraform's colours: + green, ~ yellow, - red, errors red, summaries bold."""

    enabled: bool = False

    def _paint(self, text: str, **style: object) -> str:
        return click.style(text, **style) if self.enabled and text else text  # type: ignore[arg-type]

    def added(self, text: str) -> str:
        return self._paint(text, fg="green")

    def changed(self, text: str) -> str:
        return self._paint(text, fg="yellow")

    def removed(self, text: str) -> str:
        return self._paint(text, fg="red")

    def error(self, text: str) -> str:
        return self._paint(text, fg="red")

    def strong(self, text: str) -> str:
        return self._paint(text, bold=True)

    def sign(self, text: str) -> str:
        """A line that starts with a change sign, coloured by the sign."""
        paint = {"+": self.added, "~": self.changed, "-": self.removed, "!": self.error}
        return paint.get(text[:1], str)(text)


PLAIN = Style(False)
