"""SIGKILL apply at seeded random moments, re-run it until it succeeds, then count the calls.

The moments: anywhere (loading, planning, locking), in the middle of sending, right after a
journal append, while the snapshot's temp file is being written, and with a torn last journal
line as a power cut mid-append would leave. The emulator's record must show every call once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import figures
from conftest import EmulatorProcess, ProjectDir
from delivery import apply_until_success, assert_exactly_once, start_quietly, write_big_project

TRIALS = 24
SIZES = [200] * 6  # 1,200 recipients, 6 batches a trial
MOMENTS = ("anywhere", "mid-send", "after-append", "snapshot", "torn-append")


def start_apply(project: ProjectDir, url: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "runner", "-C", str(project.root), "apply"]
    command += ["--auto-approve", "--concurrency", "2", "--api-url", url]
    return start_quietly(command)


def wait_for(process: subprocess.Popen[bytes], ready: Callable[[], bool], limit: float) -> bool:
    """Poll as fast as we can until `ready()` or the process ends; True if `ready()`."""
    deadline = time.monotonic() + limit
    while process.poll() is None and time.monotonic() < deadline:
        if ready():
            return True
    return False


def snapshot_being_written(root: Path) -> bool:
    return any(name.endswith(".tmp") for name in os.listdir(root))


def kill_at(moment: str, process: subprocess.Popen[bytes], root: Path, rng: random.Random) -> bool:
    """Kill the process at `moment`; True if it was killed mid-write of the state."""
    journal = root / "runner.state.json.journal"
    mid_write = False
    if moment == "anywhere":
        time.sleep(rng.uniform(0.0, 0.8))
    elif moment == "mid-send":
        wait_for(process, journal.exists, 30)
        time.sleep(rng.uniform(0.0, 0.15))
    elif moment == "after-append":
        threshold = rng.randrange(1, 80_000)  # an intent of 200 recipients is ~14 kB
        wait_for(process, lambda: journal.exists() and journal.stat().st_size >= threshold, 30)
    elif moment in ("snapshot", "torn-append"):
        mid_write = wait_for(process, lambda: snapshot_being_written(root), 30)
        if moment == "torn-append":
            mid_write = wait_for(process, journal.exists, 30)
    process.send_signal(signal.SIGKILL)
    process.wait()
    if moment == "torn-append" and journal.exists():
        tear_last_record(journal, rng)
    return mid_write


def tear_last_record(journal: Path, rng: random.Random) -> None:
    """Append part of a record with no newline: a write cut short, before anything acted on it."""
    lines = journal.read_bytes().splitlines()
    if lines:
        journal.write_bytes(journal.read_bytes() + lines[-1][: rng.randrange(1, len(lines[-1]))])


def test_sigkill_at_random_moments_then_rerun_delivers_exactly_once(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulators("--latency", "0.03", "--credit", "1000000", seed=5)
    rng = random.Random(20261205)
    wanted: set[tuple[str, str]] = set()
    killed = mid_write = reruns = 0
    for trial in range(TRIALS):
        wanted |= write_big_project(project, SIZES, label=f"Trial {trial}")
        moment = MOMENTS[trial % len(MOMENTS)]
        process = start_apply(project, emulator.url)
        mid_write += kill_at(moment, process, project.root, rng)
        killed += process.returncode == -signal.SIGKILL
        reruns += len(apply_until_success(project, emulator.url))
        assert not (project.root / "runner.state.json.journal").exists()
    assert killed >= TRIALS // 2, killed  # a run may end before its moment comes
    assert mid_write >= 3, mid_write
    assert_exactly_once(emulator.pairs(), wanted)
    figures.add("crash trials", TRIALS)
    figures.add("SIGKILLs", killed)
    figures.add("SIGKILLs mid state write", mid_write)
    figures.add("crash re-runs", reruns)
