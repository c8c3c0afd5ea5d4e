"""Reading YAML: hostile or broken files become one located problem each, quickly."""

from __future__ import annotations

import time

from conftest import ProjectDir
from expect import assert_refused

BILLION_LAUGHS = """
name: lol
text: Hello
vars:
  a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
  i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
recipients: ["+12025550143"]
"""


def test_alias_bombs_are_refused_quickly(project: ProjectDir) -> None:
    project.write("campaigns/laughs.yaml", BILLION_LAUGHS)
    project.write(
        "campaigns/loop.yaml",
        """
        name: loop
        text: Hello
        vars: &self {again: *self}
        recipients: ["+12025550143"]
        """,
    )
    started = time.monotonic()
    result = project.run("validate")
    assert time.monotonic() - started < 10
    assert_refused(
        result,
        "campaigns/laughs.yaml:9: refused: more than 200,000 values with aliases expanded; "
        "remove the aliases",
        "campaigns/loop.yaml:3: refused: an alias refers to itself; remove it",
    )


def test_small_aliases_still_work(project: ProjectDir) -> None:
    project.write(
        "campaigns/anchors.yaml",
        """
        name: anchors
        text: Hello {{ who }}, from {{ settings.who }} ({{ settings.shift }})
        vars:
          base: &base {who: the on-call team}
          who: *base
          settings: {<<: *base, shift: night}
        recipients: ["+12025550143", "+12025550144"]
        """,
    )
    result = project.run("render")
    assert result.code == 0, result
    assert "    | Hello {'who': 'the on-call team'}, from the on-call team (night)\n" in result.out


def test_a_document_over_4_mib_is_refused_unread(project: ProjectDir) -> None:
    numbers = "".join(f'  - "+1202555{i % 10000:04d}"\n' for i in range(250_000))
    path = project.write("campaigns/huge.yaml", "name: huge\ntext: Hi\nrecipients:\n" + numbers)
    assert path.stat().st_size > 4 * 1024 * 1024
    project.write("campaigns/ok.yaml", 'name: ok\ntext: Hi\nrecipients: ["+12025550143"]\n')
    started = time.monotonic()
    result = project.run("validate")
    assert time.monotonic() - started < 10
    assert_refused(
        result,
        "campaigns/huge.yaml: file is larger than 4 MiB; split it or move recipients to a CSV file",
    )


def test_deep_nesting_is_refused_without_crashing(project: ProjectDir) -> None:
    # 100,000 nested lists used to overflow libyaml's recursive composer: a segfault, no message
    project.write("campaigns/deep.yaml", "name: deep\nvars:\n  x: " + "[" * 100_000 + "]" * 100_000)
    project.write(
        "campaigns/blocks.yaml",
        "name: blocks\nvars:\n" + "".join(" " * (i + 1) + f"k{i}:\n" for i in range(100)),
    )
    assert_refused(
        project.run("validate"),
        "campaigns/deep.yaml:3: refused: nested more than 64 levels; flatten it",
        "campaigns/blocks.yaml:66: refused: nested more than 64 levels; flatten it",
    )


def test_unsafe_tags_duplicate_keys_and_bad_bytes(project: ProjectDir) -> None:
    project.write(
        "campaigns/tag.yaml",
        """
        name: tag
        text: !!python/object/apply:os.system ["echo pwned"]
        recipients: ["+12025550143"]
        """,
    )
    project.write(
        "campaigns/dup.yaml",
        """
        name: dup
        text: Hello
        text: Hello again
        recipients: ["+12025550143"]
        """,
    )
    (project.root / "campaigns/latin1.yaml").write_bytes(
        b'name: latin\ntext: "Caf\xe9 opens at 9"\nrecipients: ["+12025550143"]\n'
    )
    (project.root / "campaigns/bell.yaml").write_bytes(b"name: bell\ntext: Ding\x07\n")
    assert_refused(
        project.run("validate"),
        "campaigns/tag.yaml:2: malformed YAML: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object/apply:os.system'; fix the syntax there",
        "campaigns/dup.yaml:3: malformed YAML: duplicate key 'text'; fix the syntax there",
        "campaigns/latin1.yaml:2: unreadable: invalid trailing UTF-8 octet (character #x0020); "
        "save it as UTF-8 text",
        "campaigns/bell.yaml:2: unreadable: control characters are not allowed "
        "(character #x0007); save it as UTF-8 text",
    )


def test_numbers_and_dates_stay_as_written(project: ProjectDir) -> None:
    project.write(
        "campaigns/plain.yaml",
        """
        name: plain
        text: Doors open at {{ when }}
        vars: {when: 2027-01-02T09:00:00+01:00}
        send_at: 2027-12-19T22:00:00-05:00
        recipients:
          - +12025550143
        """,
    )
    result = project.run("render", "--show-recipients")
    assert result.code == 0, result
    assert "    | Doors open at 2027-01-02T09:00:00+01:00\n" in result.out
    assert "send_at=2027-12-19T22:00:00-05:00" in result.out
    assert "    to: +12025550143\n" in result.out
