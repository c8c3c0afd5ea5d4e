"""Stage 1: read the project's YAML files into documents that remember where each value came from.

Nothing here judges content; a file that cannot be read becomes a Problem and the others go on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

from runner import files
from runner.errors import Problem

MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_EXPANDED_NODES = 200_000
MAX_DEPTH = 64  # libyaml's composer recurses in C: ~30,000 nested '[' crash the interpreter
MAX_DIGITS = 1000  # Python refuses to read an int of more than 4,300 digits, with a ValueError

_Base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


_TOO_DEEP = f"refused: nested more than {MAX_DEPTH} levels; flatten it"


class LineDict(dict[Any, Any]):
    """A mapping that remembers the line of each key (1-based)."""

    line: int = 0
    lines: dict[Any, int]


class LineList(list[Any]):
    """A sequence that remembers the line of each item (1-based)."""

    line: int = 0
    lines: list[int]


class _Loader(_Base):  # type: ignore[valid-type,misc]
    """Safe loader that keeps lines, refuses duplicate keys, and leaves strings as written.

    Timestamps stay strings (send_at is checked later, with its offset), and a leading '+'
    never makes a number, so `+33612345678` stays a phone number.
    """

    yaml_implicit_resolvers: ClassVar = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in _Base.yaml_implicit_resolvers.items()
        if first != "+"
    }


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> Iterator[LineDict]:
    data = LineDict()
    data.line, data.lines = node.start_mark.line + 1, {}
    yield data
    explicit = [k.value for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge"]
    if len(explicit) != len(set(map(str, explicit))):
        seen: set[str] = set()
        for key_node, _ in node.value:
            if str(key_node.value) in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key_node.value}'", key_node.start_mark
                )
            seen.add(str(key_node.value))
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=False)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise yaml.constructor.ConstructorError(
                None, None, "keys must be plain words", key_node.start_mark
            )
        data[key] = loader.construct_object(value_node, deep=False)
        data.lines[key] = key_node.start_mark.line + 1


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> Iterator[LineList]:
    data = LineList()
    data.line, data.lines = node.start_mark.line + 1, [n.start_mark.line + 1 for n in node.value]
    yield data
    data.extend(loader.construct_object(child, deep=False) for child in node.value)


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    if len(str(node.value)) > MAX_DIGITS:
        raise _Refused(
            node.start_mark,
            f"a number of {len(str(node.value)):,} digits, more than {MAX_DIGITS:,}; "
            "quote it to keep it as text",
        )
    number: int = loader.construct_yaml_int(node)
    return number


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
# A YAML set is a mapping whose values are null: read it as one, in the order written, since
# a Python set iterates in an order that changes with each process (a text that changes).
_Loader.add_constructor("tag:yaml.org,2002:set", _construct_map)


@dataclass(frozen=True)
class Document:
    """One YAML document of one file: its data and where it starts."""

    path: str
    line: int
    data: Any


class _Refused(Exception):
    """A document too costly to build; `line` is where it starts to be."""

    def __init__(self, mark: Any, message: str) -> None:
        super().__init__(message)
        self.line = mark.line + 1 if mark else None


def _expanded_size(node: yaml.Node, memo: dict[int, int], active: set[int]) -> int:
    """Count nodes as if every alias were copied out: bounds 'billion laughs' documents."""
    if id(node) in memo:
        return memo[id(node)]
    if id(node) in active:
        raise _Refused(node.start_mark, "an alias refers to itself; remove it")
    active.add(id(node))
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, memo, active) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            size += _expanded_size(key, memo, active) + _expanded_size(value, memo, active)
    if size > MAX_EXPANDED_NODES:
        raise _Refused(
            node.start_mark,
            f"more than {MAX_EXPANDED_NODES:,} values with aliases expanded; remove the aliases",
        )
    active.discard(id(node))
    memo[id(node)] = size
    return size


def _check_depth(text: bytes) -> None:
    """Walk the parser's events (flat, no recursion) before anything composes the tree."""
    depth = 0
    for event in yaml.parse(text, Loader=_Base):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _Refused(event.start_mark, _TOO_DEEP.removeprefix("refused: "))
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def read_yaml(
    path: Path, shown: str, root: Path | None, *, hidden_ok: bool = True
) -> tuple[list[Document], list[Problem]]:
    """Read every document of one YAML file (confined when in `root`); problems never raise."""
    try:
        text = files.read_file(path, MAX_FILE_BYTES, root, hidden_ok=hidden_ok)
    except files.TooLarge as e:
        limit = files.size_text(e.limit)
        problem = f"file is larger than {limit}; split it or move recipients to a CSV file"
        return [], [Problem(shown, None, "", problem)]
    except files.Refused as e:
        return [], [Problem(shown, None, "", f"file {e}")]
    except OSError as e:
        return [], [Problem(shown, None, "", f"cannot read file: {e.strerror}")]
    return parse_yaml(text, shown)


def parse_yaml(text: bytes, shown: str) -> tuple[list[Document], list[Problem]]:
    documents: list[Document] = []
    loader = _Loader(text)
    may_alias = b"&" in text and b"*" in text
    try:
        _check_depth(text)
        while loader.check_node():
            node = loader.get_node()
            if may_alias:
                _expanded_size(node, {}, set())
            documents.append(
                Document(shown, node.start_mark.line + 1, loader.construct_document(node))
            )
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else None
        what = e.problem or e.context or "unreadable"
        if "nesting depth" in what:  # PyYAML >= 6.0.4 stops deep nesting itself
            return documents, [Problem(shown, line, "", _TOO_DEEP)]
        return documents, [
            Problem(shown, line, "", f"malformed YAML: {what}; fix the syntax there")
        ]
    except yaml.reader.ReaderError as e:
        line = text[: e.position].count(b"\n") + 1
        what = f"{e.reason} (character #x{e.character:04x})"
        return documents, [Problem(shown, line, "", f"unreadable: {what}; save it as UTF-8 text")]
    except yaml.YAMLError as e:
        what = " ".join(str(e).split())  # one line per problem, whatever the parser says
        return documents, [Problem(shown, None, "", f"malformed YAML: {what}; fix the syntax")]
    except _Refused as e:
        return documents, [Problem(shown, e.line, "", f"refused: {e}")]
    except RecursionError:
        return documents, [Problem(shown, None, "", "refused: nesting too deep; flatten the file")]
    finally:
        loader.dispose()
    return [d for d in documents if d.data is not None], []


def line_of(document: Document, path: Iterable[Any]) -> int:
    """The line of the deepest value along `path` that we know a line for."""
    line, node = document.line, document.data
    for step in path:
        known = isinstance(node, LineDict) and step in node.lines
        known = known or (isinstance(node, LineList) and isinstance(step, int) and step < len(node))
        if not known:
            break
        line = node.lines[step]
        node = node[step]
    return line
