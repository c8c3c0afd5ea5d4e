"""Stage 2: check documents against the JSON Schemas and turn them into typed records.

Every message names the file and line, the field, what is wrong and what to do.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import phonenumbers

from runner import files, schemas
from runner.endpoint import endpoint_problem
from runner.errors import Problem
from runner.load import Document, line_of
from runner.moved_from import moved_from_problems
from runner.recipients import shown_value
from runner.retry import retry_problems
from runner.voices import gender_problem

if TYPE_CHECKING:
    from jsonschema import ValidationError

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
    "after": "must be a whole number and a unit: 90s, 15m, 2h or 1d",
}


def _quoted(value: Any) -> str:
    return shown_value(str(value))


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


def _describe(error: ValidationError) -> list[tuple[list[Any], str]]:
    """Turn one jsonschema error into (path, message with a remedy) pairs."""
    path, v = list(error.absolute_path), error.validator
    key = next((p for p in reversed(path) if isinstance(p, str)), "")
    if v == "required":
        missing = str(error.message).split("'")[1]
        return [(path, f"missing required field '{missing}'; add it")]
    if v == "type":
        return [(path, _type_problem(error))]
    if v == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return [(path, f"{_quoted(error.instance)} is not allowed; use one of: {allowed}")]
    if v == "pattern" and "propertyNames" in error.schema_path:
        return [([*path, error.instance], f"is not a known key; {_KEY_HINTS.get(key, '')}")]
    if v == "pattern":
        hint = _PATTERN_HINTS.get(key, f"must match {error.validator_value}")
        return [(path, f"{_quoted(error.instance)} {hint}")]
    if v == "format":
        example = _FORMAT_EXAMPLES.get(str(error.validator_value), "")
        return [
            (path, f"{_quoted(error.instance)} is not a valid {error.validator_value}{example}")
        ]
    if v in ("minLength", "minItems"):
        return [(path, f"is empty; {_EMPTY_HINTS.get(key, 'fill it in or remove it')}")]
    if v == "maxLength":
        return [(path, f"is longer than {error.validator_value} characters; shorten it")]
    if v == "minimum":
        return [(path, f"must be at least {error.validator_value}; raise it")]
    if v == "maximum":
        return [(path, f"must be at most {error.validator_value}; lower it")]
    if v == "not" and key == "request_id":
        return [(path, "is derived by runner for each batch; remove it")]
    if v == "not" and error.validator_value == {"required": ["text", "template"]}:
        return [([*path, "template"], "set either 'text' or 'template', not both; keep one")]
    if v == "oneOf":
        return _recipient_problems(error)
    return [(path, str(error.message))]


_KEY_HINTS = {"pricing": 'use default, a calling code such as "1", or a region such as US'}
_FORMAT_EXAMPLES = {
    "date-time": "; write it like 2026-12-04T09:00:00+01:00",
    "uri": "; write it like https://api.octopush.com/v1/public",
}
_EMPTY_HINTS = {
    "text": "write the message",
    "recipients": "add at least one phone number",
    "file": "name a CSV file inside the project",
}


def _type_problem(error: ValidationError) -> str:
    wanted = (
        error.validator_value
        if isinstance(error.validator_value, list)
        else [error.validator_value]
    )
    names = " or ".join(_TYPE_NAMES.get(str(w), str(w)) for w in wanted)
    hint = ""
    if "string" in wanted and isinstance(error.instance, bool | int | float):
        hint = "; put it in quotes"
    elif "array" in wanted:
        hint = "; write one '- item' per line"
    elif "object" in wanted:
        hint = "; write one 'key: value' per line"
    elif "boolean" in wanted:
        hint = "; write true or false, without quotes"
    return f"expected {names}, got {_type_of(error.instance)}{hint}"


def _recipient_problems(error: ValidationError) -> list[tuple[list[Any], str]]:
    """A recipients item matched no form: explain it against the form it looks like."""
    item, path = error.instance, list(error.absolute_path)
    if isinstance(item, dict):
        branch = 2 if "file" in item else 1
        found: list[tuple[list[Any], str]] = []
        for inner in error.context or []:
            if inner.relative_schema_path[0] != branch:
                continue
            if inner.validator == "additionalProperties":
                known = list(inner.schema.get("properties", {}))
                extra = [k for k in item if k not in known]
                found += [([*path, k], _unknown_message(k, known)) for k in extra]
            else:
                found += _describe(inner)  # inner paths are absolute already
        if found:
            return found
    if isinstance(item, str):
        return [(path, "is empty; write a phone number or remove the item")]
    return [
        (
            path,
            f"expected a phone number in quotes, a contact mapping or {{file: ...}}, "
            f"got {_type_of(item)}; quote phone numbers",
        )
    ]


def _unknown_message(key: Any, known: list[str]) -> str:
    if known == ["file"]:
        return "unknown field; a {file: ...} item takes only 'file': give the contact its own item"
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else f"known fields: {', '.join(known)}"
    return f"unknown field; {hint}"


def _unknown_keys(document: Document, error: ValidationError) -> list[Problem]:
    known = list((error.schema.get("properties") or {}).keys())
    where = list(error.absolute_path)
    return [
        Problem(
            document.path,
            line_of(document, [*where, key]),
            _field_name([*where, key]),
            _unknown_message(key, known),
        )
        for key in error.instance
        if key not in known
    ]


def _one_per_field(errors: Iterable[ValidationError]) -> Iterator[ValidationError]:
    """A value that fails both `format` and `pattern` gets one message: the pattern's."""
    errors = list(errors)
    patterned = {tuple(e.absolute_path) for e in errors if e.validator == "pattern"}
    for error in errors:
        if error.validator != "format" or tuple(error.absolute_path) not in patterned:
            yield error


