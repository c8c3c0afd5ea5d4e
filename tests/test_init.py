"""`runner init`: a starting project that validates, plans and applies, and overwrites nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import run_cli

CREATED = [
    "runner.yaml",
    "campaigns/welcome.yaml",
    "templates/welcome.j2",
    "contacts/team.csv",
    ".gitignore",
    "schemas/campaign.schema.json",
    "schemas/config.schema.json",
]


def test_init_makes_a_project_that_works_without_asking(tmp_path: Path) -> None:
    made = run_cli("-C", str(tmp_path), "init", "alerts", stdin="")  # no terminal: no question
    assert made.code == 0, made
    folder = tmp_path / "alerts"
    assert made.out.splitlines()[1:8] == [f"  {name}" for name in CREATED]
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == sorted(
        CREATED
    )
    valid = run_cli("-C", str(folder), "validate")
    assert valid.out == "ok: 1 campaign, 2 recipients, 2 messages\n"
    plan = run_cli("-C", str(folder), "plan")
    assert "Plan: 1 campaign, 2 calls in 2 batches" in plan.out, plan
    assert (
        "# yaml-language-server: $schema=../schemas/campaign.schema.json"
        in (folder / "campaigns/welcome.yaml").read_text()
    )
    applied = run_cli("-C", str(folder), "apply", "--emulator", "--auto-approve")
    assert applied.code == 0, applied


def test_the_gitignore_keeps_saved_plans_locks_and_backups_out(tmp_path: Path) -> None:
    assert run_cli("init", str(tmp_path), stdin="").code == 0
    subprocess.run(["git", "init", "--quiet", str(tmp_path)], check=True)
    names = [
        "plan.json",
        "tonight.plan.json",
        "runner.state.json.lock",
        "runner.state.json.backup",
        "runner.state.json.journal",
        ".runner.state.json.123.tmp",
        "runner.state.json",
        "campaigns/welcome.yaml",
    ]
    ignored = subprocess.run(
        ["git", "-C", str(tmp_path), "check-ignore", *names], capture_output=True, text=True
    ).stdout.split()
    assert ignored == names[:6]  # the state itself and the campaigns are committed


def test_init_overwrites_nothing(tmp_path: Path) -> None:
    (tmp_path / "campaigns").mkdir()
    (tmp_path / "campaigns" / "welcome.yaml").write_text("mine\n")
    refused = run_cli("init", str(tmp_path), stdin="")
    assert refused.code == 1
    assert refused.err == (
        f"runner: {tmp_path}: campaigns/welcome.yaml already exist(s); nothing was written: "
        "run `runner init` in a new or empty folder\n"
    )
    assert [p.name for p in tmp_path.rglob("*")] == ["campaigns", "welcome.yaml"]
    assert (tmp_path / "campaigns" / "welcome.yaml").read_text() == "mine\n"
