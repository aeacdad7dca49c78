"""The OpenAPI document at ``/openapi.json``: FastAPI's, completed in one
place so that it tells the truth about every operation, and the ``/docs``
page that renders it offline.

Guarantees (pinned by ``tests/server/test_openapi_document.py``, which walks the
live document, and ``tests/server/test_fuzz_api.py``, which fuzzes the live
server from it with schemathesis and checks every answer against it):

* Every operation declares its success answer: a schema for each JSON body
  (the models of :mod:`tidings.http.models`, or the hand-written schemas of
  the raw endpoints), ``text/event-stream`` with the schema of one frame for
  the SSE streams, a 101 with the message protocol for the WebSocket.
* Every error answer an operation can give is declared as
  ``application/problem+json`` with the ``Problem`` schema
  (``tidings.http.problems.PROBLEM_SCHEMA``); FastAPI's
  ``HTTPValidationError`` is gone (the server never answers it). The
  exceptions answer their own JSON (``/readyz``'s 503) or none (a refused
  WebSocket handshake).
* Every operation's ``security`` lists exactly the credential kinds
  :data:`tidings.services.access.OPERATIONS` allows for the operations its route
  names (``x-access``, set by :func:`tidings.http.models.needs`): the admin
  key (``adminKey``), API keys (``apiKey``; roles ``admin``: admin-scoped,
  ``global``: not bound to a tenant) and user JWTs (``userToken``). All
  travel as Bearer. ``/metrics`` takes the metrics token when one is
  configured; the probes and the signed inbound webhook take none (``[]``).
* The raw ASGI endpoints (publish, SSE streams, the WebSocket), which
  FastAPI never sees, are documented by hand and completed by the same
  rules; so are the query parameters that handlers read themselves
  (``QUERY_PARAMETERS``).
* ``/docs`` loads Swagger UI from the copy packaged under
  ``tidings/static/swagger`` (no CDN); ReDoc is not served.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from copy import deepcopy  # shared declarations stay unchanged
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request
from starlette.responses import HTMLResponse

from tidings.http import publish
from tidings.http.models import ACCESS_KEY
from tidings.http.models.events import Envelope, StreamControl
from tidings.http.problems import PROBLEM_JSON, PROBLEM_SCHEMA
from tidings.services.access import OPERATIONS, Kind

Operation = dict[str, Any]
Key = tuple[str, str]  # (method, path)
INBOUND: Key = ("post", "/api/inbound/{name}")  # signed, not bearer
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
ADMIN_KEY = "adminKey"
API_KEY = "apiKey"
USER_TOKEN = "userToken"
METRICS_TOKEN = "metricsToken"
SECURITY_SCHEMES = {
    ADMIN_KEY: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "TIDINGS_ADMIN_KEY",
        "description": "The bootstrap admin key (`TIDINGS_ADMIN_KEY`): every operation.",
    },
    API_KEY: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "tdk_...",
        "description": "An API key (`tdk_...`, POST /api/admin/api-keys). Roles in an "
        "operation's requirement: `admin` (a key with the admin scope), `global` (a key "
        "not bound to a tenant); none: any key, the publish scope included.",
    },
    USER_TOKEN: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A user's JWT (claims `sub`, `tenant`, `exp`), signed with the "
        "configured secret or JWKS. Browsers' streams take a `ticket=` instead.",
    },
    METRICS_TOKEN: {
        "type": "http",
        "scheme": "bearer",
        "description": "The metrics token (`metrics_token`), when one is configured.",
    },
}
Security = list[dict[str, list[str]]]
# (method, path) -> security requirement of operations no credential kind performs
PUBLIC: dict[Key, Security] = {
    ("get", "/healthz"): [],
    ("get", "/readyz"): [],
    ("get", "/metrics"): [{}, {METRICS_TOKEN: []}],  # a token only when one is configured
    INBOUND: [],  # authenticated by the body's signature
}
_KEY_KINDS = frozenset({Kind.GLOBAL_ADMIN, Kind.TENANT_ADMIN, Kind.PUBLISH})
# apiKey roles -> the key kinds they admit
_KEY_ROLES: tuple[tuple[list[str], frozenset[Kind]], ...] = (
    ([], _KEY_KINDS),
    (["admin"], frozenset({Kind.GLOBAL_ADMIN, Kind.TENANT_ADMIN})),
    (["admin", "global"], frozenset({Kind.GLOBAL_ADMIN})),
)


def security_of(operations: Iterable[str]) -> Security:
    """The requirement for a route that performs ``operations`` (one of
    them, depending on its target): every credential kind
    :data:`tidings.services.access.OPERATIONS` allows for any of them, and no other."""
    kinds: frozenset[Kind] = frozenset().union(*(OPERATIONS[o] for o in operations))
    security: Security = []
    if Kind.BOOTSTRAP in kinds:
        security.append({ADMIN_KEY: []})
    keys = kinds & _KEY_KINDS
    if keys:
        (roles,) = [roles for roles, admitted in _KEY_ROLES if admitted == keys]
        security.append({API_KEY: roles})
    if Kind.USER in kinds:
        security.append({USER_TOKEN: []})
    if not security:
        raise ValueError(f"no credential may perform {sorted(operations)}")
    return security


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


def _websocket(op: Operation) -> bool:
    return "101" in op.get("responses", {})


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
# The filters /api/events/log and /api/events/export share.
_LOG_FILTERS: list[dict[str, Any]] = [
    _string("types", "type globs, comma-separated: qms.*,TICKET_*"),
    _string("entityType"),
    _string("entityId"),
    _string("entityIdContains", "text the entity id contains (within a bounded scan)"),
    *_TIME_RANGE,
    _TENANT,
]
QUERY_PARAMETERS: dict[Key, list[dict[str, Any]]] = {
    ("get", "/api/events/log"): [
        _integer("limit", 1, 500),
        _string("cursor", "nextCursor of the previous page", pattern="^[0-9]+$"),
        _string("order", enum=["asc", "desc"]),
        *_LOG_FILTERS,
    ],
    ("get", "/api/events/export"): [
        _string("after", "resume after this log position", pattern="^[0-9]+$"),
        *_LOG_FILTERS,
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
    ("get", "/api/admin/api-keys"): [
        _TENANT,
        _string("revoked", "true: revoked keys only; false: live ones", enum=["true", "false"]),
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
_ENVELOPE_REF = {"$ref": "#/components/schemas/Envelope"}
_CONTROL_REF = {"$ref": "#/components/schemas/StreamControl"}
# Components the hand-written operations refer to (FastAPI sees no route of theirs).
STREAM_MODELS: tuple[type[BaseModel], ...] = (Envelope, StreamControl)
# One Server-Sent Event as a client's parser reads it (OpenAPI 3.1 describes
# each event of a text/event-stream with `schema`; 3.2 would call it itemSchema).
SSE_FRAME: dict[str, Any] = {
    "type": "object",
    "description": "One event of the stream. A `retry:` line comes first; comment lines "
    "(`: keep-alive`) keep idle connections open.",
    "required": ["data"],
    "properties": {
        "id": {
            "type": "string",
            "pattern": "^[0-9]+$",
            "description": "the log position: the resume point (Last-Event-ID)",
        },
        "event": {"type": "string", "description": "always `message`"},
        "retry": {"type": "integer", "description": "reconnect delay in milliseconds"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {"oneOf": [_ENVELOPE_REF, _CONTROL_REF]},
            "description": "an event envelope, or a control message (`type`: connected, "
            "reset, reconnect, closed)",
        },
    },
}
_STREAM_PARAMETERS: list[dict[str, Any]] = [
    _string("types", "type globs, comma-separated: qms.*,TICKET_*"),
    _string("lastEventId", "resume after this log position", pattern="^[0-9]+$"),
    {
        **_header("Last-Event-ID", "resume after this log position (wins over lastEventId)"),
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    _string("ticket", "single-use stream ticket instead of a bearer token (browsers)"),
    _TENANT,
    {
        "name": "format",
        "in": "query",
        "required": False,
        "description": "`cloudevents`: each event as a structured CloudEvent (JSON), control "
        "messages unchanged; `native` (the default): the Tidings envelope",
        "schema": {"type": "string", "enum": ["native", "cloudevents"]},
    },
]
STREAM_DOC: Operation = {
    "tags": ["events"],
    "summary": "Live event stream (Server-Sent Events)",
    "description": (
        'text/event-stream. First message: {"type": "connected"}. Each event: '
        "`id: <position>` and `data: <envelope JSON>`. Resume with Last-Event-ID (header) "
        "or lastEventId (query). Narrow with types=qms.*,TICKET_*. Browsers authenticate "
        "with ticket= (POST /api/events/tickets)."
    ),
    ACCESS_KEY: ["events.read"],
    "parameters": _STREAM_PARAMETERS,
    "responses": {
        "200": {
            "description": "the stream",
            "content": {"text/event-stream": {"schema": SSE_FRAME}},
        },
        "204": {"description": "streams of this user were closed on purpose; do not retry"},
    },
}
WEBSOCKET_PATH = "/ws/events"
WEBSOCKET_DOC: Operation = {
    "tags": ["events"],
    "summary": "Live event stream (WebSocket)",
    "description": (
        "A WebSocket upgrade (`Connection: Upgrade`, `Upgrade: websocket`) with the same "
        "parameters and credentials as the SSE stream (`Authorization` header or "
        "`ticket=`). Server to client only, one JSON text message each: first "
        '`{"type": "connected", "tenantId", "position"}`, then one event envelope per '
        "message (`position` is the resume point for `lastEventId`), and control messages "
        "(`reset`, `reconnect`, `closed`, with `reason` and `lastEventId`) before the "
        "server closes. Close codes: 1012 shutdown and 4001 token expired (reconnect); "
        "4003 user deleted, tenant suspended or key revoked (do not reconnect). Messages "
        "from the client are ignored."
    ),
    ACCESS_KEY: ["events.read"],
    "parameters": _STREAM_PARAMETERS,
    "responses": {
        "101": {
            "description": "switching to the WebSocket protocol; each message is JSON text",
            "content": {"application/json": {"schema": {"oneOf": [_ENVELOPE_REF, _CONTROL_REF]}}},
        },
        "403": {
            "description": "the handshake was refused (credential, parameters or a "
            "connection limit); the reason is not sent"
        },
    },
}
# Success answers FastAPI cannot see (handlers that pick their own status).
SUCCESS_STATUSES: dict[Key, dict[str, str]] = {
    ("put", "/api/admin/tenants/{tenant_id}"): {"200": "updated", "201": "created"},
}
_METRICS = ("get", "/metrics")


def complete(schema: dict[str, Any], stream_paths: Iterable[str]) -> dict[str, Any]:
    """FastAPI's document ``schema``, completed as the module docstring says
    (in place; returned for convenience)."""
    paths = schema.setdefault("paths", {})
    for path in stream_paths:
        paths.setdefault(path, {})["get"] = deepcopy(STREAM_DOC)
    paths.setdefault(WEBSOCKET_PATH, {})["get"] = deepcopy(WEBSOCKET_DOC)
    for path, operations in publish.OPENAPI_PATHS.items():
        for method, op in operations.items():
            paths.setdefault(path, {})[method] = {**deepcopy(op), ACCESS_KEY: ["events.publish"]}
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas.update(model_schemas(STREAM_MODELS))
    schemas["Problem"] = PROBLEM_SCHEMA
    components["securitySchemes"] = SECURITY_SCHEMES
    for path, operations in paths.items():
        for method, op in operations.items():
            _complete_operation(method, path, op)
    return schema


def model_schemas(models: Iterable[type[BaseModel]]) -> dict[str, Any]:
    """The components ``models`` need (themselves and what they refer to),
    as FastAPI would write them: by alias, as serialized."""
    _, document = models_json_schema(
        [(model, "serialization") for model in models],
        ref_template="#/components/schemas/{model}",
    )
    return dict(document.get("$defs", {}))


def _complete_operation(method: str, path: str, op: Operation) -> None:
    key = (method, path)
    op["security"] = PUBLIC[key] if key in PUBLIC else security_of(op[ACCESS_KEY])
    if key == INBOUND:
        extra = deepcopy(INBOUND_DOC)
        op["parameters"] = [*op.get("parameters", []), *extra.pop("parameters")]
        op.update(extra)
    if key in QUERY_PARAMETERS:
        op["parameters"] = [*op.get("parameters", []), *deepcopy(QUERY_PARAMETERS[key])]
    responses = op.setdefault("responses", {})
    _declare_success(key, responses)
    if not _websocket(op):  # a refused handshake is a bare 403, not a problem
        _declare_problems(key, op, responses)


def _declare_success(key: Key, responses: dict[str, Any]) -> None:
    if key in SUCCESS_STATUSES:
        _success_statuses(responses, SUCCESS_STATUSES[key])
    if key == _METRICS:
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
        elif PROBLEM_JSON not in declared.get("content", {PROBLEM_JSON: None}):
            continue  # the operation's own answer (/readyz's 503)
        declared["content"] = {PROBLEM_JSON: {"schema": PROBLEM_REF}}
        responses[str(status)] = declared


def _success_statuses(responses: dict[str, Any], statuses: dict[str, str]) -> None:
    """Replace FastAPI's one success answer with ``statuses`` (same content)."""
    (default,) = (code for code in responses if code.startswith("2"))
    content = responses.pop(default).get("content")
    for status, description in statuses.items():
        responses[status] = {"description": description, "content": deepcopy(content)}


# -- /docs ------------------------------------------------------------------

SWAGGER = "/static/swagger"  # served by the /static mount (tidings.http.pages)


def install_docs(api: FastAPI) -> None:
    """``GET /docs``: Swagger UI from the packaged copy, so the page renders
    without network access. Build ``api`` with ``docs_url=None`` (FastAPI's
    page loads Swagger UI from a CDN) and ``redoc_url=None``."""

    @api.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{api.openapi_url}",
            title=f"{api.title} API",
            swagger_js_url=f"{root}{SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{SWAGGER}/swagger-ui.css",
            swagger_favicon_url=f"{root}{SWAGGER}/favicon-32x32.png",
            swagger_ui_parameters={"persistAuthorization": False},
        )
