"""Exact, fast validation of numbers already written in E.164 (`+` and digits only).

phonenumbers spends ~30 µs to parse and validate one number. For a number in strict E.164
form its verdict depends only on the number's length and leading digits: every pattern
libphonenumber matches a national number against ends in a run of free digits (`[2-9]\\d{6}`
ends in six), and the patterns it matches from the start (national prefixes, leading digits)
are short. So for each country code we read, once, how many trailing digits no pattern looks
at, and ask phonenumbers once per distinct (length, leading digits). A list of a million
numbers then costs a few thousand phonenumbers calls; tests check the verdicts are the same.
"""

from __future__ import annotations

import functools
import re
import re._constants as sre
import re._parser as sre_parse
from operator import itemgetter
from typing import Any

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

STRICT = re.compile(r"\+[1-9][0-9]{6,14}")
_STRICT_LINES = re.compile(r"(?:\+[1-9][0-9]{6,14}\n)+")
_DIALABLE = re.compile(r"\s*\+?[(\d][\d\s()./\-]*\d\s*")
_DESCS = [
    *("general_desc", "premium_rate", "toll_free", "shared_cost", "voip", "personal_number"),
    *("pager", "uan", "voicemail", "fixed_line", "mobile"),
]
_FREE_DIGIT = ([(sre.CATEGORY, sre.CATEGORY_DIGIT)], [(sre.RANGE, (48, 57))])


def _tail(pattern: Any, low: int, high: int) -> int:
    """How many last characters of an all-digit string a match never looks at.

    `pattern` (a parsed regex) must match a string whose length is in [low, high]. Walking
    back from the end, a run of free digits (`\\d{2,4}`) takes at least its shortest possible
    width whatever the digits are, and what comes before it matches what is left; so the
    verdict depends only on the string without those last characters. Alternatives that
    cannot have the length left are skipped: a 7-digit `8001111` says nothing of 10 digits.
    """
    total = 0
    for end in range(len(pattern), 0, -1):
        op, arg = pattern[end - 1]
        before = pattern[: end - 1].getwidth()
        item = pattern[end - 1 : end].getwidth()
        low_w, high_w = max(item[0], low - before[1]), min(item[1], high - before[0])
        if low_w > high_w:
            return _NEVER  # no string of these lengths matches: nothing decides the verdict
        if _free_width(op, arg) is not None:
            total += low_w
            low, high = low - high_w, high - low_w
            continue
        if op is sre.SUBPATTERN:
            return total + _tail(arg[-1], low_w, high_w)
        if op is sre.BRANCH:
            return total + min(_tail(branch, low_w, high_w) for branch in arg[1])
        return total
    return total


_NEVER = 1 << 20


def _free_width(op: Any, arg: Any) -> tuple[int, int] | None:
    """(shortest, longest) match if the item matches any digits at all, else None."""
    if op is sre.IN:
        return (1, 1) if arg in _FREE_DIGIT else None
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
        low, high, sub = arg
        inner = _run_width(sub)
        return None if inner is None else (low * inner[0], high * inner[1])
    if op is sre.SUBPATTERN:
        return _run_width(arg[-1])
    if op is sre.BRANCH:
        widths = [_run_width(branch) for branch in arg[1]]
        if any(w is None for w in widths):
            return None
        return min(w[0] for w in widths if w), max(w[1] for w in widths if w)
    return None


def _run_width(items: Any) -> tuple[int, int] | None:
    low = high = 0
    for op, arg in items:
        width = _free_width(op, arg)
        if width is None:
            return None
        low, high = low + width[0], high + width[1]
    return low, high


@functools.cache
def _shape(country_code: int, length: int) -> tuple[int, int, re.Pattern[str] | None]:
    """(free tail, widest prefix match, national prefixes) for national numbers of one length.

    A tail of 0 turns the shortcut off. phonenumbers strips a national prefix even after +CC
    (Belarus: 80, China: a carrier code), and what is left has a shape of its own: numbers
    that start with a national prefix go through phonenumbers one by one.
    """
    tails, widths, prefixes = [length], [3], []
    for region in COUNTRY_CODE_TO_REGION_CODE.get(country_code, ()):
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
        if metadata is None:
            return 0, 0, None
        for name in _DESCS:
            desc = getattr(metadata, name)
            if desc is not None and desc.national_number_pattern:
                tails.append(_pattern_tail(desc.national_number_pattern, length))
        for prefix in (metadata.national_prefix_for_parsing, metadata.leading_digits):
            if prefix:
                widest = sre_parse.parse(prefix).getwidth()[1]
                if widest >= sre.MAXREPEAT:
                    return 0, 0, None
                widths.append(widest)
        if metadata.national_prefix_for_parsing:
            prefixes.append(metadata.national_prefix_for_parsing)
    either = "|".join(f"(?:{p})" for p in sorted(set(prefixes)))  # NANPA: 25 regions, 1 test
    return min(min(tails), length), max(widths), re.compile(either) if either else None


