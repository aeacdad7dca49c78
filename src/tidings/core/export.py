"""Exports of a catalog: an AsyncAPI 3.0 document and a JSON Schema bundle.

Both key each payload schema by ``<type>.v<N>`` (unique even where two
types share a schema reference, as ``ticket.created`` and
``TICKET_CREATED`` share ``payload.TicketCreated``) and carry the schema
reference as the schema's ``title``. The AsyncAPI document describes the
Tidings hub as the application: it *receives* published events (``POST
/api/events``) and *sends* them to subscribers (``GET /api/events``, SSE).
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tidings.core.catalog import EventType, schema_ref

ASYNCAPI_VERSION = "3.0.0"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Tidings event envelope",
    "description": (
        "The envelope of seed 000 plus tenantId, audiences, schema and the log position."
    ),
    "required": ["id", "type", "tenantId", "action", "timestamp", "data", "audiences", "schema"],
    "properties": {
        "id": {"type": "string", "description": "evt_<ULID>, or the producer's own id"},
        "type": {"type": "string"},
        "tenantId": {"type": "string"},
        "entityType": {"type": ["string", "null"]},
        "entityId": {"type": ["string", "null"]},
        "action": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
        "actor": {
            "type": ["object", "null"],
            "properties": {
                "userId": {"type": "string"},
                "name": {"type": "string"},
                "department": {"type": "string"},
                "actorType": {"type": "string"},
            },
        },
        "metadata": {"type": "object", "description": "Small, for UI routing and filtering"},
        "data": {"type": "object", "description": "The payload, valid against its schema version"},
        "audiences": {"type": "array", "items": {"type": "string"}},
        "schema": {"type": "string", "description": "payload.<PascalEventName>.v<N>"},
        "position": {"type": "integer", "description": "Place in the log (the SSE id)"},
    },
}


def schema_key(event_type: str, version: int) -> str:
    return f"{event_type}.v{version}"


def _summary(event_type: EventType) -> str:
    return event_type.description.get("en") or event_type.title or event_type.name


def _message(event_type: EventType) -> dict[str, Any]:
    refs = [schema_ref(event_type.name, v) for v in sorted(event_type.versions)]
    data_refs = [
        {"$ref": f"#/components/schemas/{schema_key(event_type.name, v)}"}
        for v in sorted(event_type.versions)
    ]
    data = data_refs[0] if len(data_refs) == 1 else {"anyOf": data_refs}
    message: dict[str, Any] = {
        "name": event_type.name,
        "title": event_type.title or event_type.name,
        "summary": _summary(event_type),
        "contentType": "application/json",
        "payload": {
            "allOf": [
                {"$ref": "#/components/schemas/Envelope"},
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": event_type.name},
                        "schema": {"enum": refs},
                        "data": data,
                    },
                },
            ]
        },
        "x-tidings": {
            "module": event_type.module,
            "category": event_type.category,
            "group": event_type.group,
            "description": dict(event_type.description),
            "entityType": event_type.entity_type,
            "action": event_type.action,
            "audiences": list(event_type.audiences),
            "sensitive": dict(event_type.sensitive),
            "active": event_type.active,
            "latestSchema": event_type.ref(),
            "source": f"tenant:{event_type.tenant_id}"
            if event_type.tenant_id
            else f"pack:{event_type.pack}",
        },
    }
    if event_type.category:
        message["tags"] = [{"name": event_type.category}]
    if not event_type.active:
        message["description"] = "Deactivated: publishing this type is refused."
    return message


def _rebase(node: Any, base: str) -> Any:
    """Local ``$ref``s (``#/$defs/x``) re-pointed at the schema's new home."""
    if isinstance(node, dict):
        return {
            k: base + v[1:]
            if k == "$ref" and isinstance(v, str) and v.startswith("#")
            else _rebase(v, base)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rebase(item, base) for item in node]
    return node


def _payload_schema(event_type: EventType, version: int, base: str) -> dict[str, Any]:
    key = schema_key(event_type.name, version)
    schema: dict[str, Any] = _rebase(dict(event_type.versions[version]), f"{base}/{key}")
    schema.pop("$schema", None)
    schema.pop("$id", None)
    schema["title"] = schema_ref(event_type.name, version)
    schema.setdefault("description", _summary(event_type))
    return schema


def asyncapi_document(
    types: Iterable[EventType],
    *,
    title: str,
    version: str,
    description: str = "",
    host: str = "localhost:8000",
    protocol: str = "http",
    stream_path: str = "/api/events",
) -> dict[str, Any]:
    """An AsyncAPI 3.0 document of ``types`` served by a hub at ``host``."""
    ordered = sorted(types, key=lambda t: t.name)
    messages = {t.name: _message(t) for t in ordered}
    schemas: dict[str, Any] = {"Envelope": ENVELOPE_SCHEMA}
    for event_type in ordered:
        for number in sorted(event_type.versions):
            schemas[schema_key(event_type.name, number)] = _payload_schema(
                event_type, number, "#/components/schemas"
            )
    channel_messages = {name: {"$ref": f"#/components/messages/{name}"} for name in messages}
    operation_messages = [{"$ref": f"#/channels/events/messages/{name}"} for name in messages]
    publish_messages = [{"$ref": f"#/channels/publish/messages/{name}"} for name in messages]
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {"title": title, "version": version, "description": description},
        "defaultContentType": "application/json",
        "servers": {
            "tidings": {
                "host": host,
                "protocol": protocol,
                "description": "A Tidings hub: SSE and HTTP on the same origin.",
            }
        },
        "channels": {
            "events": {
                "address": stream_path,
                "title": "Live event stream",
                "description": (
                    "Server-Sent Events. Each event is one message: `id: <position>` and "
                    "`data: <envelope JSON>`. Resume with Last-Event-ID. Only events whose "
                    "audiences match the subscriber are sent; sensitive fields are removed "
                    "for subscribers lacking the permission named in x-tidings.sensitive."
                ),
                "messages": channel_messages,
            },
            "publish": {
                "address": "/api/events",
                "title": "Publish (HTTP POST)",
                "description": "POST one envelope; 202 {id, position} once durable.",
                "messages": dict(channel_messages),
            },
        },
        "operations": {
            "deliverEvents": {
                "action": "send",
                "channel": {"$ref": "#/channels/events"},
                "summary": "The hub streams events to subscribers.",
                "messages": operation_messages,
            },
            "acceptEvents": {
                "action": "receive",
                "channel": {"$ref": "#/channels/publish"},
                "summary": "Producers publish events to the hub.",
                "messages": publish_messages,
            },
        },
        "components": {"messages": messages, "schemas": schemas},
    }


def schema_bundle(types: Iterable[EventType], *, catalog_id: str) -> dict[str, Any]:
    """Every payload schema version as one JSON Schema document (``$defs``)."""
    defs: dict[str, Any] = {}
    for event_type in sorted(types, key=lambda t: t.name):
        for number in sorted(event_type.versions):
            defs[schema_key(event_type.name, number)] = _payload_schema(
                event_type, number, "#/$defs"
            )
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"urn:tidings:catalog:{catalog_id}",
        "title": f"Tidings event payloads ({catalog_id})",
        "description": "Payload schemas keyed <type>.v<N>; each title is its schema reference.",
        "$defs": defs,
    }
