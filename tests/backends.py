"""What a test needs to see of a project's stored state, whichever backend holds it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from conftest import ProjectDir

from runner.state.snapshot import dump_state

# psycopg is imported where needed: without it, the local half of a suite still runs

STATE = "runner.state.json"


def location(project: ProjectDir) -> str:
    return project.state_url or str(project.root / STATE)


def query(project: ProjectDir, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    import psycopg

    assert project.state_url and project.key
    with psycopg.connect(project.state_url, autocommit=True) as conn:
        cursor = conn.execute(sql, (project.key, *params))  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


def stored_state(project: ProjectDir) -> dict[str, Any]:
    """The whole state, as the local backend's file holds it."""
    if project.backend == "local":
        data: dict[str, Any] = json.loads((project.root / STATE).read_text(encoding="utf-8"))
        return data
    from runner.state.postgres import PostgresState

    assert project.state_url and project.key
    backend = PostgresState(project.state_url, project.key)
    try:
        loaded: dict[str, Any] = json.loads(dump_state(backend.read()))
        return loaded
    finally:
        backend.close()


def has_state(project: ProjectDir) -> bool:
    if project.backend == "local":
        return (project.root / STATE).exists()
    snapshots = query(project, "SELECT count(*) FROM runner_snapshots WHERE project = %s")
    records = query(project, "SELECT count(*) FROM runner_records WHERE project = %s")
    return snapshots[0][0] + records[0][0] > 0


def unfolded(project: ProjectDir) -> bytes:
    """Records written since the last snapshot: the local journal, or rows in runner_records."""
    if project.backend == "local":
        journal = project.root / (STATE + ".journal")
        return journal.read_bytes() if journal.exists() else b""
    rows = query(project, "SELECT record FROM runner_records WHERE project = %s ORDER BY seq")
    return b"".join(json.dumps(r[0]).encode() + b"\n" for r in rows)


def latest_snapshot(project: ProjectDir) -> Any:
    if project.backend == "local":
        return (project.root / STATE).read_bytes()
    return query(
        project, "SELECT id, state FROM runner_snapshots WHERE project = %s ORDER BY id DESC"
    )[0]


def stored_text(project: ProjectDir) -> str:
    """Everything the backend keeps for this project, as text: to look for what must not be."""
    if project.backend == "local":
        return "".join(
            (project.root / name).read_text(encoding="utf-8")
            for name in (STATE, STATE + ".backup")
            if (project.root / name).exists()
        )
    tables = ("runner_snapshots", "runner_records", "runner_locks")
    return "\n".join(
        str(row)
        for table in tables
        for row in query(project, f"SELECT t::text FROM {table} t WHERE project = %s")
    )


HOLDER = """
import sys, time
from pathlib import Path
from runner.state import open_state
with open_state(sys.argv[1], Path(sys.argv[2]), sys.argv[3] or None).locked("test holder") as info:
    print(info.id, flush=True)
    time.sleep(120)
"""


@contextmanager
def held_lock(project: ProjectDir) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Another process holding the project's state lock; yields it and its lock id."""
    command = [
        sys.executable,
        "-c",
        HOLDER,
        location(project),
        str(project.root),
        project.key or "",
    ]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as holder:
        assert holder.stdout is not None
        lock_id = holder.stdout.readline().strip()
        assert lock_id, "the holder could not take the lock"
        try:
            yield holder, lock_id
        finally:
            holder.kill()


def wait_until_released(project: ProjectDir) -> None:
    """After its holder is killed: the server ends the session (at once, but asynchronously)."""
    if project.backend == "local":
        return
    import psycopg

    from runner.state.pg_schema import lock_key

    key = lock_key(f"project:{project.key}")
    deadline = time.monotonic() + 10
    assert project.state_url
    with psycopg.connect(project.state_url, autocommit=True) as conn:
        while not conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchall()[0][0]:
            assert time.monotonic() < deadline, "the killed holder's session did not end"
            time.sleep(0.02)
        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
