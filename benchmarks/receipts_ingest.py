"""Receipts ingested per second by `runner receipts serve`, into the local file and PostgreSQL.

The receiver runs as a user runs it (the CLI, in its own process); a client in this process
keeps CONNECTIONS keep-alive connections busy, each posting one receipt after another as the
provider would, and times every answer. Target: >= 2,000 receipts/s with p99 < 50 ms on the
machine's two cores (shared with the client). If a target is missed, the receiver is run again
under cProfile and the top of its profile is printed: that says where the time goes.

Usage: python benchmarks/receipts_ingest.py [--receipts N] [--connections C] [--backend ...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pstats
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
TOKEN = "bench-" + "x" * 40
TARGET_RATE, TARGET_P99_MS = 2_000, 50.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bodies(count: int, offset: int) -> list[bytes]:
    """Distinct receipts (one per number), half JSON of the newer shape, half old-shape forms."""
    out = []
    for i in range(offset, offset + count):
        number = f"+1202555{i % 10_000:04d}"
        ticket = f"voice_{i // 10_000:08x}"
        if i % 2:
            body = json.dumps(
                {"channel": "voice_sms", "message_id": ticket, "number": number,
                 "status": "DELIVERED", "delivery_date": "2026-11-04 11:11:45",
                 "meta_data": {"call_duration": 12, "charged_duration": 30}}
            ).encode()  # fmt: skip
            kind = b"application/json"
        else:
            body = (
                f"message_id={ticket}&number=%2B{number[1:]}&status=BUSY"
                "&delivery_date=2026-11-04+11%3A11%3A45&call_duration=0&charged_duration=0"
            ).encode()
            kind = b"application/x-www-form-urlencoded"
        out.append(
            b"POST /receipts/" + TOKEN.encode() + b" HTTP/1.1\r\nHost: bench\r\nContent-Type: "
            + kind + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )  # fmt: skip
    return out


async def _connection(port: int, requests: list[bytes], latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for request in requests:
        started = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1]) for line in head.lower().split(b"\r\n")
            if line.startswith(b"content-length:")
        )  # fmt: skip
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - started)
        if not head.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"the receiver answered {head.splitlines()[0]!r}")
    writer.close()


async def _load(port: int, requests: list[bytes], connections: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    shares = [requests[i::connections] for i in range(connections)]
    started = time.perf_counter()
    await asyncio.gather(*(_connection(port, share, latencies) for share in shares))
    return time.perf_counter() - started, latencies


@contextlib.contextmanager
def receiver(project: Path, profile: Path | None = None) -> Iterator[int]:
    port = free_port()
    python = [sys.executable] + (["-m", "cProfile", "-o", str(profile)] if profile else [])
    serve = ["receipts", "serve", "--port", str(port)]
    command = [*python, "-m", "runner", "-C", str(project), *serve]
    env = {**os.environ, "RUNNER_RECEIPTS_TOKEN": TOKEN, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).close()
                break
            time.sleep(0.05)
        yield port
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)


def measure(project: Path, count: int, connections: int, offset: int) -> dict[str, float]:
    requests = bodies(count, offset)
    with receiver(project) as port:
        asyncio.run(_load(port, bodies(200, offset + count), connections))  # warm up
        elapsed, latencies = asyncio.run(_load(port, requests, connections))
    latencies.sort()
    return {
        "rate": count / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


def profile(project: Path, count: int, connections: int, offset: int) -> None:
    out = project / "receiver.prof"
    with receiver(project, out) as port:
        asyncio.run(_load(port, bodies(count, offset), connections))
    for _ in range(100):
        if out.exists():
            break
        time.sleep(0.1)
    print("   profile of the receiver (top 15 by own time):")
    pstats.Stats(str(out)).sort_stats("tottime").print_stats(15)


def projects(folder: Path, backends: list[str]) -> Iterator[tuple[str, Path]]:
    if "file" in backends:
        local = folder / "file"
        local.mkdir()
        (local / "runner.yaml").write_text("default_region: US\n")
        yield "file", local
    if "postgresql" in backends:
        from pg import PostgresServer, find_binaries

        binaries = find_binaries()
        if binaries is None:
            print("postgresql: skipped (initdb/pg_ctl not installed)")
            return
        server = PostgresServer(binaries).start()
        try:  # the tests' throwaway server runs with fsync off; a real one would not
            server.query("ALTER SYSTEM SET fsync = on")
            server.query("SELECT pg_reload_conf()")
            remote = folder / "postgresql"
            remote.mkdir()
            config = f"default_region: US\nproject: bench\nstate: {server.url()}\n"
            (remote / "runner.yaml").write_text(config)
            yield "postgresql", remote
        finally:
            server.stop()


def rows(results: dict[str, dict[str, float]], count: int) -> list[tuple[str, str, str, bool]]:
    """benchmarks/run.py's table rows: workload, measured, target, met."""
    return [
        (
            f"Receipts into {name}, {count:,} posted on 32 connections",
            f"{got['rate']:,.0f}/s, p99 {got['p99_ms']:.0f} ms",
            f">= {TARGET_RATE:,}/s, p99 < {TARGET_P99_MS:.0f} ms",
            got["rate"] >= TARGET_RATE and got["p99_ms"] < TARGET_P99_MS,
        )
        for name, got in results.items()
    ]


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser()
    parser.add_argument("--receipts", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--backend", action="append", choices=["file", "postgresql"])
    args = parser.parse_args(argv)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, project in projects(Path(folder), args.backend or ["file", "postgresql"]):
            figures = results[name] = measure(project, args.receipts, args.connections, 0)
            met = figures["rate"] >= TARGET_RATE and figures["p99_ms"] < TARGET_P99_MS
            print(
                f"receipts into {name}: {figures['rate']:,.0f}/s, p50 {figures['p50_ms']:.1f} ms, "
                f"p99 {figures['p99_ms']:.1f} ms ({args.connections} connections); target "
                f">= {TARGET_RATE:,}/s and p99 < {TARGET_P99_MS:.0f} ms: "
                f"{'met' if met else 'NOT met'}"
            )
            if not met:
                profile(project, args.receipts, args.connections, 2 * args.receipts)
    return results


if __name__ == "__main__":
    main()
