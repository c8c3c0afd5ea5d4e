"""Files a hostile or careless project can hold: ways out of the project, spreadsheet formulas,
NUL bytes, alias bombs and huge documents. Each is refused in one line, quickly, sending nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

import figures
import pytest
from conftest import ProjectDir
from expect import assert_refused, problem_lines
from hostile import assert_clean, run_in_process

SECRET = "TOP-SECRET-CONTENT"
ONE = '["+12025550143"]'


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder beside the project holding what must never be read."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.j2").write_text(SECRET)
    (folder / "secret.csv").write_text(f"phone_number,first_name\n+12025550143,{SECRET}\n")
    return folder


def validate(project: ProjectDir) -> list[str]:
    result = run_in_process("-C", str(project.root), "validate")
    assert_clean(result)
    assert SECRET not in result.output
    figures.add("hostile files refused")
    return problem_lines(result)


def test_templates_cannot_lead_out_of_the_templates_folder(
    project: ProjectDir, outside: Path
) -> None:
    project.write("templates/ok.j2", "fine")
    (project.root / "templates/link.j2").symlink_to(outside / "secret.j2")
    (project.root / "templates/linked-folder").symlink_to(outside)
    names = [
        "../../outside/secret.j2",
        str(outside / "secret.j2"),
        "link.j2",
        "linked-folder/secret.j2",
        "ok.j2/../../../outside/secret.j2",
        "..\\..\\outside\\secret.j2",
    ]
    docs = [f"name: t{i}\ntemplate: {n!r}\nrecipients: {ONE}\n" for i, n in enumerate(names)]
    includes = [f"{{% include {n!r} %}}" for n in names]
    docs += [
        f"name: i{i}\ntext: {text!r}\nrecipients: {ONE}\n".replace("'{", '"{').replace("}'", '}"')
        for i, text in enumerate(includes)
    ]
    project.write("campaigns/escape.yaml", "---\n".join(docs))
    lines = validate(project)
    assert len(lines) == 2 * len(names), lines
    for line in lines:
        assert "leads outside templates/" in line or "not found in templates/" in line, line


def test_contact_files_cannot_lead_out_of_the_project(project: ProjectDir, outside: Path) -> None:
    (project.root / "contacts").mkdir()
    (project.root / "contacts/link.csv").symlink_to(outside / "secret.csv")
    (project.root / "contacts/elsewhere").symlink_to(outside)
    names = [
        "../outside/secret.csv",
        str(outside / "secret.csv"),
        "contacts/link.csv",
        "contacts/elsewhere/secret.csv",
        "contacts/../../outside/secret.csv",
        "/etc/passwd",
    ]
    items = "".join(f"  - {{file: {n!r}}}\n" for n in names)
    project.write("campaigns/escape.yaml", f"name: escape\ntext: Hello.\nrecipients:\n{items}")
    lines = validate(project)
    assert len(lines) == len(names), lines
    for line in lines:
        assert "is outside the project; keep contact files inside it" in line, line


def test_project_folders_cannot_lead_out(project: ProjectDir, outside: Path) -> None:
    project.write("runner.yaml", f"campaigns: {outside}\ntemplates: ../outside\n")
    lines = validate(project)
    assert len(lines) == 2, lines
    assert all("leads outside the project; use a folder inside it" in line for line in lines)


FORMULAS = [
    "=cmd|' /C calc'!A0",
    "=SUM(12025550100,43)",  # a spreadsheet shows 12025550143: never call +12025550100
    '=HYPERLINK("tel:+12025550111")',
    "@SUM(12025550100)",
    "=+12025550143",
]


def test_spreadsheet_formulas_are_refused_as_numbers(project: ProjectDir) -> None:
    cells = "".join(f'"{f.replace(chr(34), chr(34) * 2)}"\n' for f in FORMULAS)
    project.write("contacts/formulas.csv", "phone_number\n" + cells)
    project.write(
        "campaigns/c.yaml", "name: c\ntext: Hello.\nrecipients:\n  - file: contacts/formulas.csv\n"
    )
    lines = validate(project)
    assert len(lines) == len(FORMULAS), lines
    for number, (line, formula) in enumerate(zip(lines, FORMULAS, strict=True), 2):
        assert line.startswith(f"contacts/formulas.csv:{number}: phone_number: '"), line
        assert "is not a valid phone number" in line, (line, formula)


def test_nul_bytes_are_refused(project: ProjectDir) -> None:
    (project.root / "contacts").mkdir()
    (project.root / "contacts/nul.csv").write_bytes(b"phone_number\n+1202555\x000143\n")
    project.write(
        "campaigns/c.yaml", "name: c\ntext: Hello.\nrecipients:\n  - file: contacts/nul.csv\n"
    )
    (project.root / "campaigns/nul.yaml").write_bytes(b"name: n\x00\ntext: x\n")
    lines = validate(project)
    yaml_line, csv_line = sorted(lines)
    assert yaml_line.startswith("campaigns/nul.yaml:1: unreadable: "), yaml_line
    assert yaml_line.endswith("(character #x0000); save it as UTF-8 text"), yaml_line
    assert csv_line == "contacts/nul.csv: contains NUL bytes; save it as plain UTF-8 CSV"


BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]" for i in range(8)]
    + ["name: bomb", "text: Hello.", 'recipients: ["+12025550143"]']
)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            BILLION_LAUGHS,
            "campaigns/big.yaml:{}: refused: more than 200,000 values with aliases expanded; "
            "remove the aliases",
        ),
        ("a: &a [*a]\n", "campaigns/big.yaml:1: refused: an alias refers to itself; remove it"),
        (
            "x: " + "[" * 100_000 + "]" * 100_000 + "\n",
            "campaigns/big.yaml:1: refused: nested more than 64 levels; flatten it",
        ),
        (
            "# " + "x" * (5 << 20) + "\n",
            "campaigns/big.yaml: file is larger than 4 MiB; split it or move recipients to a "
            "CSV file",
        ),
    ],
    ids=["billion-laughs", "self-alias", "deep-nesting", "huge-file"],
)
def test_bombs_and_huge_documents_are_refused_quickly(
    project: ProjectDir, content: str, expected: str
) -> None:
    project.write("campaigns/big.yaml", content)
    started = time.monotonic()
    lines = validate(project)
    assert time.monotonic() - started < 5
    [line] = lines
    if "{}" in expected:  # where the expansion passes the bound depends on the aliases' order
        prefix, suffix = expected.split("{}")
        assert line.startswith(prefix) and line.endswith(suffix), line
    else:
        assert line == expected


def test_a_hostile_project_is_refused_by_the_real_command_too(
    project: ProjectDir, outside: Path
) -> None:
    """The same refusals through a real process, as CI would see them."""
    project.write("templates/ok.j2", "fine")
    project.write("campaigns/a.yaml", f"name: a\ntemplate: /etc/passwd\nrecipients: {ONE}\n")
    project.write("campaigns/b.yaml", "name: b\ntext: Hi\nrecipients: [{file: /etc/passwd}]\n")
    assert_refused(
        project.run("validate"),
        "campaigns/a.yaml:2: template: template '/etc/passwd' leads outside templates/; "
        "keep templates inside it",
        "campaigns/b.yaml:3: recipients.file: '/etc/passwd' is outside the project; "
        "keep contact files inside it",
    )
