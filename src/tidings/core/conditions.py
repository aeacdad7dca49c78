"""Declarative conditions for automation rules (pure: no I/O).

A rule's trigger may carry ``conditions``: JSON that tests the event
envelope, compiled once when the rule is saved and evaluated on the publish
path for every event whose type the rule's pattern matched::

    {"all": [{"path": "data.priority", "op": "eq", "value": "HIGH"},
             {"any": [{"path": "data.score", "op": "gte", "value": 80},
                      {"not": {"path": "data.campaignId", "op": "exists"}}]}]}

A node is exactly one of ``{"all": [...]}`` (an empty ``all`` matches
everything), ``{"any": [...]}`` (an empty ``any`` matches nothing),
``{"not": node}`` or a test ``{"path": ..., "op": ..., "value": ...}``.
``None`` or ``{}`` (at the root only) matches every event.

Paths are dotted (``actor.userId``, ``data.items.0.sku``); a segment is a
non-empty run of ``[A-Za-z0-9_-$]``. A canonical non-negative integer
segment (``0``, ``12``; not ``012``) indexes a list when the current value
is a list, otherwise every segment is an object key. A path that leaves
the envelope (a missing key, an index out of range, a step into a scalar)
is *absent*.

Semantics of the ops (``actual`` is the value at the path):

* equality is JSON equality: booleans never equal numbers (``true != 1``),
  integers equal floats numerically (``1 == 1.0``), arrays and objects
  compare structurally by the same rule; NaN equals nothing. Values outside
  the JSON model (other than tuples, which count as arrays) equal nothing.
* ``eq`` / ``ne``: ``ne`` is ``not eq``; an absent path makes ``eq`` false
  and ``ne`` true. ``in`` / ``not_in`` take a list and test membership by
  the same equality; absent: ``in`` false, ``not_in`` true.
* ``gt gte lt lte``: two numbers (booleans excluded) compare numerically,
  two strings lexicographically by code point (so ISO timestamps in the
  same format order in time); anything else (mixed types, absent, NaN) is
  false. The value must be a number or a string.
* ``exists``: ``value`` is a boolean, default true; ``false`` means the
  path is absent. A present ``null`` exists.
* ``contains``: a string contains a string value as a substring; a list
  contains a value that one of its elements equals; anything else is false.
* ``starts_with`` / ``ends_with``: string prefix / suffix (value a string).

Every other op is false on an absent path. Specs are validated strictly
(unknown keys, wrong types and limits raise :class:`InvalidInput` naming
the exact JSON pointer); :meth:`Condition.matches` never raises.
"""

from __future__ import annotations

import copy
import math
import operator
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, Final, NoReturn

from tidings.core.pointers import pointer_token
from tidings.errors import InvalidInput

OPS: Final = frozenset(
    {
        "eq",
        "ne",
        "in",
        "not_in",
        "gt",
        "gte",
        "lt",
        "lte",
        "exists",
        "contains",
        "starts_with",
        "ends_with",
    }
)
MAX_DEPTH: Final = 10  # nodes from the root down, the root counting as 1
MAX_NODES: Final = 200
MAX_IN_ITEMS: Final = 1000
MAX_PATH_LENGTH: Final = 256  # also keeps int() of an index segment cheap
MAX_VALUE_DEPTH: Final = 32  # bounds the recursion of the equality test

Segment = tuple[str, int | None]  # (object key, list index when the key is one)
Path = tuple[Segment, ...]

_SEGMENT_RE = re.compile(r"[A-Za-z0-9_\-$]+")
_INDEX_RE = re.compile(r"0|[1-9][0-9]*")
_GROUPS = ("all", "any", "not")
_LEAF_KEYS = frozenset({"path", "op", "value"})
_ORDERED = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
_MISSING: Final[Any] = object()  # "absent", distinct from a present null


# -- paths ---------------------------------------------------------------------


def compile_path(path: Any, *, field: str = "/path") -> Path:
    """``"data.items.0.sku"`` -> ``(("data", None), ("items", None), ("0", 0),
    ("sku", None))``: the index is parsed once here, not per event."""
    if not isinstance(path, str) or not path:
        raise InvalidInput("path must be a non-empty string", field=field)
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidInput(f"path is longer than {MAX_PATH_LENGTH} characters", field=field)
    segments: list[Segment] = []
    for segment in path.split("."):
        if not _SEGMENT_RE.fullmatch(segment):
            raise InvalidInput(
                f"invalid path {path!r}: dot-separated segments of letters, digits, _, - or $",
                field=field,
            )
        index = int(segment) if _INDEX_RE.fullmatch(segment) else None
        segments.append((segment, index))
    return tuple(segments)


