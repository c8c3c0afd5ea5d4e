"""Send phase of `runner apply` vs a bare `requests` thread pool, against the same emulator.

Both post the same payloads (from `runner plan --out`), with the same concurrency, each to a
fresh emulator process. Runner's figure is its own `send_seconds` (first intent to last outcome
recorded); the floor's is first request to last answer. Target: runner >= 0.8x floor batches/s.
Also prints the state's cost per send (intent + outcome records) at 100 and at 2,000 sends.

Also the whole `runner apply` (no saved plan: planning the list included) against the same
floor: target >= 0.7x on loopback; with `--latency 0.05` (the emulator answers after 50 ms, as a
real provider far away would) the target is >= 0.95x. The list is benchmarks/realistic.py's
(`--kind easy`: +1 NPA 555 XXXX numbers).

Usage: python benchmarks/apply_throughput.py [--batches 2000] [--size 500] [--runs 3]
       [--latency SECONDS] [--kind realistic|easy] [--no-state-cost]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).parent))
from common import write_big_list

ENV = {**os.environ, "OCTOPUSH_API_LOGIN": "bench", "OCTOPUSH_API_KEY": "bench"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_emulator(latency: float = 0.0) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "runner", "emulator", "--port", str(port), "--credit", "1e12"]
    proc = subprocess.Popen([*command, "--latency", str(latency)], stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}/v1/public"


def floor_run(url: str, payloads: list[dict], concurrency: int) -> float:
    session_by_thread: dict[int, requests.Session] = {}

    def post(payload: dict) -> int:
        import threading

        session = session_by_thread.setdefault(threading.get_ident(), requests.Session())
        body = json.dumps(payload).encode()
        return session.post(
            f"{url}/voice-campaign/send",
            data=body,
            timeout=30,
            headers={"api-login": "bench", "api-key": "bench", "Content-Type": "application/json"},
        ).status_code

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        codes = list(pool.map(post, payloads))
    elapsed = time.perf_counter() - start
    assert all(c == 201 for c in codes), set(codes)
    return elapsed


def runner_run(root: Path, url: str, plan_file: Path | None, concurrency: int) -> float:
    """Seconds: with a saved plan, apply's own send phase; without, the whole command."""
    state = root / "runner.state.json"
    for suffix in ("", ".journal", ".backup", ".lock"):
        Path(str(state) + suffix).unlink(missing_ok=True)
    saved = [str(plan_file)] if plan_file else []
    command = [sys.executable, "-m", "runner", "-C", str(root), "apply", *saved, "--auto-approve"]
    command += ["--api-url", url, "--format", "json", "--concurrency", str(concurrency)]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=ENV)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"apply failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return float(json.loads(done.stdout)["send_seconds"]) if plan_file else elapsed


def state_cost(root: Path, sends: int, size: int) -> list[float]:
    """Seconds per send spent on the two durable records, for each of `sends` sends."""
    from runner.state.local import LocalState
    from runner.state.model import Intent, Outcome

    backend = LocalState(root / f"cost-{sends}.json")
    for suffix in ("", ".journal", ".backup"):
        Path(f"{backend.path}{suffix}").unlink(missing_ok=True)
    costs = []
    with backend.locked("bench"):
        backend.ensure_created()
        for i in range(sends):
            digests = tuple(f"{i:08d}{k:056d}" for k in range(size))
            start = time.perf_counter()
            backend.record(Intent(f"rn-{i}", "c", "f" * 64, {"text": "x"}, digests, time.time()))
            backend.record(Outcome(f"rn-{i}", "sent", time.time(), "voice_x", size, 1.0))
            costs.append(time.perf_counter() - start)
        backend.commit()
    return costs


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--kind", choices=("realistic", "easy"), default="realistic")
    parser.add_argument("--no-state-cost", dest="state_cost", action="store_false")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        write_big_list(root, args.batches * args.size, args.kind)
        plan_file = root / "plan.json"
        subprocess.run(
            [sys.executable, "-m", "runner", "-C", str(root), "plan", "--out", str(plan_file)],
            check=True,
            capture_output=True,
        )
        payloads = [b["payload"] for b in json.loads(plan_file.read_text())["batches"]]
        samples: dict[str, list[float]] = {"floor": [], "send": [], "whole": []}
        for _ in range(args.runs):
            for name in samples:
                proc, url = start_emulator(args.latency)
                try:
                    if name == "floor":
                        seconds = floor_run(url, payloads, args.concurrency)
                    else:
                        saved = plan_file if name == "send" else None
                        seconds = runner_run(root, url, saved, args.concurrency)
                finally:
                    proc.terminate()
                    proc.wait()
                samples[name].append(seconds)
        floor, send, whole = (statistics.median(samples[k]) for k in ("floor", "send", "whole"))
        smalls, larges = [], []
        for _ in range(args.runs if args.state_cost else 0):  # interleaved: fsync times drift
            smalls.append(statistics.median(state_cost(root, 100, args.size)))
            larges.append(statistics.median(state_cost(root, 2000, args.size)[-100:]))
        small, large = (statistics.median(x) if x else 1.0 for x in (smalls, larges))
    count = len(payloads)
    print(
        f"batches: {count} of up to {args.size} ({args.kind} list), concurrency "
        f"{args.concurrency}, emulator latency {args.latency * 1000:.0f} ms"
    )
    print(f"floor (bare requests pool), median of {args.runs}: {count / floor:.1f} batches/s")
    print(
        f"runner apply send phase, median of {args.runs}: {count / send:.1f} batches/s, "
        f"ratio to floor {floor / send:.2f} (target >= 0.9; the apply issue asked 0.8)"
    )
    print(
        f"runner apply whole (plan of {args.batches * args.size:,} numbers included), median of "
        f"{args.runs}: {whole:.2f} s vs floor {floor:.2f} s, ratio to floor {floor / whole:.2f} "
        f"(target >= {0.95 if args.latency else 0.7})"
    )
    if args.state_cost:
        print(
            f"state cost per send, median of {args.runs}: {small * 1e3:.2f} ms at 100 sends, "
            f"{large * 1e3:.2f} ms at 2,000 sends (ratio {large / small:.2f}, target <= 1.2)"
        )
    return {
        "floor_s": floor,
        "floor_bps": count / floor,
        "send_ratio": floor / send,
        "whole_ratio": floor / whole,
        "whole_s": whole,
        "state_ratio": large / small,
    }


if __name__ == "__main__":
    main()
