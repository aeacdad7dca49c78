"""An example envelope of an event type, built from its JSON Schema (pure).

The catalog's packs carry schemas, not examples, so the Integration
Manager shows a plausible envelope made from the schema: every property
(required and optional) with a value of its type, an enum's first member,
a ``const``, ``date-time`` strings as timestamps and ``*Id`` strings as
ids. Bounded: at most :data:`MAX_DEPTH` levels deep.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tidings.core.catalog import EventType

MAX_DEPTH = 6
EXAMPLE_TIME = "2026-01-15T09:30:00Z"


def example_value(schema: Mapping[str, Any], name: str = "", depth: int = 0) -> Any:
    """A value ``schema`` accepts, in the common cases (no ``$ref``)."""
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type")
    for key in ("oneOf", "anyOf"):  # alternatives of a value, not extra rules on an object
        if kind is None and "properties" not in schema and schema.get(key):
            return example_value(schema[key][0], name, depth)
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        if depth >= MAX_DEPTH:
            return {}
        properties = schema.get("properties") or {}
        return {key: example_value(sub, key, depth + 1) for key, sub in properties.items()}
    if kind == "array":
        items = schema.get("items")
        if depth >= MAX_DEPTH or not isinstance(items, Mapping):
            return []
        return [example_value(items, name, depth + 1)]
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return float(schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _example_string(schema, name)


def _example_string(schema: Mapping[str, Any], name: str) -> str:
    form = schema.get("format")
    if form == "date-time" or name.endswith("At"):
        return EXAMPLE_TIME
    if form == "date":
        return EXAMPLE_TIME[:10]
    if form == "email" or name.lower().endswith("email"):
        return "someone@example.com"
    if form in ("uri", "url"):
        return "https://example.com/"
    if name.endswith("Id") or name == "id":
        return f"{name[:-2] or 'id'}-1001"
    return name or "text"


def example_envelope(event_type: EventType, version: int, tenant_id: str) -> dict[str, Any]:
    """A wire envelope of ``event_type`` at ``version``, as published."""
    data = example_value(event_type.versions[version])
    if isinstance(data, dict) and "tenantId" in data:
        data["tenantId"] = tenant_id
    entity = event_type.entity_type or "entity"
    return {
        "id": "evt_01JEXAMPLE0000000000000000",
        "type": event_type.name,
        "tenantId": tenant_id,
        "entityType": entity,
        "entityId": f"{entity}-1001",
        "action": event_type.action,
        "timestamp": EXAMPLE_TIME,
        "actor": {"userId": "user-1001"},
        "metadata": {},
        "data": data if isinstance(data, dict) else {},
        "schema": event_type.ref(version),
    }