def _lookup(value: Any, path: Path) -> Any:
    """The value at ``path`` or ``_MISSING``; no tuple allocated per call."""
    for key, index in path:
        if isinstance(value, dict):
            value = value.get(key, _MISSING)  # _MISSING falls through to the end
        elif isinstance(value, list | tuple):
            if index is None or index >= len(value):
                return _MISSING
            value = value[index]
        elif isinstance(value, Mapping):  # a read-only view of an envelope
            value = value.get(key, _MISSING)
        else:
            return _MISSING
    return value


def resolve_path(envelope: Any, path: Path) -> tuple[bool, Any]:
    """``(found, value)`` of a compiled path in ``envelope``; never raises."""
    value = _lookup(envelope, path)
    if value is _MISSING:
        return False, None
    return True, value


# -- JSON equality -------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_eq(actual: Any, expected: Any) -> bool:
    """JSON equality of anything against a validated spec value. Recursion
    follows ``expected``, whose depth compilation bounds, so deep envelopes
    cannot overflow the stack."""
    if isinstance(expected, str):
        return isinstance(actual, str) and expected == actual
    if isinstance(expected, bool):  # before int: bool is an int subclass
        return isinstance(actual, bool) and expected is actual
    if isinstance(expected, int | float):
        return _is_number(actual) and expected == actual
    if expected is None:
        return actual is None
    if isinstance(expected, list):
        if not isinstance(actual, list | tuple) or len(actual) != len(expected):
            return False
        return all(_json_eq(a, e) for a, e in zip(actual, expected, strict=True))
    if isinstance(expected, dict):
        # Same size and every expected key present: the key sets are equal.
        if not isinstance(actual, dict) or len(actual) != len(expected):
            return False
        for key, e in expected.items():
            a = actual.get(key, _MISSING)
            if a is _MISSING or not _json_eq(a, e):
                return False
        return True
    return False


def _equals(expected: Any) -> Callable[[Any], bool]:
    """An equality test specialised on the spec value's type."""
    if isinstance(expected, str):
        return lambda actual: isinstance(actual, str) and expected == actual
    if _is_number(expected):
        number: float = expected
        return lambda actual: (
            isinstance(actual, int | float) and not isinstance(actual, bool) and number == actual
        )
    return lambda actual: _json_eq(actual, expected)


class _Members:
    """An ``in`` list: hashed lookups for scalars (split by JSON type, since
    ``True in {1}`` in Python), a scan only for arrays and objects."""

    __slots__ = ("_bools", "_compound", "_null", "_numbers", "_strings")

    def __init__(self, items: list[Any]) -> None:
        self._strings = frozenset(i for i in items if isinstance(i, str))
        self._bools = frozenset(i for i in items if isinstance(i, bool))
        self._numbers = frozenset(i for i in items if _is_number(i))
        self._null = any(i is None for i in items)
        self._compound = tuple(i for i in items if isinstance(i, list | dict))

    def has(self, actual: Any) -> bool:
        if isinstance(actual, str):
            return actual in self._strings
        if isinstance(actual, bool):
            return actual in self._bools
        if isinstance(actual, int | float):
            return actual in self._numbers  # NaN hashes by identity: never found
        if actual is None:
            return self._null
        return any(_json_eq(actual, item) for item in self._compound)


# -- ops -----------------------------------------------------------------------


def _contains(expected: Any) -> Callable[[Any], bool]:
    equals = _equals(expected)

    def test(actual: Any) -> bool:
        if isinstance(actual, str):
            return isinstance(expected, str) and expected in actual
        if isinstance(actual, list | tuple):
            return any(equals(item) for item in actual)
        return False

    return test


def _present_test(op: str, value: Any) -> Callable[[Any], bool]:
    """The test of a present value; absent values never reach it."""
    if op in ("eq", "ne"):
        equals = _equals(value)
        return equals if op == "eq" else lambda actual: not equals(actual)
    if op in ("in", "not_in"):
        members = _Members(value)
        return members.has if op == "in" else lambda actual: not members.has(actual)
    if op in _ORDERED:
        compare = _ORDERED[op]
        if isinstance(value, str):
            return lambda actual: isinstance(actual, str) and bool(compare(actual, value))
        return lambda actual: _is_number(actual) and bool(compare(actual, value))
    if op == "exists":
        return lambda actual: bool(value)
    if op == "contains":
        return _contains(value)
    prefix: str = value
    if op == "starts_with":
        return lambda actual: isinstance(actual, str) and actual.startswith(prefix)
    return lambda actual: isinstance(actual, str) and actual.endswith(prefix)


