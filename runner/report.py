"""Stage 6: everything a person or a machine reads. The core never prints; it returns records."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from runner.errors import Problem
from runner.project import Project
from runner.recipients import mask_number
from runner.render import Campaign

FORMAT_VERSION = 1
BATCH_SIZE = 500
SHOWN_NUMBERS = 10


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def batches_for(count: int) -> int:
    return math.ceil(count / BATCH_SIZE)


def problems_text(problems: Iterable[Problem]) -> str:
    lines = [str(p) for p in problems]
    return "\n".join([*lines, f"{plural(len(lines), 'problem')}; nothing was sent."])


def problems_json(problems: Iterable[Problem]) -> dict[str, Any]:
    return {"format_version": FORMAT_VERSION, "valid": False,
            "problems": [p._asdict() for p in problems]}


def notes(project: Project) -> list[str]:
    return [f"{c.path}:{c.line}: recipients: {plural(c.duplicates, 'duplicate number')} dropped"
            for c in project.campaigns if c.duplicates]


def validate_text(project: Project) -> str:
    recipients = sum(c.recipients for c in project.campaigns)
    messages = sum(len(c.messages) for c in project.campaigns)
    summary = (f"ok: {plural(len(project.campaigns), 'campaign')}, "
               f"{plural(recipients, 'recipient')}, {plural(messages, 'message')}")
    return "\n".join([*notes(project), summary])


def validate_json(project: Project) -> str:
    data = {
        "format_version": FORMAT_VERSION,
        "valid": True,
        "problems": [],
        "notes": notes(project),
        "campaigns": [{"name": c.name, "path": c.path, "line": c.line,
                       "recipients": c.recipients, "messages": len(c.messages),
                       "duplicates_dropped": c.duplicates} for c in project.campaigns],
    }
    return json.dumps(data, indent=2)


def numbers_text(numbers: Iterable[str], show: bool) -> str:
    numbers = list(numbers)
    if show:
        return ", ".join(numbers)
    shown = ", ".join(mask_number(n) for n in numbers[:SHOWN_NUMBERS])
    rest = len(numbers) - SHOWN_NUMBERS
    return shown + (f" and {rest:,} more" if rest > 0 else "")


def indent(text: str, prefix: str = "    | ") -> str:
    return "\n".join(prefix + line for line in text.splitlines() or [""])


def campaign_text(campaign: Campaign, show_recipients: bool) -> str:
    lines = [f"{campaign.name}  ({campaign.path}:{campaign.line})"]
    dropped = f" ({plural(campaign.duplicates, 'duplicate')} dropped)" if campaign.duplicates else ""
    lines.append(f"  {plural(campaign.recipients, 'recipient')}{dropped}, "
                 f"{plural(len(campaign.messages), 'message')}, "
                 f"{plural(sum(batches_for(len(m.numbers)) for m in campaign.messages), 'batch')}"
                 .replace("batchs", "batches"))
    for i, message in enumerate(campaign.messages, 1):
        settings = ", ".join(f"{k}={v}" for k, v in message.body.items() if k != "text")
        lines.append(f"  message {i} of {len(campaign.messages)} "
                     f"[{message.fingerprint[:12]}]: {plural(len(message.numbers), 'recipient')}, "
                     f"{batches_for(len(message.numbers))} batch(es); {settings}")
        lines.append(indent(str(message.body["text"])))
        lines.append(f"    to: {numbers_text(message.numbers, show_recipients)}")
    return "\n".join(lines)


def render_text(campaigns: Iterable[Campaign], show_recipients: bool) -> str:
    return "\n\n".join(campaign_text(c, show_recipients) for c in campaigns)
