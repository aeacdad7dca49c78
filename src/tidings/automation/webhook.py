"""The ``webhook`` action: an outbound POST per the Standard Webhooks spec.

The body is ``{"type", "timestamp", "data"}``, or with ``cloudevents``
the event as a CloudEvent (``structured``: the whole CloudEvent as the
JSON body; ``binary``: ``ce-*`` headers and the event's data as the body;
``core/cloudevents.py`` is the mapping). The signature always covers the
body actually sent (in binary mode the data: the ``ce-*`` headers are not
signed, as Standard Webhooks signs id, timestamp and body only);
``webhook-id`` stays the
same for every attempt of one job, so receivers can de-duplicate retries;
``webhook-signature`` carries one ``v1,<base64>`` per secret, so during a
rotation (new secret first, then the previous ones) a receiver holding
either verifies the call.

``deliver_webhook`` never raises for network or HTTP trouble: it returns an
:class:`ActionOutcome`. Redirects are not followed (a redirect could lead
past the URL checks), 410 Gone disables the rule, and 429/503 pass on the
receiver's ``Retry-After``.

The address checked is the address connected to: deliveries go through
:func:`webhook_client`, whose network backend resolves each new
connection's host once, checks every address against the SSRF policy
(``automation/urls.py``) and connects to one of exactly those addresses.
The URL keeps its host name, so the ``Host`` header, TLS SNI and
certificate verification are for that name, and pooled connections are
keyed by it (a connection is only ever reused for the name it was checked
and verified for).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
import re
import secrets as secrets_module
import ssl
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import httpcore
import httpx
import orjson
from standardwebhooks.webhooks import Webhook

from tidings.automation.outcome import ActionOutcome
from tidings.automation.urls import (
    Resolver,
    UrlProblem,
    UrlRefused,
    check_webhook_url,
    checked_addresses,
    system_resolver,
)
from tidings.core import cloudevents as ce
from tidings.core.envelope import iso_utc
from tidings.core.retry import parse_retry_after
from tidings.errors import InvalidInput

USER_AGENT = "Tidings-Webhooks/1"
SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 16
MAX_SECRET_CHARS = 256
DETAIL_BODY_CHARS = 200
_READ_LIMIT = 64 * 1024  # read this much of a response (lets the connection be reused)
# Headers the action owns; caller headers cannot replace them.
_RESERVED = frozenset({"content-type", "content-length", "host", "transfer-encoding", "connection"})
_TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,128}$")
CLOUDEVENTS_MODES = ("structured", "binary")  # the ``cloudevents`` option of a webhook


def sign(secrets: Sequence[str], msg_id: str, timestamp: datetime, body: str) -> str:
    """The ``webhook-signature`` header: one signature per secret, space-separated."""
    if not secrets:
        raise InvalidInput("at least one webhook secret is required", field="secrets")
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=UTC)
    # Webhook.sign reads the wall-clock fields as UTC, so hand it UTC.
    utc = timestamp.astimezone(UTC)
    return " ".join(Webhook(secret).sign(msg_id, utc, body) for secret in secrets)


def new_secret() -> str:
    """A fresh secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets_module.token_bytes(32)).decode()


def check_secret(secret: str, field: str) -> None:
    """Refuse a secret other Standard Webhooks libraries could not use."""
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise InvalidInput(f"a webhook secret starts with {SECRET_PREFIX!r}", field=field)
    if len(secret) > MAX_SECRET_CHARS:
        raise InvalidInput("the webhook secret is too long", field=field)
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("the webhook secret is not valid base64", field=field) from None
    if len(raw) < MIN_SECRET_BYTES:
        raise InvalidInput(
            f"the webhook secret must hold at least {MIN_SECRET_BYTES} bytes", field=field
        )


