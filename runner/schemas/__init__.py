"""The three JSON Schemas: campaign files, runner.yaml and the API body. Compiled once per run."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

import fastjsonschema

if TYPE_CHECKING:  # jsonschema takes 0.1 s to import: only a refusal or a format needs it
    from jsonschema import Draft202012Validator

NAMES = ("campaign", "config", "voice-send")


def schema_text(name: str) -> str:
    return resources.files(__name__).joinpath(f"{name}.schema.json").read_text(encoding="utf-8")


@functools.cache
def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(schema_text(name))
    return loaded


@functools.cache
def validator(name: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator, FormatChecker

    return Draft202012Validator(schema(name), format_checker=FormatChecker())


def _conforms(value: Any, format: str) -> bool:
    """jsonschema's own verdict on a format, so that both engines say the same."""
    return bool(_format_checker().conforms(value, format))


@functools.cache
def _format_checker() -> Any:
    from jsonschema import FormatChecker

    return FormatChecker()


@functools.cache
def accepts(name: str) -> Callable[[Any], bool]:
    """A fast yes/no: is this instance valid? Only a "no" needs `validator` to explain it.

    fastjsonschema compiles the schema to Python (10x faster than jsonschema on a campaign).
    It reads draft-07, which has every keyword these schemas use; formats are checked by
    jsonschema's own checker, so both say the same (tests compare them on fuzzed files).
    """
    formats: dict[str, Callable[[str], Any]] = {
        f: functools.partial(_conforms, format=f) for f in ("date-time", "uri")
    }
    draft7 = {**_patterns_as_formats(schema(name), formats)}
    draft7["$schema"] = "http://json-schema.org/draft-07/schema#"
    compiled = fastjsonschema.compile(draft7, formats=formats, use_default=False)

    def check(instance: Any) -> bool:
        try:
            compiled(instance)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    return check


def _patterns_as_formats(node: Any, formats: dict[str, Callable[[str], Any]]) -> Any:
    """Each `pattern` becomes a named format that runs re.search, exactly as jsonschema does
    (fastjsonschema rewrites `$`, even inside `[...]`)."""
    if isinstance(node, list):
        return [_patterns_as_formats(item, formats) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _patterns_as_formats(value, formats) for key, value in node.items()}
    if isinstance(out.get("pattern"), str):
        name = f"pattern-{len(formats)}"
        formats[name] = re.compile(out.pop("pattern")).search
        out["allOf"] = [*out.get("allOf", []), {"format": name}]
    return out
