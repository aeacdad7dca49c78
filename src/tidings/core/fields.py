"""The compact payload notation of the seeds, compiled to JSON Schema.

Seed 002 lists each event's payload as ``(tenantId, ticketId,
previousStatusId, newStatusId, actorUserId, changedAt, reason?)``. Catalog
packs may write a version the same way (``fields: "tenantId, ticketId,
..."``) instead of an explicit ``schema:``; this module turns it into the
JSON Schema that validates the payload. Pure: no I/O.

Grammar (whitespace is ignored)::

    fields  := field ("," field)*
    field   := names ["?"] [shape] ["?"] [":" type]
    names   := name ("/" name)*          # clientId/companyId: one of them
    shape   := "(" word ("|" word)* ")"  # an enum of strings
             | "[]"                       # an array (items: the ``type``)
             | "[{" fields "}]"           # an array of objects
             | "{" fields "}"             # an object

``?`` marks an optional field. ``a/b`` names alternatives: both are
allowed, at least one is required (unless ``?``). Extra payload fields are
allowed (a producer may send more than the catalog lists).

Types, when no ``:type`` is given, follow the seed's naming habits:

==============================  ============================================
``*At``                          string, ``format: date-time``
``date``, ``*Date``              string, ``format: date``
``*Ids``                         array of non-empty strings
``id``, ``*Id``                  non-empty string
``email``, ``*Email``            string, ``format: email``
counts and amounts               number (``*Count``, ``amount*``, ``*Amount``,
                                 ``*Seconds``, ``*Ms``, ``*Bytes``, ``days*``,
                                 ``minutes``, ``score``, ``baseline``,
                                 ``delta``, ``threshold``)
``is*``, ``has*``, ``billable``,  boolean
``retryable``
``changes``                      object
``updatedFields``                array of strings
anything else                    string
==============================  ============================================

Explicit types: ``string id number integer boolean datetime date email
object array any``. After ``[]`` the type is the items' type
(``outputs[]?:object``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "id": {"type": "string", "minLength": 1},
    "number": {"type": "number"},
    "integer": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "datetime": {"type": "string", "format": "date-time"},
    "date-time": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
    "email": {"type": "string", "format": "email"},
    "object": {"type": "object"},
    "array": {"type": "array"},
    "any": {},
}
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_WORD_RE = re.compile(r"[A-Za-z0-9_.\-]+")
_NUMBER_NAMES = frozenset(
    {"amount", "minutes", "seconds", "score", "baseline", "delta", "threshold", "count", "total"}
)
_NUMBER_SUFFIXES = ("Count", "Amount", "Seconds", "Minutes", "Ms", "Bytes", "Total")
_BOOLEAN_NAMES = frozenset({"billable", "retryable", "active", "enabled"})


class FieldsError(ValueError):
    """The notation cannot be read; ``column`` is 1-based."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"{message} (column {column})")
        self.column = column


@dataclass(frozen=True, slots=True)
class Field:
    names: tuple[str, ...]  # more than one: alternatives, at least one present
    optional: bool = False
    shape: str = "scalar"  # scalar | enum | array | objects | object
    enum: tuple[str, ...] = ()
    children: tuple[Field, ...] = ()
    type: str | None = None  # an explicit ``:type``

    @property
    def name(self) -> str:
        return "/".join(self.names)


def _camel_tail(name: str, prefix: str) -> bool:
    """``name`` is ``prefix`` followed by a capitalised word (``daysOverdue``)."""
    return name.startswith(prefix) and len(name) > len(prefix) and name[len(prefix)].isupper()


