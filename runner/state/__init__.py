"""State: what has been delivered. One interface, a module per backend."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from runner.errors import StateError
from runner.state.lock import LockInfo
from runner.state.model import Entry, State

DEFAULT_STATE = "runner.state.json"

__all__ = ["DEFAULT_STATE", "Backend", "LockInfo", "State", "open_state"]


class Backend(Protocol):
    def describe(self) -> str: ...
    def read(self) -> State: ...
    def locked(self, operation: str): ...  # type: ignore[no-untyped-def]
    def ensure_created(self) -> State: ...
    def record(self, entry: Entry) -> None: ...
    def record_all(self, entries: Sequence[Entry]) -> None: ...
    def commit(self) -> State: ...
    def force_unlock(self, lock_id: str) -> str: ...
    def replace(self, state: State) -> None: ...


def state_location(option: str | None, configured: str | None) -> str:
    """--state, then RUNNER_STATE, then runner.yaml `state:`, then the default file."""
    return option or os.environ.get("RUNNER_STATE") or configured or DEFAULT_STATE


def is_postgres(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def open_state(location: str, root: Path, project: str | None = None) -> Backend:
    """The backend for a location: a postgresql:// URL, or a file path relative to `root`."""
    if is_postgres(location):
        return _open_postgres(location, project)
    from runner.state.local import LocalState

    path = Path(location)
    return LocalState(path if path.is_absolute() else root / path, root)


def shared_project(project: str | None) -> str:
    """The project's key in a shared (PostgreSQL) state; StateError if runner.yaml has none."""
    if not project:
        raise StateError(
            "a postgresql:// state is shared: set `project:` in runner.yaml to this project's "
            "key in it (e.g. `project: acme-alerts`)"
        )
    return project


def psycopg_missing(error: ModuleNotFoundError, what: str) -> StateError:
    """The one-line error for a missing postgres extra; re-raises any other missing module."""
    if not (error.name or "").startswith("psycopg"):
        raise error
    return StateError(f"{what} need psycopg: pip install 'voice-campaign-runner[postgres]'")


def _open_postgres(url: str, project: str | None) -> Backend:
    key = shared_project(project)
    try:
        from runner.state.postgres import PostgresState
    except ModuleNotFoundError as e:
        raise psycopg_missing(e, "states in PostgreSQL") from None
    return PostgresState(url, key)
