"""A throwaway PostgreSQL server for the tests: initdb and pg_ctl in a temporary folder.

It listens on 127.0.0.1 only, on a free port, with a password (so every test that uses it also
checks that the password never shows). PostgreSQL refuses to run as root: as root, the server
runs as an unprivileged user (`nobody`, or `runner-pg`, created if need be) through `runuser`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

PASSWORD = "pg-Secret-4d1a9"  # distinctive, so a test can look for it in any output
SUPERUSER = "runner"
DATABASE = "runner"


def find_binaries() -> Path | None:
    """The folder holding initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/*/bin."""
    found = shutil.which("initdb")
    candidates = [str(Path(found).parent)] if found else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for folder in map(Path, candidates):
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


def system_tool(name: str) -> str:
    """runuser, useradd: in sbin, which a non-login PATH may lack."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    found = shutil.which(name, path=search)
    if found is None:
        raise RuntimeError(f"{name} not found: it is needed to run PostgreSQL as another user")
    return found


def unprivileged_user() -> str | None:
    """None when not root; otherwise a user PostgreSQL agrees to run as."""
    if os.geteuid() != 0:
        return None
    for name in ("nobody", "runner-pg"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        [system_tool("useradd"), "--system", "--no-create-home", "runner-pg"], check=True
    )
    return "runner-pg"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PostgresServer:
    """initdb, start, stop: one server for the whole test session."""

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.user = unprivileged_user()
        self.folder = Path(tempfile.mkdtemp(prefix="runner-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.binaries / tool), *args]
        if self.user:
            command = [system_tool("runuser"), "-u", self.user, "--", *command]
        done = subprocess.run(command, cwd=self.folder, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout}{done.stderr}")

    def start(self) -> PostgresServer:
        password_file = self.folder / "password"
        password_file.write_text(PASSWORD + "\n")
        if self.user:
            shutil.chown(self.folder, self.user)
            shutil.chown(password_file, self.user)
        self._run(
            "initdb",
            *("-D", str(self.data), "-U", SUPERUSER, f"--pwfile={password_file}"),
            *("--auth=scram-sha-256", "--encoding=UTF8", "--no-locale", "--no-sync"),
        )
        # fsync off: a throwaway server; durability against power loss is not what is tested
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off"
        log = str(self.folder / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")
        self.query(f'CREATE DATABASE "{DATABASE}"', database="postgres")
        return self

    def url(self, database: str = DATABASE, password: str = PASSWORD) -> str:
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{self.port}/{database}"

    def query(self, sql: str, *params: Any, database: str = DATABASE) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            cursor = conn.execute(sql, params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def create_database(self, name: str) -> str:
        self.query(f'CREATE DATABASE "{name}"', database="postgres")
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
