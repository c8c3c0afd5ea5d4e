"""Secrets redacted by value: what a server echoes back, and libpq's reading of a database URL.

A server (or a proxy in front of it) that echoes the key and login in its error message, its
headers or its ticket must not get them printed by apply (text, json, -vv) nor written to the
state. A PostgreSQL password with an unencoded `#` or `?`, which libpq accepts, must not show
in `state push/pull` nor in connection errors.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import ProjectDir, free_port, write_campaign
from pg import SUPERUSER, PostgresServer

KEY, LOGIN = "key-" + secrets.token_hex(16), "login-" + secrets.token_hex(6)
ENV = {"OCTOPUSH_API_KEY": KEY, "OCTOPUSH_API_LOGIN": LOGIN}


class Echo(BaseHTTPRequestHandler):
    """Answers every send with the caller's own credentials, in body, headers and ticket."""

    status = 400

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        key, login = self.headers["api-key"], self.headers["api-login"]
        if self.server.accept:  # type: ignore[attr-defined]
            body = {"ticket_number": key, "number_of_contacts": 1, "total_cost": 0.05}
        else:
            body = {"code": 101, "message": f"bad pair {login}/{key}", "errors": [
                {"code": 999, "message": f"key {key} refused for {login}"}]}  # fmt: skip
        data = json.dumps(body).encode()
        self.send_response(201 if self.server.accept else 400)  # type: ignore[attr-defined]
        self.send_header("X-Echo", f"{login}:{key}")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=[False, True], ids=["refused", "accepted"])
def echo_url(request: pytest.FixtureRequest) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Echo)
    server.accept = request.param  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1/public"
    server.shutdown()
    server.server_close()


def files_holding(folder: Path, *values: str) -> list[str]:
    return [
        str(p)
        for p in folder.rglob("*")
        if p.is_file() and any(v.encode() in p.read_bytes() for v in values)
    ]


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_credentials_echoed_by_the_server_are_redacted(
    project: ProjectDir, echo_url: str, fmt: str
) -> None:
    write_campaign(project, "notice", "Hi.", ["+12025550143"])
    result = project.run(
        "-vv", "apply", "--auto-approve", "--format", fmt, "--api-url", echo_url, env=ENV
    )
    assert result.code in (0, 1), result
    assert KEY not in result.output and LOGIN not in result.output, result
    assert "***" in result.output  # the message (or the header in the log) is kept, redacted
    assert files_holding(project.root, KEY, LOGIN) == []  # the ticket in the state included
    shown = project.run("state", "show", "notice")
    assert KEY not in shown.output


HOSTILE_PASSWORD = "pw#Leak?Tail-9c1"
PIECES = ("pw#Leak", "Leak", "Tail-9c1", HOSTILE_PASSWORD)


def test_a_password_with_hash_or_question_mark_never_shows_in_errors(project: ProjectDir) -> None:
    project.write("runner.yaml", "project: acme\n")
    url = f"postgresql://{SUPERUSER}:{HOSTILE_PASSWORD}@127.0.0.1:{free_port()}/runner"
    for command in (("state", "list"), ("state", "push", url), ("plan", "--format", "json")):
        state = () if command[1] == "push" else ("--state", url)
        result = project.run(*state, *command)
        assert result.code == 1, result
        assert not [p for p in PIECES if p in result.output], result
        assert f"postgresql://{SUPERUSER}:***@127.0.0.1:" in result.err, result


def test_push_and_pull_with_such_a_password_show_it_hidden(
    project: ProjectDir, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    role = f"r{secrets.token_hex(4)}"
    postgres_server.query(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{HOSTILE_PASSWORD}'")
    url = f"postgresql://{role}:{HOSTILE_PASSWORD}@127.0.0.1:{postgres_server.port}/runner"
    project.write("runner.yaml", f"project: p{role}\n")
    (project.root / "runner.state.json").write_text(
        json.dumps({"campaigns": {}, "lineage": "l-1", "serial": 1, "version": 1})
    )
    for command in ("push", "pull"):
        result = project.run("state", command, url, "--force")
        assert result.code == 0, result
        assert not [p for p in PIECES if p in result.output], result
        shown = f"postgresql://{role}:***@127.0.0.1:{postgres_server.port}/runner"
        assert shown in result.out if command == "push" else "already holds" in result.out
