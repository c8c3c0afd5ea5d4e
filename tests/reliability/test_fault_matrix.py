"""Every emulator fault, alone and mixed, on a 20-campaign project: each call made exactly once.

apply runs until it succeeds (a batch whose retries all fail stays pending and is re-sent with
the same request_id next time). The client's debug log says which faults it met, so a mode that
injected nothing fails instead of passing for the wrong reason.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

import figures
import pytest
from conftest import EmulatorProcess, ProjectDir
from delivery import apply_until_success, assert_exactly_once, write_big_project

# 20 campaigns, 6,050 recipients, 25 batches: five campaigns need two batches of up to 500
SIZES = [520 if i % 4 == 0 else 230 for i in range(20)]
MODES: dict[str, tuple[str, ...]] = {
    "latency": ("--latency", "0.05"),
    "429": ("--rate-429", "0.6", "--retry-after", "0"),
    "500-before": ("--rate-500-before", "0.6"),
    "500-after": ("--rate-500-after", "0.6"),
    "drop-after": ("--rate-drop-after", "0.6"),
    "mixed": (
        *("--latency", "0.01", "--rate-429", "0.15", "--retry-after", "0"),
        *("--rate-500-before", "0.15", "--rate-500-after", "0.15", "--rate-drop-after", "0.15"),
    ),
}
# what the client's -vv log shows of each fault: an answer's status, or a lost connection
SEEN = {
    "429": re.compile(r" -> 429 attempt "),
    "500": re.compile(r" -> 500 attempt "),
    "dropped": re.compile(r" attempt \d+ failed: "),
}
EXPECTED = {
    "latency": set(),
    "429": {"429"},
    "500-before": {"500"},
    "500-after": {"500"},
    "drop-after": {"dropped"},
    "mixed": {"429", "500", "dropped"},
}


def faults_seen(log: str) -> Counter[str]:
    return Counter({name: len(pattern.findall(log)) for name, pattern in SEEN.items()})


@pytest.mark.parametrize("mode", list(MODES))
def test_each_fault_mode_ends_in_exactly_once(
    mode: str, project: ProjectDir, emulators: Callable[..., EmulatorProcess]
) -> None:
    wanted = write_big_project(project, SIZES)
    assert len(SIZES) >= 20 and len({n for _, n in wanted}) >= 5000
    emulator = emulators(*MODES[mode], seed=len(mode))
    runs = apply_until_success(project, emulator.url, verbose=True)
    seen = sum((faults_seen(r.err) for r in runs), Counter())
    assert {name for name, count in seen.items() if count} == EXPECTED[mode], seen
    assert_exactly_once(emulator.pairs(), wanted)
    figures.add("fault-matrix modes")
    figures.add("fault-matrix applies", len(runs))
    figures.add("faults injected", sum(seen.values()))

    again = apply_until_success(project, emulator.url)
    assert "No changes" in again[0].out
    assert sum(emulator.pairs().values()) == len(wanted)
