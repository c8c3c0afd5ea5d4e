"""Stage 3: render each campaign's text and resolve its recipients into messages.

A message is the API body without recipients; recipients who would hear the same text share it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2 import (
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    meta,
    nodes,
)
from jinja2.sandbox import SecurityError

from runner import gsm, schemas
from runner.errors import Problem
from runner.recipients import Contact, NumberParser, RecipientReader
from runner.sandbox import BoundedSandbox, start_budget
from runner.validate import CampaignSpec, Config

MAX_TEXT = 1224
MESSAGE_FIELDS = (
    "sender",
    "send_at",
    "purpose",
    "voice_gender",
    "voice_language",
    "auto_remove_blacklisted_numbers",
)


@dataclass(frozen=True)
class Message:
    """One rendered body (no recipients) and the sorted E.164 numbers that should hear it."""

    fingerprint: str
    body: Mapping[str, Any]
    numbers: tuple[str, ...]


@dataclass(frozen=True)
class Campaign:
    name: str
    path: str
    line: int
    messages: tuple[Message, ...]
    duplicates: int
    simulate: bool
    send_at: datetime | None

    @property
    def recipients(self) -> int:
        return sum(len(m.numbers) for m in self.messages)


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint_message(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(body)).hexdigest()


class _Failed(Exception):
    def __init__(self, field: str, message: str) -> None:
        self.field, self.message = field, message


class Renderer:
    """Renders campaigns with one sandbox and one compiled template per distinct source."""

    def __init__(self, config: Config, variables: Mapping[str, Any]) -> None:
        templates = config.root / config.templates
        self.env = BoundedSandbox(str(templates) if templates.is_dir() else None)
        self.config = config
        self.variables = variables
        self.parser = NumberParser(config.default_region)
        self.reader = RecipientReader(config.root, self.parser)
        self._compiled: dict[str, tuple[Template | None, bool]] = {}

    def render(self, spec: CampaignSpec) -> tuple[Campaign | None, list[Problem]]:
        document = spec.document
        recipients, problems = self.reader.read(document, spec.fields["recipients"])
        try:
            send_at = _parse_send_at(spec.fields.get("send_at"))
            template, personal = self._template(spec)
            context = {
                **self.config.vars,
                **spec.fields.get("vars", {}),
                **self.variables,
                "campaign": {"name": spec.name},
            }
            groups = self._render_texts(template, personal, context, spec, recipients.contacts)
            messages = tuple(self._message(spec, text, numbers) for text, numbers in groups.items())
        except _Failed as failed:
            lines = document.data.lines
            field_line = lines.get(failed.field) or lines.get("template") or spec.line
            return None, [*problems, Problem(spec.path, field_line, failed.field, failed.message)]
        if problems:
            return None, problems
        simulate = bool(spec.fields.get("simulation_mode", False))
        campaign = Campaign(
            spec.name, spec.path, spec.line, messages, recipients.duplicates, simulate, send_at
        )
        return campaign, []

    def _template(self, spec: CampaignSpec) -> tuple[Template | None, bool]:
        if "template" in spec.fields:
            key, field = "file:" + spec.fields["template"], "template"
        else:
            key, field = spec.fields["text"], "text"
        if key not in self._compiled:
            self._compiled[key] = self._compile(key, field)
        return self._compiled[key]

    def _compile(self, key: str, field: str) -> tuple[Template | None, bool]:
        try:
            if field == "template":
                name = key[len("file:") :]
                if self.env.loader is None:
                    raise _Failed(
                        field, f"'{name}' not found: there is no {self.config.templates}/ folder"
                    )
                source = self.env.loader.get_source(self.env, name)[0]
                return self.env.get_template(name), _uses_recipient(self.env, source)
            if not any(mark in key for mark in ("{{", "{%", "{#")):
                return None, False
            return self.env.from_string(key), _uses_recipient(self.env, key)
        except TemplateNotFound as e:
            raise _Failed(
                field,
                f"template '{e.name}' not found in {self.config.templates}/; "
                "templates and includes must stay inside it",
            ) from e
        except TemplateSyntaxError as e:
            raise _Failed(
                field, f"template syntax error at line {e.lineno} of the template: {e.message}"
            ) from e

    def _render_texts(
        self,
        template: Template | None,
        personal: bool,
        context: dict[str, Any],
        spec: CampaignSpec,
        contacts: tuple[Contact, ...],
    ) -> dict[str, list[str]]:
        if template is None:
            return {spec.fields["text"].strip(): [c.number for c in contacts]}
        if not personal:
            return {_run(template, context): [c.number for c in contacts]}
        groups: dict[str, list[str]] = {}
        for contact in contacts:
            text = _run(template, {**context, "recipient": contact.as_template_value()})
            groups.setdefault(text, []).append(contact.number)
        return groups

    def _message(self, spec: CampaignSpec, text: str, numbers: list[str]) -> Message:
        _check_text(text)
        body = {"text": text, **{k: spec.fields[k] for k in MESSAGE_FIELDS if k in spec.fields}}
        sample = {**body, "recipients": [{"phone_number": numbers[0]}] if numbers else []}
        for error in schemas.validator("voice-send").iter_errors(sample):
            where = ".".join(map(str, error.absolute_path)) or "text"
            raise _Failed(where, f"the API would refuse this payload: {error.message}")
        return Message(fingerprint_message(body), body, tuple(sorted(numbers)))


def _uses_recipient(env: BoundedSandbox, source: str) -> bool:
    tree = env.parse(source)
    if any(
        True for _ in tree.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends))
    ):
        return True  # an included template may use it; rendering per recipient is always right
    return "recipient" in meta.find_undeclared_variables(tree)


def _run(template: Template, context: Mapping[str, Any]) -> str:
    start_budget()
    try:
        return template.render(context).strip()
    except UndefinedError as e:
        raise _Failed("text", f"{e.message}; define it in vars, runner.yaml vars or --var") from e
    except SecurityError as e:
        raise _Failed("text", f"refused by the template sandbox: {e}") from e
    except TemplateNotFound as e:
        raise _Failed("text", f"included template '{e.name}' not found inside templates/") from e
    except (TemplateError, ArithmeticError, TypeError, ValueError) as e:
        raise _Failed("text", f"template failed: {e}") from e
    except RecursionError as e:
        raise _Failed("text", "template recursion is too deep") from e


def _check_text(text: str) -> None:
    if not text:
        raise _Failed("text", "renders to an empty message; write some text")
    if len(text) > MAX_TEXT:
        raise _Failed(
            "text", f"renders to {len(text)} characters, more than {MAX_TEXT}; shorten it"
        )
    bad = gsm.first_non_gsm(text)
    if bad:
        position, char = bad
        raise _Failed(
            "text",
            f"character {gsm.describe(char)} at position {position} is not in "
            "the GSM 03.38 alphabet; remove or replace it",
        )


def _parse_send_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise _Failed("send_at", f"'{value}' is not a valid date-time") from e
    if parsed.tzinfo is None:
        raise _Failed("send_at", f"'{value}' has no offset; add one, e.g. +01:00")
    return parsed


def render_all(
    config: Config, specs: list[CampaignSpec], variables: Mapping[str, Any]
) -> tuple[list[Campaign], list[Problem]]:
    renderer = Renderer(config, variables)
    campaigns, problems = [], []
    for spec in specs:
        campaign, found = renderer.render(spec)
        problems += found
        if campaign is not None:
            campaigns.append(campaign)
    return campaigns, problems
