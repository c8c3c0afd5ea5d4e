"""Figures the reliability and security suites gather for the README's guarantees section.

Tests add to the counters; at the end of the run pytest prints them, and writes them as JSON to
the file named by RUNNER_FIGURES (see benchmarks/guarantees.py).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

FIGURES: Counter[str] = Counter()


def add(name: str, count: int = 1) -> None:
    FIGURES[name] += count


def summary() -> str:
    return ", ".join(f"{name} {count:,}" for name, count in sorted(FIGURES.items()))


def save() -> None:
    target = os.environ.get("RUNNER_FIGURES")
    if target and FIGURES:
        Path(target).write_text(json.dumps(dict(sorted(FIGURES.items())), indent=2) + "\n")
