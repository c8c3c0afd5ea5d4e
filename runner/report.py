"""Stage 6: everything a person or a machine reads. The core never prints; it returns records."""

from __future__ import annotations

import heapq
import json
import math
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from runner.counts import plural
from runner.errors import Problem, RunnerError
from runner.escape import terminal, terminal_lines
from runner.project import Project
from runner.recipients import mask_number
from runner.render import Campaign
from runner.state.bookings import Booking
from runner.state.model import State
from runner.style import PLAIN, Style

if TYPE_CHECKING:
    from runner.apply import ApplyResult

FORMAT_VERSION = 1
BATCH_SIZE = 500
SHOWN_NUMBERS = 10


def batches_for(count: int) -> int:
    return math.ceil(count / BATCH_SIZE)


def problems_text(problems: Iterable[Problem], style: Style = PLAIN) -> str:
    lines = [style.error(terminal(str(p))) for p in problems]  # a key may hold ESC or a newline
    return "\n".join([*lines, style.strong(f"{plural(len(lines), 'problem')}; nothing was sent.")])


def problems_json(problems: Iterable[Problem]) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "valid": False,
        "problems": [p._asdict() for p in problems],
    }


def notes(project: Project) -> list[str]:
    """Each dropped duplicate where it is (the first few), then how many in all."""
    lines = []
    for c in project.campaigns:
        lines += [
            f"{r.where}: {r.field}: {mask_number(r.number)} is already listed at {r.first}; "
            f"{c.name} calls it once"
            for r in c.repeats
        ]
        if c.duplicates:
            lines.append(
                f"{c.path}:{c.line}: recipients: {plural(c.duplicates, 'duplicate number')} dropped"
            )
    return lines


def validate_text(project: Project, style: Style = PLAIN) -> str:
    recipients = sum(c.recipients for c in project.campaigns)
    messages = sum(len(c.messages) for c in project.campaigns)
    summary = (
        f"ok: {plural(len(project.campaigns), 'campaign')}, "
        f"{plural(recipients, 'recipient')}, {plural(messages, 'message')}"
    )
    return "\n".join([*notes(project), style.strong(summary)])


def validate_json(project: Project) -> str:
    data = {
        "format_version": FORMAT_VERSION,
        "valid": True,
        "problems": [],
        "notes": notes(project),
        "campaigns": [
            {
                "name": c.name,
                "path": c.path,
                "line": c.line,
                "recipients": c.recipients,
                "messages": len(c.messages),
                "duplicates_dropped": c.duplicates,
            }
            for c in project.campaigns
        ],
    }
    return json.dumps(data, indent=2)


def numbers_text(numbers: Iterable[str], show: bool) -> str:
    numbers = list(numbers)
    if show:
        return ", ".join(sorted(numbers))
    first = heapq.nsmallest(SHOWN_NUMBERS, numbers)  # in order, whatever the files' order
    shown = ", ".join(mask_number(n) for n in first)
    rest = len(numbers) - SHOWN_NUMBERS
    return shown + (f" and {rest:,} more" if rest > 0 else "")


def indent(text: str, prefix: str = "    | ") -> str:
    """An untrusted text as lines, control characters escaped (line breaks kept)."""
    return "\n".join(prefix + line for line in terminal_lines(text).split("\n"))


def campaign_text(campaign: Campaign, show_recipients: bool) -> str:
    lines = [f"{campaign.name}  ({terminal(campaign.path)}:{campaign.line})"]
    dropped = (
        f" ({plural(campaign.duplicates, 'duplicate')} dropped)" if campaign.duplicates else ""
    )
    lines.append(
        f"  {plural(campaign.recipients, 'recipient')}{dropped}, "
        f"{plural(len(campaign.messages), 'message')}, "
        f"{plural(sum(batches_for(len(m.numbers)) for m in campaign.messages), 'batch')}"
    )
    for i, message in enumerate(campaign.messages, 1):
        settings = terminal(", ".join(f"{k}={v}" for k, v in message.body.items() if k != "text"))
        lines.append(
            f"  message {i} of {len(campaign.messages)} "
            f"[{message.fingerprint[:12]}]: {plural(len(message.numbers), 'recipient')}, "
            f"{plural(batches_for(len(message.numbers)), 'batch')}; {settings}"
        )
        lines.append(indent(str(message.body["text"])))
        lines.append(f"    to: {numbers_text(message.numbers, show_recipients)}")
    return "\n".join(lines)


def render_text(campaigns: Iterable[Campaign], show_recipients: bool) -> str:
    return "\n\n".join(campaign_text(c, show_recipients) for c in campaigns)


