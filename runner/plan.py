"""Stage 4: desired campaigns versus state, as data. No network, no writes.

A (campaign, recipient, fingerprint) triple is planned unless the state says that recipient has
already been delivered that fingerprint. Planned recipients are grouped by message, sorted by
number and cut into batches of at most 500, each with a request_id derived from its content.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from itertools import compress
from operator import itemgetter, not_
from typing import Any

from runner.bookings import Cancel, Cancels, booked_ahead, plan_cancels
from runner.bulk import paused_gc
from runner.counts import plural
from runner.heard import Heard
from runner.moves import Moved, RenameHint, moved_state, planned_moves, rename_hints
from runner.pending import (
    Pending,
    PendingIndex,
    pending_by_fingerprint,
    pending_elsewhere,
    removed_pending,
    resolve_hint,
)
from runner.project import Project
from runner.recipients import aligned_digests
from runner.render import Campaign, Message
from runner.retry import recalls
from runner.state.model import RESOLVE_WINDOW_SECONDS, CampaignState, Intent, State
from runner.wire import E164, PAYLOAD_JSON, encode_payload, spliced_json

BATCH_SIZE = 500


def derive_request_id(
    campaign: str,
    fingerprint: str,
    numbers: tuple[str, ...],
    generation: int = 0,
    rebooking: int = 0,
    call: int = 1,
) -> str:
    """Same campaign, message and numbers: same id, on any machine, in any order.

    A campaign forgotten from the state gets new ids (its generation, left out while 0 so
    that every id made before stays the same): the provider would refuse the old ones. So
    does a message booked again after a cancel (`rebooking`, the cancels of that message), and
    a call again (its call number, left out for the first call, whose ids states hold).
    """
    forgotten = [f"generation {generation}"] if generation else []
    forgotten += [f"rebooking {rebooking}"] if rebooking else []
    again = [f"call {call}"] if call > 1 else []
    material = "\n".join([campaign, *forgotten, *again, fingerprint, *sorted(numbers)])
    return "rn-" + hashlib.sha256(material.encode()).hexdigest()[:32]


SIMULATED_PREFIX = "rs-"


def simulated_id(request_id: str) -> str:
    """The id a simulated send carries: never the real batch's, so that a provider that
    remembers simulated ids cannot later refuse the real send as a duplicate of it."""
    return SIMULATED_PREFIX + request_id.removeprefix("rn-")


@dataclass(frozen=True)
class Batch:
    campaign: str
    fingerprint: str
    request_id: str
    body: Mapping[str, Any]
    numbers: tuple[str, ...]
    simulate: bool = False
    resend: bool = False
    cost: float = 0.0
    digests: tuple[str, ...] = field(default=(), compare=False, repr=False)
    generation: int = 0  # times the campaign was forgotten: part of its request_id
    rebooking: int = 0  # bookings of this message cancelled: part of its request_id
    call: int = 1  # 2 and on: a call again of recipients who did not hear an earlier one
    # A re-send of a batch first sent under a former name (`moved_from`): its request_id was
    # made with that name (and that name's generation), and must stay the one the provider saw.
    id_from: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "digests", aligned_digests(self.numbers, self.digests))

    def payload(self) -> dict[str, Any]:
        """The exact API body: message, recipients, request_id, and simulation if asked."""
        return self._payload([{"phone_number": n} for n in self.numbers])

    def payload_json(self) -> bytes:
        """payload() as the client sends it: what runner.wire.encode_payload writes, quickly."""
        text = spliced_json(
            self._payload(None),
            "recipients",
            self.numbers,
            ('{"phone_number":"', '"}'),
            E164,
            **PAYLOAD_JSON,
        )
        return text.encode() if text is not None else encode_payload(self.payload())

    def _payload(self, recipients: Any) -> dict[str, Any]:
        # A call again follows a receipt, so the message's send_at has passed: it goes now.
        body = (
            {k: v for k, v in self.body.items() if k != "send_at"} if self.call > 1 else self.body
        )
        payload = {
            **body,
            "recipients": recipients,
            "request_id": simulated_id(self.request_id) if self.simulate else self.request_id,
        }
        if self.simulate:
            payload["simulation_mode"] = True
        return payload


@dataclass(frozen=True)
class Change:
    """Everything that would happen to one campaign."""

    campaign: str
    path: str
    line: int
    new_campaign: bool
    batches: tuple[Batch, ...] = ()
    changed: int = 0  # recipients who heard another version
    added: int = 0  # recipients the campaign never reached
    removed: int = 0  # delivered recipients no longer in the files (informational)
    diffs: tuple[tuple[Mapping[str, Any], Mapping[str, Any]], ...] = ()
    pending: tuple[Pending, ...] = ()
    removed_from_files: bool = False  # shown only for its sends of unknown outcome
    failed: int = 0  # recipients whose send was refused last time
    failures: tuple[str, ...] = ()  # the provider's code and reason for those refusals
    held: str | None = None  # why none of its calls can go out now (a send_at already past)
    cancels: tuple[Cancel, ...] = ()  # booked calls to cancel before its batches are booked
    cancel_blocked: str | None = None  # why its bookings cannot be cancelled: nothing is done
    recalled: int = 0  # of its recipients, those called again (a retry policy)

    @property
    def blocked(self) -> bool:
        return (
            self.held is not None
            or self.cancel_blocked is not None
            or any(p.blocked for p in self.pending)
        )

    @property
    def recipients(self) -> int:
        return sum(len(b.numbers) for b in self.batches)

    @property
    def cost(self) -> float:
        return sum(b.cost for b in self.batches)


@dataclass(frozen=True)
class Plan:
    lineage: str
    serial: int
    changes: tuple[Change, ...]
    removed_campaigns: tuple[tuple[str, int], ...] = ()
    moves: tuple[Moved, ...] = ()  # every moved_from in the files, known to the state or not
    hints: tuple[RenameHint, ...] = ()  # new campaigns that look like renames without moved_from

    @property
    def batches(self) -> tuple[Batch, ...]:
        return tuple(b for c in self.changes for b in c.batches)

    @property
    def cancels(self) -> tuple[Cancel, ...]:
        return tuple(c for change in self.changes for c in change.cancels)

    @property
    def carried(self) -> tuple[Moved, ...]:
        """The moves apply records: a former name the state knows."""
        return tuple(m for m in self.moves if m.known)

    @property
    def has_changes(self) -> bool:
        changed = any(c.batches or c.blocked or c.cancels for c in self.changes)
        return changed or bool(self.carried)

    @property
    def recipients(self) -> int:
        return sum(c.recipients for c in self.changes)

    @property
    def cost(self) -> float:
        return sum(c.cost for c in self.changes)


@dataclass
class _Pricing:
    prices: Mapping[str, float]
    by_code: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import phonenumbers

        for key, price in self.prices.items():
            if key.isdigit():
                self.by_code[key] = price
            elif key != "default":
                self.by_code[str(phonenumbers.country_code_for_region(key))] = price

    def total(self, numbers: tuple[str, ...]) -> float:
        if not self.by_code:  # one price for every number
            return len(numbers) * self.prices.get("default", 0.0)
        return sum(self.of(n) for n in numbers)

    def of(self, number: str) -> float:
        for length in (1, 2, 3):
            price = self.by_code.get(number[1 : 1 + length])
            if price is not None:
                return price
        return self.prices.get("default", 0.0)


def make_plan(
    project: Project, state: State, now: float, simulate: bool = False, heard: Heard | None = None
) -> Plan:
    moves = planned_moves(project.campaigns, state)
    state = moved_state(state, moves)  # a view with the history moved; nothing is written
    pricing = _Pricing(project.config.pricing)
    index = pending_by_fingerprint(state)
    changes = []
    with paused_gc():
        for campaign in project.campaigns:
            known = state.campaigns.get(campaign.name)
            # a simulation reaches nobody: it cancels nothing either
            simulated = simulate or campaign.simulate
            booked = Cancels() if simulated else plan_cancels(campaign.name, campaign, known, now)
            change = _plan_campaign(
                campaign,
                booked.view(known),
                pricing,
                now,
                simulated,
                index,
                state.generations.get(campaign.name, 0),
                state.generations,
                known,
                heard or Heard(),
            )
            change = _with_cancels(_hold_if_past(campaign, change, now), booked)
            if change.batches or change.blocked or change.pending or change.removed:
                changes.append(change)
    names = {c.name for c in project.campaigns}
    changes += _removed_changes(state, names, now, simulate)
    removed = tuple(
        (name, called)
        for name, c in sorted(state.campaigns.items())
        if name not in names
        and not c.pending
        and ((called := _called(c, now)) or not _cancelled_any(c))
    )
    new = {c.campaign for c in changes if c.new_campaign and c.batches}
    hints = rename_hints(project.campaigns, state, new)
    return Plan(state.lineage, state.serial, tuple(changes), removed, moves, hints)


def _called(known: CampaignState, now: float) -> int:
    """Recipients the campaign called: delivered, less those whose calls are still to come."""
    heard: set[str] = set().union(*(m.delivered for m in known.messages.values()))
    return len(heard - booked_ahead(known, now)) if known.bookings else len(heard)


def _cancelled_any(known: CampaignState) -> bool:
    return bool(known.bookings) or any(s.get("outcome") == "cancelled" for s in known.sends)


def _with_cancels(change: Change, booked: Cancels) -> Change:
    """Cancels go with the campaign's batches; any it cannot make hold the whole campaign."""
    if booked.blocked:
        return replace(change, batches=(), cancel_blocked=booked.blocked)
    if change.blocked or not booked.cancels:
        return change
    return replace(change, cancels=booked.cancels)


