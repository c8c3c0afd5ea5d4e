"""Plans for people (text), for pull requests (markdown) and for machines (json)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from runner.bookings import Cancel, due_text
from runner.call_settings import CallSettings, call_settings
from runner.counts import plural
from runner.escape import html_code, json_text, md_code, md_fenced, terminal
from runner.plan import Change, Plan
from runner.report import FORMAT_VERSION, indent, numbers_text
from runner.report_moves import hint_text, moves_markdown, moves_text
from runner.style import PLAIN, Style
from runner.target import Target

MARKDOWN_LIMIT = 60_000
SECTION_LIMIT = MARKDOWN_LIMIT // 4  # one campaign past this shows a sample of its texts
SAMPLE_TEXTS = 3
SIMULATED_PLAN = "SIMULATED (simulation_mode: nobody is called, nothing recorded)"


def categories(change: Change) -> list[str]:
    found = ["campaign removed"] if change.removed_from_files else []
    if change.cancels:
        found.append("booked calls cancelled")
    if change.blocked:
        found.append("blocked")
    elif change.pending:
        found.append("pending")
    if change.new_campaign and change.batches:
        found.append("new campaign")
    if change.changed:
        found.append("message changed")
    if change.failed:
        found.append("failed last time")
    if change.added:
        found.append("recipients added")
    if change.removed:
        found.append("recipients removed")
    if change.recalled:
        found.append("call again")
    if change.batches and all(b.simulate for b in change.batches):
        found.append("SIMULATED")
    return found


def _money(amount: float) -> str:
    return f"{amount:,.2f} €"


def _diff_lines(old: Mapping[str, Any], new: Mapping[str, Any], style: Style) -> list[str]:
    lines = []
    for key in sorted(set(old) | set(new), key=lambda k: (k != "text", k)):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if key == "text":  # every line marked: an old text comes from the state file
            lines += [style.removed(f"- {line}") for line in indent(str(before), "").split("\n")]
            lines += [style.added(f"+ {line}") for line in indent(str(after), "").split("\n")]
        else:
            lines.append(
                terminal(
                    f"  {key}: {before if before is not None else '(unset)'} -> "
                    f"{after if after is not None else '(unset)'}"
                )
            )
    return lines


def _change_text(
    change: Change, show: bool, style: Style = PLAIN, sample: int | None = None
) -> list[str]:
    """The campaign's lines; with `sample`, only that many of its texts and diffs."""
    sign = "!" if change.blocked or change.pending else "+" if change.new_campaign else "~"
    where = (
        "(removed from the files)"
        if change.removed_from_files
        else f"({terminal(change.path)}:{change.line})"
    )
    lines = [
        style.sign(f"{sign} {terminal(change.campaign)}  {', '.join(categories(change))}  {where}")
    ]
    if change.held:
        lines.append(terminal(f"    blocked: {change.held}"))
    if change.cancel_blocked:  # the state's words (send_at, tickets): escaped
        lines.append(terminal(f"    blocked: {change.cancel_blocked}"))
    lines += [terminal(line) for line in cancel_lines(change.cancels)]
    for pending in change.pending:
        hours = round(pending.age_seconds / 3600, 1) or 0.0  # never '-0.0': a few ms ahead
        what = (
            pending.blocked
            or "will be re-sent with the same request_id (the provider "
            "refuses it if the first one arrived)"
        )
        lines.append(  # request_ids, names and reasons in `what` may come from the state file
            terminal(
                f"    pending {pending.request_id}, {plural(pending.contacts, 'contact')}, "
                f"{hours:.1f} h old: {what}"
            )
        )
    if change.batches:
        detail = (
            [f"{plural(change.changed, 'recipient')} hear a changed message"]
            if change.changed
            else []
        )
        detail += [f"{plural(change.added, 'recipient')} added"] if change.added else []
        if change.failed:
            why = terminal("; ".join(change.failures))  # the provider's words, from the state
            detail.append(f"{plural(change.failed, 'recipient')} failed last time ({why})")
        if change.recalled:  # their latest call went unheard: the campaign's retry policy
            detail.append(f"call again: {plural(change.recalled, 'recipient')} not reached")
        lines.append(
            f"    {plural(change.recipients, 'recipient')} in "
            f"{plural(len(change.batches), 'batch')}, "
            f"estimated {_money(change.cost)}"
            + (f" ({'; '.join(detail)})" if detail else "")
            + (f"; {SIMULATED_PLAN}" if all(b.simulate for b in change.batches) else "")
        )
    lines += _settings_lines(change)
    diffs = change.diffs if sample is None else change.diffs[:sample]
    for old, new in diffs:
        lines += ["    " + line for line in _diff_lines(old, new, style)]
    if len(diffs) < len(change.diffs):
        hidden = len(change.diffs) - len(diffs)
        lines.append(f"    ... and {plural(hidden, 'more changed message')}")
    lines += _message_lines(change, show, sample)
    if change.removed:
        lines.append(
            f"    {plural(change.removed, 'delivered recipient')} no longer in the "
            "files (nobody is called for this)"
        )
    return lines