def state_list(state: State) -> str:
    if not state.campaigns:
        return "The state is empty: nothing has been delivered yet."
    lines = [terminal(f"state lineage {state.lineage}, serial {state.serial}")]
    for name, campaign in sorted(state.campaigns.items()):
        heard = set().union(*(m.delivered for m in campaign.messages.values()))
        pending = f", {len(campaign.pending)} pending" if campaign.pending else ""
        lines.append(
            f"{terminal(name)}: {plural(len(heard), 'recipient')} reached, "
            f"{plural(len(campaign.messages), 'message')}, "
            f"{plural(len(campaign.sends), 'send')}{pending}"
        )
    return "\n".join(lines)


def _moment(when: float) -> str:
    try:
        return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):  # a crafted state's time: say so, not crash
        return "at an impossible time"


def state_show(state: State, name: str, now: float) -> str:
    campaign = state.campaigns.get(name)
    if campaign is None:
        raise RunnerError(f"the state has no campaign named {name}")
    lines = [terminal(name)]
    for fingerprint, message in campaign.messages.items():
        lines.append(
            terminal(f"  message {fingerprint[:12]}: {plural(len(message.delivered), 'recipient')}")
        )
        lines.append(indent(str(message.body.get("text", ""))))
    for send in campaign.sends:
        lines.append(
            terminal(  # every field of a send comes from the state file
                f"  send {send['request_id']}: {send['outcome']}, "
                f"{plural(send['contacts'], 'contact')}"
                + (f", ticket {send['ticket']}" if send.get("ticket") else "")
                + (f", code {send['code']}" if send.get("code") else "")
            )
        )
    for intent in sorted(campaign.pending.values(), key=lambda i: i.time):
        first = _moment(intent.time)
        lines.append(
            f"  pending {terminal(intent.request_id)}: "
            f"{plural(len(intent.recipients), 'contact')}, first attempt {first}, "
            f"{plural(intent.attempts, 'attempt')}, "
            f"{round((now - intent.time) / 3600, 1) or 0.0:.1f} h old, no outcome recorded"
        )
    for booking in sorted(campaign.bookings.values(), key=lambda b: b.due):
        if booking.due > now:  # past its time, a booking is a delivery
            lines.append(terminal(booking_line(booking)))
    if campaign.pending:
        lines.append(
            f"  check each pending send with the provider, then `runner state resolve "
            f"{terminal(name)} --request-id ID --sent|--not-sent`"
        )
    return "\n".join(lines)


def booking_line(booking: Booking) -> str:
    """A booked batch still to come, as `state show` lists it (every field from the state)."""
    state = (
        ", kept (state accept)"
        if booking.kept
        else ", a cancel of unknown fate"
        if booking.uncertain
        else f", cancel refused: {booking.refused}"
        if booking.refused
        else ""
    )
    return (
        f"  booked {booking.request_id}: {plural(len(booking.recipients), 'contact')}, "
        f"ticket {booking.ticket or '(none: answered as a repeat)'}, calls at {booking.send_at}"
        + state
    )


def init_text(folder: object, created: list[str]) -> str:
    lines = [f"Created a runner project in {folder}:", *(f"  {name}" for name in created)]
    return "\n".join(
        [
            *lines,
            "Next: `runner validate`, then `runner plan`, then `runner apply --emulator` "
            "(a local emulator: nobody is called).",
        ]
    )


def _sent_totals(results: Iterable[Any]) -> dict[str, Any]:
    delivered = [r for r in results if r.delivered]
    return {
        "campaigns": len({r.batch.campaign for r in delivered}),
        "batches": len(delivered),
        "contacts": sum(len(r.batch.numbers) for r in delivered),
        "total_cost": round(sum((r.outcome.cost or 0.0) for r in delivered if r.outcome), 4),
    }


def apply_summary(result: ApplyResult) -> dict[str, Any]:
    """Real sends at the top level; simulated ones apart, so no total can be taken for calls."""
    delivered = [r for r in result.results if r.delivered]
    return {
        "format_version": FORMAT_VERSION,
        "ok": result.ok,
        **_sent_totals(result.real),
        "simulated": _sent_totals(result.simulated),
        "residual_credit": result.residual_credit,
        "send_seconds": round(result.send_seconds, 3),
        "blocked": list(result.blocked),
        "cancels": [
            {
                "campaign": c.cancel.campaign,
                "ticket": c.cancel.ticket,
                "contacts": c.cancel.contacts,
                "send_at": c.cancel.send_at,
                "status": c.status,
                "message": c.error or None,
            }
            for c in result.cancels
        ],
        "interrupted": result.interrupted or None,
        "stopped": result.stopped,
        "moved": [{"from": old, "to": new} for old, new in result.moved],
        "notices": list(result.notices),
        "warnings": [
            {"campaign": r.batch.campaign, "request_id": r.batch.request_id, "message": w}
            for r in delivered
            if r.outcome and (w := r.outcome.warning)
        ],
        "failures": [
            {
                "campaign": r.batch.campaign,
                "request_id": r.batch.request_id,
                "simulated": r.batch.simulate,
                "status": r.status,
                "code": r.outcome.code if r.outcome else None,
                "message": r.error,
            }
            for r in result.failures
        ],
    }


