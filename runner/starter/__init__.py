"""`runner init`: a starting project, from files shipped in this package.

A config, one campaign with its template and contacts, the schemas editors read through the
`# yaml-language-server` comments, and a .gitignore that keeps saved plans (they hold raw
numbers), locks and backups out of git. Nothing is overwritten: one existing file, and
nothing is written at all.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from runner import schemas
from runner.errors import RunnerError

# where each file goes in the new project, and where it comes from in this package
STARTER_FILES = {
    "runner.yaml": "runner.yaml",
    "campaigns/welcome.yaml": "campaigns/welcome.yaml",
    "templates/welcome.j2": "templates/welcome.j2",
    "contacts/team.csv": "contacts/team.csv",
    ".gitignore": "gitignore",
}
SCHEMA_FILES = {f"schemas/{name}.schema.json": name for name in ("campaign", "config")}


@dataclass(frozen=True)
class Answers:
    """What `init` asks on a terminal; the defaults are used without one."""

    region: str = "US"
    language: str = "en-US"


def starter_files(answers: Answers) -> dict[str, str]:
    """Every file of a new project, by path relative to its folder."""
    package = resources.files(__name__)
    files = {
        target: package.joinpath(source).read_text(encoding="utf-8")
        for target, source in STARTER_FILES.items()
    }
    files["runner.yaml"] = Template(files["runner.yaml"]).safe_substitute(
        region=answers.region, language=answers.language
    )
    files |= {target: schemas.schema_text(name) for target, name in SCHEMA_FILES.items()}
    return files


def create_project(folder: Path, answers: Answers) -> list[str]:
    """Write the starting project into `folder`; refuse if any of its files exists already."""
    files = starter_files(answers)
    existing = [name for name in files if os.path.lexists(folder / name)]
    if existing:
        raise RunnerError(
            f"{folder}: {', '.join(existing)} already exist(s); nothing was written: "
            "run `runner init` in a new or empty folder"
        )
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="utf-8") as f:  # "x": never over a file made meanwhile
            f.write(text)
    return list(files)
