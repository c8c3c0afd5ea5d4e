"""Every benchmark, one figure per line, then the README's table.

Each figure is a median of several runs taken interleaved with its peer or floor, in this
one run, because the machines are noisy: compare the ratios, not the seconds.

Usage: python benchmarks/run.py [--scale small|full] [--runs N]
  small: a quick look (a minute or two); full: the sizes the targets are set at.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import apply_throughput
import big_list
import receipts_ingest
import terraform_peer
import validate_10k

SIZES = {
    "small": {"campaigns": 1_000, "peer": 100, "numbers": 100_000, "batches": 200},
    "full": {"campaigns": 10_000, "peer": 500, "numbers": 1_000_000, "batches": 2_000},
}
RECEIPTS = {"small": 5_000, "full": 20_000}  # webhooks posted to `runner receipts serve`


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", choices=sorted(SIZES), default="small")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size, runs = SIZES[args.scale], ["--runs", str(args.runs)]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(f"== scale {args.scale}, medians of {args.runs}, commit {commit or 'unknown'}")
    print("== W1: many campaigns vs terraform")
    peer = terraform_peer.main(["--campaigns", str(size["peer"]), "--runs", str(args.runs + 2)])
    print("== W1: many campaign files vs the floor")
    files = validate_10k.main(["--campaigns", str(size["campaigns"]), *runs])
    print("== W2: one big list")
    big = big_list.main(["--numbers", str(size["numbers"]), *runs])
    print("== W3: apply against the emulator")
    send = apply_throughput.main(["--batches", str(size["batches"]), *runs])
    print("== Receipts: webhooks ingested by `runner receipts serve`")
    ingest = receipts_ingest.main(["--receipts", str(RECEIPTS[args.scale])])
    rows = [
        (f"W1 `plan`, {size['peer']} campaigns, vs terraform", f"{peer['speedup']:.1f}x faster",
         ">= 50x", peer["speedup"] >= 50),
        (f"W1 `validate`, {size['campaigns']:,} files, vs floor",
         f"{files['validate'] / files['floor']:.2f}x floor", "<= 1.5x",
         files["validate"] / files["floor"] <= 1.5),
        (f"W1 `plan`, {size['campaigns']:,} files, vs floor",
         f"{files['plan'] / files['floor']:.2f}x floor", "<= 1.5x",
         files["plan"] / files["floor"] <= 1.5),
        (f"W2 first plan, {size['numbers']:,} numbers",
         f"{big['first_plan_s']:.2f} s, {big['first_plan_rss_mb']:.0f} MB", "<= 10 s, <= 1 GB",
         big["first_plan_s"] <= 10 and big["first_plan_rss_mb"] <= 1024),
        ("W2 no-op plan after delivery", f"{big['noop_plan_s']:.2f} s", "<= 3 s",
         big["noop_plan_s"] <= 3),
        (f"W3 apply send phase, {size['batches']:,} batches of 500",
         f"{send['send_ratio']:.2f}x floor", ">= 0.9x", send["send_ratio"] >= 0.9),
        ("W3 whole apply (planning included)", f"{send['whole_ratio']:.2f}x floor", ">= 0.7x",
         send["whole_ratio"] >= 0.7),
        ("W3 state cost per send, 2,000 vs 100 sends", f"{send['state_ratio']:.2f}",
         "<= 1.2", send["state_ratio"] <= 1.2),
    ]  # fmt: skip
    rows += receipts_ingest.rows(ingest, RECEIPTS[args.scale])
    print("\n| workload | measured | target | met |\n|---|---|---|---|")
    for name, measured, target, met in rows:
        print(f"| {name} | {measured} | {target} | {'yes' if met else 'no'} |")


if __name__ == "__main__":
    main()
