"""What each command does, between the click layer and the pipeline stages."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from runner import planfile
from runner.apply import ApplyResult, BatchResult, Sender
from runner.emulator import Emulator, EmulatorOptions
from runner.errors import InputError, RunnerError
from runner.octopush import OctopushClient
from runner.plan import Batch, Plan, make_plan, send_time_problems
from runner.project import Project
from runner.recipients import digest_number
from runner.state import Backend, open_state, state_location
from runner.state.local import LocalState
from runner.state.model import Accept, Forget, Resolve, State


def backend_for(project: Project, option: str | None) -> Backend:
    return open_state(state_location(option, project.config.state), project.config.root)


def planned(project: Project, state: State, simulate: bool = False) -> Plan:
    """Plan, then refuse a send_at in the past for any campaign that still has calls to make."""
    now = time.time()
    plan = make_plan(project, state, now, simulate)
    problems = send_time_problems(project, plan, now)
    if problems:
        raise InputError(problems)
    return plan


def forget(backend: Backend, name: str) -> str:
    with backend.locked("state forget"):
        state = backend.ensure_created()
        if name not in state.campaigns:
            raise RunnerError(f"the state has no campaign named {name}")
        if state.campaigns[name].pending:
            raise RunnerError(
                f"{name} has sends without outcome; run `runner state resolve "
                f"{name} --sent|--not-sent` first"
            )
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
            digests = tuple(digest_number(n) for n in message.numbers)
            backend.record(Accept(name, message.fingerprint, dict(message.body), digests, now))
        backend.commit()
    return f"{name}: {campaign.recipients:,} recipients recorded as delivered (nothing was sent)"


def resolve(backend: Backend, name: str, sent: bool) -> str:
    with backend.locked("state resolve"):
        state = backend.ensure_created()
        known = state.campaigns.get(name)
        if known is None or not known.pending:
            raise RunnerError(f"{name} has no pending sends to resolve")
        count = len(known.pending)
        backend.record(Resolve(name, sent, time.time()))
        backend.commit()
    verdict = "delivered" if sent else "not sent (the next apply sends them)"
    return f"{name}: {count} pending send(s) recorded as {verdict}"


def force_unlock(backend: Backend, lock_id: str) -> str:
    return backend.force_unlock(lock_id)


EMULATOR_LOGIN = "emulator"


@dataclass(frozen=True)
class ApplyRequest:
    """What the user asked `apply` to do."""

    plan_file: Path | None
    auto_approve: bool
    api_url: str | None
    emulator: bool
    simulate: bool
    max_cost: float | None
    concurrency: int


def credentials(request: ApplyRequest) -> tuple[str, str]:
    if request.emulator:
        return EMULATOR_LOGIN, EMULATOR_LOGIN
    login, key = os.environ.get("OCTOPUSH_API_LOGIN"), os.environ.get("OCTOPUSH_API_KEY")
    if not login or not key:
        raise RunnerError(
            "set OCTOPUSH_API_LOGIN and OCTOPUSH_API_KEY in the environment "
            "(or try `runner apply --emulator`)"
        )
    return login, key


@contextlib.contextmanager
def api_target(
    request: ApplyRequest, project: Project, state_option: str | None
) -> Iterator[tuple[str, Backend]]:
    """The API base URL and the state to use; the emulator gets its own throwaway state."""
    if not request.emulator:
        url = request.api_url or os.environ.get("OCTOPUSH_API_URL") or project.config.api_url
        yield url, backend_for(project, state_option)
        return
    with (
        tempfile.TemporaryDirectory(prefix="runner-emulator-") as folder,
        Emulator(EmulatorOptions(login=EMULATOR_LOGIN, key=EMULATOR_LOGIN)) as emulator,
    ):
        yield emulator.url, LocalState(Path(folder) / "state.json")


def batches_to_send(
    request: ApplyRequest, project: Project, state: State
) -> tuple[Plan | None, list[Batch]]:
    if request.plan_file is None:
        plan = planned(project, state, request.simulate)
        return plan, list(plan.batches)
    data = planfile.load_plan(request.plan_file)
    planfile.check_fresh(data, state, request.plan_file)
    return None, planfile.saved_batches(data)


def check_budget(batches: list[Batch], max_cost: float | None) -> None:
    cost = sum(b.cost for b in batches)
    if max_cost is not None and cost > max_cost:
        raise RunnerError(
            f"the estimated cost {cost:,.2f} € is over --max-cost "
            f"{max_cost:,.2f} €; nothing was sent"
        )


def run_apply(
    request: ApplyRequest,
    project: Project,
    state_option: str | None,
    show: Callable[[Plan | None, list[Batch]], None],
    confirm: Callable[[], bool],
    on_done: Callable[[BatchResult], None],
) -> ApplyResult | None:
    """Plan (or load a saved plan), ask, then send; the lock is held from plan to last record."""
    login, key = credentials(request)
    with api_target(request, project, state_option) as (url, backend), backend.locked("apply"):
        state = backend.read()
        plan, batches = batches_to_send(request, project, state)
        blocked = tuple(c.campaign for c in plan.changes if c.blocked) if plan else ()
        show(plan, batches)
        if not batches:
            return ApplyResult((), blocked)
        check_budget(batches, request.max_cost)
        if not request.auto_approve and not confirm():
            raise RunnerError("apply cancelled; nothing was sent")
        backend.ensure_created()
        with OctopushClient(url, login, key) as client:
            results = Sender(backend, client, request.concurrency, on_done).send_all(batches)
            credit = next(
                (
                    r.outcome.residual_credit
                    for r in reversed(results)
                    if r.outcome and r.outcome.residual_credit is not None
                ),
                None,
            )
        backend.commit()
        return ApplyResult(tuple(results), blocked, credit)
