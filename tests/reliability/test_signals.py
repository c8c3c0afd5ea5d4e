"""SIGINT and SIGTERM (a CI cancel) at random points of real applies: every exit folds.

After each stop, every state file but `runner.state.json` is deleted, as a CI job that commits
only that file would lose them; a number is added to each campaign, as the next pull request
would, so that any send the snapshot forgot is planned again in other batches and shows up in
the emulator's record as a second call.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import figures
from conftest import EmulatorProcess, ProjectDir, us_numbers, write_campaign
from delivery import apply_until_success, assert_exactly_once, delivery_errors, start_quietly

EARLY = "+12015550000"  # sorts before every us_numbers(): the batches after it all shift


def start_apply(project: ProjectDir, url: str, concurrency: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "runner", "-C", str(project.root), "apply"]
    command += ["--auto-approve", "--concurrency", str(concurrency), "--api-url", url]
    return start_quietly(command)


def wait_until(ready: Callable[[], bool], limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while not ready():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def keep_only_the_snapshot(root: Path) -> None:
    """What a CI job that commits only runner.state.json leaves to the next one."""
    for path in root.iterdir():
        state_file = path.name.startswith(("runner.state", ".runner.state"))
        if state_file and path.name != "runner.state.json":
            path.unlink()


def write_campaigns(
    project: ProjectDir, sizes: list[int], extra: tuple[str, ...] = ()
) -> set[tuple[str, str]]:
    wanted: set[tuple[str, str]] = set()
    start = 0
    for i, size in enumerate(sizes):
        numbers = [*extra, *us_numbers(size, start=start)]
        start += size
        text = f"Notice {i}: the water is off on Saturday in zone {i}."
        write_campaign(project, f"campaign-{i:02d}", text, numbers)
        wanted |= {(text, n) for n in numbers}
    return wanted


def stop(process: subprocess.Popen[bytes], signals: tuple[signal.Signals, ...]) -> float:
    """Send the signals a CI cancel sends (a short gap between them); seconds until exit."""
    started = time.monotonic()
    for number, sig in enumerate(signals):
        if number:
            time.sleep(0.5)
        if process.poll() is None:
            process.send_signal(sig)
    process.wait(timeout=15)
    return time.monotonic() - started


CANCELS = [
    (signal.SIGINT,),
    (signal.SIGTERM,),
    (signal.SIGINT, signal.SIGTERM),
]


def test_a_signal_at_a_random_moment_leaves_every_send_in_the_snapshot(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    rng = random.Random(14)
    for trial in range(6):
        emulator = emulators("--latency", "0.2", "--credit", "1000000", seed=trial)
        root = project.root / f"t{trial}"
        trial_project = ProjectDir(root)
        (root / "runner.yaml").write_text((project.root / "runner.yaml").read_text())
        wanted = write_campaigns(trial_project, [120] * 8)
        process = start_apply(trial_project, emulator.url, 2)
        journal = root / "runner.state.json.journal"
        wait_until(journal.exists)
        time.sleep(rng.uniform(0.0, 1.0))
        seconds = stop(process, CANCELS[trial % len(CANCELS)])
        assert seconds < 7, f"{seconds:.1f} s to stop: a CI would SIGKILL it first"
        assert process.returncode in (0, 1)
        keep_only_the_snapshot(root)
        wanted |= write_campaigns(trial_project, [120] * 8, extra=(EARLY,))
        apply_until_success(trial_project, emulator.url, limit=2)
        figures.add("signal trials", 1)
        assert_exactly_once(emulator.pairs(), wanted)


def test_a_cancelled_apply_then_a_new_number_calls_nobody_twice(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    """The issue's scenario: 1,601 people, cancelled after 3 batches, journal dropped, +1 number.

    Before every exit folded, the SIGTERM killed the apply with its sends in the journal only,
    and the next job called 1,500 of them again.
    """
    emulator = emulators("--latency", "0.3", "--credit", "1000000")
    wanted = write_campaigns(project, [1600])
    process = start_apply(project, emulator.url, 1)
    wait_until(lambda: len(emulator.sends()) >= 3)
    stop(process, (signal.SIGTERM,))
    keep_only_the_snapshot(project.root)
    wanted |= write_campaigns(project, [1600], extra=(EARLY,))
    apply_until_success(project, emulator.url, limit=2)
    duplicates, losses, strays = delivery_errors(emulator.pairs(), wanted)
    assert (duplicates, losses, strays) == (0, 0, 0)


def test_answers_that_do_not_come_are_not_waited_for_past_the_grace(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    """A provider slower than the CI's grace: the exit still folds in time, the batch is pending,
    and the next apply settles it with the same request_id, calling nobody twice."""
    emulator = emulators("--latency", "12", "--credit", "1000000")
    wanted = write_campaigns(project, [3, 3])
    for signals, limit in (((signal.SIGTERM,), 7.0), ((signal.SIGINT, signal.SIGTERM), 2.5)):
        keep_only_the_snapshot(project.root)
        process = start_apply(project, emulator.url, 2)
        wait_until((project.root / "runner.state.json.journal").exists)
        time.sleep(0.3)
        seconds = stop(process, signals)
        assert seconds < limit, f"{seconds:.1f} s to stop after {signals}"
        assert process.returncode == 1
        state = (project.root / "runner.state.json").read_text()
        assert '"pending"' in state and "rn-" in state  # the unanswered batches, folded
    keep_only_the_snapshot(project.root)
    apply_until_success(project, emulator.url, limit=2)
    assert_exactly_once(emulator.pairs(), wanted)
