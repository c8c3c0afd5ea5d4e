"""A quick smoke of the benchmark scripts (the full run is `python benchmarks/run.py`)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import big_list
import growth
import realistic

from runner.e164 import validate_slowly


def test_the_realistic_list_is_what_it_says() -> None:
    rows = realistic.rows(3000, seed=5)
    assert rows == realistic.rows(3000, seed=5)  # seeded: the same list every run
    assert all(validate_slowly(row, "US") for row in rows)
    numbers = {validate_slowly(row, "US") for row in rows}
    assert 0.985 * len(rows) < len(numbers) < len(rows)  # about 1% repeats
    assert sum(row.startswith("+1") for row in rows) > 0.6 * len(rows)
    assert {n[:3] for n in numbers if n} >= {"+44", "+49", "+33", "+34", "+39", "+31"}
    assert sum(not row.startswith("+") for row in rows) > 20  # national formats
    bad = realistic.with_invalid(rows, 10, seed=5)
    assert sum(validate_slowly(row, "US") is None for row in bad) == 10


def test_big_list_benchmark_runs(capsys: pytest.CaptureFixture[str]) -> None:
    figures = big_list.main(["--numbers", "1500", "--runs", "1"])
    assert all(math.isfinite(v) and v > 0 for v in figures.values()), figures
    assert "20 bad rows" in capsys.readouterr().out


def test_growth_benchmark_runs() -> None:
    figures = growth.main(["--sizes", "3,6", "--peer-sizes", "", "--runs", "1"])
    assert set(figures) == {"runner_3", "runner_6", "growth"}
