"""Jinja2 templates over an event, for rule actions written by tenant admins.

Templates come in through the API, so they run in Jinja's immutable sandbox:
no access to Python internals, no mutating the event (it is shared by every
rule that matches it). Missing keys render empty (``{{ data.missing.x }}`` is
``""``) because event payloads vary and a notification should not fail over
an optional field.

Bounded in CPU and output, for every template form. One render (one
``render`` call, or one ``render_value`` over a whole nested configuration)
has a budget:

- at most ``MAX_STEPS`` steps: loop iterations, calls (macros, methods,
  globals) and filters, so nested loops and recursive fan-out stop early;
- at most ``MAX_OUTPUT_CHARS`` characters of output in total: rendered
  text, and the JSON size of native values (a single ``{{ expression }}``);
- no value past ``MAX_SEQUENCE_ITEMS`` characters or items: ``**``, ``*``,
  ``+``, ``%``, ``~``, ``join`` and ``replace`` are checked before they
  allocate; integer arguments of calls and filters (``center(10**9)``,
  ``range(10**9)``) are at most ``MAX_INT_ARGUMENT``; integers at most
  ``MAX_INT_BITS`` bits, and a native integer result must fit JSON's
  signed 64 bits.

A refusal is a :class:`TemplateError` (a 422 in a dry run, a failed job
with the reason when a rule fires), never a 500. ``check_template`` also
evaluates a template against an empty event when it is saved, so a
template that breaks a limit whatever the event (``{{ 9**9**9 }}``) is a 422
at save.

``render_value`` renders every string inside a JSON value; a string that is
exactly one ``{{ expression }}`` keeps the expression's native value, so
``{"score": "{{ data.score }}"}`` stays a number.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

import jinja2
import orjson
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from tidings.core.envelope import iso_utc
from tidings.core.pointers import pointer_token
from tidings.errors import InvalidInput

MAX_TEMPLATE_BYTES = 64 * 1024
MAX_OUTPUT_CHARS = 1024 * 1024  # per rendered string
MAX_SEQUENCE_ITEMS = 1024 * 1024  # "ab" * n, [x] * n, a + b: characters or items
MAX_INT_BITS = 64 * 1024  # about 20,000 decimal digits
MAX_STEPS = 25_000  # loop iterations, calls and filters per render (~0.25 s at worst)
MAX_INT_ARGUMENT = 100_000  # an integer argument of a call or filter (a width, a count)
OUT_OF_RANGE = "template error: the value is out of range for JSON (integers: 64 bits)"
_WIDE_FORMAT = re.compile(r"[0-9]{7,}")  # a width or precision of a million or more

_SINGLE_EXPRESSION_RE = re.compile(r"^\s*\{\{[-+]?(.*?)[-+]?\}\}\s*$", re.DOTALL)


class TemplateError(InvalidInput):
    """A template failed while rendering (sandbox refusal, type error...)."""

    code = "template_error"
    title = "Template error"


class LimitError(SecurityError):
    """A template went past one of the limits above."""


class _Budget:
    __slots__ = ("chars", "steps")

    def __init__(self) -> None:
        self.steps = MAX_STEPS
        self.chars = MAX_OUTPUT_CHARS

    def step(self) -> None:
        self.steps -= 1
        if self.steps < 0:
            raise LimitError(f"the template takes more than {MAX_STEPS} steps")

    def output(self, size: int) -> None:
        self.chars -= size
        if self.chars < 0:
            raise LimitError(f"output is longer than {MAX_OUTPUT_CHARS} characters")


_budget: ContextVar[_Budget | None] = ContextVar("tidings_template_budget", default=None)


@contextmanager
def _budgeted() -> Iterator[_Budget]:
    """The budget of the render in progress, or a new one for a new render."""
    current = _budget.get()
    if current is not None:
        yield current
        return
    token = _budget.set(_Budget())
    try:
        yield _budget.get()  # type: ignore[misc]
    finally:
        _budget.reset(token)


def _step() -> None:
    budget = _budget.get()
    if budget is not None:
        budget.step()


def _size(value: Any) -> int:
    """Characters or items a value holds (strings inside lists counted)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list | tuple):
        return len(value) + sum(len(v) for v in value if isinstance(v, str | list | tuple))
    return 1


