"""A Jinja2 sandbox that also bounds the work a template can cause.

`ImmutableSandboxedEnvironment` stops attribute walks to `__class__`, `__globals__` and the like,
and calls that mutate lists or dicts. It does not stop a template from exhausting memory or time
(`'x' * 10**9`, nested loops, a string doubled in a recursive macro, `join` with a huge
separator, a macro that calls itself twice), so every operation that can grow a value is
weighed before it runs, and every loop step, call, include and output character is counted.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import BaseLoader, StrictUndefined, Template, TemplateNotFound, Undefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.environment import Environment
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from runner import files
from runner.template_cost import CostLimits, check_depth

MAX_VALUE = 100_000  # characters or items in any intermediate value, counted through containers
MAX_OUTPUT = 1_000_000  # characters written by one render, buffers of {% set %} blocks included
MAX_ITERATIONS = 100_000  # loop steps, calls and includes in one render
MAX_SECONDS = 2.0
MAX_INT_BITS = 4096
_BLOCKED_STR_METHODS = {
    "center", "ljust", "rjust", "zfill", "expandtabs", "format", "format_map", "translate",
    "maketrans", "encode",
}  # fmt: skip
_BLOCKED_FILTERS = {
    "center", "format", "indent", "wordwrap", "xmlattr", "urlize", "pprint",
    "random",  # a new text at each render: a "changed message", everyone called again
}  # fmt: skip
_BLOCKED_TESTS = {"sameas"}  # object identity: true or not as the interpreter happens to intern


class TooLate(SecurityError):
    """The deadline of a campaign's or a run's renders passed: no expression is to blame."""


@dataclass
class _Budget:
    deadline: float
    late: str  # why the deadline is there, said when it passes
    steps: int = 0
    output: int = 0
    started: float = field(default_factory=time.monotonic)


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("budget", default=None)


@contextlib.contextmanager
def budget(deadline: float = math.inf, late: str = "template takes too long") -> Iterator[None]:
    """One render's allowance of steps, output and time; `deadline` (monotonic) caps the
    renders of a campaign or a run together, and `late` says which when it passes."""
    token = _budget.set(_Budget(deadline, late))
    try:
        yield
    finally:
        _budget.reset(token)


def _spend(steps: int = 1, output: int = 0) -> None:
    spent = _budget.get()
    if spent is None:
        return  # compile-time constant folding: the pre-checks still apply, the budget later
    spent.steps += steps
    spent.output += output
    if spent.steps > MAX_ITERATIONS:
        raise SecurityError(f"template loops or calls more than {MAX_ITERATIONS:,} times")
    if spent.output > MAX_OUTPUT:
        raise SecurityError(f"template writes more than {MAX_OUTPUT:,} characters")
    now = time.monotonic()
    if now - spent.started > MAX_SECONDS:
        raise SecurityError(f"template takes longer than {MAX_SECONDS:g} s to render")
    if now > spent.deadline:
        raise TooLate(spent.late)


def weight(value: Any, limit: int = MAX_VALUE) -> int:
    """Characters and items a value holds, containers walked (shared parts counted each time,
    as str() would print them); the walk stops as soon as the total passes `limit`."""
    total, stack = 0, [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str | bytes):
            total += len(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            total += 1 + item.bit_length() // 3
        elif isinstance(item, dict):
            total += 1 + len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 1 + len(item)
            stack.extend(item)
        else:
            total += 1
    return total


def _checked(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise SecurityError("template builds a number too large")
    if weight(value) > MAX_VALUE:
        raise SecurityError(f"template builds a value larger than {MAX_VALUE:,}")
    return value


def _refuse_above(size: int) -> None:
    if size > MAX_VALUE:
        raise SecurityError(f"template builds a value larger than {MAX_VALUE:,}")


def _bounded_iter(iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        _spend()
        yield item


def _bounded_range(*args: int) -> range:
    result = range(*args)
    try:
        too_long = len(result) > MAX_ITERATIONS
    except OverflowError:
        too_long = True
    if too_long:
        raise SecurityError(f"range of more than {MAX_ITERATIONS:,} numbers")
    return result


_DATA = (str, bytes, int, float, type(None), Undefined)  # bool is an int; Undefined raises
_JINJA_ARGUMENTS = (nodes.EvalContext, Environment, Context)  # given to filters, never printed


def _stable(value: Any) -> Any:
    """Refuse to turn into text a value whose text is not data: a generator, a function or a
    method prints its memory address, a new text in each process (a "changed message")."""
    if type(value) is str:
        return value  # the usual case, quick
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _DATA):
            continue
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        else:
            raise SecurityError(
                f"template prints a Python {type(item).__name__} object, whose text changes "
                "from run to run; turn it into data first, e.g. with | list or | join"
            )
    return value


def _finalize(value: Any) -> str:
    """Every {{ ... }} goes through here: weighed before str(), then counted as output."""
    text = str(_stable(_checked(value)))
    _spend(0, len(text))
    return text


def _emit(text: str) -> str:
    _spend(0, len(text))
    return text


def _joined_size(items: list[Any], separator: Any) -> int:
    return weight(items) + len(str(separator)) * max(len(items) - 1, 0)


def _replaced_size(text: Any, old: Any, new: Any, count: Any = None) -> int:
    text, old, new = str(text), str(old), str(new)
    hits = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + max(len(new) - len(old), 0) * hits


def _guard_join(arguments: dict[str, Any]) -> None:
    arguments["value"] = list(_bounded_iter(arguments["value"]))
    _refuse_above(_joined_size(arguments["value"], arguments.get("d", "")))


def _guard_replace(arguments: dict[str, Any]) -> None:
    args = (arguments["s"], arguments["old"], arguments["new"], arguments.get("count"))
    _refuse_above(_replaced_size(*args))


def _guard_count(name: str) -> Callable[[dict[str, Any]], None]:
    def guard(arguments: dict[str, Any]) -> None:
        if isinstance(arguments.get(name), int):
            _refuse_above(arguments[name])

    return guard


def _guard_sum(arguments: dict[str, Any]) -> None:
    if not isinstance(arguments.get("start", 0), int | float):
        raise SecurityError("sum() of lists or strings is not allowed; use join")


_FILTER_GUARDS: dict[str, Callable[[dict[str, Any]], None]] = {
    "join": _guard_join,
    "replace": _guard_replace,
    "batch": _guard_count("linecount"),
    "slice": _guard_count("slices"),
    "sum": _guard_sum,
}


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    guard = _FILTER_GUARDS.get(name)
    signature = inspect.signature(func)  # of the sync function, behind async_variant
    # async_variant wrappers take an eval context their sync function does not declare
    takes_extra = getattr(func, "jinja_pass_arg", None) is not None and next(
        iter(signature.parameters), ""
    ) not in ("context", "eval_ctx", "environment")

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for value in (*args, *kwargs.values()):
            _checked(value)
        if guard:
            head, args = (args[:1], args[1:]) if takes_extra else ((), args)
            bound = signature.bind(*args, **kwargs)
            guard(bound.arguments)
            args, kwargs = (*head, *bound.args), bound.kwargs
        result = _checked(func(*args, **kwargs))
        if isinstance(result, str):  # `lower`, `string`, `join`...: whatever went in is text now
            for value in (*args, *kwargs.values()):
                if not isinstance(value, _JINJA_ARGUMENTS):
                    _stable(value)
        return result

    return wrapper


class _BoundedCodeGenerator(CodeGenerator):
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def _output_const_repr(self, group: Iterable[Any]) -> str:
        return f"environment.emit({super()._output_const_repr(group)})"


LIMIT = files.TEMPLATE_LIMIT


class OutsideTemplates(TemplateNotFound):
    """A template name runner will not read: out of the templates folder, hidden, too large."""

    def __init__(self, name: str, reason: str = "") -> None:
        super().__init__(name)
        self.reason = reason


class ConfinedLoader(BaseLoader):
    """Templates and includes only from the templates folder, through runner.files."""

    def __init__(self, root: Path, folder: str) -> None:
        self.root, self.folder = root, folder

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Any]:
        if template.startswith(("/", "\\")) or ".." in template.replace("\\", "/").split("/"):
            raise OutsideTemplates(template)
        name = f"{self.folder}/{template}"
        try:
            inside = files.project_path(self.root, name)
            outside = not inside.is_relative_to(files.project_path(self.root, self.folder))
            source = b"" if outside else files.read_project_file(self.root, name, LIMIT)
        except files.Outside as e:
            raise OutsideTemplates(template) from e
        except files.Refused as e:
            raise OutsideTemplates(template, str(e)) from e
        except OSError as e:  # TemplateNotFound is an OSError too: raise it outside the try
            raise TemplateNotFound(template) from e
        if outside:  # a link to elsewhere in the project: templates come from their folder
            raise OutsideTemplates(template)
        return source.decode("utf-8"), name, lambda: True


class BoundedSandbox(ImmutableSandboxedEnvironment):
    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, loader: ConfinedLoader | None) -> None:
        super().__init__(
            undefined=StrictUndefined,
            autoescape=False,
            loader=loader,
            finalize=_finalize,
            extensions=[CostLimits],
        )
        self.globals = {"range": _bounded_range, "_runner_iter": _bounded_iter}
        self.filters = {
            name: _bounded_filter(name, f)
            for name, f in self.filters.items()
            if name not in _BLOCKED_FILTERS
        }
        self.tests = {name: t for name, t in self.tests.items() if name not in _BLOCKED_TESTS}

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        check_depth(tree, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Call(
                nodes.Name("_runner_iter", "load"), [loop.iter], [], None, None, lineno=loop.lineno
            )
        tree.set_environment(self)
        return tree

    @staticmethod
    def emit(text: str) -> str:
        return _emit(text)

    def get_template(self, *args: Any, **kwargs: Any) -> Template:
        _spend()  # every {% include %} and {% import %} passes here, at each render
        return super().get_template(*args, **kwargs)

    def select_template(self, *args: Any, **kwargs: Any) -> Template:
        _spend()
        return super().select_template(*args, **kwargs)

    def wrap_str_format(self, value: Any) -> None:
        return None  # no str.format at all: '{0:>999999999}' pads before any check could run

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str | bytes) and attr in _BLOCKED_STR_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "%" and isinstance(left, str):
            raise SecurityError("'%' formatting is not allowed in templates; use ~ to join")
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError("exponent too large")
        if operator == "*" and isinstance(right, int) and not isinstance(left, int):
            _refuse_above(weight(left) * right)
        if operator == "*" and isinstance(left, int) and not isinstance(right, int):
            _refuse_above(weight(right) * left)
        return _checked(super().call_binop(context, operator, left, right))

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _spend()
        owner, name = getattr(__obj, "__self__", None), getattr(__obj, "__name__", "")
        if isinstance(owner, str | bytes) and name in _BLOCKED_STR_METHODS:
            raise SecurityError(f"str.{name} is not allowed in templates")
        for value in (*args, *kwargs.values()):
            _checked(value)
        if isinstance(owner, str) and name == "join" and args:
            args = (list(_bounded_iter(args[0])), *args[1:])
            _refuse_above(_joined_size(args[0], owner))
        if isinstance(owner, str) and name == "replace" and len(args) >= 2:
            _refuse_above(_replaced_size(owner, *args[:3]))
        return _checked(super().call(__context, __obj, *args, **kwargs))

    def concat(self, values: Iterable[Any]) -> str:
        pieces = [str(_stable(_checked(value))) for value in values]
        _refuse_above(sum(map(len, pieces)))
        return "".join(pieces)
