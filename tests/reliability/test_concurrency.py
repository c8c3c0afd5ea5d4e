"""Two and four applies started at once on one project: one sends, the others name the holder.

The emulator is slow enough that the winner holds the lock while the others arrive. Whatever
the order, the emulator's record must show every call once, and a last apply must find nothing.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable

import figures
import pytest
from conftest import API_ENV, EmulatorProcess, ProjectDir
from delivery import apply_until_success, assert_exactly_once, write_big_project

SIZES = [300] * 4  # 1,200 recipients, 4 batches
HOLDER = re.compile(
    r"^runner: the state is locked: held by \S+@(?P<host>\S+) \(pid (?P<pid>\d+), apply\) "
    r"since [\d-]+ [\d:]+, lock id (?P<id>[0-9a-f-]{36}); if that process is gone, run "
    r"`runner force-unlock (?P=id)`$"
)


def start_together(project: ProjectDir, url: str, count: int) -> list[subprocess.Popen[str]]:
    command = [sys.executable, "-m", "runner", "-C", str(project.root), "apply"]
    command += ["--auto-approve", "--concurrency", "1", "--api-url", url]
    env = {**os.environ, "NO_COLOR": "1", **API_ENV}
    return [
        subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]


@pytest.mark.parametrize("count", [2, 4])
def test_simultaneous_applies_send_once_and_losers_name_the_holder(
    count: int, project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulators("--latency", "0.8")  # the winner holds the lock for 3.2 s or more
    wanted: set[tuple[str, str]] = set()
    for round_ in range(2):
        wanted |= write_big_project(project, SIZES, label=f"Round {round_}")
        processes = start_together(project, emulator.url, count)
        outputs = [p.communicate(timeout=120) for p in processes]
        codes = [p.returncode for p in processes]
        assert sorted(codes) == [0] + [1] * (count - 1), (codes, outputs)
        winner = processes[codes.index(0)]
        for (out, err), code in zip(outputs, codes, strict=True):
            if code == 1:
                assert out == "", out
                holder = HOLDER.match(err.strip())
                assert holder, err
                assert (holder["pid"], holder["host"]) == (str(winner.pid), socket.gethostname())
        figures.add("concurrent applies", count)
    assert_exactly_once(emulator.pairs(), wanted)
    assert "No changes" in apply_until_success(project, emulator.url)[0].out
