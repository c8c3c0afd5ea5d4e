"""One campaign, one CSV of 1,000,000 distinct valid numbers: the first plan and a no-op plan.

The first `runner plan` reads, validates and batches every number (target: <= 10 s and
<= 1 GB peak RSS). Then `runner state accept` records the list as delivered, and a second
`runner plan` must find nothing to send (target: <= 3 s; the state-and-plan issue asked 5 s).

Usage: python benchmarks/big_list.py [--numbers 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import measured, write_big_list


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--numbers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    runner = [sys.executable, "-m", "runner"]
    with tempfile.TemporaryDirectory() as folder:
        root = write_big_list(Path(folder), args.numbers)
        plan = [*runner, "-C", str(root), "plan", "--format", "json"]
        first = [measured(plan) for _ in range(args.runs)]
        accept = measured([*runner, "-C", str(root), "state", "accept", "big"])
        noop = [measured(plan) for _ in range(args.runs)]
        size = (root / "runner.state.json").stat().st_size
    figures = {
        "first_plan_s": statistics.median(s for s, _ in first),
        "first_plan_rss_mb": max(m for _, m in first),
        "noop_plan_s": statistics.median(s for s, _ in noop),
        "noop_plan_rss_mb": max(m for _, m in noop),
        "accept_s": accept[0],
    }
    print(f"numbers: {args.numbers:,} in one CSV, one campaign")
    print(
        f"first plan, median of {args.runs}: {figures['first_plan_s']:.2f} s, peak RSS "
        f"{figures['first_plan_rss_mb']:.0f} MB (target <= 10 s, <= 1024 MB)"
    )
    print(f"state accept (records all as delivered): {accept[0]:.2f} s, state {size / 1e6:.0f} MB")
    print(
        f"no-op plan, median of {args.runs}: {figures['noop_plan_s']:.2f} s, peak RSS "
        f"{figures['noop_plan_rss_mb']:.0f} MB (target <= 3 s)"
    )
    return figures


if __name__ == "__main__":
    main()
