"""Neutralising untrusted strings for a terminal, a JSON document and a pull-request comment.

Campaign files, templates, folder names and even the state come from people who must not
control the reader's screen (DESIGN.md §0). The core keeps raw values; each reporter calls
these once, on every string that came from outside.
"""

from __future__ import annotations

import html
import re

# C0 and C1 controls (ESC starts colour, OSC 8 links and cursor moves; 0x9b is an 8-bit CSI),
# DEL, and the bidirectional overrides that make a line read differently than it is.
# Tab is harmless and kept; newline only where the caller keeps lines apart itself.
_CONTROLS = "\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_CONTROL = re.compile(f"[{_CONTROLS}]")
_CONTROL_NOT_NEWLINE = re.compile(f"[{_CONTROLS.replace(chr(10) + '-', chr(11) + '-')}]")
_BACKTICKS = re.compile("`+")


_NAMED = {"\n": "\\n", "\r": "\\r"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def terminal(text: str) -> str:
    """One line, every control character shown as an escape: `\\x1b`, `\\n`, `\\u202e`."""
    return _CONTROL.sub(_escaped, text)


def terminal_lines(text: str) -> str:
    """As terminal(), but line breaks stay: for a multi-line text shown as lines."""
    return _CONTROL_NOT_NEWLINE.sub(_escaped, text)


_NOT_ESCAPED_BY_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def json_text(text: str) -> str:
    """A JSON document from json.dumps (which escapes C0 only) with DEL, C1 and bidi controls
    escaped too: they can only occur inside its strings, where \\uXXXX is the same character."""
    return _NOT_ESCAPED_BY_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _longest_backticks(text: str) -> int:
    return max((len(run) for run in _BACKTICKS.findall(text)), default=0)


def md_fenced(text: str, info: str = "") -> str:
    """A fenced code block that its content cannot close: the fence is longer than any run
    of backticks inside. Inside it nothing renders: no HTML, heading, link or @mention."""
    fence = "`" * max(3, _longest_backticks(text) + 1)
    return f"{fence}{info}\n{terminal_lines(text)}\n{fence}"


def md_code(text: str, cell: bool = False) -> str:
    """An inline code span for one line of untrusted text.

    The delimiter is longer than any backtick run inside. In a table `cell`, a pipe is
    escaped: GFM splits cells on it even inside code spans (and drops the backslash).
    """
    text = terminal(text)
    text = text.replace("|", "\\|") if cell else text
    ticks = "`" * (_longest_backticks(text) + 1)
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def html_code(text: str) -> str:
    """Untrusted text inside our own HTML (a <summary>): escaped, and in <code>, where GitHub
    turns no @mention or URL into a link."""
    return f"<code>{html.escape(terminal(text))}</code>"
