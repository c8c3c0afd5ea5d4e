"""Exact, fast validation of phone numbers: E.164 (`+` and digits), or with separators.

phonenumbers spends ~30 µs to parse and validate one number, most of it in Python around a
few regex matches. For a number in strict E.164 form, what it decides is a boolean formula
over the public metadata (`PhoneMetadata`): which region of the country code claims the
national number (its `leading_digits`, else full validation, in phonenumbers' order), whether
the number matches that region's general pattern and one of its type patterns (each with its
possible lengths), unless the region's national prefix could be stripped first. We write that
formula as one regular expression per country code, compiled once, and run it at C speed.
Numbers written with separators, or in the default region's national format, are reduced to
that form when phonenumbers would read them the same way (see `written`).

Checked fallback: each country code's expression is compared with phonenumbers itself on
every example number of its regions and their near neighbours before it is used. If the
metadata or phonenumbers' rules ever change so that they disagree (or an attribute goes
missing, or a pattern no longer compiles), that country code is left to phonenumbers, number
by number. Only public names are used: `PhoneMetadata`, `COUNTRY_CODE_TO_REGION_CODE`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from itertools import filterfalse, islice
from operator import itemgetter
from typing import Any, NamedTuple

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata, PhoneNumberFormat

from runner.bulk import in_two

SPLIT_MIN = 50_000  # numbers: below this a second process costs more than it saves
STRICT = re.compile(r"\+[1-9][0-9]{6,14}")
_DIALABLE = re.compile(r"\s*\+?[(\d][\d\s()./\-]*\d\s*")
# phonenumbers asks these in another order, but only whether one matches counts: the
# common ones first. Mobile is skipped when it is fixed_line's pattern, as phonenumbers does.
_TYPES: tuple[str, ...] = ("fixed_line", "premium_rate", "toll_free", "shared_cost", "voip")
_TYPES += ("personal_number", "pager", "uan", "voicemail")
_NATIONAL = re.compile(r"[(]?[0-9][0-9 ().\-]{0,30}[0-9]")
_SPACED = re.compile(r"\+[(]?[0-9][0-9 ().\-]{0,30}[0-9]")
_NOT_DIGITS = {c: None for c in range(128) if not chr(c).isdigit()}
_HEAD = re.compile(r"\+[1-9][0-9]{2}")
_NEVER = "(?!)"
_BACKREFERENCE = re.compile(r"\\[1-9]|\(\?P=")


def country_code(number: str) -> int | None:
    """The country code phonenumbers reads from a strict E.164 number: 1 to 3 digits."""
    for length in (1, 2, 3):
        code = int(number[1 : 1 + length])
        if code in COUNTRY_CODE_TO_REGION_CODE:
            return code
    return None


def verdict(number: str) -> bool | None:
    """phonenumbers' verdict on a strict E.164 number (valid numbers stay as written), or
    None when this module cannot tell and phonenumbers must be asked."""
    if not STRICT.fullmatch(number):
        return None
    code = country_code(number)
    check = _checked(code) if code is not None else None
    if check is None:
        return None
    national = number[1 + len(str(code)) :]
    if check.prefix is not None and check.prefix.match(national):
        return None  # parse may strip it as a national prefix: phonenumbers decides
    return check.valid.fullmatch(national) is not None


def written(raw: str, region: str | None) -> str | None:
    """The E.164 form of a valid number written with spaces, brackets, dots or dashes, as
    "+33 6 12 34 56 78" or, in `region`'s national format, "(212) 555-0143"; or None when
    this module cannot tell: ask phonenumbers.

    parse() drops those separators after a +. A national number it reads as the region's
    country code and the digits, unless they start with the region's international prefix,
    its country code or a national prefix (each has rules of its own, left to phonenumbers).
    Any other character (letters, an extension, a second number) is left to phonenumbers too.
    """
    if raw[:1] == "+":
        if not _SPACED.fullmatch(raw):
            return None
        number = "+" + raw.translate(_NOT_DIGITS)
        return number if verdict(number) else None
    if region is None or not _NATIONAL.fullmatch(raw):
        return None
    rules = _national_rules(region)
    if rules is None:
        return None
    digits = raw.translate(_NOT_DIGITS)
    if rules.stop.match(digits):
        return None
    number = f"+{rules.code}{digits}"
    return number if verdict(number) else None


class _National(NamedTuple):
    code: int
    stop: re.Pattern[str]


@functools.cache
def _national_rules(region: str) -> _National | None:
    """How a region's national numbers read, if written() agrees with phonenumbers on the
    examples of the region's country code, and near neighbours, written nationally."""
    try:
        if region not in phonenumbers.SUPPORTED_REGIONS:
            return None
        metadata: Any = PhoneMetadata.metadata_for_region(region)
        starts = [re.escape(str(metadata.country_code))]
        starts += [_pattern(metadata.international_prefix) or _NEVER]
        starts += [_pattern(metadata.national_prefix_for_parsing) or _NEVER]
        rules = _National(metadata.country_code, re.compile("|".join(f"(?:{p})" for p in starts)))
    except (AttributeError, TypeError, ValueError, re.error):
        return None
    for number in _samples(rules.code)[::2]:  # half of them: it is checked on every run
        parsed = phonenumbers.parse(number)
        for text in (
            phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL),
            phonenumbers.national_significant_number(parsed),
        ):
            digits = text.translate(_NOT_DIGITS)
            fast = None if rules.stop.match(digits) else f"+{rules.code}{digits}"
            if fast is not None and verdict(fast) and validate_slowly(text, region) != fast:
                return None
    return rules


