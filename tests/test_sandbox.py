"""The template sandbox: escapes and resource exhaustion are refused, quickly, as one line each."""

from __future__ import annotations

import json
import time

import pytest
from conftest import ProjectDir, run_bounded
from expect import assert_refused, assert_reports
from jinja2.exceptions import SecurityError

from runner.sandbox import BoundedSandbox, budget

UNSAFE = "access to attribute '{}' of '{}' object is unsafe"
TOO_BIG = "template builds a value larger than 100,000"
TOO_MANY = "template loops or calls more than 100,000 times"
TOO_LONG = "template writes more than 1,000,000 characters"
TOO_SLOW = "template takes longer than 2 s to render"
DOUBLING = (
    "{% macro d(s, n) %}{% if n %}{{ d(s ~ s, n - 1) }}{% else %}{{ s | length }}{% endif %}"
    "{% endmacro %}{{ d('x', 64) }}"
)
NESTED = "{% set a = 'x' * 90000 %}{% set b = [a, a, a, a, a, a, a, a, a, a] %}{{ [b, b, b] }}"

# (template, what the sandbox says): every one of these used to escape, crash or exhaust memory
ATTACKS = [
    ("{{ ''.__class__.__mro__ }}", UNSAFE.format("__class__", "str")),
    ("{{ self.__init__.__globals__ }}", UNSAFE.format("__init__", "TemplateReference")),
    ("{{ cycler.__init__.__globals__.os }}", UNSAFE.format("__init__", "StrictUndefined")),
    ("{{ joiner.__init__.__globals__ }}", UNSAFE.format("__init__", "StrictUndefined")),
    ("{{ namespace.__init__.__globals__ }}", UNSAFE.format("__init__", "StrictUndefined")),
    ("{{ range.__globals__ }}", UNSAFE.format("__globals__", "function")),
    ("{{ recipient.__class__ }}", UNSAFE.format("__class__", "dict")),
    ("{{ '{0.__class__}'.format(1) }}", UNSAFE.format("format", "str")),
    ("{{ 'x' * 10**9 }}", TOO_BIG),
    ("{{ 10**9 * ['x'] }}", TOO_BIG),
    ("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}.", TOO_MANY),
    ("{{ range(10**30) | list }}", "range of more than 100,000 numbers"),
    (DOUBLING, TOO_BIG),
    ("{{ ('x' * 99999) | replace('x', 'y' * 99999) }}", TOO_BIG),
    ("{{ ('y' * 99999).join(['x'] * 99999) }}", TOO_BIG),
    ("{{ (['x'] * 99999) | join('y' * 99999) }}", TOO_BIG),
    ("{{ [1] | batch(1000000000, 'x') | list }}", TOO_BIG),
    ("{{ [1] | slice(1000000000) | list }}", TOO_BIG),
    ("{{ [['x'] * 99999] * 99999 }}", TOO_BIG),
    (NESTED, TOO_BIG),
    ("{% for i in range(99999) %}{{ 'x' * 99999 }}{% endfor %}", TOO_LONG),
    ("{% set l = ['x'] %}{{ l.append(l) }}", UNSAFE.format("append", "list")),
    ("{{ ('a' * 99999).translate({97: 'x' * 999}) }}", UNSAFE.format("translate", "str")),
    ("{{ '%999999999d' % 1 }}", "'%' formatting is not allowed in templates; use ~ to join"),
    ("{{ (10 ** 64) ** 64 }}", "template builds a number too large"),
]


def test_escapes_and_exhaustion_are_refused_in_one_bounded_run(project: ProjectDir) -> None:
    documents = [
        f'name: attack-{i}\ntext: {json.dumps(source)}\nrecipients: ["+12025550143"]\n'
        for i, (source, _) in enumerate(ATTACKS)
    ]
    project.write("campaigns/attacks.yaml", "---\n".join(documents))
    started = time.monotonic()
    result = run_bounded(project, "validate")
    assert time.monotonic() - started < 30, "each refusal must be quick"
    assert_refused(
        result,
        *[
            f"campaigns/attacks.yaml:{2 + 4 * i}: text: refused by the template sandbox: "
            f"{message}; remove that expression"
            for i, (_, message) in enumerate(ATTACKS)
        ],
    )


def test_runaway_includes_and_recursion(project: ProjectDir) -> None:
    project.write(
        "templates/fan.j2",
        "{% if n > 0 %}{% with n = n - 1 %}{% include 'fan.j2' %}{% include 'fan.j2' %}"
        "{% endwith %}{% endif %}.",
    )
    project.write("templates/forever.j2", "{% include 'forever.j2' %}")
    project.write(
        "campaigns/runaway.yaml",
        """
        name: fan
        template: fan.j2
        vars: {n: 40}
        recipients: ["+12025550143"]
        ---
        name: forever
        template: forever.j2
        recipients: ["+12025550143"]
        ---
        name: macro
        text: "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}"
        recipients: ["+12025550143"]
        ---
        name: fan-out
        text: "{% macro f(n) %}{{ f(n - 1) ~ f(n - 1) if n }}{% endmacro %}{{ f(40) }}."
        recipients: ["+12025550143"]
        """,
    )
    started = time.monotonic()
    result = run_bounded(project, "validate")
    assert time.monotonic() - started < 30  # a hang is minutes; a loaded machine takes seconds
    recursion = "template recursion is too deep: an include or macro calls itself without end"
    refused = "refused by the template sandbox: {}; remove that expression"
    # 2**40 includes or macro calls: the step count or the clock stops them, whichever the
    # machine hits first (a loaded machine hits the clock)
    fan = "campaigns/runaway.yaml:2: template: " + refused
    fan_out = "campaigns/runaway.yaml:15: text: " + refused
    lines = assert_reports(
        result,
        f"campaigns/runaway.yaml:7: template: {recursion}",
        f"campaigns/runaway.yaml:11: text: {recursion}",
    )
    assert lines[0] in (fan.format(TOO_MANY), fan.format(TOO_SLOW)), lines
    assert lines[3:] in ([fan_out.format(TOO_MANY)], [fan_out.format(TOO_SLOW)]), lines


def test_ordinary_templates_keep_working(project: ProjectDir) -> None:
    text = (
        "{% for i in range(60000) %}{% endfor %}"
        "{{ ['a', 'b'] | join(', ') }} {{ 'x-y' | replace('-', ' ') }} "
        "{{ [1, 2, 3] | batch(2) | list | length }} {{ [1, 2, 3] | sum }} "
        "{{ ', '.join(['on', 'call']) }} {{ 'shout' | upper }} {{ 2 ** 10 }} {{ 'ab' * 3 }}"
    )
    project.write(
        "campaigns/fine.yaml",
        f'name: fine\ntext: {json.dumps(text)}\nrecipients: ["+12025550143"]\n',
    )
    result = run_bounded(project, "render")
    assert result.code == 0, result
    assert "    | a, b x y 2 6 on, call SHOUT 1024 ababab\n" in result.out


@pytest.mark.parametrize(("source", "message"), ATTACKS, ids=[a for a, _ in ATTACKS])
def test_each_attack_is_refused_within_a_second_or_two(source: str, message: str) -> None:
    env = BoundedSandbox(None)
    started = time.monotonic()
    with pytest.raises(SecurityError) as refused, budget():
        env.from_string(source).render(recipient={"phone_number": "+12025550143"})
    assert time.monotonic() - started < 3
    assert str(refused.value).rstrip(".") == message