def _removed_changes(state: State, names: set[str], now: float, simulate: bool) -> list[Change]:
    """Campaigns gone from the files: their sends of unknown outcome, their bookings to cancel."""
    changes = {
        name: Change(name, "", 0, False, pending=pending, removed_from_files=True)
        for name, pending in removed_pending(state, names, now)
    }
    for name, known in sorted(state.campaigns.items()):
        booked = Cancels() if name in names or simulate else plan_cancels(name, None, known, now)
        if booked.cancels or booked.blocked:
            change = changes.get(name) or Change(name, "", 0, False, removed_from_files=True)
            changes[name] = _with_cancels(change, booked)
    return [changes[name] for name in sorted(changes)]


def _plan_campaign(
    campaign: Campaign,
    known: CampaignState | None,
    pricing: _Pricing,
    now: float,
    simulate: bool,
    index: PendingIndex,
    generation: int,
    generations: Mapping[str, int],
    before: CampaignState | None,  # the state before the cancels `known` assumes
    heard: Heard,
) -> Change:
    known = known or CampaignState()
    pending, resend = _pending(campaign, known, pricing, now, simulate, generations)
    pending += pending_elsewhere(index, campaign, now)
    base = Change(
        campaign.name,
        campaign.path,
        campaign.line,
        new_campaign=not known.messages and not known.pending and not known.failed,
        pending=pending,
    )
    if base.blocked:
        return base
    busy = {d for b in resend for d in b.digests}
    batches: list[Batch] = list(resend)
    todo_by_message: list[tuple[Message, list[tuple[str, str]]]] = []
    for message in campaign.messages:
        delivered = (
            known.messages[message.fingerprint].delivered
            if message.fingerprint in known.messages
            else set()
        )
        pairs = zip(message.numbers, message.digests, strict=True)
        if busy:
            todo = [(n, d) for n, d in pairs if d not in delivered and d not in busy]
        else:  # the usual case, and a million lookups fewer, made at C speed
            fresh = map(not_, map(delivered.__contains__, message.digests))
            todo = list(compress(pairs, fresh))
        # batches are cut from sorted numbers, whatever order a Message has; a number is there
        # once, so its digest never breaks a tie, and string keys sort 2x faster than pairs
        todo.sort(key=itemgetter(0))
        todo_by_message.append((message, todo))
        rebooking = known.rebooked.get(message.fingerprint, 0)
        batches += _cut(campaign.name, message, todo, pricing, simulate, generation, rebooking)
    again = recalls(campaign, known, heard, now, busy)
    for recall in again:
        rebooking = known.rebooked.get(recall.message.fingerprint, 0)
        todo = list(recall.todo)
        batches += _cut(
            campaign.name,
            recall.message,
            todo,
            pricing,
            simulate,
            generation,
            rebooking,
            recall.call,
        )
    # a cancelled booking's people hear a changed message (its diff shows what changed)
    changed, added, diffs = _classify(before or known, todo_by_message)
    failed, failures = _failed_last_time(known, todo_by_message)
    return Change(
        campaign.name,
        campaign.path,
        campaign.line,
        base.new_campaign,
        tuple(batches),
        changed,
        added,
        _removed(campaign, known, todo_by_message, busy),
        diffs,
        pending,
        failed=failed,
        failures=failures,
        recalled=sum(len(r.todo) for r in again),
    )


