"""Payload validation: compiled once per schema version, cheap per event.

A :class:`PayloadValidator` answers "is this payload valid?" with a plain
Python closure compiled from the schema when the schema stays within the
subset the catalog uses (``type properties required items enum const
minLength maxLength minimum maximum exclusiveMinimum exclusiveMaximum
minItems maxItems pattern format anyOf allOf additionalProperties`` and
annotations). Only when that says "no", or for schemas outside the subset,
does it run ``jsonschema`` (draft 2020-12), which names the failing JSON
pointer and rule. A property test pins the closure to ``jsonschema``.

Formats are enforced: ``date-time`` (RFC 3339, with a zone), ``date``
(``YYYY-MM-DD``) and ``email`` (``local@domain``). Pure: no I/O.

Patterns (``pattern``, ``patternProperties``) run on RE2, a linear-time
engine, in the compiled closure and in ``jsonschema`` alike: no payload can
make a schema backtrack (``^(a+)+$`` against ``aaaa...b`` answers in
microseconds). A pattern RE2 cannot compile (backreferences, lookaround) is
refused when the type is defined (:func:`pattern_problem`), shipped packs
included: one engine for every schema. ``unevaluatedProperties`` next to
``patternProperties`` is refused too (``jsonschema`` would match those
patterns with ``re``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import re2
from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import ValidationError, relevance

from tidings.core.pointers import pointer_token

Check = Callable[[Any], bool]

_DATE_TIME_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+\-]\d{2}:\d{2})$"
)
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")


def is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE_TIME_RE.match(value):
        return False
    text = value.replace("z", "Z").replace("Z", "+00:00").replace("t", "T")
    if "." in text:  # Python < 3.11 parsers dislike 7-9 fractional digits
        head, _, tail = text.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        text = head + "." + tail[:digits][:6].ljust(6, "0") + tail[digits:]
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _DATE_RE.match(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def is_email(value: object) -> bool:
    return not isinstance(value, str) or bool(_EMAIL_RE.match(value))


FORMATS: dict[str, Check] = {"date-time": is_date_time, "date": is_date, "email": is_email}
FORMAT_CHECKER = FormatChecker(formats=())
for _name, _check in FORMATS.items():
    FORMAT_CHECKER.checks(_name)(_check)


# -- linear-time patterns --------------------------------------------------

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is an answer, not a log line
_RE2_OPTIONS.never_capture = True  # yes/no only: no group bookkeeping


class LinearPattern:
    """A schema pattern on RE2 (unanchored search, as JSON Schema says).

    ``search`` calls the C++ binding directly: the Python wrapper's offset
    bookkeeping costs ~10x the match itself on short strings."""

    __slots__ = ("_match", "_regexp", "pattern")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._regexp = re2.compile(pattern, _RE2_OPTIONS)  # re2.error when unsupported
        self._match = getattr(self._regexp, "_regexp", None)

    def search(self, text: str) -> bool:
        if self._match is None:  # another google-re2 layout: the public API
            return self._regexp.search(text) is not None
        data = text.encode("utf-8", "surrogatepass")
        return bool(self._match.Match(_UNANCHORED, data, 0, len(data))[0] != _NO_MATCH)


_UNANCHORED = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
_NO_MATCH = getattr(re2, "_NULL_SPAN", (-1, -1))


@lru_cache(maxsize=4096)
def linear_pattern(pattern: str) -> LinearPattern:
    return LinearPattern(pattern)


Where = tuple[Any, ...]  # a location inside a schema


def _schema_patterns(node: Any, where: Where = ()) -> Iterator[tuple[Where, str]]:
    """Every regular expression in a schema, with its location. Values of
    ``enum``/``const``/``default``/``examples`` are data, not schemas."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _schema_patterns(item, (*where, index))
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key in ("enum", "const", "default", "examples"):
            continue
        if key == "pattern" and isinstance(value, str):
            yield (*where, key), value
        elif key == "patternProperties" and isinstance(value, dict):
            for name, sub in value.items():
                yield (*where, key, name), name
                yield from _schema_patterns(sub, (*where, key, name))
        else:
            yield from _schema_patterns(value, (*where, key))


def _has_key(node: Any, wanted: str) -> bool:
    if isinstance(node, list):
        return any(_has_key(item, wanted) for item in node)
    return isinstance(node, dict) and (
        wanted in node or any(_has_key(v, wanted) for v in node.values())
    )


