"""Stage 2: check documents against the JSON Schemas and turn them into typed records.

Every message names the file and line, the field, what is wrong and what to do.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import ValidationError

from runner import schemas
from runner.errors import Problem
from runner.load import Document, line_of

DEFAULT_API_URL = "https://api.octopush.com/v1/public"
DEFAULT_PRICE = 0.05


@dataclass(frozen=True)
class Config:
    """runner.yaml, with defaults filled in."""

    root: Path
    path: str | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    vars: Mapping[str, Any] = field(default_factory=dict)
    default_region: str | None = None
    campaigns: str = "campaigns"
    templates: str = "templates"
    state: str | None = None
    project: str | None = None
    api_url: str = DEFAULT_API_URL
    pricing: Mapping[str, float] = field(default_factory=lambda: {"default": DEFAULT_PRICE})


@dataclass(frozen=True)
class CampaignSpec:
    """A schema-valid campaign document merged over the config defaults; not yet rendered."""

    name: str
    path: str
    line: int
    fields: Mapping[str, Any]
    document: Document


def _field_name(path: Iterable[Any]) -> str:
    return ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in path).replace(".[", "[")


_TYPE_NAMES = {
    "string": "a string",
    "object": "a mapping",
    "array": "a list",
    "boolean": "true or false",
    "number": "a number",
    "integer": "a whole number",
}
_PATTERN_HINTS = {
    "sender": "must be 3 to 11 characters, letters and digits only",
    "name": "must be lowercase letters, digits, '.', '_' or '-' (at most 64, starting with a "
    "letter or digit)",
    "send_at": "needs an ISO 8601 date-time with an offset, e.g. 2026-12-04T09:00:00+01:00",
    "default_region": "must be a two-letter ISO country code in capitals, e.g. FR",
    "project": "must be lowercase letters, digits, '.', '_' or '-'",
    "api_url": "must start with http:// or https://",
}


def _type_of(value: Any) -> str:
    for name, kind in (
        ("true or false", bool),
        ("a number", int | float),
        ("a string", str),
        ("a mapping", dict),
        ("a list", list),
    ):
        if isinstance(value, kind):
            return name
    return "nothing" if value is None else type(value).__name__


def _describe(error: ValidationError, properties: Mapping[str, Any]) -> tuple[list[Any], str]:
    """Turn one jsonschema error into (path, message with a remedy)."""
    path, v, last = list(error.absolute_path), error.validator, error.absolute_path
    key = next((p for p in reversed(last) if isinstance(p, str)), "")
    if v == "additionalProperties":
        return path, ""  # reported key by key by _unknown_keys
    if v == "required":
        missing = str(error.message).split("'")[1]
        return path, f"missing required field '{missing}'; add it"
    if v == "type":
        wanted = error.validator_value
        wanted = wanted if isinstance(wanted, list) else [wanted]
        names = " or ".join(_TYPE_NAMES.get(w, w) for w in wanted)
        hint = "; quote phone numbers" if "recipients" in path else ""
        return path, f"expected {names}, got {_type_of(error.instance)}{hint}"
    if v == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return path, f"'{error.instance}' is not allowed; use one of: {allowed}"
    if v == "pattern":
        hint = _PATTERN_HINTS.get(key, f"must match {error.validator_value}")
        return path, f"'{error.instance}' {hint}"
    if v == "format":
        return path, f"'{error.instance}' is not a valid {error.validator_value}"
    if v in ("minLength", "minItems"):
        return path, "must not be empty"
    if v == "maxLength":
        return path, f"is longer than {error.validator_value} characters; shorten it"
    if v == "minimum":
        return path, f"must be at least {error.validator_value}"
    if v == "not" and key == "request_id":
        return path, "is derived by runner for each batch; remove it"
    if v == "oneOf" and not path:
        return path, "set exactly one of 'text' or 'template'"
    if v == "oneOf":
        return _recipient_problem(error, properties)
    if v == "propertyNames":
        return path, f"'{error.instance}' is not a valid key here"
    return path, str(error.message)


def _recipient_problem(
    error: ValidationError, properties: Mapping[str, Any]
) -> tuple[list[Any], str]:
    item, path = error.instance, list(error.absolute_path)
    if isinstance(item, dict):
        branch = 2 if "file" in item else 1
        inner = [e for e in error.context or [] if e.relative_schema_path[0] == branch]
        if inner:
            sub_path, message = _describe(inner[0], properties)
            return path + sub_path, message
    if isinstance(item, str):
        return path, "must not be empty"
    return path, (
        f"expected a phone number in quotes, a contact mapping or {{file: ...}}, "
        f"got {_type_of(item)}; quote phone numbers"
    )


def _unknown_keys(
    document: Document, error: ValidationError, schema: Mapping[str, Any]
) -> list[Problem]:
    known = list((error.schema.get("properties") or {}).keys())
    where = list(error.absolute_path)
    problems = []
    for key in error.instance:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else f"known fields: {', '.join(known)}"
        line = line_of(document, [*where, key])
        problems.append(
            Problem(document.path, line, _field_name([*where, key]), f"unknown field; {hint}")
        )
    return problems


def schema_problems(document: Document, name: str) -> list[Problem]:
    """All schema violations of one document, one line each, in file order."""
    validator = schemas.validator(name)
    schema = schemas.schema(name)
    if not isinstance(document.data, dict):
        what = "a campaign" if name == "campaign" else "settings"
        return [
            Problem(
                document.path,
                document.line,
                "",
                f"expected a mapping of {what}, got {_type_of(document.data)}",
            )
        ]
    problems: list[Problem] = []
    for error in validator.iter_errors(document.data):
        if error.validator == "additionalProperties":
            problems += _unknown_keys(document, error, schema)
            continue
        path, message = _describe(error, schema.get("properties", {}))
        problems.append(Problem(document.path, line_of(document, path), _field_name(path), message))
    return sorted(set(problems), key=lambda p: (p.line or 0, p.field, p.message))


def read_config(document: Document | None, root: Path) -> tuple[Config, list[Problem]]:
    if document is None:
        return Config(root=root), []
    problems = schema_problems(document, "config")
    if problems:
        return Config(root=root, path=document.path), problems
    data = dict(document.data)
    data.setdefault("pricing", {"default": DEFAULT_PRICE})
    data["pricing"].setdefault("default", DEFAULT_PRICE)
    return Config(root=root, path=document.path, **data), []


_REQUIRED_AFTER_DEFAULTS = ("purpose", "voice_gender", "voice_language")


def campaign_specs(
    documents: list[Document], config: Config
) -> tuple[list[CampaignSpec], list[Problem]]:
    """Schema-check every campaign document, merge defaults and refuse duplicate names."""
    specs: list[CampaignSpec] = []
    problems: list[Problem] = []
    first_seen: dict[str, str] = {}
    for document in documents:
        found = schema_problems(document, "campaign")
        problems += found
        if found:
            continue
        data = document.data
        merged = {**config.defaults, **data}
        if "template" in data:
            merged.pop("text", None)
        elif "text" in data:
            merged.pop("template", None)
        for required in _REQUIRED_AFTER_DEFAULTS:
            if required not in merged:
                problems.append(
                    Problem(
                        document.path,
                        document.line,
                        required,
                        "missing; set it in the campaign or in runner.yaml defaults",
                    )
                )
        name = data["name"]
        where = f"{document.path}:{line_of(document, ['name'])}"
        if name in first_seen:
            problems.append(
                Problem(
                    document.path,
                    line_of(document, ["name"]),
                    "name",
                    f"'{name}' is already used at {first_seen[name]}; "
                    "campaign names must be unique",
                )
            )
            continue
        first_seen[name] = where
        specs.append(CampaignSpec(name, document.path, document.line, merged, document))
    return specs, problems