def _hold_if_past(campaign: Campaign, change: Change, now: float) -> Change:
    """A send_at already past, with people still to call: block the campaign, call nobody.

    Calling now what was meant for then may be wrong, and only a person can tell. `validate`
    reads no state, so it cannot know who is still to call: the judgement is the plan's.
    """
    first_calls = any(b.call == 1 for b in change.batches)  # a call again goes out now
    if not first_calls or campaign.send_at is None or campaign.send_at.timestamp() >= now:
        return change
    line = campaign.send_at_line or campaign.line
    reason = (
        f"{campaign.path}:{line}: send_at {campaign.send_at.isoformat()} is in the past with "
        f"{plural(change.recipients, 'recipient')} still to call; set a future send_at, or "
        "remove it to call them now"
    )
    return replace(change, batches=(), held=reason)


def _cut(
    name: str,
    message: Message,
    todo: list[tuple[str, str]],
    pricing: _Pricing,
    simulate: bool,
    generation: int,
    rebooking: int = 0,
    call: int = 1,
) -> list[Batch]:
    batches = []
    for start in range(0, len(todo), BATCH_SIZE):
        numbers, digests = zip(*todo[start : start + BATCH_SIZE], strict=True)
        batches.append(
            Batch(
                name,
                message.fingerprint,
                derive_request_id(
                    name, message.fingerprint, numbers, generation, rebooking, call=call
                ),
                message.body,
                numbers,
                simulate,
                cost=pricing.total(numbers),
                digests=digests,
                generation=generation,
                rebooking=rebooking,
                call=call,
            )
        )
    return batches


