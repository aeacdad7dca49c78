"""Jinja2 templates over an event, for rule actions written by tenant admins.

Templates come in through the API, so they run in Jinja's immutable sandbox:
no access to Python internals, no mutating the event (it is shared by every
rule that matches it), huge ``**``/``*`` results refused and the output
capped. Missing keys render empty (``{{ data.missing.x }}`` is ``""``)
because event payloads vary and a notification should not fail over an
optional field.

``render_value`` renders every string inside a JSON value; a string that is
exactly one ``{{ expression }}`` keeps the expression's native value, so
``{"score": "{{ data.score }}"}`` stays a number.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from tidings.core.envelope import iso_utc
from tidings.errors import InvalidInput

MAX_TEMPLATE_BYTES = 64 * 1024
MAX_OUTPUT_CHARS = 1024 * 1024  # per rendered string
MAX_SEQUENCE_ITEMS = 1024 * 1024  # "ab" * n, [x] * n, a + b: characters or items
MAX_INT_BITS = 64 * 1024  # about 20,000 decimal digits

_SINGLE_EXPRESSION_RE = re.compile(r"^\s*\{\{[-+]?(.*?)[-+]?\}\}\s*$", re.DOTALL)


class TemplateError(InvalidInput):
    """A template failed while rendering (sandbox refusal, type error...)."""

    code = "template_error"
    title = "Template error"


class _Environment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with ``**``, ``*`` and ``+`` bounded so a short
    template cannot allocate gigabytes (``{{ 10 ** 10**9 }}``, ``{{ 'x' * 10**9 }}``,
    a loop squaring a number). It guards access, not every allocation: a
    filter such as ``center(10**9)`` can still be expensive."""

    intercepted_binops = frozenset({"**", "*", "+"})

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        if _is_int(left) and _is_int(right):
            bits = max(left.bit_length(), 1)
            if operator == "**" and abs(left) > 1 and bits * right > MAX_INT_BITS:
                raise SecurityError("the power is too large")
            if operator == "*" and bits + right.bit_length() > MAX_INT_BITS:
                raise SecurityError("the product is too large")
        elif operator == "*":
            for seq, count in ((left, right), (right, left)):
                if _is_sequence(seq) and _is_int(count) and len(seq) * count > MAX_SEQUENCE_ITEMS:
                    raise SecurityError("the repeated sequence would be too long")
        elif (
            operator == "+"
            and _is_sequence(left)
            and _is_sequence(right)
            and len(left) + len(right) > MAX_SEQUENCE_ITEMS
        ):
            raise SecurityError("the joined sequence would be too long")
        return super().call_binop(context, operator, left, right)

    def unsafe_undefined(self, obj: Any, attribute: str) -> jinja2.Undefined:
        """Refuse at once: the default (an undefined that fails only when
        called) would let ``{{ ''.__class__ }}`` render quietly as empty."""
        raise SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} is unsafe"
        )


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


def check_template(source: str, field: str) -> None:
    """Refuse a template that cannot compile, naming the field and line, so
    a broken rule is caught when it is saved rather than when it fires."""
    _check_size(source, field)
    try:
        _compile(source)
    except jinja2.TemplateSyntaxError as exc:
        raise InvalidInput(_syntax_message(exc), field=field) from None


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
    try:
        parts: list[str] = []
        size = 0
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise SecurityError(f"output is longer than {MAX_OUTPUT_CHARS} characters")
            parts.append(chunk)
        return "".join(parts)
    except Exception as exc:
        raise TemplateError(_runtime_message(exc), field=field) from None


def render_value(value: Any, context: Mapping[str, Any], *, field: str = "") -> Any:
    """Render every string inside dicts and lists (keys stay as written).

    ``field`` is the JSON pointer of ``value``, used to name a failing string.
    """
    if isinstance(value, str):
        return _render_string(value, context, field)
    if isinstance(value, Mapping):
        return {
            key: render_value(item, context, field=f"{field}/{_escape(str(key))}")
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [
            render_value(item, context, field=f"{field}/{index}")
            for index, item in enumerate(value)
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
    try:
        result = expression(**context)
    except Exception as exc:
        raise TemplateError(_runtime_message(exc), field=field) from None
    if _is_json(result):
        return _plain(result)
    return render(source, context, field=field)  # a method, a range...: its text


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
            found.extend(_strings(item, f"{pointer}/{_escape(str(key))}"))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found.extend(_strings(item, f"{pointer}/{index}"))
    return found


def _escape(key: str) -> str:
    """One JSON pointer token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


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
