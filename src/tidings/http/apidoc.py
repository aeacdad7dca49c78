"""The OpenAPI document at ``/openapi.json``: FastAPI's, completed in one
place so that it tells the truth about every operation.

Guarantees (pinned by ``tests/server/test_fuzz_api.py``, which also fuzzes the
live server from this document with schemathesis):

* Every error answer an operation can give is declared as
  ``application/problem+json`` with the ``Problem`` schema
  (``tidings.http.problems.PROBLEM_SCHEMA``); FastAPI's
  ``HTTPValidationError`` is gone (the server never answers it).
* Every operation carries a ``security`` entry: ``bearerAuth`` (API keys
  ``tdk_...``, the admin key and user JWTs all travel as Bearer), optional
  for ``/metrics`` (a token only when configured), and an explicit ``[]``
  for the public ones (probes, signed inbound webhooks).
* The raw ASGI endpoints (publish, SSE streams), which FastAPI never sees,
  are documented by hand and completed by the same rules.
* Query parameters that handlers read themselves are declared here
  (``QUERY_PARAMETERS``), so clients and fuzzers know them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from copy import deepcopy  # shared declarations stay unchanged
from typing import Any

from tidings.http import publish
from tidings.http.problems import PROBLEM_JSON, PROBLEM_SCHEMA

Operation = dict[str, Any]
Key = tuple[str, str]  # (method, path)
INBOUND: Key = ("post", "/api/inbound/{name}")  # signed, not bearer
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
BEARER = "bearerAuth"
SECURITY_SCHEMES = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (`tdk_...`), the admin key, or a user JWT "
        "(claims `sub`, `tenant`, `exp`).",
    }
}
# (method, path) -> security requirement; everything else needs bearerAuth.
PUBLIC: dict[Key, list[dict[str, list[str]]]] = {
    ("get", "/healthz"): [],
    ("get", "/readyz"): [],
    ("get", "/metrics"): [{}, {BEARER: []}],  # a bearer token only when one is configured
    INBOUND: [],  # authenticated by the body's signature
}
# Operations that answer only these problems (probes none: readyz's 503 is
# its own JSON; /metrics a 401 when a token is configured).
ONLY_ERRORS: dict[Key, frozenset[int]] = {
    ("get", "/healthz"): frozenset(),
    ("get", "/readyz"): frozenset(),
    ("get", "/metrics"): frozenset({401}),
}


def _has_input(op: Operation) -> bool:
    return bool(op.get("parameters") or op.get("requestBody"))


def _bearer(op: Operation) -> bool:
    return any(requirement for requirement in op.get("security", []))


def _writes(key: Key) -> bool:
    return key[0] != "get"  # any write may carry a body, declared or not


# status, description, which operations can answer it ((method, path), operation)
ERROR_RULES: tuple[tuple[int, str, Callable[[Key, Operation], bool]], ...] = (
    (400, "malformed JSON body", lambda k, op: _writes(k)),
    (
        401,
        "missing, expired or forged credential (or signature)",
        lambda k, op: _bearer(op) or k == INBOUND,
    ),
    (403, "the credential may not do this (or unknown user or tenant)", lambda k, op: _bearer(op)),
    (404, "no such resource (or unknown tenant)", lambda k, op: _has_input(op)),
    (409, "conflicts with the current state (lifecycle, duplicate)", lambda k, op: _writes(k)),
    (413, "body over the size limit", lambda k, op: _writes(k)),
    (415, "unsupported content type", lambda k, op: "requestBody" in op),
    (
        422,
        "invalid input: the problem's `field` names the parameter or JSON pointer",
        lambda k, op: _has_input(op),
    ),
    (429, "a limit was reached; retry after Retry-After", lambda k, op: _bearer(op)),
    (503, "database unavailable; retry after Retry-After", lambda k, op: True),
)


def _string(name: str, description: str = "", **schema: Any) -> dict[str, Any]:
    parameter: dict[str, Any] = {
        "name": name,
        "in": "query",
        "required": False,
        "schema": {"type": "string", **schema},
    }
    if description:
        parameter["description"] = description
    return parameter


def _integer(name: str, low: int, high: int, description: str = "") -> dict[str, Any]:
    parameter = _string(name, description)
    parameter["schema"] = {"type": "integer", "minimum": low, "maximum": high}
    return parameter


_TENANT = _string("tenantId", "the tenant (admin credentials not bound to one)")
_TIME_RANGE = [
    _string("since", "ISO-8601 instant", format="date-time"),
    _string("until", "ISO-8601 instant", format="date-time"),
]
_CATALOG_TENANT = [_TENANT]
QUERY_PARAMETERS: dict[Key, list[dict[str, Any]]] = {
    ("get", "/api/events/log"): [
        _string("types", "type globs, comma-separated: qms.*,TICKET_*"),
        _integer("limit", 1, 500),
        _string("cursor", "nextCursor of the previous page", pattern="^[0-9]+$"),
        _string("order", enum=["asc", "desc"]),
        _string("entityType"),
        _string("entityId"),
        *_TIME_RANGE,
        _TENANT,
    ],
    ("get", "/api/admin/jobs"): [
        _string("status", "pending, succeeded, failed, dead (comma-separated)"),
        _TENANT,
        _string("ruleId"),
        _string("eventId"),
        _string("type"),
        *_TIME_RANGE,
        _integer("limit", 1, 1000),
        _string("before", "next of the previous page", pattern="^[0-9]+$"),
    ],
    ("get", "/api/admin/rules"): [_TENANT],
    ("get", "/api/admin/events/{event_id}/processing"): [_TENANT],
    ("get", "/api/catalog"): [
        _string("module"),
        _string("category"),
        _string("q", "text search"),
        _string("active", enum=["true", "false"]),
        _TENANT,
    ],
    ("get", "/api/catalog/asyncapi.json"): _CATALOG_TENANT,
    ("get", "/api/catalog/schemas.json"): _CATALOG_TENANT,
    ("get", "/api/catalog/{event_type}"): _CATALOG_TENANT,
    ("post", "/api/admin/catalog/{tenant_id}/types/{event_type}/versions"): [
        _string("requireCompatible", "refuse (409) an incompatible version", enum=["true", "false"])
    ],
}


def _header(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


# The signed inbound webhook reads its body and headers itself.
INBOUND_DOC: Operation = {
    "description": "Authenticated by the integration's signature over the raw body: "
    "Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`) or "
    "HMAC-SHA256 (`X-Timestamp`, `X-Signature: sha256=<hex>`, optional `X-Webhook-Id`).",
    "parameters": [
        _header("webhook-id", "Standard Webhooks: message id (deduplicates)"),
        _header("webhook-timestamp", "Standard Webhooks: Unix seconds"),
        _header("webhook-signature", "Standard Webhooks: v1,<base64>"),
        _header("X-Timestamp", "hmac-sha256: Unix seconds"),
        _header("X-Signature", "hmac-sha256: sha256=<hex>"),
        _header("X-Webhook-Id", "hmac-sha256: message id (deduplicates)"),
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["type"],
                    "properties": {"type": {"type": "string"}, "tenantId": {"type": "string"}},
                }
            }
        },
    },
}
STREAM_DOC: Operation = {
    "tags": ["events"],
    "summary": "Live event stream (Server-Sent Events)",
    "description": (
        'text/event-stream. First message: {"type": "connected"}. Each event: '
        "`id: <position>` and `data: <envelope JSON>`. Resume with Last-Event-ID (header) "
        "or lastEventId (query). Narrow with types=qms.*,TICKET_*. Browsers authenticate "
        "with ticket= (POST /api/events/tickets)."
    ),
    "parameters": [
        _string("types", "type globs, comma-separated: qms.*,TICKET_*"),
        _string("lastEventId", "resume after this log position", pattern="^[0-9]+$"),
        {
            **_header("Last-Event-ID", "resume after this log position (wins over lastEventId)"),
            "schema": {"type": "string", "pattern": "^[0-9]+$"},
        },
        _string("ticket", "single-use stream ticket (browsers)"),
        _TENANT,
    ],
    "responses": {
        "200": {"description": "the stream", "content": {"text/event-stream": {}}},
        "204": {"description": "streams of this user were closed on purpose; do not retry"},
    },
}
# Success bodies that are cheap to state exactly (others are "any JSON").
SUCCESS_SCHEMAS: dict[Key, dict[str, Any]] = {
    ("get", "/healthz"): {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"const": "ok"}},
    },
    ("post", "/api/events/tickets"): {
        "type": "object",
        "required": ["ticket", "expiresIn"],
        "properties": {"ticket": {"type": "string"}, "expiresIn": {"type": "integer"}},
    },
    ("get", "/api/events/log"): {
        "type": "object",
        "required": ["items", "nextCursor"],
        "properties": {
            "items": {"type": "array", "items": {"type": "object"}},
            "nextCursor": {"type": ["string", "null"]},
        },
    },
    ("get", "/api/notifications/unread-count"): {
        "type": "object",
        "required": ["count"],
        "properties": {"count": {"type": "integer", "minimum": 0}},
    },
}
# Success answers FastAPI cannot see (handlers that pick their own status).
SUCCESS_STATUSES: dict[Key, dict[str, str]] = {
    ("post", "/api/events/tickets"): {"201": "the ticket (single use)"},
    ("put", "/api/admin/tenants/{tenant_id}"): {"200": "updated", "201": "created"},
}
_READY = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"type": "string"}, "detail": {"type": "string"}},
}


def complete(schema: dict[str, Any], stream_paths: Iterable[str]) -> dict[str, Any]:
    """FastAPI's document ``schema``, completed as the module docstring says
    (in place; returned for convenience)."""
    paths = schema.setdefault("paths", {})
    for path in stream_paths:
        paths.setdefault(path, {})["get"] = deepcopy(STREAM_DOC)
    for path, operations in publish.OPENAPI_PATHS.items():
        paths.setdefault(path, {}).update(deepcopy(operations))
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    components["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in paths.items():
        for method, op in operations.items():
            _complete_operation(method, path, op)
    return schema


def _complete_operation(method: str, path: str, op: Operation) -> None:
    key = (method, path)
    op["security"] = PUBLIC.get(key, [{BEARER: []}])
    if key == INBOUND:
        extra = deepcopy(INBOUND_DOC)
        op["parameters"] = [*op.get("parameters", []), *extra.pop("parameters")]
        op.update(extra)
    if key in QUERY_PARAMETERS:
        op["parameters"] = [*op.get("parameters", []), *deepcopy(QUERY_PARAMETERS[key])]
    responses = op.setdefault("responses", {})
    _declare_success(key, responses)
    _declare_problems(key, op, responses)


def _declare_success(key: Key, responses: dict[str, Any]) -> None:
    if key in SUCCESS_STATUSES:
        _success_statuses(responses, SUCCESS_STATUSES[key])
    if key in SUCCESS_SCHEMAS:
        (status,) = (code for code in responses if code.startswith("2"))
        responses[status]["content"] = {"application/json": {"schema": SUCCESS_SCHEMAS[key]}}
    if key == ("get", "/readyz"):
        ready = {"application/json": {"schema": _READY}}
        responses["200"]["content"] = ready
        responses["503"] = {"description": "not ready (starting, or no database)", "content": ready}
    if key == ("get", "/metrics"):
        responses["200"]["content"] = {"text/plain": {"schema": {"type": "string"}}}


def _declare_problems(key: Key, op: Operation, responses: dict[str, Any]) -> None:
    only = ONLY_ERRORS.get(key)
    for status, description, applies in ERROR_RULES:
        declared = responses.get(str(status))
        wanted = applies(key, op) if only is None else status in only
        if declared is None and not wanted:
            continue
        if declared is None or declared.get("description") == "Validation Error":
            declared = {"description": description}  # FastAPI's says HTTPValidationError
        declared["content"] = {PROBLEM_JSON: {"schema": PROBLEM_REF}}
        responses[str(status)] = declared


def _success_statuses(responses: dict[str, Any], statuses: dict[str, str]) -> None:
    """Replace FastAPI's one success answer with ``statuses`` (same content)."""
    (default,) = (code for code in responses if code.startswith("2"))
    content = responses.pop(default).get("content")
    for status, description in statuses.items():
        responses[status] = {"description": description, "content": deepcopy(content)}
