"""A hostile pull request, planned as CI plans it: no secret out, nothing written outside.

Each layout combines the traps of `hostile_repo` that can live together (a broken folder stops
a run before campaigns are read, and a bad contact list before its texts are rendered).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import figures
import pytest
from hostile_repo import HostileRepo, assert_nothing_leaked
from test_markdown_injection import assert_inert

LAYOUTS: dict[str, Callable[[HostileRepo], None]] = {
    "folders": lambda r: r.trap_default_templates_to_root(),
    "dot-git": lambda r: r.trap_dot_git_through_templates(),
    "dot-campaigns": lambda r: r.trap_dot_folders_as_campaigns(),
    "links": lambda r: (
        r.trap_links_out(),
        r.trap_endless_reads(),
        r.trap_nul_in_names(),
        r.trap_dot_git_as_contacts(),
    ),
    "writes": lambda r: r.trap_write_links(),
    "costly": lambda r: r.trap_costly_templates(),
    "markup": lambda r: r.trap_markup_and_escapes(),
}
VALID = ("writes", "markup")  # projects a plan accepts: their output is judged as well
RUNS = [
    ("validate",),
    ("plan",),
    ("plan", "--format", "json"),
    ("plan", "--format", "markdown"),
    ("plan", "--out", "{root}/plan.json"),
    ("plan", "--out", "{root}/linked-plan.json"),
]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_hostile_pull_request_gets_no_secret_and_writes_nothing_outside(
    tmp_path: Path, layout: str
) -> None:
    repo = HostileRepo(tmp_path)
    LAYOUTS[layout](repo)
    for args in RUNS:
        before = repo.snapshot()
        result = repo.run(*(a.format(root=repo.root) for a in args))
        assert_nothing_leaked(repo, before, result)
        figures.add("hostile-repo runs scanned")
        if layout not in VALID:
            assert result.code == 1, (args, result)  # refused, one line per problem
            continue
        assert result.code == 0 or "linked-plan" in args[-1], (args, result)  # a planted link
        assert "\x1b" not in result.output, (args, result)  # escapes shown escaped
        if "markdown" in args:
            assert_inert(result.out)  # nothing from content became markup
    if layout == "writes":  # a valid project: the plan is saved, the planted links untouched
        assert (repo.root / "plan.json").is_file()
        assert not (repo.root / "linked-plan.json").resolve().read_text()
