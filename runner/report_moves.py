"""Renames in every plan format: moves carried by `moved_from`, former names the state does not
know, and new campaigns that look like renames made without it. Names are escaped here."""

from __future__ import annotations

from runner.counts import plural
from runner.escape import md_code, terminal
from runner.moves import Moved, RenameHint
from runner.plan import Plan
from runner.style import PLAIN, Style


def moves_text(plan: Plan, style: Style = PLAIN) -> list[str]:
    """Renames carried by moved_from, former names with nothing to carry (shown only where
    it matters: the campaign calls people), and new campaigns that look like renames."""
    lines = []
    sending = {c.campaign for c in plan.changes if c.batches}
    for move in plan.moves:
        if move.known:
            shown = terminal(f"~ moved: {move.old} → {move.new} ")
            lines.append(style.changed(shown + _carried(move.recipients)))
        elif move.new in sending:
            lines.append(terminal(f"note: {unknown_text(move)}"))
    lines += [style.changed(terminal(f"note: {hint_text(h)}")) for h in plan.hints]
    return lines


def unknown_text(move: Moved) -> str:
    return (
        f"moved_from {move.old} (in {move.new}): the state knows no campaign {move.old}, "
        "so there is no history to carry"
    )


def _carried(recipients: int) -> str:
    return (
        f"(the history of {plural(recipients, 'recipient')} moves with it; "
        "nobody is called for the rename)"
    )


def hint_text(hint: RenameHint) -> str:
    return (
        f"{hint.new} looks like a rename of {hint.old} ({hint.heard:,} of its recipients "
        f"already heard this message); add `moved_from: [{hint.old}]` to carry its history"
    )


def moves_markdown(plan: Plan) -> list[str]:
    """moves_text for a pull request: every name in code, which nothing inside can close."""
    lines = []
    sending = {c.campaign for c in plan.changes if c.batches}
    for move in plan.moves:
        if move.known:
            lines.append(
                f"- **moved:** {md_code(move.old)} → {md_code(move.new)} "
                + _carried(move.recipients)
            )
        elif move.new in sending:
            lines.append(
                f"- note: `moved_from` {md_code(move.old)} in {md_code(move.new)}: the state "
                f"knows no campaign {md_code(move.old)}, so there is no history to carry"
            )
    for hint in plan.hints:
        lines.append(
            f"- note: {md_code(hint.new)} looks like a rename of {md_code(hint.old)} "
            f"({hint.heard:,} of its recipients already heard this message); add "
            f"{md_code(f'moved_from: [{hint.old}]')} to carry its history"
        )
    return lines