def cancel_lines(cancels: tuple[Cancel, ...]) -> list[str]:
    """Shown before the campaign's batches: these go first, and nothing is booked without them."""
    lines = []
    for cancel in cancels:
        again = (
            f"; again, refused last time: {cancel.refused}"
            if cancel.refused
            else "; again, its last cancel had no answer"
            if cancel.retry
            else ""
        )
        lines.append(
            f"    cancel {cancel.ticket}: {plural(cancel.contacts, 'booked call')} due "
            f"{cancel.send_at} ({due_text(cancel.due)}){again}"
        )
    return lines


def _cancels_summary(plan: Plan) -> str:
    calls = sum(c.contacts for c in plan.cancels)
    return f"Cancelled first: {plural(len(plan.cancels), 'booked batch')} ({plural(calls, 'call')})"


def _settings_lines(change: Change) -> list[str]:
    """When and how its calls go out, per distinct setting (one, unless its messages differ)."""
    found = call_settings(change.batches)
    return [
        terminal(f"    {s.text()}")
        + (f" ({plural(s.recipients, 'recipient')})" if len(found) > 1 else "")
        for s in found
    ]


def _message_lines(change: Change, show: bool, sample: int | None) -> list[str]:
    """Each message's text once (unless diffs show it), with its batches' numbers if asked."""
    lines: list[str] = []
    seen: set[str] = set()
    for batch in change.batches:
        first = batch.fingerprint not in seen
        seen.add(batch.fingerprint)
        if sample is not None and len(seen) > sample:
            continue
        if first and not change.diffs:
            lines.append(indent(str(batch.body["text"])))
        if show:
            lines.append(f"      {batch.request_id}: {numbers_text(batch.numbers, True)}")
    if sample is not None and len(seen) > sample and not change.diffs:
        lines.append(
            f"    ... and {plural(len(seen) - sample, 'more message')} "
            f"({plural(len(seen), 'message')} in all); `runner plan` shows every text"
        )
    return lines


def target_text(target: Target | None) -> list[str]:
    """What differs from the defaults, first, so a reviewer cannot miss where calls go."""
    unusual = target.unusual() if target else []
    return [f"{what.capitalize()}: {terminal(value)} (not the default)" for what, value in unusual]


def target_change_text(saved: Target | None, now: Target) -> list[str]:
    """A saved plan made with another endpoint, state or project than this apply uses."""
    if saved is None or saved == now:
        return []
    return [
        terminal(f"Note: the plan was saved with {what} {was}; this apply uses {current}.")
        for (what, was), current in zip(
            saved.labelled().items(), now.as_dict().values(), strict=True
        )
        if was != current
    ]


