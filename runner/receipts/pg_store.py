"""Receipts in the PostgreSQL state's database: an append-only table keyed by project.

A receipt is one row; a repeat of one hits the table's unique key and is dropped by
`ON CONFLICT DO NOTHING`, so any number of receivers may store the same receipt at once. A batch
is one INSERT from arrays (one round trip, one commit); the apply's advisory lock is never taken.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg

from runner.errors import StateError
from runner.receipts.model import Receipt, receipt_from_dict
from runner.state.pg_schema import migrate
from runner.state.postgres import HIDDEN, redact_url, url_secrets

_INSERT = """INSERT INTO runner_receipts (project, ticket, digest, status, delivery_date,
        call_duration, charged_duration, received)
    SELECT %s, t, d, s, dd, cd, ch, r FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[],
        %s::integer[], %s::integer[], %s::float8[]) WITH ORDINALITY AS u(t, d, s, dd, cd, ch, r, n)
    ORDER BY n
    ON CONFLICT DO NOTHING"""
_SELECT = """SELECT ticket, digest, status, delivery_date, call_duration, charged_duration,
        received FROM runner_receipts WHERE project = %s ORDER BY seq"""


def _has_table(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute("SELECT to_regclass('runner_receipts') IS NOT NULL").fetchone()
    return bool(row and row[0])


class PostgresReceipts:
    """One project's receipts in a database shared with other projects."""

    def __init__(self, url: str, project: str) -> None:
        self.url = url
        self.project = project
        self._mutex = threading.Lock()
        self._conn: psycopg.Connection[Any] | None = None

    def describe(self) -> str:
        return f"{redact_url(self.url)} (project {self.project})"

    def append(self, receipts: Sequence[Receipt]) -> int:
        """Store the receipts not stored yet; committed before returning how many were new."""
        if not receipts:  # connects all the same: a receiver learns at start if it cannot
            with self._mutex:
                try:
                    self._connection()
                except psycopg.Error as e:
                    raise self._error(e) from e
            return 0
        columns = [
            [r.ticket for r in receipts],
            [r.digest for r in receipts],
            [r.status for r in receipts],
            [r.delivery_date or "" for r in receipts],
            [r.call_duration for r in receipts],
            [r.charged_duration for r in receipts],
            [r.received for r in receipts],
        ]
        with self._mutex:
            try:
                cursor = self._connection().execute(_INSERT, (self.project, *columns))
            except psycopg.Error as e:
                raise self._error(e) from e
            return max(cursor.rowcount, 0)

    def read(self) -> Iterator[Receipt]:
        """Every receipt stored, in arrival order (rows are distinct by the table's key)."""
        with self._mutex:
            try:
                conn = self._connection()
                if not _has_table(conn):  # tables of an older runner, for a role that only reads
                    return
                rows = conn.execute(_SELECT, (self.project,)).fetchall()
            except psycopg.Error as e:
                raise self._error(e) from e
        for row in rows:
            yield self._receipt(row)

    def _receipt(self, row: tuple[Any, ...]) -> Receipt:
        fields = ("ticket", "digest", "status", "delivery_date")
        data = dict(zip(fields, row[:4], strict=True))
        data["delivery_date"] = data["delivery_date"] or None
        data.update(call_duration=row[4], charged_duration=row[5], received=row[6])
        try:
            return receipt_from_dict(data)
        except ValueError as e:
            raise StateError(f"receipts in {self.describe()}: a corrupt row ({e})") from e

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(
                self.url, autocommit=True, connect_timeout=10, application_name="runner-receipts"
            )
            try:
                migrate(conn, f"the database of {self.describe()}")
            except BaseException:
                conn.close()
                raise
            weakref.finalize(self, conn.close)
            self._conn = conn
        return self._conn

    def _error(self, error: psycopg.Error) -> StateError:
        text = " ".join(str(error).split()) or type(error).__name__
        for secret in url_secrets(self.url):
            text = text.replace(secret, HIDDEN)
        return StateError(f"receipts in {self.describe()}: {text}")

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
