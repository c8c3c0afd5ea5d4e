"""The state folder is read-only, or its disk fills up: one clear line, the old state intact,
and no request leaves that the state could not record first.

Real file systems where the machine allows it: apply runs in a private mount namespace
(`unshare`) where the state folder is a read-only bind mount or a small tmpfs filled up to a
few kilobytes. Where it does not, the seams are a read-only chmod (not root) and a file-size
limit (RLIMIT_FSIZE, which fails writes with EFBIG as a full disk fails them with ENOSPC).
"""

from __future__ import annotations

import functools
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import figures
import pytest
from conftest import API_ENV, EmulatorProcess, ProjectDir, Result
from delivery import (
    apply_until_success,
    assert_exactly_once,
    state_bytes,
    write_big_project,
)

STATE = "state/runner.state.json"
SIZES = [300] * 5  # campaign 0 is delivered first; 1-4 meet the fault (4 batches, ~20 kB each)
READ_ONLY = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
FULL = """
state=$1 free=$2 out=$3; shift 3
stash=$(mktemp -d) && cp -a "$state/." "$stash/" && mount -t tmpfs -o size=1m tmpfs "$state" \
  && cp -a "$stash/." "$state/" || exit 99
avail=$(df -B1 --output=avail "$state" | tail -n 1)
[ "$avail" -gt "$free" ] && head -c $((avail - free)) /dev/zero > "$state/filler"
"$@"; code=$?
rm -f "$state/filler" && cp -a "$state/." "$out/"
exit $code
"""


@functools.cache
def unshare_prefix() -> list[str] | None:
    """How to get a private mount namespace here, if at all."""
    if shutil.which("unshare") is None:
        return None
    for prefix in (["unshare", "-m"], ["unshare", "-rm"]):
        probe = [*prefix, "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"]
        if subprocess.run(probe, capture_output=True).returncode == 0:
            return prefix
    return None


def runner_command(project: ProjectDir, url: str) -> list[str]:
    return [
        *(sys.executable, "-m", "runner", "-C", str(project.root), "apply"),
        *("--auto-approve", "--api-url", url),
    ]


def run(command: list[str], preexec: Callable[[], None] | None = None) -> Result:
    proc = subprocess.run(
        command,
        env={**os.environ, "NO_COLOR": "1", **API_ENV},
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        preexec_fn=preexec,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def delivered_once(
    project: ProjectDir, emulator: EmulatorProcess
) -> Iterator[tuple[set[tuple[str, str]], dict[str, bytes]]]:
    """Campaign 0 delivered (the snapshot exists), campaigns 1-4 still to send."""
    config = project.root / "runner.yaml"
    config.write_text(config.read_text() + f"state: {STATE}\n")
    wanted = write_big_project(project, SIZES[:1])
    apply_until_success(project, emulator.url)
    wanted |= write_big_project(project, SIZES)
    yield wanted, state_bytes(project.root / "state")


def read_only_strategies() -> list[str]:
    return ["mount"] if unshare_prefix() else (["chmod"] if os.geteuid() != 0 else [])


def full_strategies() -> list[str]:
    return (["tmpfs"] if unshare_prefix() else []) + ["fsize"]


def assert_one_clear_line(result: Result, *fragments: str) -> None:
    assert result.code == 1, result
    assert "Traceback" not in result.output and "internal error" not in result.output, result
    assert all(f in result.output for f in fragments), result


@pytest.mark.parametrize("strategy", read_only_strategies())
def test_read_only_state_folder_sends_nothing_and_changes_nothing(
    strategy: str,
    project: ProjectDir,
    emulator: EmulatorProcess,
    delivered_once: tuple[set[tuple[str, str]], dict[str, bytes]],
) -> None:
    wanted, before = delivered_once
    folder = project.root / "state"
    sent = len(emulator.sends())
    command = runner_command(project, emulator.url)
    if strategy == "mount":
        prefix = unshare_prefix()
        assert prefix
        result = run([*prefix, "sh", "-c", READ_ONLY, "sh", str(folder), *command])
        hint = "the file system is read-only; use a writable state location"
    else:
        for path in [folder, *folder.iterdir()]:
            path.chmod(0o555 if path.is_dir() else 0o444)
        result = run(command)
        for path in [folder, *folder.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        hint = "permission denied; check the folder's permissions"
    assert_one_clear_line(result, "runner: cannot lock ", hint)
    assert len(result.err.splitlines()) == 1, result
    assert len(emulator.sends()) == sent
    assert state_bytes(folder) == before
    figures.add("disk faults injected")
    apply_until_success(project, emulator.url)
    assert_exactly_once(emulator.pairs(), wanted)


def limit_file_size(size: int) -> Callable[[], None]:
    def limit() -> None:  # pragma: no cover - runs in the child
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


def fill_and_apply(strategy: str, free: int, project: ProjectDir, url: str, after: Path) -> Result:
    """apply with `free` bytes left for the state; the state folder as it ends goes to `after`."""
    folder = project.root / "state"
    command = runner_command(project, url)
    if strategy == "fsize":
        result = run(command, limit_file_size(free))
        shutil.copytree(folder, after)
        return result
    prefix = unshare_prefix()
    assert prefix
    after.mkdir()
    result = run([*prefix, "sh", "-c", FULL, "sh", str(folder), str(free), str(after), *command])
    assert result.code != 99, result
    return result


def durable_request_ids(folder: Path) -> set[str]:
    """Request ids of the intents a reader finds: whole journal lines and the snapshot."""
    journal = folder / "runner.state.json.journal"
    lines = journal.read_bytes().split(b"\n")[:-1] if journal.exists() else []  # whole lines
    ids = {json.loads(line)["request_id"] for line in lines if b'"kind":"intent"' in line}
    snapshot = json.loads((folder / "runner.state.json").read_bytes())
    for campaign in snapshot["campaigns"].values():
        ids |= set(campaign["pending"]) | {send["request_id"] for send in campaign["sends"]}
    return ids


@pytest.mark.parametrize("free", [0, 8_000, 30_000, 70_000])
@pytest.mark.parametrize("strategy", full_strategies())
def test_full_disk_ends_clearly_with_every_send_recorded(
    strategy: str,
    free: int,
    project: ProjectDir,
    emulator: EmulatorProcess,
    delivered_once: tuple[set[tuple[str, str]], dict[str, bytes]],
    tmp_path: Path,
) -> None:
    wanted, before = delivered_once
    sent = len(emulator.sends())
    after = tmp_path / "after"
    result = fill_and_apply(strategy, free, project, emulator.url, after)
    hint = "the disk is full; free some space" if strategy == "tmpfs" else "File too large"
    assert_one_clear_line(result, hint)
    assert len(result.err.splitlines()) == 1, result
    ends = state_bytes(after)
    assert ends["runner.state.json"] == before["runner.state.json"]
    assert ends.get("runner.state.json.backup") == before.get("runner.state.json.backup")
    recorded = durable_request_ids(after)
    unrecorded = [s for s in emulator.sends()[sent:] if s["request_id"] not in recorded]
    assert unrecorded == [], "a request left without a durable intent"
    figures.add("disk faults injected")

    if strategy == "tmpfs":  # what the full disk kept is what the next run starts from
        shutil.rmtree(project.root / "state")
        shutil.copytree(after, project.root / "state")
    apply_until_success(project, emulator.url)
    assert_exactly_once(emulator.pairs(), wanted)