SIMULATED = "SIMULATED (simulation_mode: nobody was called, nothing recorded)"


def _totals_text(data: dict[str, Any]) -> str:
    return (
        f"{plural(data['campaigns'], 'campaign')}, {plural(data['batches'], 'batch')}, "
        f"{plural(data['contacts'], 'contact')}, total cost {data['total_cost']:,.2f} €"
    )


def _failure_lines(failures: list[dict[str, Any]], stopped: str | None, style: Style) -> list[str]:
    """A line per failed batch; once sending stopped, the reason once, with what it cost."""
    lines, refused, unstarted = [], 0, 0
    for failure in failures:
        if stopped and failure["status"] == "skipped":
            unstarted += 1
            continue
        if stopped and failure["message"] == stopped:  # the refusal that stopped the apply
            refused += 1
            continue
        where = f"{failure['campaign']} {failure['request_id']}"
        if failure["status"] == "blocked":
            lines.append(style.error(terminal(f"blocked: {where}: {failure['message']}")))
            continue
        code = f" (code {failure['code']})" if failure["code"] else ""
        simulated = "SIMULATED " if failure.get("simulated") else ""
        status = f"{failure['status']}{code} {failure['message']}"
        lines.append(style.error(terminal(f"failed: {simulated}{where}: {status}".rstrip())))
    if stopped:
        counts = [
            f"{plural(n, 'batch')} {what}"
            for n, what in ((refused, "refused so"), (unstarted, "not started"))
            if n
        ]
        stop = f"stopped: {stopped}" + (f" ({', '.join(counts)})" if counts else "")
        lines.append(style.error(terminal(stop)))
    return lines


def apply_text(result: ApplyResult, style: Style = PLAIN) -> str:
    data = apply_summary(result)
    credit = data["residual_credit"]
    lines = list(data["notices"])
    for cancel in data["cancels"]:  # first, as apply made them: before any booking
        what = (
            f"{cancel['campaign']} ticket {cancel['ticket']}, {plural(cancel['contacts'], 'call')}"
        )
        if cancel["status"] == "cancelled":
            lines.append(terminal(f"cancelled: {what} due {cancel['send_at']}"))
        else:
            lines.append(style.error(terminal(f"not cancelled: {what}: {cancel['message']}")))
    if result.real or not result.simulated:
        head = f"Applied: {_totals_text(data)}"
        head += f", residual credit {credit:,.2f} €." if credit is not None else "."
        lines.append(style.strong(head))
    if result.simulated:
        lines.append(style.strong(f"{SIMULATED}: {_totals_text(data['simulated'])}."))
    for old, new in result.moved:
        lines.append(terminal(f"Moved: {old} -> {new} (its history now belongs to {new})"))
    for warning in data["warnings"]:
        where = f"{warning['campaign']} {warning['request_id']}"
        lines.append(terminal(f"warning: {where}: {warning['message']}"))
    lines += _failure_lines(data["failures"], data["stopped"], style)
    if data["failures"]:
        lines.append(
            f"{plural(len(data['failures']), 'batch')} not delivered"
            + "; run `runner plan` to see what is left"
        )
    for name in data["blocked"]:
        held = dict(result.held).get(name)
        blocked = (
            f"blocked: {name}: {held}"
            if held
            else f"blocked: {name} has sends of unknown outcome; see `runner plan`"
        )
        lines.append(style.error(blocked))
    if result.interrupted:
        lines.append(interrupted_text(result))
    return "\n".join(lines)


def interrupted_text(result: ApplyResult) -> str:
    """What a stop left undone; the state file already knows all of it."""
    counts = Counter(r.status for r in result.failures)
    text = f"{result.interrupted}: stopped starting batches; {counts['skipped']:,} not sent"
    if counts["unknown"]:
        text += (
            f", {counts['unknown']:,} without an answer (pending: the next apply re-sends "
            "them with the same request_id, which the provider refuses if it had them)"
        )
    return text + "; run `runner plan` to see what is left"
