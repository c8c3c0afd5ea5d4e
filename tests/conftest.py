"""Shared fixtures: real project folders in tmp_path, driven through the real CLI."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from pg import DATABASE, PASSWORD, PostgresServer, find_binaries

REPO = Path(__file__).resolve().parent.parent


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def output(self) -> str:
        return self.out + self.err

    def __repr__(self) -> str:
        return f"Result(code={self.code}, out={self.out!r}, err={self.err!r})"


def run_cli(
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    stdin: str | None = None,
) -> Result:
    """Run `python -m runner ARGS` in a subprocess, as a user would."""
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def run_bounded(project: ProjectDir, *args: str) -> Result:
    """The real command with 2 GiB of address space: a regression fails, the host lives."""

    def limit() -> None:  # pragma: no cover - runs in the child
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    proc = subprocess.run(
        [sys.executable, "-m", "runner", "-C", str(project.root), *args],
        env={**os.environ, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


class ProjectDir:
    """A throwaway runner project: write files, run commands in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.backend = "local"
        self.state_url: str | None = None  # with the postgresql backend
        self.key: str | None = None  # runner.yaml `project:`
        (root / "campaigns").mkdir(parents=True, exist_ok=True)

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    def run(self, *args: str, **kwargs: object) -> Result:
        result = run_cli("-C", str(self.root), *args, **kwargs)  # type: ignore[arg-type]
        assert PASSWORD not in result.output, result  # the database password is never shown
        return result


BASIC_CONFIG = """
default_region: US
defaults:
  purpose: alert
  voice_gender: female
  voice_language: en-US
"""


@pytest.fixture
def project(request: pytest.FixtureRequest, tmp_path: Path) -> ProjectDir:
    """A project on the local state, or on PostgreSQL with `both_backends` (its own key)."""
    p = ProjectDir(tmp_path / "proj")
    p.backend = getattr(request, "param", "local")
    config = BASIC_CONFIG
    if p.backend == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        p.state_url, p.key = server.url(DATABASE), f"t-{uuid.uuid4().hex[:12]}"
        config += f"project: {p.key}\nstate: {p.state_url}\n"
    p.write("runner.yaml", config)
    return p


both_backends = pytest.mark.parametrize("project", ["local", "postgresql"], indirect=True)


def fail_or_skip(reason: str) -> None:
    """Without PostgreSQL a developer's run skips; a CI run (CI set) must fail instead."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: PostgreSQL tests must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server for the whole session, stopped at the end."""
    binaries = find_binaries()
    if binaries is None:
        fail_or_skip("PostgreSQL's initdb/pg_ctl are not installed")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        fail_or_skip("psycopg is not installed: pip install -e '.[test]'")
    assert binaries is not None
    server = PostgresServer(binaries)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def cli() -> Callable[..., Result]:
    return run_cli


API_ENV = {"OCTOPUSH_API_LOGIN": "test-login", "OCTOPUSH_API_KEY": "test-key"}
NPAS = [
    npa
    for npa in range(201, 400)
    if phonenumbers.is_valid_number(phonenumbers.parse(f"+1{npa}5550100"))
]


def us_numbers(count: int, start: int = 0) -> list[str]:
    """Fictional US numbers, +1 NPA 555 01XX, in a fixed order."""
    return [f"+1{NPAS[i // 100]}55501{i % 100:02d}" for i in range(start, start + count)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class EmulatorProcess:
    """`runner emulator` in its own process, recording accepted sends as JSON lines."""

    def __init__(self, folder: Path, options: tuple[str, ...], seed: int) -> None:
        self.port = free_port()
        self.record = folder / f"sends-{self.port}.jsonl"
        self.url = f"http://127.0.0.1:{self.port}/v1/public"
        command = [sys.executable, "-m", "runner", "emulator", "--port", str(self.port)]
        command += ["--record", str(self.record), "--seed", str(seed), *options]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "the emulator exited at start"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise AssertionError("the emulator did not start listening")

    def lines(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        text = self.record.read_text(encoding="utf-8")
        # While the emulator runs, its last line may be half written: read whole lines only.
        whole = text[: text.rfind("\n") + 1]
        return [json.loads(line) for line in whole.splitlines() if line.strip()]

    def sends(self) -> list[dict[str, Any]]:
        """Every accepted send, booked ones included (cancelled or not)."""
        return [line for line in self.lines() if "cancelled" not in line]

    def cancelled(self) -> set[str]:
        return {line["cancelled"] for line in self.lines() if "cancelled" in line}

    def calls(self) -> Counter[tuple[str, str]]:
        """(text, number) of the calls that will really happen: bookings not cancelled."""
        gone = self.cancelled()
        return Counter(
            (s["text"], n)
            for s in self.sends()
            if s["ticket_number"] not in gone
            for n in s["recipients"]
        )

    def pairs(self) -> Counter[tuple[str, str]]:
        return Counter((s["text"], n) for s in self.sends() for n in s["recipients"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@pytest.fixture
def emulators(tmp_path: Path) -> Iterator[Callable[..., EmulatorProcess]]:
    started: list[EmulatorProcess] = []

    def start(*options: str, seed: int = 7) -> EmulatorProcess:
        emulator = EmulatorProcess(tmp_path, options, seed)
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def emulator(emulators: Callable[..., EmulatorProcess]) -> EmulatorProcess:
    return emulators()


def apply(project: ProjectDir, emulator: EmulatorProcess, *args: str) -> Result:
    """`runner apply --auto-approve` against `emulator`, with test credentials, no terminal."""
    return project.run(
        "apply", "--auto-approve", "--api-url", emulator.url, *args, env=API_ENV, stdin=""
    )


def write_campaign(project: ProjectDir, name: str, text: str, numbers: list[str]) -> None:
    """A campaign file; long recipient lists go to a CSV file beside it."""
    if len(numbers) > 20:
        csv = "phone_number\n" + "".join(f"{n}\n" for n in numbers)
        project.write(f"contacts/{name}.csv", csv)
        recipients = f"  - file: contacts/{name}.csv\n"
    else:
        recipients = "".join(f'  - "{n}"\n' for n in numbers)
    head = f"name: {name}\ntext: {json.dumps(text)}\nrecipients:\n"
    project.write(f"campaigns/{name}.yaml", head + recipients)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The guarantee figures (trials, faults, duplicates, losses, inputs fuzzed) of this run."""
    import figures

    if figures.FIGURES:
        terminalreporter.write_line(f"guarantee figures: {figures.summary()}")
        figures.save()
