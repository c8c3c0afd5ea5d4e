"""`runner validate` on 10,000 generated campaign files vs the floor script (target: <= 1.5x).

Usage: python benchmarks/validate_10k.py [--campaigns N] [--runs N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import interleaved, timed, write_project

HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--campaigns", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = write_project(Path(folder), args.campaigns)
        medians = interleaved(
            args.runs,
            floor=lambda: timed([sys.executable, str(HERE / "floor_offline.py"), str(root)]),
            runner=lambda: timed([sys.executable, "-m", "runner", "-C", str(root), "validate"]),
        )
    print(f"campaign files: {args.campaigns}")
    print(
        f"floor (libyaml + cached jinja2 + sha256), median of {args.runs}: {medians['floor']:.2f} s"
    )
    print(f"runner validate, median of {args.runs}: {medians['runner']:.2f} s")
    print(f"ratio runner/floor: {medians['runner'] / medians['floor']:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
