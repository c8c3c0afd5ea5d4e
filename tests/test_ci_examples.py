"""The CI/CD examples and the pre-commit hook: valid YAML, valid runner commands, working steps."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from conftest import REPO, ProjectDir, us_numbers, write_campaign

from runner.cli import cli

EXAMPLES = REPO / "examples" / "ci"
GITHUB = EXAMPLES / "github-actions.yml"
GITLAB = EXAMPLES / "gitlab-ci.yml"
BIN = Path(sys.executable).parent  # where pip put the `runner` entry point
RUN_SH = REPO / "action" / "run.sh"
# What the action (action/run.sh) runs for each `command:` input, before the `args:` input.
ACTION_COMMANDS = {
    "validate": "runner validate",
    "plan": "runner plan --detailed-exitcode --format markdown",
    "apply": "runner apply --auto-approve",
}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data


def github_scripts(path: Path = GITHUB) -> dict[str, str]:
    """Each step's `run:` script, or the runner command a step using this repository's action
    runs, by job/step name (or job/index)."""
    scripts = {}
    for job_name, job in load(path)["jobs"].items():
        for index, step in enumerate(job["steps"]):
            key = f"{job_name}/{step.get('name', index)}"
            if "run" in step:
                scripts[key] = step["run"]
            elif str(step.get("uses", "")).startswith("your-org/runner@"):
                inputs = step.get("with", {})
                command = ACTION_COMMANDS[inputs.get("command", "plan")]
                scripts[key] = f"{command} {inputs.get('args', '')}".strip()
    return scripts


def test_the_action_runs_the_commands_the_recipes_are_checked_with() -> None:
    script = RUN_SH.read_text(encoding="utf-8")
    for command in ACTION_COMMANDS.values():
        assert f'{command} "${{EXTRA[@]}}"' in script, command


def gitlab_scripts(path: Path = GITLAB) -> dict[str, str]:
    scripts = {}
    for name, job in load(path).items():
        if isinstance(job, dict):
            for key in ("before_script", "script", "after_script"):
                if key in job:
                    scripts[f"{name}/{key}"] = "\n".join(job[key])
    return scripts


def runner_commands(script: str) -> Iterator[list[str]]:
    """The argument lists of every `runner ...` command in a shell script."""
    for line in script.replace("\\\n", " ").splitlines():
        for part in re.split(r"&&|\|\||;|\|", line):
            if not re.match(r"\s*runner\s", part):
                continue
            words = shlex.split(part, comments=True)
            if words[:1] == ["runner"]:
                stop = next((i for i, w in enumerate(words) if w.startswith((">", "2>"))), None)
                yield words[1:stop]


def parse_invocation(args: list[str]) -> click.Command:
    """Parse a command line with our click tree, as running it would, without running it."""
    command: click.Command = cli
    ctx = command.make_context("runner", list(args))
    while isinstance(command, click.Group):
        with warnings.catch_warnings():  # click < 9 keeps the subcommand in protected_args
            warnings.simplefilter("ignore", DeprecationWarning)
            rest = [*getattr(ctx, "protected_args", []), *ctx.args]
        name, found, rest = command.resolve_command(ctx, rest)
        assert found is not None and name is not None, args
        command, ctx = found, found.make_context(name, rest, parent=ctx)
    return command


RECIPES = [
    (github_scripts, GITHUB),
    (gitlab_scripts, GITLAB),
    (github_scripts, EXAMPLES / "github-actions-state-branch.yml"),
    (gitlab_scripts, EXAMPLES / "gitlab-ci-state-branch.yml"),
]


@pytest.mark.parametrize(("scripts", "path"), RECIPES, ids=lambda v: getattr(v, "name", ""))
def test_every_runner_command_is_a_valid_invocation(scripts: Any, path: Path) -> None:
    found = [
        " ".join(args) for script in scripts(path).values() for args in runner_commands(script)
    ]
    for line in found:
        parse_invocation(shlex.split(line))
    assert "validate" in found
    assert "plan --detailed-exitcode --format markdown" in found
    assert "apply --auto-approve" in found
    text = path.read_text(encoding="utf-8")
    assert "refuses overlaps" not in text  # a file lock on separate runners refuses nothing
    jobs = [job for job in load(path).values() if isinstance(job, dict)]
    assert not any("after_script" in job for job in jobs)  # GitLab ignores its failures


def test_the_parser_catches_a_bad_invocation() -> None:
    for bad in (["plan", "--format", "html"], ["aply"], ["state", "psh", "x"], ["apply", "-y"]):
        with pytest.raises(click.UsageError):
            parse_invocation(bad)


@pytest.mark.parametrize("path", [GITHUB, GITLAB], ids=["github", "gitlab"])
def test_secrets_come_from_the_ci_never_from_the_file(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for name in ("OCTOPUSH_API_KEY", "OCTOPUSH_API_LOGIN", "RUNNER_STATE"):
        assert name in text
    assert "postgresql://user:password@host/db" in text  # only in the comment explaining it
    assert not re.search(r"postgresql://\w+:(?!password@)[^@\s]+@", text)
    if path == GITHUB:
        assert "${{ secrets.OCTOPUSH_API_KEY }}" in text
        assert "${{ secrets.RUNNER_STATE }}" in text


def run_step(script: str, project: ProjectDir, shell: list[str]) -> Any:
    """Run a plan step; GitHub's is the action's own script (as tests/test_action.py runs it)."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "NO_COLOR": "1"}
    env["GITHUB_OUTPUT"] = str(project.root / "github-output")
    env["GITHUB_REPOSITORY"] = "acme/campaigns"  # always set on GitHub; no event: no comment
    return subprocess.run(
        [*shell, script], cwd=project.root, env=env, capture_output=True, text=True, timeout=60
    )


