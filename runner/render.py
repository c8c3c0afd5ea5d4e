"""Stage 3: render each campaign's text and resolve its recipients into messages.

A message is the API body without recipients; recipients who would hear the same text share it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple

from jinja2 import (
    Template,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
    nodes,
)
from jinja2.exceptions import SecurityError

from runner import gsm, schemas
from runner.bulk import in_two
from runner.errors import Problem
from runner.recipients import (
    Contact,
    NumberParser,
    RecipientReader,
    Repeat,
    aligned_digests,
    mask_number,
)
from runner.retry import RetryPolicy, policy_of
from runner.sandbox import BoundedSandbox, ConfinedLoader, OutsideTemplates, TooLate, budget
from runner.state.shape import MAX_TIME
from runner.template_cost import TooComplex
from runner.validate import CampaignSpec, Config

MAX_TEXT = 1224
MAX_CAMPAIGN_SECONDS = 10.0  # all the renders of one campaign together, however many recipients
MAX_RUN_SECONDS = 60.0  # every compile and render of a run together, both processes included
SAMPLE_NUMBER = "+12025550143"
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
    """One rendered body (no recipients), and the E.164 numbers that should hear it with their
    digests, in the order of the files (the plan sorts what it sends)."""

    fingerprint: str
    body: Mapping[str, Any]
    numbers: tuple[str, ...]
    digests: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "digests", aligned_digests(self.numbers, self.digests))


@dataclass(frozen=True)
class Campaign:
    name: str
    path: str
    line: int
    messages: tuple[Message, ...]
    duplicates: int
    simulate: bool
    send_at: datetime | None
    send_at_line: int = 0
    repeats: tuple[Repeat, ...] = ()  # where the first few dropped duplicates were
    retry: RetryPolicy | None = None  # whom to call again, from the receipts
    moved_from: tuple[str, ...] = ()  # former names whose history this campaign takes

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

    def __init__(
        self,
        config: Config,
        variables: Mapping[str, Any],
        known: Sequence[AbstractSet[str]] = (),
        deadline: float | None = None,
    ) -> None:
        """`deadline`: the monotonic time by which every template of the run is rendered."""
        self.deadline = time.monotonic() + MAX_RUN_SECONDS if deadline is None else deadline
        templates = config.root / config.templates
        loader = ConfinedLoader(config.root, config.templates) if templates.is_dir() else None
        self.env = BoundedSandbox(loader)
        self.config = config
        self.variables = variables
        self.parser = NumberParser(config.default_region, known)
        self.reader = RecipientReader(config.root, self.parser)
        self._compiled: dict[str, tuple[Template | None, bool]] = {}
        self._checked_settings: set[tuple[tuple[str, str], ...]] = set()

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
            for text in groups:
                _check_text(text)  # even when some recipients are wrong: report both at once
            if not recipients.contacts and not problems:
                raise _Failed(
                    "recipients",
                    "no recipients: the list and its files are empty; "
                    "add at least one phone number",
                )
            messages = tuple(self._message(spec, text, numbers) for text, numbers in groups.items())
        except _Failed as failed:
            field = failed.field
            if field == "text" and "template" in spec.fields:
                field = "template"
            line = document.data.lines.get(field, spec.line)  # a default's line is in runner.yaml
            problems = [*problems, Problem(spec.path, line, field, failed.message)]
        if problems:
            return None, sorted(problems, key=lambda p: (p.path, p.line or 0))
        simulate = bool(spec.fields.get("simulation_mode", False))
        send_at_line = document.data.lines.get("send_at", spec.line)
        campaign = Campaign(
            spec.name,
            spec.path,
            spec.line,
            messages,
            recipients.duplicates,
            simulate,
            send_at,
            send_at_line,
            recipients.repeats,
            retry=policy_of(spec.fields),
            moved_from=tuple(spec.fields.get("moved_from", ())),
        )
        return campaign, []

    def _template(self, spec: CampaignSpec) -> tuple[Template | None, bool]:
        if "template" in spec.fields:
            key, field = "file:" + spec.fields["template"], "template"
        else:
            key, field = spec.fields["text"], "text"
        if key not in self._compiled:
            if self.out_of_time():
                raise _Failed(
                    field, f"not rendered: {_run_late()}; make the slow templates cheaper"
                )
            self._compiled[key] = self._compile(key, field)
        return self._compiled[key]

    def out_of_time(self) -> bool:
        return time.monotonic() > self.deadline

    def _compile(self, key: str, field: str) -> tuple[Template | None, bool]:
        try:
            if field == "template":
                name = key[len("file:") :]
                if self.env.loader is None:
                    folder = self.config.templates
                    raise _Failed(field, f"'{name}' not found: there is no {folder}/; create it")
                source = self.env.loader.get_source(self.env, name)[0]
                return self.env.get_template(name), _uses_recipient(self.env.parse(source))
            if not any(mark in key for mark in ("{{", "{%", "{#")):
                return None, False
            tree = self.env.parse(key)
            return self.env.from_string(tree), _uses_recipient(tree)
        except (TemplateError, UnicodeDecodeError, SecurityError) as e:
            raise _Failed(field, _template_problem(e, self.config.templates)) from e
        except (RecursionError, SyntaxError, MemoryError) as e:  # past what template_cost counts
            raise _Failed(
                field, f"template is too complex to compile ({_sentence(e)}); simplify it"
            ) from e

    def _render_texts(
        self,
        template: Template | None,
        personal: bool,
        context: dict[str, Any],
        spec: CampaignSpec,
        contacts: tuple[Contact, ...],
    ) -> Mapping[str, Sequence[Contact]]:
        if template is None:
            return {spec.fields["text"].strip(): contacts}
        deadline = _Deadline.first(self.deadline)
        if not personal:
            return {_run(template, context, deadline, self.config.templates): contacts}
        groups: dict[str, list[Contact]] = {}
        for contact in contacts:
            recipient = {**context, "recipient": contact.as_template_value()}
            try:
                text = _run(template, recipient, deadline, self.config.templates)
            except _Failed as failed:
                if "has no attribute" in failed.message:  # a field this contact lacks
                    failed.message += f" (recipient {mask_number(contact.number)})"
                raise
            groups.setdefault(text, []).append(contact)
        return groups

    def _message(self, spec: CampaignSpec, text: str, contacts: Sequence[Contact]) -> Message:
        body = {"text": text, **{k: spec.fields[k] for k in MESSAGE_FIELDS if k in spec.fields}}
        self._check_payload(body)
        numbers = tuple(map(itemgetter(0), contacts))
        return Message(
            fingerprint_message(body), body, numbers, tuple(map(itemgetter(2), contacts))
        )

    def _check_payload(self, body: Mapping[str, Any]) -> None:
        """Validate the API body against voice-send.schema.json, once per distinct setting.

        _check_text has already held the text to the schema's own rules (length, GSM 03.38),
        and the numbers are E.164 from phonenumbers, so a stand-in text and number give the
        same verdict; only the other fields vary, and they repeat across campaigns.
        """
        settings = tuple(sorted((k, str(v)) for k, v in body.items() if k != "text"))
        if settings in self._checked_settings:
            return
        sample = {**body, "text": "x", "recipients": [{"phone_number": SAMPLE_NUMBER}]}
        if not schemas.accepts("voice-send")(sample):  # only a refusal needs jsonschema's why
            # jsonschema is the reference: if it finds nothing, the payload is valid
            for error in schemas.validator("voice-send").iter_errors(sample):
                where = ".".join(map(str, error.absolute_path)) or "text"
                raise _Failed(where, f"the API would refuse this payload: {error.message}")
        self._checked_settings.add(settings)


def _uses_recipient(tree: nodes.Template) -> bool:
    """True if the text may depend on `recipient`: then it is rendered per recipient.

    Any mention counts, and so does any include or import (the other file may use it): at
    worst a text renders per recipient needlessly, which is slower but never wrong.
    """
    for node in tree.find_all(
        (nodes.Name, nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)
    ):
        if not isinstance(node, nodes.Name) or node.name == "recipient":
            return True
    return False


def _run_late() -> str:
    return f"templates took more than {MAX_RUN_SECONDS:g} s in this run, all campaigns together"


class _Deadline(NamedTuple):
    """The sooner of the campaign's own time limit and the run's, and what to say when due."""

    at: float
    late: str

    @classmethod
    def first(cls, run_deadline: float) -> _Deadline:
        campaign = time.monotonic() + MAX_CAMPAIGN_SECONDS
        if campaign < run_deadline:
            return cls(campaign, "template takes too long to render for every recipient")
        return cls(run_deadline, _run_late())


def _run(template: Template, context: Mapping[str, Any], deadline: _Deadline, folder: str) -> str:
    try:
        with budget(*deadline):
            return template.render(context).strip()
    except (TemplateError, UnicodeDecodeError) as e:
        raise _Failed("text", _template_problem(e, folder)) from e
    except (ArithmeticError, TypeError, ValueError, LookupError) as e:
        raise _Failed("text", f"template failed: {_sentence(e)}; fix the expression") from e
    except RecursionError as e:
        raise _Failed(
            "text", "template recursion is too deep: an include or macro calls itself without end"
        ) from e


def _template_problem(error: Exception, folder: str) -> str:
    """One message, with its remedy, for whatever compiling or rendering a template raised."""
    if isinstance(error, OutsideTemplates) and error.reason:
        return f"template '{error.name}' {error.reason}"
    if isinstance(error, OutsideTemplates):
        return f"template '{error.name}' leads outside {folder}/; keep templates inside it"
    if isinstance(error, TooComplex):
        where = f" ({error.name}, line {error.lineno})" if error.name else ""
        return f"refused{where}: {error.message}"
    if isinstance(error, TemplateNotFound):
        return f"template '{error.name}' not found in {folder}/; create it or fix the name"
    if isinstance(error, TemplateSyntaxError):
        where = f"{error.name}, line {error.lineno}" if error.name else f"line {error.lineno}"
        return f"template syntax error ({where}): {_sentence(error.message)}; fix the template"
    if isinstance(error, UnicodeDecodeError):
        return "a template is not UTF-8 text; save it as UTF-8"
    if isinstance(error, TooLate):
        return f"{error}; make the slow templates cheaper"
    if isinstance(error, SecurityError):
        return f"refused by the template sandbox: {_sentence(error)}; remove that expression"
    if isinstance(error, UndefinedError) and str(error.message).endswith("is undefined"):
        return f"{error.message}; define it in vars, runner.yaml vars or --var"
    if isinstance(error, UndefinedError):
        return f"{error.message}; give it a default, e.g. {{{{ value | default('') }}}}"
    return f"template failed: {_sentence(error)}; fix the template"


def _sentence(message: object) -> str:
    """Jinja2 ends its messages with a period; ours go on with '; what to do'."""
    return str(message).strip().rstrip(".")


def _check_text(text: str) -> None:
    if not text:
        raise _Failed("text", "renders to an empty message; write some text")
    if len(text) > MAX_TEXT:
        raise _Failed(
            "text", f"renders to {len(text)} characters, more than {MAX_TEXT}; shorten it"
        )
    problem = gsm.problem(text)
    if problem:
        raise _Failed("text", problem)


def _parse_send_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise _Failed(
            "send_at",
            f"'{value}' is not a valid date-time; write it like 2026-12-04T09:00:00+01:00",
        ) from e
    if parsed.tzinfo is None:
        raise _Failed("send_at", f"'{value}' has no offset; add one, e.g. +01:00")
    if not 0 <= parsed.timestamp() < MAX_TIME:  # the state keeps a booking's time in this range
        raise _Failed("send_at", f"'{value}' is not between 1970 and 5138; write a real date")
    return parsed


def render_all(
    config: Config,
    specs: list[CampaignSpec],
    variables: Mapping[str, Any],
    known: Sequence[AbstractSet[str]] = (),
) -> tuple[list[Campaign], list[Problem]]:
    """Render every campaign, on two cores when there are many; the same result either way.

    `known`: digests delivered before, whose numbers need no second check.
    """

    deadline = time.monotonic() + MAX_RUN_SECONDS  # one clock for both processes: monotonic

    def render(part: Sequence[CampaignSpec]) -> list[tuple[Campaign | None, list[Problem]]]:
        renderer = Renderer(config, variables, known, deadline)
        results: list[tuple[Campaign | None, list[Problem]]] = []
        for at, spec in enumerate(part):
            if renderer.out_of_time():  # one line for the rest, not one per campaign
                results.append((None, [_not_rendered(part[at:])]))
                break
            results.append(renderer.render(spec))
        return results

    campaigns, problems = [], []
    for campaign, found in in_two(render, specs):
        problems += [p for p in found if p not in problems]  # a CSV shared by campaigns: once
        if campaign is not None:
            campaigns.append(campaign)
    return campaigns, problems


def _not_rendered(skipped: Sequence[CampaignSpec]) -> Problem:
    first = skipped[0]
    return Problem(
        first.path,
        first.line,
        "",
        f"{len(skipped)} campaign(s) from here on not rendered: {_run_late()}; "
        "make the slow templates cheaper",
    )