def _pattern_tail(pattern: str, length: int) -> int:
    return _tail(sre_parse.parse(pattern), length, length)


def shape_key(number: str) -> str | None:
    """What a strict E.164 number's verdict depends on, or None when no shortcut is safe.

    Two numbers with the same key are both valid or both invalid, and a valid one's E.164
    form is itself. Numbers of other shapes (national formats, a national part that starts
    with 0 or with a national prefix) go through phonenumbers one by one.
    """
    shape = _shape_of(number)
    if not shape.tail or not STRICT.fullmatch(number):
        return None
    if shape.prefix is not None and shape.starts_with_prefix(number):
        return None
    return number[: -shape.tail] + "_" * shape.tail  # the same length: 12_ and 1_ never meet


def shape_prefixes(numbers: list[str]) -> list[str] | None:
    """For each number, a prefix that decides its verdict as its shape_key does; or None.

    The same proof as shape_key's, for a whole list in a few C-speed passes. When every
    number is strict E.164, the number less the shortest free tail of the list's shapes is
    a finer key than shape_key: two numbers with the same prefix have the same shape key,
    and prefixes of different lengths never meet. A number whose shape has no free tail is
    its own key, marked so that it never meets a prefix. None: not every number is strict.
    """
    if not numbers or not _STRICT_LINES.fullmatch("\n".join(numbers) + "\n"):
        return None
    heads = map(itemgetter(slice(5)), numbers)
    examples = dict(zip(zip(heads, map(len, numbers), strict=True), numbers, strict=True))
    tails = {shape: _shape_of(number).tail for shape, number in examples.items()}
    cut = -min(filter(None, tails.values()), default=1)
    if all(tails.values()):
        return list(map(itemgetter(slice(0, cut)), numbers))
    return [n[:cut] if tails[(n[:5], len(n))] else n + "!" for n in numbers]


def _shape_of(number: str) -> _Shape:
    key = (number[:5], len(number))
    shape = _shapes.get(key)
    if shape is None:
        shape = _Shape.of(number)
        if STRICT.fullmatch(number):  # a stray "+3361234567a" must not spoil +3361's shape
            _shapes[key] = shape
    return shape


class _Shape:
    """What numbers that start alike (+CC and a digit or two) and are as long share."""

    def __init__(self, tail: int, national: int, prefix: re.Pattern[str] | None) -> None:
        self.tail, self.national, self.prefix = tail, national, prefix
        self.width = int(sre_parse.parse(prefix.pattern).getwidth()[1]) if prefix else 0
        self._hits: dict[str, bool] = {}

    @classmethod
    def of(cls, number: str) -> _Shape:
        if not STRICT.fullmatch(number):
            return cls(0, 0, None)
        for length in (1, 2, 3):
            code = int(number[1 : 1 + length])
            if code in COUNTRY_CODE_TO_REGION_CODE:
                break
        else:
            return cls(0, 0, None)
        national = number[1 + length :]
        tail, widest, prefix = _shape(code, len(national))
        if national.startswith("0") or len(national) - tail < max(widest, 1):
            return cls(0, 0, None)
        return cls(tail, 1 + length, prefix)

    def starts_with_prefix(self, number: str) -> bool:
        """prefix.match at the national number, remembered by the only digits it can see
        (the length is the same for every number of this shape, for a `$` in the pattern)."""
        assert self.prefix is not None
        head = number[self.national : self.national + self.width]
        found = self._hits.get(head)
        if found is None:
            found = self._hits[head] = self.prefix.match(number, self.national) is not None
        return found


_shapes: dict[tuple[str, int], _Shape] = {}  # by (first digits, length)


def validate_slowly(raw: str, region: str | None = None) -> str | None:
    """phonenumbers' own verdict: the number in E.164, or None if it is not valid.

    Only digits and the usual separators are read: phonenumbers would also take a number out
    of "call +1 202 555 0143" or of a spreadsheet formula (=SUM(12025550100,43) shows
    12025550143), or drop " ext. 5", and a call cannot dial an extension.
    """
    if not _DIALABLE.fullmatch(raw):
        return None
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
