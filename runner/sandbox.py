"""A Jinja2 sandbox that also bounds the work a template can cause.

`SandboxedEnvironment` stops attribute walks to `__class__`, `__globals__` and the like. It does
not stop a template from exhausting memory or time (`'x' * 10**9`, nested loops, doubling a
string in a recursive macro), so every operation that can grow a value is checked here.
"""

from __future__ import annotations

import contextvars
import functools
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateNotFound, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.environment import Environment
from jinja2.sandbox import SandboxedEnvironment, SecurityError

MAX_VALUE = 100_000  # characters or items in any intermediate value
MAX_ITERATIONS = 100_000  # loop steps in one render
MAX_SECONDS = 2.0
MAX_INT_BITS = 4096
_BLOCKED_STR_METHODS = {"center", "ljust", "rjust", "zfill", "expandtabs", "format", "format_map"}
_BLOCKED_FILTERS = {"center", "format", "indent", "wordwrap", "xmlattr", "urlize", "pprint"}

_budget: contextvars.ContextVar[list[float]] = contextvars.ContextVar("budget")


def start_budget() -> None:
    """Each render gets its own allowance of loop steps and time."""
    _budget.set([0, time.monotonic()])


def _spend(steps: int) -> None:
    budget = _budget.get(None)
    if budget is None:
        return
    budget[0] += steps
    if budget[0] > MAX_ITERATIONS:
        raise SecurityError(f"template loops more than {MAX_ITERATIONS:,} times")
    if time.monotonic() - budget[1] > MAX_SECONDS:
        raise SecurityError(f"template takes longer than {MAX_SECONDS:g} s to render")


def _checked(value: Any) -> Any:
    if isinstance(value, str | bytes | list | tuple | dict | set) and len(value) > MAX_VALUE:
        raise SecurityError(f"template builds a value larger than {MAX_VALUE:,}")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise SecurityError("template builds a number too large")
    return value


def _bounded_iter(iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        _spend(1)
        yield item


def _bounded_range(*args: int) -> range:
    result = range(*args)
    _spend(len(result))
    return result


def _bounded_filter(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return _checked(func(*args, **kwargs))

    return wrapper


class _BoundedCodeGenerator(CodeGenerator):
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class ConfinedLoader(FileSystemLoader):
    """Templates and includes only from the templates folder, symlinks included."""

    def __init__(self, folder: str) -> None:
        super().__init__(folder, followlinks=False)
        self.root = os.path.realpath(folder)

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Any]:
        source, filename, uptodate = super().get_source(environment, template)
        real = os.path.realpath(filename)
        if os.path.commonpath([real, self.root]) != self.root:
            raise TemplateNotFound(f"{template} (it leads outside the templates folder)")
        return source, filename, uptodate


class BoundedSandbox(SandboxedEnvironment):
    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, templates: str | None) -> None:
        loader = ConfinedLoader(templates) if templates else None
        super().__init__(undefined=StrictUndefined, autoescape=False, loader=loader)
        self.globals = {"range": _bounded_range, "_runner_iter": _bounded_iter}
        self.filters = {
            name: _bounded_filter(f)
            for name, f in self.filters.items()
            if name not in _BLOCKED_FILTERS
        }

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Call(
                nodes.Name("_runner_iter", "load"), [loop.iter], [], None, None, lineno=loop.lineno
            )
        tree.set_environment(self)
        return tree

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr in _BLOCKED_STR_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "%" and isinstance(left, str):
            raise SecurityError("'%' formatting is not allowed in templates; use ~ to join")
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError("exponent too large")
        if operator == "*":
            size = (
                _size(left) * right
                if isinstance(right, int)
                else _size(right) * left
                if isinstance(left, int)
                else 0
            )
            if size > MAX_VALUE:
                raise SecurityError(f"template builds a value larger than {MAX_VALUE:,}")
        return _checked(super().call_binop(context, operator, left, right))

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        if (
            isinstance(getattr(__obj, "__self__", None), str)
            and getattr(__obj, "__name__", "") in _BLOCKED_STR_METHODS
        ):
            raise SecurityError(f"str.{__obj.__name__} is not allowed in templates")
        return _checked(super().call(__context, __obj, *args, **kwargs))

    def concat(self, values: Iterable[Any]) -> str:
        return str(_checked("".join(map(str, values))))


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple) else 0
