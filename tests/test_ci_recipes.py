"""The CI recipes in examples/ci/, run step by step as the CI would, against the emulator.

Each job runs its `run:` (GitHub) or `before_script:` + `script:` (GitLab) blocks from the YAML,
in order, in a fresh clone of a real git repository whose `origin` is a bare repository that
refuses pushes to main (a protected branch). `pip install` lines are left out (runner is
installed here), `gh` and `curl` are stubs that record their arguments. A `uses:` step of this
repository's action runs the action's own steps from action.yml (its inputs and env mapped as
GitHub maps them) but its install step, as the pip lines; other `uses:` steps (checkout,
upload-artifact) are what the harness does around the steps.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import API_ENV, BASIC_CONFIG, REPO, EmulatorProcess, us_numbers
from pg import DATABASE, PASSWORD, PostgresServer

from runner.state.pg_schema import lock_key

EXAMPLES = REPO / "examples" / "ci"
ACTION = "your-org/runner@"  # how the recipes name this repository's action
BIN = Path(sys.executable).parent
PROTECT_MAIN = """#!/bin/sh
while read -r old new ref; do
  if [ "$ref" = refs/heads/main ] && [ -z "$ALLOW_MAIN" ]; then
    echo "main is protected" >&2; exit 1
  fi
done
"""
STUB = '#!/bin/sh\necho "$(basename "$0") $*" >> "$STUB_LOG"\n'


@dataclass(frozen=True)
class Step:
    name: str
    script: str
    condition: str = ""
    env: Mapping[str, str] = frozenset({}.items())  # type: ignore[assignment]
    folder: str = "."


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text(encoding="utf-8"))
    return data


def without_pip(script: str) -> str:
    return "\n".join(line for line in script.splitlines() if "pip install" not in line)


def resolve(value: str, secrets: Mapping[str, str]) -> str:
    """GitHub's `${{ secrets.NAME }}` and `${{ github.token }}`, as the runner would fill them."""
    return re.sub(
        r"\$\{\{\s*(?:secrets\.(\w+)|[\w.]+)\s*\}\}", lambda m: secrets.get(m[1] or "", ""), value
    )


def github_job(
    name: str, job: str, secrets: Mapping[str, str]
) -> tuple[dict[str, str], list[Step]]:
    workflow = load(name)
    env = {k: resolve(str(v), secrets) for k, v in workflow.get("env", {}).items()}
    spec = workflow["jobs"][job]
    env |= {k: resolve(str(v), secrets) for k, v in spec.get("env", {}).items()}
    steps = []
    for s in spec["steps"]:
        step_env = {k: resolve(str(v), secrets) for k, v in s.get("env", {}).items()}
        if "run" in s:
            steps.append(
                Step(s.get("name", s["run"]), without_pip(s["run"]), s.get("if", ""), step_env)
            )
        elif str(s.get("uses", "")).startswith(ACTION):
            steps.extend(action_steps(s, step_env, secrets))
    return env, steps