def plan_text(
    plan: Plan, show_recipients: bool = False, style: Style = PLAIN, target: Target | None = None
) -> str:
    lines: list[str] = target_text(target)
    lines += [""] if lines else []
    for change in plan.changes:
        lines += [*_change_text(change, show_recipients, style), ""]
    moved = moves_text(plan, style)
    lines += [*moved, ""] if moved else []
    for name, delivered in plan.removed_campaigns:
        lines += [
            style.removed(
                f"- {terminal(name)}  campaign removed from the files: "
                f"{plural(delivered, 'recipient')} were called; nothing is sent"
            ),
            "",
        ]
    if not plan.has_changes:
        lines.append("No changes: every recipient has heard the current version of every message.")
    else:
        lines.append(
            style.strong(
                f"Plan: {plural(len([c for c in plan.changes if c.batches]), 'campaign')}, "
                f"{plural(plan.recipients, 'call')} in "
                f"{plural(len(plan.batches), 'batch')}, "
                f"estimated cost {_money(plan.cost)}"
                + (f"; {plural(len(plan.carried), 'rename')} to record" if plan.carried else "")
                + "."
            )
        )
        if plan.cancels:
            lines.append(f"{_cancels_summary(plan)}.")
        simulated = sum(len(b.numbers) for b in plan.batches if b.simulate)
        if simulated:
            lines.append(f"{plural(simulated, 'call')} of these: {SIMULATED_PLAN}.")
        blocked = [c.campaign for c in plan.changes if c.blocked]
        if blocked:
            lines.append(style.error(f"Blocked until resolved: {', '.join(blocked)}."))
    return "\n".join(lines)


def plan_data(
    plan: Plan, show_recipients: bool = False, target: Target | None = None
) -> dict[str, Any]:
    def batch(b: Any) -> dict[str, Any]:
        data = {
            "request_id": b.request_id,
            "fingerprint": b.fingerprint,
            "recipients": len(b.numbers),
            "estimated_cost": round(b.cost, 4),
            "resend": b.resend,
            "call": b.call,  # 2 and on: a call again
        }
        if show_recipients:
            data["numbers"] = list(b.numbers)
        return data

    return {
        "format_version": FORMAT_VERSION,
        "lineage": plan.lineage or None,
        "serial": plan.serial,
        "has_changes": plan.has_changes,
        "target": {
            **(target or Target()).as_dict(),
            "not_default": [what for what, _ in (target or Target()).unusual()],
        },
        "summary": {
            "campaigns": len([c for c in plan.changes if c.batches]),
            "batches": len(plan.batches),
            "recipients": plan.recipients,
            "estimated_cost": round(plan.cost, 4),
            "blocked": [c.campaign for c in plan.changes if c.blocked],
            "cancels": len(plan.cancels),
            "cancelled_calls": sum(c.contacts for c in plan.cancels),
            "moves": len(plan.carried),
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
                "failed_last_time": c.failed,
                "failures": list(c.failures),
                "removed": c.removed,
                "called_again": c.recalled,
                "estimated_cost": round(c.cost, 4),
                "held": c.held,
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
                "cancels": [cancel_data(x) for x in c.cancels],
                "cancel_blocked": c.cancel_blocked,
                **_settings_data(c),
            }
            for c in plan.changes
        ],
        "removed_campaigns": [{"name": n, "delivered": d} for n, d in plan.removed_campaigns],
        "moves": [
            {"from": m.old, "to": m.new, "known": m.known, "recipients": m.recipients}
            for m in plan.moves
        ],
        "rename_hints": [
            {"campaign": h.new, "looks_like": h.old, "heard": h.heard, "message": hint_text(h)}
            for h in plan.hints
        ],
    }


def cancel_data(cancel: Cancel) -> dict[str, Any]:
    return {
        "ticket": cancel.ticket,
        "request_id": cancel.request_id,
        "fingerprint": cancel.fingerprint,
        "contacts": cancel.contacts,
        "send_at": cancel.send_at,
        "due_utc": due_text(cancel.due),
        "retry": cancel.retry,
        "refused_last_time": cancel.refused or None,
    }


def _settings_data(change: Change) -> dict[str, Any]:
    """The first (usually only) setting as fields of the campaign, and every one in a list;
    null fields for a campaign that sends nothing."""
    found = call_settings(change.batches)
    first = found[0].as_dict() if found else dict.fromkeys([*CallSettings._fields, "send_now"])
    first.pop("recipients", None)
    first.pop("messages", None)
    return {**first, "call_settings": [s.as_dict() for s in found]}


