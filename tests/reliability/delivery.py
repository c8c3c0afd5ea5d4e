"""What the reliability tests share: big projects, apply-until-success, and the exactly-once count.

Every verdict comes from the emulator's own JSON-lines record of accepted sends, never from
runner's state: a send the state forgot, or one it recorded twice, shows up there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import figures
from conftest import API_ENV, EmulatorProcess, ProjectDir, Result, us_numbers, write_campaign

Pair = tuple[str, str]

# The campaign wrapper a simulated clock runs in: time.time() moves, nothing else changes.
CLOCK = (
    "import sys, time\n"
    "offset = float(sys.argv.pop(1))\n"
    "real = time.time\n"
    "time.time = lambda: real() + offset\n"
    "from runner.cli import main\n"
    "main(sys.argv[1:])\n"
)


def write_big_project(
    project: ProjectDir, sizes: Sequence[int], label: str = "Notice"
) -> set[Pair]:
    """A campaign per size, from CSV files, each with its own numbers; returns the wanted pairs."""
    wanted: set[Pair] = set()
    start = 0
    for i, size in enumerate(sizes):
        numbers = us_numbers(size, start=start)
        start += size
        text = f"{label} {i}: the water is off on Saturday from 9 AM in zone {i}."
        write_campaign(project, f"campaign-{i:02d}", text, numbers)
        wanted |= {(text, n) for n in numbers}
    return wanted


def apply(project: ProjectDir, url: str, *args: str, verbose: bool = False) -> Result:
    head = ("-vv",) if verbose else ()
    return project.run(
        *head, "apply", "--auto-approve", "--api-url", url, *args, env=API_ENV, stdin=""
    )


def apply_until_success(
    project: ProjectDir, url: str, *args: str, verbose: bool = False, limit: int = 12
) -> list[Result]:
    runs = [apply(project, url, *args, verbose=verbose)]
    while runs[-1].code != 0 and len(runs) < limit:
        runs.append(apply(project, url, *args, verbose=verbose))
    assert runs[-1].code == 0, runs[-1]
    assert all("Traceback" not in r.output for r in runs), runs
    return runs


def delivery_errors(counts: Counter[Pair], wanted: set[Pair]) -> tuple[int, int, int]:
    """(duplicates, losses, strays): calls made twice, wanted calls never made, unwanted calls."""
    duplicates = sum(n - 1 for n in counts.values() if n > 1)
    losses = len(wanted - set(counts))
    strays = len(set(counts) - wanted)
    return duplicates, losses, strays


def assert_exactly_once(counts: Counter[Pair], wanted: set[Pair]) -> None:
    duplicates, losses, strays = delivery_errors(counts, wanted)
    figures.add("calls checked", sum(counts.values()))
    figures.add("duplicates", duplicates)
    figures.add("losses", losses)
    assert (duplicates, losses, strays) == (0, 0, 0), (
        f"{duplicates} duplicate calls, {losses} lost, {strays} unwanted"
    )


def pairs_of(records: Iterable[Counter[Pair]]) -> Counter[Pair]:
    total: Counter[Pair] = Counter()
    for counts in records:
        total.update(counts)
    return total


def clock_command(project: ProjectDir, offset_hours: float, *args: str) -> list[str]:
    """`runner -C PROJECT ARGS` with time.time() moved by OFFSET hours: the only clock seam."""
    return [
        sys.executable,
        "-c",
        CLOCK,
        str(offset_hours * 3600),
        "-C",
        str(project.root),
        *args,
    ]


def run_later(project: ProjectDir, offset_hours: float, *args: str) -> Result:
    """Run a command as if `offset_hours` had passed."""
    proc = subprocess.run(
        clock_command(project, offset_hours, *args),
        env={**os.environ, "NO_COLOR": "1", **API_ENV},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def state_bytes(folder: Path) -> dict[str, bytes]:
    """Every state file in a folder, by name (the lock file holds only who held it)."""
    return {
        p.name: p.read_bytes()
        for p in sorted(folder.iterdir())
        if p.name.startswith(("runner.state", ".runner.state")) and not p.name.endswith(".lock")
    }


def start_quietly(command: list[str]) -> subprocess.Popen[bytes]:
    """A runner command in the background, with the API credentials and no terminal."""
    return subprocess.Popen(
        command,
        env={**os.environ, **API_ENV},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_apply(project: ProjectDir, url: str, hours: float = 0) -> subprocess.Popen[bytes]:
    command = clock_command(project, hours, "apply", "--auto-approve", "--api-url", url)
    return start_quietly(command)


def kill_when(process: subprocess.Popen[bytes], ready: Callable[[], bool]) -> None:
    while not ready():
        assert process.poll() is None, "apply ended before the moment to kill it"
    process.send_signal(signal.SIGKILL)
    process.wait()


def crash_after_the_provider_accepted(
    project: ProjectDir,
    emulators: Callable[..., EmulatorProcess],
    *options: str,
    hours: float = 0,
) -> EmulatorProcess:
    """The provider records the send, the answer never comes back, apply dies waiting."""
    # every answer is lost and slow: the kill lands while the client waits for its retry
    provider = emulators("--rate-drop-after", "1", "--latency", "1.5", *options)
    process = start_apply(project, provider.url, hours)
    kill_when(process, lambda: len(provider.sends()) == 1)
    return provider
