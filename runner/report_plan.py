"""Plans for people (text), for pull requests (markdown) and for machines (json)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from runner.plan import Change, Plan
from runner.report import FORMAT_VERSION, indent, numbers_text, plural

MARKDOWN_LIMIT = 60_000


def categories(change: Change) -> list[str]:
    found = []
    if change.blocked:
        found.append("blocked")
    elif change.pending:
        found.append("pending")
    if change.new_campaign and change.batches:
        found.append("new campaign")
    if change.changed:
        found.append("message changed")
    if change.added:
        found.append("recipients added")
    if change.removed:
        found.append("recipients removed")
    return found


def _money(amount: float) -> str:
    return f"{amount:,.2f} €"


def _diff_lines(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    lines = []
    for key in sorted(set(old) | set(new), key=lambda k: (k != "text", k)):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if key == "text":
            lines += [f"- {before}", f"+ {after}"]
        else:
            lines.append(
                f"  {key}: {before if before is not None else '(unset)'} -> "
                f"{after if after is not None else '(unset)'}"
            )
    return lines


def _change_text(change: Change, show: bool) -> list[str]:
    sign = "!" if change.blocked or change.pending else "+" if change.new_campaign else "~"
    lines = [
        f"{sign} {change.campaign}  {', '.join(categories(change))}  ({change.path}:{change.line})"
    ]
    for pending in change.pending:
        hours = pending.age_seconds / 3600
        what = (
            pending.blocked
            or "will be re-sent with the same request_id (the provider "
            "refuses it if the first one arrived)"
        )
        lines.append(
            f"    pending {pending.request_id}, {plural(pending.contacts, 'contact')}, "
            f"{hours:.1f} h old: {what}"
        )
    if change.batches:
        detail = (
            [f"{plural(change.changed, 'recipient')} hear a changed message"]
            if change.changed
            else []
        )
        detail += [f"{plural(change.added, 'recipient')} added"] if change.added else []
        lines.append(
            f"    {plural(change.recipients, 'recipient')} in "
            f"{plural(len(change.batches), 'batch').replace('batchs', 'batches')}, "
            f"estimated {_money(change.cost)}" + (f" ({'; '.join(detail)})" if detail else "")
        )
    for old, new in change.diffs:
        lines += ["    " + line for line in _diff_lines(old, new)]
    seen = set()
    for batch in change.batches:
        if batch.fingerprint not in seen and not change.diffs:
            seen.add(batch.fingerprint)
            lines.append(indent(str(batch.body["text"])))
        if show:
            lines.append(f"      {batch.request_id}: {numbers_text(batch.numbers, True)}")
    if change.removed:
        lines.append(
            f"    {plural(change.removed, 'delivered recipient')} no longer in the "
            "files (nobody is called for this)"
        )
    return lines


def plan_text(plan: Plan, show_recipients: bool = False) -> str:
    lines: list[str] = []
    for change in plan.changes:
        lines += [*_change_text(change, show_recipients), ""]
    for name, delivered in plan.removed_campaigns:
        lines += [
            f"- {name}  campaign removed from the files: {plural(delivered, 'recipient')} "
            "were called; nothing is sent",
            "",
        ]
    if not plan.has_changes:
        lines.append("No changes: every recipient has heard the current version of every message.")
    else:
        lines.append(
            f"Plan: {plural(len([c for c in plan.changes if c.batches]), 'campaign')}, "
            f"{plural(plan.recipients, 'call')} in "
            f"{plural(len(plan.batches), 'batch').replace('batchs', 'batches')}, "
            f"estimated cost {_money(plan.cost)}."
        )
        blocked = [c.campaign for c in plan.changes if c.blocked]
        if blocked:
            lines.append(f"Blocked until resolved: {', '.join(blocked)}.")
    return "\n".join(lines)


def plan_data(plan: Plan, show_recipients: bool = False) -> dict[str, Any]:
    def batch(b: Any) -> dict[str, Any]:
        data = {
            "request_id": b.request_id,
            "fingerprint": b.fingerprint,
            "recipients": len(b.numbers),
            "estimated_cost": round(b.cost, 4),
            "resend": b.resend,
        }
        if show_recipients:
            data["numbers"] = list(b.numbers)
        return data

    return {
        "format_version": FORMAT_VERSION,
        "lineage": plan.lineage or None,
        "serial": plan.serial,
        "has_changes": plan.has_changes,
        "summary": {
            "campaigns": len([c for c in plan.changes if c.batches]),
            "batches": len(plan.batches),
            "recipients": plan.recipients,
            "estimated_cost": round(plan.cost, 4),
            "blocked": [c.campaign for c in plan.changes if c.blocked],
        },
        "campaigns": [
            {
                "name": c.campaign,
                "path": c.path,
                "line": c.line,
                "categories": categories(c),
                "new_campaign": c.new_campaign,
                "recipients": c.recipients,
                "changed": c.changed,
                "added": c.added,
                "removed": c.removed,
                "estimated_cost": round(c.cost, 4),
                "texts": sorted({str(b.body["text"]) for b in c.batches}),
                "diffs": [{"old": dict(old), "new": dict(new)} for old, new in c.diffs],
                "pending": [
                    {
                        "request_id": p.request_id,
                        "contacts": p.contacts,
                        "age_seconds": round(p.age_seconds),
                        "blocked": p.blocked,
                    }
                    for p in c.pending
                ],
                "batches": [batch(b) for b in c.batches],
            }
            for c in plan.changes
        ],
        "removed_campaigns": [{"name": n, "delivered": d} for n, d in plan.removed_campaigns],
    }


def plan_json(plan: Plan, show_recipients: bool = False) -> str:
    return json.dumps(plan_data(plan, show_recipients), indent=2, ensure_ascii=False)


def plan_markdown(plan: Plan, show_recipients: bool = False) -> str:
    head = ["### runner plan", ""]
    if not plan.has_changes:
        head.append("No changes: nothing would be sent.")
        if not plan.changes and not plan.removed_campaigns:
            return "\n".join(head)
    else:
        head.append(
            f"**{plural(plan.recipients, 'call')}** in {len(plan.batches)} batch(es), "
            f"estimated **{_money(plan.cost)}**."
        )
    head += [
        "",
        "| campaign | change | calls | batches | est. cost |",
        "|---|---|--:|--:|--:|",
    ]
    rows = [
        f"| `{c.campaign}` | {', '.join(categories(c))} | {c.recipients:,} | "
        f"{len(c.batches)} | {_money(c.cost)} |"
        for c in plan.changes
    ]
    rows += [
        f"| `{n}` | campaign removed (nothing sent) | 0 | 0 | {_money(0)} |"
        for n, _ in plan.removed_campaigns
    ]
    head += _table_rows(rows)
    body = []
    for change in plan.changes:
        details = "\n".join(_change_text(change, show_recipients))
        body.append(
            f"<details><summary><code>{change.campaign}</code>: "
            f"{', '.join(categories(change))}</summary>\n\n```diff\n{details}\n```\n"
            "</details>"
        )
    return _truncate("\n".join(head) + "\n\n", body)


def _table_rows(rows: list[str]) -> list[str]:
    """The summary table may use half the comment; the details get what is left."""
    kept: list[str] = []
    used = 0
    for index, row in enumerate(rows):
        if used + len(row) > MARKDOWN_LIMIT // 2:
            return [*kept, f"| _{len(rows) - index:,} more_ | not shown: see `runner plan` | | | |"]
        kept.append(row)
        used += len(row) + 1
    return kept


def _truncate(head: str, sections: list[str]) -> str:
    out, used = [head], len(head)
    for index, section in enumerate(sections):
        if used + len(section) + 200 > MARKDOWN_LIMIT:
            out.append(
                f"\n_{len(sections) - index} more campaign(s) not shown: the comment is "
                "kept under 60,000 characters. Run `runner plan` for the full plan._\n"
            )
            break
        out.append(section + "\n")
        used += len(section) + 1
    return "".join(out)
