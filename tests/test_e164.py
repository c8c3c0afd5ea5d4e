"""runner.e164 gives phonenumbers' own verdict for every number, valid or not."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneNumberFormat

from runner import e164
from runner.e164 import STRICT, doubtful, validate_slowly, verdict
from runner.e164 import written as written_as
from runner.recipients import NumberParser

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import realistic


def _examples() -> list[str]:
    """libphonenumber's example number of every type in every region: all the shapes."""
    found = set()
    for code, regions in COUNTRY_CODE_TO_REGION_CODE.items():
        numbers = [phonenumbers.example_number_for_non_geo_entity(code)]
        for region in regions:
            numbers += [phonenumbers.example_number_for_type(region, t) for t in range(11)]
        found.update(phonenumbers.format_number(n, PhoneNumberFormat.E164) for n in numbers if n)
    return sorted(found)


EXAMPLES = _examples()


def _variants(rng: random.Random, seed: str) -> list[str]:
    """The example with its last digits replaced, with one digit more or less, or cut short."""
    out = []
    for _ in range(12):
        keep = len(seed) - rng.randint(0, min(8, len(seed) - 3))
        extra = len(seed) - keep + rng.choice((0, 0, 0, -1, 1))
        out.append(seed[:keep] + "".join(rng.choice("0123456789") for _ in range(max(0, extra))))
    return out


def test_every_region_gets_the_same_verdicts_as_phonenumbers() -> None:
    rng = random.Random(20261126)
    parser = NumberParser(None)  # one parser: verdicts cached by shape are reused across numbers
    numbers = [v for seed in EXAMPLES for v in _variants(rng, seed)]
    shortcut = sum(verdict(n) is not None for n in numbers)
    wrong = [(n, parser.e164(n), validate_slowly(n)) for n in numbers]
    wrong = [w for w in wrong if w[1] != w[2]]
    assert not wrong, wrong[:10]
    assert len(EXAMPLES) > 900
    assert shortcut > 0.9 * len(numbers)  # the compiled check is really used, not skipped
    valid = sum(validate_slowly(n) is not None for n in numbers)
    assert 0.2 < valid / len(numbers) < 0.9  # and the sample mixes valid and invalid numbers


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    seed=st.sampled_from(EXAMPLES),
    digits=st.lists(st.sampled_from("0123456789"), min_size=0, max_size=9),
    cut=st.integers(min_value=0, max_value=9),
)
def test_shortcut_matches_phonenumbers_on_random_numbers(
    seed: str, digits: list[str], cut: int
) -> None:
    number = seed[: max(2, len(seed) - cut)] + "".join(digits)
    parser = NumberParser(None)
    # warm the shape cache with the example itself, then ask for the variant
    assert parser.e164(seed) == validate_slowly(seed)
    assert parser.e164(number) == validate_slowly(number)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+12015550123", "+12015550123"),
        ("+12015550", None),  # too short for the US
        ("+447400123456", "+447400123456"),
        ("+4408001111", "+448001111"),  # a national prefix after +44 is dropped
        ("+390612345678", "+390612345678"),  # Italian leading zero: never the shortcut
        ("+33612345678", "+33612345678"),
        ("+33012345678", None),
        ("+999123456789", None),  # no such country code
    ],
)
def test_known_numbers(raw: str, expected: str | None) -> None:
    assert NumberParser("US").e164(raw) == expected == validate_slowly(raw)


@pytest.mark.parametrize(
    ("first", "then"),
    [
        ("+3758801123", "+3758800312"),  # Belarus: a national prefix 80 is dropped after +375
        ("+3758246256025", "+3758249887146"),
        ("+86112323833358", "+86112322896155"),  # China: a carrier code is dropped after +86
    ],
)
def test_a_number_that_loses_a_national_prefix_is_judged_alone(first: str, then: str) -> None:
    parser = NumberParser(None)
    assert parser.e164(first) == validate_slowly(first)  # an invalid sibling seen first
    assert parser.e164(then) == validate_slowly(then) is not None


def _dense(rng: random.Random, codes: tuple[str, ...]) -> list[str]:
    """Many numbers per example, same length, last digits redrawn: close neighbours."""
    seeds = [s for s in EXAMPLES if s.startswith(codes)]
    out = []
    for seed in seeds:
        for _ in range(40):
            keep = len(seed) - rng.randint(1, min(7, len(seed) - 4))
            out.append(seed[:keep] + "".join(rng.choice("0123456789") for _ in seed[keep:]))
    rng.shuffle(out)
    return [n for n in out if STRICT.fullmatch(n)]


def test_a_whole_list_gets_the_same_verdicts_as_one_number_at_a_time() -> None:
    """The bulk path (one shape prefix per number) agrees with phonenumbers, mixed lists too."""
    rng = random.Random(20261127)
    north_america = _dense(rng, ("+1",))
    lists = {
        "one shape": [f"+1202{rng.randrange(10**7):07d}" for _ in range(2000)],
        "one country code": north_america,
        "several": _dense(rng, ("+1", "+33", "+44", "+49", "+7", "+86", "+375", "+39")),
        "Europe": _dense(rng, ("+44", "+49", "+33", "+34", "+39", "+31", "+32", "+41", "+43")),
        "and numbers of impossible lengths": [*north_america, "+1202555014", "+3312345"],
        "a short number that is a longer one's prefix": ["+12025550", "+12025550143"],
        "a national prefix after +CC": ["+3758801123", "+3758800312", "+86112322896155"] * 3,
        "one number not in E.164": [*north_america[:500], "202 555 0143"],
        "a rare country code in a long list": [
            *(f"+1202{rng.randrange(2 * 10**6, 10**7):07d}" for _ in range(30_000)),
            *("+33612345678", "+3361234567", "+447400123456"),
        ],
    }
    for name, listed in lists.items():
        expected = [validate_slowly(n) for n in listed]
        assert 0 < sum(e is None for e in expected) < len(listed), name
        assert NumberParser(None).e164_all(listed) == expected, name
        parser = NumberParser(None)  # warm: verdicts cached by shape from the first pass
        parser.e164_all(listed[::2])
        assert parser.e164_all(listed) == expected, name


