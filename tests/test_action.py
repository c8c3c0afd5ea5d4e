"""The GitHub Action: action.yml is valid action metadata, and its script (action/run.sh) run
here as the runner would, against the emulator, with a fake `gh` that keeps the comments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import API_ENV, REPO, EmulatorProcess, ProjectDir, us_numbers, write_campaign

ACTION = REPO / "action.yml"
SCRIPT = REPO / "action" / "run.sh"
BIN = Path(sys.executable).parent
REPOSITORY = "acme/campaigns"

FAKE_GH = """\
#!{python}
# A fake gh: records each call, serves and keeps issue comments in comments.json.
import json, os, sys
from pathlib import Path

here = Path(__file__).parent
args = sys.argv[1:]
with open(here / "calls.jsonl", "a") as calls:
    calls.write(json.dumps({{"args": args, "token": os.environ.get("GH_TOKEN")}}) + "\\n")
if os.environ.get("GH_FAIL"):
    sys.exit("HTTP 403: Resource not accessible by integration")
comments = json.loads((here / "comments.json").read_text())
if args[:2] == ["api", "--paginate"]:  # two pages, printed one after the other as gh does
    print(json.dumps(comments[:1]))
    print(json.dumps(comments[1:]))
    sys.exit(0)
method, path, field = args[2], args[3], args[5]
body = Path(field.removeprefix("body=@")).read_text()
if method == "POST":
    comments.append({{"id": 100 + len(comments), "path": path, "body": body}})
else:
    [comment] = [c for c in comments if path.endswith(f"/comments/{{c['id']}}")]
    comment["body"] = body