# -- condition objects ---------------------------------------------------------


class Condition(ABC):
    """A compiled condition. ``always`` is true when it matches every
    envelope, so callers can skip building the envelope view at all."""

    __slots__ = ("always",)

    always: bool

    @abstractmethod
    def matches(self, envelope: Mapping[str, Any]) -> bool:
        """Whether ``envelope`` satisfies the condition; never raises."""

    @abstractmethod
    def to_json(self) -> dict[str, Any]:
        """The normalised spec; ``compile_conditions`` of it is equivalent."""

    @abstractmethod
    def _collect_paths(self, into: set[str]) -> None: ...

    def paths(self) -> frozenset[str]:
        """Every path the condition reads (for editors and docs)."""
        found: set[str] = set()
        self._collect_paths(found)
        return frozenset(found)

    def __repr__(self) -> str:
        return f"Condition({self.to_json()!r})"


class _Always(Condition):
    __slots__ = ()

    def __init__(self) -> None:
        self.always = True

    def matches(self, envelope: Mapping[str, Any]) -> bool:
        return True

    def to_json(self) -> dict[str, Any]:
        return {}

    def _collect_paths(self, into: set[str]) -> None:
        pass


ALWAYS: Final[Condition] = _Always()


class _All(Condition):
    __slots__ = ("children",)

    def __init__(self, children: tuple[Condition, ...]) -> None:
        self.children = children
        self.always = all(c.always for c in children)

    def matches(self, envelope: Mapping[str, Any]) -> bool:
        # A plain loop: half the cost of all() over a generator, per event.
        for child in self.children:  # noqa: SIM110
            if not child.matches(envelope):
                return False
        return True

    def to_json(self) -> dict[str, Any]:
        return {"all": [c.to_json() for c in self.children]}

    def _collect_paths(self, into: set[str]) -> None:
        for child in self.children:
            child._collect_paths(into)


class _Any(Condition):
    __slots__ = ("children",)

    def __init__(self, children: tuple[Condition, ...]) -> None:
        self.children = children
        self.always = any(c.always for c in children)

    def matches(self, envelope: Mapping[str, Any]) -> bool:
        for child in self.children:  # noqa: SIM110 - as in _All
            if child.matches(envelope):
                return True
        return False

    def to_json(self) -> dict[str, Any]:
        return {"any": [c.to_json() for c in self.children]}

    def _collect_paths(self, into: set[str]) -> None:
        for child in self.children:
            child._collect_paths(into)


class _Not(Condition):
    __slots__ = ("child",)

    def __init__(self, child: Condition) -> None:
        self.child = child
        self.always = False

    def matches(self, envelope: Mapping[str, Any]) -> bool:
        return not self.child.matches(envelope)

    def to_json(self) -> dict[str, Any]:
        return {"not": self.child.to_json()}

    def _collect_paths(self, into: set[str]) -> None:
        self.child._collect_paths(into)


class _Test(Condition):
    """One ``{"path", "op", "value"}`` test, with its path and op compiled."""

    __slots__ = ("_absent", "_segments", "_test", "op", "path", "value")

    def __init__(self, path: str, segments: Path, op: str, value: Any) -> None:
        self.path = path
        self.op = op
        self.value = value
        self.always = False
        self._segments = segments
        self._test = _present_test(op, value)
        # What an absent path gives: only the negative ops are true there.
        self._absent = op in ("ne", "not_in") or (op == "exists" and not value)

    def matches(self, envelope: Mapping[str, Any]) -> bool:
        actual = _lookup(envelope, self._segments)
        if actual is _MISSING:
            return self._absent
        return self._test(actual)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "op": self.op, "value": copy.deepcopy(self.value)}

    def _collect_paths(self, into: set[str]) -> None:
        into.add(self.path)


# -- compilation ---------------------------------------------------------------


def _pointer(field: str, token: str | int) -> str:
    """``field`` extended by one RFC 6901 reference token."""
    return f"{field}/{pointer_token(token)}"


