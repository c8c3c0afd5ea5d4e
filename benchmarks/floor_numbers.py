"""The floor for a big list: the least correct work. Read the CSV's lines, ask phonenumbers
(parse + is_valid_number + E.164) once per distinct text, drop repeats, hash each number.

Usage: python benchmarks/floor_numbers.py LIST.csv [REGION]
"""

from __future__ import annotations

import hashlib
import sys

import phonenumbers


def e164(raw: str, region: str) -> str | None:
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def main() -> None:
    region = sys.argv[2] if len(sys.argv) > 2 else "US"
    with open(sys.argv[1], encoding="utf-8") as f:
        raws = f.read().splitlines()[1:]
    verdicts = {raw: e164(raw, region) for raw in dict.fromkeys(map(str.strip, raws))}
    numbers = dict.fromkeys(n for n in map(verdicts.__getitem__, map(str.strip, raws)) if n)
    digests = [hashlib.sha256(n.encode()).hexdigest() for n in numbers]
    invalid = sum(v is None for v in verdicts.values())
    print(f"{len(digests)} numbers, {invalid} invalid")


if __name__ == "__main__":
    main()
