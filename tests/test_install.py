"""The wheel alone makes a working `runner`, as `pipx install voice-campaign-runner` would.

The wheel is built from a copy of the sources (with its version bumped, to see which copy runs)
and installed into a fresh virtualenv outside the source tree. That virtualenv reaches the
dependencies already installed here through a `.pth` line, which adds a folder to sys.path
without running its `.pth` files: the editable install of this clone stays out of sight, and
nothing is downloaded.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest
from conftest import API_ENV, REPO, EmulatorProcess, us_numbers

from runner import version

WHEEL_VERSION = "9.8.7"
SOURCES_LEFT_OUT = shutil.ignore_patterns(
    ".*", "build", "dist", "*.egg-info", "__pycache__", "tests", "benchmarks", "runner.state.json*"
)


def build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=SOURCES_LEFT_OUT, symlinks=True)
    pyproject = source / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    assert '\nversion = "' in text
    pyproject.write_text(
        text.replace(f'\nversion = "{version.version()}"', f'\nversion = "{WHEEL_VERSION}"', 1),
        encoding="utf-8",
    )
    out = tmp_path / "dist"
    pip(["wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)])
    shutil.rmtree(source)  # the installed copy must not lean on it
    [wheel] = out.glob("voice_campaign_runner-*.whl")
    return wheel


def pip(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def install(wheel: Path, home: Path) -> Path:
    """A virtualenv with only the wheel in it, then the dependencies made visible."""
    venv.EnvBuilder(with_pip=False, symlinks=True).create(home)
    python = home / "bin" / "python"
    pip(["--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)])
    [site] = home.glob("lib/python3*/site-packages")
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return home / "bin" / "runner"


def test_the_wheel_carries_everything_runner_needs(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert "runner/schemas/campaign.schema.json" in names
    metadata = zipfile.ZipFile(wheel).read(
        f"voice_campaign_runner-{WHEEL_VERSION}.dist-info/METADATA"
    )
    assert b"Provides-Extra: postgres" in metadata  # `pipx install '...[postgres]'`
    runner = install(wheel, tmp_path / "venv")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "RUNNER_STATE")}
    env["NO_COLOR"] = "1"

    def run(*args: str, extra: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [str(runner), *args],
            cwd=work,
            env={**env, **(extra or {})},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done
        return done.stdout

    where = subprocess.run(
        [str(tmp_path / "venv/bin/python"), "-c", "import runner; print(runner.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.stdout.startswith(str(tmp_path / "venv")), where
    assert run("--version") == f"runner, version {WHEEL_VERSION}\n"
    assert '"$schema"' in run("schema", "campaign")
    run("init", "started")  # init's starter files are package data too
    assert (work / "started" / "runner.yaml").is_file()
    assert run("-C", "started", "validate").startswith("ok: ")
    write_project(work)
    assert run("validate").startswith("ok: 1 campaign, 2 recipients")
    assert "notice" in run("apply", "--emulator", "--auto-approve")
    emulator = EmulatorProcess(tmp_path, (), seed=7)
    try:
        extra = {**API_ENV, "OCTOPUSH_API_URL": emulator.url}
        run("apply", "--auto-approve", extra=extra)
        assert sorted(n for s in emulator.sends() for n in s["recipients"]) == us_numbers(2)
    finally:
        emulator.stop()


def write_project(root: Path) -> None:
    (root / "campaigns").mkdir()
    (root / "runner.yaml").write_text(
        "defaults: {purpose: alert, voice_gender: female, voice_language: en-US}\n"
    )
    numbers = "".join(f'  - "{n}"\n' for n in us_numbers(2))
    campaign = f"name: notice\ntext: Hello.\nrecipients:\n{numbers}"
    (root / "campaigns/notice.yaml").write_text(campaign)


def test_the_version_comes_from_pyproject_in_a_clone_never_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def not_installed(name: str) -> str:
        raise version.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(version.metadata, "version", not_installed)
    assert (
        version.version()
        == version.tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
            "version"
        ]
    )


def test_every_install_line_in_the_docs_names_the_distribution() -> None:
    """`pip install runner` would install an unrelated project from the index."""
    wrong = []
    docs = [REPO / "README.md", REPO / "action" / "run.sh", REPO / "Dockerfile"]
    for path in [*docs, *sorted((REPO / "examples").rglob("*.yml"))]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            pattern = r"(?:\bpipx? install\b[^#`]*?\s|RUNNER_PACKAGE: )['\"]?(runner\b[^\s'\"]*)"
            for spec in re.findall(pattern, line):
                wrong.append(f"{path.name}:{number}: {spec}")
    assert not wrong
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "pipx install voice-campaign-runner" in readme
