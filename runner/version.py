"""runner's version: pyproject.toml is its one source, read back from the installed metadata."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

# The name on the package index: `runner` there is an unrelated project.
DISTRIBUTION = "voice-campaign-runner"


def version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return _source_tree_version()


def _source_tree_version() -> str:
    """Run from a clone that was never installed (`PYTHONPATH=. python -m runner`)."""
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        with pyproject.open("rb") as file:
            found = tomllib.load(file)["project"]["version"]
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError):
        return "0+unknown"
    return str(found) if isinstance(found, str) else "0+unknown"