def test_the_bulk_path_is_taken_for_a_list_of_one_country() -> None:
    us = [f"+1202555{i:04d}" for i in range(1000)]
    assert doubtful(us) == set()
    assert doubtful([*us, "2025550143"]) == {"2025550143"}  # not in E.164: left to phonenumbers


def test_a_stray_cell_is_never_taken_for_a_number() -> None:
    assert verdict("+3361234567a") is None  # 12 characters, like +33 6 12 34 56 78
    stray = ["+3361234567a", "+33612345678\n", "+33612345678 "]
    assert doubtful(["+33612345678", *stray]) == set(stray)
    assert verdict("+1\u0662\u0660\u0662\u0665\u0665\u0665\u0660\u0661\u0664\u0663") is None


def test_a_realistic_customer_list_gets_phonenumbers_verdicts() -> None:
    """The benchmarks' realistic list (many countries, national formats, repeats, invalid
    rows), on a sample: every verdict is phonenumbers' own, with the project's region."""
    valid = realistic.rows(6000, seed=17)
    listed = realistic.with_invalid(valid, 60, seed=17)
    expected = [validate_slowly(raw, "US") for raw in listed]
    assert all(validate_slowly(raw, "US") for raw in valid)
    assert 40 <= sum(e is None for e in expected) <= 60
    assert sum(not raw.startswith("+") for raw in listed) > 50  # national formats are there
    assert NumberParser("US").e164_all(listed) == expected
    assert [NumberParser("US").e164(raw) for raw in listed] == expected
    assert len(doubtful(listed)) < 0.05 * len(set(listed))  # and the fast path takes most


def test_a_country_code_whose_rules_disagree_falls_back_to_phonenumbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If phonenumbers or its metadata change so the compiled check disagrees with it on a
    sample, that country code goes back to phonenumbers, number by number."""
    monkeypatch.setattr(e164, "_expression", lambda code: "(?:)")  # accepts everything
    e164._checked.cache_clear()
    e164._either.cache_clear()
    try:
        numbers = ["+12025550143", "+1202555014", "+33612345678", "+3361234567"]
        assert all(verdict(n) is None for n in numbers)
        assert doubtful(numbers) == set(numbers)
        assert NumberParser(None).e164_all(numbers) == [validate_slowly(n) for n in numbers]
    finally:
        monkeypatch.undo()
        e164._checked.cache_clear()
        e164._either.cache_clear()
    assert verdict("+12025550143") is True


def test_metadata_that_changed_shape_falls_back_to_phonenumbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Gone:
        def __getattr__(self, name: str) -> None:
            raise AttributeError(name)

    monkeypatch.setattr(e164, "PhoneMetadata", Gone())  # phonenumbers itself keeps the real one
    e164._checked.cache_clear()
    e164._expression.cache_clear()
    try:
        assert verdict("+447400123456") is None
        assert NumberParser(None).e164("+447400123456") == "+447400123456"
    finally:
        monkeypatch.undo()
        e164._checked.cache_clear()
        e164._expression.cache_clear()
        e164._either.cache_clear()


@pytest.mark.parametrize("region", ["US", "CA", "GB", "DE", "FR", "ES", "IT", "NL", "BR", "RU"])
def test_national_formats_get_phonenumbers_verdicts(region: str) -> None:
    """Numbers written nationally, valid or not, with the usual separators or none, and with
    a national or international prefix: the same E.164 form as phonenumbers gives, or none."""
    rng = random.Random(region)
    code = str(phonenumbers.country_code_for_region(region))
    seeds = [s for s in EXAMPLES if s.startswith("+" + code)]
    texts = []
    for seed in seeds:
        for variant in [seed, *_variants(rng, seed)]:
            digits = variant[1 + len(code) :]
            texts += [digits, f"0{digits}", f"1{digits}", f"{code}{digits}", f"00{code}{digits}"]
            texts += [f"011 {code} {digits}", f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"]
            texts += [f"{digits[:2]}.{digits[2:5]}.{digits[5:]}", f"{digits[:-3]} {digits[-3:]}"]
            texts += [f"+{code} {digits[:3]} {digits[3:]}", f"+{code} ({digits[:2]}) {digits[2:]}"]
            texts += [f"+{code}-{digits[:-4]}-{digits[-4:]}", f"+({code}) {digits}"]
    parser = NumberParser(region)
    wrong = [(w, parser.e164(w), validate_slowly(w, region)) for w in texts]
    wrong = [w for w in wrong if w[1] != w[2]]
    assert not wrong, wrong[:10]
    fast = sum(written_as(w, region) is not None for w in texts)
    assert fast > len(texts) / 20  # the shortcut is really taken
