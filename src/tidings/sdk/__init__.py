"""The Python SDK: publish, read history and administer a Tidings server
over HTTP (:class:`TidingsClient`, :class:`AsyncTidingsClient`), and follow
its live stream (:class:`Subscriber`). Errors are the
:mod:`tidings.errors` classes the server's problem documents name.

Importing it loads httpx and a few pure tidings modules (errors, ids, the
SSE parser, the Retry-After parser), never the server: no SQLAlchemy,
alembic, jinja2 or web framework (``tests/sdk/test_exported_members.py``)."""

from tidings.core.ids import new_event_id
from tidings.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    MalformedJSON,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    TidingsError,
    Unauthorized,
    Unavailable,
)
from tidings.sdk.client import AsyncTidingsClient, BaseClient, TidingsClient
from tidings.sdk.subscriber import Subscriber, is_control

__all__ = [
    "AsyncTidingsClient",
    "BaseClient",
    "Conflict",
    "Forbidden",
    "InvalidInput",
    "MalformedJSON",
    "NotFound",
    "PayloadTooLarge",
    "RateLimited",
    "Subscriber",
    "TidingsClient",
    "TidingsError",
    "Unauthorized",
    "Unavailable",
    "is_control",
    "new_event_id",
]