def _refuse_big(size: int, what: str) -> None:
    if size > MAX_SEQUENCE_ITEMS:
        raise LimitError(f"{what} would be longer than {MAX_SEQUENCE_ITEMS} characters or items")


def _check_arguments(args: Iterable[Any], kwargs: Mapping[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if _is_int(value) and abs(value) > MAX_INT_ARGUMENT:
            raise LimitError(f"an argument of {value} is over the limit of {MAX_INT_ARGUMENT}")


def _check_format(text: Any) -> None:
    if isinstance(text, str) and _WIDE_FORMAT.search(text):
        raise LimitError("a format width or precision of a million or more")


def _check_replace(subject: Any, old: Any, new: Any) -> None:
    if isinstance(subject, str) and isinstance(old, str) and isinstance(new, str):
        count = len(subject) // max(len(old), 1) + 1
        _refuse_big(len(subject) + count * len(new), "the replaced text")


def _check_join(items: Any, separator: Any = "") -> None:
    if isinstance(items, list | tuple):
        gaps = len(separator) * len(items) if isinstance(separator, str) else 0
        _refuse_big(_size(list(items)) + gaps, "the joined text")


def _bounded(value: Any) -> Any:
    if isinstance(value, str | list | tuple):
        _refuse_big(_size(value), "a value")
    return value


def _steps(iterable: Any) -> Iterator[Any]:
    """Every ``{% for %}`` loop iterates through this: one step per item."""
    for item in iterable:
        _step()
        yield item


def _concat(items: list[Any]) -> str:
    """``a ~ b``: the parts are measured before they are joined."""
    parts = [str(item) for item in items]
    _refuse_big(sum(len(p) for p in parts), "the joined text")
    return "".join(parts)


class _Budgeted(NodeTransformer):
    """Routes loops and ``~`` through the budget (filters the compiler knows)."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, "tidings_steps", [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        parts = nodes.List(node.nodes, lineno=node.lineno)
        return nodes.Filter(parts, "tidings_concat", [], [], None, None, lineno=node.lineno)


class _Environment(ImmutableSandboxedEnvironment):
    """The immutable sandbox with the limits of this module: ``**``, ``*``,
    ``+`` and ``%`` are checked before they compute, every call and filter
    takes a step and is checked, loops and ``~`` go through the budget."""

    intercepted_binops = frozenset({"**", "*", "+", "%"})

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        if _is_int(left) and _is_int(right):
            bits = max(left.bit_length(), 1)
            if operator == "**" and abs(left) > 1 and bits * right > MAX_INT_BITS:
                raise LimitError("the power is too large")
            if operator == "*" and bits + right.bit_length() > MAX_INT_BITS:
                raise LimitError("the product is too large")
        elif operator == "*":
            for seq, count in ((left, right), (right, left)):
                if _is_sequence(seq) and _is_int(count):
                    _refuse_big(_size(seq) * count, "the repeated sequence")
        elif operator == "+" and _is_sequence(left) and _is_sequence(right):
            _refuse_big(_size(left) + _size(right), "the joined sequence")
        elif operator == "%" and isinstance(left, str):
            _check_format(left)
            _check_arguments(right if isinstance(right, tuple) else (right,), {})
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _step()
        _check_arguments(args, kwargs)
        name = getattr(__obj, "__name__", "")
        subject = getattr(__obj, "__self__", None)
        if isinstance(subject, str):
            if name == "replace" and len(args) >= 2:
                _check_replace(subject, args[0], args[1])
            elif name == "join" and args:
                _check_join(args[0], subject)
        return _bounded(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:  # str.format: its widths are checked on access
            _check_format(value.__self__)
        return wrapped

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        """Refuse at once: the default (an undefined that fails only when
        called) would let ``{{ ''.__class__ }}`` render quietly as empty."""
        raise SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} is unsafe"
        )

    def _generate(
        self,
        source: nodes.Template,
        name: str | None,
        filename: str | None,
        defer_init: bool = False,
    ) -> str:
        return super()._generate(_Budgeted().visit(source), name, filename, defer_init)


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """A filter that takes a step, checks its arguments and its result."""
    skip = 2 if getattr(function, "jinja_pass_arg", None) is not None else 1

    @functools.wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _step()
        value, rest = (args[skip - 1], args[skip:]) if len(args) >= skip else (None, ())
        _check_arguments(rest, kwargs)
        if name == "replace" and len(rest) >= 2:
            _check_replace(value, rest[0], rest[1])
        elif name == "join":
            _check_join(value, rest[0] if rest else kwargs.get("d", ""))
        elif name == "format":
            _check_format(value)
        return _bounded(function(*args, **kwargs))

    return bounded


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_sequence(value: Any) -> bool:
    return isinstance(value, str | list | tuple)


ENV = _Environment(
    autoescape=False,
    undefined=jinja2.ChainableUndefined,
    keep_trailing_newline=True,
    auto_reload=False,
)
ENV.filters = {name: _bounded_filter(name, f) for name, f in ENV.filters.items()}
ENV.filters["tidings_steps"] = _steps
ENV.filters["tidings_concat"] = _concat
# namespace() is the one mutable accumulator (it would grow a value across
# loop iterations); lipsum() is text generation nobody needs in an action.
for _name in ("namespace", "lipsum"):
    ENV.globals.pop(_name, None)


def check_template(source: str, field: str) -> None:
    """Refuse a template that cannot compile, naming the field and line, so
    a broken rule is caught when it is saved rather than when it fires."""
    _check_size(source, field)
    try:
        _compile(source)
    except jinja2.TemplateSyntaxError as exc:
        raise InvalidInput(_syntax_message(exc), field=field) from None
    _check_limits(source, field)


def _check_limits(source: str, field: str) -> None:
    """Render against an empty event: a limit broken then is broken for
    every event (other failures may depend on the event, so they wait)."""
    try:
        _render_string(source, event_context({}), field)
    except TemplateError as exc:
        if isinstance(exc.__cause__, LimitError) or exc.detail == OUT_OF_RANGE:
            raise InvalidInput(exc.detail, field=field) from None


def check_value(value: Any, field: str) -> None:
    """Check every string inside a JSON value, naming the offending one's pointer."""
    for pointer, text in _strings(value, field):
        check_template(text, pointer)


def render(source: str, context: Mapping[str, Any], *, field: str | None = None) -> str:
    """Render one template; any failure is a one-line :class:`TemplateError`."""
    _check_size(source, field)
    try:
        template = _compile(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(_syntax_message(exc), field=field) from None
    with _budgeted() as budget:
        try:
            parts: list[str] = []
            for chunk in template.generate(context):
                budget.output(len(chunk))
                parts.append(chunk)
            return "".join(parts)
        except Exception as exc:
            raise TemplateError(_runtime_message(exc), field=field) from exc


def render_value(value: Any, context: Mapping[str, Any], *, field: str = "") -> Any:
    """Render every string inside dicts and lists (keys stay as written).

    ``field`` is the JSON pointer of ``value``, used to name a failing string.
    One budget covers the whole value (every string in it).
    """
    with _budgeted():
        return _render_value(value, context, field)


def _render_value(value: Any, context: Mapping[str, Any], field: str) -> Any:
    if isinstance(value, str):
        return _render_string(value, context, field)
    if isinstance(value, Mapping):
        return {
            key: _render_value(item, context, f"{field}/{pointer_token(key)}")
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [
            _render_value(item, context, f"{field}/{index}") for index, item in enumerate(value)
        ]
    return value


def event_context(
    envelope: Mapping[str, Any],
    *,
    tenant: Mapping[str, Any] | None = None,
    rule: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The variables a template sees: the whole envelope plus shortcuts."""
    return {
        "event": envelope,
        "data": envelope.get("data") or {},
        "actor": envelope.get("actor") or {},
        "metadata": envelope.get("metadata") or {},
        "type": envelope.get("type"),
        "tenantId": envelope.get("tenantId"),
        "entityId": envelope.get("entityId"),
        "entityType": envelope.get("entityType"),
        "tenant": tenant or {},
        "rule": rule or {},
        "now": iso_utc(time.time()),
    }


@lru_cache(maxsize=1024)
def _compile(source: str) -> jinja2.Template:
    return ENV.from_string(source)


@lru_cache(maxsize=1024)
def _single_expression(source: str) -> jinja2.environment.TemplateExpression | None:
    """The compiled expression when ``source`` is exactly one ``{{ expr }}``."""
    match = _SINGLE_EXPRESSION_RE.fullmatch(source)
    if match is None:
        return None
    try:
        body = ENV.parse(source).body
        if not (len(body) == 1 and isinstance(body[0], nodes.Output)):
            return None
        exprs = [
            node
            for node in body[0].nodes
            if not (isinstance(node, nodes.TemplateData) and not node.data.strip())
        ]
        if len(exprs) != 1 or isinstance(exprs[0], nodes.TemplateData):
            return None
        return ENV.compile_expression(match.group(1), undefined_to_none=True)
    except jinja2.TemplateSyntaxError:
        return None


def _render_string(source: str, context: Mapping[str, Any], field: str) -> Any:
    _check_size(source, field)
    expression = _single_expression(source)
    if expression is None:
        return render(source, context, field=field)
    with _budgeted() as budget:
        try:
            result = expression(**context)
        except Exception as exc:
            raise TemplateError(_runtime_message(exc), field=field) from exc
        if not _is_json(result):
            return render(source, context, field=field)  # a method, a range...: its text
        try:  # measured as the JSON it becomes; integers must fit JSON's 64 bits
            encoded = orjson.dumps(result)
        except orjson.JSONEncodeError:
            raise TemplateError(OUT_OF_RANGE, field=field) from None
        try:
            budget.output(len(encoded))
        except LimitError as exc:
            raise TemplateError(_runtime_message(exc), field=field) from exc
        return _plain(result)


def _is_json(value: Any, depth: int = 0) -> bool:
    if depth > 64:
        return False
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, list | tuple):
        return all(_is_json(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(
            isinstance(key, str) and _is_json(item, depth + 1) for key, item in value.items()
        )
    return False


def _plain(value: Any) -> Any:
    """A copy of a JSON value, so rendered output never aliases the event."""
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _strings(value: Any, pointer: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(pointer, value)]
    found: list[tuple[str, str]] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            found.extend(_strings(item, f"{pointer}/{pointer_token(key)}"))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found.extend(_strings(item, f"{pointer}/{index}"))
    return found


def _check_size(source: str, field: str | None) -> None:
    if len(source) > MAX_TEMPLATE_BYTES or len(source.encode()) > MAX_TEMPLATE_BYTES:
        raise InvalidInput("template is longer than 64 KiB", field=field)


def _syntax_message(exc: jinja2.TemplateSyntaxError) -> str:
    return f"template syntax error: {_one_line(exc.message or str(exc))} (line {exc.lineno})"


def _runtime_message(exc: Exception) -> str:
    if isinstance(exc, SecurityError):
        return f"template refused by the sandbox: {_one_line(str(exc))}"
    if isinstance(exc, RecursionError):
        return "template error: recursion too deep"
    return f"template error: {type(exc).__name__}: {_one_line(str(exc))}"


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


__all__ = [
    "ENV",
    "MAX_TEMPLATE_BYTES",
    "TemplateError",
    "check_template",
    "check_value",
    "event_context",
    "render",
    "render_value",
]
