"""Recipients: inline numbers, contact mappings and CSV files, parsed into unique E.164 contacts."""

from __future__ import annotations

import bisect
import csv
import functools
import io
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from hashlib import sha256
from itertools import compress, islice, repeat
from operator import is_, itemgetter, methodcaller, not_
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple, cast

import phonenumbers
from phonenumbers import PhoneNumberType

from runner import files
from runner.e164 import doubtful, validate_slowly, verdict, written
from runner.errors import Problem
from runner.load import Document, line_of

MAX_CSV_BYTES = 256 * 1024 * 1024
SHOWN_REPEATS = 10
CONTACT_FIELDS = ("first_name", "last_name", "param1", "param2", "param3", "param4", "param5")


class Contact(tuple[str, Mapping[str, Any], str]):
    """One recipient: its E.164 number, the fields a template may use, and the number's digest.

    A bare tuple, made as `Contact((number, fields, digest))`: a list of a million is built
    by `map` without one Python call per contact.
    """

    __slots__ = ()

    @property
    def number(self) -> str:
        return self[0]

    @property
    def fields(self) -> Mapping[str, Any]:
        return self[1]

    @property
    def digest(self) -> str:
        return self[2]

    def as_template_value(self) -> dict[str, Any]:
        return {**self.fields, "phone_number": self.number}


class Repeat(NamedTuple):
    """A number listed again, where (`path:line`), and where it was first listed."""

    number: str
    where: str
    field: str
    first: str


@dataclass(frozen=True)
class Recipients:
    contacts: tuple[Contact, ...]
    duplicates: int
    repeats: tuple[Repeat, ...] = ()  # the first few duplicates, located


def digest_number(number: str) -> str:
    """The state never holds a phone number, only this digest of its E.164 form."""
    return sha256(number.encode("ascii")).hexdigest()


def aligned_digests(numbers: tuple[str, ...], given: tuple[str, ...]) -> tuple[str, ...]:
    """`given` when it has a digest per number (from the plan or the reader), else computed."""
    return given if len(given) == len(numbers) else tuple(digest_number(n) for n in numbers)


class NumberParser:
    """Parses numbers into E.164. phonenumbers costs ~30 µs a call, so numbers already in
    E.164 are checked by runner.e164's compiled metadata, and any other text is parsed once."""

    def __init__(self, region: str | None, known: Sequence[AbstractSet[str]] = ()) -> None:
        self.region = region
        self.known = known  # digests of numbers delivered before: valid when they were sent
        self._cache: dict[str, str | None] = {}

    @functools.cached_property
    def known_digests(self) -> AbstractSet[str]:
        """One set to look in: the state's, or their union when it has several."""
        return self.known[0] if len(self.known) == 1 else set().union(*self.known)

    def contact(self, raw: str, fields: Mapping[str, Any]) -> Contact | None:
        """The contact for a number as written, or None if it is not a valid number."""
        raw = raw.strip()
        digest = None
        if self.known and raw.startswith("+") and raw.isascii():
            digest = sha256(raw.encode()).hexdigest()  # digest_number, inlined: 1M calls
            if digest in self.known_digests:
                return Contact((raw, fields, digest))  # checked when it was sent
        number = self.e164(raw)
        if number is None:
            return None
        if digest is None or number != raw:
            digest = digest_number(number)
        return Contact((number, fields, digest))

    def e164(self, raw: str) -> str | None:
        fast = verdict(raw)
        if fast is not None:
            return raw if fast else None
        number = written(raw, self.region)
        if number is not None:
            return number
        if raw in self._cache:
            return self._cache[raw]
        number = self._cache[raw] = validate_slowly(raw, self.region)
        return number

    def e164_all(self, raws: list[str], digests: Sequence[str] = ()) -> list[str | None]:
        """e164 of each: the valid E.164 ones found in one C-speed pass, the rest one by one.
        With each raw's digest, those delivered before are not checked again."""
        known = self.known_digests if digests else ()
        if known:
            fresh = compress(raws, map(not_, map(known.__contains__, digests)))
            unsure = doubtful(fresh)
        else:
            unsure = doubtful(raws)
        if not unsure:
            return list(raws)
        e164 = self.e164
        return [e164(raw) if raw in unsure else raw for raw in raws]

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