def plan_steps() -> dict[str, tuple[str, list[str]]]:
    gitlab = load(GITLAB)["plan"]["script"]
    return {
        "github": (f'"{RUN_SH}" plan', ["bash", "-e", "-c"]),  # the recipe uses the action
        "gitlab": ("\n".join(line for line in gitlab if "curl" not in line), ["sh", "-e", "-c"]),
    }


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_the_plan_step_passes_on_changes_and_fails_on_errors(project: ProjectDir, ci: str) -> None:
    script, shell = plan_steps()[ci]
    write_campaign(project, "notice", "Hello.", us_numbers(2))
    changes = run_step(script, project, shell)
    assert changes.returncode == 0, changes
    plan_md = project.root / "plan.md"
    assert "notice" in (plan_md.read_text() if ci == "gitlab" else changes.stdout)
    if ci == "github":
        assert (project.root / "github-output").read_text().startswith("exitcode=2\n")
    project.write("campaigns/broken.yaml", "name: broken\ntext: Hi\nrecipients: [nope]\n")
    broken = run_step(script, project, shell)
    assert broken.returncode != 0, broken


def test_the_pre_commit_hook_validates_the_example_project() -> None:
    [hook] = load(REPO / ".pre-commit-hooks.yaml")  # type: ignore[misc]
    assert (hook["id"], hook["language"], hook["pass_filenames"]) == (
        "runner-validate",
        "python",
        False,
    )
    files = re.compile(hook["files"])
    for path in ("campaigns/a.yaml", "campaigns/x/b.yml", "templates/m.j2", "contacts/c.csv"):
        assert files.search(path), path
    assert files.search("runner.yaml")
    for path in ("README.md", "runner/cli.py", "tests/campaigns/a.yaml", "myrunner.yaml"):
        assert not files.search(path), path
    entry = shlex.split(hook["entry"])
    executable = shutil.which(entry[0], path=str(BIN))
    assert executable, f"{entry[0]} is not installed beside {sys.executable}"
    env = {k: v for k, v in os.environ.items() if k != "RUNNER_STATE"}
    done = subprocess.run(
        [executable, *entry[1:]], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done
    assert "campaign" in done.stdout


def test_the_pre_commit_hook_needs_no_database_driver(project: ProjectDir) -> None:
    """A repository whose state is in PostgreSQL, on a laptop without psycopg: the hook passes."""
    [hook] = load(REPO / ".pre-commit-hooks.yaml")  # type: ignore[misc]
    config = (project.root / "runner.yaml").read_text()
    project.write("runner.yaml", config + "project: acme\nstate: postgresql://u:p@127.0.0.1:1/db\n")
    write_campaign(project, "notice", "Hello.", us_numbers(2))
    blocker = project.root.parent / "no-psycopg" / "psycopg"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'psycopg'\", name='psycopg')\n"
    )
    entry = shlex.split(hook["entry"])
    executable = shutil.which(entry[0], path=str(BIN))
    assert executable
    env = {k: v for k, v in os.environ.items() if k != "RUNNER_STATE"}
    env["PYTHONPATH"] = str(blocker.parent)
    done = subprocess.run(
        [executable, *entry[1:]], cwd=project.root, env=env, capture_output=True, text=True
    )
    assert (done.returncode, done.stderr) == (0, ""), done
    assert "ok: 1 campaign" in done.stdout
