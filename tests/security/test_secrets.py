"""Secret scan: every command and format, at -v and -vv, with a random API key and login.

Neither may appear in any output, nor in any file written under the test's folder: project,
state, journal, lock, saved plan, logs and the emulator's record.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import figures
import pytest
import requests
from conftest import EmulatorProcess, ProjectDir, Result, free_port, us_numbers, write_campaign
from requests import Response

KEY, LOGIN = secrets.token_urlsafe(24), "login-" + secrets.token_hex(8)
SECRET_ENV = {"OCTOPUSH_API_KEY": KEY, "OCTOPUSH_API_LOGIN": LOGIN}


def leaks(text: str) -> bool:
    return KEY in text or LOGIN in text


@pytest.fixture
def scanned(project: ProjectDir, tmp_path: Path) -> Callable[..., Result]:
    """Run a command with the secrets in the environment; fail if its output shows them."""

    def run(*args: str, env: dict[str, str] | None = None) -> Result:
        result = project.run(*args, env={**SECRET_ENV, **(env or {})}, stdin="")
        assert "Traceback" not in result.output, result
        assert not leaks(result.output), f"runner {' '.join(args)} printed a credential"
        figures.add("secret-scan runs")
        return result

    return run


def files_showing_secrets(folder: Path) -> list[str]:
    return [
        str(p)
        for p in folder.rglob("*")
        if p.is_file() and (KEY.encode() in p.read_bytes() or LOGIN.encode() in p.read_bytes())
    ]


def test_no_command_shows_or_writes_the_key(
    project: ProjectDir,
    emulators: Callable[..., EmulatorProcess],
    scanned: Callable[..., Result],
    tmp_path: Path,
) -> None:
    write_campaign(project, "outage", "Power is off on Saturday.", us_numbers(600))
    write_campaign(project, "crew", "Drill at 9.", us_numbers(3, start=600))
    emulator = emulators(
        "--rate-500-after", "0.3", "--rate-drop-after", "0.2", "--retry-after", "0"
    )
    refusing = emulators("--rate-429", "1", "--retry-after", "0")
    for verbose in ("-v", "-vv"):
        for fmt in ("text", "json"):
            assert scanned(verbose, "validate", "--format", fmt).code == 0
        assert scanned(verbose, "render", "--show-recipients").code == 0
        for fmt in ("text", "json", "markdown"):
            out = str(project.root / f"plan-{fmt}.json")
            plan = scanned(verbose, "plan", "--format", fmt, "--out", out)
            assert plan.code == 0
    failed = scanned("-vv", "apply", "--auto-approve", "--api-url", refusing.url)
    assert failed.code == 1 and "api-key" in failed.err  # the debug log shows headers, redacted
    for fmt in ("text", "json"):  # the first re-sends what the refused run left pending
        applied = scanned(
            "-vv", "apply", "--auto-approve", "--format", fmt, "--api-url", emulator.url
        )
        assert applied.code == 0, applied
        write_campaign(project, "crew", f"Drill at 9, {fmt}.", us_numbers(3, start=600))
    saved = str(project.root / "saved.json")
    assert scanned("-vv", "plan", "--out", saved).code == 0
    assert scanned("-vv", "apply", saved, "--auto-approve", "--api-url", emulator.url).code == 0
    assert scanned("-vv", "apply", "--emulator", "--auto-approve").code == 0
    failing = emulators("--rate-500-before", "1")  # answers the preflight, never a send
    write_campaign(project, "late", "Late news.", us_numbers(2, start=700))
    assert scanned("-vv", "apply", "--auto-approve", "--api-url", failing.url).code == 1
    for verbose in ("-v", "-vv"):
        assert scanned(verbose, "state", "list").code == 0
        assert scanned(verbose, "state", "show", "outage").code == 0
        assert scanned(verbose, "state", "show", "late").code == 0
    assert scanned("-vv", "state", "resolve", "late", "--not-sent").code == 0
    for bad in (KEY + " ", KEY + "\n", "é" + KEY):  # a pasted key with a stray character
        refused = scanned("-vv", "apply", "--auto-approve", "--api-url", emulator.url,
                          env={"OCTOPUSH_API_KEY": bad})  # fmt: skip
        assert refused.code == 1 and "OCTOPUSH_API_KEY has spaces" in refused.err, refused
    assert files_showing_secrets(tmp_path) == []


def post_when_listening(url: str, body: dict[str, Any], headers: dict[str, str]) -> Response:
    deadline = time.monotonic() + 30
    while True:
        try:
            return requests.post(url, json=body, headers=headers, timeout=5)
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_the_emulator_command_never_shows_the_key(tmp_path: Path) -> None:
    port = free_port()
    record = tmp_path / "record.jsonl"
    command = [sys.executable, "-m", "runner", "-vv", "emulator", "--port", str(port)]
    command += ["--record", str(record)]
    process = subprocess.Popen(
        command,
        env={**SECRET_ENV, "NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/v1/public/voice-campaign/send"
    body = {
        "text": "Hello.",
        "recipients": [{"phone_number": "+12025550143"}],
        "purpose": "alert",
        "voice_gender": "female",
        "voice_language": "en-US",
        "request_id": "rn-scan",
    }
    headers = {"api-key": KEY, "api-login": LOGIN}
    answer = post_when_listening(url, body, headers)
    assert answer.status_code == 201, answer.text
    assert not leaks(answer.text)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert not leaks(out + err), "the emulator printed a credential"
    assert files_showing_secrets(tmp_path) == []
    figures.add("secret-scan runs")
