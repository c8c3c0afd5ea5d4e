"""Invariants of renames, in-process on records built directly (hypothesis): a rename with
`moved_from` plans exactly what the old name would have, and the plan's view of the moved
state is the state apply's `move` record folds to."""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import given
from test_plan_properties import NOW, PROPERTIES, SEEDED, earlier_state, projects

from runner.moves import moved_state, planned_moves
from runner.plan import Plan, make_plan
from runner.project import Project
from runner.state.model import Move
from runner.state.snapshot import dump_state


def renamed(project: Project) -> Project:
    first, *rest = project.campaigns
    moved = replace(first, name="renamed", moved_from=(first.name,))
    return Project(project.config, (moved, *rest))


@given(projects(), SEEDED)
@PROPERTIES
def test_a_rename_plans_what_the_old_name_would_have(project: Project, rng: random.Random) -> None:
    state = earlier_state(project, rng)
    before = make_plan(project, state, NOW)
    after = make_plan(renamed(project), state, NOW)
    old = project.campaigns[0].name

    def calls(plan: Plan, name: str) -> set[tuple[str, str, str]]:
        return {
            (b.campaign if b.campaign != name else "first", b.fingerprint, n)
            for b in plan.batches
            for n in b.numbers
        }

    assert calls(after, "renamed") == calls(before, old)
    assert after.hints == ()  # a rename with moved_from is no new campaign


@given(projects(), SEEDED)
@PROPERTIES
def test_the_plans_view_of_a_move_is_what_folding_it_gives(
    project: Project, rng: random.Random
) -> None:
    state = earlier_state(project, rng)
    there = earlier_state(renamed(project), rng).campaigns.get("renamed")
    if there is not None and rng.random() < 0.5:  # the new name may have a history too
        state.campaigns["renamed"] = there
    moves = planned_moves(renamed(project).campaigns, state)
    view = dump_state(moved_state(state, moves))
    assert [m.known for m in moves] == [project.campaigns[0].name in state.campaigns]
    for move in moves:
        state.fold(Move(move.new, move.old, NOW))
    state.serial -= len(moves)  # the view is not a write: compare the content
    assert view == dump_state(state)
