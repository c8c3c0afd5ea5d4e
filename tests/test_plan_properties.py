"""Invariants of plan and state folding, in-process on records built directly (hypothesis)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.plan import BATCH_SIZE, Plan, derive_request_id, make_plan
from runner.project import Project
from runner.recipients import digest_number
from runner.render import Campaign, Message, fingerprint_message
from runner.state.model import Accept, Intent, Outcome, State
from runner.validate import Config

NOW = 1_800_000_000.0
POOL = [f"+1{npa}55501{x:02d}" for npa in range(201, 218) for x in range(100)]
CONFIG = Config(root=Path("."), pricing={"default": 0.05, "1": 0.04})
SEEDED = st.integers(0, 2**32 - 1).map(random.Random)  # cheap: large draws need no entropy
PROPERTIES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def body_of(campaign: str, index: int, version: int) -> dict[str, Any]:
    return {
        "text": f"{campaign} message {index}, version {version}.",
        "purpose": "alert",
        "voice_gender": "female",
        "voice_language": "en-US",
    }


def message(body: Mapping[str, Any], numbers: list[str]) -> Message:
    return Message(fingerprint_message(body), body, tuple(sorted(numbers)))


@st.composite
def projects(draw: st.DrawFn) -> Project:
    """1-3 campaigns of 1-3 messages each; a number hears one message per campaign."""
    rng = draw(SEEDED)
    campaigns = []
    for c in range(draw(st.integers(1, 3))):
        size = draw(st.one_of(st.integers(0, 40), st.integers(480, 1300)))
        numbers = rng.sample(POOL, size)
        cuts = sorted(draw(st.lists(st.integers(0, size), max_size=2)))
        parts = [numbers[a:b] for a, b in zip([0, *cuts], [*cuts, size], strict=True)]
        name = f"campaign-{c}"
        version = draw(st.integers(0, 1))
        messages = tuple(message(body_of(name, i, version), p) for i, p in enumerate(parts) if p)
        campaigns.append(Campaign(name, f"campaigns/{name}.yaml", 1, messages, 0, False, None))
    return Project(CONFIG, tuple(campaigns))


def earlier_state(project: Project, rng: random.Random) -> State:
    """What an earlier run could have left: some heard an old version, some this one."""
    state = State(lineage="lineage-1")
    for campaign in project.campaigns:
        for index, m in enumerate(campaign.messages):
            heard = [n for n in m.numbers if rng.random() < 0.3]
            old = body_of(campaign.name, index, 9)
            for body in (old, m.body):
                some = tuple(digest_number(n) for n in heard if rng.random() < 0.5)
                state.fold(Accept(campaign.name, fingerprint_message(body), body, some, NOW - 60))
    return state


def record_intents(state: State, plan: Plan, outcome: str | None, simulated: bool = False) -> None:
    for batch in plan.batches:
        state.fold(
            Intent(
                batch.request_id,
                batch.campaign,
                batch.fingerprint,
                dict(batch.body),
                batch.digests,
                NOW,
                simulated,
            )
        )
        if outcome is not None:
            state.fold(Outcome(batch.request_id, outcome, NOW, "voice_x", len(batch.numbers)))


def batch_sets(plan: Plan) -> set[tuple[str, str, str, tuple[str, ...]]]:
    return {
        (b.campaign, b.fingerprint, b.request_id, tuple(sorted(b.numbers))) for b in plan.batches
    }


@PROPERTIES
@given(projects(), SEEDED, st.sampled_from(["", "real", "simulated"]))
def test_a_delivered_plan_leaves_nothing_to_do(
    project: Project, rng: random.Random, killed: str
) -> None:
    state = earlier_state(project, rng)
    plan = make_plan(project, state, NOW)
    if killed == "real":  # intents without outcome: the next plan re-sends those very batches
        record_intents(state, plan, None)
        resent = make_plan(project, state, NOW)
        assert batch_sets(resent) == batch_sets(plan)
        assert all(b.resend and not b.simulate for b in resent.batches)
        simulation = make_plan(project, state, NOW, simulate=True)
        assert simulation.batches == ()  # a simulation must not settle a real send
        assert all(c.blocked for c in simulation.changes if c.pending)
        plan = resent
    if killed == "simulated":  # a killed --simulate run reached nobody: plan as if it never ran
        record_intents(state, plan, None, simulated=True)
        again = make_plan(project, state, NOW)
        assert batch_sets(again) == batch_sets(plan)
        assert not any(b.resend or b.simulate for b in again.batches)
    record_intents(state, plan, "sent")
    after = make_plan(project, state, NOW)
    assert after.batches == ()
    assert not after.has_changes
    assert all(not c.pending for c in after.changes)


@PROPERTIES
@given(projects(), SEEDED)
def test_batches_are_small_disjoint_and_exactly_what_is_missing(
    project: Project, rng: random.Random
) -> None:
    state = earlier_state(project, rng)
    plan = make_plan(project, state, NOW)
    for campaign in project.campaigns:
        known = state.campaigns.get(campaign.name)
        batches = [b for b in plan.batches if b.campaign == campaign.name]
        planned = [n for b in batches for n in b.numbers]
        assert len(planned) == len(set(planned))  # nobody in two batches
        assert all(1 <= len(b.numbers) <= BATCH_SIZE for b in batches)
        for m in campaign.messages:
            heard = (
                known.messages[m.fingerprint].delivered
                if known and (m.fingerprint in known.messages)
                else set()
            )
            missing = {n for n in m.numbers if digest_number(n) not in heard}
            assert {n for b in batches if b.fingerprint == m.fingerprint for n in b.numbers} == (
                missing
            )
        for b in batches:
            assert b.request_id == derive_request_id(b.campaign, b.fingerprint, b.numbers)
            assert list(b.numbers) == sorted(b.numbers)


def shuffled_project(project: Project, rng: random.Random) -> Project:
    """The same campaigns, as files in another order would give them."""
    campaigns = []
    for campaign in project.campaigns:
        messages = []
        for m in campaign.messages:
            keys = list(m.body)
            rng.shuffle(keys)
            numbers = list(m.numbers)
            rng.shuffle(numbers)
            body = {k: m.body[k] for k in keys}
            messages.append(Message(fingerprint_message(body), body, tuple(numbers)))
        rng.shuffle(messages)
        campaigns.append(Campaign(campaign.name, campaign.path, 1, tuple(messages), 0, False, None))
    rng.shuffle(campaigns)
    return Project(CONFIG, tuple(campaigns))


@PROPERTIES
@given(projects(), SEEDED)
def test_ids_do_not_depend_on_order(project: Project, rng: random.Random) -> None:
    state = earlier_state(project, random.Random(1))
    plan = make_plan(project, state, NOW)
    assert batch_sets(make_plan(shuffled_project(project, rng), state, NOW)) == batch_sets(plan)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.one_of(st.text(max_size=20), st.integers(), st.booleans(), st.none()),
        max_size=8,
    ),
    st.lists(st.sampled_from(POOL), max_size=30, unique=True),
    SEEDED,
)
def test_fingerprints_and_request_ids_ignore_order(
    body: dict[str, Any], numbers: list[str], rng: random.Random
) -> None:
    keys = list(body)
    rng.shuffle(keys)
    assert fingerprint_message({k: body[k] for k in keys}) == fingerprint_message(body)
    fingerprint = fingerprint_message(body)
    shuffled = numbers[:]
    rng.shuffle(shuffled)
    assert derive_request_id("c", fingerprint, tuple(shuffled)) == derive_request_id(
        "c", fingerprint, tuple(numbers)
    )
