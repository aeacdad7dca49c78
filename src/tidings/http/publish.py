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

from tidings.core import cloudevents
from tidings.errors import InvalidInput, TidingsError
from tidings.http.observe import SCOPE_KEY as REQUEST_ID_KEY
from tidings.http.params import (
    JSON_MEDIA_TYPE,
    check_json,
    check_publish_media_type,
    header,
    media_type,
    read_body,
)
from tidings.http.problems import send_problem
from tidings.node import Tidings
from tidings.services.auth import Principal
from tidings.store.base import NewEvent

log = logging.getLogger("tidings.http")
Scope = dict[str, Any]
JSON_HEADERS = [(b"content-type", b"application/json")]
BINARY_MODE = "binary"  # a CloudEvent in binary mode: ce-* headers, the data as the body

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
_EXTENSION = {"type": "string"}
CLOUDEVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A CloudEvents 1.0 event in structured mode (docs/CLOUDEVENTS.md has the "
    "mapping to the envelope)",
    "required": ["specversion", "id", "source", "type"],
    "properties": {
        "specversion": {"type": "string", "enum": ["1.0"]},
        "id": {"type": "string", "description": "The producer id: publishing is idempotent"},
        "source": {
            "type": "string",
            "description": "`/tenants/<tenantId>` names the tenant when `tenantid` is absent",
        },
        "type": {"type": "string", "example": "qms.car.updated"},
        "subject": {"type": "string", "description": "entityId"},
        "time": {"type": "string", "format": "date-time", "description": "timestamp"},
        "datacontenttype": {"type": "string", "example": "application/json"},
        "dataschema": {"type": "string", "example": "urn:tidings:schema:payload.QmsCarUpdated.v1"},
        "data": {"type": "object"},
        "tenantid": _EXTENSION,
        "entitytype": _EXTENSION,
        "action": _EXTENSION,
        "audiences": {**_EXTENSION, "description": "comma-separated audiences"},
        "actor": {**_EXTENSION, "description": "the actor object as JSON text"},
        "metadata": {**_EXTENSION, "description": "the metadata object as JSON text"},
    },
}
_BINARY_NOTE = (
    " CloudEvents are accepted too: structured mode (`application/cloudevents+json`) and "
    "binary mode (`ce-specversion`, `ce-id`, `ce-source`, `ce-type` and further `ce-*` "
    "headers, the data as a JSON body); errors then name the CloudEvents attribute "
    "(`/type`, or `ce-type` in binary mode)."
)
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
        (415, "Content-Type is not application/json or a CloudEvents media type"),
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
            "same answer and stores nothing." + _BINARY_NOTE,
            "parameters": [
                {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": ENVELOPE_SCHEMA},
                    "application/cloudevents+json": {"schema": CLOUDEVENT_SCHEMA},
                },
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
            "description": "All or none. Also CloudEvents' batch mode "
            "(`application/cloudevents-batch+json`: a JSON array of structured events; "
            "errors name `/<index>/<attribute>`).",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["events"],
                            "properties": {"events": {"type": "array", "items": ENVELOPE_SCHEMA}},
                        }
                    },
                    "application/cloudevents-batch+json": {
                        "schema": {"type": "array", "minItems": 1, "items": CLOUDEVENT_SCHEMA}
                    },
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


def _publish_headers(scope: Scope) -> tuple[str | None, str | None, str | None, bool]:
    """Authorization, Content-Type, Idempotency-Key and whether the request
    is a binary-mode CloudEvent (``ce-specversion``), in one pass."""
    authorization = content_type = key = None
    binary = False
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
        elif name == b"content-type":
            content_type = value.decode("latin-1")
        elif name == b"idempotency-key":
            key = value.decode("latin-1")
        elif name == b"ce-specversion":
            binary = True
    return authorization, content_type, key, binary


def _from_request(prepared: list[NewEvent], scope: Scope) -> None:
    """Tag the events with the request's id (the front router's), which
    their jobs carry."""
    rid = scope.get(REQUEST_ID_KEY)
    if rid is not None:
        for new in prepared:
            new.request_id = rid


