"""How `runner plan` grows with the number of campaigns: 500, 2,000 and 10,000 (target: the
10,000 / 500 time ratio <= 22x, near linear), side by side with `terraform plan` on the same
campaigns at 500 and 2,000 (terraform_data resources, see terraform_peer.py).

Each size is timed interleaved with terraform at that size, medians of N. If terraform is not
on PATH the terraform figures are reported as missing, never made up.

Usage: python benchmarks/growth.py [--sizes 500,2000,10000] [--peer-sizes 500,2000] [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import interleaved, timed, write_project
from terraform_peer import write_terraform


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="500,2000,10000")
    parser.add_argument("--peer-sizes", default="500,2000")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.sizes.split(",")]
    peers = {int(n) for n in args.peer_sizes.split(",") if n}
    have_terraform = shutil.which("terraform") is not None
    if not have_terraform:
        print("terraform is not on PATH: no terraform figures (install it to compare)")
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        for n in sizes:
            root = write_project(Path(folder) / f"runner-{n}", n)
            commands = {
                "runner": lambda root=root: timed(
                    [sys.executable, "-m", "runner", "-C", str(root), "plan"]
                )
            }
            if have_terraform and n in peers:
                tf = write_terraform(Path(folder) / f"terraform-{n}", n)
                commands["terraform"] = lambda tf=tf: timed(
                    ["terraform", "plan", "-input=false", "-no-color", "-lock=false"], cwd=tf
                )
            medians = interleaved(args.runs, **commands)
            figures[f"runner_{n}"] = medians["runner"]
            line = f"{n:>6,} campaigns: runner plan {medians['runner']:.2f} s"
            if "terraform" in medians:
                figures[f"terraform_{n}"] = medians["terraform"]
                speedup = medians["terraform"] / medians["runner"]
                line += f", terraform plan {medians['terraform']:.2f} s ({speedup:.1f}x runner)"
            print(f"{line} (medians of {args.runs})")
    if len(sizes) > 1:
        first, last = sizes[0], sizes[-1]
        growth = figures[f"runner_{last}"] / figures[f"runner_{first}"]
        figures["growth"] = growth
        print(
            f"runner {last:,} / {first:,} campaigns: {growth:.1f}x time for "
            f"{last / first:.0f}x campaigns (target <= 22x)"
        )
    return figures


if __name__ == "__main__":
    main()
