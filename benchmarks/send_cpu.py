"""Client CPU per send: OctopushClient vs a bare requests Session and a bare urllib3 PoolManager.

Each posts the same kind of body (500 recipients, a fresh request_id each time) to one emulator
process, one thread, keep-alive, and the figure is time.process_time per send: the send phase of
apply is CPU-bound on the client, so this is what a client change can win. Rounds interleave the
clients because this machine is noisy; `--old runner/octopush.py` from another commit adds it.

Usage: python benchmarks/send_cpu.py [--sends 1000] [--size 500] [--rounds 5] [--old FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import requests
import urllib3

sys.path.insert(0, str(Path(__file__).parent))
from apply_throughput import start_emulator

from runner import octopush

HEADERS = {"api-login": "bench", "api-key": "bench", "Content-Type": "application/json"}
Send = Callable[[dict[str, Any]], None]
Maker = Callable[[str], tuple[Send, Callable[[], None]]]  # a client for a URL: send, close


def body(tag: str, size: int) -> dict[str, Any]:
    return {
        "text": "Hello, maintenance starts Saturday at 10 PM.",
        "recipients": [{"phone_number": f"+336{i:08d}"} for i in range(size)],
        "purpose": "alert",
        "voice_gender": "female",
        "voice_language": "en-GB",
        "request_id": f"rn-{tag}",
    }


def with_client(module: ModuleType) -> Maker:
    def make(url: str) -> tuple[Send, Callable[[], None]]:
        client = module.OctopushClient(url, "bench", "bench")

        def send(payload: dict[str, Any]) -> None:
            assert client.send(payload).status == "sent"

        return send, client.close

    return make


def with_requests(url: str) -> tuple[Send, Callable[[], None]]:
    session = requests.Session()
    session.headers.update(HEADERS)

    def send(payload: dict[str, Any]) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        answer = session.post(f"{url}/voice-campaign/send", data=data, timeout=(5, 30))
        assert answer.status_code == 201
        answer.json()

    return send, session.close


def with_urllib3(url: str) -> tuple[Send, Callable[[], None]]:
    pool = urllib3.PoolManager(maxsize=32, headers=HEADERS)
    timeout = urllib3.Timeout(connect=5, read=30)

    def send(payload: dict[str, Any]) -> None:
        data = json.dumps(payload, separators=(",", ":")).encode()
        answer = pool.urlopen(
            "POST", f"{url}/voice-campaign/send", body=data, retries=False, timeout=timeout
        )
        assert answer.status == 201
        json.loads(answer.data)

    return send, pool.clear


def load_old(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("old_octopush", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def cpu_per_send(make: Maker, url: str, tag: str, sends: int, size: int) -> float:
    send, close = make(url)
    payloads = [body(f"{tag}-{n}", size) for n in range(sends + 1)]
    send(payloads.pop())  # the connection is open before the clock starts
    started = time.process_time()
    for payload in payloads:
        send(payload)
    spent = time.process_time() - started
    close()
    return spent / sends * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sends", type=int, default=1000)
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--old", help="an octopush.py from another commit, to compare")
    args = parser.parse_args()
    clients = {
        "requests Session (bare)": with_requests,
        "urllib3 PoolManager (bare)": with_urllib3,
        "OctopushClient": with_client(octopush),
    }
    if args.old:
        clients["OctopushClient (--old)"] = with_client(load_old(args.old))
    figures: dict[str, list[float]] = {name: [] for name in clients}
    proc, url = start_emulator()
    try:
        for r in range(args.rounds):
            for i, (name, make) in enumerate(clients.items()):
                figures[name].append(cpu_per_send(make, url, f"{r}-{i}", args.sends, args.size))
    finally:
        proc.terminate()
        proc.wait()
    print(f"client CPU per send: {args.sends} sends of {args.size} recipients, one thread")
    for name, values in figures.items():
        each = ", ".join(f"{v:.3f}" for v in values)
        print(f"  {name:27} median {statistics.median(values):.3f} ms ({each})")


if __name__ == "__main__":
    main()
