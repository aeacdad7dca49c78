"""Building catalog types from parsed pack data (pure): every key of a type
entry and of each version is checked, each version becomes one JSON Schema
(the seed ``fields`` notation compiled, or a schema checked against draft
2020-12, linear-time patterns only, local references only), and errors name
their place in the pack (:class:`~tidings.core.catalog.CatalogError`'s
``location``). The pack format is described in :mod:`tidings.core.catalog`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from tidings.core.audience import parse_audience
from tidings.core.catalog import (
    PERMISSIVE_SCHEMA,
    TEMPLATE_RE,
    CatalogError,
    EventType,
    Location,
    schema_ref,
)
from tidings.core.fields import FieldsError, fields_schema
from tidings.core.validation import pattern_problem
from tidings.errors import InvalidInput

TYPE_KEYS = frozenset(
    {
        "module",
        "category",
        "group",
        "title",
        "description",
        "entityType",
        "action",
        "audiences",
        "sensitive",
        "active",
        "transition",
        "versions",
    }
)
VERSION_KEYS = frozenset({"fields", "schema", "ref", "note"})


def _version_schema(
    version: object, number: int, where: Location
) -> tuple[Mapping[str, Any], str | None]:
    at = (*where, "versions", number - 1)
    if not isinstance(version, dict):
        raise CatalogError(f"version {number} must be a mapping with fields or schema", location=at)
    unknown = sorted(set(version) - VERSION_KEYS)
    if unknown:
        raise CatalogError(
            f"version {number}: unknown key {unknown[0]!r}", location=(*at, unknown[0])
        )
    if ("fields" in version) == ("schema" in version):
        raise CatalogError(f"version {number} needs exactly one of fields or schema", location=at)
    if "fields" in version:
        text = version["fields"]
        if not isinstance(text, str):
            raise CatalogError(
                f"version {number}: fields must be a string", location=(*at, "fields")
            )
        try:
            return fields_schema(text), text
        except FieldsError as exc:
            raise CatalogError(
                f"version {number}: fields: {exc}", location=(*at, "fields")
            ) from None
    schema = version["schema"]
    if not isinstance(schema, dict):
        raise CatalogError(f"version {number}: schema must be an object", location=(*at, "schema"))
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise CatalogError(
            f"version {number}: schema is invalid: {exc.message}", location=(*at, "schema")
        ) from None
    if schema.get("type", "object") != "object":
        raise CatalogError(
            f"version {number}: a payload schema must describe an object", location=(*at, "schema")
        )
    slow = pattern_problem(schema)
    if slow is not None:
        where, message = slow
        raise CatalogError(f"version {number}: {message}", location=(*at, "schema", *where))
    problem = _reference_problem(schema)
    if problem is not None:
        raise CatalogError(f"version {number}: {problem}", location=(*at, "schema"))
    return schema, None


def _is_index(part: str) -> bool:
    return part.isascii() and part.isdigit()  # int() also takes "²"


def _reference_problem(schema: Mapping[str, Any]) -> str | None:
    """Schemas are self-contained: a ``$ref`` points inside the schema (and
    resolves there); nothing is ever fetched."""

    def resolves(pointer: str) -> bool:
        node: Any = schema
        for raw in pointer.lstrip("/").split("/") if pointer.strip("/") else ():
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif (
                isinstance(node, list)
                and part.isascii()
                and part.isdigit()
                and int(part) < len(node)
            ):
                node = node[int(part)]
            else:
                return False
        return True

    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in ("$dynamicRef", "$recursiveRef"):
                if key in node:
                    return f"{key} is not supported"
            ref = node.get("$ref")
            if isinstance(ref, str) and not (ref.startswith("#") and resolves(ref[1:])):
                return f"$ref {ref!r} must point inside the schema (#/...)"
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None


def build_event_type(
    name: str,
    spec: Mapping[str, Any],
    *,
    pack: str,
    defaults: Mapping[str, Any],
    tenant_id: str | None = None,
) -> EventType:
    where: Location = ("types", name)

    def fail(message: str, *key: str | int) -> CatalogError:
        return CatalogError(f"type {name!r}: {message}", location=(*where, *key))

    if not isinstance(spec, Mapping):
        raise fail("an entry must be a mapping")
    unknown = sorted(set(spec) - TYPE_KEYS)
    if unknown:
        raise fail(
            f"unknown key {unknown[0]!r} (known: {', '.join(sorted(TYPE_KEYS))})", unknown[0]
        )
    merged = {**defaults, **spec}
    versions_spec = merged.get("versions") or [{"schema": PERMISSIVE_SCHEMA}]
    if not isinstance(versions_spec, list):
        raise fail("versions must be a list", "versions")
    versions: dict[int, Mapping[str, Any]] = {}
    sources: dict[int, str] = {}
    for number, version in enumerate(versions_spec, start=1):
        try:
            schema, text = _version_schema(version, number, where)
        except CatalogError as exc:
            raise CatalogError(f"type {name!r}: {exc.message}", location=exc.location) from None
        ref = version.get("ref") if isinstance(version, dict) else None
        if ref is not None and ref != schema_ref(name, number):
            raise fail(
                f"version {number}: ref must be {schema_ref(name, number)!r}, not {ref!r}",
                "versions",
                number - 1,
                "ref",
            )
        versions[number] = schema
        if text is not None:
            sources[number] = text
    action = merged.get("action")
    if action is not None and (
        not isinstance(action, str) or not re.fullmatch(r"[A-Z][A-Z0-9_]{0,63}", action)
    ):
        raise fail("action must be an upper-case word", "action")
    audiences = merged.get("audiences") or ()
    if not isinstance(audiences, (list, tuple)):
        raise fail("audiences must be a list", "audiences")
    for i, template in enumerate(audiences):
        probe = TEMPLATE_RE.sub("x", template) if isinstance(template, str) else template
        try:
            parse_audience(probe)
        except InvalidInput as exc:
            raise fail(exc.detail, "audiences", i) from None
    sensitive = merged.get("sensitive") or {}
    if not isinstance(sensitive, dict) or not all(
        isinstance(k, str)
        and k.startswith(("data.", "metadata.", "actor."))
        and isinstance(v, str)
        and v
        for k, v in sensitive.items()
    ):
        raise fail("sensitive maps data./metadata./actor. paths to permissions", "sensitive")
    for path, permission in sensitive.items():
        try:
            parse_audience(f"permission:{permission}")
        except InvalidInput:
            raise fail(f"{permission!r} is not a permission key", "sensitive", path) from None
    for key in ("module", "category", "group", "title", "entityType"):
        value = merged.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > 200):
            raise fail(f"{key} must be a string of at most 200 characters", key)
    description = merged.get("description") or {}
    if isinstance(description, str):
        description = {"en": description}
    if not isinstance(description, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in description.items()
    ):
        raise fail("description is a string or a mapping of language to text", "description")
    transition = merged.get("transition")
    if transition is not None and not isinstance(transition, bool):
        raise fail("transition must be true or false", "transition")
    active = merged.get("active", True)
    if not isinstance(active, bool):
        raise fail("active must be true or false", "active")
    return EventType(
        name=name,
        versions=versions,
        module=str(merged.get("module", "")),
        category=str(merged.get("category", "")),
        description=dict(description),
        entity_type=merged.get("entityType"),
        action=action,
        audiences=tuple(audiences),
        sensitive=dict(sensitive),
        active=active,
        pack=pack,
        tenant_id=tenant_id,
        title=str(merged.get("title", "")),
        group=str(merged.get("group", "")),
        sources=sources,
        transition=transition,
    )


PACK_KEYS = frozenset(
    {"pack", "naming", "conventions", "defaults", "types", "source", "description"}
)


def pack_types(pack: Mapping[str, Any]) -> list[EventType]:
    """The event types of one pack's data (without the convention checks)."""
    name = str(pack.get("pack", "?"))
    unknown = sorted(set(pack) - PACK_KEYS)
    if unknown:
        raise CatalogError(
            f"pack {name!r}: unknown key {unknown[0]!r} (known: {', '.join(sorted(PACK_KEYS))})",
            location=(unknown[0],),
        )
    defaults = pack.get("defaults") or {}
    if not isinstance(defaults, dict) or not set(defaults) <= TYPE_KEYS - {"versions"}:
        raise CatalogError(
            f"pack {name!r}: defaults may only set {', '.join(sorted(TYPE_KEYS - {'versions'}))}",
            location=("defaults",),
        )
    entries = pack.get("types") or {}
    if not isinstance(entries, dict):
        raise CatalogError(
            f"pack {name!r}: types must be a mapping of type name to entry", location=("types",)
        )
    return [
        build_event_type(str(type_name), spec or {}, pack=name, defaults=defaults)
        for type_name, spec in entries.items()
    ]
