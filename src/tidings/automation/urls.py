"""Webhook URL safety: a tenant admin's URL must not reach our own network.

Two checks. ``check_webhook_url`` runs when a rule is saved and refuses what
is visibly internal (``localhost``, ``10.0.0.5``, ``[::1]``, ``127.1``).
``check_resolved`` runs before each delivery and refuses a public-looking
name that resolves to an internal address.

Both stand down when the operator sets ``allow_private_webhooks`` (a hub
inside a private network calling its neighbours).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from tidings.errors import InvalidInput

MAX_URL_LENGTH = 2048
PRIVATE_MESSAGE = (
    "webhook URL points at a private or loopback address; set allow_private_webhooks to allow it"
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def check_webhook_url(url: str, *, allow_private: bool, field: str = "/action/config/url") -> None:
    """Refuse a URL that is malformed or, unless allowed, visibly internal."""
    parts = _split(url, field)
    if allow_private:
        return
    host = _host(parts)
    if host == "localhost" or host.endswith(".localhost"):
        raise InvalidInput(PRIVATE_MESSAGE, field=field)
    address = literal_address(host)
    if address is not None and not is_public(address):
        raise InvalidInput(PRIVATE_MESSAGE, field=field)


async def check_resolved(url: str, *, allow_private: bool, timeout: float = 10.0) -> str | None:
    """Why ``url`` must not be called now, or None: resolves the host and
    refuses when any address is internal. A name that does not resolve is
    reported too (a retry may succeed; :func:`resolve_problem` tells which)."""
    problem = await resolve_problem(url, allow_private=allow_private, timeout=timeout)
    return problem.message if problem else None


@dataclass(frozen=True, slots=True)
class UrlProblem:
    message: str
    permanent: bool  # False: DNS failed, which a later attempt may not


async def resolve_problem(
    url: str, *, allow_private: bool, timeout: float = 10.0
) -> UrlProblem | None:
    """:func:`check_resolved` with its verdict: refused (permanent) or
    unresolvable (retryable). Never raises."""
    if allow_private:
        return None
    try:
        check_webhook_url(url, allow_private=False)
    except InvalidInput as exc:
        return UrlProblem(exc.detail, True)
    parts = urlsplit(url)
    host = _host(parts)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        async with asyncio.timeout(timeout):
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
    except TimeoutError:
        return UrlProblem(f"cannot resolve host {host}: timeout after {timeout}s", False)
    except OSError as exc:
        return UrlProblem(f"cannot resolve host {host}: {exc.strerror or exc}", False)
    if not infos:
        return UrlProblem(f"cannot resolve host {host}: no addresses", False)
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not is_public(address):
            return UrlProblem(f"{PRIVATE_MESSAGE} ({host} resolves to {address})", True)
    return None


def is_public(address: IPAddress) -> bool:
    """True for a globally routable unicast address, looking through the
    IPv6 forms that embed an IPv4 one (mapped, 6to4, NAT64)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def literal_address(host: str) -> IPAddress | None:
    """The address ``host`` spells, including the legacy IPv4 forms the
    resolver accepts (``127.1``, ``0x7f.0.0.1``, ``2130706433``)."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if all(c in "0123456789abcdefxABCDEFX." for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _split(url: str, field: str) -> SplitResult:
    if not isinstance(url, str) or not url:
        raise InvalidInput("webhook URL is required", field=field)
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"webhook URL is longer than {MAX_URL_LENGTH} characters", field=field)
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise InvalidInput("webhook URL contains whitespace or control characters", field=field)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise InvalidInput(f"invalid webhook URL: {exc}", field=field) from None
    if parts.scheme not in ("http", "https"):
        raise InvalidInput("webhook URL must be http:// or https://", field=field)
    if "@" in parts.netloc:
        raise InvalidInput("webhook URL must not contain a user name or password", field=field)
    if not _host(parts):
        raise InvalidInput("webhook URL has no host", field=field)
    return parts


def _host(parts: SplitResult) -> str:
    """The lower-case host without brackets or a trailing dot."""
    return (parts.hostname or "").rstrip(".")


__all__ = [
    "MAX_URL_LENGTH",
    "PRIVATE_MESSAGE",
    "UrlProblem",
    "check_resolved",
    "check_webhook_url",
    "is_public",
    "literal_address",
    "resolve_problem",
]