class RefusedConnect(httpcore.ConnectError):
    """The policy refused every address of a host: nothing was sent."""

    def __init__(self, problem: UrlProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class CheckedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to addresses the SSRF policy allows, and
    only to the addresses it checked: one resolution per connection."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver = system_resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.resolver = resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await checked_addresses(
                host,
                port,
                allow_private=self.allow_private,
                resolver=self.resolver,
                timeout=timeout or 10.0,
            )
        except UrlRefused as exc:
            raise RefusedConnect(exc.problem) from None
        failure: Exception | None = None
        for address in addresses:  # in the resolver's order, like a plain connect
            try:
                return await self.inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks go over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a :class:`CheckedNetworkBackend`."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver = system_resolver,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits = httpx.Limits(max_connections=100, max_keepalive_connections=20),
    ) -> None:
        super().__init__(trust_env=False, limits=limits)
        # httpx 0.28 cannot be handed a network backend (encode/httpx#3749):
        # the pool is rebuilt with ours, as httpx builds it (no proxy).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=CheckedNetworkBackend(allow_private=allow_private, resolver=resolver),
        )


def webhook_client(
    *,
    allow_private: bool,
    resolver: Resolver = system_resolver,
    verify: ssl.SSLContext | bool = True,
) -> httpx.AsyncClient:
    """The client deliveries must use: checked connections, no redirects,
    no proxy or other settings from the environment. ``verify``: the TLS
    trust (default: the system's), checked against the URL's host name."""
    return httpx.AsyncClient(
        transport=CheckedTransport(allow_private=allow_private, resolver=resolver, verify=verify),
        follow_redirects=False,
        trust_env=False,
    )


async def deliver_webhook(
    client: httpx.AsyncClient,
    *,
    url: str,
    secrets: Sequence[str],
    msg_id: str,
    event_type: str,
    data: Mapping[str, Any],
    headers: Mapping[str, str] | None = None,
    timeout: float = 15.0,
    allow_private: bool = False,
    now: float | None = None,
    cloudevents: str | None = None,
) -> ActionOutcome:
    """POST one signed message; the outcome says whether a retry can help.

    ``client`` is a :func:`webhook_client` (its connections are checked
    against the SSRF policy); ``url`` is checked here for what is visibly
    internal. ``now`` (epoch seconds) is the signing time, for tests; it
    defaults to the clock. ``timeout`` bounds the whole exchange, not each
    read. ``cloudevents`` (``structured`` or ``binary``): ``data`` is an
    event envelope, sent as a CloudEvent in that mode.
    """
    now = time.time() if now is None else now
    try:
        check_webhook_url(url, allow_private=allow_private)
    except InvalidInput as exc:
        return ActionOutcome.failed(exc.detail, permanent=True)
    try:
        body, content_headers = _body(event_type, data, now, cloudevents)
    except (TypeError, KeyError, ValueError) as exc:
        return ActionOutcome.failed(f"payload is not JSON: {_one_line(str(exc))}", permanent=True)
    try:
        request_headers = _headers(headers)
        signature = sign(secrets, msg_id, datetime.fromtimestamp(now, UTC), body.decode())
    except InvalidInput as exc:
        return ActionOutcome.failed(exc.detail, permanent=True)
    except (binascii.Error, ValueError, RuntimeError) as exc:  # a secret the library refuses
        return ActionOutcome.failed(
            f"invalid webhook secret: {_one_line(str(exc))}", permanent=True
        )
    request_headers.update(
        {
            "webhook-id": msg_id,
            "webhook-timestamp": str(math.floor(now)),
            "webhook-signature": signature,
            **content_headers,
        }
    )
    try:
        async with asyncio.timeout(timeout):
            status, response_headers, text = await _post(
                client, url, body, request_headers, timeout
            )
    except (TimeoutError, httpx.TimeoutException):
        return ActionOutcome.failed(f"timeout after {timeout}s")
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        return ActionOutcome.failed(_one_line(str(exc)) or "invalid URL", permanent=True)
    except (httpx.HTTPError, OSError) as exc:
        refused = _refusal(exc)
        if refused is not None:
            return ActionOutcome.failed(refused.message, permanent=refused.permanent)
        return ActionOutcome.failed(_network_detail(exc))
    return _outcome(status, response_headers, text, now)