def pattern_problem(schema: Mapping[str, Any]) -> tuple[Where, str] | None:
    """Where and why a schema's patterns cannot run in linear time, or None."""
    for where, pattern in _schema_patterns(schema):
        try:
            linear_pattern(pattern)
        except re2.error as exc:
            reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
            return where, (
                f"pattern {pattern[:100]!r} is not supported ({reason}): patterns run on "
                "a linear-time engine (RE2), without backreferences or lookaround"
            )
    if _has_key(schema, "patternProperties") and _has_key(schema, "unevaluatedProperties"):
        return (), "unevaluatedProperties cannot be combined with patternProperties"
    return None


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not linear_pattern(pattern).search(instance):
        yield ValidationError(f"{instance[:100]!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Any
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        regex = linear_pattern(pattern)
        for key, value in instance.items():
            if regex.search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


_ADDITIONAL = Draft202012Validator.VALIDATORS["additionalProperties"]


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Any
) -> Iterator[ValidationError]:
    patterns = schema.get("patternProperties")
    if not patterns or not validator.is_type(instance, "object"):
        yield from _ADDITIONAL(validator, additional, instance, schema)
        return
    known = schema.get("properties", {})
    regexes = [linear_pattern(p) for p in patterns]
    extras = [k for k in instance if k not in known and not any(r.search(k) for r in regexes)]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        joined = ", ".join(repr(each) for each in sorted(extras))
        yield ValidationError(
            f"{joined} not matching any of the patterns: additional properties are not allowed"
        )


SchemaValidator = validators.extend(
    Draft202012Validator,
    {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
)


@dataclass(frozen=True, slots=True)
class Violation:
    """One way a payload fails its schema."""

    pointer: str  # JSON pointer into the payload ("" = the payload itself)
    rule: str  # the JSON Schema keyword that failed: required, type, enum, ...
    message: str
    schema_path: str  # JSON pointer into the schema


class PayloadValidator:
    """A compiled schema. ``check`` is the fast yes/no; ``violations``
    explains a "no"."""

    def __init__(self, schema: Mapping[str, Any] | bool) -> None:
        self.schema = schema
        self._full = SchemaValidator(schema, format_checker=FORMAT_CHECKER)
        self._fast = compile_check(schema)
        self.compiled = self._fast is not None

    def check(self, data: object) -> bool:
        if self._fast is not None:
            return self._fast(data)
        return bool(self._full.is_valid(data))

    def violations(self, data: object, limit: int = 10) -> list[Violation]:
        if self._fast is not None and self._fast(data):
            return []
        errors = sorted(self._full.iter_errors(data), key=relevance, reverse=True)
        return [_violation(error) for error in _leaves(errors)[:limit]]


def _leaves(errors: list[ValidationError]) -> list[ValidationError]:
    """Prefer the most specific error of an ``anyOf``/``allOf``."""
    out: list[ValidationError] = []
    for error in errors:
        if error.context and error.validator in ("allOf",):
            out.extend(_leaves(sorted(error.context, key=relevance, reverse=True)))
        else:
            out.append(error)
    return out


def _violation(error: ValidationError) -> Violation:
    path = list(error.absolute_path)
    message = error.message
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [
            name
            for name in error.validator_value
            if isinstance(name, str) and name not in error.instance
        ]
        if missing:
            path.append(missing[0])
            message = f"{missing[0]!r} is required"
    pointer = "".join(f"/{pointer_token(p)}" for p in path)
    schema_path = "".join(f"/{pointer_token(p)}" for p in error.absolute_schema_path)
    return Violation(pointer, str(error.validator), message, schema_path)


# -- the compiler --------------------------------------------------------

_ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "$comment",
        "examples",
        "default",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$schema",
        "$id",
    }
)
_SUPPORTED = _ANNOTATIONS | {
    "type",
    "properties",
    "required",
    "items",
    "enum",
    "const",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minItems",
    "maxItems",
    "pattern",
    "format",
    "anyOf",
    "allOf",
    "additionalProperties",
}


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_integer(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


_TYPE_CHECKS: dict[str, Check] = {
    "string": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    "integer": _is_integer,
}


class _Unsupported(Exception):
    pass


def compile_check(schema: object) -> Check | None:
    """A closure equivalent to validating against ``schema``, or None when
    the schema uses keywords outside the compiled subset."""
    try:
        return _compile(schema)
    except _Unsupported:
        return None


def _always(_value: object) -> bool:
    return True


def _never(_value: object) -> bool:
    return False


def _all(checks: list[Check]) -> Check:
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]
    frozen = tuple(checks)

    def check_all(value: object) -> bool:
        for check in frozen:  # noqa: SIM110 - a loop, not all(genexpr): half the cost
            if not check(value):
                return False
        return True

    return check_all


