"""Helpers shared by the benchmark scripts: generated projects and interleaved timing."""

from __future__ import annotations

import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import phonenumbers

sys.path.insert(0, str(Path(__file__).parent))
import realistic

CONFIG = """\
default_region: US
defaults:
  purpose: alert
  voice_gender: female
  voice_language: en-US
  sender: ACME
vars:
  company: ACME Energy
"""

CAMPAIGN = """\
name: campaign-{i:05d}
text: >-
  Hello from {{{{ company }}}}. Campaign {i} reminds you that {{{{ topic }}}} happens on
  {{{{ day }}}}. Call us back if you have questions about notice {i}.
vars:
  topic: maintenance number {i}
  day: Saturday
recipients:
{recipients}
"""


@functools.cache
def _area_codes() -> list[int]:
    """US area codes where phonenumbers accepts the fictional 555-01XX range."""
    return [
        a
        for a in range(201, 990)
        if phonenumbers.is_valid_number(phonenumbers.parse(f"+1{a}5550100"))
        and phonenumbers.is_valid_number(phonenumbers.parse(f"+1{a}5550199"))
    ]


def fictional_number(i: int) -> str:
    """US fictional numbers: +1 NPA 555 01XX, 100 per area code (about 30,000 in all)."""
    codes = _area_codes()
    return f"+1{codes[(i // 100) % len(codes)]}55501{i % 100:02d}"


def write_project(root: Path, campaigns: int, per_campaign: int = 3) -> Path:
    (root / "campaigns").mkdir(parents=True, exist_ok=True)
    (root / "runner.yaml").write_text(CONFIG)
    for i in range(campaigns):
        recipients = "\n".join(
            f'  - "{fictional_number(i * per_campaign + k)}"' for k in range(per_campaign)
        )
        (root / "campaigns" / f"c{i:05d}.yaml").write_text(
            CAMPAIGN.format(i=i, recipients=recipients)
        )
    return root


def easy_list(count: int) -> list[str]:
    """`count` distinct valid US numbers, +1 NPA 555 XXXX: ~100 shapes, the flattering case."""
    codes = _area_codes()
    if count > len(codes) * 10_000:
        sys.exit(f"at most {len(codes) * 10_000:,} numbers")
    return [
        f"+1{area}555{k:04d}"
        for start, area in zip(range(0, count, 10_000), codes, strict=False)
        for k in range(min(10_000, count - start))
    ]


def write_big_list(root: Path, count: int, kind: str = "easy", invalid: int = 0) -> Path:
    """One campaign whose CSV holds `count` numbers: `easy` (easy_list) or `realistic`
    (benchmarks/realistic.py: many countries and formats, 1% repeats, `invalid` bad rows)."""
    (root / "campaigns").mkdir(parents=True, exist_ok=True)
    (root / "contacts").mkdir(exist_ok=True)
    (root / "runner.yaml").write_text(CONFIG)
    if kind == "easy":
        rows = realistic.with_invalid(easy_list(count), invalid) if invalid else easy_list(count)
    else:
        rows = realistic.cached_rows(count, invalid)
    with open(root / "contacts" / "big.csv", "w") as f:
        f.write("phone_number\n")
        f.writelines(f"{row}\n" for row in rows)
    (root / "campaigns" / "big.yaml").write_text(
        "name: big\ntext: Hello from {{ company }}.\nrecipients:\n  - file: contacts/big.csv\n"
    )
    return root


def measured(
    command: list[str], env: dict[str, str] | None = None, refused: str | None = None
) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one run of `command`, which must succeed; or, given
    `refused`, exit 1 with that text in its output (a list with bad rows, say)."""
    with tempfile.TemporaryFile() as output:
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        output.seek(0)
        text = output.read().decode(errors="replace")
        expected = proc.returncode in (0, 2) if refused is None else proc.returncode == 1
        if not expected or (refused is not None and refused not in text):
            sys.exit(f"{' '.join(command)} failed ({proc.returncode}):\n{text[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024


def timed(command: list[str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 2):
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def interleaved(runs: int, **commands: Callable[[], float]) -> dict[str, float]:
    """Run each command once per round, `runs` rounds; return each one's median."""
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            samples[name].append(command())
    return {name: statistics.median(values) for name, values in samples.items()}
