"""`runner validate` and `runner plan` on 10,000 generated campaign files vs the floor script.

The floor (floor_offline.py) only loads the files with libyaml, renders their texts with one
cached Jinja2 environment and hashes the payloads. Targets: validate <= 1.5x and plan <= 1.5x
the floor's time (plan from a fresh state: every campaign is new).

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


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--campaigns", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    runner = [sys.executable, "-m", "runner"]
    with tempfile.TemporaryDirectory() as folder:
        root = write_project(Path(folder), args.campaigns)
        medians = interleaved(
            args.runs,
            floor=lambda: timed([sys.executable, str(HERE / "floor_offline.py"), str(root)]),
            validate=lambda: timed([*runner, "-C", str(root), "validate"]),
            plan=lambda: timed([*runner, "-C", str(root), "plan", "--format", "json"]),
        )
    floor = medians["floor"]
    print(f"campaign files: {args.campaigns}")
    print(f"floor (libyaml + cached jinja2 + sha256), median of {args.runs}: {floor:.2f} s")
    for name in ("validate", "plan"):
        print(
            f"runner {name}, median of {args.runs}: {medians[name]:.2f} s, "
            f"ratio to floor {medians[name] / floor:.2f} (target <= 1.5)"
        )
    return medians


if __name__ == "__main__":
    main()
