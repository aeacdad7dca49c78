"""Strict scalars and bodies from clients: one parser for each.

Invariants (every HTTP route, raw or FastAPI):

- A whole number in a parameter, header or path (``limit``, ``cursor``,
  ``before``, ``Last-Event-ID``, job ids, ``Content-Length``) is ASCII digits
  only, within its range (at most a signed 64-bit integer): ``²``, fullwidth digits,
  ``+5``, ``1_000`` and ``7450430343536053321728`` are refused with a 4xx
  problem naming the parameter, never parsed by ``int()`` into a 500.
- A time parameter (``since``, ``until``, replay ``from``/``to``) is ASCII
  epoch seconds or an ISO-8601 date-time, and finite (no ``nan``/``inf``).
- A JSON body of the API (FastAPI routes) is at most
  ``Settings.max_api_body_bytes`` (413 before it is parsed, whether it
  declares a Content-Length or is chunked), and holds no integer outside
  signed 64 bits and no NaN/Infinity (422 naming the field by JSON pointer):
  what the API stores is exactly what the client sent.
- Publishing accepts only ``application/json`` and CloudEvents' structured
  (``/api/events``) or batch (``/api/events/batch``) media types (415).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any, overload

from tidings.core import cloudevents
from tidings.core.envelope import parse_instant
from tidings.core.pointers import pointer_token
from tidings.errors import InvalidInput, MalformedJSON, PayloadTooLarge, TidingsError
from tidings.http.problems import send_problem

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
JSON_MEDIA_TYPE = "application/json"
# What each publish path accepts: the native envelope, or CloudEvents.
PUBLISH_MEDIA_TYPES = frozenset({JSON_MEDIA_TYPE, cloudevents.STRUCTURED})
BATCH_MEDIA_TYPES = frozenset({JSON_MEDIA_TYPE, cloudevents.BATCH})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_EPOCH_RE = re.compile(r"-?[0-9]{1,12}(\.[0-9]{1,9})?")
Scope = dict[str, Any]


class UnsupportedMediaType(InvalidInput):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


@overload
def ascii_int(value: str, field: str, low: int = 0, high: int = INT64_MAX) -> int: ...
@overload
def ascii_int(value: None, field: str, low: int = 0, high: int = INT64_MAX) -> None: ...
@overload
def ascii_int(value: str | None, field: str, low: int = 0, high: int = INT64_MAX) -> int | None: ...
def ascii_int(value: str | None, field: str, low: int = 0, high: int = INT64_MAX) -> int | None:
    """``value`` as a whole number from ``low`` to ``high``; None stays None."""
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 19) or not (
        low <= int(value) <= high
    ):
        raise InvalidInput(f"{field} must be a whole number from {low} to {high}", field=field)
    return int(value)


def instant(value: str, field: str) -> float:
    """Epoch seconds (ASCII digits, up to nine decimals) or an ISO-8601
    date-time, as finite epoch seconds: ``nan``, ``inf``, ``1e999`` and
    non-ASCII digits are refused."""
    if _EPOCH_RE.fullmatch(value):
        return float(value)
    if not (value.isascii() and value[:4].isdigit() and len(value) <= 40):
        raise InvalidInput(f"{field} must be an ISO-8601 date-time or epoch seconds", field=field)
    seconds = parse_instant(value, field)
    if not math.isfinite(seconds):
        raise InvalidInput(f"{field} must be an ISO-8601 date-time or epoch seconds", field=field)
    return seconds


def media_type(value: str | None) -> str:
    """The media type of a Content-Type header, without parameters, lower case."""
    return (value or "").partition(";")[0].strip().lower()


def check_publish_media_type(value: str | None, *, batch: bool = False) -> str:
    """The media type of a publish request (415 for any other)."""
    if value == JSON_MEDIA_TYPE:  # the common case: no parameters
        return JSON_MEDIA_TYPE
    accepted = BATCH_MEDIA_TYPES if batch else PUBLISH_MEDIA_TYPES
    kind = media_type(value)
    if kind not in accepted:
        send = " or ".join(sorted(accepted))
        raise UnsupportedMediaType(
            f"Content-Type {value or '(none)'!r} is not accepted; send {send}",
            field="Content-Type",
        )
    return kind


def declared_length(value: str | None, limit: int) -> None:
    """Refuse a Content-Length over ``limit`` before reading anything."""
    declared = ascii_int(value, "Content-Length")
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit}", field="")


# -- strict JSON ----------------------------------------------------------


class _Refused:
    """Stands in for a number JSON may carry but the API does not store."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _int(text: str) -> int | _Refused:
    if len(text.lstrip("-")) > 19 or not INT64_MIN <= int(text) <= INT64_MAX:
        return _Refused("integers must fit in signed 64 bits")
    return int(text)


def _float(text: str) -> float | _Refused:
    value = float(text)
    return value if math.isfinite(value) else _Refused("numbers must be finite")


def _constant(name: str) -> _Refused:
    return _Refused(f"{name} is not a JSON number")


_LONE_SURROGATE = _Refused("strings must be valid Unicode (no lone surrogate escapes)")


def _unicode(text: str) -> bool:
    """False for a string holding a lone surrogate (JSON's ``"\\ud800"``),
    which no UTF-8 store or encoder can write."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refusals(value: Any, pointer: str = "") -> Iterator[tuple[str, _Refused]]:
    stack = [(pointer, value)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, _Refused):
            yield where, node
        elif isinstance(node, str) and not _unicode(node):
            yield where, _LONE_SURROGATE
        elif isinstance(node, dict):
            if not all(_unicode(k) for k in node):
                yield where, _LONE_SURROGATE  # the object: a key that cannot be named
            stack += [(f"{where}/{pointer_token(k)}", v) for k, v in reversed(node.items())]
        elif isinstance(node, list):
            stack += [(f"{where}/{i}", v) for i, v in reversed(list(enumerate(node)))]


def check_json(body: bytes) -> None:
    """Refuse a JSON body the API would not store as sent."""
    try:
        value = json.loads(body, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedJSON(f"the body is not valid JSON: {exc}", field="") from None
    except RecursionError:
        raise InvalidInput("the body nests too deeply", field="") from None
    for pointer, refused in _refusals(value):
        raise InvalidInput(refused.reason, field=pointer)


def _is_json(content_type: str | None) -> bool:
    kind = media_type(content_type)
    return not kind or kind == "application/json" or kind.endswith("+json")


class StrictBodies:
    """ASGI middleware in front of the FastAPI routes: reads at most
    ``limit`` bytes of a request body, checks it is strict JSON (when it is
    JSON at all), then hands the same bytes to the route."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        try:
            body = await read_body(scope, receive, self.limit)
            if body and _is_json(header(scope, b"content-type")):
                check_json(body)
        except TidingsError as error:
            await send_problem(send, error, scope["path"])
            return
        await self.app(scope, _replay(body, receive), send)


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def read_body(scope: Scope, receive: Any, limit: int) -> bytes:
    """A raw ASGI request body, refused (413) past ``limit`` bytes: at once
    for a declared Content-Length, while reading for a chunked body."""
    declared_length(header(scope, b"content-length"), limit)
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidInput("the client went away before sending the body")
        body += message.get("body", b"")
        if len(body) > limit:
            raise PayloadTooLarge(f"the body is over the limit of {limit} bytes", field="")
        if not message.get("more_body", False):
            return bytes(body)


def _replay(body: bytes, receive: Any) -> Any:
    sent = False

    async def replayed() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return await receive()  # type: ignore[no-any-return]
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
