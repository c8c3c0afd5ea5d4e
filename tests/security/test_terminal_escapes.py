"""Nothing from the files or the state reaches a terminal raw: control characters show escaped.

ESC starts colour changes, cursor moves, screen clears and OSC 8 hyperlinks (a "click" that
opens any URL); a PR can put one in a YAML key, a `file:` or `template:` name, a folder name,
or a campaign name in a committed state file.
"""

from __future__ import annotations

import json

from conftest import ProjectDir
from crafted import ESC_LINK, NUMBER, write_crafted_state

RAW = ("\x1b", "\x07", "\x9b", "\u202e")


def assert_escaped(output: str) -> None:
    assert not [c for c in RAW if c in output], repr(output)
    assert "\\x1b" in output, output


def test_problems_show_control_characters_escaped(project: ProjectDir) -> None:
    project.write(
        "campaigns/bad.yaml",
        'name: bad\ntext: "Hi."\n"col\\e[31mour": 1\nrecipients: ["+12025550143"]\n---\n'
        'name: worst\ntext: "Hi."\nrecipients:\n'
        '  - file: "contacts/\\e]8;;https://evil.example/\\e\\\\x.csv"\n'
        "---\n"
        'name: worse\ntemplate: "\\e[2J\\u202egj.j2"\nrecipients: ["+12025550143"]\n',
    )
    for fmt in ("text", "json"):
        result = project.run("validate", "--format", fmt)
        assert result.code == 1, result
        assert_escaped(result.output.replace("\\u001b", "\\x1b"))  # JSON's own escape
    lines = project.run("validate").err.splitlines()
    assert len(lines) == 4, lines  # one line per problem, and the count: no line broken


def test_paths_and_state_names_show_escaped(project: ProjectDir) -> None:
    folder = "x\x1b[2J\x1b]8;;https://evil.example/\x07y"
    project.write(f"campaigns/{folder}/a.yaml", f'name: a\ntext: "Hi."\nrecipients: ["{NUMBER}"]\n')
    write_crafted_state(project, "a", "Old\x1b[31m text\x9b.", f"gone{ESC_LINK}\nFAKE")
    for command in (("plan",), ("render",), ("state", "list")):
        result = project.run(*command)
        assert result.code == 0, result
        assert_escaped(result.output)
    shown = project.run("state", "show", f"gone{ESC_LINK}\nFAKE")
    assert shown.code == 0 and shown.out.startswith("gone\\x1b]8;;"), shown
    assert_escaped(shown.output)
    data = project.run("plan", "--format", "json")
    assert not [c for c in RAW if c in data.out]  # DEL, C1 and bidi too, not only C0
    assert json.loads(data.out)["removed_campaigns"][0]["name"] == f"gone{ESC_LINK}\nFAKE"
