"""The receipts file beside a local state: append-only, idempotent, shared by many writers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from backends import held_lock, query
from conftest import ProjectDir, us_numbers, write_campaign
from pg import PASSWORD, PostgresServer

from runner.errors import StateError
from runner.receipts.model import Receipt
from runner.receipts.store import FileReceipts, open_receipts
from runner.recipients import digest_number


def receipt(index: int, status: str = "DELIVERED") -> Receipt:
    digest = digest_number(f"+1202555{index:04d}")
    return Receipt(f"voice_{index // 100}", digest, status, "2026-11-04 11:11:45", 12, 30, 1.5)


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def test_beside_a_local_state_wherever_the_state_is(tmp_path: Path) -> None:
    store = open_receipts("states/prod.json", tmp_path)
    assert store.describe() == str(tmp_path.resolve() / "states" / "prod.json.receipts")
    assert store.append([receipt(1)]) == 1
    assert (tmp_path / "states" / "prod.json.receipts").exists()
    absolute = tmp_path / "elsewhere.json"
    assert open_receipts(str(absolute), tmp_path / "project").describe() == f"{absolute}.receipts"


def test_the_same_receipt_twice_changes_nothing(tmp_path: Path) -> None:
    store = open_receipts("runner.state.json", tmp_path)
    assert store.append([receipt(1), receipt(2), receipt(1)]) == 2
    before = (tmp_path / "runner.state.json.receipts").read_bytes()
    assert store.append([receipt(2), receipt(1)]) == 0
    again = open_receipts("runner.state.json", tmp_path)  # another process, as it were
    assert again.append([receipt(1)]) == 0
    assert (tmp_path / "runner.state.json.receipts").read_bytes() == before
    assert store.append([receipt(1, "BUSY")]) == 1  # a new status is a new receipt
    assert [(r.digest, r.status) for r in again.read()] == [
        (receipt(1).digest, "DELIVERED"),
        (receipt(2).digest, "DELIVERED"),
        (receipt(1).digest, "BUSY"),
    ]
    assert next(iter(again.read())) == receipt(1)


def test_a_torn_last_line_is_skipped_and_the_next_writer_starts_a_new_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runner.state.json.receipts"
    FileReceipts(path).append([receipt(1)])
    with path.open("ab") as f:
        f.write(b'{"ticket":"voice_0","dig')  # a writer killed mid-line
    assert [r.digest for r in FileReceipts(path).read()] == [receipt(1).digest]
    assert FileReceipts(path).append([receipt(2)]) == 1
    assert [r.digest for r in FileReceipts(path).read()] == [receipt(1).digest, receipt(2).digest]
    assert len(lines(path)) == 3 and json.loads(lines(path)[2])["digest"] == receipt(2).digest


def test_a_corrupt_whole_line_is_an_error_not_a_silent_loss(tmp_path: Path) -> None:
    path = tmp_path / "x.receipts"
    path.write_bytes(b'{"ticket": 1}\n')
    with pytest.raises(StateError, match=r"x.receipts: corrupt receipt in the line ending at"):
        list(FileReceipts(path).read())


def test_a_symlink_is_never_written_through(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("keep\n")
    os.symlink(target, tmp_path / "runner.state.json.receipts")
    with pytest.raises(StateError, match="is a symbolic link"):
        open_receipts("runner.state.json", tmp_path).append([receipt(1)])
    with pytest.raises(StateError, match="is a symbolic link"):
        list(open_receipts("runner.state.json", tmp_path).read())
    assert target.read_text() == "keep\n"


WRITER = textwrap.dedent(
    """
    import sys
    from runner.receipts.model import Receipt
    from runner.receipts.store import FileReceipts
    from runner.recipients import digest_number
    store = FileReceipts(__import__("pathlib").Path(sys.argv[1]))
    new = 0
    for start in range(0, 2000, 20):
        batch = [
            Receipt(f"voice_{i // 100}", digest_number(f"+1202555{i:04d}"), "DELIVERED",
                    None, None, None, 1.0)
            for i in range(start, start + 20)
        ]
        new += store.append(batch)
    print(new)
    """
)


def test_writers_in_several_processes_tear_and_repeat_nothing(tmp_path: Path) -> None:
    path = tmp_path / "runner.state.json.receipts"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE)
        for _ in range(3)
    ]
    counts = [int(w.communicate(timeout=120)[0]) for w in writers]
    assert sum(counts) == 2000  # each receipt stored by exactly one of them
    stored = [json.loads(line) for line in lines(path)]
    assert len(stored) == 2000
    assert {s["digest"] for s in stored} == {digest_number(f"+1202555{i:04d}") for i in range(2000)}


pg_project = pytest.mark.parametrize("project", ["postgresql"], indirect=True)


@pg_project
def test_postgresql_keeps_each_receipt_once_per_project(
    project: ProjectDir, postgres_server: PostgresServer
) -> None:
    assert project.state_url and project.key
    store = open_receipts(project.state_url, project.root, project.key)
    other = open_receipts(project.state_url, project.root, project.key + "-other")
    assert store.append([receipt(1), receipt(2), receipt(1)]) == 2
    assert store.append([receipt(2), receipt(3)]) == 1
    assert open_receipts(project.state_url, project.root, project.key).append([receipt(3)]) == 0
    assert other.append([receipt(1)]) == 1  # another project's receipt of the same call
    undated = Receipt("voice_9", receipt(4).digest, "BUSY", None, None, None, 2.0)
    assert store.append([undated, undated]) == 1 and store.append([undated]) == 0
    assert list(store.read()) == [receipt(1), receipt(2), receipt(3), undated]
    assert list(other.read()) == [receipt(1)]
    rows = query(project, "SELECT count(*) FROM runner_receipts WHERE project = %s")
    assert rows == [(4,)]


@pg_project
def test_postgresql_receipts_take_no_state_lock(
    project: ProjectDir, postgres_server: PostgresServer
) -> None:
    assert project.state_url and project.key
    write_campaign(project, "alpha", "Alpha calling.", us_numbers(1))
    assert project.run("state", "accept", "alpha").code == 0
    with held_lock(project):
        store = open_receipts(project.state_url, project.root, project.key)
        assert store.append([receipt(1)]) == 1


def test_postgresql_needs_a_project_key(tmp_path: Path) -> None:
    with pytest.raises(StateError, match=r"set `project:` in runner\.yaml"):
        open_receipts("postgresql://runner@127.0.0.1:9/runner", tmp_path)


FULL_DISK = textwrap.dedent(
    """
    import os, resource, sys
    from pathlib import Path
    from runner.errors import StateError
    from runner.receipts.model import Receipt
    from runner.receipts.store import FileReceipts
    from runner.recipients import digest_number
    path = Path(sys.argv[1])
    batch = [
        Receipt("voice_1", digest_number(f"+1202555{i:04d}"), "BUSY", None, None, None, 1.0)
        for i in range(20)
    ]
    store = FileReceipts(path)
    store.append(batch[:1])
    resource.setrlimit(resource.RLIMIT_FSIZE, (path.stat().st_size + 300, resource.RLIM_INFINITY))
    try:
        store.append(batch)
    except StateError as e:
        print("refused:", e)
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    print("stored:", store.append(batch))
    """
)


def test_a_write_the_disk_refuses_is_taken_back_and_stored_next_time(tmp_path: Path) -> None:
    path = tmp_path / "runner.state.json.receipts"
    result = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(path)], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines() == [
        f"refused: cannot write receipts {path}: the disk is full; free some space",
        "stored: 19",
    ]
    stored = [json.loads(line) for line in lines(path)]  # no half line left by the refusal
    assert len(stored) == len({s["digest"] for s in stored}) == 20


@pg_project
def test_a_read_only_role_keeps_working_on_tables_of_the_runner_before_receipts(
    project: ProjectDir, postgres_server: PostgresServer
) -> None:
    """After an upgrade, a pull request's plan (SELECT only) runs before any apply migrates."""
    import uuid

    import psycopg

    from runner.state.pg_schema import MIGRATIONS, VERSION_TABLE

    name, reader = f"db_{uuid.uuid4().hex[:10]}", f"ro_{uuid.uuid4().hex[:8]}"
    owner = postgres_server.create_database(name)
    with psycopg.connect(owner, autocommit=True) as conn:  # what the previous runner made
        for statement in (VERSION_TABLE, *MIGRATIONS[0]):
            conn.execute(statement)
        conn.execute("INSERT INTO runner_schema_version (version) VALUES (1)")
        tables = "runner_schema_version, runner_snapshots, runner_records, runner_locks"
        for grant in (
            f"CREATE ROLE {reader} LOGIN PASSWORD '{PASSWORD}'",
            f"GRANT CONNECT ON DATABASE {name} TO {reader}",
            f"GRANT SELECT ON {tables} TO {reader}",
        ):
            conn.execute(grant)  # type: ignore[arg-type]
    read_only = owner.replace("runner:", f"{reader}:", 1)
    write_campaign(project, "alpha", "Alpha calling.", us_numbers(2))
    result = project.run("--state", read_only, "plan")
    assert result.code == 0, result
    assert list(open_receipts(read_only, project.root, "p").read()) == []
    assert project.run("--state", owner, "state", "list").code == 0  # the owner upgrades them
    assert open_receipts(owner, project.root, "p").append([receipt(1)]) == 1


def test_a_file_moved_away_while_a_writer_runs_is_started_again(tmp_path: Path) -> None:
    path = tmp_path / "runner.state.json.receipts"
    store = FileReceipts(path)
    assert store.append([receipt(1)]) == 1
    path.rename(tmp_path / "archived.receipts")
    assert store.append([receipt(1), receipt(2)]) == 2  # into a new file at the path
    assert [r.digest for r in FileReceipts(path).read()] == [receipt(1).digest, receipt(2).digest]


@pytest.mark.parametrize("received", ["NaN", "Infinity", "true"])
def test_a_stored_receipt_received_not_a_finite_number_is_refused(
    tmp_path: Path, received: str
) -> None:
    path = tmp_path / "x.receipts"
    FileReceipts(path).append([receipt(1)])
    line = json.loads(lines(path)[0])
    crafted = json.dumps(line).replace('"received": 1.5', f'"received": {received}')
    path.write_text(crafted + "\n")
    with pytest.raises(StateError, match=r"x.receipts: corrupt receipt in the line ending at"):
        list(FileReceipts(path).read())
