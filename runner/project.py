"""The offline pipeline in one call: files in, rendered campaigns (or every problem) out."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner import files
from runner.bulk import paused_gc
from runner.errors import InputError, Problem
from runner.load import Document, read_yaml
from runner.render import Campaign, render_all
from runner.validate import Config, campaign_specs, read_config

CONFIG_NAME = "runner.yaml"


@dataclass(frozen=True)
class Project:
    config: Config
    campaigns: tuple[Campaign, ...]

    def campaign(self, name: str) -> Campaign | None:
        return next((c for c in self.campaigns if c.name == name), None)


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def load_config(root: Path, config_file: Path | None) -> tuple[Config, list[Problem]]:
    path = config_file or root / CONFIG_NAME
    if config_file is None and not os.path.lexists(path):
        return _with_folders_checked(Config(root=root))
    documents, problems = read_yaml(path, _shown(path, root), root)
    if problems:
        return Config(root=root), problems
    if len(documents) > 1:
        return Config(root=root), [
            Problem(
                documents[1].path,
                documents[1].line,
                "",
                "runner.yaml holds one document; remove the '---'",
            )
        ]
    config, problems = read_config(documents[0] if documents else None, root)
    return (config, problems) if problems else _with_folders_checked(config)


def _with_folders_checked(config: Config) -> tuple[Config, list[Problem]]:
    """The default folders too: a committed `templates -> /` must not open the whole disk."""
    problems = []
    for folder in (config.campaigns, config.templates):
        try:
            files.project_path(config.root, folder)
        except files.Outside:
            reason = "leads outside the project; make it a real folder inside the project"
            problems.append(Problem(folder, None, "", f"this folder {reason}"))
        except files.Refused as e:
            problems.append(Problem(folder, None, "", f"this folder {e}"))
    return config, problems


def campaign_files(config: Config) -> list[Path]:
    """Every YAML file under the campaigns folder, dot-folders and linked folders left out."""
    folder = config.root / config.campaigns
    found = []
    for top, folders, names in os.walk(folder):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        found += [Path(top, n) for n in names if n.endswith((".yaml", ".yml")) and n[0] != "."]
    return sorted(found)


def _missing_campaigns(config: Config) -> list[Problem]:
    if (config.root / config.campaigns).is_dir():
        return []
    return [
        Problem(
            config.campaigns,
            None,
            "",
            "campaigns folder not found; create it or set 'campaigns:' in runner.yaml",
        )
    ]


def load_project(
    root: Path,
    config_file: Path | None = None,
    variables: Mapping[str, Any] | None = None,
    known: Sequence[AbstractSet[str]] = (),
) -> Project:
    """Load, validate and render everything; raise InputError listing every problem found.

    `known` holds digests of numbers delivered before (from the state): a number written in
    E.164 whose digest is there was valid when it was sent, and is not parsed again.
    """
    config, problems = load_config(root, config_file)
    if problems:
        raise InputError(problems)
    problems = _missing_campaigns(config)
    documents: list[Document] = []
    for path in campaign_files(config):
        found, file_problems = read_yaml(path, _shown(path, root), root, hidden_ok=False)
        documents += found
        problems += file_problems
    specs, spec_problems = campaign_specs(documents, config)
    with paused_gc():
        campaigns, render_problems = render_all(config, specs, variables or {}, known)
    problems += spec_problems + render_problems
    if problems:
        raise InputError(problems)
    return Project(config, tuple(campaigns))


def parse_variables(pairs: tuple[str, ...], files: tuple[str, ...], root: Path) -> dict[str, Any]:
    """--var-file values first, then --var K=V, the last one winning."""
    variables: dict[str, Any] = {}
    problems: list[Problem] = []
    for name in files:
        documents, found = read_yaml(Path(name), name, root)
        problems += found
        for document in documents:
            if isinstance(document.data, dict):
                variables.update(document.data)
            else:
                problems.append(Problem(name, document.line, "", "expected a mapping of variables"))
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            problems.append(Problem("--var", None, "", f"'{pair}' is not KEY=VALUE"))
        variables[key.strip()] = value
    if problems:
        raise InputError(problems)
    return variables
