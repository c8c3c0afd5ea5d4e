"""Known Jinja2 escape and exhaustion payloads, beyond tests/test_sandbox.py's ATTACKS.

Each one is refused with exit 1 and one located line that names the cause, within seconds,
and nothing of Python's insides (classes, modules, functions) reaches the output.
"""

from __future__ import annotations

import json
import time

import figures
import pytest
from conftest import ProjectDir, run_bounded
from expect import problem_lines
from hostile import assert_clean, run_in_process

UNSAFE = "refused by the template sandbox: access to attribute '{}' of '{}' object is unsafe"
TOO_BIG = "refused by the template sandbox: template builds a value larger than 100,000"
UNDEFINED = "'{}' is undefined; define it in vars"
NO_FILTER = "No filter named '{}'"

CORPUS = [
    # attribute walks to __subclasses__, __globals__, __builtins__
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", UNSAFE.format("__class__", "str")),
    ("{{ ().__class__.__base__.__subclasses__() }}", UNSAFE.format("__class__", "tuple")),
    ("{{ [].__class__.__base__.__subclasses__()[0] }}", UNSAFE.format("__class__", "list")),
    ("{{ (1).__class__.__subclasses__() }}", UNSAFE.format("__class__", "int")),
    ("{{ recipient.__init__.__globals__.__builtins__ }}", UNSAFE.format("__init__", "dict")),
    ("{{ range.__globals__['__builtins__'] }}", UNSAFE.format("__globals__", "function")),
    ("{{ ''.__getattribute__('__class__') }}", UNSAFE.format("__getattribute__", "str")),
    ("{% for c in ''.__class__.__mro__ %}{{ c }}{% endfor %}", UNSAFE.format("__class__", "str")),
    ("{% set x = recipient.__class__ %}{{ x }}", UNSAFE.format("__class__", "dict")),
    (
        "{{ self._TemplateReference__context }}",
        UNSAFE.format("_TemplateReference__context", "TemplateReference"),
    ),
    ("{{ self.__dict__ }}", UNSAFE.format("__dict__", "TemplateReference")),
    ("{{ recipient | attr('__class__') }}", UNSAFE.format("__class__", "dict")),
    ("{{ ''|attr('\\x5f\\x5fclass\\x5f\\x5f') }}", UNSAFE.format("__class__", "str")),
    ("{{ config.__class__.__init__.__globals__ }}", UNSAFE.format("__init__", "StrictUndefined")),
    # the usual gadgets are not there at all
    ("{{ lipsum.__globals__['os'] }}", UNDEFINED.format("lipsum")),
    ("{{ lipsum(10**9) }}", UNDEFINED.format("lipsum")),
    ("{{ cycler.next.__globals__ }}", UNDEFINED.format("cycler")),
    ("{{ joiner().__class__ }}", UNDEFINED.format("joiner")),
    ("{{ namespace(a=1).__class__ }}", UNDEFINED.format("namespace")),
    ("{{ request.application.__globals__ }}", UNDEFINED.format("request")),
    ("{{ getattr(recipient, '__class__') }}", UNDEFINED.format("getattr")),
    # mutation of what the template is given
    ("{{ recipient.pop('phone_number') }}", UNSAFE.format("pop", "dict")),
    ("{{ recipient.update({'x': 1}) }}", UNSAFE.format("update", "dict")),
    # format-string tricks
    ("{{ '{:>999999999}'.format(1) }}", UNSAFE.format("format", "str")),
    ("{{ '{0}'.format_map({}) }}", UNSAFE.format("format_map", "str")),
    ("{{ '{0.__class__}' | format(1) }}", NO_FILTER.format("format")),
    ("{{ '%s' | format(recipient) }}", NO_FILTER.format("format")),
    ("{{ '%(a)s' % {'a': 1} }}", "'%' formatting is not allowed in templates"),
    ("{{ '%s%s' % (recipient, recipient) }}", "'%' formatting is not allowed in templates"),
    # exhaustion: memory, loops, numbers
    ("{{ range(10**9) | length }}", "range of more than 100,000 numbers"),
    ("{{ 'a' * 10**9 }}", TOO_BIG),
    ("{{ 'x' ~ ('y' * 10**9) }}", TOO_BIG),
    ("{{ ''.join(['a'] * 10**8) }}", TOO_BIG),
    ("{{ (recipient | string) * 10**7 }}", TOO_BIG),
    ("{{ ['a'] | map('upper') | list * 10**9 }}", TOO_BIG),
    ("{{ ((('a',) * 1000,) * 1000) }}", TOO_BIG),
    ("{{ 9 ** (9 ** 9) }}", "exponent too large"),
    ("{{ 'abc' | list | sum(start=[]) }}", "sum() of lists or strings is not allowed"),
    ("{{ 'a' | indent(10**9) }}", NO_FILTER.format("indent")),
    ("{{ 'a'.center(10**9) }}", UNSAFE.format("center", "str")),
    (
        "{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}.",
        "template loops or calls more than 100,000 times",
    ),
    (
        "{% for a in range(99999) %}{% for b in range(99999) %}{{ b }}{% endfor %}{% endfor %}",
        "template loops or calls more than 100,000 times",
    ),
]
LEAKS = ("<class", "<module", "<function", "<built-in", "subprocess", "__import__")


def write_attack(project: ProjectDir, source: str, name: str = "attack") -> None:
    project.write(
        f"campaigns/{name}.yaml",
        f'name: {name}\ntext: {json.dumps(source)}\nrecipients: ["+12025550143"]\n',
    )


@pytest.mark.parametrize(("source", "cause"), CORPUS, ids=[s for s, _ in CORPUS])
def test_each_payload_is_refused_in_one_line_within_seconds(
    project: ProjectDir, source: str, cause: str
) -> None:
    write_attack(project, source)
    started = time.monotonic()
    result = run_in_process("-C", str(project.root), "validate", seconds=10)
    assert time.monotonic() - started < 3
    assert_clean(result)
    [line] = problem_lines(result)
    assert line.startswith("campaigns/attack.yaml:2: text: "), line
    assert cause in line, line
    assert not any(leak in result.output for leak in LEAKS), result
    figures.add("sandbox payloads refused")


@pytest.mark.parametrize("command", ["validate", "render", "plan"])
def test_the_whole_corpus_through_the_real_command(project: ProjectDir, command: str) -> None:
    for i, (source, _) in enumerate(CORPUS):
        write_attack(project, source, f"attack-{i:02d}")
    started = time.monotonic()
    result = run_bounded(project, command)
    assert time.monotonic() - started < 60
    assert_clean(result)
    lines = problem_lines(result)
    assert len(lines) == len(CORPUS), lines
    for line, (_, cause) in zip(sorted(lines), CORPUS, strict=True):
        assert cause in line, line
    assert not any(leak in result.output for leak in LEAKS), result
