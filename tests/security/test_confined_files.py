"""Every file runner reads stays in the project, out of `.git`, regular and bounded; every file
it writes is created without following a planted symlink (runner/files.py).

Each test is a hole a pull request could use once: it failed before runner/files.py existed.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import figures
import pytest
from conftest import Result
from expect import assert_refused, problem_lines
from hostile_repo import SECRETS, HostileRepo, assert_nothing_leaked


@pytest.fixture
def repo(tmp_path: Path) -> HostileRepo:
    return HostileRepo(tmp_path)


def test_a_default_templates_folder_linked_to_root_reads_nothing(repo: HostileRepo) -> None:
    repo.trap_default_templates_to_root()
    before = repo.snapshot()
    result = repo.run("plan", "--format", "markdown")
    assert_nothing_leaked(repo, before, result)
    assert_refused(
        result,
        "templates: this folder leads outside the project; make it a real folder inside the "
        "project",
    )


def test_dot_git_is_never_a_template_or_a_contact_file(repo: HostileRepo) -> None:
    repo.trap_dot_git_through_templates()
    repo.trap_dot_git_as_contacts()
    repo.trap_dot_folders_as_campaigns()
    before = repo.snapshot()
    result = repo.run("plan")
    assert_nothing_leaked(repo, before, result)
    never = "is in '.git', which runner never reads; keep it out of dot-folders"
    assert_refused(
        result,
        f"campaigns/git.yaml: file {never}",
        f"campaigns/drafts.yaml: file {never.replace('.git', '.drafts')}",
        f"campaigns/gitconfig.yaml:2: text: template '.git/config' {never}",
        f"campaigns/gitlink.yaml:2: text: template 'templates-link.j2' {never}",
        f"campaigns/gitcsv.yaml:4: recipients.file: '.git/config' {never}",
        f"campaigns/gitcsv.yaml:5: recipients.file: 'contacts/../.git/config' {never}",
        f"campaigns/gitcsv.yaml:6: recipients.file: 'contacts/git.csv' {never}",
    )


def test_symlinks_that_stay_in_the_project_are_followed(repo: HostileRepo) -> None:
    repo.write("templates/real.j2", "Hello from the template.")
    repo.link("templates/alias.j2", "real.j2")
    repo.write("lists/oncall.csv", "phone_number\n+12025550143\n")
    repo.link("contacts", "lists")
    repo.campaign("aliased", "template: alias.j2\n")
    repo.write("campaigns/listed.yaml", "name: listed\ntext: Hi\nrecipients:\n")
    with (repo.root / "campaigns/listed.yaml").open("a") as f:
        f.write("  - {file: contacts/oncall.csv}\n")
    result = repo.run("plan")
    assert result.code == 0, result
    assert "Hello from the template." in result.out


def test_a_state_file_named_in_runner_yaml_stays_in_the_project(repo: HostileRepo) -> None:
    repo.write("runner.yaml", (repo.root / "runner.yaml").read_text() + "state: ../state.json\n")
    assert_refused(
        repo.run("validate"),
        "runner.yaml:7: state: '../state.json' leads outside the project; use a path inside it",
    )
    operator = repo.tmp / "ci" / "state.json"  # --state and RUNNER_STATE are the operator's
    operator.parent.mkdir()
    repo.write("runner.yaml", (repo.root / "runner.yaml").read_text().replace("state: ", "#"))
    assert repo.run("--state", str(operator), "plan").code == 0


# writes ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("link", "target", "args"),
    [
        (".plan.json.tmp", ".git/config", ("plan", "--out", "{root}/plan.json")),
        ("plan.json", "{outside}/victim", ("plan", "--out", "{root}/plan.json")),
        ("runner.state.json.lock", "{outside}/victim", ("state", "accept", "ok")),
        ("runner.state.json.journal", "{outside}/victim", ("state", "accept", "ok")),
        ("runner.state.json.backup", "{outside}/victim", ("state", "accept", "ok")),
    ],
    ids=["plan-temp", "plan", "lock", "journal", "backup"],
)
def test_runner_never_writes_through_a_planted_symlink(
    repo: HostileRepo, link: str, target: str, args: tuple[str, ...]
) -> None:
    (repo.outside / "victim").write_text("" if "journal" in link else "precious\n")
    repo.link(link, target.format(outside=repo.outside))
    before = repo.snapshot()
    git_config = (repo.root / ".git/config").read_bytes()
    result = repo.run(*(a.format(root=repo.root) for a in args))
    assert_nothing_leaked(repo, before, result)
    assert (repo.root / ".git/config").read_bytes() == git_config
    assert (repo.root / link).is_symlink()  # neither followed nor silently replaced...
    if link == ".plan.json.tmp":  # ...and a temp name runner never uses is no obstacle
        assert result.code == 0, result
        assert (repo.root / "plan.json").is_file()
    else:  # the journal is read first: refused there, before any write
        [line] = result.err.splitlines()
        assert "is a symbolic link" in line or "leads outside the project" in line, line
    figures.add("planted write links refused")


# reads that never end --------------------------------------------------------------------------
def run_bounded(root: Path, *args: str) -> tuple[Result, float]:
    """The real command with 1 GiB of address space and 15 s: a regression fails, the host lives."""

    def limit() -> None:  # pragma: no cover - runs in the child
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "runner", "-C", str(root), *args],
        env={**os.environ, **SECRETS, "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=15,
        preexec_fn=limit,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr), time.monotonic() - started


def _huge_template(repo: HostileRepo) -> None:
    (repo.root / "templates").mkdir()
    with (repo.root / "templates/data.bin").open("wb") as f:
        f.truncate(1 << 30)  # sparse: 1 GiB to read, nothing on disk
    repo.link("templates/big.j2", "data.bin")
    repo.campaign("big", "template: big.j2\n")


def _replace(repo: HostileRepo, name: str, link: Callable[[str, str], None] | None) -> None:
    """`name` as a link to /dev/zero, or (no `link`) as a FIFO nobody writes to."""
    (repo.root / name).unlink()
    if link:
        link(name, "/dev/zero")
    else:
        os.mkfifo(repo.root / name)


ENDLESS = {
    "runner.yaml": (lambda r: _replace(r, "runner.yaml", r.link), ()),
    "runner.yaml-fifo": (
        lambda r: (r.root / "runner.yaml").unlink() or os.mkfifo(r.root / "runner.yaml"),
        (),
    ),
    "state": (lambda r: r.link("runner.state.json", "/dev/zero"), ()),
    "journal": (lambda r: r.link("runner.state.json.journal", "/dev/zero"), ()),
    "--state": (lambda r: None, ("--state", "/dev/zero")),
    "--var-file": (lambda r: None, ("--var-file", "/dev/zero")),
    "template": (_huge_template, ()),
}


@pytest.mark.parametrize("case", ENDLESS)
def test_reads_that_would_never_end_are_refused_at_once(repo: HostileRepo, case: str) -> None:
    plant, extra = ENDLESS[case]
    plant(repo)
    if case == "--var-file":
        result, seconds = run_bounded(repo.root, "plan", *extra)
    else:
        result, seconds = run_bounded(repo.root, *extra, "plan")
    assert result.code == 1, result
    assert "Traceback" not in result.output and "internal error" not in result.output, result
    assert seconds < 10, seconds
    [line] = [x for x in result.err.splitlines() if not x.endswith("nothing was sent.")]
    assert any(
        reason in line
        for reason in (
            "leads outside the project",
            "is not a regular file (a device, FIFO or folder)",
            "is larger than 256 KiB",
            "is a symbolic link; name the file itself",
        )
    ), line
    figures.add("endless reads refused")


def test_a_nul_byte_in_a_file_name_is_one_line(repo: HostileRepo) -> None:
    repo.trap_nul_in_names()
    lines = problem_lines(repo.run("validate"))
    assert sorted(lines) == [
        "campaigns/nul.yaml:4: recipients.file: 'contacts/a\\0b.csv' contains a NUL byte; "
        "fix the name",
        # the NUL shown escaped, as every control character on a terminal
        "campaigns/nultemplate.yaml:2: template: template 'a\\x00b.j2' contains a NUL byte; "
        "fix the name",
    ]
