"""Webhook URL safety: a tenant admin's URL must not reach our own network.

Two checks. ``check_webhook_url`` runs when a rule is saved and refuses what
is visibly internal (``localhost``, ``10.0.0.5``, ``[::1]``, ``127.1``).
``checked_addresses`` runs for every connection a delivery opens: it
resolves the host *once* and refuses a public-looking name when any of its
addresses is internal; the caller then connects to exactly those addresses
(``webhook.CheckedNetworkBackend``), so there is no window between the check
and the connect for a DNS answer to change (DNS rebinding).

Both stand down when the operator sets ``allow_private_webhooks`` (a hub
inside a private network calling its neighbours); the connection still goes
to the address resolved once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from tidings.errors import InvalidInput

MAX_URL_LENGTH = 2048
PRIVATE_MESSAGE = (
    "webhook URL points at a private or loopback address; set allow_private_webhooks to allow it"
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")

# host, port -> the addresses to connect to (a seam: tests give their own).
Resolver = Callable[[str, int], Awaitable[list[str]]]


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


class UrlRefused(Exception):
    """A delivery must not connect: :attr:`problem` says why."""

    def __init__(self, problem: UrlProblem) -> None:
        super().__init__(problem.message)
        self.problem = problem


async def system_resolver(host: str, port: int) -> list[str]:
    """The system resolver's addresses for ``host``, in its order, once each."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def checked_addresses(
    host: str,
    port: int,
    *,
    allow_private: bool,
    resolver: Resolver = system_resolver,
    timeout: float = 10.0,
) -> list[IPAddress]:
    """Resolve ``host`` once and return the addresses a connection may use;
    raises :class:`UrlRefused` when any is internal (unless allowed) or the
    name does not resolve. A literal address is not looked up."""
    literal = literal_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            async with asyncio.timeout(timeout):
                answers = await resolver(host, port)
        except TimeoutError:
            raise UrlRefused(
                UrlProblem(f"cannot resolve host {host}: timeout after {timeout}s", False)
            ) from None
        except OSError as exc:
            raise UrlRefused(
                UrlProblem(f"cannot resolve host {host}: {exc.strerror or exc}", False)
            ) from None
        addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in answers]
    if not addresses:
        raise UrlRefused(UrlProblem(f"cannot resolve host {host}: no addresses", False))
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                message = f"{PRIVATE_MESSAGE} ({host} resolves to {address})"
                raise UrlRefused(UrlProblem(message, True))
    return addresses


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
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        await checked_addresses(_host(parts), port, allow_private=False, timeout=timeout)
    except UrlRefused as exc:
        return exc.problem
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
    "Resolver",
    "UrlProblem",
    "UrlRefused",
    "check_resolved",
    "check_webhook_url",
    "checked_addresses",
    "is_public",
    "literal_address",
    "resolve_problem",
    "system_resolver",
]