def _json_value(value: Any, field: str, depth: int = 0) -> Any:
    """A private copy of a spec value, refusing anything JSON cannot carry
    (and NaN/infinity, which standard JSON cannot either)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput("numbers must be finite", field=field)
        return float(value)
    if not isinstance(value, list | dict):
        raise InvalidInput("value must be JSON", field=field)
    if depth >= MAX_VALUE_DEPTH:
        raise InvalidInput(f"values nest at most {MAX_VALUE_DEPTH} deep", field=field)
    if isinstance(value, list):
        return [_json_value(v, _pointer(field, i), depth + 1) for i, v in enumerate(value)]
    copied: dict[str, Any] = {}
    for key, v in value.items():
        if not isinstance(key, str):  # not from JSON: no pointer can name the key
            raise InvalidInput("object keys must be strings", field=field)
        copied[str(key)] = _json_value(v, _pointer(field, key), depth + 1)
    return copied


def _check_value(op: str, value: Any, field: str) -> None:
    """Refuse values the op could never match, so a typo fails at save time
    instead of silently never firing."""
    if op == "exists" and not isinstance(value, bool):
        raise InvalidInput("exists takes a boolean value", field=field)
    if op in ("in", "not_in"):
        if not isinstance(value, list):
            raise InvalidInput(f"{op} takes a list value", field=field)
        if len(value) > MAX_IN_ITEMS:
            raise InvalidInput(f"{op} lists hold at most {MAX_IN_ITEMS} items", field=field)
    if op in _ORDERED and not (isinstance(value, str) or _is_number(value)):
        raise InvalidInput(f"{op} takes a number or a string", field=field)
    if op in ("starts_with", "ends_with") and not isinstance(value, str):
        raise InvalidInput(f"{op} takes a string", field=field)


def _refuse_key(key: object, field: str, reason: str) -> NoReturn:
    if not isinstance(key, str):  # not from JSON: no pointer can name the key
        raise InvalidInput("object keys must be strings", field=field)
    raise InvalidInput(f"{reason} {key!r}", field=_pointer(field, key))


class _Compiler:
    __slots__ = ("nodes",)

    def __init__(self) -> None:
        self.nodes = 0

    def node(self, spec: Any, field: str, depth: int) -> Condition:
        if not isinstance(spec, dict):
            raise InvalidInput("a condition must be an object", field=field)
        if depth > MAX_DEPTH:
            raise InvalidInput(f"conditions nest at most {MAX_DEPTH} deep", field=field)
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise InvalidInput(f"at most {MAX_NODES} conditions", field=field)
        group = next((key for key in spec if key in _GROUPS), None)
        if group is not None:
            return self.group(spec, group, field, depth)
        return self.test(spec, field)

    def group(self, spec: dict[Any, Any], group: str, field: str, depth: int) -> Condition:
        for key in spec:
            if key != group:
                _refuse_key(
                    key,
                    field,
                    f"a condition is one of all, any, not or path, so {group!r} cannot sit with",
                )
        body = spec[group]
        inner = _pointer(field, group)
        if group == "not":
            return _Not(self.node(body, inner, depth + 1))
        if not isinstance(body, list):
            raise InvalidInput(f"{group} takes a list of conditions", field=inner)
        children = tuple(
            self.node(child, _pointer(inner, i), depth + 1) for i, child in enumerate(body)
        )
        return _All(children) if group == "all" else _Any(children)

    def test(self, spec: dict[Any, Any], field: str) -> Condition:
        if not spec:
            raise InvalidInput("a condition needs all, any, not or path", field=field)
        for key in spec:
            if key not in _LEAF_KEYS:
                _refuse_key(key, field, "unknown key")
        if "path" not in spec:
            raise InvalidInput("path is required", field=_pointer(field, "path"))
        path = spec["path"]
        segments = compile_path(path, field=_pointer(field, "path"))
        op = spec.get("op")
        if not isinstance(op, str) or op not in OPS:
            raise InvalidInput(
                f"op must be one of {', '.join(sorted(OPS))}", field=_pointer(field, "op")
            )
        value_field = _pointer(field, "value")
        if "value" in spec:
            value = _json_value(spec["value"], value_field)
        elif op == "exists":
            value = True
        else:
            raise InvalidInput(f"{op} needs a value", field=value_field)
        _check_value(op, value, value_field)
        return _Test(path, segments, op, value)


def compile_conditions(spec: Any, *, field: str = "/trigger/conditions") -> Condition:
    """Validate and compile a conditions spec; ``None`` or ``{}`` match all.
    Raises :class:`InvalidInput` naming the JSON pointer of the bad part."""
    if spec is None or (isinstance(spec, dict) and not spec):
        return ALWAYS
    return _Compiler().node(spec, field, 1)


__all__ = [
    "ALWAYS",
    "MAX_DEPTH",
    "MAX_IN_ITEMS",
    "MAX_NODES",
    "MAX_PATH_LENGTH",
    "MAX_VALUE_DEPTH",
    "OPS",
    "Condition",
    "Path",
    "Segment",
    "compile_conditions",
    "compile_path",
    "resolve_path",
]