def action_steps(
    use: Mapping[str, Any], env: Mapping[str, str], secrets: Mapping[str, str]
) -> list[Step]:
    """The action's `run:` steps as action.yml declares them, with the step's `with:` inputs."""
    action = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
    inputs = {k: str(v.get("default", "")) for k, v in action["inputs"].items()}
    inputs |= {k: str(v) for k, v in use.get("with", {}).items()}

    def fill(value: Any) -> str:
        value = re.sub(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", lambda m: inputs[m[1]], str(value))
        return resolve(value, secrets)

    steps = []
    for s in action["runs"]["steps"]:
        if "run" not in s or '" install' in s["run"]:  # installing is the harness's job
            continue
        step_env = {**env, **{k: fill(v) for k, v in s.get("env", {}).items()}}
        step_env["GITHUB_ACTION_PATH"] = str(REPO)
        name = use.get("name", use["uses"])
        steps.append(
            Step(name, s["run"], use.get("if", ""), step_env, fill(s.get("working-directory", ".")))
        )
    return steps


def gitlab_job(name: str, job: str, values: Mapping[str, str]) -> tuple[dict[str, str], str]:
    """The job's variables (expanded) and its before_script + script as one shell script."""
    pipeline = load(name)
    env = {k: str(v) for k, v in pipeline.get("variables", {}).items()}
    for key, value in pipeline[job].get("variables", {}).items():
        env[key] = re.sub(r"\$(\w+)", lambda m: values.get(m[1], ""), str(value))
    lines = [*pipeline.get("default", {}).get("before_script", []), *pipeline[job]["script"]]
    return env, without_pip("\n".join(lines))


class Repository:
    """A bare `origin` with main protected, the project committed on main, fresh clones."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.origin = folder / "origin.git"
        git("init", "--quiet", "--bare", "--initial-branch=main", str(self.origin))
        hook = self.origin / "hooks" / "pre-receive"
        hook.write_text(PROTECT_MAIN)
        hook.chmod(0o755)
        self.admin = self.clone("admin")

    def clone(self, name: str) -> Path:
        path = self.folder / f"{name}-{uuid.uuid4().hex[:6]}"
        git("clone", "--quiet", str(self.origin), str(path))
        git("-C", str(path), "checkout", "--quiet", "-B", "main")
        return path

    def merge(self, files: Mapping[str, str]) -> None:
        """A reviewed pull request lands on main (as an administrator may push)."""
        for name, text in files.items():
            (self.admin / name).parent.mkdir(parents=True, exist_ok=True)
            (self.admin / name).write_text(text)
        git("-C", str(self.admin), "add", "-A")
        git("-C", str(self.admin), "commit", "--quiet", "-m", "merge")
        git("-C", str(self.admin), "push", "--quiet", "origin", "main", ALLOW_MAIN="1")

    def show(self, ref: str) -> str:
        return git("--git-dir", str(self.origin), "show", ref).stdout

    def main_commit(self) -> str:
        return git("--git-dir", str(self.origin), "rev-parse", "main").stdout.strip()


def git(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    identity = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t"}
    identity["GIT_COMMITTER_EMAIL"] = "t@x"
    done = subprocess.run(
        ["git", *args], env={**os.environ, **identity, **env}, capture_output=True, text=True
    )
    assert done.returncode == 0, done
    return done


class Harness:
    """Runs jobs in fresh clones, with the CI's variables, stubs and the emulator's URL."""

    def __init__(self, folder: Path, emulator: EmulatorProcess) -> None:
        self.folder = folder
        self.repo = Repository(folder)
        stubs = folder / "stubs"
        stubs.mkdir()
        for name in ("gh", "curl"):
            (stubs / name).write_text(STUB)
            (stubs / name).chmod(0o755)
        self.stub_log = folder / "stubs.log"
        self.base = {
            **os.environ,
            **API_ENV,
            "PATH": os.pathsep.join([str(stubs), str(BIN), os.environ["PATH"]]),
            "OCTOPUSH_API_URL": emulator.url,
            "STUB_LOG": str(self.stub_log),
            "GITHUB_SHA": "0123abc",
            "CI_COMMIT_SHA": "0123abc",
            "STATE_REMOTE": str(self.repo.origin),
            "GIT_CONFIG_GLOBAL": str(folder / "gitconfig"),  # a recipe's `git config --global`
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@x",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@x",
        }
        self.base.pop("RUNNER_STATE", None)
        self.summary = folder / "step-summary.md"

    def github(
        self,
        name: str,
        job: str,
        secrets: Mapping[str, str] = {},
        between: Mapping[str, Callable[[Path], None]] = {},
    ) -> Job:
        env, steps = github_job(name, job, {**API_ENV, **secrets})
        work = self.repo.clone(job)
        env = {**self.base, **env, "GITHUB_STEP_SUMMARY": str(self.summary)}
        env["GITHUB_OUTPUT"] = str(self.folder / "github-output")
        event = self.folder / f"{job}-event.json"  # plan runs on pull request 7, apply on a push
        event.write_text('{"pull_request": {"number": 7}}' if job == "plan" else "{}")
        env |= {"GITHUB_EVENT_PATH": str(event), "GITHUB_REPOSITORY": "acme/campaigns"}
        failed, output = False, []
        for step in steps:
            wanted = "always()" in step.condition or (failed == ("failure()" in step.condition))
            if not wanted:
                continue
            if step.name in between:
                between[step.name](work)
            script = ["bash", "-eo", "pipefail", "-c", step.script]
            done = run_shell(script, work / step.folder, env | step.env)
            output.append(done.stdout + done.stderr)
            failed = failed or done.returncode != 0
        return Job(not failed, "".join(output), work)

    def gitlab(
        self, name: str, job: str, values: Mapping[str, str] = {}, before_store: str = ""
    ) -> Job:
        env, script = gitlab_job(name, job, values)
        if before_store:
            script = script.replace("\nstored=1\n", f"\n{before_store}\nstored=1\n", 1)
        work = self.repo.clone(job)
        done = run_shell(["sh", "-e", "-c", script], work, {**self.base, **values, **env})
        return Job(done.returncode == 0, done.stdout + done.stderr, work)


@dataclass(frozen=True)
class Job:
    ok: bool
    output: str
    work: Path

    def plan(self) -> str:
        """The plan the job showed: the action prints it; the GitLab recipes keep plan.md."""
        saved = self.work / "plan.md"
        return saved.read_text() if saved.exists() else self.output


def run_shell(command: list[str], cwd: Path, env: Mapping[str, str]) -> Any:
    return subprocess.run(
        command, cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=120
    )


def campaign(numbers: list[str], extra: str = "") -> dict[str, str]:
    listed = "".join(f'  - "{n}"\n' for n in numbers)
    return {"campaigns/notice.yaml": f"name: notice\ntext: Hello.\nrecipients:\n{listed}{extra}"}


@pytest.fixture
def harness(tmp_path: Path, emulator: EmulatorProcess) -> Harness:
    return Harness(tmp_path, emulator)


# file state on a dedicated branch ------------------------------------------------------------

STATE_BRANCH_RECIPES = {
    "github": "github-actions-state-branch.yml",
    "gitlab": "gitlab-ci-state-branch.yml",
}


def apply_job(harness: Harness, ci: str, **kwargs: Any) -> Job:
    name = STATE_BRANCH_RECIPES[ci]
    if ci == "github":
        return harness.github(name, "apply", **kwargs)
    return harness.gitlab(name, "apply", **kwargs)


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_state_branch_recipe_keeps_the_state_and_leaves_main_alone(
    harness: Harness, emulator: EmulatorProcess, ci: str
) -> None:
    harness.repo.merge({"runner.yaml": BASIC_CONFIG, **campaign(us_numbers(3))})
    main = harness.repo.main_commit()
    first = apply_job(harness, ci)
    assert first.ok, first.output
    assert len(emulator.sends()) == 1
    assert '"lineage"' in harness.repo.show("runner-state:runner.state.json")
    assert harness.repo.main_commit() == main  # nothing pushed to the protected branch

    harness.repo.merge(campaign(us_numbers(4)))  # a pull request adds one number
    name = STATE_BRANCH_RECIPES[ci]
    plan = harness.github(name, "plan") if ci == "github" else harness.gitlab(name, "plan")
    assert plan.ok, plan.output
    assert "1 call" in plan.plan()
    second = apply_job(harness, ci)
    assert second.ok, second.output
    assert sorted(emulator.pairs().values()) == [1, 1, 1, 1]  # the new number only, nobody twice


def racing_push(touch: str) -> Callable[[Path], None]:
    """Another writer pushes the state branch while this job applies."""

    def push(work: Path) -> None:
        other = work.parent / f"racer-{uuid.uuid4().hex[:6]}"
        origin = str(work.parent / "origin.git")
        git("clone", "--quiet", "--branch", "runner-state", origin, str(other))
        (other / touch).write_text('{"racer": true}\n')
        git("-C", str(other), "add", touch)
        git("-C", str(other), "commit", "--quiet", "-m", "racer")
        git("-C", str(other), "push", "--quiet", "origin", "runner-state")

    return push


STORE = "Store the state (also after a failed or cancelled apply)"


def racer(touch: str) -> str:
    """racing_push as a shell line, for GitLab's single script."""
    folder = f"../racer-{uuid.uuid4().hex[:6]}"
    return (
        f'git clone --quiet --branch runner-state "$STATE_REMOTE" {folder} && '
        f"echo '{{\"racer\": true}}' > {folder}/{touch} && git -C {folder} add {touch} && "
        f"git -C {folder} commit --quiet -m racer && "
        f"git -C {folder} push --quiet origin runner-state"
    )


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_a_rejected_push_is_rebased_and_retried_and_a_conflict_fails_loudly(
    harness: Harness, emulator: EmulatorProcess, ci: str
) -> None:
    harness.repo.merge({"runner.yaml": BASIC_CONFIG, **campaign(us_numbers(3))})
    assert apply_job(harness, ci).ok
    for count, (touch, ok) in enumerate([("NOTES", True), ("runner.state.json", False)], 4):
        harness.repo.merge(campaign(us_numbers(count)))
        race = racing_push(touch)
        if ci == "github":
            job = harness.github(STATE_BRANCH_RECIPES[ci], "apply", between={STORE: race})
        else:
            job = harness.gitlab(STATE_BRANCH_RECIPES[ci], "apply", before_store=racer(touch))
        assert job.ok is ok, job.output
        if ok:
            assert "racer" in harness.repo.show("runner-state:NOTES")
            assert '"lineage"' in harness.repo.show("runner-state:runner.state.json")
        else:
            assert "the state could not be pushed to runner-state" in job.output
    assert sorted(emulator.pairs().values()) == [1] * 5


# PostgreSQL: a read-only role for plans, a read-write one for apply --------------------------


@pytest.fixture
def database(postgres_server: PostgresServer) -> tuple[str, str]:
    """A fresh database with runner's tables; (read-write URL, SELECT-only URL)."""
    name = f"ci_{uuid.uuid4().hex[:8]}"
    writer = postgres_server.create_database(name)
    reader_role = f"plan_{uuid.uuid4().hex[:8]}"
    postgres_server.query(f"CREATE ROLE {reader_role} LOGIN PASSWORD '{PASSWORD}'", database=name)
    import psycopg

    from runner.state.pg_schema import migrate

    with psycopg.connect(writer, autocommit=True) as conn:
        migrate(conn, "test")  # what the first apply does with the read-write role
        tables = (
            "runner_schema_version, runner_snapshots, runner_records, runner_locks, runner_receipts"
        )
        conn.execute(f"GRANT SELECT ON {tables} TO {reader_role}")  # type: ignore[arg-type]
    reader = writer.replace("runner:", f"{reader_role}:", 1)
    return writer, reader


POSTGRES_RECIPES = {"github": "github-actions.yml", "gitlab": "gitlab-ci.yml"}


@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_postgres_recipe_plans_read_only_without_the_lock_and_applies_read_write(
    harness: Harness, emulator: EmulatorProcess, database: tuple[str, str], ci: str
) -> None:
    writer, reader = database
    config = BASIC_CONFIG + "project: acme\n"
    harness.repo.merge({"runner.yaml": config, **campaign(us_numbers(3))})
    secrets = {"RUNNER_STATE": writer, "RUNNER_STATE_READONLY": reader}
    name = POSTGRES_RECIPES[ci]

    def job(kind: str) -> Job:
        if ci == "github":
            return harness.github(name, kind, secrets)
        return harness.gitlab(name, kind, secrets)

    import psycopg

    with psycopg.connect(writer, autocommit=True) as holder:  # an apply is running meanwhile
        holder.execute("SELECT pg_advisory_lock(%s)", (lock_key("project:acme"),))
        plan = job("plan")
    assert plan.ok, plan.output
    assert "3 calls" in plan.plan()
    posted = harness.stub_log.read_text()
    assert (
        "merge_requests//notes" in posted or "POST repos/acme/campaigns/issues/7/comments" in posted
    )
    refused = run_shell(
        [sys.executable, "-m", "runner", "apply", "--auto-approve"],
        plan.work,
        {**harness.base, "RUNNER_STATE": reader},
    )
    assert refused.returncode == 1 and emulator.sends() == []  # the plan's role cannot apply
    assert PASSWORD not in refused.stdout + refused.stderr

    applied = job("apply")
    assert applied.ok, applied.output
    assert len(emulator.sends()) == 1
    if ci == "github":
        summary = harness.summary.read_text()
        assert "### runner plan" in summary and "### runner apply" in summary
        assert "Applied: 1 campaign" in summary
    again = job("apply")
    assert again.ok and len(emulator.sends()) == 1

    harness.repo.merge(campaign(us_numbers(4), 'send_at: "2020-01-01T09:00:00+00:00"\n'))
    blocked = job("apply")
    assert not blocked.ok, blocked.output  # blocked: the job fails, and says why
    assert "send_at 2020-01-01T09:00:00+00:00 is in the past" in blocked.output
    assert len(emulator.sends()) == 1
    assert DATABASE  # the session database is untouched: each test has its own