def plan_json(plan: Plan, show_recipients: bool = False, target: Target | None = None) -> str:
    data = plan_data(plan, show_recipients, target)
    return json_text(json.dumps(data, indent=2, ensure_ascii=False))


def target_markdown(target: Target | None) -> list[str]:
    unusual = target.unusual() if target else []
    lines = [f"- **{what}:** {md_code(value)} (not the default)" for what, value in unusual]
    return [*lines, ""] if lines else []


def plan_markdown(plan: Plan, show_recipients: bool = False, target: Target | None = None) -> str:
    """A PR comment: every string from the files or the state is inside code, which content
    cannot close, so nothing it holds becomes a heading, HTML, a link, an image or a mention."""
    head = ["### runner plan", "", *target_markdown(target)]
    if not plan.has_changes:
        head.append("No changes: nothing would be sent.")
        if not plan.changes and not plan.removed_campaigns:
            return "\n".join(head)
    else:
        head.append(
            f"**{plural(plan.recipients, 'call')}** in {plural(len(plan.batches), 'batch')}, "
            f"estimated **{_money(plan.cost)}**."
            + (f" {_cancels_summary(plan)}." if plan.cancels else "")
        )
    head += [
        "",
        "| campaign | change | calls | batches | est. cost | calls go out (UTC) |",
        "|---|---|--:|--:|--:|---|",
    ]
    rows = [
        f"| {md_code(c.campaign, cell=True)} | {', '.join(categories(c))} | {c.recipients:,} | "
        f"{len(c.batches):,} | {_money(c.cost)} | {_when_cell(c)} |"
        for c in plan.changes
    ]
    rows += [
        f"| {md_code(n, cell=True)} | campaign removed (nothing sent) | 0 | 0 | {_money(0)} | |"
        for n, _ in plan.removed_campaigns
    ]
    head += _table_rows(rows)
    notes = moves_markdown(plan)
    head += ["", *notes] if notes else []
    return _with_details("\n".join(head) + "\n\n", plan.changes, show_recipients)


def _when_cell(change: Change) -> str:
    found = call_settings(change.batches)
    return ", ".join(
        md_code(s.send_at_utc or s.send_at, cell=True) if s.send_at else "now" for s in found
    )


def _details(change: Change, show: bool, sample: int | None) -> str:
    """A campaign's collapsible section: in full, or a sample of its texts."""
    details = md_fenced("\n".join(_change_text(change, show, sample=sample)), "diff")
    return (
        f"<details><summary>{html_code(change.campaign)}: "
        f"{', '.join(categories(change))}</summary>\n\n{details}\n</details>"
    )


def _table_rows(rows: list[str]) -> list[str]:
    """The summary table may use half the comment; the details get what is left."""
    kept: list[str] = []
    used = 0
    for index, row in enumerate(rows):
        if used + len(row) > MARKDOWN_LIMIT // 2:
            return [
                *kept,
                f"| _{len(rows) - index:,} more_ | not shown: see `runner plan` | | | | |",
            ]
        kept.append(row)
        used += len(row) + 1
    return kept


def _with_details(head: str, changes: tuple[Change, ...], show: bool) -> str:
    """Every campaign in full while it fits, else a sample of its texts, else a count."""
    out, used = [head], len(head)
    for index, change in enumerate(changes):
        section = _details(change, show, None)
        if len(section) > SECTION_LIMIT or used + len(section) + 200 > MARKDOWN_LIMIT:
            section = _details(change, show, SAMPLE_TEXTS)
        if used + len(section) + 200 > MARKDOWN_LIMIT:
            out.append(
                f"\n_{plural(len(changes) - index, 'more campaign')} not shown: the comment is "
                "kept under 60,000 characters. Run `runner plan` for the full plan._\n"
            )
            break
        out.append(section + "\n")
        used += len(section) + 1
    return "".join(out)
