"""Helpers for work over a million recipients."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import pickle
import signal
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger("runner.bulk")
PARALLEL_MIN = 200  # below this many items a second process costs more than it saves


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection while building large, acyclic data.

    A million contacts are a million tuples: each is tracked by the cyclic collector, whose
    full passes would walk all of them again and again (a third of a big plan's time), to
    find no cycle. Reference counting still frees everything; what survives is frozen, so
    later passes skip it.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def workers() -> int:
    """Processes to use: RUNNER_JOBS if set (1 turns parallel work off), else the cores."""
    wanted = os.environ.get("RUNNER_JOBS", "")
    if wanted.isdigit() and int(wanted) > 0:
        return min(int(wanted), 2)
    return min(os.cpu_count() or 1, 2)


def in_two(work: Callable[[Sequence[T]], list[R]], items: Sequence[T]) -> list[R]:
    """`work(items)`, with the second half done by a forked process on the other core.

    The results come back in order, so the outcome is the same as one process's. If the
    child fails for any reason, the parent does its half itself.
    """
    if len(items) < PARALLEL_MIN or workers() < 2 or not hasattr(os, "fork"):
        return work(items)
    half = len(items) // 2
    log.debug("%d items: the last %d in a second process", len(items), len(items) - half)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: work, send the result, exit without running the parent's cleanup
        code = 1
        try:
            os.environ["RUNNER_JOBS"] = "1"  # work that splits again runs here, not in a third
            os.close(read_end)
            with os.fdopen(write_end, "wb") as pipe:
                pickle.dump(work(items[half:]), pipe, protocol=pickle.HIGHEST_PROTOCOL)
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        try:
            first = work(items[:half])
        except BaseException:
            os.kill(pid, signal.SIGKILL)  # no orphan left writing to a pipe nobody reads
            os.waitpid(pid, 0)
            raise
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    try:
        second: list[R] = pickle.loads(data) if status == 0 else work(items[half:])
    except (pickle.UnpicklingError, EOFError):
        second = work(items[half:])
    return first + second