def _compile(schema: object) -> Check:
    if schema is True:
        return _always
    if schema is False:
        return _never
    if not isinstance(schema, dict) or not schema.keys() <= _SUPPORTED:
        raise _Unsupported
    checks: list[Check] = []
    if "type" in schema:
        checks.append(_type_check(schema["type"]))
    if "enum" in schema:
        checks.append(_enum_check(schema["enum"]))
    if "const" in schema:
        checks.append(_enum_check([schema["const"]]))
    checks += _string_checks(schema)
    checks += _number_checks(schema)
    checks += _array_checks(schema)
    checks += _object_checks(schema)
    if "anyOf" in schema:
        options = [_compile(s) for s in _schema_list(schema["anyOf"])]
        checks.append(lambda value: any(option(value) for option in options))
    if "allOf" in schema:
        checks.append(_all([_compile(s) for s in _schema_list(schema["allOf"])]))
    return _all(checks)


def _schema_list(value: object) -> list[object]:
    if not isinstance(value, list) or not value:
        raise _Unsupported
    return value


def _type_check(kind: object) -> Check:
    kinds = [kind] if isinstance(kind, str) else kind
    if not isinstance(kinds, list) or not all(k in _TYPE_CHECKS for k in kinds):
        raise _Unsupported
    tests = [_TYPE_CHECKS[k] for k in kinds]
    if len(tests) == 1:
        return tests[0]
    return lambda value: any(test(value) for test in tests)


def _enum_check(values: object) -> Check:
    # Only strings and null: other values need jsonschema's equality rules
    # (1 == 1.0 but True != 1), so they stay with jsonschema.
    if not isinstance(values, list) or not all(v is None or isinstance(v, str) for v in values):
        raise _Unsupported
    strings = frozenset(v for v in values if isinstance(v, str))
    allow_null = None in values
    return lambda value: (
        (isinstance(value, str) and value in strings) or (allow_null and value is None)
    )


def _limit(schema: Mapping[str, Any], key: str) -> Any:
    value = schema.get(key)
    if value is not None and not _is_number(value):
        raise _Unsupported
    return value


def _string_checks(schema: Mapping[str, Any]) -> list[Check]:
    checks: list[Check] = []
    low, high = _limit(schema, "minLength"), _limit(schema, "maxLength")
    if low is not None:
        checks.append(lambda v: not isinstance(v, str) or len(v) >= low)
    if high is not None:
        checks.append(lambda v: not isinstance(v, str) or len(v) <= high)
    if "pattern" in schema:
        if not isinstance(schema["pattern"], str):
            raise _Unsupported
        try:
            regex = linear_pattern(schema["pattern"])
        except re2.error:
            raise _Unsupported from None
        checks.append(lambda v: not isinstance(v, str) or regex.search(v))
    if "format" in schema:
        fmt = FORMATS.get(schema["format"])
        if fmt is not None:  # unknown formats are annotations, as in jsonschema
            checks.append(fmt)
    return checks


def _number_checks(schema: Mapping[str, Any]) -> list[Check]:
    checks: list[Check] = []
    bounds = {
        "minimum": lambda v, b: v >= b,
        "maximum": lambda v, b: v <= b,
        "exclusiveMinimum": lambda v, b: v > b,
        "exclusiveMaximum": lambda v, b: v < b,
    }
    for key, compare in bounds.items():
        bound = _limit(schema, key)
        if bound is not None:
            checks.append(
                lambda v, b=bound, c=compare: not _is_number(v) or c(v, b)  # type: ignore[misc]
            )
    return checks


def _array_checks(schema: Mapping[str, Any]) -> list[Check]:
    checks: list[Check] = []
    low, high = _limit(schema, "minItems"), _limit(schema, "maxItems")
    if low is not None:
        checks.append(lambda v: not isinstance(v, list) or len(v) >= low)
    if high is not None:
        checks.append(lambda v: not isinstance(v, list) or len(v) <= high)
    if "items" in schema:
        item = _compile(schema["items"])
        checks.append(lambda v: not isinstance(v, list) or all(item(x) for x in v))
    return checks


def _object_checks(schema: Mapping[str, Any]) -> list[Check]:
    checks: list[Check] = []
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise _Unsupported
    if required:
        names = tuple(required)
        checks.append(lambda v: not isinstance(v, dict) or all(n in v for n in names))
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        raise _Unsupported
    compiled = {name: _compile(sub) for name, sub in properties.items()}
    if compiled:

        def check_properties(value: object) -> bool:
            if not isinstance(value, dict):
                return True
            for name, check in compiled.items():
                if name in value and not check(value[name]):
                    return False
            return True

        checks.append(check_properties)
    if "additionalProperties" in schema:
        extra = _compile(schema["additionalProperties"])
        known = frozenset(properties)
        checks.append(
            lambda v: (
                not isinstance(v, dict)
                or all(extra(item) for key, item in v.items() if key not in known)
            )
        )
    return checks
