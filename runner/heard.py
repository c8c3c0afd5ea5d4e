"""What the delivery receipts say of each call the state knows: the bridge from receipts to sends.

A receipt names a ticket and a recipient's digest; the state's send records name each ticket's
campaign, message and call number. Of several receipts for one (ticket, recipient) the latest
counts: by the provider's delivery_date, then by arrival (a provider retrying a failed POST
may deliver an older receipt after a newer one).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from runner.receipts.model import Receipt
from runner.receipts.store import open_receipts
from runner.state.model import State


class Call(NamedTuple):
    """Where a ticket belongs: a campaign's message, and which call of it (1 for the first)."""

    campaign: str
    fingerprint: str
    call: int


@dataclass
class Heard:
    """The latest receipt per (ticket, recipient), indexed by the call it reports."""

    # (campaign, fingerprint, digest, call) -> the latest receipt of that call
    by_call: dict[tuple[str, str, str, int], Receipt] = field(default_factory=dict)
    # (campaign, fingerprint) -> the latest receipt per (ticket, digest) of that message
    by_message: dict[tuple[str, str], dict[tuple[str, str], Receipt]] = field(default_factory=dict)
    unknown: dict[tuple[str, str], Receipt] = field(default_factory=dict)

    def of_call(self, campaign: str, fingerprint: str, digest: str, call: int) -> Receipt | None:
        return self.by_call.get((campaign, fingerprint, digest, call))


def tickets_of(state: State) -> dict[str, Call]:
    """Every ticket the state's send records hold, with the campaign message and call it made."""
    tickets = {}
    for name, campaign in state.campaigns.items():
        for send in campaign.sends:
            ticket = send.get("ticket")
            if isinstance(ticket, str) and ticket:
                tickets[ticket] = Call(name, str(send["fingerprint"]), int(send.get("call", 1)))
    return tickets


def _later(receipt: Receipt, than: Receipt | None) -> bool:
    """Arrival order breaks ties: receipts are read oldest first, so a tie goes to the newer."""
    if than is None:
        return True
    return (receipt.delivery_date or "") >= (than.delivery_date or "")


def heard_from(state: State, receipts: Iterable[Receipt]) -> Heard:
    tickets = tickets_of(state)
    latest: dict[tuple[str, str], Receipt] = {}
    for receipt in receipts:
        key = (receipt.ticket, receipt.digest)
        if _later(receipt, latest.get(key)):
            latest[key] = receipt
    heard = Heard()
    for key, receipt in latest.items():
        call = tickets.get(receipt.ticket)
        if call is None:
            heard.unknown[key] = receipt
            continue
        at = (call.campaign, call.fingerprint, receipt.digest, call.call)
        if _later(receipt, heard.by_call.get(at)):  # the same call under two tickets: rare
            heard.by_call[at] = receipt
        heard.by_message.setdefault((call.campaign, call.fingerprint), {})[key] = receipt
    return heard


def read_heard(state: State, location: str, root: Path, project: str | None) -> Heard:
    """The receipts kept beside the state at `location`, read against that state."""
    return heard_from(state, open_receipts(location, root, project).read())
