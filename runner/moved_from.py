"""`moved_from` in the files: the rules a rename must follow before any state is read.

A former name must not also be a campaign in the files (its history could not belong to both),
one former name moves to one campaign only, and the moves must not go round in a circle.
A former name the state does not know is fine: the plan says there is nothing to carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from runner.errors import Problem
from runner.load import line_of

if TYPE_CHECKING:
    from runner.validate import CampaignSpec


def moved_from(spec: CampaignSpec) -> tuple[str, ...]:
    return tuple(str(old) for old in spec.fields.get("moved_from", ()))


def moved_from_problems(specs: Sequence[CampaignSpec]) -> list[Problem]:
    """One line per wrong former name, at its own line in the file."""
    by_name = {spec.name: spec for spec in specs}
    claims: dict[str, list[CampaignSpec]] = {}
    for spec in specs:
        for old in moved_from(spec):
            claims.setdefault(old, []).append(spec)
    problems = []
    for spec in specs:
        for index, old in enumerate(moved_from(spec)):
            message = _problem(spec, old, by_name, claims)
            if message:
                line = line_of(spec.document, ["moved_from", index])
                problems.append(Problem(spec.path, line, f"moved_from[{index}]", message))
    return problems


def _problem(
    spec: CampaignSpec,
    old: str,
    by_name: dict[str, CampaignSpec],
    claims: dict[str, list[CampaignSpec]],
) -> str | None:
    if old == spec.name:
        return f"'{old}' is this campaign's own name; remove it from moved_from"
    cycle = _cycle(spec.name, old, by_name)
    if cycle:
        return (
            f"{' -> '.join(cycle)} is a cycle of renames; a campaign moves one way only: "
            "remove the moved_from that points back"
        )
    if old in by_name:
        there = by_name[old]
        return (
            f"'{old}' is also a campaign in the files ({_place(there)}); its history cannot "
            "move while it is in use: remove that campaign, or remove it from moved_from"
        )
    others = [s for s in claims.get(old, []) if s is not spec]
    if others:
        return (
            f"'{old}' is also claimed by '{others[0].name}' ({_place(others[0])}); a former "
            "name moves to one campaign only: keep it in one moved_from"
        )
    return None


def _cycle(start: str, old: str, by_name: dict[str, CampaignSpec]) -> list[str]:
    """The names from `start` back round to it through `old`, in the order of the moves
    (oldest first), if following former names from `old` leads back to `start`."""
    came_from: dict[str, str] = {old: start}
    todo = [old]
    while todo:
        name = todo.pop()
        spec = by_name.get(name)
        for former in moved_from(spec) if spec else ():
            if former == start:
                path = [start, name]
                while path[-1] != start or len(path) == 2:
                    path.append(came_from[path[-1]])
                return path
            if former not in came_from:
                came_from[former] = name
                todo.append(former)
    return []


def _place(spec: CampaignSpec) -> str:
    return f"{spec.path}:{line_of(spec.document, ['name'])}"
