"""Recipients: inline numbers, contact mappings and CSV files, parsed into unique E.164 contacts."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import phonenumbers
from phonenumbers import PhoneNumberType

from runner.errors import Problem
from runner.load import Document, line_of

MAX_CSV_BYTES = 256 * 1024 * 1024
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_FORMULA = ("=", "@")  # a spreadsheet formula, e.g. =SUM(12025550100,43)
CONTACT_FIELDS = ("first_name", "last_name", "param1", "param2", "param3", "param4", "param5")


@dataclass(frozen=True)
class Contact:
    """One recipient: its E.164 number and the fields a template may use."""

    number: str
    fields: Mapping[str, Any]

    def as_template_value(self) -> dict[str, Any]:
        return {**self.fields, "phone_number": self.number}


@dataclass(frozen=True)
class Recipients:
    contacts: tuple[Contact, ...]
    duplicates: int


def digest_number(number: str) -> str:
    """The state never holds a phone number, only this digest of its E.164 form."""
    return hashlib.sha256(number.encode("ascii")).hexdigest()


class NumberParser:
    """Parses each distinct (text, region) once per run: phonenumbers costs ~35 µs a call."""

    def __init__(self, region: str | None) -> None:
        self.region = region
        self._cache: dict[str, str | None] = {}

    def e164(self, raw: str) -> str | None:
        if raw in self._cache:
            return self._cache[raw]
        number = self._parse(raw)
        self._cache[raw] = number
        return number

    def _parse(self, raw: str) -> str | None:
        if raw.startswith(_FORMULA):
            return None  # phonenumbers would dig a number out of it, not the one a sheet shows
        try:
            parsed = phonenumbers.parse(raw, self.region)
        except phonenumbers.NumberParseException:
            return None
        if not phonenumbers.is_valid_number(parsed):
            return None
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)

    def problem(self, raw: str) -> str:
        if not raw.strip():
            return "no phone number; fill it in or remove the entry"
        example = _example_number(self.region)
        hint = (
            f"write it in E.164, e.g. {example}"
            if self.region or raw.startswith("+")
            else f"write it in E.164 ({example}) or set default_region in runner.yaml"
        )
        return f"{shown_value(raw)} is not a valid phone number; {hint}"


def _example_number(region: str | None) -> str:
    """libphonenumber's own example for the region: familiar in shape, never a real line."""
    example = phonenumbers.example_number_for_type(region or "FR", PhoneNumberType.MOBILE)
    if example is None:
        return "+33612345678"
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)


def shown_value(raw: str, limit: int = 40) -> str:
    """A user's value quoted on one line: a stray quote in a CSV can swallow whole rows."""
    text = raw if len(raw) <= limit else raw[:limit] + "..."
    return "'" + "".join(c if c.isprintable() else repr(c)[1:-1] for c in text) + "'"


def mask_number(number: str) -> str:
    """'+33612345678' -> '+33 6•• •• •• 78': enough to recognise, not enough to dial."""
    try:
        parsed = phonenumbers.parse(number, None)
        shown = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        code = f"+{parsed.country_code}"
    except phonenumbers.NumberParseException:
        shown, code = number, number[:3]
    head, rest = shown[: len(code)], shown[len(code) :]
    digits = [i for i, c in enumerate(rest) if c.isdigit()]
    hidden = set(digits[1:-2])
    return head + "".join("•" if i in hidden else c for i, c in enumerate(rest))


class RecipientReader:
    """Resolves one campaign's `recipients` list; files must stay inside the project."""

    def __init__(self, root: Path, parser: NumberParser) -> None:
        self.root = root.resolve()
        self.parser = parser
        self._files: dict[Path, list[Contact | Problem]] = {}  # a shared CSV is parsed once

    def read(self, document: Document, items: list[Any]) -> tuple[Recipients, list[Problem]]:
        contacts: dict[str, Contact] = {}
        problems: list[Problem] = []
        duplicates = 0
        for index, item in enumerate(items):
            line = item_line(document, index)
            for contact_or_problem in self._expand(document.path, line, item):
                if isinstance(contact_or_problem, Problem):
                    problems.append(contact_or_problem)
                elif contact_or_problem.number in contacts:
                    duplicates += 1
                else:
                    contacts[contact_or_problem.number] = contact_or_problem
        return Recipients(tuple(contacts.values()), duplicates), problems

    def _expand(self, path: str, line: int, item: Any) -> list[Contact | Problem]:
        if isinstance(item, str):
            return [self._contact(path, line, "recipients", item, {})]
        if "file" in item:
            return self._read_csv(path, line, item["file"])
        fields = {k: v for k, v in item.items() if k != "phone_number"}
        return [self._contact(path, line, "recipients", str(item["phone_number"]), fields)]

    def _contact(
        self, path: str, line: int, field: str, raw: str, fields: Mapping[str, Any]
    ) -> Contact | Problem:
        number = self.parser.e164(raw.strip())
        if number is None:
            return Problem(path, line, field, self.parser.problem(raw))
        return Contact(number, fields)

    def _read_csv(self, path: str, line: int, name: str) -> list[Contact | Problem]:
        target = (self.root / name).resolve()
        if not target.is_relative_to(self.root):
            return [
                Problem(
                    path,
                    line,
                    "recipients.file",
                    f"'{name}' is outside the project; keep contact files inside it",
                )
            ]
        if target in self._files:
            return self._files[target]
        try:
            if target.stat().st_size > MAX_CSV_BYTES:
                message = f"'{name}' is larger than 256 MiB; split it into several files"
                return [Problem(path, line, "recipients.file", message)]
            text = target.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as e:
            reason = (
                f"{e.strerror}; check the path, relative to the project folder"
                if isinstance(e, OSError)
                else "not UTF-8 text; save it as UTF-8 CSV"
            )
            return [Problem(path, line, "recipients.file", f"cannot read '{name}': {reason}")]
        self._files[target] = self._parse_csv(os.path.normpath(name), text)
        return self._files[target]

    def _parse_csv(self, name: str, text: str) -> list[Contact | Problem]:
        if "\0" in text:
            return [Problem(name, None, "", "contains NUL bytes; save it as plain UTF-8 CSV")]
        reader = csv.DictReader(io.StringIO(text, newline=""))
        columns = reader.fieldnames or []
        if "phone_number" not in columns:
            return [Problem(name, 1, "", "no 'phone_number' column in the header row; add it")]
        out: list[Contact | Problem] = []
        try:
            for row in reader:
                if None in row:
                    message = "more cells than header columns; quote cells that hold commas"
                    out.append(Problem(name, reader.line_num, "", message))
                    continue
                raw = row.pop("phone_number") or ""
                fields = {k: v for k, v in row.items() if v not in (None, "")}
                out.append(self._contact(name, reader.line_num, "phone_number", raw, fields))
        except csv.Error as e:
            out.append(Problem(name, reader.line_num, "", f"malformed CSV: {e}; fix the quoting"))
        return out


def item_line(document: Document, index: int) -> int:
    return line_of(document, ["recipients", index])
