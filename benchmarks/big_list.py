"""One campaign, one CSV of 1,000,000 numbers: the first plan, a no-op plan, `validate`.

The list (`--kind`): `realistic` is benchmarks/realistic.py's customer file (US and Canadian
numbers with random valid area codes and exchanges, European mobiles and landlines, national
formats, 1% repeats); `easy` is +1 NPA 555 XXXX, ~100 number shapes, the flattering case.

- first `runner plan`: reads, validates and batches every number (target <= 5 s, <= 1 GB);
- `runner state accept` records the list as delivered, then a no-op `runner plan` (<= 2 s);
- `runner validate` of the same list with 20 bad rows, which it must point at (<= 3 s);
- the floor (benchmarks/floor_numbers.py): phonenumbers once per distinct text, a hash per
  number; each of the three must stay within 1.5x of it. Timed interleaved with the plans.

Usage: python benchmarks/big_list.py [--numbers 1000000] [--kind realistic|easy] [--runs 3]
       [--no-floor]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import measured, write_big_list

HERE = Path(__file__).parent
BAD_ROWS = 20


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--numbers", type=int, default=1_000_000)
    parser.add_argument("--kind", choices=("realistic", "easy"), default="realistic")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-floor", dest="floor", action="store_false")
    args = parser.parse_args(argv)
    runner = [sys.executable, "-m", "runner"]
    with tempfile.TemporaryDirectory() as folder:
        root = write_big_list(Path(folder) / "plan", args.numbers, args.kind)
        bad = write_big_list(Path(folder) / "bad", args.numbers, args.kind, BAD_ROWS)
        plan = [*runner, "-C", str(root), "plan", "--format", "json"]
        validate = [*runner, "-C", str(bad), "validate"]
        floor = [sys.executable, str(HERE / "floor_numbers.py"), str(root / "contacts/big.csv")]
        first, floors, checks = [], [], []
        for _ in range(args.runs):  # interleaved: the machine's load drifts
            first.append(measured(plan))
            checks.append(measured(validate, refused=f"{BAD_ROWS} problems"))
            if args.floor:
                floors.append(measured(floor))
        accept = measured([*runner, "-C", str(root), "state", "accept", "big"])
        noop = [measured(plan) for _ in range(args.runs)]
        size = (root / "runner.state.json").stat().st_size
    median = statistics.median
    figures = {
        "first_plan_s": median(s for s, _ in first),
        "first_plan_rss_mb": max(m for _, m in first),
        "validate_s": median(s for s, _ in checks),
        "noop_plan_s": median(s for s, _ in noop),
        "noop_plan_rss_mb": max(m for _, m in noop),
        "accept_s": accept[0],
        "floor_s": median(s for s, _ in floors) if floors else float("nan"),
    }
    print(f"numbers: {args.numbers:,} in one CSV ({args.kind}), one campaign")
    if floors:
        print(f"floor (phonenumbers once per distinct text), median: {figures['floor_s']:.2f} s")
    for name, key, target in (
        ("first plan", "first_plan_s", "<= 5 s, <= 1024 MB"),
        (f"validate ({BAD_ROWS} bad rows)", "validate_s", "<= 3 s"),
        ("no-op plan", "noop_plan_s", "<= 2 s"),
    ):
        ratio = f", {figures[key] / figures['floor_s']:.2f}x floor" if floors else ""
        print(f"{name}, median of {args.runs}: {figures[key]:.2f} s{ratio} (target {target})")
    print(f"first plan peak RSS {figures['first_plan_rss_mb']:.0f} MB")
    print(f"state accept (records all as delivered): {accept[0]:.2f} s, state {size / 1e6:.0f} MB")
    return figures


if __name__ == "__main__":
    main()
