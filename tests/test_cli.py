"""The command line's surface: options anywhere, -C paths, colour, shell completion."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ProjectDir, Result, run_cli, write_campaign

NUMBERS = ["+12015550100", "+12015550101"]
PLAIN_PLAN = (
    "+ hello  new campaign  (campaigns/hello.yaml:1)\n"
    "    2 recipients in 1 batch, estimated 0.10 €\n"
    "    calls go out now; sender (the provider's default); voice female en-US; purpose alert\n"
    "    | Hello there.\n"
    "\n"
    "Plan: 1 campaign, 2 calls in 1 batch, estimated cost 0.10 €.\n"
)


def on_terminal(*args: str, cwd: Path, env: dict[str, str] | None = None) -> Result:
    """The real command with stdout and stderr on a pseudo-terminal, as a person runs it."""
    environment = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | (env or {})
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", *args],
        cwd=cwd,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    code = process.wait(timeout=60)
    return Result(code, b"".join(chunks).decode().replace("\r\n", "\n"), "")


# options anywhere --------------------------------------------------------------------------


@pytest.fixture
def monorepo(project: ProjectDir) -> Path:
    """A project in a sub-folder of the folder commands run from, as in a monorepo."""
    write_campaign(project, "hello", "Hello there.", NUMBERS)
    return project.root.parent


def test_global_options_work_after_the_command(monorepo: Path) -> None:
    for args in (["validate", "-C", "proj", "-v"], ["-C", "proj", "validate"]):
        result = run_cli(*args, cwd=monorepo)
        assert (result.code, result.out) == (0, "ok: 1 campaign, 2 recipients, 1 message\n")
    result = run_cli("plan", "--no-color", "-C", "proj", "-q", cwd=monorepo)
    assert (result.code, result.out) == (0, PLAIN_PLAN)
    result = run_cli("state", "list", "-C", "proj", cwd=monorepo)
    assert result.out == "The state is empty: nothing has been delivered yet.\n"


def test_a_second_dash_c_is_relative_to_the_first(monorepo: Path) -> None:
    result = run_cli("-C", str(monorepo), "validate", "-C", "proj", cwd=monorepo.parent)
    assert (result.code, result.out) == (0, "ok: 1 campaign, 2 recipients, 1 message\n")


def test_dash_c_makes_every_path_relative_to_the_project(monorepo: Path) -> None:
    project = monorepo / "proj"
    (project / "runner.yaml").rename(project / "other.yaml")
    (project / "vars.yaml").write_text("who: team\n", encoding="utf-8")
    (project / "campaigns" / "hello.yaml").write_text(
        'name: hello\ntext: "Hello {{ who }}."\nrecipients: ["+12015550100"]\n', encoding="utf-8"
    )
    out = ["plan", "--config", "other.yaml", "-C", "proj", "--var-file", "vars.yaml"]
    result = run_cli(*out, "--out", "saved.json", cwd=monorepo)
    assert result.code == 0, result
    assert "    | Hello team.\n" in result.out
    assert (project / "saved.json").is_file() and not (monorepo / "saved.json").exists()
    saved = json.loads((project / "saved.json").read_text(encoding="utf-8"))
    assert saved["format_version"] == 1
    emulated = run_cli(  # no --var-file: a saved plan holds its payloads and refuses one
        "apply", "saved.json", "-C", "proj", "--config", "other.yaml",
        "--emulator", "--auto-approve", cwd=monorepo,
    )  # fmt: skip
    assert emulated.code == 0, emulated
    assert "Applied: 1 campaign, 1 batch, 1 contact" in emulated.out


# colour ------------------------------------------------------------------------------------


def test_plan_is_coloured_on_a_terminal_like_terraform(project: ProjectDir) -> None:
    write_campaign(project, "hello", "Hello there.", NUMBERS)
    result = on_terminal("plan", cwd=project.root)
    assert result.out == (
        "\x1b[32m+ hello  new campaign  (campaigns/hello.yaml:1)\x1b[0m\n"
        "    2 recipients in 1 batch, estimated 0.10 €\n"
        "    calls go out now; sender (the provider's default); voice female en-US; purpose alert\n"
        "    | Hello there.\n"
        "\n"
        "\x1b[1mPlan: 1 campaign, 2 calls in 1 batch, estimated cost 0.10 €.\x1b[0m\n"
    )
    assert project.run("state", "accept", "hello").code == 0
    write_campaign(project, "hello", "Hello again.", NUMBERS)
    changed = on_terminal("plan", cwd=project.root).out
    assert changed.startswith(
        "\x1b[33m~ hello  message changed  (campaigns/hello.yaml:1)\x1b[0m\n"
        "    2 recipients in 1 batch, estimated 0.10 € (2 recipients hear a changed message)\n"
        "    calls go out now; sender (the provider's default); voice female en-US; purpose alert\n"
        "    \x1b[31m- Hello there.\x1b[0m\n"
        "    \x1b[32m+ Hello again.\x1b[0m\n"
    ), changed


def test_errors_are_red_on_a_terminal(project: ProjectDir) -> None:
    project.write("campaigns/bad.yaml", "name: bad\ntext: Hi\nrecipients: []\n")
    result = on_terminal("validate", cwd=project.root)
    assert result.code == 1
    assert result.out == (
        "\x1b[31mcampaigns/bad.yaml:3: recipients: is empty; add at least one phone number"
        "\x1b[0m\n\x1b[1m1 problem; nothing was sent.\x1b[0m\n"
    )


@pytest.mark.parametrize(
    ("args", "env"),
    [(("plan", "--no-color"), {}), (("--no-color", "plan"), {}), (("plan",), {"NO_COLOR": "1"})],
)
def test_no_colour_when_asked(
    project: ProjectDir, args: tuple[str, ...], env: dict[str, str]
) -> None:
    write_campaign(project, "hello", "Hello there.", NUMBERS)
    assert on_terminal(*args, cwd=project.root, env=env).out == PLAIN_PLAN


def test_no_colour_without_a_terminal(project: ProjectDir) -> None:
    write_campaign(project, "hello", "Hello there.", NUMBERS)
    environment = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    process = subprocess.run(
        [sys.executable, "-m", "runner", "plan"],
        cwd=project.root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.stdout == PLAIN_PLAN


# shell completion --------------------------------------------------------------------------


def test_shell_completion_as_the_readme_shows(project: ProjectDir) -> None:
    script = run_cli(env={"_RUNNER_COMPLETE": "bash_source"})
    assert script.code == 0
    assert "_runner_completion() {" in script.out
    assert "complete -o nosort -F _runner_completion runner" in script.out
    words = {"COMP_WORDS": "runner pl", "COMP_CWORD": "1", "_RUNNER_COMPLETE": "bash_complete"}
    assert run_cli(env=words).out == "plain,plan\n"
    words = {"COMP_WORDS": "runner validate --no", "COMP_CWORD": "2"}
    assert run_cli(env={**words, "_RUNNER_COMPLETE": "bash_complete"}).out == "plain,--no-color\n"
    words = {"COMP_WORDS": "runner schema ", "COMP_CWORD": "2", "_RUNNER_COMPLETE": "bash_complete"}
    assert run_cli(env=words).out == "plain,campaign\nplain,config\nplain,voice-send\n"
