"""SIGINT and SIGTERM during an apply: stop starting batches, then fold what was done.

A CI cancel sends SIGINT, then SIGTERM a few seconds later, then SIGKILL (GitHub Actions:
7.5 s, then 2.5 s). The default handlers would kill the process before the journal is folded
into the snapshot, and a CI job commits only the snapshot: every send in the journal would be
forgotten and made again. So the first signal asks the sender to start nothing more and gives
the answers in flight a few seconds; a second signal gives up waiting at once. Either way the
apply then records what it knows and folds it, well before the SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

from runner.errors import RunnerError

GRACE_SECONDS = 5.0  # for answers in flight: well under the 10 s a CI gives before SIGKILL
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(RunnerError):
    """A signal arrived before anything was sent: nothing to wait for, nothing to fold."""


class Stop:
    """What the signals asked for; the sender polls it, the signal handler sets it."""

    def __init__(self, grace: float = GRACE_SECONDS) -> None:
        self.grace = grace
        self.signal_name: str | None = None
        self._since: float | None = None
        self._hurry = threading.Event()
        self._on_stop: Callable[[str], None] | None = None

    @property
    def reason(self) -> str:
        return f"interrupted by {self.signal_name}" if self.signal_name else ""

    def while_sending(self, on_stop: Callable[[str], None]) -> None:
        """From now on a signal stops the sending through `on_stop` instead of raising."""
        self._on_stop = on_stop
        if self.signal_name:  # arrived between planning and sending: start nothing
            on_stop(self.reason)

    def gave_up(self) -> bool:
        """True once the answers in flight have had their time, or a second signal came."""
        if self._since is None:
            return False
        return self._hurry.is_set() or time.monotonic() - self._since >= self.grace

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signal_name is not None:
            self._hurry.set()  # the second signal: the SIGKILL is seconds away
            return
        self.signal_name = signal.Signals(signum).name
        self._since = time.monotonic()
        if self._on_stop is None:
            raise Interrupted(f"{self.reason}; nothing was sent")
        self._on_stop(self.reason)


@contextlib.contextmanager
def stopped_by_signals(grace: float = GRACE_SECONDS) -> Iterator[Stop]:
    """Handle SIGINT and SIGTERM in the block; outside the main thread, leave them alone."""
    stop = Stop(grace)
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {number: signal.signal(number, stop.handle) for number in SIGNALS}
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def leave(code: int) -> None:
    """Exit now, even with a request still hanging in a sender thread.

    Its intent is in the folded snapshot without an outcome, so the next apply treats it as
    pending; waiting for it here could outlast the CI's grace and lose the whole exit.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
