"""How far an apply has got, on stderr: a bar on a terminal, a line every few seconds in CI logs.

A CI log shows nothing between the plan and the summary otherwise: 2,000 batches are three
silent minutes, and a silent job looks hung. So without a terminal, like Terraform's "Still
creating... [10s elapsed]", a line says how far the sending has got, every few seconds.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, TextIO

import click

from runner.counts import plural

INTERVAL_SECONDS = 5.0
INTERVAL_VARIABLE = "RUNNER_PROGRESS_SECONDS"  # how often the CI lines come; tests use less


def interval() -> float:
    try:
        return max(0.1, float(os.environ.get(INTERVAL_VARIABLE, INTERVAL_SECONDS)))
    except ValueError:
        return INTERVAL_SECONDS


class Progress:
    """Counts finished batches (from the sender threads) and shows them on `stream`."""

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.total = self.done = self.calls = self.failed = 0
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._bar: Any = None
        self._ticking: threading.Event | None = None

    def start(self, total: int) -> None:
        """Called once the batches are known, before the first is sent."""
        self.total, self._started = total, time.monotonic()
        if not self.enabled or not total:
            return
        if self.stream.isatty():
            self._bar = click.progressbar(length=total, label="Sending", file=self.stream)
            self._bar.__enter__()
        else:
            self._ticking = threading.Event()
            threading.Thread(target=self._tick, name="progress", daemon=True).start()

    def step(self, result: Any) -> None:
        """One batch finished (sent or not): `result` is its BatchResult."""
        with self._lock:
            self.done += 1
            if result.delivered:
                self.calls += len(result.batch.numbers)
            else:
                self.failed += 1
            if self._bar is not None:
                self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
        if self._ticking is not None:
            self._ticking.set()
            self._ticking = None

    def line(self) -> str:
        with self._lock:
            done, calls, failed = self.done, self.calls, self.failed
        elapsed = time.monotonic() - self._started
        batches = plural(self.total, "batch")
        return (
            f"Still sending... {done:,}/{batches} done, {plural(calls, 'call')}, "
            f"{failed:,} failed [{elapsed:.0f}s elapsed]"
        )

    def _tick(self) -> None:
        ticking, every = self._ticking, interval()
        while ticking is not None and not ticking.wait(every):
            click.echo(self.line(), file=self.stream)
