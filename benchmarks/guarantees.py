"""Run the reliability and security suites and print the figures the README quotes.

Usage: python benchmarks/guarantees.py [pytest options]

The tests count what they do (tests/figures.py); this script collects the counts of one run
through RUNNER_FIGURES and prints them as the README's table. A failing test fails the script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROWS = [
    ("fault-matrix modes", "fault modes applied to 20 campaigns / 6,050 recipients"),
    ("fault-matrix applies", "applies run until success under those faults"),
    ("faults injected", "faults met by the client (429, 500, dropped connections)"),
    ("crash trials", "crash-loop trials"),
    ("SIGKILLs", "applies killed with SIGKILL"),
    ("SIGKILLs mid state write", "of which in the middle of a state write"),
    ("crashes recovered past 24 h", "crashes recovered past the 24 h window"),
    ("refused re-sends kept pending", "re-sends refused (104, 101) and kept pending"),
    ("re-sends stopped at send time", "saved-plan re-sends stopped at send time past 23 h"),
    ("clock-skew trials", "runs with a wrong local or provider clock"),
    ("requests saved by stopping", "requests not made after an out-of-credit refusal"),
    ("concurrent applies", "applies started at once on one state"),
    ("disk faults injected", "read-only or full state folders"),
    ("calls checked", "calls checked in the emulator's record"),
    ("duplicates", "duplicate calls"),
    ("losses", "lost calls"),
    ("fuzzed inputs", "inputs fuzzed"),
    ("fuzzed inputs refused", "of which refused (nothing sent, state unchanged)"),
    ("sandbox payloads refused", "sandbox escape payloads refused"),
    ("hostile files refused", "hostile-file checks (traversal, symlinks, formulas, NUL, bombs)"),
    ("secret-scan runs", "commands scanned for the API key"),
    ("hostile-repo runs scanned", "hostile-PR runs scanned for secrets (5 layouts x 6 commands)"),
    ("endless reads refused", "reads that would never end, refused at once"),
    ("planted write links refused", "planted write links refused"),
    ("costly templates refused", "costly templates refused (nesting, chains, size, huge numbers)"),
    ("costly-template run, slowest ms", "slowest validate/plan/apply of them all, in ms"),
    ("crafted states refused", "crafted states, journals, database records and lock files refused"),
]


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "figures.json"
        started = time.monotonic()
        command = [sys.executable, "-m", "pytest", "-q", "tests/reliability", "tests/security"]
        code = subprocess.call(
            [*command, *sys.argv[1:]], cwd=REPO, env={**os.environ, "RUNNER_FIGURES": str(target)}
        )
        elapsed = time.monotonic() - started
        figures = json.loads(target.read_text()) if target.exists() else {}
    print("\n| figure | value |\n|---|---:|")
    for key, label in ROWS:
        print(f"| {label} | {figures.get(key, 0):,} |")
    print(f"\n{'passed' if code == 0 else 'FAILED'} in {elapsed:.0f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