def _pending(
    campaign: Campaign,
    known: CampaignState,
    pricing: _Pricing,
    now: float,
    simulate: bool,
    generations: Mapping[str, int],
) -> tuple[tuple[Pending, ...], list[Batch]]:
    """Sends with an intent but no outcome: re-send exactly that batch, or refuse."""
    pending, resend = [], []
    messages = {m.fingerprint: m for m in campaign.messages}
    for intent in sorted(known.pending.values(), key=lambda i: i.time):
        message = messages.get(intent.fingerprint)
        # the id was made with the intent's own name: a former one, after a rename
        generation = generations.get(intent.campaign, 0)
        rebooking = known.rebooked.get(intent.fingerprint, 0)
        batch, why = _rebuild(campaign.name, intent, message, now, generation, rebooking)
        if batch is not None and simulate:
            # a simulation records nothing: only a real re-send can settle a real send
            batch, why = None, "a real send of unknown outcome: run apply without --simulate first"
        pending.append(Pending(intent.request_id, len(intent.recipients), now - intent.time, why))
        if batch is not None:
            cost = pricing.total(batch.numbers)
            resend.append(
                Batch(
                    batch.campaign,
                    batch.fingerprint,
                    batch.request_id,
                    batch.body,
                    batch.numbers,
                    False,
                    True,
                    cost,
                    generation=generation,
                    rebooking=rebooking,
                    call=intent.call,
                    id_from=batch.id_from,
                )
            )
    return tuple(pending), resend


