"""What a template may cost to compile: its size, tokens and nesting, weighed as Jinja2 reads it.

Jinja2's parser and compiler recurse once per nesting level (brackets, blocks, `not`, chains of
filters or operators), and the Python it generates is compiled by CPython, which has its own
limits on nesting. 3,000 nested parentheses or 2,000 nested `if`s ended in a RecursionError, and
1 MB of `{{x}}` took 20 s and 2 GB to compile. So a source is measured before it is lexed, each
token is counted as the parser pulls it (the parser is never deeper than the limit when it is
refused), and the finished tree's depth is measured without recursion before it is compiled.
Each check runs for every source that reaches the environment: inline texts and every included
or imported template alike.
"""

from __future__ import annotations

from collections.abc import Iterator

from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.ext import Extension
from jinja2.lexer import Token, TokenStream

MAX_SOURCE = 100_000  # characters of one template source; a message is at most 1,224
MAX_TOKENS = 20_000  # tokens of one template source: ~0.35 s to compile at worst
MAX_NESTING = 16  # open blocks and brackets, unary operators in a row, `else`s in one tag
MAX_DEPTH = 64  # levels of the parsed tree: CPython refuses 200 nested parentheses

_OPEN = {"lparen", "lbracket", "lbrace"}
_CLOSE = {"rparen", "rbracket", "rbrace"}
_BLOCKS = {"for", "if", "macro", "call", "filter", "with", "block", "autoescape", "trans"}
_UNARY = {"sub", "add"}


class TooComplex(TemplateSyntaxError):
    """A template over one of the limits above; its message says which and what to do."""


class CostLimits(Extension):
    """Refuses oversized sources and too many or too deeply nested tokens, as they are read."""

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        if len(source) > MAX_SOURCE:
            raise TooComplex(
                f"template source is {len(source):,} characters, more than {MAX_SOURCE:,}; "
                "shorten it",
                1,
                name,
                filename,
            )
        return source

    def filter_stream(self, stream: TokenStream) -> Iterator[Token]:
        count = Counter(stream.name, stream.filename)
        for token in stream:
            count.see(token)
            yield token


class Counter:
    """Tokens seen so far, open blocks and brackets, and the current run of unary operators."""

    def __init__(self, name: str | None, filename: str | None) -> None:
        self.name, self.filename = name, filename
        self.tokens = self.brackets = self.blocks = self.unary = self.elses = 0
        self.tag: list[Token] = []  # the tokens of the {% ... %} being read

    def see(self, token: Token) -> None:
        self.tokens += 1
        if self.tokens > MAX_TOKENS:
            self._refuse(token, f"template has more than {MAX_TOKENS:,} tokens; shorten it")
        kind = token.type
        self.brackets += (kind in _OPEN) - (kind in _CLOSE)
        is_unary = kind in _UNARY or token.test("name:not")
        self.unary = self.unary + 1 if is_unary else 0
        if kind in ("block_begin", "variable_begin"):
            self.tag, self.elses = [], 0
        elif token.test("name:else") and self.tag:  # `a if b else c if d else ...` recurses
            self.elses += 1
            self.tag.append(token)
        elif kind == "block_end":
            self.blocks += _block_change(self.tag)
        else:
            self.tag.append(token)
        if max(self.brackets + self.blocks, self.unary, self.elses) > MAX_NESTING:
            self._refuse(
                token,
                f"template nests more than {MAX_NESTING} levels (blocks, brackets or "
                "operators); flatten it",
            )

    def _refuse(self, token: Token, message: str) -> None:
        raise TooComplex(message, token.lineno, self.name, self.filename)


def _block_change(tag: list[Token]) -> int:
    """+1 for a tag that opens a block, -1 for an `end...` tag, else 0."""
    if not tag or tag[0].type != "name":
        return 0
    word = tag[0].value
    if word.startswith("end"):
        return -1
    if word in _BLOCKS or (word == "set" and not any(t.type == "assign" for t in tag)):
        return 1
    return 0


def check_depth(tree: nodes.Template, name: str | None, filename: str | None) -> None:
    """Refuse a tree deeper than MAX_DEPTH, measured with a stack, not by recursion:
    chains of filters, attributes or operators nest without brackets."""
    stack: list[tuple[nodes.Node, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise TooComplex(
                f"template nests more than {MAX_DEPTH} levels (a long chain of filters, "
                "attributes or operators); split it with {% set %}",
                node.lineno,
                name,
                filename,
            )
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())
