"""The PostgreSQL backend: records and snapshots as rows, one advisory lock per project.

Several projects share one database, each keyed by runner.yaml `project:`. Each record is one
INSERT, committed before record() returns: O(1) however large the state is. commit() folds the
records into a new snapshot row in one transaction; readers take the latest snapshot and fold
the records after it, exactly as the local backend replays its journal. The lock is a
session-level advisory lock on this process's connection, so it ends with the process however
that dies. The password in the URL is never shown: describe() and every error redact it.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb

from runner.errors import LockError, StateError
from runner.state.lock import LockInfo
from runner.state.model import Entry, State, entry_from_dict, entry_to_dict
from runner.state.pg_schema import lock_key, migrate
from runner.state.snapshot import dump_state, load_state

Connection = psycopg.Connection[Any]
HIDDEN = "***"


def redact_url(url: str) -> str:
    """The location rebuilt from libpq's own reading of it, without the password.

    urlsplit disagrees with libpq: libpq takes `p#a?ss` in `user:p#a?ss@host` as the password,
    urlsplit as a fragment, which it would print. The URL itself is never printed.
    """
    try:
        fields = conninfo_to_dict(url)
    except psycopg.Error:
        return "postgresql://(an unreadable URL; not shown)"
    scheme = url.partition("://")[0] if "://" in url else "postgresql"
    password = f":{HIDDEN}" if fields.get("password") else ""
    user = f"{fields.get('user') or ''}{password}@" if fields.get("user") or password else ""
    host = str(fields.get("host") or "")
    port = f":{fields['port']}" if fields.get("port") else ""
    shown = f"{scheme}://{user}{host}{port}/{fields.get('dbname') or ''}"
    options = sorted(k for k in fields if k not in _SHOWN_FIELDS and k not in _SECRET_FIELDS)
    query = "&".join(f"{k}={fields[k]}" for k in options)
    return shown + (f"?{query}" if query else "")


_SHOWN_FIELDS = frozenset({"user", "host", "port", "dbname"})
_SECRET_FIELDS = frozenset({"password", "sslpassword", "passfile", "sslkey"})


def url_secrets(url: str) -> list[str]:
    """The password as libpq reads it, and as a person might have meant it (urlsplit's
    reading, percent-encoded or not), to scrub from any error text."""
    found: list[str] = []
    with contextlib.suppress(psycopg.Error):
        fields = conninfo_to_dict(url)
        found += [str(fields[k]) for k in ("password", "sslpassword") if fields.get(k)]
    with contextlib.suppress(ValueError):
        parts = urlsplit(url)
        found += [v for k, v in parse_qsl(parts.query, True) if k == "password" and v]
        found += [parts.password] if parts.password else []
    userinfo = url.partition("://")[2].rpartition("@")[0]
    found += [userinfo.partition(":")[2]] if ":" in userinfo else []
    return sorted({f for s in found if s for f in (s, unquote(s))}, key=len, reverse=True)


class PostgresState:
    """One project's state in a PostgreSQL database shared with other projects."""

    def __init__(self, url: str, project: str) -> None:
        self.url = url
        self.project = project
        self._key = lock_key(f"project:{project}")
        self._mutex = threading.RLock()  # Sender records from several threads on one connection
        self._conn: Connection | None = None

    def describe(self) -> str:
        return f"{redact_url(self.url)} (project {self.project})"

    # the connection ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _use(self) -> Iterator[Connection]:
        """The connection, for one thread at a time; database errors become one clean line."""
        with self._mutex:
            try:
                yield self._connection()
            except psycopg.Error as e:
                raise StateError(f"state {self.describe()}: {self._clean(e)}") from e

    def _clean(self, error: Exception) -> str:
        text = " ".join(str(error).split()) or type(error).__name__
        for secret in url_secrets(self.url):
            text = text.replace(secret, HIDDEN)
        return text

    def _connection(self) -> Connection:
        if self._conn is None:
            conn = psycopg.connect(
                self.url, autocommit=True, connect_timeout=10, application_name="runner"
            )
            try:  # read committed here: after waiting for another migrator, see its tables
                migrate(conn, f"the database of {self.describe()}")
            except BaseException:
                conn.close()
                raise
            # a reader sees one snapshot and the records after it, never a half-made commit
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            weakref.finalize(self, conn.close)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # reading -----------------------------------------------------------------------------------
    def read(self) -> State:
        """The latest snapshot folded with every record made after it. Never writes."""
        with self._use() as conn, conn.transaction():
            state, _, _ = self._read(conn)
        return state

    def _read(self, conn: Connection) -> tuple[State, int, int]:
        """The state, the last record its snapshot holds, and the last record folded in."""
        row = conn.execute(
            "SELECT state, through_seq FROM runner_snapshots WHERE project = %s "
            "ORDER BY id DESC LIMIT 1",
            (self.project,),
        ).fetchone()
        state = State(lineage="") if row is None else load_state(row[0].encode(), self.describe())
        through = last = 0 if row is None else int(row[1])
        records = conn.execute(
            "SELECT seq, record FROM runner_records WHERE project = %s AND seq > %s ORDER BY seq",
            (self.project, through),
        )
        for seq, record in records:
            state.fold(self._entry(seq, record))
            last = seq
        return state, through, last

    def _entry(self, seq: int, record: dict[str, Any]) -> Entry:
        try:
            return entry_from_dict(record)
        except (ValueError, KeyError, TypeError) as e:
            raise StateError(
                f"state {self.describe()}: record {seq} is corrupt ({e}); "
                "restore the database from a backup"
            ) from e

    # locking -----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def locked(self, operation: str) -> Iterator[LockInfo]:
        info = self._acquire(operation)
        try:
            yield info
        finally:
            self._release(info)

    def _acquire(self, operation: str) -> LockInfo:
        info = LockInfo.mine(operation)
        with self._use() as conn:
            if not self._try_lock(conn):
                holder = self._holder(conn)
                for _ in range(50):  # the holder may have the lock and not yet have said who it is
                    if holder is not None:
                        break
                    time.sleep(0.01)
                    holder = self._holder(conn)
                who = holder[0].describe() if holder else "by another process"
                raise LockError(f"the state is locked: {who}")
            conn.execute(
                "INSERT INTO runner_locks VALUES (%s, %s, %s, %s, %s, %s, %s, pg_backend_pid()) "
                "ON CONFLICT (project) DO UPDATE SET lock_id = EXCLUDED.lock_id, "
                "holder = EXCLUDED.holder, host = EXCLUDED.host, pid = EXCLUDED.pid, "
                "time = EXCLUDED.time, operation = EXCLUDED.operation, "
                "backend_pid = EXCLUDED.backend_pid",
                (self.project, info.id, info.holder, info.host, info.pid, info.time, operation),
            )
        return info

    def _try_lock(self, conn: Connection) -> bool:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
        return bool(row and row[0])

    def _holder(self, conn: Connection) -> tuple[LockInfo, int] | None:
        row = conn.execute(
            "SELECT lock_id, holder, host, pid, time, operation, backend_pid FROM runner_locks "
            "WHERE project = %s",
            (self.project,),
        ).fetchone()
        return None if row is None else (LockInfo(*row[:6]), int(row[6]))

    def _release(self, info: LockInfo) -> None:
        """Drop the lock; if the connection is gone, so is the lock, with its session."""
        with contextlib.suppress(StateError), self._use() as conn:
            conn.execute(
                "DELETE FROM runner_locks WHERE project = %s AND lock_id = %s",
                (self.project, info.id),
            )
            conn.execute("SELECT pg_advisory_unlock(%s)", (self._key,))

    def force_unlock(self, lock_id: str) -> str:
        """Clear a dead holder's lock row. A live session keeps its lock: refuse, and say how."""
        with self._use() as conn:
            found = self._holder(conn)
            if found is None:
                raise LockError("the state is not locked")
            holder, backend_pid = found
            if holder.id != lock_id:
                raise LockError(f"lock {lock_id} is not the current lock ({holder.describe()})")
            if not self._try_lock(conn):
                raise LockError(_live_holder(lock_id, holder, backend_pid))
            conn.execute("DELETE FROM runner_locks WHERE project = %s", (self.project,))
            conn.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
        return f"lock {lock_id} removed (its holder had exited)"

    # writing -----------------------------------------------------------------------------------
    def ensure_created(self) -> State:
        """Give a new state its lineage on first write; return the current state."""
        with self._use() as conn, conn.transaction():
            state, _, last = self._read(conn)
            if not state.lineage:
                state.lineage = State.new().lineage
                self._snapshot(conn, state, last)
            return state

    def record(self, entry: Entry) -> None:
        """One INSERT, committed before returning (the caller holds the lock)."""
        self.record_all((entry,))

    def record_all(self, entries: Sequence[Entry]) -> None:
        """The records in one transaction: all durable when it returns, or none."""
        rows = []
        for entry in entries:
            data = entry_to_dict(entry)
            keys = (data.get("campaign"), data.get("request_id"))
            rows.append((self.project, entry.kind, *keys, Jsonb(data)))
        with self._use() as conn, conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO runner_records (project, kind, campaign, request_id, record) "
                "VALUES (%s, %s, %s, %s, %s)",
                rows,
            )

    def commit(self) -> State:
        """Fold the records into a new snapshot row, in one transaction."""
        with self._use() as conn, conn.transaction():
            state, through, last = self._read(conn)
            if last > through:
                self._snapshot(conn, state, last)
            return state

    def replace(self, state: State) -> None:
        """Make `state` the whole state, lineage and serial included (the caller holds the lock)."""
        with self._use() as conn, conn.transaction():
            _, _, last = self._read(conn)
            self._snapshot(conn, state, last)

    def _snapshot(self, conn: Connection, state: State, through: int) -> None:
        """A new snapshot holding every record up to `through`; keep the previous one as backup."""
        conn.execute(
            "INSERT INTO runner_snapshots (project, lineage, serial, through_seq, state) "
            "VALUES (%s, %s, %s, %s, %s)",
            (self.project, state.lineage, state.serial, through, dump_state(state).decode()),
        )
        conn.execute(
            "DELETE FROM runner_records WHERE project = %s AND seq <= %s", (self.project, through)
        )
        conn.execute(
            "DELETE FROM runner_snapshots WHERE project = %s AND id NOT IN (SELECT id FROM "
            "runner_snapshots WHERE project = %s ORDER BY id DESC LIMIT 2)",
            (self.project, self.project),
        )


def _live_holder(lock_id: str, holder: LockInfo, backend_pid: int) -> str:
    return (
        f"lock {lock_id} is held by a live process ({holder.describe()}); stop that process "
        f"first: its lock ends with its database session (backend pid {backend_pid}). If its "
        "machine is gone and the session lingers, a database administrator can end it with "
        f"`SELECT pg_terminate_backend({backend_pid})`"
    )
