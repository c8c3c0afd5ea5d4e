"""A customer's contact list as it really comes: many countries, many shapes, a little mess.

Seeded and deterministic. Per 1,000 rows, about:
- 700 US and Canadian numbers: a random valid area code and exchange, a random line number;
- 270 European mobiles and landlines (GB, DE, FR, ES, IT, NL), each valid per phonenumbers;
- 20 written in US national format, `(212) 555-0143` (the project's default_region is US), and
  10 international numbers written with spaces, `+33 6 12 34 56 78`;
- 10 duplicates of earlier rows (half of them written the other way);
- with `invalid=N`, N rows phonenumbers refuses (a digit too many or too few, a stray word).

Every number is drawn, then checked with phonenumbers (parse + is_valid_number) and redrawn
if it is not valid: drawing a million costs ~30 s, so lists are cached in benchmarks/.cache.

Usage: python benchmarks/realistic.py [--numbers N] [--invalid N] > list.csv
"""

from __future__ import annotations

import argparse
import functools
import random
import sys
from pathlib import Path

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

SEED = 20261202
CACHE = Path(__file__).parent / ".cache"
EUROPE = {"GB": 0.07, "DE": 0.07, "FR": 0.05, "ES": 0.03, "IT": 0.03, "NL": 0.02}
NANPA = {"US": 0.60, "CA": 0.10}
NATIONAL, SPACED, DUPLICATES = 0.02, 0.01, 0.01
KINDS = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE)
LINES = (*KINDS, PhoneNumberType.FIXED_LINE_OR_MOBILE)


def _valid(number: str, region: str | None = None) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(number, region))
    except phonenumbers.NumberParseException:
        return False


@functools.cache
def _area_codes(region: str) -> list[str]:
    """Geographic area codes of `region` (no toll-free or premium ones), checked once."""
    return [str(npa) for npa in range(200, 1000) if _line(f"+1{npa}2345678", region)]


def _line(number: str, region: str) -> bool:
    parsed = phonenumbers.parse(number, None)
    return phonenumbers.is_valid_number_for_region(parsed, region) and (
        phonenumbers.number_type(parsed) in LINES
    )


def _nanpa(rng: random.Random, region: str) -> str:
    while True:
        npa = rng.choice(_area_codes(region))
        number = f"+1{npa}{rng.randint(2, 9)}{rng.randrange(100):02d}{rng.randrange(10**4):04d}"
        if _valid(number):
            return number


@functools.cache
def _european_seeds(region: str) -> list[tuple[str, int]]:
    """(+CC and the leading digits kept, digits drawn) per kind, from phonenumbers' examples."""
    seeds = []
    for kind in KINDS:
        example = phonenumbers.example_number_for_type(region, kind)
        if example is None:
            continue
        e164 = phonenumbers.format_number(example, PhoneNumberFormat.E164)
        national = len(phonenumbers.national_significant_number(example))
        drawn = min(7, national - 1)
        seeds.append((e164[:-drawn], drawn))
    return seeds


def _european(rng: random.Random, region: str) -> str:
    head, drawn = rng.choice(_european_seeds(region))
    while True:
        number = head + "".join(rng.choice("0123456789") for _ in range(drawn))
        if _valid(number):
            return number


def _written(rng: random.Random, number: str) -> str:
    """The number as a person typed it: national format for US ones, else with spaces."""
    parsed = phonenumbers.parse(number, None)
    if phonenumbers.region_code_for_number(parsed) == "US":
        national = phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL)
        return rng.choice([national, national.replace("(", "").replace(") ", "-")])
    return phonenumbers.format_number(parsed, PhoneNumberFormat.INTERNATIONAL)


def _invalid(rng: random.Random, valid: str) -> str:
    while True:
        number = rng.choice(
            [valid[:-1], valid + rng.choice("0123456789"), valid[:4] + "0" + valid[5:], "n/a"]
        )
        if not _valid(number, "US"):
            return number


def rows(count: int, seed: int = SEED) -> list[str]:
    """`count` rows of one phone_number column, shuffled, every one valid."""
    rng = random.Random(seed)
    regions = [*NANPA, *EUROPE]
    weights = [*NANPA.values(), *EUROPE.values()]
    fresh = count - int(count * DUPLICATES)
    out = []
    for region in rng.choices(regions, weights, k=fresh):
        number = _nanpa(rng, region) if region in NANPA else _european(rng, region)
        roll = rng.random()
        if roll < NATIONAL + SPACED and (roll < NATIONAL) == number.startswith("+1"):
            number = _written(rng, number)
        out.append(number)
    for _ in range(count - fresh):
        again = rng.choice(out)
        out.append(_written(rng, again) if again.startswith("+") and rng.random() < 0.5 else again)
    rng.shuffle(out)
    return out


def with_invalid(valid: list[str], invalid: int, seed: int = SEED) -> list[str]:
    """The same list with `invalid` rows replaced by numbers phonenumbers refuses."""
    rng = random.Random(seed + 1)
    out = list(valid)
    for i in range(invalid):
        out[rng.randrange(len(out))] = _invalid(rng, valid[i])
    return out


def cached_rows(count: int, invalid: int = 0) -> list[str]:
    """rows(), from benchmarks/.cache when an earlier run drew the same list."""
    path = CACHE / f"realistic-{count}-{SEED}-{phonenumbers.__version__}.txt"
    if path.exists():
        drawn = path.read_text().splitlines()
    else:
        drawn = rows(count)
        CACHE.mkdir(exist_ok=True)
        (CACHE / ".gitignore").write_text("*\n")
        path.with_suffix(".tmp").write_text("\n".join(drawn) + "\n")
        path.with_suffix(".tmp").replace(path)
    return with_invalid(drawn, invalid) if invalid else drawn


def write_csv(path: Path, count: int, invalid: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        f.write("phone_number\n")
        f.writelines(f"{row}\n" for row in cached_rows(count, invalid))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--numbers", type=int, default=1_000_000)
    parser.add_argument("--invalid", type=int, default=0)
    args = parser.parse_args(argv)
    sys.stdout.write("phone_number\n")
    sys.stdout.writelines(f"{row}\n" for row in cached_rows(args.numbers, args.invalid))


if __name__ == "__main__":
    main()