def doubtful(numbers: Iterable[str]) -> set[str]:
    """The numbers not known valid as written; every other one is, found at C speed.
    A doubtful number may be valid or not: ask `verdict`, then phonenumbers."""
    listed = numbers if isinstance(numbers, list) else list(numbers)
    # The country codes of a sample: a rare one left out only sends its numbers the slow way.
    heads = set(map(itemgetter(slice(4)), islice(listed, 0, None, 1 + len(listed) // 20_000)))
    codes = {code for code in map(_code_of_head, heads) if code and _checked(code)}
    if not codes:
        return set(listed)
    check = _either(frozenset(codes)).fullmatch
    if len(listed) < SPLIT_MIN:
        return set(filterfalse(check, listed))
    # Both cores: each half comes back as its few doubtful numbers, cheap to carry.
    return set(in_two(lambda part: list(filterfalse(check, part)), listed))


def _code_of_head(head: str) -> int | None:
    """The country code of strict numbers that start with these 4 characters."""
    return country_code(head) if _HEAD.fullmatch(head) else None


@functools.cache
def _either(codes: frozenset[int]) -> re.Pattern[str]:
    """One expression for whole numbers of any of these country codes (codes are prefix-free)."""
    parts = []
    for code in sorted(codes):
        digits = len(str(code))  # and 7 to 15 digits in all, as STRICT says
        parts.append(f"{code}(?=[0-9]{{{7 - digits},{15 - digits}}}\\Z){_expression(code)}")
    return re.compile(r"\+(?:" + "|".join(parts) + r")[0-9]*", re.ASCII)


class _Check(NamedTuple):
    prefix: re.Pattern[str] | None  # a national prefix parse may strip: not decided here
    valid: re.Pattern[str]  # a national number phonenumbers finds valid (when no prefix)


@functools.cache
def _checked(code: int) -> _Check | None:
    """The expressions for one country code's national numbers, if they agree with
    phonenumbers on every sample; else None, and phonenumbers decides each number."""
    try:
        prefix = _prefix(code)
        check = _Check(
            re.compile(prefix) if prefix else None,
            re.compile(_expression(code) + "[0-9]*", re.ASCII),
        )
    except (AttributeError, TypeError, ValueError, re.error):
        return None  # the metadata changed shape
    for number in _samples(code):
        national = number[1 + len(str(code)) :]
        if check.prefix is not None and check.prefix.match(national):
            continue
        if (check.valid.fullmatch(national) is not None) != (validate_slowly(number) == number):
            return None
    return check


def _prefix(code: int) -> str:
    """The national prefix parse tries to strip after +code: the main region's."""
    main = _metadata(code, COUNTRY_CODE_TO_REGION_CODE[code][0])
    return _pattern(main.national_prefix_for_parsing)


@functools.cache
def _expression(code: int) -> str:
    """Lookaheads only: phonenumbers' parse and is_valid_number for national numbers of `code`
    (ASCII digits, at least two) written after +code."""
    regions = COUNTRY_CODE_TO_REGION_CODE[code]
    prefix = _prefix(code)
    unstripped = f"(?!{prefix})" if prefix else ""  # else parse may strip it: not our case
    if len(regions) == 1:
        return unstripped + _valid_for(_metadata(code, regions[0]))
    chain = _NEVER  # phonenumbers' region_code_for_number: the first region that claims it
    for region in reversed(regions):
        metadata = _metadata(code, region)
        leading = _pattern(metadata.leading_digits)
        if metadata.leading_digits is not None:
            chain = f"(?:(?={leading}){_valid_for(metadata)}|(?!{leading}){chain})"
        else:
            chain = f"(?:{_valid_for(metadata)}|{chain})"
    return unstripped + chain


def _metadata(code: int, region: str) -> Any:
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, region.upper())
    if metadata is None:
        raise ValueError(f"no metadata for {region}")
    return metadata


def _valid_for(metadata: Any) -> str:
    """A number type other than UNKNOWN: the general pattern, then any type's.

    Speed: a type whose possible lengths include all the general ones needs no length check
    of its own, and such types share one lookahead (an alternation runs faster than nine)."""
    general = metadata.general_desc
    lengths = _lengths(general)
    mobile = () if metadata.same_mobile_and_fixed_line_pattern else ("mobile",)
    shared, alone = [], []
    for name in [*_TYPES[:1], *mobile, *_TYPES[1:]]:
        desc = getattr(metadata, name)
        if desc is None or not desc.national_number_pattern or _lengths(desc) == _NONE:
            continue  # phonenumbers: never this type
        own = _lengths(desc)
        if own is None or (lengths is not None and lengths <= own):
            shared.append(_pattern(desc.national_number_pattern))
        else:
            alone.append(_matching(desc))
    if shared:
        alone.insert(0, f"(?=(?:{'|'.join(shared)})\\Z)")
    return f"(?:{_matching(general)}(?:{'|'.join(alone) or _NEVER}))"


def _lengths(desc: Any) -> frozenset[int] | None:
    """The possible lengths phonenumbers checks: None for any, _NONE for none at all."""
    lengths = tuple(desc.possible_length)
    if not lengths:
        return None
    return frozenset(n for n in lengths if n > 0)


_NONE: frozenset[int] = frozenset()


def _matching(desc: Any) -> str:
    """A lookahead: the whole national number has a possible length and matches the pattern."""
    if desc is None or not desc.national_number_pattern:
        return _NEVER
    lengths = _lengths(desc)
    if lengths == _NONE:
        return _NEVER
    sized = "|".join(f"[0-9]{{{n}}}" for n in sorted(lengths or ()))
    length = f"(?=(?:{sized})\\Z)" if sized else ""
    return f"{length}(?=(?:{_pattern(desc.national_number_pattern)})\\Z)"


def _pattern(pattern: str | None) -> str:
    """A metadata pattern, refused if it refers back to a group (groups renumber when joined)."""
    if pattern and _BACKREFERENCE.search(pattern):
        raise ValueError(f"back-reference in {pattern}")
    return pattern or ""


@functools.cache
def _samples(code: int) -> tuple[str, ...]:
    """Every example number of the country code's regions, and near neighbours of each."""
    examples = [phonenumbers.example_number_for_non_geo_entity(code)]
    for region in COUNTRY_CODE_TO_REGION_CODE[code]:
        examples += [phonenumbers.example_number_for_type(region, t) for t in range(11)]
    found = {phonenumbers.format_number(n, PhoneNumberFormat.E164) for n in examples if n}
    out: set[str] = set()
    for number in found:
        flipped = str(9 - int(number[-1]))
        out.update((number, number[:-1], number + "5", number[:-1] + flipped, number[:-3] + "000"))
    return tuple(sorted(n for n in out if STRICT.fullmatch(n) and country_code(n) == code))


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
