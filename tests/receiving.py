"""The receipts loop as a user runs it: `runner receipts serve` for a project (receiver.py),
the emulator POSTing receipts to it, and `runner status` read until every call has its receipt."""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from conftest import EmulatorProcess, ProjectDir
from receiver import ReceiverProcess


def webhook_options(receiver: ReceiverProcess, *scripts: str) -> tuple[str, ...]:
    """Emulator options: receipts to `receiver` quickly, each `+NUMBER=STATUS,...` scripted."""
    options = ["--webhook", receiver.url, "--receipt-delay", "0.05"]
    for script in scripts:
        options += ["--receipts-for", script]
    return tuple(options)


def status(project: ProjectDir, *names: str) -> dict[str, Any]:
    result = project.run("status", *names, "--format", "json")
    assert result.code == 0, result
    data: dict[str, Any] = json.loads(result.out)
    return data


def settled_status(project: ProjectDir, *names: str, timeout: float = 20) -> dict[str, Any]:
    """`runner status` once no call awaits its receipt any more."""
    deadline = time.monotonic() + timeout
    while True:
        data = status(project, *names)
        awaiting = sum(m["awaiting"] for c in data["campaigns"] for m in c["messages"])
        if awaiting == 0 or time.monotonic() > deadline:
            assert awaiting == 0, data
            return data
        time.sleep(0.1)


def calls_per_number(emulator: EmulatorProcess) -> Counter[str]:
    """Calls each number got, as the provider recorded them."""
    return Counter(n for send in emulator.sends() for n in send["recipients"])
