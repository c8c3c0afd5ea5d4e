"""The error tree. User errors carry what a person needs to fix them; nothing else is shown."""

from __future__ import annotations

from typing import NamedTuple


class Problem(NamedTuple):
    """One thing wrong with the user's input, located as precisely as we know."""

    path: str
    line: int | None
    field: str
    message: str

    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path

    def __str__(self) -> str:
        field = f" {self.field}:" if self.field else ""
        return f"{self.where()}:{field} {self.message}"


class RunnerError(Exception):
    """Base of every error a user can cause; printed as one line, never as a traceback."""


class InputError(RunnerError):
    """The project's files are invalid; carries every problem found, not only the first."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the input")
        self.problems = problems


class UsageError(RunnerError):
    """A command line or option that cannot be acted on."""


class StateError(RunnerError):
    """The state cannot be read, written or trusted."""


class LockError(StateError):
    """Another process holds the state lock."""


class PlanError(RunnerError):
    """A saved plan cannot be applied (stale, foreign or corrupt)."""


class SendError(RunnerError):
    """Sending failed in a way that stops the whole apply."""
