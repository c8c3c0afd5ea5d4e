"""Helpers for work over a million recipients."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


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
