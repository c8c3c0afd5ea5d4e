"""The E.164 shortcut gives phonenumbers' own verdict for every number, valid or not."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneNumberFormat

from runner.e164 import STRICT, shape_key, validate_slowly
from runner.recipients import NumberParser


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
    shortcut = sum(shape_key(n) is not None for n in numbers)
    wrong = [(n, parser.e164(n), validate_slowly(n)) for n in numbers]
    wrong = [w for w in wrong if w[1] != w[2]]
    assert not wrong, wrong[:10]
    assert len(EXAMPLES) > 900
    assert shortcut > len(numbers) / 2  # the shortcut is really taken, not always skipped
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
        "and numbers of impossible lengths": [*north_america, "+1202555014", "+3312345"],
        "a short number that is a longer one's prefix": ["+12025550", "+12025550143"],
        "a national prefix after +CC": ["+3758801123", "+3758800312", "+86112322896155"] * 3,
        "one number not in E.164": [*north_america[:500], "202 555 0143"],
    }
    for name, listed in lists.items():
        expected = [validate_slowly(n) for n in listed]
        assert 0 < sum(e is None for e in expected) < len(listed), name
        assert NumberParser(None).e164_all(listed) == expected, name
        parser = NumberParser(None)  # warm: verdicts cached by shape from the first pass
        parser.e164_all(listed[::2])
        assert parser.e164_all(listed) == expected, name


def test_the_bulk_path_is_taken_for_a_list_of_one_country() -> None:
    from runner.e164 import shape_prefixes

    us = [f"+1202555{i:04d}" for i in range(1000)]
    prefixes = shape_prefixes(us)
    assert prefixes is not None and len(set(prefixes)) < 20
    assert shape_prefixes([*us, "2025550143"]) is None  # not every number in E.164


def test_a_stray_cell_does_not_spoil_the_shape_of_valid_numbers() -> None:
    from runner.e164 import shape_prefixes

    assert shape_key("+3361234567a") is None  # 12 characters, like +33 6 12 34 56 78
    prefixes = shape_prefixes(["+33612345678", "+33698765432"])
    assert prefixes is not None and not any(p.endswith("!") for p in prefixes)
