"""RFC 9457 problem documents: the one place errors become HTTP answers."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from tidings.errors import StreamGone, TidingsError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("tidings.http")


def problem_body(error: TidingsError, instance: str | None = None) -> dict[str, Any]:
    status = body_status(error)
    body: dict[str, Any] = {
        "type": f"urn:tidings:problem:{error.code}",
        "title": error.title,
        "status": status,
        "detail": error.detail,
        "code": error.code,
        "retryable": error.retryable,
    }
    if error.field is not None:
        body["field"] = error.field
        body["errors"] = [{"pointer": error.field, "detail": error.detail}]
    for key, value in error.extra.items():
        if key not in body and not key.endswith("_hint"):
            body[key] = value
    if instance:
        body["instance"] = instance
    return body


def problem_headers(error: TidingsError) -> dict[str, str]:
    headers = {}
    if error.retryable:
        headers["Retry-After"] = str(error.extra.get("retry_after", 1))
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="tidings"'
    return headers


def problem_response(error: TidingsError, instance: str | None = None) -> Response:
    body = problem_body(error, instance)
    return Response(
        orjson.dumps(body),
        status_code=body["status"],
        media_type=PROBLEM_JSON,
        headers=problem_headers(error),
    )


async def send_problem(send: Any, error: TidingsError, path: str) -> None:
    """A problem answer through a raw ASGI ``send`` (the raw endpoints)."""
    body = orjson.dumps(problem_body(error, path))
    headers = [(b"content-type", PROBLEM_JSON.encode()), (b"content-length", b"%d" % len(body))]
    headers += [(k.lower().encode(), v.encode()) for k, v in problem_headers(error).items()]
    await send({"type": "http.response.start", "status": body_status(error), "headers": headers})
    await send({"type": "http.response.body", "body": body})


def body_status(error: TidingsError) -> int:
    return 403 if isinstance(error, StreamGone) else error.status


def _pointer(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return "/" + "/".join(parts) if parts else ""


async def validation_problem(request: Request, exc: RequestValidationError) -> Response:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    field = _pointer(tuple(first.get("loc", ())))
    body = {
        "type": "urn:tidings:problem:invalid_input",
        "title": "Invalid input",
        "status": 422,
        "detail": f"{field or 'body'}: {first.get('msg')}",
        "code": "invalid_input",
        "retryable": False,
        "field": field,
        "errors": [
            {"pointer": _pointer(tuple(e.get("loc", ()))), "detail": e.get("msg")} for e in errors
        ],
        "instance": request.url.path,
    }
    return Response(orjson.dumps(body), status_code=422, media_type=PROBLEM_JSON)


async def http_problem(request: Request, exc: HTTPException) -> Response:
    body = {
        "type": "about:blank",
        "title": str(exc.detail),
        "status": exc.status_code,
        "detail": str(exc.detail),
        "instance": request.url.path,
    }
    return Response(
        orjson.dumps(body),
        status_code=exc.status_code,
        media_type=PROBLEM_JSON,
        headers=exc.headers,
    )


async def unexpected_problem(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path)
    body = {
        "type": "urn:tidings:problem:internal",
        "title": "Internal error",
        "status": 500,
        "detail": "an unexpected error occurred; it has been logged",
        "instance": request.url.path,
    }
    return Response(orjson.dumps(body), status_code=500, media_type=PROBLEM_JSON)


def install(app: FastAPI) -> None:
    @app.exception_handler(TidingsError)
    async def _tidings(request: Request, exc: TidingsError) -> Response:
        return problem_response(exc, request.url.path)

    app.add_exception_handler(RequestValidationError, validation_problem)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, http_problem)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, unexpected_problem)


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem document: every error answer of the API.",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "example": "urn:tidings:problem:invalid_input"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "stable machine-readable error code"},
        "retryable": {"type": "boolean", "description": "whether retrying can help"},
        "field": {
            "type": "string",
            "description": "the offending input: a JSON pointer into the body, or a "
            "parameter or header name",
        },
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["pointer", "detail"],
                "properties": {"pointer": {"type": "string"}, "detail": {"type": "string"}},
            },
        },
        "instance": {"type": "string", "description": "the request path"},
    },
    "additionalProperties": True,
}
"""The ``Problem`` component of the OpenAPI document: what every function
above produces (``code``, ``retryable`` and ``field`` are left out only by
answers that have none)."""
