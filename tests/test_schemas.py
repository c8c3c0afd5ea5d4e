"""The shipped JSON Schemas against a corpus of realistic files: tests/schemas/NAME/{valid,invalid}.

Every valid file passes and every invalid file fails on exactly one field, the one named in its
`# expect:` comment (JSON files say it with their name).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from runner import schemas
from runner.load import parse_yaml
from runner.voices import PAGE, VOICES

CORPUS = Path(__file__).parent / "schemas"


def corpus(verdict: str) -> list[Any]:
    return [
        pytest.param(name, path, id=f"{name}/{path.name}")
        for name in schemas.NAMES
        for path in sorted((CORPUS / name / verdict).iterdir())
        if path.suffix in (".yaml", ".json")
    ]


def instance(path: Path) -> Any:
    """Read a corpus file the way runner reads a project file."""
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    documents, problems = parse_yaml(path.read_bytes(), path.name)
    assert not problems, problems
    assert len(documents) == 1
    return documents[0].data


@pytest.mark.parametrize(("name", "path"), corpus("valid"))
def test_valid_examples_pass(name: str, path: Path) -> None:
    errors = [e.message for e in schemas.validator(name).iter_errors(instance(path))]
    assert errors == []


@pytest.mark.parametrize(("name", "path"), corpus("invalid"))
def test_invalid_examples_fail_for_one_reason(name: str, path: Path) -> None:
    errors = list(schemas.validator(name).iter_errors(instance(path)))
    assert errors
    fields = {tuple(e.absolute_path) for e in errors}  # send_at fails format and pattern
    assert len(fields) == 1, [e.message for e in errors]


def test_every_schema_has_a_corpus_on_both_sides() -> None:
    for name in schemas.NAMES:
        for verdict in ("valid", "invalid"):
            assert len(list((CORPUS / name / verdict).iterdir())) >= 3, (name, verdict)


@pytest.mark.parametrize("name", schemas.NAMES)
def test_schemas_are_draft_2020_12_with_an_id(name: str) -> None:
    schema = schemas.schema(name)
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == f"https://runner.example/schemas/{name}.schema.json"


def test_campaign_and_config_defaults_agree() -> None:
    """Any campaign field may be a default, except the ones that name one campaign."""
    campaign = set(schemas.schema("campaign")["properties"])
    defaults = set(schemas.schema("config")["properties"]["defaults"]["properties"])
    assert campaign - defaults == {"name", "vars", "recipients", "moved_from"}
    for field in defaults:
        assert (
            schemas.schema("config")["properties"]["defaults"]["properties"][field]
            == schemas.schema("campaign")["properties"][field]
        ), field


def test_voice_send_settings_match_the_campaign_rules() -> None:
    body = schemas.schema("voice-send")["properties"]
    campaign = schemas.schema("campaign")["properties"]
    for field in ("sender", "send_at", "purpose", "voice_gender", "voice_language"):
        assert body[field] == campaign[field], field


def test_the_schemas_list_the_providers_voices() -> None:
    """Every language of runner.voices, and the API body refuses a gender it has not."""
    female_only = [language for language, genders in VOICES.items() if genders == ("female",)]
    for name in ("campaign", "voice-send"):
        language = schemas.schema(name)["properties"]["voice_language"]
        assert language["enum"] == list(VOICES)
        assert PAGE in language["description"]
    rule = schemas.schema("voice-send")["allOf"]
    assert rule == [
        {
            "if": {
                "properties": {"voice_language": {"enum": female_only}},
                "required": ["voice_language"],
            },
            "then": {"properties": {"voice_gender": {"const": "female"}}},
        }
    ]


@pytest.mark.parametrize(("name", "path"), corpus("valid") + corpus("invalid"))
def test_fast_check_agrees_with_jsonschema_on_the_corpus(name: str, path: Path) -> None:
    data = instance(path)
    assert schemas.accepts(name)(data) == schemas.validator(name).is_valid(data)


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 2000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "a", "ACME", "+33612345678", "en-US", "alert", "2026-12-04T09:00:00Z"]),
    st.text(max_size=12),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


def _mutations(data: Any, draw: Any) -> Any:
    """The document with one value replaced, one key dropped, or one key added."""
    if not isinstance(data, dict) or not data:
        return draw(VALUES)
    key = draw(st.sampled_from(sorted(data)))
    action = draw(st.sampled_from(["replace", "drop", "add", "descend"]))
    changed = dict(data)
    if action == "replace":
        changed[key] = draw(VALUES)
    elif action == "drop":
        del changed[key]
    elif action == "add":
        changed[draw(st.text(max_size=10))] = draw(VALUES)
    elif isinstance(data[key], dict | list) and data[key]:
        inner = data[key]
        if isinstance(inner, list):
            changed[key] = [_mutations(inner[0], draw), *inner[1:]]
        else:
            changed[key] = _mutations(inner, draw)
    return changed


@settings(max_examples=600, deadline=None, derandomize=True)
@given(st.data())
def test_fast_check_agrees_with_jsonschema_on_mutated_files(data: st.DataObject) -> None:
    name, path = data.draw(st.sampled_from([p.values for p in corpus("valid")]))
    document = _mutations(instance(path), data.draw)
    assert schemas.accepts(name)(document) == schemas.validator(name).is_valid(document)
