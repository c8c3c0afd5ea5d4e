"""What each command does, between the click layer and the pipeline stages."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from runner.bookings import CLOCK_MARGIN, due_text
from runner.counts import plural
from runner.errors import RunnerError, StateError, UsageError
from runner.heard import read_heard
from runner.plan import Plan, make_plan
from runner.project import Project
from runner.state import Backend, open_state, state_location
from runner.state.model import (
    Accept,
    CampaignState,
    Forget,
    Resolve,
    State,
    body_for_state,
    unsettled_cancels,
)
from runner.state.snapshot import dump_state
from runner.status import StatusReport, status_of
from runner.validate import Config


def backend_for(project: Project, option: str | None) -> Backend:
    config = project.config
    return open_state(state_location(option, config.state), config.root, config.project)


def planned(
    project: Project, state: State, simulate: bool = False, receipts_at: str | None = None
) -> Plan:
    """The plan now: a campaign whose send_at is past with people still to call is blocked.

    `receipts_at`: the state's location, whose receipts a retry policy reads (None: none).
    """
    heard = None
    if receipts_at is not None and any(c.retry for c in project.campaigns):
        heard = read_heard(state, receipts_at, project.config.root, project.config.project)
    return make_plan(project, state, time.time(), simulate, heard)


def status(config: Config, backend: Backend, location: str, names: Sequence[str]) -> StatusReport:
    """The receipts' verdict on the state's calls; reads both, takes no lock."""
    state = backend.read()
    return status_of(state, read_heard(state, location, config.root, config.project), names)


def known_digests(state: State) -> list[AbstractSet[str]]:
    """Every set of delivered digests in the state: numbers that were valid when sent."""
    return [m.delivered.keys() for c in state.campaigns.values() for m in c.messages.values()]


def forget(backend: Backend, name: str) -> str:
    with backend.locked("state forget"):
        state = backend.read()  # a refusal must not create a state file
        if name not in state.campaigns:
            raise RunnerError(f"the state has no campaign named {name}")
        if state.campaigns[name].pending:
            raise RunnerError(
                f"{name} has sends without outcome; check each with the provider "
                f"(`runner state show {name}` lists them) and run `runner state resolve "
                f"{name} --request-id ID --sent|--not-sent` first"
            )
        refuse_forget_while_booked(state.campaigns[name], name)
        backend.ensure_created()
        backend.record(Forget(name, time.time()))
        backend.commit()
    return (
        f"{name}: forgotten; the next apply calls all of its recipients again "
        "(with new request_ids, which the provider does not refuse as repeats)"
    )


def refuse_forget_while_booked(known: CampaignState, name: str) -> None:
    """Forgotten, booked calls would still happen, and the next apply would book them again.
    This machine's clock may be hours off the provider's: a booking past by it lately may
    still be to come, so forget waits CLOCK_MARGIN past the last one."""
    now = time.time()
    ahead = [b for b in known.bookings.values() if b.due > now]
    if ahead:
        raise RunnerError(
            f"{name} has {plural(len(ahead), 'booked batch')} still to come (`runner state "
            f"show {name}` lists them): remove its file and apply to cancel them, or wait "
            "until they are due; nothing was forgotten"
        )
    lately = max((b.due for b in known.bookings.values()), default=0.0)
    if lately > now - CLOCK_MARGIN:
        raise RunnerError(
            f"{name} has booked calls due at {due_text(lately)}, less than "
            f"{CLOCK_MARGIN / 3600:.0f} h ago by this machine's clock, which may be off the "
            "provider's: they may still be to come; wait until "
            f"{due_text(lately + CLOCK_MARGIN)}"
            " (or remove its file and apply, which checks the provider's clock and cancels "
            "them); nothing was forgotten"
        )


def accept(backend: Backend, project: Project, name: str) -> str:
    campaign = project.campaign(name)
    if campaign is None:
        raise RunnerError(f"no campaign named {name} in the files")
    with backend.locked("state accept"):
        state = backend.ensure_created()
        known = state.campaigns.get(name)
        if known and known.pending:
            raise RunnerError(f"{name} has sends without outcome; resolve them first")
        now = time.time()
        for message in campaign.messages:
            body = body_for_state(message.body, message.numbers)
            backend.record(Accept(name, message.fingerprint, body, message.digests, now))
        backend.commit()
    recorded = plural(campaign.recipients, "recipient")
    return f"{name}: {recorded} recorded as delivered (nothing was sent)"


def resolve(
    backend: Backend, name: str, sent: bool, request_ids: tuple[str, ...], every: bool
) -> str:
    """Record a person's verdict on the pending sends named, or on all of them with --all."""
    with backend.locked("state resolve"):
        state = backend.read()
        known = state.campaigns.get(name)
        if known is None:
            raise RunnerError(
                f"the state knows no campaign {name}: check the name (`runner state list`); a "
                "campaign renamed with moved_from keeps its old name until the next apply"
            )
        # a cancel of unknown fate is settled the same way (--sent: it was cancelled)
        unsettled = {b.request_id for b in unsettled_cancels(known)}
        if not (known.pending or unsettled):
            raise RunnerError(f"{name} has no pending sends to resolve")
        chosen = chosen_pending(name, known.pending.keys() | unsettled, request_ids, every)
        backend.ensure_created()
        backend.record(Resolve(name, sent, time.time(), request_ids=request_ids))
        backend.commit()
    verdict = "delivered" if sent else "not sent (the next apply sends them)"
    return f"{name}: {plural(len(chosen), 'pending send')} recorded as {verdict}"