def _unreadable(name: str, error: Exception) -> str:
    shown = name.replace("\0", "\\0")
    if isinstance(error, files.Outside):
        return f"'{shown}' is outside the project; keep contact files inside it"
    if isinstance(error, files.TooLarge):
        return (
            f"'{shown}' is larger than {files.size_text(error.limit)}; split it into several files"
        )
    if isinstance(error, files.Refused):
        return f"'{shown}' {error}"
    if isinstance(error, OSError):
        reason = f"{error.strerror}; check the path, relative to the project folder"
    else:
        reason = "not UTF-8 text; save it as UTF-8 CSV"
    return f"cannot read '{shown}': {reason}"


class RecipientReader:
    """Resolves one campaign's `recipients` list; files must stay inside the project."""

    def __init__(self, root: Path, parser: NumberParser) -> None:
        self.root = root.resolve()
        self.parser = parser
        self._files: dict[Path, Read] = {}  # a CSV shared by campaigns is parsed once
        self._names: dict[str, str] = {}  # a CSV's name as shown -> as written
        self._lines: dict[str, tuple[list[int], Iterator[int]]] = {}  # by name as shown

    def read(self, document: Document, items: list[Any]) -> tuple[Recipients, list[Problem]]:
        found: list[Contact] = []
        problems: list[Problem] = []
        sources: list[tuple[int, int, Any]] = []  # (first index, line, item) per item
        for index, item in enumerate(items):
            line = item_line(document, index)
            contacts, wrong = self._expand(document.path, line, item)
            sources.append((len(found), line, item))
            found += contacts
            problems += wrong
        # each number where it first appears, with the contact it last appears with
        last = dict(zip(map(itemgetter(0), found), found, strict=True))
        if len(last) == len(found):
            return Recipients(tuple(found), 0), problems
        if all(map(is_, map(itemgetter(1), found), repeat(_NO_FIELDS))):
            unique = tuple(last.values())  # no fields: a number's contacts are all equal
        else:  # the first of each number keeps its fields
            backwards = found[::-1]
            first = dict(zip(map(itemgetter(0), backwards), backwards, strict=True))
            unique = tuple(map(first.__getitem__, last))
        repeats = self._repeats(document.path, found, sources)
        return Recipients(unique, len(found) - len(last), repeats), problems

    def _repeats(
        self, path: str, found: list[Contact], sources: list[tuple[int, int, Any]]
    ) -> tuple[Repeat, ...]:
        """Where the first few duplicates are: paid for only when there are duplicates."""
        seen: dict[str, int] = {}
        pairs: list[tuple[int, int]] = []
        for index, contact in enumerate(found):
            earlier = seen.setdefault(contact[0], index)
            if earlier != index:
                pairs.append((index, earlier))
                if len(pairs) == SHOWN_REPEATS:
                    break
        starts = [start for start, _, _ in sources]

        def place(index: int) -> tuple[str, str]:
            start, line, item = sources[bisect.bisect_right(starts, index) - 1]
            if isinstance(item, dict) and "file" in item:
                name = os.path.normpath(item["file"])
                return f"{name}:{self._line_of_row(name, index - start)}", "phone_number"
            return f"{path}:{line}", "recipients"

        return tuple(
            Repeat(found[index][0], *place(index), place(earlier)[0]) for index, earlier in pairs
        )

    def _line_of_row(self, name: str, row: int) -> int:
        """The line of a CSV file's row-th contact (of a file read without problems). The file
        is read again only as far as the rows asked for: the first repeats come early."""
        if name not in self._lines:
            self._lines[name] = ([], _csv_lines(self._text(self._names[name])))
        lines, more = self._lines[name]
        lines.extend(islice(more, max(0, row + 1 - len(lines))))
        return lines[row]

    def _text(self, name: str) -> str:
        return files.read_project_file(self.root, name, MAX_CSV_BYTES).decode("utf-8-sig")

    def _expand(self, path: str, line: int, item: Any) -> Read:
        if isinstance(item, str):
            return self._contact(path, line, "recipients", item, {})
        if "file" in item:
            return self._read_csv(path, line, item["file"])
        fields = {k: v for k, v in item.items() if k != "phone_number"}
        return self._contact(path, line, "recipients", str(item["phone_number"]), fields)

    def _contact(
        self, path: str, line: int, field: str, raw: str, fields: Mapping[str, Any]
    ) -> Read:
        contact = self.parser.contact(raw, fields)
        if contact is None:
            return [], [Problem(path, line, field, self.parser.problem(raw))]
        return [contact], []

    def _read_csv(self, path: str, line: int, name: str) -> Read:
        try:
            target = files.project_path(self.root, name)
            if target in self._files:
                return self._files[target]
            text = self._text(name)
        except (OSError, UnicodeDecodeError, files.Refused) as e:
            problem = Problem(path, line, "recipients.file", _unreadable(name, e))
            return [], [problem]
        self._names[os.path.normpath(name)] = name
        self._files[target] = self._parse_csv(os.path.normpath(name), text)
        return self._files[target]

    def _parse_csv(self, name: str, text: str) -> Read:
        if "\0" in text:
            return [], [Problem(name, None, "", "contains NUL bytes; save it as plain UTF-8 CSV")]
        if not any(mark in text for mark in '",\r'):  # one column, no quoting: just lines
            header, *body = text.split("\n")
            if header == "phone_number":
                kept = [line for line in body if line]
                return self._numbers_only(
                    name, kept, lambda: [k + 2 for k, line in enumerate(body) if line]
                )
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            columns = next(reader, [])
            if "phone_number" not in columns:
                return [], [
                    Problem(name, 1, "", "no 'phone_number' column in the header row; add it")
                ]
            if columns == ["phone_number"]:
                rows = [(reader.line_num, row) for row in reader if row]
                if all(len(row) == 1 for _, row in rows):
                    cells = [row[0] for _, row in rows]
                    return self._numbers_only(name, cells, lambda: [n for n, _ in rows])
        except csv.Error:
            pass  # the loop below says where
        return self._parse_rows(name, text)

    def _numbers_only(self, name: str, cells: list[str], lines: Callable[[], list[int]]) -> Read:
        """A column of numbers and nothing else, in a few passes; `lines` says where each
        cell is, asked only if some are not valid numbers."""
        raws = list(map(str.strip, cells))
        digests = list(map(methodcaller("hexdigest"), map(sha256, map(str.encode, raws))))
        numbers = self.parser.e164_all(raws, digests)
        if None in numbers:
            where = lines()
            problems = [
                Problem(name, where[k], "phone_number", self.parser.problem(cells[k]))
                for k, number in enumerate(numbers)
                if number is None
            ]
            kept = [k for k, number in enumerate(numbers) if number is not None]
            raws, digests = [raws[k] for k in kept], [digests[k] for k in kept]
            numbers = [numbers[k] for k in kept]
        else:
            problems = []
        valid = cast(list[str], numbers)
        if valid != raws:  # phonenumbers wrote some number otherwise: its digest is another
            digests = [
                d if n == raw else digest_number(n)
                for n, raw, d in zip(valid, raws, digests, strict=True)
            ]
        contacts = list(map(Contact, zip(valid, repeat(_NO_FIELDS), digests, strict=False)))
        return contacts, problems

    def _parse_rows(self, name: str, text: str) -> Read:
        reader = csv.reader(io.StringIO(text, newline=""))
        out: list[Contact] = []
        problems: list[Problem] = []
        try:
            columns = next(reader, [])
            phone = columns.index("phone_number")
            for row in reader:
                if len(row) > len(columns):
                    message = "more cells than header columns; quote cells that hold commas"
                    problems.append(Problem(name, reader.line_num, "", message))
                    continue
                if not row:
                    continue  # a blank line
                raw = row[phone] if phone < len(row) else ""
                fields = (
                    {c: v for c, v in zip(columns, row, strict=False) if v and c != "phone_number"}
                    if len(row) > 1
                    else _NO_FIELDS
                )
                contact = self.parser.contact(raw, fields)
                if contact is None:
                    problem = self.parser.problem(raw)
                    problems.append(Problem(name, reader.line_num, "phone_number", problem))
                else:
                    out.append(contact)
        except csv.Error as e:
            problems.append(
                Problem(name, reader.line_num, "", f"malformed CSV: {e}; fix the quoting")
            )
        return out, problems


Read = tuple[list[Contact], list[Problem]]


def _csv_lines(text: str) -> Iterator[int]:
    """The line each contact of a CSV file starts on."""
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader, None)
    for row in reader:
        if row:
            yield reader.line_num


_NO_FIELDS: Mapping[str, Any] = MappingProxyType({})


def item_line(document: Document, index: int) -> int:
    return line_of(document, ["recipients", index])