def schema_problems(document: Document, name: str) -> list[Problem]:
    """All schema violations of one document, one line each, in file order."""
    if not isinstance(document.data, dict):
        what = "a campaign (a mapping of fields)" if name == "campaign" else "a mapping of settings"
        message = f"expected {what}, got {_type_of(document.data)}"
        return [Problem(document.path, document.line, "", message)]
    if schemas.accepts(name)(document.data):
        return []
    problems: list[Problem] = []
    for error in _one_per_field(schemas.validator(name).iter_errors(document.data)):
        if error.validator == "additionalProperties":
            problems += _unknown_keys(document, error)
            continue
        for path, message in _describe(error):
            line = line_of(document, path)
            problems.append(Problem(document.path, line, _field_name(path), message))
    return sorted(set(problems), key=lambda p: (p.line or 0, p.field, p.message))


def read_config(document: Document | None, root: Path) -> tuple[Config, list[Problem]]:
    if document is None:
        return Config(root=root), []
    problems = schema_problems(document, "config")
    problems += _folders_outside(document, root) + _unknown_region(document)
    problems += _default_voice(document) if not problems else []
    if not problems and isinstance(document.data.get("defaults"), dict):
        problems += retry_problems(document, document.data["defaults"].get("retry"), ("defaults",))
    if not any(p.field == "api_url" for p in problems):  # one line per field
        problems += _insecure_endpoint(document)
    problems.sort(key=lambda p: p.line or 0)
    if problems:
        return Config(root=root, path=document.path), problems
    data = dict(document.data)
    data.setdefault("pricing", {"default": DEFAULT_PRICE})
    data["pricing"].setdefault("default", DEFAULT_PRICE)
    return Config(root=root, path=document.path, **data), []


def _folders_outside(document: Document, root: Path) -> list[Problem]:
    """campaigns:, templates: and a state file must stay in the project, out of dot-folders."""
    problems = []
    for key in ("campaigns", "templates", "state"):
        value = document.data.get(key)
        if not isinstance(value, str) or value.startswith(("postgresql://", "postgres://")):
            continue
        try:
            files.project_path(root, value, hidden_ok=key == "state")
        except files.Refused as e:
            folder = isinstance(e, files.Outside) and key != "state"
            reason = "leads outside the project; use a folder inside it" if folder else str(e)
            line = line_of(document, [key])
            problems.append(Problem(document.path, line, key, f"{_quoted(value)} {reason}"))
    return problems


