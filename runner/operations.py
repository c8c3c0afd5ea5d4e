"""What each command does, between the click layer and the pipeline stages."""

from __future__ import annotations

import time
from collections.abc import Set as AbstractSet

from runner.counts import plural
from runner.errors import RunnerError, StateError, UsageError
from runner.plan import Plan, make_plan
from runner.project import Project
from runner.state import Backend, open_state, state_location
from runner.state.model import Accept, Forget, Resolve, State, body_for_state
from runner.state.snapshot import dump_state


def backend_for(project: Project, option: str | None) -> Backend:
    config = project.config
    return open_state(state_location(option, config.state), config.root, config.project)


def planned(project: Project, state: State, simulate: bool = False) -> Plan:
    """The plan now: a campaign whose send_at is past with people still to call is blocked."""
    return make_plan(project, state, time.time(), simulate)


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
                f"{name} has sends without outcome; run `runner state resolve "
                f"{name} --sent|--not-sent` first"
            )
        backend.ensure_created()
        backend.record(Forget(name, time.time()))
        backend.commit()
    return f"{name}: forgotten; the next apply calls all of its recipients again"


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


def resolve(backend: Backend, name: str, sent: bool) -> str:
    with backend.locked("state resolve"):
        state = backend.read()
        known = state.campaigns.get(name)
        if known is None or not known.pending:
            raise RunnerError(f"{name} has no pending sends to resolve")
        count = len(known.pending)
        backend.ensure_created()
        backend.record(Resolve(name, sent, time.time()))
        backend.commit()
    verdict = "delivered" if sent else "not sent (the next apply sends them)"
    return f"{name}: {plural(count, 'pending send')} recorded as {verdict}"


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
    """A destination may only be empty or an older copy of the same state, unless forced."""
    if not there.lineage:
        return
    if there.lineage != state.lineage:
        problem = f"holds another state (lineage {there.lineage})"
    elif there.serial >= state.serial:
        problem = f"is ahead or has diverged (serial {there.serial}, source {state.serial})"
    else:
        return
    raise StateError(f"{where} {problem}; nothing was copied: pass --force to overwrite it")
