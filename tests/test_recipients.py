"""Recipients: inline numbers, contact mappings and CSV files, each problem at its own line."""

from __future__ import annotations

import os

import pytest
from conftest import ProjectDir
from expect import assert_refused

E164 = "write it in E.164, e.g. +12015550123"


def test_invalid_inline_numbers(project: ProjectDir) -> None:
    project.write(
        "campaigns/inline.yaml",
        """
        name: inline
        text: Hello
        recipients:
          - "+12025550143"
          - "+1202555014"
          - "12345"
          - {phone_number: "call me", first_name: Ana}
          - {phone_number: "(202) 555-0144", first_name: Ben}
          - "+1 202 555 0145 ext. 5"
          - "call +12025550146"
        ---
        name: blank
        text: Hello
        recipients: ["+12025550143", ""]
        """,
    )
    assert_refused(
        project.run("validate"),
        f"campaigns/inline.yaml:5: recipients: '+1202555014' is not a valid phone number; {E164}",
        f"campaigns/inline.yaml:6: recipients: '12345' is not a valid phone number; {E164}",
        f"campaigns/inline.yaml:7: recipients: 'call me' is not a valid phone number; {E164}",
        "campaigns/inline.yaml:9: recipients: '+1 202 555 0145 ext. 5' is not a valid phone "
        f"number; {E164}",
        f"campaigns/inline.yaml:10: recipients: 'call +12025550146' is not a valid phone number; "
        f"{E164}",
        "campaigns/inline.yaml:14: recipients[1]: is empty; "
        "write a phone number or remove the item",
    )


def test_national_numbers_need_a_default_region(project: ProjectDir) -> None:
    project.write(
        "runner.yaml", "defaults: {purpose: alert, voice_gender: male, voice_language: en-US}\n"
    )
    project.write(
        "campaigns/national.yaml",
        'name: national\ntext: Hello\nrecipients: ["(202) 555-0143", "+12025550144"]\n',
    )
    assert_refused(
        project.run("validate"),
        "campaigns/national.yaml:3: recipients: '(202) 555-0143' is not a valid phone number; "
        "write it in E.164 (+33612345678) or set default_region in runner.yaml",
    )


def test_invalid_numbers_in_a_csv_point_at_the_row(project: ProjectDir) -> None:
    project.write(
        "contacts/x.csv",
        "phone_number,first_name\n"
        "+12025550143,Ana\n"
        "not-a-number,Ben\n"
        "\n"
        "+12025550199,Chloe,extra\n"
        ",Dev\n"
        '"+12025550145\n'
        "+12025550146,Eve\n",
    )
    project.write(
        "campaigns/csv.yaml",
        "name: csv\ntext: Hello\nrecipients:\n  - file: contacts/x.csv\n",
    )
    project.write(
        "campaigns/again.yaml",
        "name: again\ntext: Hello again\nrecipients:\n  - file: ./contacts/x.csv\n",
    )
    assert_refused(
        project.run("validate"),
        f"contacts/x.csv:3: phone_number: 'not-a-number' is not a valid phone number; {E164}",
        "contacts/x.csv:5: more cells than header columns; quote cells that hold commas",
        "contacts/x.csv:6: phone_number: no phone number; fill it in or remove the entry",
        "contacts/x.csv:8: phone_number: '+12025550145\\n+12025550146,Eve\\n' is not a valid "
        f"phone number; {E164}",
    )


def test_unreadable_contact_files(project: ProjectDir) -> None:
    project.write("contacts/header.csv", "phone,first_name\n+12025550143,Ana\n")
    project.write("contacts/empty.csv", "phone_number\n")
    (project.root / "contacts/latin.csv").write_bytes(
        b"phone_number,first_name\n+12025550143,Zo\xeb\n"
    )
    (project.root / "contacts/folder.csv").mkdir()
    for name in ("header", "empty", "latin", "folder", "missing"):
        project.write(
            f"campaigns/{name}.yaml",
            f"name: {name}\ntext: Hello\nrecipients:\n  - file: contacts/{name}.csv\n",
        )
    assert_refused(
        project.run("validate"),
        "contacts/header.csv:1: no 'phone_number' column in the header row; add it",
        "campaigns/empty.yaml:3: recipients: no recipients: the list and its files are empty; "
        "add at least one phone number",
        "campaigns/latin.yaml:4: recipients.file: cannot read 'contacts/latin.csv': not UTF-8 "
        "text; save it as UTF-8 CSV",
        "campaigns/folder.yaml:4: recipients.file: 'contacts/folder.csv' is not a regular file "
        "(a device, FIFO or folder); use a plain file",
        "campaigns/missing.yaml:4: recipients.file: cannot read 'contacts/missing.csv': "
        "No such file or directory; check the path, relative to the project folder",
    )


@pytest.mark.parametrize("style", ["dotdot", "absolute", "symlink"])
def test_contact_files_cannot_leave_the_project(project: ProjectDir, style: str) -> None:
    outside = project.root.parent / "outside.csv"
    outside.write_text("phone_number\n+12025550143\n")
    name = {"dotdot": "../outside.csv", "absolute": str(outside), "symlink": "contacts/link.csv"}[
        style
    ]
    if style == "symlink":
        (project.root / "contacts").mkdir()
        os.symlink(outside, project.root / "contacts/link.csv")
    project.write(
        "campaigns/leak.yaml",
        f"name: leak\ntext: Hello\nrecipients:\n  - file: {name}\n",
    )
    assert_refused(
        project.run("validate"),
        f"campaigns/leak.yaml:4: recipients.file: '{name}' is outside the project; "
        "keep contact files inside it",
    )


def test_contact_items_with_extra_or_misspelled_keys(project: ProjectDir) -> None:
    project.write("contacts/x.csv", "phone_number\n+12025550143\n")
    project.write(
        "campaigns/items.yaml",
        """
        name: items
        text: Hello
        recipients:
          - {file: contacts/x.csv, phone_number: "+12025550144"}
          - {phone_number: "+12025550145", param6: x}
          - {first_name: Ana}
        """,
    )
    assert_refused(
        project.run("validate"),
        "campaigns/items.yaml:4: recipients[0].phone_number: unknown field; a {file: ...} item "
        "takes only 'file': give the contact its own item",
        "campaigns/items.yaml:5: recipients[1].param6: unknown field; did you mean 'param5'?",
        "campaigns/items.yaml:6: recipients[2]: missing required field 'phone_number'; add it",
    )


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_column_of_numbers_points_at_each_bad_row(project: ProjectDir, newline: str) -> None:
    """The one-column fast path says where each bad number is, as the row by row path does."""
    rows = ["phone_number", "+12025550143", "", "+1202555014", " (202) 555-0144 ", "n/a"]
    rows += ["   ", "+12025550143", "+33612345678", "+3361234567"]
    (project.root / "contacts").mkdir()
    (project.root / "contacts/one.csv").write_bytes((newline.join(rows) + newline).encode())
    project.write(
        "campaigns/one.yaml", "name: one\ntext: Hello\nrecipients:\n  - file: contacts/one.csv\n"
    )
    assert_refused(
        project.run("validate"),
        f"contacts/one.csv:4: phone_number: '+1202555014' is not a valid phone number; {E164}",
        f"contacts/one.csv:6: phone_number: 'n/a' is not a valid phone number; {E164}",
        "contacts/one.csv:7: phone_number: no phone number; fill it in or remove the entry",
        f"contacts/one.csv:10: phone_number: '+3361234567' is not a valid phone number; {E164}",
    )