def _body(
    event_type: str, data: Mapping[str, Any], now: float, cloudevents: str | None
) -> tuple[bytes, dict[str, str]]:
    """The body to send and the headers that describe it."""
    if cloudevents == "structured":
        return ce.structured_json(data), {"content-type": ce.STRUCTURED}
    if cloudevents == "binary":
        message = ce.binary_message(data)
        return message.body, {name.lower(): value for name, value in message.headers.items()}
    if cloudevents is not None:
        raise ValueError(f"cloudevents must be one of {', '.join(CLOUDEVENTS_MODES)}")
    body = orjson.dumps({"type": event_type, "timestamp": iso_utc(now), "data": dict(data)})
    return body, {"content-type": "application/json"}


def _refusal(exc: BaseException) -> UrlProblem | None:
    """The policy's verdict, if that is what stopped the connection."""
    cause: BaseException | None = exc
    for _ in range(8):
        if cause is None:
            return None
        if isinstance(cause, RefusedConnect):
            return cause.problem
        cause = cause.__cause__ or cause.__context__
    return None


async def _post(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], timeout: float
) -> tuple[int, httpx.Headers, str]:
    """Send, then read at most 64 KiB of the answer (a huge reply is not
    worth buffering; reading a small one lets the connection be reused)."""
    async with client.stream(
        "POST", url, content=body, headers=headers, timeout=timeout, follow_redirects=False
    ) as response:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size >= _READ_LIMIT:
                break
        text = b"".join(chunks)[: DETAIL_BODY_CHARS * 4].decode("utf-8", "replace")
        return response.status_code, response.headers, text


def _outcome(status: int, headers: httpx.Headers, text: str, now: float) -> ActionOutcome:
    if 200 <= status < 300:
        return ActionOutcome(True, f"HTTP {status}", status=status)
    if 300 <= status < 400:
        location = _one_line(headers.get("location", ""), DETAIL_BODY_CHARS)
        where = f" to {location}" if location else ""
        return ActionOutcome.failed(f"HTTP {status}: redirect{where} not followed", status=status)
    snippet = _one_line(text, DETAIL_BODY_CHARS)
    detail = f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}"
    if status == 410:
        return ActionOutcome.failed(detail, status=status, permanent=True, disable_rule=True)
    retry_after = None
    if status in (429, 503):
        retry_after = parse_retry_after(headers.get("retry-after"), now)
    return ActionOutcome.failed(detail, status=status, retry_after=retry_after)


def _headers(extra: Mapping[str, str] | None) -> dict[str, str]:
    """Default headers plus the caller's, which may not replace ours."""
    result = {"user-agent": USER_AGENT}
    for name, value in (extra or {}).items():
        lowered = str(name).lower()
        if not _TOKEN_RE.fullmatch(lowered):
            raise InvalidInput(f"invalid header name {name!r}", field="headers")
        if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            raise InvalidInput(f"invalid value for header {name!r}", field="headers")
        if lowered.startswith("webhook-") or lowered in _RESERVED:
            continue
        result[lowered] = value
    return result


def _network_detail(exc: BaseException) -> str:
    """One line for a failed exchange: ``connection refused`` when it was."""
    cause: BaseException | None = exc
    for _ in range(8):  # the chain can loop; a few links are enough
        if cause is None:
            break
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    text = _one_line(str(exc))
    if "refused" in text.lower():
        return "connection refused"
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed: {text or 'no detail'}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


__all__ = [
    "CLOUDEVENTS_MODES",
    "USER_AGENT",
    "CheckedNetworkBackend",
    "CheckedTransport",
    "RefusedConnect",
    "check_secret",
    "deliver_webhook",
    "new_secret",
    "sign",
    "webhook_client",
]
