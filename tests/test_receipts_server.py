"""`runner receipts serve` as the provider meets it: real requests to a real process."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from backends import query
from conftest import ProjectDir, us_numbers
from pg import PASSWORD, PostgresServer
from receiver import JSON, TOKEN, ReceiverProcess

from runner.recipients import digest_number

NUMBERS = us_numbers(40)
RECEIPTS = "runner.state.json.receipts"
FORM = "application/x-www-form-urlencoded"


def old_shape(i: int, status: str = "DELIVERED") -> dict[str, Any]:
    return {
        "message_id": f"voice_{i // 10:04d}",
        "number": NUMBERS[i % 40],
        "status": status,
        "delivery_date": "2026-11-04 11:11:45",
        "call_duration": "12",
        "charged_duration": "30",
    }


def new_shape(i: int, status: str = "BUSY") -> dict[str, Any]:
    body = {k: v for k, v in old_shape(i, status).items() if not k.endswith("duration")}
    return {
        **body,
        "channel": "voice_sms",
        "meta_data": {"call_duration": 0, "charged_duration": 0},
    }


def form(body: dict[str, Any]) -> str:
    meta = {f"meta_data[{k}]": v for k, v in body.get("meta_data", {}).items()}
    return urlencode({**{k: v for k, v in body.items() if k != "meta_data"}, **meta})


def stored(project: ProjectDir) -> list[dict[str, Any]]:
    """The receipts file as a user would read it: every line must be whole JSON."""
    path = project.root / RECEIPTS
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def receivers(project: ProjectDir) -> Iterator[Callable[..., ReceiverProcess]]:
    started: list[ReceiverProcess] = []

    def start(*options: str, **kwargs: Any) -> ReceiverProcess:
        started.append(ReceiverProcess(project.root, *options, **kwargs))
        return started[-1]

    yield start
    for receiver in started:
        receiver.stop(signal.SIGKILL)
    for receiver in started:  # the secret and the numbers never reach the service's log
        assert TOKEN not in receiver.log() and PASSWORD not in receiver.log()
        assert not [n for n in NUMBERS if n[2:] in receiver.log()]


def test_json_and_form_in_both_shapes_are_stored(
    project: ProjectDir, receivers: Callable[..., ReceiverProcess]
) -> None:
    receiver = receivers()
    answers = [
        receiver.post(old_shape(0)),
        receiver.post(form(old_shape(1))),
        receiver.post(new_shape(2)),
        receiver.post(form(new_shape(3))),
    ]
    assert [a.status_code for a in answers] == [200] * 4
    assert [(s["digest"], s["status"], s["call_duration"]) for s in stored(project)] == [
        (digest_number(NUMBERS[0]), "DELIVERED", 12),
        (digest_number(NUMBERS[1]), "DELIVERED", 12),
        (digest_number(NUMBERS[2]), "BUSY", 0),
        (digest_number(NUMBERS[3]), "BUSY", 0),
    ]
    assert NUMBERS[0][2:] not in (project.root / RECEIPTS).read_text()


def test_a_receipt_sent_again_is_stored_once(
    project: ProjectDir, receivers: Callable[..., ReceiverProcess]
) -> None:
    receiver = receivers()
    for body in (old_shape(0), form(old_shape(0)), old_shape(0), new_shape(0, "DELIVERED")):
        assert receiver.post(body).status_code == 200
    assert receiver.post(old_shape(0, "BUSY")).status_code == 200  # another status: another one
    assert [s["status"] for s in stored(project)] == ["DELIVERED", "BUSY"]


def test_a_wrong_token_or_another_path_is_404_and_stores_nothing(
    project: ProjectDir, receivers: Callable[..., ReceiverProcess]
) -> None:
    receiver = receivers()
    for path in (
        "/receipts/wrong",
        f"/receipts/{TOKEN[:-1]}",
        f"/receipts/{TOKEN}x",
        f"/receipts/{TOKEN}/",
        f"/receipts/{TOKEN}/more",
        f"/{TOKEN}",
        "/receipts/",
        "/",
        "/health/x",
    ):
        answer = receiver.post(old_shape(0), path=path)
        assert answer.status_code == 404, path
        assert TOKEN not in answer.text
    assert requests.get(receiver.url, timeout=5).status_code == 405  # right token, not a POST
    assert stored(project) == []


@pytest.mark.parametrize(
    ("body", "kind", "problem"),
    [
        (b"{not json", "application/json", "body: not valid JSON"),
        (b"[]", "application/json", "body: not a JSON object"),
        (b"[" * 15_000, "application/json", "body: not valid JSON"),  # nested past the limit
        (json.dumps({**old_shape(0), "status": "MAY BE"}).encode(), "application/json", "status:"),
        (json.dumps({**old_shape(0), "number": "+1555"}).encode(), "application/json", "number:"),
        (urlencode({**old_shape(0), "message_id": ""}).encode(), FORM, "message_id: missing"),
        (b"<receipt/>", "application/xml", "Content-Type: 'application/xml'"),
    ],
)  # fmt: skip
def test_a_malformed_body_is_400_and_stores_nothing(
    project: ProjectDir,
    receivers: Callable[..., ReceiverProcess],
    body: bytes,
    kind: str,
    problem: str,
) -> None:
    receiver = receivers()
    answer = requests.post(receiver.url, data=body, headers={"Content-Type": kind}, timeout=5)
    assert answer.status_code == 400 and answer.text.startswith(problem), answer.text
    assert stored(project) == []
    assert f"receipt refused (400): {problem}" in receiver.log()
    assert "Traceback" not in receiver.log()


def test_a_body_past_the_bound_is_refused_unread(
    project: ProjectDir, receivers: Callable[..., ReceiverProcess]
) -> None:
    receiver = receivers()
    huge = json.dumps({**old_shape(0), "padding": "x" * 100_000})
    assert requests.post(receiver.url, data=huge, headers=JSON, timeout=5).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the bound holds on the stream too
        yield from (b"x" * 8192 for _ in range(10))

    answer = requests.post(receiver.url, data=chunks(), headers=JSON, timeout=5)
    assert answer.status_code == 413
    assert stored(project) == []


def test_health_needs_no_token_and_says_nothing_secret(
    project: ProjectDir, receivers: Callable[..., ReceiverProcess]
) -> None:
    receiver = receivers()
    answer = requests.get(f"{receiver.base}/health", timeout=5)
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}
    assert "server" not in {k.lower() for k in answer.headers}


def test_no_token_or_a_short_one_refuses_to_start(project: ProjectDir) -> None:
    for token in ("", "short-token"):
        result = project.run("receipts", "serve", env={"RUNNER_RECEIPTS_TOKEN": token})
        assert result.code == 1 and len(result.err.splitlines()) == 1, result
        assert "RUNNER_RECEIPTS_TOKEN" in result.err and "secrets.token_urlsafe" in result.err
        assert "short-token" not in result.err


def test_without_the_extra_one_line_says_what_to_install(
    project: ProjectDir, tmp_path: Path
) -> None:
    blocked = tmp_path / "blocked"
    (blocked / "starlette").mkdir(parents=True)
    (blocked / "starlette" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'starlette'\", name='starlette')\n"
    )
    env = {"PYTHONPATH": str(blocked), "RUNNER_RECEIPTS_TOKEN": TOKEN}
    result = project.run("receipts", "serve", env=env)
    assert result.code == 1
    assert result.err == (
        "runner: the receipts receiver needs its extra: "
        "pip install 'voice-campaign-runner[receipts]'\n"
    )


def provider(receiver: ReceiverProcess, bodies: list[Any], answers: list[int]) -> None:
    """Posts each receipt until it is answered 200, as the provider retries a failed hook."""
    for body in bodies:
        for _ in range(500):
            try:
                code = receiver.post(body).status_code
            except requests.ConnectionError:
                code = 0
            if code == 200:
                answers.append(code)
                break
            time.sleep(0.02)


def test_a_receiver_killed_and_restarted_mid_stream_loses_nothing(
    project: ProjectDir, receivers: Callable[..., ReceiverProcess]
) -> None:
    receiver = receivers()
    bodies = [old_shape(i) if i % 2 else form(new_shape(i)) for i in range(400)]
    answers: list[int] = []
    sender = threading.Thread(target=provider, args=(receiver, bodies, answers))
    sender.start()
    while len(answers) < 150:
        time.sleep(0.01)
    receiver.stop(signal.SIGKILL)  # mid-stream, requests in flight
    receiver.start()
    sender.join(timeout=120)
    assert len(answers) == 400
    keys = [(s["ticket"], s["digest"], s["status"]) for s in stored(project)]
    assert len(keys) == len(set(keys)) == 400


def test_two_receivers_on_one_file_tear_and_lose_nothing(
    project: ProjectDir, receivers: Callable[..., ReceiverProcess]
) -> None:
    first, second = receivers(), receivers()
    bodies = [old_shape(i) for i in range(300)]  # both get every receipt, as after a failover
    senders = [
        threading.Thread(target=provider, args=(receiver, part, []))
        for receiver in (first, second)
        for part in (bodies[0::2], bodies[1::2])
    ]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(timeout=120)
    keys = [(s["ticket"], s["digest"]) for s in stored(project)]  # every line whole JSON
    assert len(keys) == len(set(keys)) == 300


pg_project = pytest.mark.parametrize("project", ["postgresql"], indirect=True)


@pg_project
def test_postgresql_stores_each_receipt_once(
    project: ProjectDir, receivers: Callable[..., ReceiverProcess], postgres_server: PostgresServer
) -> None:
    first, second = receivers(), receivers()
    for body in (old_shape(0), form(old_shape(0)), new_shape(1), form(new_shape(1))):
        assert first.post(body).status_code == 200
        assert second.post(body).status_code == 200
    rows = query(
        project,
        "SELECT digest, status, call_duration FROM runner_receipts WHERE project = %s ORDER BY seq",
    )
    assert rows == [
        (digest_number(NUMBERS[0]), "DELIVERED", 12),
        (digest_number(NUMBERS[1]), "BUSY", 0),
    ]
    assert "(project " in first.log() and "***" in first.log()


@pg_project
def test_the_readme_role_for_the_receiver_is_enough(
    project: ProjectDir, receivers: Callable[..., ReceiverProcess], postgres_server: PostgresServer
) -> None:
    """README: a role that may only add receipts, in a database an apply already set up."""
    name = f"db_{uuid.uuid4().hex[:10]}"
    owner = postgres_server.create_database(name)
    import psycopg

    from runner.state.pg_schema import migrate

    role = f"rcpt_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(owner, autocommit=True) as conn:
        migrate(conn, "test")  # what the first apply does
        for grant in (
            f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'",
            f"GRANT CONNECT ON DATABASE {name} TO {role}",
            f"GRANT SELECT ON runner_schema_version TO {role}",
            f"GRANT SELECT, INSERT ON runner_receipts TO {role}",
            f"GRANT USAGE ON SEQUENCE runner_receipts_seq_seq TO {role}",
        ):
            conn.execute(grant)  # type: ignore[arg-type]
    url = owner.replace("runner:", f"{role}:", 1)
    receiver = receivers("--project", "acme", env={"RUNNER_STATE": url})
    assert receiver.post(old_shape(0)).status_code == 200
    assert receiver.post(form(old_shape(0))).status_code == 200
    with psycopg.connect(owner, autocommit=True) as conn:
        rows = conn.execute("SELECT project, status FROM runner_receipts").fetchall()
    assert rows == [("acme", "DELIVERED")]


def test_a_store_that_cannot_write_answers_503_and_the_retry_is_stored(
    project: ProjectDir, receivers: Callable[..., ReceiverProcess]
) -> None:
    (project.root / RECEIPTS).mkdir()  # where the file should be: it cannot be written
    receiver = receivers()
    health = f"{receiver.base}/health"
    assert requests.get(health, timeout=5).status_code == 503  # known from the start
    assert "receipts store not ready (requests will retry it): cannot open " in receiver.log()
    answer = receiver.post(old_shape(0))
    assert answer.status_code == 503
    assert "receipt not stored (503, the provider will retry): cannot open receipts " in (
        receiver.log()
    )
    (project.root / RECEIPTS).rmdir()
    assert receiver.post(old_shape(0)).status_code == 200
    assert requests.get(health, timeout=5).json() == {"status": "ok"}
    assert [s["digest"] for s in stored(project)] == [digest_number(NUMBERS[0])]


def test_a_client_gone_mid_body_leaves_no_trace_but_a_clean_log(
    project: ProjectDir, receivers: Callable[..., ReceiverProcess]
) -> None:
    receiver = receivers()
    head = f"POST /receipts/{TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    with socket.create_connection(("127.0.0.1", receiver.port)) as client:
        client.sendall(f'{head}Content-Length: 500\r\n\r\n{{"message_id":'.encode())
        time.sleep(0.3)
    assert receiver.post(old_shape(0)).status_code == 200  # still serving
    assert "Traceback" not in receiver.log() and "Exception" not in receiver.log()
    assert len(stored(project)) == 1


def test_a_database_out_of_reach_is_known_at_start_without_its_password(
    project: ProjectDir, receivers: Callable[..., ReceiverProcess]
) -> None:
    url = f"postgresql://runner:{PASSWORD}@127.0.0.1:1/runner"
    receiver = receivers("--project", "acme", env={"RUNNER_STATE": url})
    assert requests.get(f"{receiver.base}/health", timeout=5).status_code == 503
    assert receiver.post(old_shape(0)).status_code == 503
    assert "receipts in postgresql://runner:***@127.0.0.1:1/runner (project acme): " in (
        receiver.log()
    )


def test_a_line_nested_past_pythons_limit_is_a_corrupt_line_named_in_the_log(
    project: ProjectDir, receivers: Callable[..., ReceiverProcess]
) -> None:
    (project.root / RECEIPTS).write_bytes(b"[" * 100_000 + b"\n")  # whole, JSON-like, hostile
    receiver = receivers()
    assert receiver.post(old_shape(0)).status_code == 503  # nothing stored behind it
    log = receiver.log()
    assert f"{RECEIPTS}: corrupt receipt in the line ending at byte 100001" in log, log
    assert "RecursionError" not in log
    (project.root / RECEIPTS).write_bytes(b"")  # the line removed, as the log says
    assert receiver.post(old_shape(0)).status_code == 200