def infer_type(name: str) -> dict[str, Any]:
    """The JSON Schema a field gets from its name alone (see the table)."""
    if name.endswith("At") and len(name) > 2 and name[-3].islower():
        return dict(TYPES["datetime"])
    if name == "date" or name.endswith("Date"):
        return dict(TYPES["date"])
    if name.endswith("Ids"):
        return {"type": "array", "items": dict(TYPES["id"])}
    if name == "id" or name.endswith("Id"):
        return dict(TYPES["id"])
    if name == "email" or name.endswith("Email"):
        return dict(TYPES["email"])
    if (
        name in _NUMBER_NAMES
        or name.endswith(_NUMBER_SUFFIXES)
        or _camel_tail(name, "amount")
        or _camel_tail(name, "days")
    ):
        return dict(TYPES["number"])
    if name in _BOOLEAN_NAMES or _camel_tail(name, "is") or _camel_tail(name, "has"):
        return dict(TYPES["boolean"])
    if name == "changes":
        return dict(TYPES["object"])
    if name == "updatedFields":
        return {"type": "array", "items": dict(TYPES["string"])}
    return dict(TYPES["string"])


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, message: str) -> FieldsError:
        return FieldsError(message, self.pos + 1)

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self, token: str) -> bool:
        self.skip()
        return self.text.startswith(token, self.pos)

    def take(self, token: str) -> bool:
        if self.peek(token):
            self.pos += len(token)
            return True
        return False

    def expect(self, token: str) -> None:
        if not self.take(token):
            found = self.text[self.pos : self.pos + 10] or "the end"
            raise self.fail(f"expected {token!r}, found {found!r}")

    def match(self, pattern: re.Pattern[str], what: str) -> str:
        self.skip()
        found = pattern.match(self.text, self.pos)
        if found is None:
            raise self.fail(f"expected {what}")
        self.pos = found.end()
        return found.group(0)

    def at_end(self) -> bool:
        self.skip()
        return self.pos >= len(self.text)


def _field(reader: _Reader) -> Field:
    names = [reader.match(_NAME_RE, "a field name")]
    while reader.take("/"):
        names.append(reader.match(_NAME_RE, "a field name after '/'"))
    optional = reader.take("?")
    shape = "scalar"
    enum: tuple[str, ...] = ()
    children: tuple[Field, ...] = ()
    if reader.take("("):
        words = [reader.match(_WORD_RE, "an enum value")]
        while reader.take("|"):
            words.append(reader.match(_WORD_RE, "an enum value after '|'"))
        reader.expect(")")
        shape, enum = "enum", tuple(words)
    elif reader.take("[{"):
        children = _fields(reader, closing="}]")
        shape = "objects"
    elif reader.take("[]"):
        shape = "array"
    elif reader.take("{"):
        children = _fields(reader, closing="}")
        shape = "object"
    optional = reader.take("?") or optional
    kind = None
    if reader.take(":"):
        reader.skip()
        start = reader.pos
        kind = reader.match(re.compile(r"[a-z][a-z\-]*"), "a type name")
        if kind not in TYPES:
            raise FieldsError(
                f"unknown type {kind!r} (one of {', '.join(sorted(TYPES))})", start + 1
            )
    return Field(tuple(names), optional, shape, enum, children, kind)


def _fields(reader: _Reader, closing: str | None = None) -> tuple[Field, ...]:
    found: list[Field] = []
    seen: set[str] = set()
    while True:
        if closing is not None and reader.peek(closing):
            if not found:
                raise reader.fail("expected at least one field")
            reader.take(closing)
            break
        if closing is None and reader.at_end():
            break
        if found:
            reader.expect(",")
            if closing is None and reader.at_end():
                break  # a trailing comma
        reader.skip()
        start = reader.pos
        item = _field(reader)
        for name in item.names:
            if name in seen:
                raise FieldsError(f"field {name!r} is listed twice", start + 1)
            seen.add(name)
        found.append(item)
    if not found:
        raise reader.fail("expected at least one field")
    return tuple(found)


def parse_fields(text: str) -> tuple[Field, ...]:
    """Read the notation; raises :class:`FieldsError` naming the column."""
    reader = _Reader(text)
    return _fields(reader)


def _field_schema(item: Field, name: str) -> dict[str, Any]:
    if item.shape == "enum":
        return {"type": "string", "enum": list(item.enum)}
    if item.shape == "object":
        return _object_schema(item.children)
    if item.shape == "objects":
        return {"type": "array", "items": _object_schema(item.children)}
    if item.shape == "array":
        items = dict(TYPES[item.type]) if item.type else {"type": "string"}
        return {"type": "array", "items": items}
    return dict(TYPES[item.type]) if item.type else infer_type(name)


def _object_schema(items: tuple[Field, ...]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    alternatives: list[list[str]] = []
    for item in items:
        for name in item.names:
            properties[name] = _field_schema(item, name)
        if item.optional:
            continue
        if len(item.names) == 1:
            required.append(item.names[0])
        else:
            alternatives.append(list(item.names))
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    groups = [{"anyOf": [{"required": [n]} for n in names]} for names in alternatives]
    if len(groups) == 1:
        schema.update(groups[0])
    elif groups:
        schema["allOf"] = groups
    return schema


def fields_schema(text: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12, within the draft-07 subset so AsyncAPI
    tools read it too) of a payload written in the notation."""
    return _object_schema(parse_fields(text))
