"""Progress on stderr during apply: click's bar on a terminal, a line every few seconds in CI."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from collections.abc import Callable

from conftest import API_ENV, EmulatorProcess, ProjectDir, us_numbers, write_campaign

LINE = re.compile(
    r"Still sending\.\.\. (\d+)/12 batches done, ([\d,]+) calls?, (\d+) failed \[(\d+)s elapsed\]"
)


def twelve_batches(project: ProjectDir) -> None:
    for i, number in enumerate(us_numbers(12)):
        write_campaign(project, f"c{i:02d}", f"Notice {i}.", [number])


def test_without_a_terminal_a_line_every_few_seconds(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulators("--latency", "0.25")
    twelve_batches(project)
    env = {**API_ENV, "RUNNER_PROGRESS_SECONDS": "0.5"}
    args = ("apply", "--auto-approve", "--concurrency", "1", "--api-url", emulator.url)
    result = project.run(*args, env=env, stdin="")
    assert result.code == 0, result
    lines = [line for line in result.err.splitlines() if line.startswith("Still sending")]
    assert len(lines) >= 3, result.err
    found = [LINE.fullmatch(line) for line in lines]
    assert all(found), lines
    done = [int(m.group(1)) for m in found if m]
    assert done == sorted(done) and 0 < done[-1] <= 12, lines
    assert [m.group(3) for m in found if m] == ["0"] * len(found)
    assert "Still sending" not in result.out  # stdout stays the summary, for pipes


def test_on_a_terminal_clicks_progress_bar(project: ProjectDir, emulator: EmulatorProcess) -> None:
    twelve_batches(project)
    leader, follower = pty.openpty()
    command = [sys.executable, "-m", "runner", "-C", str(project.root), "apply"]
    command += ["--auto-approve", "--api-url", emulator.url]
    process = subprocess.Popen(
        command,
        env={**os.environ, "NO_COLOR": "1", **API_ENV},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the other side closed: the process is gone
            break
        if not chunk:
            break
        shown += chunk
    assert process.wait(timeout=60) == 0
    os.close(leader)
    text = shown.decode()
    assert "Sending  [" in text and "100%" in text, text
    assert "Still sending" not in text
