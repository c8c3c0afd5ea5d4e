"""What the security tests share: the CLI in-process with a time bound, and state fingerprints.

In-process runs go through `runner.cli.main`, the same entry point as the `runner` command, so
error handling (one line, never a traceback) is the user's; only the process is saved.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from conftest import Result

from runner.cli import main


class TooSlow(BaseException):
    """Raised by the alarm: a BaseException, so no `except Exception` in runner can hide it."""


@contextlib.contextmanager
def time_bound(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: FrameType | None) -> None:
        raise TooSlow(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_in_process(*args: str, env: dict[str, str] | None = None, seconds: float = 20) -> Result:
    """`runner ARGS` in this process: output captured, exit code returned, time bounded."""
    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.update({"NO_COLOR": "1", **(env or {})})
    code = 0
    try:
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            time_bound(seconds),
        ):
            main(list(args))
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return Result(code, out.getvalue(), err.getvalue())


def assert_clean(result: Result) -> None:
    """Exit 0 or 1, and never a traceback or an internal error."""
    assert result.code in (0, 1), result
    assert "Traceback" not in result.output, result
    assert "internal error" not in result.output, result


def digest_files(folder: Path) -> dict[str, str]:
    """Every file under `folder` (state, plan, lock, journal included), by path and content."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