(here / "comments.json").write_text(json.dumps(comments))
print("{{}}")
"""


class FakeGitHub:
    """The environment a GitHub runner gives a step, and a fake `gh` on its PATH."""

    def __init__(self, root: Path, event: dict[str, Any]) -> None:
        self.root = root
        self.bin = root / "bin"
        self.bin.mkdir(parents=True)
        gh = self.bin / "gh"
        gh.write_text(FAKE_GH.format(python=sys.executable))
        gh.chmod(0o755)
        self.comments = [{"id": 1, "body": "Looks good to me."}]
        self.save()
        (root / "event.json").write_text(json.dumps(event))
        self.summary, self.output = root / "summary.md", root / "output.txt"

    def save(self) -> None:
        (self.bin / "comments.json").write_text(json.dumps(self.comments))

    def posted(self) -> list[dict[str, Any]]:
        loaded: list[dict[str, Any]] = json.loads((self.bin / "comments.json").read_text())
        return loaded

    def calls(self) -> list[list[str]]:
        lines = (self.bin / "calls.jsonl").read_text().splitlines()
        return [json.loads(line)["args"] for line in lines]

    def run(
        self, command: str, project: ProjectDir, extra: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "RUNNER_STATE"}
        env.update(
            PATH=f"{self.bin}:{BIN}:{env['PATH']}",
            GITHUB_EVENT_NAME="pull_request",
            GITHUB_EVENT_PATH=str(self.root / "event.json"),
            GITHUB_REPOSITORY=REPOSITORY,
            GITHUB_STEP_SUMMARY=str(self.summary),
            GITHUB_OUTPUT=str(self.output),
            GH_TOKEN="gh-token",
            INPUT_WORKING_DIRECTORY="proj",
            NO_COLOR="1",
            **(extra or {}),
        )
        return subprocess.run(
            ["bash", str(SCRIPT), command],
            cwd=project.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture
def github(tmp_path: Path) -> FakeGitHub:
    return FakeGitHub(tmp_path / "github", {"pull_request": {"number": 7}})


def test_action_yml_is_valid_action_metadata() -> None:
    done = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-actions", str(ACTION)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done


def test_the_scripts_pass_shellcheck() -> None:
    shellcheck = BIN / "shellcheck"
    assert shellcheck.exists(), "shellcheck is not installed: pip install -e '.[test]'"
    scripts = [str(SCRIPT), str(REPO / ".ci" / "run")]
    done = subprocess.run([str(shellcheck), *scripts], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout


def test_inputs_reach_the_script_through_env_never_inside_the_script() -> None:
    """`${{ inputs.x }}` inside `run:` would be pasted into the shell: a folder name could run."""
    action = yaml.safe_load(ACTION.read_text())
    assert set(action["inputs"]) >= {"command", "working-directory", "version"}
    steps = [s for s in action["runs"]["steps"] if "run" in s]
    assert steps and all("${{" not in s["run"] for s in steps)
    assert all("action/run.sh" in s["run"] for s in steps)


def test_the_plan_is_one_comment_edited_on_each_push(
    github: FakeGitHub, project: ProjectDir
) -> None:
    write_campaign(project, "notice", "Hello.", us_numbers(2))
    first = github.run("plan", project)
    assert first.returncode == 0, first
    assert "has-changes=true" in github.output.read_text()
    other, mine = github.posted()
    assert other == {"id": 1, "body": "Looks good to me."}
    assert mine["path"] == f"repos/{REPOSITORY}/issues/7/comments"
    assert mine["body"].startswith("<!-- voice-campaign-runner plan: proj -->\n")
    assert "`notice`" in mine["body"] and "2 calls" in mine["body"]

    write_campaign(project, "notice", "Hello again.", us_numbers(3))
    second = github.run("plan", project)
    assert second.returncode == 0, second
    assert [c["id"] for c in github.posted()] == [1, mine["id"]]  # edited, not added
    assert "3 calls" in github.posted()[1]["body"]
    assert [call[:3] for call in github.calls() if call[1] == "--method"] == [
        ["api", "--method", "POST"],
        ["api", "--method", "PATCH"],
    ]
    assert f"issues/comments/{mine['id']}" in github.calls()[-1][3]
    assert "### runner plan: `proj`" in github.summary.read_text()


def test_a_failed_plan_replaces_the_comment_and_fails_the_step(
    github: FakeGitHub, project: ProjectDir
) -> None:
    write_campaign(project, "notice", "Hello.", us_numbers(2))
    assert github.run("plan", project).returncode == 0
    project.write("campaigns/broken.yaml", "name: broken\ntext: Hi\nrecipients: [nope]\n")
    failed = github.run("plan", project)
    assert failed.returncode == 1, failed
    [_, comment] = github.posted()
    assert "runner plan failed" in comment["body"] and "broken.yaml" in comment["body"]


def test_a_comment_refused_does_not_fail_the_plan(github: FakeGitHub, project: ProjectDir) -> None:
    """A pull request from a fork gets a read-only token."""
    write_campaign(project, "notice", "Hello.", us_numbers(2))
    done = github.run("plan", project, {"GH_FAIL": "1"})
    assert done.returncode == 0, done
    assert "::warning::runner action: could not post the plan comment" in done.stdout
    assert [call[:2] for call in github.calls()] == [["api", "--paginate"]]  # no blind POST
    assert "has-changes=true" in github.output.read_text()


def test_no_comment_outside_a_pull_request(tmp_path: Path, project: ProjectDir) -> None:
    github = FakeGitHub(tmp_path / "github", {"ref": "refs/heads/main"})
    write_campaign(project, "notice", "Hello.", us_numbers(2))
    assert github.run("plan", project).returncode == 0
    assert not (github.bin / "calls.jsonl").exists()


def test_apply_sends_once_and_writes_the_job_summary(
    github: FakeGitHub, project: ProjectDir, emulator: EmulatorProcess
) -> None:
    write_campaign(project, "notice", "Hello.", us_numbers(2))
    env = {**API_ENV, "OCTOPUSH_API_URL": emulator.url}
    applied = github.run("apply", project, env)
    assert applied.returncode == 0, applied
    assert sorted(n for s in emulator.sends() for n in s["recipients"]) == us_numbers(2)
    summary = github.summary.read_text()
    assert summary.startswith("### runner apply: `proj` done\n\n```text\n"), summary
    assert "notice" in summary
    again = github.run("apply", project, env)
    assert again.returncode == 0, again
    assert len(emulator.sends()) == 1


def test_a_failed_apply_fails_the_step_and_says_so(github: FakeGitHub, project: ProjectDir) -> None:
    write_campaign(project, "notice", "Hello.", us_numbers(2))
    failed = github.run("apply", project)  # no credentials
    assert failed.returncode == 1, failed
    assert "### runner apply: `proj` failed (exit 1)" in github.summary.read_text()


@pytest.mark.parametrize("version", ["1.0; rm -rf ~", "latest"])
def test_install_refuses_a_version_that_is_not_one(github: FakeGitHub, version: str) -> None:
    done = subprocess.run(
        ["bash", str(SCRIPT), "install"],
        env={**os.environ, "INPUT_VERSION": version, "GITHUB_PATH": str(github.root / "path")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert done.stderr.startswith(
        f"::error::runner action: version: '{version}' is not a version number"
    )


def test_a_big_plan_still_fits_in_one_comment(github: FakeGitHub, project: ProjectDir) -> None:
    for n in range(120):
        text = f"Notice {n}. " + "The billing portal will be down for maintenance. " * 12
        write_campaign(project, f"notice-{n:03}", text, us_numbers(1, start=n))
    done = github.run("plan", project)
    assert done.returncode == 0, done
    [_, comment] = github.posted()
    assert 50_000 < len(comment["body"]) < 65_536  # GitHub's limit
