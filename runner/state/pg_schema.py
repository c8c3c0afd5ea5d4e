"""The PostgreSQL backend's tables, and the versioned migrations that create them.

Migrations run in one transaction, serialized across processes by a transaction-level advisory
lock. A database whose schema is newer than this runner knows is refused, never touched.
"""

from __future__ import annotations

import hashlib
from typing import LiteralString, cast

import psycopg

from runner.errors import StateError

MIGRATIONS: tuple[tuple[LiteralString, ...], ...] = (
    (  # 1: snapshots, records (intents, outcomes, ...) and lock holders, keyed by project
        """CREATE TABLE runner_snapshots (
            id bigserial PRIMARY KEY,
            project text NOT NULL,
            lineage text NOT NULL,
            serial bigint NOT NULL,
            through_seq bigint NOT NULL,
            state text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now())""",
        "CREATE INDEX runner_snapshots_by_project ON runner_snapshots (project, id)",
        """CREATE TABLE runner_records (
            seq bigserial PRIMARY KEY,
            project text NOT NULL,
            kind text NOT NULL,
            campaign text,
            request_id text,
            record jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now())""",
        "CREATE INDEX runner_records_by_project ON runner_records (project, seq)",
        """CREATE TABLE runner_locks (
            project text PRIMARY KEY,
            lock_id text NOT NULL,
            holder text NOT NULL,
            host text NOT NULL,
            pid integer NOT NULL,
            time double precision NOT NULL,
            operation text NOT NULL,
            backend_pid integer NOT NULL)""",
    ),
    (  # 2: delivery receipts, append-only, one row per distinct receipt (runner.receipts)
        """CREATE TABLE runner_receipts (
            seq bigserial PRIMARY KEY,
            project text NOT NULL,
            ticket text NOT NULL,
            digest text NOT NULL,
            status text NOT NULL,
            delivery_date text NOT NULL,
            call_duration integer,
            charged_duration integer,
            received double precision NOT NULL,
            UNIQUE (project, ticket, digest, status, delivery_date))""",
        "CREATE INDEX runner_receipts_by_project ON runner_receipts (project, seq)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
VERSION_TABLE = """CREATE TABLE IF NOT EXISTS runner_schema_version (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now())"""


def lock_key(name: str) -> int:
    """A signed 64-bit advisory lock key: one per project, so projects never block each other."""
    return int.from_bytes(hashlib.sha256(f"runner:{name}".encode()).digest()[:8], signed=True)


MIGRATION_LOCK = lock_key("schema migration")


def schema_version(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    row = conn.execute("SELECT to_regclass('runner_schema_version') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    found = conn.execute("SELECT coalesce(max(version), 0) FROM runner_schema_version").fetchone()
    return int(cast(int, found[0])) if found else 0


def refuse_newer(version: int, where: str) -> None:
    if version > SCHEMA_VERSION:
        raise StateError(
            f"{where} has tables of a newer runner (schema version {version}; this runner "
            f"knows up to {SCHEMA_VERSION}); upgrade runner to use it"
        )


def migrate(conn: psycopg.Connection[tuple[object, ...]], where: str) -> None:
    """Bring the tables up to this runner's version; a current schema costs one query."""
    version = schema_version(conn)
    refuse_newer(version, where)
    if version == SCHEMA_VERSION:
        return  # also lets a role that may not create tables read and write
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(VERSION_TABLE)
            version = schema_version(conn)  # another process may have migrated meanwhile
            refuse_newer(version, where)
            for number in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[number - 1]:
                    conn.execute(statement)
                conn.execute("INSERT INTO runner_schema_version (version) VALUES (%s)", (number,))
    except psycopg.errors.InsufficientPrivilege:
        if version == 0:
            raise
        # A role that may not create tables (a plan's read-only one) keeps using the state's
        # tables as they are; a role that may creates the newer ones (receipts) when it runs.