def _unknown_region(document: Document) -> list[Problem]:
    region = document.data.get("default_region")
    if not isinstance(region, str) or region in phonenumbers.SUPPORTED_REGIONS:
        return []
    line = line_of(document, ["default_region"])
    message = f"{_quoted(region)} is not a known country; use an ISO 3166 code such as US"
    return [Problem(document.path, line, "default_region", message)]


def _insecure_endpoint(document: Document) -> list[Problem]:
    """A PR could send the key anywhere once merged: https only, plain http on loopback."""
    url = document.data.get("api_url")
    problem = endpoint_problem(url) if isinstance(url, str) else None
    if problem is None:
        return []
    line = line_of(document, ["api_url"])
    return [Problem(document.path, line, "api_url", f"{_quoted(url)} {problem}")]


_REQUIRED_AFTER_DEFAULTS = ("purpose", "voice_gender", "voice_language")


def _merge_defaults(document: Document, config: Config) -> tuple[dict[str, Any], list[Problem]]:
    """The campaign over runner.yaml defaults; its own text or template beats either default."""
    data = document.data
    merged = {**config.defaults, **data}
    if "template" in data:
        merged.pop("text", None)
    elif "text" in data:
        merged.pop("template", None)
    missing = [f for f in _REQUIRED_AFTER_DEFAULTS if f not in merged]
    if "text" not in merged and "template" not in merged:
        missing.insert(0, "text")
    return merged, [
        Problem(
            document.path,
            document.line,
            field,
            f"missing; set {'text or template' if field == 'text' else 'it'} in the campaign "
            "or in runner.yaml defaults",
        )
        for field in missing
    ] + _voice_problems(document, merged)


def _voice_problems(document: Document, merged: Mapping[str, Any]) -> list[Problem]:
    """A gender the language does not have, at the line of the campaign that chose either.

    Both from runner.yaml defaults: runner.yaml's own check reports it, once.
    """
    problem = gender_problem(merged.get("voice_language"), merged.get("voice_gender"))
    here = [key for key in ("voice_gender", "voice_language") if key in document.data]
    if problem is None or not here:
        return []
    return [Problem(document.path, line_of(document, [here[0]]), here[0], problem)]


def _default_voice(document: Document) -> list[Problem]:
    defaults = document.data.get("defaults")
    if not isinstance(defaults, dict):
        return []
    problem = gender_problem(defaults.get("voice_language"), defaults.get("voice_gender"))
    if problem is None:
        return []
    line = line_of(document, ["defaults", "voice_gender"])
    return [Problem(document.path, line, "defaults.voice_gender", problem)]


def campaign_specs(
    documents: list[Document], config: Config
) -> tuple[list[CampaignSpec], list[Problem]]:
    """Schema-check every campaign document, merge defaults and refuse duplicate names."""
    specs: list[CampaignSpec] = []
    problems: list[Problem] = []
    for document in documents:
        found = schema_problems(document, "campaign")
        if not found:
            found = retry_problems(document, document.data.get("retry"))
        if not found:
            merged, found = _merge_defaults(document, config)
        problems += found
        if not found:
            name = str(document.data["name"])
            specs.append(CampaignSpec(name, document.path, document.line, merged, document))
    repeated, taken = _repeated_names(documents)
    problems += moved_from_problems(specs)
    return [s for s in specs if s.name not in taken], problems + repeated


SHOWN_PLACES = 3


def _repeated_names(documents: list[Document]) -> tuple[list[Problem], set[str]]:
    """A name used twice is reported at every use: the files cannot tell which one is new."""
    places: dict[str, list[str]] = {}
    for document in documents:
        name = document.data.get("name") if isinstance(document.data, dict) else None
        if isinstance(name, str):
            places.setdefault(name, []).append(f"{document.path}:{line_of(document, ['name'])}")
    problems = []
    for name, where in places.items():
        for index, place in enumerate(where if len(where) > 1 else []):
            others = where[:index] + where[index + 1 :]
            shown = ", ".join(others[:SHOWN_PLACES])
            more = f" and {len(others) - SHOWN_PLACES:,} more" if len(others) > SHOWN_PLACES else ""
            path, line = place.rsplit(":", 1)
            message = f"'{name}' is also used at {shown}{more}; names must be unique, rename one"
            problems.append(Problem(path, int(line), "name", message))
    return problems, {name for name, where in places.items() if len(where) > 1}
