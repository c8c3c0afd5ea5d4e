"""Where the key goes and which state is read are a PR's to change, so reviewers see them.

The API base is https (plain http on loopback only), from runner.yaml, --api-url or
OCTOPUSH_API_URL; a non-default endpoint, state location or `project:` heads every plan format
and is kept in saved plans; `apply PLANFILE` shows the whole plan, target included, before it
asks (on a real terminal).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import API_ENV, BASIC_CONFIG, EmulatorProcess, ProjectDir, write_campaign
from pg import PASSWORD

EVIL = "http://collector.evil.example/v1/public"


def test_plain_http_elsewhere_than_loopback_is_refused(project: ProjectDir) -> None:
    project.write("runner.yaml", BASIC_CONFIG + f"api_url: {EVIL}\n")
    write_campaign(project, "notice", "Hi.", ["+12025550143"])
    for command in (("validate",), ("plan",)):
        result = project.run(*command)
        assert result.code == 1, result
        assert result.err.startswith(
            f"runner.yaml:6: api_url: '{EVIL}' sends the API key over plain http; use https://"
        ), result


@pytest.mark.parametrize("where", ["--api-url", "OCTOPUSH_API_URL"])
def test_plain_http_from_option_or_environment_is_refused(project: ProjectDir, where: str) -> None:
    write_campaign(project, "notice", "Hi.", ["+12025550143"])
    option = ["--api-url", EVIL] if where == "--api-url" else []
    env = {**API_ENV, "OCTOPUSH_API_URL": EVIL}
    result = project.run("apply", "--auto-approve", *option, env=env)
    assert result.code == 1, result
    assert result.err == (
        f"runner: {where} sends the API key over plain http; use https:// (plain http only "
        "for 127.0.0.1, ::1 or localhost); nothing was sent\n"
    )


@pytest.mark.parametrize("host", ["localhost", "127.0.0.2", "[::1]"])
def test_loopback_may_use_plain_http(project: ProjectDir, host: str) -> None:
    write_campaign(project, "notice", "Hi.", ["+12025550143"])
    url = f"http://{host}:8099/v1/public"
    result = project.run("plan", env={"OCTOPUSH_API_URL": url})
    assert result.code == 0, result
    assert result.out.startswith(f"Endpoint: {url} (not the default)\n"), result


def test_every_plan_format_and_saved_plan_shows_the_target(project: ProjectDir) -> None:
    url = "https://api.evil.example/v1/public"
    project.write("runner.yaml", BASIC_CONFIG + f"api_url: {url}\nproject: acme-ops\n")
    write_campaign(project, "notice", "Hi.", ["+12025550143"])
    state = f"postgresql://runner:{PASSWORD}@127.0.0.1:1/runner"  # read by json/markdown only
    saved = project.root / "plan.json"
    text = project.run("--state", "other.json", "plan", "--out", str(saved))
    assert text.code == 0, text
    assert text.out.startswith(
        f"Endpoint: {url} (not the default)\n"
        "State: other.json (not the default)\n"
        "Project: acme-ops (not the default)\n\n"
    ), text
    assert (
        text.err
        == f"Saved the plan to {saved}; apply it with: runner -C {project.root} apply {saved}\n"
    )
    recorded = json.loads(saved.read_text())["target"]
    assert recorded == {"api_url": url, "state": "other.json", "project": "acme-ops"}
    markdown = project.run("plan", "--format", "markdown", env={"RUNNER_STATE": "shared.json"})
    assert f"- **endpoint:** `{url}` (not the default)" in markdown.out
    assert "- **state:** `shared.json` (not the default)" in markdown.out
    assert "- **project:** `acme-ops` (not the default)" in markdown.out
    data = json.loads(project.run("plan", "--format", "json").out)
    assert data["target"] == {
        "api_url": url,
        "state": "runner.state.json",
        "project": "acme-ops",
        "not_default": ["endpoint", "project"],
    }
    hidden = project.run("--state", state, "plan")  # cannot connect: the error hides the password
    assert hidden.code == 1 and "runner:***@127.0.0.1:1/runner" in hidden.err, hidden


def apply_on_a_terminal(
    project: ProjectDir, *args: str, answer: str
) -> subprocess.CompletedProcess[str]:
    """`runner apply` with a terminal as stdin, as a person runs it, answering the prompt."""
    leader, follower = os.openpty()
    try:
        os.write(leader, answer.encode() + b"\n")
        return subprocess.run(
            [sys.executable, "-m", "runner", "-C", str(project.root), "apply", *args],
            stdin=follower,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **API_ENV, "NO_COLOR": "1"},
        )
    finally:
        os.close(follower)
        os.close(leader)


def test_apply_planfile_shows_the_whole_plan_before_asking(
    project: ProjectDir, emulator: EmulatorProcess
) -> None:
    project.write("runner.yaml", BASIC_CONFIG + f"api_url: {emulator.url}\n")
    write_campaign(project, "notice", "Power is off on Saturday.", ["+12025550143", "+12025550187"])
    later = 'name: later\ntext: "Drill."\nsend_at: "2031-01-06T09:00:00+01:00"\n'
    project.write("campaigns/later.yaml", later + 'recipients: ["+12025550143"]\n')
    saved = str(project.root / "plan.json")
    planned = project.run("plan", "--out", saved)
    assert planned.code == 0, planned
    refused = apply_on_a_terminal(project, saved, answer="no")
    assert refused.returncode == 1
    assert refused.stdout == planned.out, refused  # the same plan, endpoint first
    assert refused.stdout.startswith(f"Endpoint: {emulator.url} (not the default)\n")
    for shown in ("Power is off on Saturday.", "calls go out at 2031-01-06T09:00:00+01:00"):
        assert shown in refused.stdout
    assert refused.stderr.startswith("Send these calls?"), refused
    assert "apply cancelled; nothing was sent" in refused.stderr
    assert emulator.sends() == []
    applied = apply_on_a_terminal(project, saved, answer="yes")
    assert applied.returncode == 0, applied
    assert applied.stdout.startswith(planned.out), applied
    assert len(emulator.sends()) == 2
