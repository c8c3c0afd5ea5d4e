"""Retry policies: call again the recipients whose latest receipt says nobody heard the call.

`retry: {when: [BUSY, NOT_DELIVERED], attempts: 3, after: 15m}` in a campaign or in runner.yaml
`defaults:`. A recipient is called again when the receipt of their latest call of the current
message is in `when`, `after` has passed since that receipt reached the receiver, and fewer than
`attempts` calls were made. `after` runs on the receiver's clock (the receipt's `received`):
it is the clock the plan's own machine shares in practice, and its epoch seconds carry no time
zone, while the provider's `delivery_date` has none written; a receipt that arrives late (the
receiver was down) only delays the next call, never brings it forward.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runner.errors import Problem
from runner.load import Document, line_of
from runner.receipts.model import NEVER_AGAIN

if TYPE_CHECKING:  # render holds a campaign's policy: it imports this module
    from runner.heard import Heard
    from runner.receipts.model import Receipt
    from runner.render import Campaign, Message
    from runner.state.model import CampaignState

DEFAULT_AFTER = "15m"
_DURATION = re.compile(r"^([0-9]+)(s|m|h|d)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class RetryPolicy:
    when: frozenset[str]
    attempts: int  # calls in all, the first one included
    after: float  # seconds from a receipt to the next call


def seconds_of(duration: str) -> float:
    """`90s`, `15m`, `2h`, `1d` in seconds; the schema has already checked the form."""
    match = _DURATION.match(duration)
    if match is None:
        raise ValueError(f"{duration!r} is not a duration such as 15m")
    return float(int(match[1]) * _SECONDS[match[2]])


def policy_of(fields: Mapping[str, Any]) -> RetryPolicy | None:
    """The policy a validated campaign's fields (defaults merged) hold, if any."""
    retry = fields.get("retry")
    if not retry:
        return None
    after = seconds_of(str(retry.get("after", DEFAULT_AFTER)))
    return RetryPolicy(frozenset(retry["when"]), int(retry["attempts"]), after)


def retry_problems(document: Document, retry: Any, at: tuple[str, ...] = ()) -> list[Problem]:
    """Statuses `when` may not hold, at their line; the schema has checked the rest."""
    if not isinstance(retry, Mapping) or not isinstance(retry.get("when"), list):
        return []
    problems = []
    for index, status in enumerate(retry["when"]):
        why = _never_reason(status)
        if why:
            path = [*at, "retry", "when", index]
            field = ".".join(map(str, [*at, "retry", "when"])) + f"[{index}]"
            problems.append(Problem(document.path, line_of(document, path), field, why))
    return problems


def _never_reason(status: Any) -> str | None:
    if status == "DELIVERED":
        return "DELIVERED means the call was heard; calling again would repeat it; remove it"
    if status in NEVER_AGAIN:
        return (
            f"{status} is never called again (the number refuses, is blacklisted or cannot "
            "be reached); remove it"
        )
    return None


@dataclass(frozen=True)
class Recall:
    """Recipients of one message to call again, all at the same call number."""

    message: Message
    call: int
    todo: tuple[tuple[str, str], ...]  # (number, digest), sorted by number


def recalls(
    campaign: Campaign, known: CampaignState, heard: Heard, now: float, busy: set[str]
) -> list[Recall]:
    """Who to call again, by message and call number; nobody while a call is pending."""
    policy = campaign.retry
    if policy is None:
        return []
    found = []
    for message in campaign.messages:
        delivered = known.messages.get(message.fingerprint)
        if delivered is None:
            continue
        made = known.calls.get(message.fingerprint, {})
        by_call: dict[int, list[tuple[str, str]]] = {}
        for number, digest in _called(message, delivered.delivered, busy):
            call = made.get(digest, 1)
            receipt = heard.of_call(campaign.name, message.fingerprint, digest, call)
            if call < policy.attempts and _unheard(receipt, policy, now):
                by_call.setdefault(call + 1, []).append((number, digest))
        found += [Recall(message, c, tuple(sorted(t))) for c, t in sorted(by_call.items())]
    return found


def _called(
    message: Message, delivered: Mapping[str, None], busy: set[str]
) -> Iterator[tuple[str, str]]:
    for number, digest in zip(message.numbers, message.digests, strict=True):
        if digest in delivered and digest not in busy:
            yield number, digest


def _unheard(receipt: Receipt | None, policy: RetryPolicy, now: float) -> bool:
    """The latest call was not heard, for a reason worth another call, long enough ago."""
    return (
        receipt is not None
        and receipt.status in policy.when
        and receipt.status not in NEVER_AGAIN
        and now - receipt.received >= policy.after
    )
