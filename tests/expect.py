"""What a user must see when runner refuses their files: one line per problem, nothing else."""

from __future__ import annotations

import re

from conftest import Result

SUMMARY = re.compile(r"^(\d[\d,]*) problems?\b")
LOCATED = re.compile(r"^[^\s:][^:]*(:\d+)?: ")  # path[:line]: ...


def problem_lines(result: Result) -> list[str]:
    """The problem lines of a refused run; fails on a traceback, a crash or a stray line."""
    assert result.code == 1, result
    assert "Traceback" not in result.output, result
    assert "internal error" not in result.output, result
    lines = result.err.splitlines()
    assert lines, result
    summary = SUMMARY.match(lines[-1])
    assert summary, result
    problems = lines[:-1]
    assert int(summary.group(1).replace(",", "")) == len(problems), result
    for line in problems:
        assert LOCATED.match(line), f"not a located problem line: {line!r}"
    return problems


def assert_refused(result: Result, *expected: str) -> None:
    """Exactly these problems (in any order) and nothing more."""
    lines = problem_lines(result)
    assert sorted(lines) == sorted(expected), "\n".join(["got:", *lines])


def assert_reports(result: Result, *expected: str) -> list[str]:
    """At least these problems; returns every problem line."""
    lines = problem_lines(result)
    missing = [line for line in expected if line not in lines]
    assert not missing, "\n".join(["missing:", *missing, "got:", *lines])
    return lines
