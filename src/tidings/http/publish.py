"""Publishing over HTTP: ``POST /api/events`` and ``POST /api/events/batch``.

Raw ASGI, routed by the front router ahead of FastAPI: the publish path is
the hottest request path, and the framework's routing and middleware cost
more than everything Tidings itself does per event. The OpenAPI document
still describes both (``OPENAPI_PATHS``).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from tidings.errors import InvalidInput, TidingsError
from tidings.http.observe import SCOPE_KEY as REQUEST_ID_KEY
from tidings.http.params import check_publish_media_type, header, read_body
from tidings.http.problems import send_problem
from tidings.node import Tidings
from tidings.store.base import NewEvent

log = logging.getLogger("tidings.http")
Scope = dict[str, Any]
JSON_HEADERS = [(b"content-type", b"application/json")]

ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "id": {"type": "string", "description": "Producer id; makes the publish idempotent"},
        "type": {"type": "string", "example": "qms.car.updated"},
        "tenantId": {"type": "string", "description": "Required for keys not bound to a tenant"},
        "entityType": {"type": "string"},
        "entityId": {"type": "string"},
        "action": {"type": "string", "example": "UPDATED"},
        "timestamp": {"type": "string", "format": "date-time"},
        "actor": {"type": "object"},
        "metadata": {"type": "object"},
        "data": {"type": "object"},
        "audiences": {
            "type": "array",
            "items": {"type": "string"},
            "example": ["permission:qms.read"],
        },
        "schema": {"type": "string", "example": "payload.QmsCarUpdated.v1"},
    },
}
_ACCEPTED = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "position": {"type": "integer"}},
}
_PROBLEMS = {
    str(code): {"description": text, "content": {"application/problem+json": {}}}
    for code, text in [
        (400, "malformed JSON"),
        (401, "missing or bad credential"),
        (403, "credential may not publish to this tenant"),
        (413, "event or body over the size limit"),
        (415, "Content-Type is not application/json"),
        (422, "invalid envelope, unknown type, schema violation, bad audience"),
        (429, "over the key's publish rate; retry after Retry-After (same event id)"),
        (503, "database unavailable; retry after Retry-After"),
    ]
}
OPENAPI_PATHS: dict[str, Any] = {
    "/api/events": {
        "post": {
            "tags": ["events"],
            "summary": "Publish one event",
            "description": "202 once durable. The same `id` (or `Idempotency-Key`) again gets the "
            "same answer and stores nothing.",
            "parameters": [
                {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ENVELOPE_SCHEMA}},
            },
            "responses": {
                "202": {
                    "description": "durable",
                    "content": {"application/json": {"schema": _ACCEPTED}},
                },
                **_PROBLEMS,
            },
        }
    },
    "/api/events/batch": {
        "post": {
            "tags": ["events"],
            "summary": "Publish several events atomically",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["events"],
                            "properties": {"events": {"type": "array", "items": ENVELOPE_SCHEMA}},
                        }
                    }
                },
            },
            "responses": {
                "202": {
                    "description": "all durable, in order",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"results": {"type": "array", "items": _ACCEPTED}},
                            }
                        }
                    },
                },
                **_PROBLEMS,
            },
        }
    },
}


def _from_request(prepared: list[NewEvent], scope: Scope) -> None:
    """Tag the events with the request's id (the front router's), which
    their jobs carry."""
    rid = scope.get(REQUEST_ID_KEY)
    if rid is not None:
        for new in prepared:
            new.request_id = rid


async def _publish_one(tidings: Tidings, scope: Scope, receive: Any) -> tuple[Any, list[Any]]:
    principal = await tidings.auth.authenticate(header(scope, b"authorization"))
    check_publish_media_type(header(scope, b"content-type"))
    body = await read_body(scope, receive, tidings.settings.max_event_bytes)
    key = header(scope, b"idempotency-key")
    if key is not None and not 0 < len(key) <= 256:
        raise InvalidInput("Idempotency-Key must be 1 to 256 characters", field="Idempotency-Key")
    prepared = tidings.ingest.prepare_body(body, principal, batch=False, idempotency_key=key)
    _from_request(prepared, scope)
    tidings.limiter.take(principal, 1)
    (result,) = await tidings.append(prepared)
    extra = [(b"idempotent-replayed", b"true")] if result.duplicate else []
    return {"id": result.id, "position": result.position}, extra


async def _publish_batch(tidings: Tidings, scope: Scope, receive: Any) -> tuple[Any, list[Any]]:
    principal = await tidings.auth.authenticate(header(scope, b"authorization"))
    check_publish_media_type(header(scope, b"content-type"))
    body = await read_body(scope, receive, tidings.settings.max_body_bytes)
    prepared = tidings.ingest.prepare_body(
        body, principal, batch=True, max_batch=tidings.settings.max_batch
    )
    _from_request(prepared, scope)
    tidings.limiter.take(principal, len(prepared))
    results = await tidings.append(prepared)
    return {"results": [{"id": r.id, "position": r.position} for r in results]}, []


async def publish_endpoint(tidings: Tidings, scope: Scope, receive: Any, send: Any) -> None:
    handler = _publish_batch if scope["path"].endswith("/batch") else _publish_one
    try:
        payload, extra = await handler(tidings, scope, receive)
    except TidingsError as error:
        await send_problem(send, error, scope["path"])
        return
    except Exception:  # a bug: still a problem document, never a plain-text 500
        log.exception("unhandled error on %s", scope["path"])
        await send_problem(send, TidingsError("an unexpected error occurred"), scope["path"])
        return
    body = orjson.dumps(payload)
    headers = [*JSON_HEADERS, (b"content-length", b"%d" % len(body)), *extra]
    await send({"type": "http.response.start", "status": 202, "headers": headers})
    await send({"type": "http.response.body", "body": body})
