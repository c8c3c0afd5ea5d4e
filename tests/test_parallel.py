"""Many campaigns are rendered on two cores: the output is the same as on one."""

from __future__ import annotations

import json

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


def _big_list(project: ProjectDir, numbers: list[str]) -> None:
    project.write("contacts/big.csv", "phone_number\n" + "\n".join(numbers) + "\n")
    project.write(
        "campaigns/big.yaml",
        """
        name: big
        text: Hello.
        recipients:
          - file: contacts/big.csv
        """,
    )


def test_a_big_list_is_checked_on_two_cores_exactly_like_on_one(project: ProjectDir) -> None:
    numbers = [f"+1202{exchange}{i:04d}" for exchange in range(234, 246) for i in range(10_000)]
    _big_list(project, numbers)  # 120,000: over the threshold, the second half in a child
    one = project.run("plan", "--format", "json", env={"RUNNER_JOBS": "1"})
    two = project.run("-vv", "plan", "--format", "json", env={"RUNNER_JOBS": "2"})
    assert one.code == two.code == 0, two
    assert one.out == two.out
    assert "120000 items: the last 60000 in a second process" in two.err
    assert json.loads(two.out)["summary"]["recipients"] == 120_000


def test_an_invalid_number_in_either_half_of_a_big_list_is_found(project: ProjectDir) -> None:
    numbers = [f"+1202{exchange}{i:04d}" for exchange in range(234, 246) for i in range(10_000)]
    numbers[100_000] = "+1202555"  # in the child's half
    _big_list(project, numbers)
    one = project.run("validate", env={"RUNNER_JOBS": "1"})
    two = project.run("validate", env={"RUNNER_JOBS": "2"})
    assert one.code == two.code == 1
    assert one.err == two.err
    assert (
        "contacts/big.csv:100002: phone_number: '+1202555' is not a valid phone number" in two.err
    )
