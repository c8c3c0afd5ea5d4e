"""Many campaigns are rendered on two cores: the output is the same as on one."""

from __future__ import annotations

from conftest import ProjectDir, us_numbers


def _many_campaigns(project: ProjectDir, count: int, broken: tuple[int, ...] = ()) -> None:
    numbers = us_numbers(count * 2)
    for i in range(count):
        text = "Hi {{ recipient.first_name }}" if i % 7 == 0 else f"Notice {i} for {{{{ who }}}}"
        first = "not-a-number" if i in broken else numbers[2 * i]
        project.write(
            f"campaigns/c{i:04d}.yaml",
            f"""
            name: c{i:04d}
            text: "{text}"
            vars: {{who: team {i}}}
            recipients:
              - {{phone_number: "{first}", first_name: Ann}}
              - {{phone_number: "{numbers[2 * i + 1]}", first_name: Bob}}
            """,
        )


def test_two_processes_plan_exactly_like_one(project: ProjectDir) -> None:
    _many_campaigns(project, 260)  # over the threshold: the second half goes to a child
    one = project.run("plan", "--format", "json", env={"RUNNER_JOBS": "1"})
    two = project.run("-vv", "plan", "--format", "json", env={"RUNNER_JOBS": "2"})
    assert one.code == two.code == 0, two
    assert one.out == two.out
    assert "260 items: the last 130 in a second process" in two.err
    assert '"c0259"' in two.out and '"c0000"' in two.out


def test_problems_from_both_halves_are_reported_in_order(project: ProjectDir) -> None:
    _many_campaigns(project, 260, broken=(3, 250))
    one = project.run("validate", env={"RUNNER_JOBS": "1"})
    two = project.run("validate", env={"RUNNER_JOBS": "2"})
    assert one.code == two.code == 1
    assert one.err == two.err
    lines = two.err.splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == [
        "campaigns/c0003.yaml",
        "campaigns/c0250.yaml",
    ], lines