async def _publish_one(tidings: Tidings, scope: Scope, receive: Any) -> tuple[Any, list[Any]]:
    authorization, content_type, key, binary = _publish_headers(scope)
    principal = await tidings.auth.authenticate(authorization)
    kind = check_publish_media_type(content_type) if not binary else BINARY_MODE
    if binary and media_type(content_type) == cloudevents.STRUCTURED:
        binary = False  # the HTTP binding: the media type makes it structured mode
        kind = cloudevents.STRUCTURED
    body = await read_body(scope, receive, tidings.settings.max_event_bytes)
    if key is not None and not 0 < len(key) <= 256:
        raise InvalidInput("Idempotency-Key must be 1 to 256 characters", field="Idempotency-Key")
    if kind == JSON_MEDIA_TYPE:
        prepared = tidings.ingest.prepare_body(body, principal, batch=False, idempotency_key=key)
        _from_request(prepared, scope)
        tidings.limiter.take(principal, 1)
        (result,) = await tidings.append(prepared)
    else:
        prepared = [_cloudevent(tidings, scope, body, principal, key, binary=binary)]
        _from_request(prepared, scope)
        tidings.limiter.take(principal, 1)
        (result,) = await _append_cloudevents(tidings, prepared, binary=binary)
    extra = [(b"idempotent-replayed", b"true")] if result.duplicate else []
    return {"id": result.id, "position": result.position}, extra


async def _publish_batch(tidings: Tidings, scope: Scope, receive: Any) -> tuple[Any, list[Any]]:
    principal = await tidings.auth.authenticate(header(scope, b"authorization"))
    kind = check_publish_media_type(header(scope, b"content-type"), batch=True)
    body = await read_body(scope, receive, tidings.settings.max_body_bytes)
    if kind == JSON_MEDIA_TYPE:
        prepared = tidings.ingest.prepare_body(
            body, principal, batch=True, max_batch=tidings.settings.max_batch
        )
        _from_request(prepared, scope)
        tidings.limiter.take(principal, len(prepared))
        results = await tidings.append(prepared)
    else:
        check_json(body)
        events = cloudevents.read_batch(body, tidings.settings.max_batch)
        prepared = [
            _ingest_cloudevent(tidings, event, sent, principal, None, pointer=f"/{i}")
            for i, (event, sent) in enumerate(events)
        ]
        _from_request(prepared, scope)
        tidings.limiter.take(principal, len(prepared))
        results = await _append_cloudevents(tidings, prepared, batch=True)
    return {"results": [{"id": r.id, "position": r.position} for r in results]}, []


def _cloudevent(
    tidings: Tidings,
    scope: Scope,
    body: bytes,
    principal: Principal,
    key: str | None,
    *,
    binary: bool,
) -> NewEvent:
    """One CloudEvent, structured or binary, as the event to append. The
    body is strict JSON first (as every API body), then the SDK's."""
    if not binary:
        check_json(body)
        event, sent = cloudevents.read_structured(body)
        return _ingest_cloudevent(tidings, event, sent, principal, key)
    headers = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in scope["headers"]
        if name.startswith(b"ce-") or name == b"content-type"
    }
    cloudevents.check_binary_headers(headers)
    if body:
        check_json(body)  # its pointers point into the body: the data
    try:
        event = cloudevents.read_binary(headers, body)
        return _ingest_cloudevent(tidings, event, cloudevents.binary_sent(headers), principal, key)
    except TidingsError as exc:
        exc.field = cloudevents.binary_field(exc.field)
        raise


def _ingest_cloudevent(
    tidings: Tidings,
    event: Any,
    sent: frozenset[str],
    principal: Principal,
    key: str | None,
    *,
    pointer: str = "",
) -> NewEvent:
    """The CloudEvent mapped to the native envelope, then the native path
    (validation, catalog, audiences, idempotency on ``id``); an error
    names the CloudEvents attribute (``/subject`` for ``entityId``)."""
    try:
        envelope = cloudevents.to_envelope(event, sent)
        try:
            return tidings.ingest.prepare(envelope, principal, idempotency_key=key)
        except TidingsError as exc:
            exc.field = cloudevents.cloudevent_field(exc.field)
            raise
    except TidingsError as exc:
        if pointer:
            exc.field = pointer + (exc.field or "")
        raise


async def _append_cloudevents(
    tidings: Tidings, prepared: list[NewEvent], *, batch: bool = False, binary: bool = False
) -> list[Any]:
    """Append as natively; the tenant check's error names ``tenantid``."""
    try:
        return await tidings.append(prepared, pointer="/")
    except TidingsError as exc:
        if batch and len(prepared) == 1 and exc.field:  # the node names no index then
            exc.field = "/0" + exc.field
        exc.field = cloudevents.cloudevent_field(exc.field, batch=batch)
        if binary:
            exc.field = cloudevents.binary_field(exc.field)
        raise


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