def chosen_pending(
    name: str, pending: AbstractSet[str], request_ids: tuple[str, ...], every: bool
) -> tuple[str, ...]:
    """A crash leaves some sends delivered and others never sent: one verdict for all of them
    is only taken when there is one, or when the person says --all."""
    if request_ids and every:
        raise UsageError("give --request-id or --all, not both; nothing was recorded")
    unknown = [r for r in request_ids if r not in pending]
    if unknown:
        raise RunnerError(
            f"{name} has no pending send {', '.join(unknown)}; `runner state show {name}` "
            "lists them; nothing was recorded"
        )
    if request_ids or every or len(pending) == 1:
        return tuple(request_ids) or tuple(pending)
    raise RunnerError(
        f"{name} has {len(pending)} pending sends, and after a crash some may have reached "
        f"the provider and others not: check each one with the provider (`runner state show "
        f"{name}` lists them), then run `runner state resolve {name} --request-id ID "
        "--sent|--not-sent` for each, or pass --all if they share one fate; nothing was recorded"
    )


def force_unlock(backend: Backend, lock_id: str) -> str:
    return backend.force_unlock(lock_id)


def copy_state(source: Backend, destination: Backend, force: bool) -> str:
    """Copy the whole state (lineage, serial, pending sends, history) under both locks."""
    if source.describe() == destination.describe():
        raise UsageError(f"{source.describe()} is both the source and the destination")
    with source.locked("state copy"), destination.locked("state copy"):
        state = source.read()
        if not state.lineage:
            raise RunnerError(f"{source.describe()} holds no state yet; there is nothing to copy")
        there = destination.read()
        if there.lineage and dump_state(there) == dump_state(state):
            return f"{destination.describe()} already holds this state (serial={state.serial})"
        if not force:
            refuse_overwrite(state, there, destination.describe())
        destination.replace(state)
        if dump_state(destination.read()) != dump_state(state):
            raise StateError(f"the copy at {destination.describe()} differs from its source")
    return (
        f"copied state {state.lineage} (serial {state.serial}, "
        f"{plural(len(state.campaigns), 'campaign')}) from {source.describe()} "
        f"to {destination.describe()}"
    )


def refuse_overwrite(state: State, there: State, where: str) -> None:
    """A destination may only be empty or an older copy of this very state, unless forced.

    The serial alone cannot tell: two copies of one state written apart can reach any serial.
    An older copy holds nothing its source lacks; a copy that does has diverged.
    """
    if not there.lineage:
        return
    if there.lineage != state.lineage:
        problem = f"holds another state (lineage {there.lineage})"
    elif there.serial == state.serial:  # the same content was already answered above
        problem = f"has diverged (serial {there.serial} in both, different records)"
    elif there.serial > state.serial:
        problem = f"is ahead or has diverged (serial {there.serial}, source {state.serial})"
    else:
        lacking = records_lacking(state, there)
        if not lacking:
            return
        problem = (
            f"has diverged: it holds records the source lacks ({lacking}; serial "
            f"{there.serial}, source {state.serial})"
        )
    raise StateError(f"{where} {problem}; nothing was copied: pass --force to overwrite it")


def records_lacking(source: State, older: State) -> str:
    """What `older` knows that `source` does not, for the first campaign where it differs."""
    for name, campaign in sorted(older.campaigns.items()):
        if source.generations.get(name, 0) > older.generations.get(name, 0):
            continue  # forgotten at the source since: what the copy knew was dropped there
        known = source.campaigns.get(name)
        moved = known is None
        known = known or _moved_to(source, campaign)
        if known is None:
            return f"campaign {name}"
        if not _sends_kept(known.sends, campaign.sends, moved):
            return f"sends of {name}"
        for fingerprint, message in campaign.messages.items():
            have = known.messages.get(fingerprint)
            if have is None or not message.delivered.keys() <= have.delivered.keys():
                return f"deliveries of {name}"
        settled = {s["request_id"] for s in known.sends}
        if any(r not in known.pending and r not in settled for r in campaign.pending):
            return f"pending sends of {name}"
    return ""


def _moved_to(source: State, campaign: CampaignState) -> CampaignState | None:
    """The campaign a rename (`moved_from`) merged this one into at the source, if any: one
    holding all of its sends and deliveries (a name the source still has is not a candidate
    twice: the caller looked it up first)."""
    ids = {s.get("request_id") for s in campaign.sends}
    for other in source.campaigns.values():
        if ids <= {s.get("request_id") for s in other.sends} and all(
            fingerprint in other.messages
            and message.delivered.keys() <= other.messages[fingerprint].delivered.keys()
            for fingerprint, message in campaign.messages.items()
        ):
            return other
    return None


def _sends_kept(source: list[dict[str, Any]], older: list[dict[str, Any]], moved: bool) -> bool:
    """The source's sends begin with the older copy's; after a rename they were merged with
    another campaign's, in time order: then each must still be there."""
    if not moved:
        return source[: len(older)] == older
    kept = {json.dumps(s, sort_keys=True) for s in source}
    return all(json.dumps(s, sort_keys=True) in kept for s in older)
