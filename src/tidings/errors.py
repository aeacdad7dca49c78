"""The one error tree of Tidings.

Every error a client can cause or observe is a :class:`TidingsError`. Each
carries a stable ``code``, the HTTP ``status`` it maps to, whether retrying
can help, and (for input errors) the offending ``field`` as a JSON pointer.
The HTTP layer turns them into RFC 9457 problem documents in one place
(``tidings.http.problems``); the CLI prints ``str(error)`` on one line.

    TidingsError
    ├── InvalidInput          400/422  bad JSON, bad field, schema violation
    │   └── PayloadTooLarge   413      body or event over the size limit
    ├── Unauthorized          401      missing, expired or forged credential
    ├── Forbidden             403      authenticated but not allowed
    │   └── StreamGone        204      a stream closed on purpose (stay away)
    ├── NotFound              404
    ├── Conflict              409      invalid state transition, duplicates
    ├── RateLimited           429      retryable
    └── Unavailable           503      database down; retryable
"""

from __future__ import annotations

from typing import Any


class TidingsError(Exception):
    """Root of every Tidings error."""

    status: int = 500
    code: str = "internal"
    title: str = "Internal error"
    retryable: bool = False

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra

    def __str__(self) -> str:
        if self.field:
            return f"{self.detail} (field {self.field})"
        return self.detail


class InvalidInput(TidingsError):
    status = 422
    code = "invalid_input"
    title = "Invalid input"


class MalformedJSON(InvalidInput):
    status = 400
    code = "malformed_json"
    title = "Malformed JSON"


class PayloadTooLarge(InvalidInput):
    status = 413
    code = "payload_too_large"
    title = "Payload too large"


class Unauthorized(TidingsError):
    status = 401
    code = "unauthorized"
    title = "Unauthorized"


class Forbidden(TidingsError):
    status = 403
    code = "forbidden"
    title = "Forbidden"


class StreamGone(Forbidden):
    """The server ended this subscriber's streams on purpose (user deleted,
    tenant suspended). Stream endpoints answer 204 so browsers stop retrying."""

    status = 204
    code = "stream_gone"
    title = "Stream closed"


class NotFound(TidingsError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(TidingsError):
    status = 409
    code = "conflict"
    title = "Conflict"


class RateLimited(TidingsError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"
    retryable = True


class Unavailable(TidingsError):
    status = 503
    code = "unavailable"
    title = "Service unavailable"
    retryable = True


__all__ = [
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "MalformedJSON",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "StreamGone",
    "TidingsError",
    "Unauthorized",
    "Unavailable",
]
