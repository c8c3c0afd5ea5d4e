"""Every benchmark, one figure per line, then the README's table.

Each figure is a median of several runs taken interleaved with its peer or floor, in this
one run, because the machines are noisy: compare the ratios, not the seconds.

Usage: python benchmarks/run.py [--scale small|full] [--runs N]
  small: a quick look (a few minutes); full: the sizes the targets are set at.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import apply_throughput
import big_list
import growth
import receipts_ingest
import validate_10k

SIZES = {
    "small": {"campaigns": 1_000, "growth": (50, 200, 1_000), "peers": (50, 200),
              "numbers": 100_000, "batches": 200},
    "full": {"campaigns": 10_000, "growth": (500, 2_000, 10_000), "peers": (500, 2_000),
             "numbers": 1_000_000, "batches": 2_000},
}  # fmt: skip
LATENCY = 0.05
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
    print("== W1: growth with the number of campaigns, and terraform")
    sizes = ",".join(map(str, size["growth"]))
    peers = ",".join(map(str, size["peers"]))
    grown = growth.main(["--sizes", sizes, "--peer-sizes", peers, *runs])
    print("== W1: many campaign files vs the floor")
    files = validate_10k.main(["--campaigns", str(size["campaigns"]), *runs])
    print("== W2: one big list, realistic (the headline)")
    big = big_list.main(["--numbers", str(size["numbers"]), *runs])
    print("== W2: one big list, easy (+1 NPA 555 XXXX)")
    easy = big_list.main(["--numbers", str(size["numbers"]), "--kind", "easy", "--no-floor", *runs])
    print(f"== W3: apply against the emulator, {LATENCY * 1000:.0f} ms per answer")
    batches = ["--batches", str(size["batches"]), *runs]
    slow = apply_throughput.main([*batches, "--latency", str(LATENCY), "--no-state-cost"])
    print("== W3: apply against the emulator, loopback (no added latency)")
    send = apply_throughput.main(batches)
    print("== Receipts: webhooks ingested by `runner receipts serve`")
    ingest = receipts_ingest.main(["--receipts", str(RECEIPTS[args.scale])])
    rows = _w1_rows(size, grown, files) + _w2_rows(size, big, easy) + _w3_rows(size, slow, send)
    rows += receipts_ingest.rows(ingest, RECEIPTS[args.scale])
    print("\n| workload | measured | target | met |\n|---|---|---|---|")
    for name, measured, target, met in rows:
        shown = "n/a" if met is None else "yes" if met else "no"
        print(f"| {name} | {measured} | {target} | {shown} |")


Row = tuple[str, str, str, "bool | None"]


def _w1_rows(size: dict, grown: dict, files: dict) -> list[Row]:
    small, middle, large = size["growth"]
    rows: list[Row] = []
    for n in size["peers"]:
        runner, terraform = grown[f"runner_{n}"], grown.get(f"terraform_{n}")
        if terraform is None:
            rows.append(
                (
                    f"W1 `plan`, {n:,} campaigns, vs terraform",
                    f"{runner:.2f} s; terraform not installed here, no figure",
                    "",
                    None,
                )
            )
            continue
        target, met = (">= 50x", terraform / runner >= 50) if n == small else ("reported", None)
        rows.append(
            (
                f"W1 `plan`, {n:,} campaigns, vs terraform",
                f"{terraform / runner:.1f}x faster ({runner:.2f} s vs {terraform:.2f} s)",
                target,
                met,
            )
        )
    times = " / ".join(f"{grown[f'runner_{n}']:.2f}" for n in (small, middle, large))
    rows.append(
        (
            f"W1 `plan` growth, {small:,} / {middle:,} / {large:,} campaigns",
            f"{times} s: {grown['growth']:.1f}x for {large // small}x",
            f"<= {large // small * 1.1:.0f}x",
            grown["growth"] <= large / small * 1.1,
        )
    )
    for name in ("validate", "plan"):
        ratio = files[name] / files["floor"]
        rows.append(
            (
                f"W1 `{name}`, {size['campaigns']:,} files, vs floor",
                f"{ratio:.2f}x floor ({files[name]:.2f} s vs {files['floor']:.2f} s)",
                "<= 1.5x",
                ratio <= 1.5,
            )
        )
    return rows  # fmt: skip


def _w2_rows(size: dict, big: dict, easy: dict) -> list[Row]:
    n, floor = f"{size['numbers']:,}", big["floor_s"]
    first, noop, check = big["first_plan_s"], big["noop_plan_s"], big["validate_s"]
    rss = big["first_plan_rss_mb"]
    return [
        (f"W2 first plan, {n} realistic numbers",
         f"{first:.2f} s, {rss:.0f} MB; {first / floor:.2f}x floor ({floor:.1f} s)",
         "<= 5 s, <= 1 GB, <= 1.5x floor", first <= 5 and rss <= 1024 and first <= 1.5 * floor),
        ("W2 no-op plan after delivery, realistic",
         f"{noop:.2f} s; {noop / floor:.2f}x floor", "<= 2 s, <= 1.5x floor",
         noop <= 2 and noop <= 1.5 * floor),
        (f"W2 `validate`, the same list with {big_list.BAD_ROWS} bad rows",
         f"{check:.2f} s; {check / floor:.2f}x floor", "<= 3 s, <= 1.5x floor",
         check <= 3 and check <= 1.5 * floor),
        (f"W2 first plan, {n} easy numbers (+1 NPA 555 XXXX)",
         f"{easy['first_plan_s']:.2f} s, {easy['first_plan_rss_mb']:.0f} MB",
         "<= 5 s, <= 1 GB", easy["first_plan_s"] <= 5 and easy["first_plan_rss_mb"] <= 1024),
        ("W2 no-op plan after delivery, easy", f"{easy['noop_plan_s']:.2f} s", "<= 2 s",
         easy["noop_plan_s"] <= 2),
    ]  # fmt: skip


def _w3_rows(size: dict, slow: dict, send: dict) -> list[Row]:
    ms = f"{LATENCY * 1000:.0f} ms"
    return [
        (f"W3 whole apply at {ms} an answer (planning included), realistic list",
         f"{slow['whole_ratio']:.2f}x floor ({slow['whole_s']:.2f} s vs {slow['floor_s']:.2f} s)",
         ">= 0.95x", slow["whole_ratio"] >= 0.95),
        (f"W3 apply send phase at {ms} an answer, {size['batches']:,} batches of 500",
         f"{slow['send_ratio']:.2f}x floor", ">= 0.9x", slow["send_ratio"] >= 0.9),
        ("W3 whole apply on loopback (planning included)",
         f"{send['whole_ratio']:.2f}x floor ({send['whole_s']:.2f} s vs {send['floor_s']:.2f} s)",
         ">= 0.7x", send["whole_ratio"] >= 0.7),
        ("W3 apply send phase on loopback", f"{send['send_ratio']:.2f}x floor", ">= 0.9x",
         send["send_ratio"] >= 0.9),
        ("W3 state cost per send, 2,000 vs 100 sends", f"{send['state_ratio']:.2f}",
         "<= 1.2", send["state_ratio"] <= 1.2),
    ]  # fmt: skip


if __name__ == "__main__":
    main()