def _rebuild(
    name: str,
    intent: Intent,
    message: Message | None,
    now: float,
    generation: int,
    rebooking: int = 0,
) -> tuple[Batch | None, str | None]:
    resolve = resolve_hint(name, intent.request_id)
    if now - intent.time > RESOLVE_WINDOW_SECONDS:
        return None, f"older than 23 h, past the provider's duplicate check; {resolve}"
    wanted = set(intent.recipients)
    pairs = (
        sorted((n, d) for n, d in zip(message.numbers, message.digests, strict=True) if d in wanted)
        if message
        else []
    )
    numbers = tuple(n for n, _ in pairs)
    request_id = derive_request_id(
        intent.campaign, intent.fingerprint, numbers, generation, rebooking, call=intent.call
    )
    if message is None or len(numbers) != len(wanted) or request_id != intent.request_id:
        return None, f"the files no longer produce this exact batch; {resolve}"
    digests = tuple(d for _, d in pairs)
    id_from = intent.campaign if intent.campaign != name else ""
    batch = Batch(name, intent.fingerprint, request_id, message.body, numbers, digests=digests)
    return replace(batch, id_from=id_from), None


def _classify(
    known: CampaignState, todo: list[tuple[Message, list[tuple[str, str]]]]
) -> tuple[int, int, tuple[tuple[Mapping[str, Any], Mapping[str, Any]], ...]]:
    if not known.messages:
        return 0, 0, ()
    changed = added = 0
    diffs: dict[tuple[str, str], tuple[Mapping[str, Any], Mapping[str, Any]]] = {}
    for message, pairs in todo:
        refused = known.failed.get(message.fingerprint, {})
        for _, digest in pairs:
            if digest in refused:
                continue  # failed last time: counted apart
            old = known.delivered_anything(digest)
            if old is None:
                added += 1
                continue
            if old == message.fingerprint:  # booked again after a cancel: no new version
                continue
            changed += 1
            diffs.setdefault((old, message.fingerprint), (known.messages[old].body, message.body))
    return changed, added, tuple(diffs.values())


def _failed_last_time(
    known: CampaignState, todo: list[tuple[Message, list[tuple[str, str]]]]
) -> tuple[int, tuple[str, ...]]:
    """Recipients to call whose last send of this message was refused, and why it was."""
    if not known.failed:
        return 0, ()
    count, reasons = 0, []
    for message, pairs in todo:
        refused = known.failed.get(message.fingerprint)
        hits = sum(1 for _, d in pairs if d in refused) if refused else 0
        if hits:
            count += hits
            reasons.append(_failure_text(known.last_failure(message.fingerprint) or {}))
    return count, tuple(dict.fromkeys(reasons))


def _failure_text(send: Mapping[str, Any]) -> str:
    reason = str(send.get("reason") or "refused by the provider")
    code = f"code {send['code']}" if send.get("code") else ""
    return reason if code in reason else f"{reason} ({code})"


def _removed(
    campaign: Campaign,
    known: CampaignState,
    todo: list[tuple[Message, list[tuple[str, str]]]],
    busy: set[str],
) -> int:
    """Recipients the state says heard this campaign, who are no longer in its files."""
    if not known.messages:
        return 0
    if len(todo) == 1 and set(known.messages) == {todo[0][0].fingerprint} and not busy:
        # one message, as the state knows it: of its recipients, those not to send are heard
        message, to_send = todo[0]
        heard = known.messages[message.fingerprint].delivered
        return len(heard) - (len(message.digests) - len(to_send))
    heard_any = set().union(*(m.delivered for m in known.messages.values()))
    wanted = {d for m in campaign.messages for d in m.digests}
    return len(heard_any - wanted)
