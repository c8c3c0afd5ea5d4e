"""`runner status` for people (text), pull requests (markdown) and machines (json).

No phone number is known here to print: receipts and state hold digests only.
"""

from __future__ import annotations

import json
from typing import Any

from runner.counts import plural
from runner.escape import json_text, md_code, terminal
from runner.report import FORMAT_VERSION
from runner.status import MessageStatus, StatusReport

# The columns a person reads, in the words of a paging tool; the json keeps the provider's.
COLUMNS = (
    ("delivered", ("DELIVERED",)),
    ("busy", ("BUSY",)),
    ("no answer", ("NOT_DELIVERED",)),
    ("refused", ("REFUSED",)),
    ("blacklisted", ("BLACKLISTED_NUMBER",)),
    ("undeliverable", ("NOT_DELIVERABLE",)),
)
# Everything else counts as unknown: UNKNOWN_DELIVERY, UNDEFINED and any newer word.
NAMED = frozenset(s for _, keys in COLUMNS for s in keys)
TEXT_PREVIEW = 60


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


def _counts(message: MessageStatus) -> list[tuple[str, int]]:
    shown = [(label, sum(message.statuses[s] for s in keys)) for label, keys in COLUMNS]
    unknown = sum(n for s, n in message.statuses.items() if s not in NAMED)
    return [*shown, ("unknown", unknown), ("awaiting a receipt", message.awaiting)]


def _preview(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TEXT_PREVIEW else line[: TEXT_PREVIEW - 1] + "…"


def status_text(report: StatusReport) -> str:
    lines: list[str] = []
    for campaign in report.campaigns:
        lines.append(terminal(campaign.name))
        for m in campaign.messages:
            lines.append(
                f"  message {m.fingerprint[:12]}: {terminal(repr(_preview(m.text)))}\n"
                f"    called {plural(m.called, 'recipient')} ({plural(m.calls, 'call')}): "
                + ", ".join(f"{label} {n:,}" for label, n in _counts(m))
                + f"\n    call time {_duration(m.call_seconds)}, charged "
                f"{_duration(m.charged_seconds)}, cost {m.cost:,.2f} €"
            )
    if not report.campaigns:
        lines.append("The state is empty: nothing has been called yet.")
    unknown = report.unknown
    if unknown.receipts:
        lines.append(
            f"Receipts for tickets the state does not know: {unknown.receipts:,} "
            f"({plural(unknown.tickets, 'ticket')}); another project's calls, or a forgotten "
            "campaign's"
        )
    return "\n".join(lines)


def status_data(report: StatusReport) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "campaigns": [
            {"name": c.name, "messages": [_message_data(m) for m in c.messages]}
            for c in report.campaigns
        ],
        "unknown_tickets": {
            "tickets": report.unknown.tickets,
            "receipts": report.unknown.receipts,
            "statuses": report.unknown.statuses,
        },
    }


def _message_data(m: MessageStatus) -> dict[str, Any]:
    return {
        "fingerprint": m.fingerprint,
        "called": m.called,
        "statuses": m.statuses,
        "awaiting": m.awaiting,
        "calls": m.calls,
        "call_duration": m.call_seconds,
        "charged_duration": m.charged_seconds,
        "cost": m.cost,
    }


def status_json(report: StatusReport) -> str:
    return json_text(json.dumps(status_data(report), indent=2, ensure_ascii=False))


def status_markdown(report: StatusReport) -> str:
    labels = [label for label, _ in COLUMNS] + ["awaiting"]
    head = ["campaign", "message", "called", *labels, "call time", "charged"]
    lines = [
        "### runner status",
        "",
        "| " + " | ".join(head) + " |",
        "|---|---|" + "--:|" * (len(head) - 2),
    ]
    for campaign in report.campaigns:
        for m in campaign.messages:
            counts = [f"{n:,}" for _, n in _counts(m)]
            cells = [md_code(campaign.name, cell=True), md_code(m.fingerprint[:12], cell=True)]
            cells += [f"{m.called:,}", *counts]
            cells += [_duration(m.call_seconds), _duration(m.charged_seconds)]
            lines.append("| " + " | ".join(cells) + " |")
    if report.unknown.receipts:
        lines += [
            "",
            f"{report.unknown.receipts:,} receipts for "
            f"{plural(report.unknown.tickets, 'ticket')} the state does not know.",
        ]
    return "\n".join(lines)


STATUS_FORMATS = {"text": status_text, "json": status_json, "markdown": status_markdown}
