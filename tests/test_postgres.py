"""The PostgreSQL backend's own promises: selection, migrations, redaction, locks per project."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

import pytest
from backends import held_lock, query
from conftest import (
    API_ENV,
    BASIC_CONFIG,
    EmulatorProcess,
    ProjectDir,
    apply,
    us_numbers,
    write_campaign,
)
from pg import PASSWORD, PostgresServer

from runner.state.postgres import redact_url

pg_project = pytest.mark.parametrize("project", ["postgresql"], indirect=True)


def keyed(project: ProjectDir, key: str) -> None:
    project.write("runner.yaml", BASIC_CONFIG + f"project: {key}\n")
    project.key = key


def test_selected_by_state_option_or_environment(
    project: ProjectDir, postgres_server: PostgresServer
) -> None:
    keyed(project, f"opt-{uuid.uuid4().hex[:8]}")
    write_campaign(project, "alpha", "Alpha calling.", us_numbers(3))
    url = postgres_server.url()
    assert project.run("--state", url, "state", "accept", "alpha").code == 0
    listed = project.run("state", "list", env={"RUNNER_STATE": url})
    assert "alpha: 3 recipients reached" in listed.out
    assert project.run("state", "list").out.strip().endswith("nothing has been delivered yet.")
    assert [p.name for p in project.root.iterdir() if "state" in p.name] == []


def test_a_shared_state_needs_a_project_key(
    project: ProjectDir, postgres_server: PostgresServer
) -> None:
    write_campaign(project, "alpha", "Alpha calling.", us_numbers(3))
    validated = project.run("--state", postgres_server.url(), "validate")
    assert validated.code == 0, validated  # validate reads the files only, never the state
    for command in (("plan",), ("state", "list")):
        result = project.run("--state", postgres_server.url(), *command)
        assert result.code == 1, result
        assert result.err == (
            "runner: a postgresql:// state is shared: set `project:` in runner.yaml to this "
            "project's key in it (e.g. `project: acme-alerts`)\n"
        )


def test_without_psycopg_one_line_says_how_to_install(project: ProjectDir) -> None:
    keyed(project, "demo")
    blocked = "import sys; sys.modules['psycopg'] = None; from runner.cli import main; main()"
    url = "postgresql://u:hidden-pw@127.0.0.1:9/db"
    done = subprocess.run(
        [sys.executable, "-c", blocked, "-C", str(project.root), "--state", url, "state", "list"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr == (
        "runner: states in PostgreSQL need psycopg: pip install 'voice-campaign-runner[postgres]'\n"
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:s3cret@db:5432/x", "postgresql://u:***@db:5432/x"),
        ("postgres://u:p%40ss@db/x?sslmode=require", "postgres://u:***@db/x?sslmode=require"),
        ("postgresql://db/x?user=u&password=s3cret", "postgresql://u:***@db/x"),
        ("postgresql://u:p#a?ss@db/x", "postgresql://u:***@db/x"),  # libpq's reading
        ("host=db dbname=x password=s3cret", "postgresql://:***@db/x"),
        ("postgresql://u@db/x", "postgresql://u@db/x"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_the_password_is_never_printed(
    project: ProjectDir, postgres_server: PostgresServer
) -> None:
    keyed(project, "redacted")
    port = postgres_server.port
    wrong = postgres_server.url(password="Wrong-" + PASSWORD)
    cases = {
        wrong: "password authentication failed",
        f"postgresql://runner:{PASSWORD}@127.0.0.1:{socket_port()}/runner": "Connection refused",
        f"postgresql://runner@127.0.0.1:{port}/runner?password={PASSWORD}x": "password authen",
        postgres_server.url("no-such-database"): 'database "no-such-database" does not exist',
    }
    for url, expected in cases.items():
        for verbosity in ((), ("-vv",)):
            result = project.run(*verbosity, "--state", url, "state", "list")
            assert result.code == 1, result
            assert expected in result.err and "***" in result.err, result
            assert len(result.err.splitlines()) == 1 and "Traceback" not in result.err
            assert PASSWORD not in result.output  # also checked by ProjectDir.run
    pulled = project.run("--state", "none.json", "state", "pull", postgres_server.url())
    assert pulled.err == (
        f"runner: postgresql://runner:***@127.0.0.1:{port}/runner (project redacted) "
        "holds no state yet; there is nothing to copy\n"
    )


def socket_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def fresh_database(project: ProjectDir, server: PostgresServer) -> str:
    url = server.create_database(f"db_{uuid.uuid4().hex[:10]}")
    keyed(project, "fresh")
    project.write("runner.yaml", BASIC_CONFIG + f"project: fresh\nstate: {url}\n")
    project.state_url, project.backend = url, "postgresql"
    return url


def test_concurrent_first_commands_migrate_a_fresh_database_once(
    project: ProjectDir, postgres_server: PostgresServer
) -> None:
    fresh_database(project, postgres_server)
    command = [sys.executable, "-m", "runner", "-C", str(project.root), "state", "list"]
    processes = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    errors = [p.communicate(timeout=60)[1] for p in processes]
    assert [p.returncode for p in processes] == [0] * 4, errors
    versions = query(project, "SELECT version FROM runner_schema_version WHERE %s <> '' ORDER BY 1")
    assert versions == [(1,), (2,)]


def test_a_newer_schema_is_refused_and_untouched(
    project: ProjectDir, postgres_server: PostgresServer
) -> None:
    fresh_database(project, postgres_server)
    write_campaign(project, "alpha", "Alpha calling.", us_numbers(3))
    assert project.run("state", "accept", "alpha").code == 0
    query(project, "INSERT INTO runner_schema_version (version) SELECT 7 WHERE %s <> ''")
    before = query(project, "SELECT id, state FROM runner_snapshots WHERE project = %s")
    for command in (
        ("plan",),
        ("state", "list"),
        ("state", "forget", "alpha"),
        ("apply", "--auto-approve", "--api-url", "http://127.0.0.1:9/v1/public"),
    ):
        result = project.run(*command, env=API_ENV, stdin="")
        assert result.code == 1, command
        assert result.err.startswith("runner: the database of postgresql://runner:***@"), result
        assert "has tables of a newer runner (schema version 7; this runner knows up to 2); " in (
            result.err
        )
    assert query(project, "SELECT id, state FROM runner_snapshots WHERE project = %s") == before


@pg_project
def test_a_snapshot_of_a_newer_state_version_is_refused(project: ProjectDir) -> None:
    write_campaign(project, "alpha", "Alpha calling.", us_numbers(3))
    assert project.run("state", "accept", "alpha").code == 0
    query(project, "UPDATE runner_snapshots SET state = '{\"version\": 2}' WHERE project = %s")
    for command in (("plan",), ("state", "accept", "alpha")):
        result = project.run(*command)
        assert result.code == 1
        assert "was written by a newer runner (state version 2; this runner reads up to 1)" in (
            result.err
        )


@pg_project
def test_records_are_rows_folded_into_snapshots(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    write_campaign(project, "alpha", "Alpha calling.", us_numbers(3))
    write_campaign(project, "beta", "Beta calling.", us_numbers(2, start=3))
    refusing = emulators("--rate-429", "1", "--retry-after", "0")
    assert apply(project, refusing, "--concurrency", "1").code == 1
    for name in ("alpha", "beta"):  # each state command folds the records into a snapshot
        assert project.run("state", "resolve", name, "--not-sent").code == 0
    snapshots = query(
        project, "SELECT serial, state FROM runner_snapshots WHERE project = %s ORDER BY id"
    )
    assert [s[0] for s in snapshots] == [5, 6]  # 2 intents + 2 outcomes, 2 resolves: 2 kept
    assert json.loads(snapshots[-1][1])["serial"] == 6
    assert query(project, "SELECT count(*) FROM runner_records WHERE project = %s") == [(0,)]


@pg_project
def test_two_projects_in_one_database_do_not_block_each_other(
    project: ProjectDir, tmp_path_factory: pytest.TempPathFactory, emulator: EmulatorProcess
) -> None:
    """A lock held on one project never blocks another; each sees only its own state."""
    write_campaign(project, "alpha", "Alpha calling.", us_numbers(3))
    other = ProjectDir(tmp_path_factory.mktemp("other"))
    other.write("runner.yaml", BASIC_CONFIG + f"project: other-{project.key}\n")
    write_campaign(other, "alpha", "Alpha calling.", us_numbers(3))
    with held_lock(project) as (holder, lock_id):
        started = time.monotonic()
        result = other.run(
            "--state", str(project.state_url), "apply", "--auto-approve", "--api-url",
            emulator.url, env=API_ENV, stdin="",
        )  # fmt: skip
        assert result.code == 0, result
        assert time.monotonic() - started < 10
        blocked = apply(project, emulator)
        assert blocked.code == 1
        assert f"(pid {holder.pid}, test holder)" in blocked.err
        live = project.run("force-unlock", lock_id)
        assert live.code == 1
        assert re.search(r"SELECT pg_terminate_backend\(\d+\)", live.err), live
    assert len(emulator.sends()) == 1
    listed = other.run("--state", str(project.state_url), "state", "list").out
    assert "alpha: 3 recipients reached" in listed
    assert "nothing has been delivered yet" in project.run("state", "list").out


@pg_project
def test_four_concurrent_applies_end_exactly_once(
    project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    emulator = emulators("--latency", "0.2")
    numbers = us_numbers(1500)
    write_campaign(project, "storm", "Storm warning for tonight.", numbers)
    command = [sys.executable, "-m", "runner", "-C", str(project.root), "apply", "--auto-approve"]
    command += ["--concurrency", "1", "--api-url", emulator.url]
    env = {**API_ENV, "NO_COLOR": "1"}
    processes = [
        subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    pids = {p.pid for p in processes}
    codes = [p.returncode for p in processes]
    assert 0 in codes, outputs
    for process, (_, err) in zip(processes, outputs, strict=True):
        if process.returncode != 0:
            holder = re.search(r"the state is locked: held by \S+ \(pid (\d+), apply\)", err)
            assert holder, err
            assert int(holder.group(1)) in pids - {process.pid}
    assert codes.count(1) >= 1, outputs  # they did overlap
    pairs = emulator.pairs()
    assert set(pairs) == {("Storm warning for tonight.", n) for n in numbers}
    assert set(pairs.values()) == {1}
    again = apply(project, emulator)
    assert again.code == 0 and "No changes" in again.out
    assert len(emulator.sends()) == 3
