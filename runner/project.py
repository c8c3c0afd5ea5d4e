"""The offline pipeline in one call: files in, rendered campaigns (or every problem) out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    if config_file is None and not path.exists():
        return Config(root=root), []
    documents, problems = read_yaml(path, _shown(path, root))
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
    return read_config(documents[0] if documents else None, root)


def campaign_files(config: Config) -> tuple[list[Path], list[Problem]]:
    folder = config.root / config.campaigns
    root = config.root.resolve()
    if not folder.resolve().is_relative_to(root):
        return [], [
            Problem(
                config.path or CONFIG_NAME,
                None,
                "campaigns",
                "the campaigns folder must be inside the project",
            )
        ]
    if not folder.is_dir():
        return [], [
            Problem(
                _shown(folder, config.root),
                None,
                "",
                "campaigns folder not found; create it or set 'campaigns:' in runner.yaml",
            )
        ]
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    outside = [p for p in files if not p.resolve().is_relative_to(root)]
    problems = [
        Problem(_shown(p, config.root), None, "", "links outside the project; refused")
        for p in outside
    ]
    return [p for p in files if p not in outside], problems


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
    files, problems = campaign_files(config)
    documents: list[Document] = []
    for path in files:
        found, file_problems = read_yaml(path, _shown(path, root))
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
        documents, found = read_yaml(Path(name), name)
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
