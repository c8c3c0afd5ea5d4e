"""Shared fixtures: real project folders in tmp_path, driven through the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def output(self) -> str:
        return self.out + self.err

    def __repr__(self) -> str:
        return f"Result(code={self.code}, out={self.out!r}, err={self.err!r})"


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 120, stdin: str | None = None) -> Result:
    """Run `python -m runner ARGS` in a subprocess, as a user would."""
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "runner", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, input=stdin)
    return Result(proc.returncode, proc.stdout, proc.stderr)


class ProjectDir:
    """A throwaway runner project: write files, run commands in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "campaigns").mkdir(parents=True, exist_ok=True)

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    def run(self, *args: str, **kwargs: object) -> Result:
        return run_cli("-C", str(self.root), *args, **kwargs)  # type: ignore[arg-type]


BASIC_CONFIG = """
default_region: US
defaults:
  purpose: alert
  voice_gender: female
  voice_language: en-US
"""


@pytest.fixture
def project(tmp_path: Path) -> ProjectDir:
    p = ProjectDir(tmp_path / "proj")
    p.write("runner.yaml", BASIC_CONFIG)
    return p


@pytest.fixture
def cli() -> Callable[..., Result]:
    return run_cli
